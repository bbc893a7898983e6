//! The voice agent when things do not go to plan (issue 6): the caller talks over the
//! reply (it stops within a frame, and the history keeps only what was heard), the
//! model fails (the fallback line is said and the call goes on), a backchannel over the
//! reply ("mm-hmm") lets it go on, and the call beyond the limit is refused.

mod common;

use std::time::Duration;

use common::agent::{LONG, Script, Stack};
use voxline_agent::AgentConfig;
use voxline_fixtures::speech::{self, Variant};
use voxline_server::ServerConfig;
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::deepgram::Line;
use voxline_testkit::emulators::elevenlabs::ElevenLabsOptions;
use voxline_testkit::emulators::openai::{self, ChatScript};

/// Utterance `index` of the US fixture at 8 kHz with 200 ms around it, and the
/// recogniser's line for it when it starts at `at` seconds of the call's audio.
fn utterance(index: usize, at: f64) -> (Audio, Line, f64) {
    let speech = speech::load("caller_en_us", 8000, Variant::Clean);
    let u = &speech.utterances[index];
    let from = ((u.start_ms - 200.0) / 1000.0 * 8000.0) as usize;
    let to = ((u.end_ms + 200.0) / 1000.0 * 8000.0) as usize;
    let audio = Audio::from_samples(speech.samples[from..to].to_vec(), 8000);
    let length = audio.duration().as_secs_f64();
    (
        audio,
        Line::new(
            u.text.clone(),
            at + 0.2,
            at + 0.2 + (u.end_ms - u.start_ms) / 1000.0,
        ),
        length,
    )
}

const REPLY: [&str; 3] = [
    "Certainly, I can look into that for you. ",
    "We have several flats near the station with two bedrooms. ",
    "Most of them come with parking and a small garden at the back.",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barge_in_stops_the_reply_within_a_frame_and_keeps_what_was_heard() {
    let dialect = Dialect::Twilio;
    // The caller speaks at 0.5 s; the reply (5.6 s of speech at 40 ms a character)
    // starts about half a second after they stop, and they talk over it 1.5 s later.
    let (first, line1, len1) = utterance(0, 0.5);
    let second_at = 0.5 + len1 + 2.0;
    let (second, line2, len2) = utterance(1, second_at);
    let stack = Stack::start(Script {
        lines: vec![line1, line2],
        replies: vec![
            ChatScript::text(REPLY),
            ChatScript::text(["Noted, ", "what is your budget?"]),
        ],
        tts: ElevenLabsOptions {
            ms_per_char: 40,
            ..ElevenLabsOptions::default()
        },
        ..Script::default()
    })
    .await;
    let scenario = Scenario::new(stack.server.ws_url("/twilio"), dialect)
        .silence(Duration::from_millis(500))
        .play(first)
        .silence(Duration::from_secs_f64(2.0))
        .play_in_background(second)
        .expect_clear(Duration::from_secs(2))
        .wait_for_audio(LONG)
        .wait_until_quiet(LONG)
        .hangup();
    let report = callsim::run_scenario(scenario).await.expect("call");
    assert!(report.passed(), "{report}");
    let call = &report.call;
    assert!(call.is_clean(), "{:?}", call.violations);

    // One clear, during the caller's second utterance, and it dropped queued audio.
    assert_eq!(call.clears.len(), 1, "{:?}", call.clears);
    let clear = &call.clears[0];
    let second_ms = second_at * 1000.0;
    assert!(
        clear.at_ms > second_ms && clear.at_ms < second_ms + len2 * 1000.0,
        "clear at {} ms, the caller spoke from {second_ms} ms",
        clear.at_ms
    );
    // Nothing of the cut reply is heard after the clear: the line is silent from one
    // frame after it until the next reply, which follows the caller's second turn.
    let next_reply = call
        .turns
        .last()
        .and_then(|t| t.response_ms)
        .expect("a reply to the second turn");
    assert!(next_reply > second_ms + len2 * 1000.0, "{:?}", call.turns);
    let quiet = &call.heard[call.sample_at(clear.at_ms + 20.0)..call.sample_at(next_reply - 20.0)];
    assert!(
        quiet.iter().all(|s| *s == 0),
        "bot audio after the clear: {} non-silent samples",
        quiet.iter().filter(|s| **s != 0).count()
    );

    // The second request's history holds the reply only as far as it was heard: the
    // first clause (1.2 s of speech, confirmed by its mark) but not the rest.
    let requests = stack.chat_messages();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let roles: Vec<&str> = requests[1]
        .iter()
        .map(|m| m["role"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"], "{:?}", requests[1]);
    let heard = requests[1][1]["content"].as_str().unwrap_or_default();
    let full = REPLY.concat();
    assert!(!heard.is_empty(), "the caller heard the start of the reply");
    assert!(
        full.starts_with(heard) && heard.len() < full.trim_end().len(),
        "history holds {heard:?}, not a cut of {full:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_model_gets_the_fallback_line_and_the_call_goes_on() {
    let dialect = Dialect::Exotel;
    let (first, line1, len1) = utterance(0, 0.5);
    let second_at = 0.5 + len1 + 5.0;
    let (second, line2, _) = utterance(1, second_at);
    let fallback = "Sorry, one moment please.";
    let stack = Stack::start(Script {
        lines: vec![line1, line2],
        replies: vec![ChatScript::text(["All good now, ", "how can I help?"])],
        // The first turn's three tries fail (500s); the second turn is served.
        llm: openai::Config {
            faults: Faults::fail(500, 3),
            ..openai::Config::default()
        },
        config: AgentConfig {
            greeting: Some("Hi.".into()),
            fallback_line: fallback.into(),
            ..AgentConfig::default()
        },
        ..Script::default()
    })
    .await;
    let scenario = Scenario::new(stack.server.ws_url("/media"), dialect)
        .silence(Duration::from_millis(500))
        .play(first)
        .wait_for_audio(LONG)
        .wait_until_quiet(LONG)
        .silence(Duration::from_secs_f64(second_at - 0.5 - len1) - Duration::from_secs(3))
        .play(second)
        .wait_for_audio(LONG)
        .wait_until_quiet(LONG)
        .hangup();
    let report = callsim::run_scenario(scenario).await.expect("call");
    assert!(report.passed(), "{report}");
    // Three failed tries, then the second turn's request.
    assert_eq!(stack.llm.requests_to("/v1/chat/completions").len(), 4);
    // Heard: the greeting, the fallback line, the second reply (10 ms per character).
    let chars = |s: &str| s.chars().filter(|c| !c.is_whitespace()).count() as f64;
    let expected = (chars("Hi.") + chars(fallback) + chars("All good now, how can I help?")) * 10.0;
    assert!(
        (report.call.bot_audio_ms - expected).abs() <= 60.0,
        "heard {} ms, expected {expected} ms",
        report.call.bot_audio_ms
    );
    // The fallback line is in the history as the bot's turn, so the model knows.
    let last = stack.chat_messages().pop().expect("a request");
    let contents: Vec<&str> = last
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default())
        .collect();
    assert!(contents.contains(&fallback), "{contents:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_call_beyond_the_limit_is_refused() {
    let (audio, line, _) = utterance(0, 0.5);
    let stack = Stack::start(Script {
        lines: vec![line],
        server: ServerConfig {
            max_calls: 1,
            ..ServerConfig::default()
        },
        ..Script::default()
    })
    .await;
    let url = stack.server.ws_url("/twilio");
    let first = Scenario::new(url.clone(), Dialect::Twilio)
        .silence(Duration::from_millis(500))
        .play(audio)
        .wait_for_audio(LONG)
        .wait_until_quiet(LONG)
        .hangup();
    let first = tokio::spawn(callsim::run_scenario(first));
    // Wait until the first call holds the only slot.
    for _ in 0..100 {
        if stack.server.server.active_calls() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = callsim::run_scenario(Scenario::new(url, Dialect::Twilio).hangup()).await;
    let error = second.expect_err("the second call is refused").to_string();
    assert!(error.contains("503"), "{error}");
    let first = first.await.expect("task").expect("first call");
    assert!(first.passed(), "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backchannel_over_the_reply_does_not_stop_it() {
    let dialect = Dialect::Smartflo;
    let (first, line1, len1) = utterance(0, 0.5);
    // 0.7 s of the caller's voice over the reply, recognised as "Mm-hmm." by 0.5 s:
    // before the transcript rule stops waiting for words (0.8 s of speech).
    let backchannel_at = 0.5 + len1 + 2.0;
    let speech = speech::load("caller_en_us", 8000, Variant::Clean);
    let u = &speech.utterances[1];
    let from = (u.start_ms / 1000.0 * 8000.0) as usize;
    let mm = Audio::from_samples(speech.samples[from..from + 5600].to_vec(), 8000);
    let stack = Stack::start(Script {
        lines: vec![
            line1,
            Line::new("Mm-hmm.", backchannel_at + 0.1, backchannel_at + 0.5),
        ],
        replies: vec![ChatScript::text(REPLY)],
        tts: ElevenLabsOptions {
            ms_per_char: 40,
            ..ElevenLabsOptions::default()
        },
        ..Script::default()
    })
    .await;
    let scenario = Scenario::new(stack.server.ws_url("/smartflo/audio"), dialect)
        .silence(Duration::from_millis(500))
        .play(first)
        .silence(Duration::from_secs(2))
        .play(mm)
        .wait_until_quiet(LONG)
        .hangup();
    let report = callsim::run_scenario(scenario).await.expect("call");
    assert!(report.passed(), "{report}");
    assert!(report.call.clears.is_empty(), "{:?}", report.call.clears);
    // The whole reply was heard (40 ms a character), and "mm-hmm" was no turn.
    let chars = REPLY
        .concat()
        .chars()
        .filter(|c| !c.is_whitespace())
        .count() as f64;
    assert!(
        (report.call.bot_audio_ms - chars * 40.0).abs() <= 100.0,
        "heard {} ms of {} ms",
        report.call.bot_audio_ms,
        chars * 40.0
    );
    assert_eq!(stack.llm.requests_to("/v1/chat/completions").len(), 1);
}
