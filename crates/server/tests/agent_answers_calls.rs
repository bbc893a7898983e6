//! The voice agent end to end over loopback (issue 6): callsim places the call in each
//! carrier dialect, the agent server answers with the Deepgram, OpenAI chat and
//! ElevenLabs emulators behind it. The greeting is heard, the caller's fixture
//! utterance is transcribed (scripted), the reply is streamed through speech synthesis
//! and reaches the caller, and the history holds what was said.

mod common;

use std::time::Duration;

use common::agent::{LONG, Script, Stack};
use voxline_agent::AgentConfig;
use voxline_fixtures::speech::{self, Variant};
use voxline_server::EventKind;
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario};
use voxline_testkit::emulators::deepgram::Line;

/// The agent server's endpoints: a path per carrier, or `/ws` with the dialect found
/// from the first frames.
fn path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Exotel => "/media",
        Dialect::Smartflo => "/smartflo/audio",
        Dialect::Twilio => "/ws/stream/CA00000000000000000000000000000001",
        _ => "/ws",
    }
}

/// Silence before the caller speaks: the greeting plays in it.
const LEAD_IN: Duration = Duration::from_secs(3);

/// The first utterance of the US fixture at the dialect's rate, with 200 ms around it,
/// and the recogniser's script for it when it starts at `at` in the call's audio.
fn utterance(dialect: Dialect, at: Duration) -> (Audio, Line, String) {
    let rate = dialect.default_format().sample_rate;
    let speech = speech::load("caller_en_us", rate, Variant::Clean);
    let u = &speech.utterances[0];
    let from = ((u.start_ms - 200.0).max(0.0) / 1000.0 * f64::from(rate)) as usize;
    let to = ((u.end_ms + 200.0) / 1000.0 * f64::from(rate)) as usize;
    let audio = Audio::from_samples(
        speech.samples[from..to.min(speech.samples.len())].to_vec(),
        rate,
    );
    let start = at.as_secs_f64() + 0.2;
    let end = start + (u.end_ms - u.start_ms) / 1000.0;
    (audio, Line::new(u.text.clone(), start, end), u.text.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_in_each_dialect() {
    let runs = Dialect::ALL.map(|dialect| async move {
        let (audio, line, said) = utterance(dialect, LEAD_IN);
        let stack = Stack::start(Script {
            lines: vec![line],
            config: AgentConfig {
                system_prompt: Some("You are a helpful estate agent.".into()),
                greeting: Some("Hello {{name}}, thanks for calling.".into()),
                ..AgentConfig::default()
            },
            ..Script::default()
        })
        .await;
        let mut bus = stack.server.server.bus().subscribe();
        let scenario = Scenario::new(stack.server.ws_url(path(dialect)), dialect)
            .param("name", "Asha")
            .wait_for_audio(Duration::from_secs(5))
            .silence(LEAD_IN - Duration::from_millis(100))
            .play(audio)
            .wait_for_audio(LONG)
            .wait_until_quiet(LONG)
            .hangup();
        let report = callsim::run_scenario(scenario)
            .await
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert!(report.passed(), "{dialect}: {report}");
        assert!(
            report.call.is_clean(),
            "{dialect}: {:?}",
            report.call.violations
        );

        // The brain got the greeting as the bot's turn and the caller's words after it.
        let requests = stack.chat_messages();
        assert_eq!(requests.len(), 1, "{dialect}: {requests:?}");
        let roles: Vec<&str> = requests[0]
            .iter()
            .map(|m| m["role"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(roles, ["system", "assistant", "user"], "{dialect}");
        assert_eq!(
            requests[0][1]["content"], "Hello Asha, thanks for calling.",
            "{dialect}: the greeting fills the lead's name"
        );
        assert_eq!(requests[0][2]["content"], said.as_str(), "{dialect}");

        // The caller heard both: ElevenLabs' emulator makes 10 ms of tone per
        // non-space character, so the audio heard is the characters spoken.
        let chars = |s: &str| s.chars().filter(|c| !c.is_whitespace()).count() as f64;
        let expected = (chars("Hello Asha, thanks for calling.")
            + chars("Sure, I can help with that. What is your budget?"))
            * 10.0;
        let heard = report.call.bot_audio_ms;
        assert!(
            (heard - expected).abs() <= 60.0,
            "{dialect}: heard {heard} ms of bot audio, expected {expected} ms"
        );
        // The event bus carried the transcripts both ways, the turn's latency marks and
        // the call's usage; Prometheus has the turn and its stages.
        let mut kinds = Vec::new();
        while let Ok(event) = bus.try_recv() {
            kinds.push(event.kind.clone());
        }
        let said_on_bus = kinds.iter().any(|k| {
            matches!(k, EventKind::Transcript { speaker, text, is_final: true }
                if speaker == "caller" && text == &said)
        });
        assert!(said_on_bus, "{dialect}: {kinds:?}");
        assert!(
            kinds
                .iter()
                .any(|k| matches!(k, EventKind::Transcript { speaker, .. } if speaker == "bot")),
            "{dialect}"
        );
        let latency = kinds.iter().find_map(|k| match k {
            EventKind::TurnLatency {
                end_of_turn_to_first_frame_ms,
                llm_first_token_ms,
                tts_first_audio_ms,
                llm_ttfb_ms,
                tts_ttfb_ms,
                framework_ms,
                ..
            } => Some([
                *end_of_turn_to_first_frame_ms,
                *llm_first_token_ms,
                *tts_first_audio_ms,
                *llm_ttfb_ms,
                *tts_ttfb_ms,
                *framework_ms,
            ]),
            _ => None,
        });
        let [
            Some(total),
            Some(llm),
            Some(tts),
            Some(llm_ttfb),
            Some(tts_ttfb),
            Some(own),
        ] = latency.expect("a turn-latency event")
        else {
            panic!("{dialect}: missing stages in {latency:?}");
        };
        assert!(
            llm <= tts && tts <= total,
            "{dialect}: stages out of order {latency:?}"
        );
        // The providers' own times fall inside their stages, and Voxline's share is
        // what is left of the whole.
        assert!(
            llm_ttfb > 0.0 && llm_ttfb <= llm && tts_ttfb > 0.0 && tts_ttfb <= tts,
            "{dialect}: {latency:?}"
        );
        assert!(
            (own + llm_ttfb + tts_ttfb - total).abs() < 1e-3,
            "{dialect}: {latency:?}"
        );
        assert!(
            kinds.iter().any(
                |k| matches!(k, EventKind::Usage { tts_characters, .. } if *tts_characters > 0)
            ),
            "{dialect}: {kinds:?}"
        );
        let (_, metrics) = common::get(stack.server.addr, "/metrics").await;
        for line in [
            "voxline_agent_turn_latency_seconds_count 1",
            "voxline_agent_stage_latency_seconds_count{stage=\"first_frame\"} 1",
        ] {
            assert!(
                metrics.contains(line),
                "{dialect}: no {line:?} in\n{metrics}"
            );
        }
        // One mark per segment, each echoed: greeting (1), reply (2: first clause,
        // then the rest). Vonage has no marks on the wire.
        if dialect != Dialect::Vonage {
            assert!(
                report.call.marks.len() >= 3,
                "{dialect}: {:?}",
                report.call.marks
            );
        }
    });
    futures_util::future::join_all(runs).await;
}
