//! The voice agent for a browser or app client on `/ws/flexible` (issue 6): Voxline's
//! own JSON protocol carries audio both ways plus transcripts, the bot's words, text
//! messages and mode changes. The client speaks, then switches to text output mid-call
//! and writes, then switches back; every turn lands in one history.

mod common;

use std::time::Duration;

use common::agent::{LONG, Script, Stack};
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario};
use voxline_testkit::emulators::deepgram::Line;
use voxline_testkit::emulators::openai::ChatScript;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_and_text_turns_with_a_mode_switch_mid_call() {
    // The client streams PCM16 at 16 kHz; the caller's first utterance at 0.5 s.
    let speech = speech::load("caller_en_us", 16000, Variant::Clean);
    let u = &speech.utterances[0];
    let at = |ms: f64| (ms / 1000.0 * 16000.0) as usize;
    let audio = Audio::from_samples(
        speech.samples[at(u.start_ms - 200.0)..at(u.end_ms + 200.0)].to_vec(),
        16000,
    );
    let line = Line::new(u.text.clone(), 0.7, 0.7 + (u.end_ms - u.start_ms) / 1000.0);
    let stack = Stack::start(Script {
        lines: vec![line],
        replies: vec![
            ChatScript::text(["Great, ", "what is your budget?"]),
            ChatScript::text(["Two bedrooms, noted."]),
            ChatScript::text(["Parking is included."]),
        ],
        ..Script::default()
    })
    .await;
    let url = stack
        .server
        .ws_url("/ws/flexible?voice_input=true&text_input=true&voice_output=true&text_output=true");
    let scenario = Scenario::new(url, Dialect::Voxline)
        .silence(Duration::from_millis(500))
        .play(audio)
        .wait_for_text(Some("user"), Some(&u.text), LONG)
        .wait_for_audio(LONG)
        .wait_for_text(Some("bot"), Some("what is your budget"), LONG)
        .wait_until_quiet(LONG)
        // Text output only: the reply comes as words, with no audio.
        .mode_change([None, None, Some(false), None])
        .send_text("Two bedrooms please.")
        .wait_for_text(Some("bot"), Some("two bedrooms, noted"), LONG)
        .expect_no_audio(Duration::from_millis(500))
        // Voice again.
        .mode_change([None, None, Some(true), None])
        .send_text("And parking?")
        .wait_for_audio(LONG)
        .wait_for_text(Some("bot"), Some("parking is included"), LONG)
        .wait_until_quiet(LONG)
        .hangup();
    let report = callsim::run_scenario(scenario).await.expect("call");
    assert!(report.passed(), "{report}");
    assert!(report.call.is_clean(), "{:?}", report.call.violations);

    // The modes were acknowledged: at the start (all on), then each change.
    let modes: Vec<bool> = report.call.modes.iter().map(|m| m.voice_output).collect();
    assert_eq!(modes, [true, false, true], "{:?}", report.call.modes);

    // Audio heard: the first and the third replies only (10 ms a character).
    let chars = |s: &str| s.chars().filter(|c| !c.is_whitespace()).count() as f64;
    let expected = (chars("Great, what is your budget?") + chars("Parking is included.")) * 10.0;
    assert!(
        (report.call.bot_audio_ms - expected).abs() <= 60.0,
        "heard {} ms, expected {expected} ms",
        report.call.bot_audio_ms
    );

    // One history: the spoken turn, the written one, the last.
    let requests = stack.chat_messages();
    assert_eq!(requests.len(), 3);
    let contents: Vec<&str> = requests[2]
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        contents,
        [
            u.text.as_str(),
            "Great, what is your budget?",
            "Two bedrooms please.",
            "Two bedrooms, noted.",
            "And parking?"
        ]
    );
}
