//! callsim as a Voxline browser/app client against small in-test servers written from
//! the protocol (`docs/protocols.md`, "Voxline"): what it sends, how it plays, echoes
//! and clears, and how transcripts and mode acknowledgements are recorded and awaited.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use voxline_testkit::callsim::{
    self, CallOptions, CallsimError, Dialect, MarkOutcome, Scenario, StepOutcome, ViolationKind,
};

const S: fn(u64) -> Duration = Duration::from_millis;

fn transcript(role: &str, text: &str, is_final: bool) -> Value {
    json!({"event":"transcript","role":role,"text":text,"final":is_final})
}

/// A bot that greets in text, answers each text message with the caller's transcript
/// (interim, then final) and its reply, and acknowledges every mode change with the
/// modes in force.
async fn text_bot() -> Bot {
    serve(
        Dialect::Voxline,
        "/ws/flexible",
        |mut conn: Conn| async move {
            let mut modes = [true; 4];
            conn.send_json(transcript("bot", "Welcome to Acme.", true))
                .await;
            while let Some(message) = conn.recv().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                match v["event"].as_str() {
                    Some("text_message") => {
                        let said = v["text"].as_str().unwrap_or_default().to_owned();
                        conn.send_json(transcript("user", &said[..said.len() / 2], false))
                            .await;
                        conn.send_json(transcript("user", &said, true)).await;
                        conn.send_json(transcript("bot", "We open at nine.", true))
                            .await;
                    }
                    Some("mode_change") => {
                        let keys = ["voice_input", "text_input", "voice_output", "text_output"];
                        for (slot, key) in modes.iter_mut().zip(keys) {
                            if let Some(on) = v[key].as_bool() {
                                *slot = on;
                            }
                        }
                        conn.send_json(json!({
                            "event": "modes",
                            "voice_input": modes[0],
                            "text_input": modes[1],
                            "voice_output": modes[2],
                            "text_output": modes[3],
                        }))
                        .await;
                    }
                    _ => {}
                }
            }
        },
    )
    .await
}

#[tokio::test]
async fn the_client_sends_start_media_text_mode_changes_and_stop() {
    let bot = recorder(Dialect::Voxline).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Voxline)
            .param("voice_input", "true")
            .param("voice_output", "false")
            .param("tenant", "acme")
            .silence(S(100))
            .send_text("Can I move my appointment?")
            .mode_change([None, None, Some(true), Some(false)])
            .dtmf('5')
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    sleep(100).await;

    let frames = bot.json_frames();
    let start = &frames[0];
    assert_eq!(start["event"], "start");
    assert_eq!(start["call_id"], json!(report.call.ids.call_id));
    assert!(report.call.ids.call_id.starts_with("web-"));
    assert_eq!(start["sample_rate"], 16000);
    assert_eq!(start["encoding"], "pcm16");
    assert_eq!(
        start["modes"],
        json!({"voice_input": true, "voice_output": false})
    );
    assert_eq!(start["custom"], json!({"tenant": "acme"}));
    assert!(
        start.get("start").is_none(),
        "a flat start, no carrier nesting"
    );

    // 20 ms of PCM16 16 kHz per media message, base64 under `audio`.
    let media: Vec<&Value> = frames.iter().filter(|v| v["event"] == "media").collect();
    assert!(media.len() >= 5, "{} media frames", media.len());
    for m in &media {
        let audio = B64
            .decode(m["audio"].as_str().expect("audio"))
            .expect("base64");
        assert_eq!(audio.len(), 640);
        assert_eq!(m.as_object().map(|o| o.len()), Some(2), "{m}");
    }
    assert_eq!(report.call.frame_ms, 20);
    assert_eq!(report.call.line_format, "pcm16_16000");

    let find = |event: &str| {
        frames
            .iter()
            .find(|v| v["event"] == event)
            .unwrap_or_else(|| panic!("no {event}"))
            .clone()
    };
    assert_eq!(
        find("text_message"),
        json!({"event":"text_message","text":"Can I move my appointment?"})
    );
    assert_eq!(
        find("mode_change"),
        json!({"event":"mode_change","voice_output":true,"text_output":false})
    );
    assert_eq!(find("dtmf"), json!({"event":"dtmf","digit":"5"}));
    assert_eq!(frames.last(), Some(&json!({"event":"stop"})));
}

#[tokio::test]
async fn transcripts_and_modes_are_recorded_and_awaited() {
    let bot = text_bot().await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Voxline)
            .wait(S(200))
            // The greeting came before this step: it still counts, once.
            .wait_for_text(Some("bot"), Some("welcome"), S(1000))
            .send_text("What are your hours?")
            .wait_for_text(Some("user"), None, S(2000))
            .wait_for_text(Some("user"), Some("HOURS?"), S(2000))
            .wait_for_text(Some("bot"), Some("Nine"), S(2000))
            .mode_change([None, Some(false), None, None])
            .wait(S(200))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    assert!(
        report.steps[1].detail.contains("before the step started"),
        "{}",
        report.steps[1].detail
    );
    assert!(
        report.steps[4].detail.contains("What are your hours?"),
        "the interim was taken by the step before: {}",
        report.steps[4].detail
    );

    let texts: Vec<(&str, &str, bool)> = report
        .call
        .texts
        .iter()
        .map(|t| (t.role.as_str(), t.text.as_str(), t.is_final))
        .collect();
    assert_eq!(
        texts,
        [
            ("bot", "Welcome to Acme.", true),
            ("user", "What are y", false),
            ("user", "What are your hours?", true),
            ("bot", "We open at nine.", true),
        ]
    );
    assert!(
        report
            .call
            .texts
            .windows(2)
            .all(|w| w[0].at_ms <= w[1].at_ms)
    );
    assert_eq!(report.call.modes.len(), 1);
    let m = &report.call.modes[0];
    assert_eq!(
        (m.voice_input, m.text_input, m.voice_output, m.text_output),
        (true, false, true, true)
    );
    let shown = report.call.to_string();
    assert!(shown.contains("We open at nine."), "{shown}");
    assert!(shown.contains("text_input false"), "{shown}");
    let json = serde_json::to_value(&report.call).expect("serializes");
    assert_eq!(json["texts"][3]["role"], "bot");
    assert_eq!(json["modes"][0]["text_input"], false);
}

#[tokio::test]
async fn a_transcript_that_never_comes_fails_the_step() {
    let bot = text_bot().await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Voxline)
            .wait_for_text(Some("bot"), Some("welcome"), S(1000))
            // Already matched by the step before: not counted again.
            .wait_for_text(Some("bot"), Some("welcome"), S(300))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(!report.passed());
    assert_eq!(report.steps[0].outcome, StepOutcome::Passed);
    assert_eq!(report.steps[1].outcome, StepOutcome::Failed);
    assert_eq!(
        report.steps[1].detail,
        "no matching transcript within 300 ms (1 received)"
    );
}

#[tokio::test]
async fn audio_marks_and_clear_follow_the_protocol() {
    // Talks for 3 s, marks the end, and clears when the caller types anything.
    let bot = serve(
        Dialect::Voxline,
        "/ws/flexible",
        |mut conn: Conn| async move {
            conn.open().await;
            let audio = encode(Dialect::Voxline, &tone(500.0, 3000, 16000), true);
            conn.play(&audio, 640, 16000).await;
            conn.mark("long").await;
            while let Some(message) = conn.recv().await {
                if let Message::Text(t) = &message
                    && t.as_str().contains("text_message")
                {
                    conn.clear().await;
                }
            }
        },
    )
    .await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Voxline)
            .wait_for_audio(S(2000))
            .wait(S(300))
            .send_text("stop")
            .expect_clear(S(1000))
            .wait_for_named_mark("long", S(500))
            .wait_until_quiet(S(1000))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    let call = &report.call;
    assert_eq!(call.clears.len(), 1);
    assert!(call.clears[0].dropped_ms > 1500.0, "{report}");
    assert_eq!(call.clears[0].marks_echoed, 1);
    assert_eq!(call.marks[0].outcome, MarkOutcome::EchoedOnClear);
    assert!(
        call.bot_audio_ms > 250.0 && call.bot_audio_ms < 1500.0,
        "{report}"
    );
    sleep(100).await;
    let echoes = bot.events("mark");
    assert_eq!(echoes, [json!({"event":"mark","name":"long"})]);
}

#[tokio::test]
async fn protocol_mistakes_are_violations() {
    let bot = serve(
        Dialect::Voxline,
        "/ws/flexible",
        |mut conn: Conn| async move {
            conn.open().await;
            // Carrier-style media, binary audio, an odd PCM16 payload, a transcript with
            // the wrong role, an incomplete modes message, an unknown event.
            for v in [
                json!({"event":"media","media":{"payload":"AAAA"}}),
                json!({"event":"media","audio":"AA=="}),
                json!({"event":"transcript","role":"assistant","text":"x","final":true}),
                json!({"event":"modes","voice_input":true}),
                json!({"event":"playAudio"}),
            ] {
                conn.send_json(v).await;
            }
            conn.send(Message::binary(vec![0u8; 640])).await;
            conn.drain().await;
        },
    )
    .await;
    let report = callsim::call(CallOptions::new(bot.url.clone(), Dialect::Voxline).tail(S(300)))
        .await
        .expect("call runs");
    let kinds: Vec<ViolationKind> = report.violations.iter().map(|v| v.kind).collect();
    assert_eq!(
        kinds,
        [
            ViolationKind::MissingField,
            ViolationKind::BadChunkSize,
            ViolationKind::MissingField,
            ViolationKind::MissingField,
            ViolationKind::UnknownEvent,
            ViolationKind::WrongFrameType,
        ],
        "{report}"
    );
    assert!(report.texts.is_empty() && report.modes.is_empty());
}

#[tokio::test]
async fn text_steps_fail_in_phone_dialects() {
    let bot = recorder(Dialect::Twilio).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio)
            .stop_on_failure(false)
            .send_text("hello")
            .mode_change([Some(false), None, None, None])
            .wait_for_text(None, None, S(5000))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    for step in &report.steps[..3] {
        assert_eq!(step.outcome, StepOutcome::Failed, "{report}");
        assert_eq!(step.detail, "dialect twilio has no text channel");
    }
    assert!(
        report.steps[2].ended_ms.unwrap_or(f64::MAX) < 1000.0,
        "fails at once"
    );
    sleep(100).await;
    assert!(bot.events("text_message").is_empty());
    assert!(bot.events("mode_change").is_empty());
}

#[tokio::test]
async fn bad_options_are_refused_before_dialling() {
    let options = CallOptions::new("ws://127.0.0.1:9/ws/flexible", Dialect::Voxline)
        .param("voice_output", "sometimes");
    assert!(matches!(
        callsim::call(options).await,
        Err(CallsimError::InvalidOptions {
            field: "params",
            ..
        })
    ));
    let scenario = Scenario::new("ws://127.0.0.1:9/ws/flexible", Dialect::Voxline).wait_for_text(
        Some("assistant"),
        None,
        S(100),
    );
    assert!(matches!(
        callsim::run_scenario(scenario).await,
        Err(CallsimError::InvalidOptions {
            field: "wait_for_text",
            ..
        })
    ));
    let options =
        CallOptions::new("ws://127.0.0.1:9/ws/flexible", Dialect::Voxline).sample_rate(11025);
    assert!(matches!(
        callsim::call(options).await,
        Err(CallsimError::InvalidOptions { .. })
    ));
}
