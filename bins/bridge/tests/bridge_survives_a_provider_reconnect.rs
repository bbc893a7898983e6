//! The provider ends its connection mid-call (Gemini `goAway`, OpenAI
//! `session_expired`): the adapter replaces it, the bridge logs and counts the
//! reconnect, the call stays up and the caller's next turn is answered over the new
//! connection.

mod support;

use std::time::Duration;

use support::{Bridge, gemini, metric, openai, power_share, utterance};
use voxline_testkit::callsim::{self, CallEnd, Dialect, Scenario, ScenarioReport};
use voxline_testkit::emulators::gemini::{self as gemini_emu, GeminiEmulator, Turn};
use voxline_testkit::emulators::openai_realtime::{
    self as openai_emu, OpenAiRealtimeEmulator, Reply,
};

/// When the provider drops the first connection: after the first reply has played,
/// before the caller's second turn.
const ROTATE_AFTER: Duration = Duration::from_millis(4500);

fn scenario(url: String, dialect: Dialect) -> Scenario {
    Scenario::new(url, dialect)
        .silence(Duration::from_millis(300))
        .play(utterance(0, 8000))
        .wait_for_audio(Duration::from_secs(10))
        .wait_until_quiet(Duration::from_secs(10))
        .silence(Duration::from_millis(1500))
        .play(utterance(1, 8000))
        .wait_for_audio(Duration::from_secs(10))
        .wait_until_quiet(Duration::from_secs(10))
        .hangup()
}

/// The call stayed up to callsim's hang-up and the second reply (660 Hz) was heard
/// after the rotation.
fn check(what: &str, report: &ScenarioReport) {
    assert!(report.passed(), "{what}: {report}");
    assert!(
        matches!(report.call.end, CallEnd::Callsim { .. }),
        "{what}: the call did not stay up: {:?}",
        report.call.end
    );
    let second_from = report.steps[6]
        .ended_ms
        .unwrap_or_else(|| panic!("{what}: no second turn"));
    let after = &report.call.heard[report.call.sample_at(second_from)..];
    assert!(
        power_share(after, 8000, 660.0) > 0.8,
        "{what}: the second reply is not what was heard after the second turn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_go_away_rotates_the_connection_and_the_next_reply_arrives() {
    let emulator = GeminiEmulator::start(gemini_emu::Options {
        script: vec![
            Turn::new("Hello.", Duration::from_secs(1)).tone(440.0),
            Turn::new("Whitefield, noted.", Duration::from_secs(1)).tone(660.0),
        ],
        go_away_after: Some(ROTATE_AFTER),
        go_away_notice: Duration::from_millis(500),
        go_away_connections: 1,
        ..gemini_emu::Options::default()
    })
    .await;
    let bridge = Bridge::start(gemini(&emulator)).await;
    let report = callsim::run_scenario(scenario(bridge.url(Dialect::Twilio), Dialect::Twilio))
        .await
        .expect("call");
    check("gemini", &report);
    // The second connection resumed the session and carried the second reply.
    let setups = emulator.setups();
    assert_eq!(setups.len(), 2, "{setups:?}");
    assert!(
        setups[1].1["sessionResumption"]["handle"].is_string(),
        "{:?}",
        setups[1]
    );
    assert!(
        emulator
            .sent_with("serverContent")
            .iter()
            .any(|(c, m)| *c == 1 && m["serverContent"]["modelTurn"].is_object()),
        "no reply audio came over the new connection"
    );
    let text = bridge.metrics_text().await;
    assert_eq!(metric(&text, "voxline_bridge_reconnects_total"), Some(1.0));
    assert_eq!(metric(&text, "voxline_bridge_sessions_active"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_session_expiry_replaces_the_session_and_the_next_reply_arrives() {
    let emulator = OpenAiRealtimeEmulator::start(
        openai_emu::Options::with_replies(vec![
            Reply::speech("Hello.", Duration::from_secs(1)).tone(440.0),
            Reply::speech("Whitefield, noted.", Duration::from_secs(1)).tone(660.0),
        ])
        .session_max(ROTATE_AFTER)
        .expiring_connections(1),
    )
    .await;
    let bridge = Bridge::start(openai(&emulator)).await;
    let report = callsim::run_scenario(scenario(bridge.url(Dialect::Exotel), Dialect::Exotel))
        .await
        .expect("call");
    check("openai", &report);
    assert_eq!(
        emulator.handshakes().len(),
        2,
        "{:?}",
        emulator.handshakes()
    );
    let text = bridge.metrics_text().await;
    assert_eq!(metric(&text, "voxline_bridge_reconnects_total"), Some(1.0));
    assert_eq!(metric(&text, "voxline_bridge_sessions_active"), Some(0.0));
}
