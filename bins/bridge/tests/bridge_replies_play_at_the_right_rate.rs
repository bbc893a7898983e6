//! A caller speaks through the bridge and the model's reply (a scripted tone) reaches
//! the caller at the right pitch and length in every line format: Gemini Live in
//! Exotel (PCM16 8 and 16 kHz), Smartflo and Twilio (mu-law 8 kHz); OpenAI Realtime in
//! Twilio (G.711 end to end) and Exotel (PCM16 8 kHz through the 24 kHz wire format).
//! The model also receives the caller's audio at its own rate, neither sped up nor
//! slowed down.

mod support;

use std::time::Duration;

use support::{Bridge, assert_tone, gemini, openai, utterance};
use voxline_server::EventKind;
use voxline_testkit::callsim::{self, Dialect, Scenario};
use voxline_testkit::emulators::gemini::{self as gemini_emu, GeminiEmulator, Turn};
use voxline_testkit::emulators::openai_realtime::{
    self as openai_emu, OpenAiRealtimeEmulator, Reply,
};

const REPLY: Duration = Duration::from_millis(1500);

/// The call: a little silence, one utterance, then the reply to its end.
fn scenario(url: String, dialect: Dialect, rate: u32) -> Scenario {
    Scenario::new(url, dialect)
        .silence(Duration::from_millis(300))
        .play(utterance(0, rate))
        .wait_for_audio(Duration::from_secs(10))
        .wait_until_quiet(Duration::from_secs(10))
        .hangup()
}

async fn gemini_call(dialect: Dialect, rate: u32) {
    let what = format!("gemini {dialect} {rate} Hz");
    let emulator = GeminiEmulator::start(gemini_emu::Options::with_script(vec![
        Turn::new("Hello, how can I help?", REPLY)
            .heard("Hello, yes, I can talk now.")
            .tone(440.0),
    ]))
    .await;
    let bridge = Bridge::start(gemini(&emulator)).await;
    let mut events = bridge.server.bus().subscribe();
    let mut url = bridge.url(dialect);
    if rate != 8000 {
        url.push_str(&format!("?sample-rate={rate}"));
    }
    let report = callsim::run_scenario(scenario(url, dialect, rate).sample_rate(rate))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(report.passed(), "{what}: {report}");
    assert_eq!(report.call.sample_rate, rate, "{what}");
    assert_tone(&what, &report.call.received, rate, 440.0, REPLY);

    // Uplink: what the model got is 16 kHz PCM as long as what the caller sent
    // before hanging up (less what was still in flight at the hang-up).
    let (pcm, mimes) = emulator.audio(0);
    assert_eq!(mimes, ["audio/pcm;rate=16000"], "{what}");
    let got = pcm.len() as f64 / 32_000.0;
    let sent = report.call.sent.len() as f64 / f64::from(rate);
    assert!(
        got > sent * 0.85 && got < sent * 1.02,
        "{what}: the model got {got:.2} s of audio for {sent:.2} s sent"
    );

    let mut transcripts = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Transcript { speaker, text, .. } = &event.kind {
            transcripts.push((speaker.clone(), text.clone()));
        }
    }
    assert!(
        transcripts
            .iter()
            .any(|(s, t)| s == "caller" && t == "Hello, yes, I can talk now."),
        "{what}: {transcripts:?}"
    );
    assert!(
        transcripts
            .iter()
            .any(|(s, t)| s == "bot" && t == "Hello, how can I help?"),
        "{what}: {transcripts:?}"
    );
    let metrics = bridge.metrics_text().await;
    assert_eq!(
        support::metric(
            &metrics,
            "voxline_bridge_sessions_total{outcome=\"connected\"}"
        ),
        Some(1.0),
        "{what}"
    );
    assert!(
        support::metric(&metrics, "voxline_bridge_downlink_forward_seconds_count")
            .is_some_and(|n| n > 0.0),
        "{what}"
    );
    assert!(
        support::metric(&metrics, "voxline_bridge_response_latency_seconds_count")
            .is_some_and(|n| n >= 1.0),
        "{what}: {metrics}"
    );
}

async fn openai_call(dialect: Dialect, rate: u32) {
    let what = format!("openai {dialect} {rate} Hz");
    let emulator = OpenAiRealtimeEmulator::start(
        openai_emu::Options::with_replies(vec![
            Reply::speech("Hello, how can I help?", REPLY).tone(440.0),
        ])
        .user_transcripts(vec!["Hello, yes, I can talk now.".to_owned()]),
    )
    .await;
    let bridge = Bridge::start(openai(&emulator)).await;
    let report = callsim::run_scenario(scenario(bridge.url(dialect), dialect, rate))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(report.passed(), "{what}: {report}");
    assert_tone(&what, &report.call.received, rate, 440.0, REPLY);
    let update = &emulator.received_of_type("session.update")[0].1;
    let format = &update["session"]["audio"]["input"]["format"]["type"];
    let expected = if dialect == Dialect::Exotel {
        "audio/pcm"
    } else {
        "audio/pcmu"
    };
    assert_eq!(format, expected, "{what}");
    let metrics = bridge.metrics_text().await;
    assert!(
        support::metric(
            &metrics,
            "voxline_bridge_tokens_total{direction=\"completion\"}"
        )
        .is_some_and(|n| n > 0.0),
        "{what}: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_replies_play_at_the_line_rate_in_every_dialect() {
    futures_util::future::join4(
        gemini_call(Dialect::Exotel, 8000),
        gemini_call(Dialect::Exotel, 16000),
        gemini_call(Dialect::Smartflo, 8000),
        gemini_call(Dialect::Twilio, 8000),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_replies_play_at_the_line_rate() {
    futures_util::future::join(
        openai_call(Dialect::Twilio, 8000),
        openai_call(Dialect::Exotel, 8000),
    )
    .await;
}
