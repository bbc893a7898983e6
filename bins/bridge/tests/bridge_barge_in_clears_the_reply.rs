//! The caller talks over the model's reply: the model's interruption (Gemini
//! `interrupted`, OpenAI `speech_started`) clears the carrier's playback at once, no
//! more audio of the interrupted reply is heard, and the next reply (another tone)
//! follows the caller's new turn. With OpenAI the bridge truncates the interrupted
//! item to what the caller heard.

mod support;

use std::time::Duration;

use support::{Bridge, gemini, openai, tone, utterance};
use voxline_server::EventKind;
use voxline_testkit::callsim::{self, Dialect, Scenario, ScenarioReport};
use voxline_testkit::emulators::gemini::{self as gemini_emu, GeminiEmulator, Turn};
use voxline_testkit::emulators::openai_realtime::{
    self as openai_emu, OpenAiRealtimeEmulator, Reply,
};

/// First reply (long, 440 Hz), the caller's second utterance over it, then the
/// second reply (660 Hz).
fn scenario(url: String, dialect: Dialect) -> Scenario {
    Scenario::new(url, dialect)
        .silence(Duration::from_millis(300))
        .play(utterance(0, 8000))
        .wait_for_audio(Duration::from_secs(10))
        .wait(Duration::from_millis(700))
        .play_in_background(utterance(1, 8000))
        .expect_clear(Duration::from_secs(3))
        // The caller is still talking: nothing plays until their turn is over.
        .expect_no_audio(Duration::from_millis(800))
        .wait_for_audio(Duration::from_secs(10))
        .wait_until_quiet(Duration::from_secs(10))
        .hangup()
}

/// After the clear, only the second reply's pitch is heard.
fn check(what: &str, report: &ScenarioReport) {
    assert!(report.passed(), "{what}: {report}");
    let call = &report.call;
    let clear = call
        .clears
        .first()
        .unwrap_or_else(|| panic!("{what}: no clear"));
    assert!(
        clear.dropped_ms > 0.0,
        "{what}: the clear came after the reply had played out"
    );
    let before = &call.heard[..call.sample_at(clear.at_ms)];
    let after = &call.heard[call.sample_at(clear.at_ms)..];
    let first = tone(before, 8000, 440.0).unwrap_or_else(|| panic!("{what}: no first reply"));
    assert!(
        (first.hz - 440.0).abs() < 9.0,
        "{what}: first reply {first:?}"
    );
    assert!(
        first.duration < Duration::from_millis(3500),
        "{what}: the first reply played to its end ({first:?})"
    );
    let second = tone(after, 8000, 660.0).unwrap_or_else(|| panic!("{what}: no second reply"));
    assert!(
        (second.hz - 660.0).abs() < 13.0,
        "{what}: after the clear something other than the second reply played: {second:?}"
    );
    let (old, new) = (
        support::power_share(after, 8000, 440.0),
        support::power_share(after, 8000, 660.0),
    );
    assert!(
        old < 0.01 && new > 0.8,
        "{what}: after the clear {:.1}% of the power is the interrupted reply's 440 Hz, {:.1}% the new reply's 660 Hz",
        old * 100.0,
        new * 100.0
    );
}

async fn gemini_barge_in(dialect: Dialect) {
    let what = format!("gemini {dialect}");
    let emulator = GeminiEmulator::start(gemini_emu::Options::with_script(vec![
        Turn::new("Let me tell you all about it.", Duration::from_secs(6)).tone(440.0),
        Turn::new("Sure.", Duration::from_millis(800)).tone(660.0),
    ]))
    .await;
    let bridge = Bridge::start(gemini(&emulator)).await;
    let mut events = bridge.server.bus().subscribe();
    let report = callsim::run_scenario(scenario(bridge.url(dialect), dialect))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    check(&what, &report);
    let mut reasons = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let EventKind::Clear { reason } = &event.kind {
            reasons.push(reason.clone());
        }
    }
    assert_eq!(reasons, ["barge_in"], "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_interruption_clears_the_reply() {
    futures_util::future::join(
        gemini_barge_in(Dialect::Twilio),
        gemini_barge_in(Dialect::Exotel),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_interruption_clears_and_truncates_the_reply() {
    let emulator = OpenAiRealtimeEmulator::start(openai_emu::Options::with_replies(vec![
        Reply::speech("Let me tell you all about it.", Duration::from_secs(6)).tone(440.0),
        Reply::speech("Sure.", Duration::from_millis(800)).tone(660.0),
    ]))
    .await;
    let bridge = Bridge::start(openai(&emulator)).await;
    let report = callsim::run_scenario(scenario(bridge.url(Dialect::Smartflo), Dialect::Smartflo))
        .await
        .expect("call");
    check("openai smartflo", &report);
    let truncates = emulator.received_of_type("conversation.item.truncate");
    assert_eq!(truncates.len(), 1, "{truncates:?}");
    let heard_ms = truncates[0].1["audio_end_ms"]
        .as_u64()
        .expect("audio_end_ms");
    // The caller heard the first reply from its first frame to the clear.
    let call = &report.call;
    let played = call.clears[0].at_ms - call.first_bot_audio_ms.expect("audio");
    assert!(
        heard_ms > 0 && (heard_ms as f64 - played).abs() < 150.0,
        "truncated at {heard_ms} ms; the caller heard about {played:.0} ms"
    );
    let errors = emulator.sent_of_type("error");
    assert!(
        errors.is_empty(),
        "the emulator refused something: {errors:?}"
    );
}
