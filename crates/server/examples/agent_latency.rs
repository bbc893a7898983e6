//! The agent's own turn latency with the provider emulators in the same process:
//! Deepgram, OpenAI chat and ElevenLabs emulators at zero latency, an agent server and
//! simulated Twilio callers, all on one current-thread runtime.
//!
//! With everything on one thread, a request written to an emulator is readable at once
//! and no process waits for another CPU to wake up, so the end of turn to first frame
//! time is what Voxline does plus the emulators' own (small) work. `cargo xtask
//! load-agent` runs it pinned to one CPU next to its cross-process load runs.
//!
//! Each call is silent 0.5 s, then says the first utterance of the `caller_en_us`
//! fixture `--turns` times, one every 4 s; calls start spread over one period so no two
//! turns end together. The recogniser's final comes 300 ms after the speech ends (its
//! endpointing and processing), after the agent's VAD has heard its 200 ms pause, so
//! the final is what ends each turn. Prints one JSON line of percentiles (ms) from the
//! server's `turn_latency` events.
//!
//! ```text
//! cargo build --release -p voxline-server --example agent_latency
//! taskset -c 0 target/release/examples/agent_latency --calls 10 --turns 20
//! ```

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use voxline_agent::brain::LlmBrain;
use voxline_agent::{AgentConfig, AgentSetup, Providers};
use voxline_deepgram::{Deepgram, DeepgramConfig};
use voxline_elevenlabs::{ElevenLabs, ElevenLabsConfig};
use voxline_fixtures::speech::{self, Variant};
use voxline_openai::{ApiConfig, ChatConfig, OpenAiChat};
use voxline_server::{EventKind, ServerConfig};
use voxline_testkit::callsim::{self, Audio, Dialect, Percentiles, Scenario};
use voxline_testkit::emulators::deepgram::{self, DeepgramEmulator, Line};
use voxline_testkit::emulators::elevenlabs::{self, ElevenLabsEmulator, ElevenLabsOptions};
use voxline_testkit::emulators::openai::{self, ChatScript, OpenAiEmulator};

/// Silence before the first utterance, seconds.
const LEAD_IN: f64 = 0.5;
/// One turn, seconds: the utterance (2.6 s with its padding), the reply and quiet.
const PERIOD: f64 = 4.0;
/// How long after the speech ends the recogniser's final comes, seconds.
const FINAL_AFTER: f64 = 0.3;
/// What the model says each turn.
const REPLY: [&str; 2] = ["Sure, ", "I can help."];

fn parse_args() -> Result<(usize, usize), String> {
    let (mut calls, mut turns) = (10, 20);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = value
            .parse::<usize>()
            .map_err(|e| format!("{flag} {value}: {e}"))?;
        match flag.as_str() {
            "--calls" => calls = number.max(1),
            "--turns" => turns = number.max(1),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((calls, turns))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (calls, turns) = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("agent_latency: {e}");
            std::process::exit(2);
        }
    };
    voxline_core::install_tls();

    // The utterance with 200 ms around it, and where the recogniser hears it.
    let rate = Dialect::Twilio.default_format().sample_rate;
    let fixture = speech::load("caller_en_us", rate, Variant::Clean);
    let u = &fixture.utterances[0];
    let sample = |ms: f64| (ms / 1000.0 * f64::from(rate)) as usize;
    let audio = Audio::from_samples(
        fixture.samples[sample(u.start_ms - 200.0)..sample(u.end_ms + 200.0)].to_vec(),
        rate,
    );
    let spoken = (u.end_ms - u.start_ms) / 1000.0;
    let lines = (0..turns)
        .map(|turn| {
            let start = LEAD_IN + turn as f64 * PERIOD + 0.2;
            Line::new(u.text.clone(), start, start + spoken + FINAL_AFTER)
        })
        .collect();

    let stt = DeepgramEmulator::start(deepgram::Options::with_script(lines)).await;
    let llm = OpenAiEmulator::start(openai::Config {
        chat: vec![ChatScript::text(REPLY)],
        ..openai::Config::default()
    })
    .await;
    let tts = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let chat = OpenAiChat::new(ChatConfig::with_api(
        ApiConfig::new(llm.base_url()).api_key(openai::API_KEY),
        "gpt-4.1-mini",
    ))
    .unwrap_or_else(|e| panic!("chat client: {e}"));
    let providers = Providers {
        stt: Some(Arc::new(Deepgram::new(
            DeepgramConfig::default()
                .api_key(deepgram::Options::default().api_key)
                .base_url(stt.ws_url()),
        ))),
        brain: Some(Arc::new(LlmBrain::new(Box::new(chat)))),
        tts: Some(Arc::new(ElevenLabs::new(
            ElevenLabsConfig::default()
                .api_key(elevenlabs::DEFAULT_API_KEY)
                .base_url(tts.http_url()),
        ))),
    };
    let setup = AgentSetup {
        config: Arc::new(AgentConfig::default()),
        providers,
    };
    let config = ServerConfig {
        max_calls: calls + 10,
        ..ServerConfig::default()
    };
    let server = voxline_server::agent::agent_server(config, setup, Registry::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let address = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("address: {e}"));
    let mut bus = server.bus().subscribe();
    tokio::spawn(server.serve(listener, std::future::pending()));

    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(async move {
        let (mut turns, mut lagged) = (Vec::new(), 0u64);
        loop {
            let received = tokio::select! {
                _ = &mut stopped => return (turns, lagged),
                received = bus.recv() => received,
            };
            match received {
                Ok(event) => {
                    if let EventKind::TurnLatency { .. } = &event.kind {
                        turns.push(serde_json::to_value(&event.kind).unwrap_or(Value::Null));
                    }
                }
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => return (turns, lagged),
            }
        }
    });

    let url = format!("ws://{address}/twilio");
    let gap = Duration::from_secs_f64(PERIOD - audio.duration().as_secs_f64());
    let mut tasks = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut scenario = Scenario::new(url.clone(), Dialect::Twilio)
            .named(format!("call {i}"))
            .silence(Duration::from_secs_f64(LEAD_IN));
        for _ in 0..turns {
            scenario = scenario.play(audio.clone()).silence(gap);
        }
        let scenario = scenario.hangup();
        let delay = Duration::from_secs_f64(PERIOD * i as f64 / calls as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            callsim::run_scenario(scenario).await
        }));
    }
    let mut failures = 0usize;
    for task in tasks {
        match task.await {
            Ok(Ok(report)) => failures += report.failures().count(),
            Ok(Err(e)) => {
                eprintln!("agent_latency: call error: {e}");
                failures += 1;
            }
            Err(e) => {
                eprintln!("agent_latency: call task: {e}");
                failures += 1;
            }
        }
    }
    // The last turns' events are on the bus by now; give them a moment, then stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop.send(());
    let (events, lagged) = collector.await.unwrap_or_else(|e| panic!("collector: {e}"));
    let field = |name: &str| -> Vec<f64> {
        events
            .iter()
            .filter_map(|t| t.get(name).and_then(Value::as_f64))
            .collect()
    };
    let report = json!({
        "calls": calls,
        "turns_per_call": turns,
        "failures": failures,
        "events_lagged": lagged,
        "turn_events": events.len(),
        "end_of_turn_to_first_frame": percentiles(field("end_of_turn_to_first_frame_ms")),
        "stt_final_to_first_frame": percentiles(field("stt_final_to_first_frame_ms")),
        "llm_ttfb": percentiles(field("llm_ttfb_ms")),
        "tts_ttfb": percentiles(field("tts_ttfb_ms")),
        "framework": percentiles(field("framework_ms")),
    });
    println!("{report}");
}

/// The distribution of `values` (ms) as JSON.
fn percentiles(values: Vec<f64>) -> Value {
    serde_json::to_value(Percentiles::of_millis(&values)).unwrap_or(Value::Null)
}
