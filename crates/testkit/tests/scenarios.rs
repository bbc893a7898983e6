//! Scenarios pass when the bot behaves and fail, with a reason, when it does not.

mod common;

use std::time::Duration;

use common::*;
use tokio_tungstenite::tungstenite::Message;
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario, StepOutcome};

const S: fn(u64) -> Duration = Duration::from_millis;

/// Greets with 500 ms of tone and a mark named "greeting".
async fn greeter(dialect: Dialect) -> Bot {
    serve(dialect, "/greeter", move |mut conn: Conn| async move {
        conn.open().await;
        let rate = dialect.default_format().sample_rate;
        let audio = encode(dialect, &tone(500.0, 500, rate), rate != 8000);
        conn.play(
            &audio,
            if dialect == Dialect::Exotel {
                1600
            } else {
                800
            },
            rate,
        )
        .await;
        conn.mark("greeting").await;
        conn.drain().await;
    })
    .await
}

/// Talks for 3 s and clears as soon as the caller makes a sound.
async fn interruptible(dialect: Dialect) -> Bot {
    serve(dialect, "/barge", move |mut conn: Conn| async move {
        conn.open().await;
        let audio = encode(dialect, &tone(500.0, 3000, 8000), false);
        conn.play(&audio, 800, 8000).await;
        conn.mark("long").await;
        while let Some(message) = conn.recv().await {
            let Some(payload) = carrier_payload(dialect, &message) else {
                continue;
            };
            let mut pcm = Vec::new();
            voxline_audio::g711::mulaw::decode(&payload, &mut pcm);
            if rms(&pcm) > 300.0 {
                conn.clear().await;
                break;
            }
        }
        conn.drain().await;
    })
    .await
}

#[tokio::test]
async fn a_greeting_scenario_passes_in_every_dialect() {
    for dialect in Dialect::ALL {
        let bot = greeter(dialect).await;
        let report = callsim::run_scenario(
            Scenario::new(bot.url.clone(), dialect)
                .named("greeting")
                .wait_for_audio(S(3000))
                .wait_for_named_mark("greeting", S(3000))
                .wait_until_quiet(S(3000))
                .expect_no_audio(S(300))
                .dtmf('7')
                .hangup(),
        )
        .await
        .expect("scenario runs");
        assert!(report.passed(), "{dialect}: {report}");
        assert_eq!(report.steps.len(), 6);
        assert!(report.steps[0].detail.contains("bot audio heard"));
        let started: Vec<f64> = report.steps.iter().filter_map(|s| s.started_ms).collect();
        assert!(
            started.windows(2).all(|w| w[0] <= w[1]),
            "steps run in order"
        );
    }
}

#[tokio::test]
async fn waiting_for_a_silent_bot_fails_and_skips_the_rest() {
    let bot = recorder(Dialect::Twilio).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio)
            .wait_for_audio(S(300))
            .dtmf('1')
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(!report.passed());
    assert_eq!(report.steps[0].outcome, StepOutcome::Failed);
    assert_eq!(report.steps[0].detail, "no bot audio within 300 ms");
    assert_eq!(report.steps[1].outcome, StepOutcome::Skipped);
    assert_eq!(report.steps[2].outcome, StepOutcome::Skipped);
    assert_eq!(report.failures().count(), 1);
    sleep(100).await;
    assert!(bot.events("dtmf").is_empty(), "skipped steps do nothing");
    assert_eq!(
        bot.events("stop").len(),
        1,
        "the call still hangs up properly"
    );

    // Without stop_on_failure the script carries on.
    let bot = recorder(Dialect::Twilio).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio)
            .stop_on_failure(false)
            .wait_for_audio(S(200))
            .dtmf('1')
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert_eq!(report.steps[1].outcome, StepOutcome::Passed);
    sleep(100).await;
    assert_eq!(bot.events("dtmf").len(), 1);
}

#[tokio::test]
async fn barging_in_over_the_bot_expects_a_clear() {
    for dialect in [Dialect::Twilio, Dialect::Smartflo, Dialect::Telnyx] {
        let bot = interruptible(dialect).await;
        let report = callsim::run_scenario(
            Scenario::new(bot.url.clone(), dialect)
                .wait_for_audio(S(2000))
                .wait(S(300))
                .play_in_background(Audio::tone(350.0, S(1000), 8000, -6.0))
                .expect_clear(S(2000))
                .wait_until_quiet(S(2000))
                .wait_for_named_mark("long", S(1000))
                .hangup(),
        )
        .await
        .expect("scenario runs");
        assert!(report.passed(), "{dialect}: {report}");
        let clear = &report.call.clears[0];
        assert!(clear.dropped_ms > 500.0, "{clear:?}");
        // The clear came while the caller's audio was still playing.
        let play = &report.steps[2];
        let expect = &report.steps[3];
        assert!(expect.ended_ms.expect("ended") < play.started_ms.expect("started") + 1000.0);
    }
}

#[tokio::test]
async fn a_bot_that_never_clears_fails_expect_clear() {
    let bot = greeter(Dialect::Twilio).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio)
            .play_in_background(Audio::tone(350.0, S(500), 8000, -6.0))
            .expect_clear(S(700)),
    )
    .await
    .expect("scenario runs");
    assert!(!report.passed());
    assert_eq!(report.steps[1].detail, "no clear within 700 ms");
}

#[tokio::test]
async fn expect_no_audio_fails_when_the_bot_talks() {
    let bot = greeter(Dialect::Exotel).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Exotel).expect_no_audio(S(2000)),
    )
    .await
    .expect("scenario runs");
    assert_eq!(report.steps[0].outcome, StepOutcome::Failed, "{report}");
    assert!(report.steps[0].detail.starts_with("bot audio heard at"));
}

#[tokio::test]
async fn a_blocking_play_takes_as_long_as_its_audio() {
    let bot = recorder(Dialect::Twilio).await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio)
            .play(Audio::tone(300.0, S(600), 16000, -6.0))
            .silence(S(200))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    // The 16 kHz audio was resampled to the line's 8 kHz; play and silence are sent in
    // 20 ms frames, so the call carries 800 ms of audio (and a silence frame more
    // only if the machine stalled past the next frame's time).
    let frames = report.call.frames.media_sent;
    assert!((40..=41).contains(&frames), "{frames}");
    assert!(rms(&report.call.sent[..4800]) > 1000.0);
    assert!(report.call.sent[4800..].iter().all(|&s| s == 0));
}

#[tokio::test]
async fn the_server_hanging_up_is_expected_or_fails_the_step() {
    let hang_up = || {
        serve(Dialect::Exotel, "/bye", |mut conn: Conn| async move {
            conn.open().await;
            sleep(200).await;
            let _ = conn.ws.close(None).await;
            conn.drain().await;
        })
    };
    let bot = hang_up().await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Exotel).expect_hangup(S(2000)),
    )
    .await
    .expect("scenario runs");
    assert!(report.passed(), "{report}");
    assert!(
        matches!(report.call.end, callsim::CallEnd::Server { .. }),
        "{report}"
    );

    let bot = hang_up().await;
    let report = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Exotel)
            .wait_for_audio(S(2000))
            .hangup(),
    )
    .await
    .expect("scenario runs");
    assert_eq!(report.steps[0].outcome, StepOutcome::Failed);
    assert!(report.steps[0].detail.contains("server closed"), "{report}");
    sleep(100).await;
    assert!(
        bot.events("stop").is_empty(),
        "no stop after the server hung up"
    );
}

#[tokio::test]
async fn scenarios_run_from_toml_files() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("callsim-scenario");
    std::fs::create_dir_all(&dir).expect("temp dir");
    let wav = dir.join("hello.wav");
    let samples = tone(300.0, 1000, 8000);
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    voxline_audio::wav::write(&wav, voxline_audio::AudioFormat::PCM16_8K, &bytes).expect("wav");

    let bot = greeter(Dialect::Plivo).await;
    let toml = format!(
        r#"
        name = "toml greeting"
        url = "{}"
        dialect = "plivo"
        tail_ms = 100
        [params]
        campaign = "spring"

        [[steps]]
        step = "wait_for_audio"
        within_ms = 3000

        [[steps]]
        step = "wait_for_mark"
        name = "greeting"
        within_ms = 3000

        [[steps]]
        step = "play"
        file = "hello.wav"
        from_ms = 200
        to_ms = 700

        [[steps]]
        step = "dtmf"
        digit = "9"

        [[steps]]
        step = "hangup"
        "#,
        bot.url
    );
    let file = dir.join("greeting.toml");
    std::fs::write(&file, &toml).expect("write toml");
    let scenario = callsim::Scenario::from_toml_file(&file).expect("parses");
    let report = callsim::run_scenario(scenario).await.expect("runs");
    assert!(report.passed(), "{report}");
    assert_eq!(report.name, "toml greeting");
    // The 500 ms slice of the file went out: 25 frames of tone.
    let loud = report
        .call
        .sent
        .chunks(160)
        .filter(|f| rms(f) > 1000.0)
        .count();
    assert_eq!(loud, 25);
    sleep(100).await;
    let start = &bot.events("start")[0];
    assert_eq!(start["extra_headers"], "campaign=spring");
    assert_eq!(bot.events("dtmf")[0]["dtmf"]["digit"], "9");

    // The same text through serde (paths relative to the working directory).
    let parsed: callsim::Scenario = toml::from_str(&toml).expect("deserializes");
    assert_eq!(parsed.steps.len(), 5);

    // JSON report for tools.
    let json = serde_json::to_value(&report).expect("serializes");
    assert_eq!(json["steps"][0]["outcome"], "passed");
    assert!(json["call"]["heard"].is_null(), "audio is not serialized");
    assert_eq!(json["call"]["dialect"], "plivo");
}

#[tokio::test]
async fn a_bad_play_file_is_an_error_before_dialling() {
    let bot = recorder(Dialect::Twilio).await;
    let err = callsim::run_scenario(
        Scenario::new(bot.url.clone(), Dialect::Twilio).play_file("/nonexistent/file.wav"),
    )
    .await
    .expect_err("missing file");
    assert!(matches!(err, callsim::CallsimError::Audio(_)), "{err}");
    sleep(50).await;
    assert!(bot.frames().is_empty());
    let _ = Message::text("");
}
