//! The per-call runtime with in-memory providers and a recording call: text turns,
//! modes switched mid-call, DTMF to the brain, the `end_call` tool, idle prompts and
//! the hang-up after them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use voxline_agent::brain::Brain;
use voxline_agent::config::END_CALL_TOOL;
use voxline_agent::{
    Agent, AgentConfig, AgentEvent, AgentSetup, CallOutput, CallStart, ModeChange, Modes, Providers,
};
use voxline_audio::AudioFormat;
use voxline_core::{
    BoxFuture, ChatMessage, FinishReason, LlmEvent, LlmStream, ProviderError, RequestId, Role,
    SpeechToText, SttConfig, SttSession, TextToSpeech, ToolCall, TtsConfig, TtsEvent, TtsInput,
    TtsSession,
};

/// A brain answering from a script, recording what it was asked.
#[derive(Default)]
struct ScriptedBrain {
    replies: Mutex<Vec<(String, Option<ToolCall>)>>,
    asked: Mutex<Vec<Vec<ChatMessage>>>,
}

impl Brain for ScriptedBrain {
    fn name(&self) -> &str {
        "scripted"
    }

    fn reply(&self, history: Vec<ChatMessage>) -> BoxFuture<'_, Result<LlmStream, ProviderError>> {
        self.asked.lock().expect("lock").push(history);
        let (text, tool) = {
            let mut replies = self.replies.lock().expect("lock");
            if replies.len() > 1 {
                replies.remove(0)
            } else {
                replies.first().cloned().unwrap_or_default()
            }
        };
        Box::pin(async move {
            let (stream, tx) = LlmStream::channel(8);
            tokio::spawn(async move {
                let _ = tx.send(LlmEvent::TextDelta(text)).await;
                if let Some(call) = tool {
                    let _ = tx.send(LlmEvent::ToolCall(call)).await;
                }
                let _ = tx.send(LlmEvent::Finished(FinishReason::Stop)).await;
            });
            Ok(stream)
        })
    }
}

/// Speech: each request's text comes back as its bytes, then `Done`; a request whose
/// text contains `stall_on` never gets an answer (a synthesiser that hangs).
#[derive(Default)]
struct EchoTts {
    stall_on: Option<&'static str>,
}

impl TextToSpeech for EchoTts {
    fn name(&self) -> &'static str {
        "echo-tts"
    }

    fn connect(&self, _config: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>> {
        let stall_on = self.stall_on;
        Box::pin(async move {
            let (session, mut peer) = TtsSession::channel("echo-tts", 32);
            tokio::spawn(async move {
                let mut texts: HashMap<RequestId, String> = HashMap::new();
                while let Some(input) = peer.recv().await {
                    match input {
                        TtsInput::Text { request, text } => {
                            texts.entry(request).or_default().push_str(&text)
                        }
                        TtsInput::Finish { request } => {
                            let text = texts.remove(&request).unwrap_or_default();
                            if stall_on.is_some_and(|s| text.contains(s)) {
                                continue;
                            }
                            let audio = Bytes::from(text.into_bytes());
                            peer.send(TtsEvent::Audio { request, audio }).await;
                            peer.send(TtsEvent::Done { request }).await;
                        }
                        TtsInput::Cancel { request } => {
                            peer.send(TtsEvent::Done { request }).await;
                        }
                        _ => {}
                    }
                }
            });
            Ok(session)
        })
    }
}

/// A recogniser that hears nothing (the caller stays silent).
struct DeafStt;

impl SpeechToText for DeafStt {
    fn name(&self) -> &'static str {
        "deaf"
    }

    fn connect(&self, _config: SttConfig) -> BoxFuture<'_, Result<SttSession, ProviderError>> {
        Box::pin(async {
            let (session, mut peer) = SttSession::channel("deaf", 64);
            tokio::spawn(async move { while peer.recv().await.is_some() {} });
            Ok(session)
        })
    }
}

/// The call as the agent drives it: audio plays at once (nothing stays queued).
#[derive(Default)]
struct Recorder {
    played: Vec<u8>,
    marks: Vec<String>,
    clears: usize,
    hung_up: bool,
    texts: Vec<(Role, String)>,
    events: Vec<AgentEvent>,
}

impl Recorder {
    fn heard(&self) -> String {
        String::from_utf8_lossy(&self.played).into_owned()
    }
}

impl CallOutput for Recorder {
    fn play(&mut self, audio: &[u8]) {
        self.played.extend_from_slice(audio);
    }
    fn mark(&mut self, name: String) {
        self.marks.push(name);
    }
    fn clear(&mut self, _reason: &str) {
        self.clears += 1;
    }
    fn hangup(&mut self) {
        self.hung_up = true;
    }
    fn played(&self) -> Duration {
        Duration::ZERO
    }
    fn is_playing(&self) -> bool {
        false
    }
    fn has_text_channel(&self) -> bool {
        true
    }
    fn text(&mut self, role: Role, text: &str, _is_final: bool) {
        self.texts.push((role, text.to_owned()));
    }
    fn report(&mut self, event: AgentEvent) {
        self.events.push(event);
    }
}

fn setup(brain: Arc<ScriptedBrain>, config: AgentConfig) -> AgentSetup {
    AgentSetup {
        config: Arc::new(config),
        providers: Providers {
            stt: Some(Arc::new(DeafStt)),
            brain: Some(brain),
            tts: Some(Arc::new(EchoTts::default())),
        },
    }
}

fn start(setup: &AgentSetup, params: serde_json::Value) -> Agent {
    Agent::start(
        setup,
        CallStart {
            format: AudioFormat::MULAW_8K,
            params: params.as_object().cloned().unwrap_or_default(),
        },
    )
    .expect("agent")
}

/// Lets the agent act on its worker's reports until `done` holds (or 5 s pass).
async fn run_until(agent: &mut Agent, out: &mut Recorder, done: impl Fn(&Recorder) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done(out) {
        let woke =
            tokio::time::timeout_at(deadline, std::future::poll_fn(|cx| agent.poll_wake(cx))).await;
        assert!(
            woke.is_ok(),
            "timed out; heard {:?}, texts {:?}",
            out.heard(),
            out.texts
        );
        agent.on_wake(out);
    }
}

fn silence(ms: usize) -> Bytes {
    Bytes::from(vec![0xFF; ms * 8])
}

#[tokio::test]
async fn text_turns_are_answered_in_text_and_modes_switch_mid_call() {
    let brain = Arc::new(ScriptedBrain::default());
    *brain.replies.lock().expect("lock") = vec![
        ("Written answer.".into(), None),
        ("Spoken answer.".into(), None),
    ];
    let setup = setup(Arc::clone(&brain), AgentConfig::default());
    let mut agent = start(
        &setup,
        serde_json::json!({"voice_input": false, "voice_output": "false"}),
    );
    assert!(!agent.modes().voice_output && agent.modes().text_output);
    let mut out = Recorder::default();
    agent.on_text("Hello there", &mut out);
    run_until(&mut agent, &mut out, |o| {
        o.texts
            .iter()
            .any(|(r, t)| *r == Role::Assistant && t == "Written answer.")
    })
    .await;
    assert!(out.played.is_empty(), "text output only: nothing spoken");

    // Switch to voice output: the next reply is spoken, and the written one is in the
    // history the brain sees.
    agent.change_modes(
        ModeChange {
            voice_output: Some(true),
            ..ModeChange::default()
        },
        &mut out,
    );
    assert!(agent.modes().voice_output);
    agent.on_text("Say it", &mut out);
    run_until(&mut agent, &mut out, |o| o.heard() == "Spoken answer.").await;
    assert_eq!(out.marks.len(), 1, "a mark after the segment");
    let asked = brain.asked.lock().expect("lock").clone();
    let last: Vec<(&Role, &str)> = asked[1]
        .iter()
        .map(|m| (&m.role, m.content.as_str()))
        .collect();
    assert_eq!(
        last,
        [
            (&Role::User, "Hello there"),
            (&Role::Assistant, "Written answer."),
            (&Role::User, "Say it")
        ]
    );
}

#[tokio::test]
async fn key_presses_reach_the_brain_as_text_and_end_call_hangs_up() {
    let brain = Arc::new(ScriptedBrain::default());
    *brain.replies.lock().expect("lock") = vec![(
        "Thank you, goodbye.".into(),
        Some(ToolCall {
            id: "call_1".into(),
            name: END_CALL_TOOL.into(),
            arguments: "{}".into(),
        }),
    )];
    let setup = setup(Arc::clone(&brain), AgentConfig::default());
    let mut agent = start(&setup, serde_json::json!({}));
    let mut out = Recorder::default();
    for digit in ['4', '2'] {
        agent.on_dtmf(digit, &mut out);
    }
    agent.on_dtmf('#', &mut out);
    run_until(&mut agent, &mut out, |o| o.hung_up).await;
    assert_eq!(
        out.heard(),
        "Thank you, goodbye.",
        "the goodbye plays before the hang-up"
    );
    let asked = brain.asked.lock().expect("lock").clone();
    assert_eq!(
        asked[0].last().map(|m| m.content.as_str()),
        Some("[The caller pressed the keys: 42]")
    );
}

#[tokio::test]
async fn a_silent_caller_gets_the_idle_prompts_then_a_goodbye_and_a_hang_up() {
    let brain = Arc::new(ScriptedBrain::default());
    let config = AgentConfig {
        greeting: Some("Hello {{name}}.".into()),
        idle_prompt: Some("Still there?".into()),
        idle_after: Duration::from_millis(150),
        idle_prompts: 2,
        goodbye: Some("Bye.".into()),
        modes: Modes::PHONE,
        ..AgentConfig::default()
    };
    let setup = setup(Arc::clone(&brain), config);
    let mut agent = start(&setup, serde_json::json!({"name": "Asha"}));
    let mut out = Recorder::default();
    agent.on_audio(&silence(20), &mut out);
    run_until(&mut agent, &mut out, |o| o.hung_up).await;
    assert_eq!(out.heard(), "Hello Asha.Still there?Still there?Bye.");
    assert!(
        brain.asked.lock().expect("lock").is_empty(),
        "no turn reached the brain"
    );
}

#[tokio::test]
async fn a_call_needing_a_missing_provider_is_refused_with_the_reason() {
    let setup = AgentSetup {
        config: Arc::new(AgentConfig::default()),
        providers: Providers {
            brain: Some(Arc::new(ScriptedBrain::default())),
            ..Providers::default()
        },
    };
    let error = Agent::start(
        &setup,
        CallStart {
            format: AudioFormat::MULAW_8K,
            params: Default::default(),
        },
    )
    .expect_err("no speech providers");
    assert_eq!(
        error.to_string(),
        "cannot serve the call: no speech-to-text, no text-to-speech configured"
    );
}

#[tokio::test]
async fn a_slow_fallback_synthesis_does_not_hold_up_the_callers_turn() {
    // The fallback line is synthesised after the greeting while the worker is idle; a
    // synthesiser that never finishes it must not keep the next turn waiting.
    let brain = Arc::new(ScriptedBrain::default());
    *brain.replies.lock().expect("lock") = vec![("Answered.".into(), None)];
    let mut setup = setup(
        Arc::clone(&brain),
        AgentConfig {
            greeting: Some("Hi.".into()),
            fallback_line: "Sorry, trouble.".into(),
            ..AgentConfig::default()
        },
    );
    setup.providers.tts = Some(Arc::new(EchoTts {
        stall_on: Some("trouble"),
    }));
    let mut agent = start(&setup, serde_json::json!({}));
    let mut out = Recorder::default();
    run_until(&mut agent, &mut out, |o| o.heard() == "Hi.").await;
    agent.on_text("Are you there?", &mut out);
    run_until(&mut agent, &mut out, |o| o.heard() == "Hi.Answered.").await;
}
