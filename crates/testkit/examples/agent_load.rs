//! The driver of `cargo xtask load-agent`: the provider emulators (Deepgram, OpenAI
//! chat, ElevenLabs) and the simulated callers, in one process, against an agent
//! server running as its own process.
//!
//! 1. Starts the three emulators at zero latency and prints one JSON line: the
//!    environment the agent server needs to use them (`{"env": {NAME: value}}`).
//! 2. Waits for a line on stdin (the server is up), subscribes to the server's
//!    `/events` stream and places `--calls` calls in `--dialect`, their starts spread
//!    evenly over `--ramp` seconds. Each call is silent for 0.5 s, then says the first
//!    utterance of the `caller_en_us` fixture `--turns` times, one every `PERIOD`
//!    (the Deepgram emulator recognises it at those audio times), and hangs up.
//! 3. Prints one JSON line: failures, callsim's turn latencies and the server's exact
//!    `turn_latency` events, as percentiles.
//!
//! ```text
//! cargo run --release -p voxline-testkit --example agent_load -- \
//!     --server 127.0.0.1:7860 --calls 10 --turns 5 --ramp 4
//! ```

use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::callsim::{self, Audio, Dialect, Percentiles, Scenario};
use voxline_testkit::emulators::deepgram::{self, DeepgramEmulator, Line};
use voxline_testkit::emulators::elevenlabs::{self, ElevenLabsEmulator, ElevenLabsOptions};
use voxline_testkit::emulators::openai::{self, ChatScript, OpenAiEmulator};

/// Silence before the first utterance.
const LEAD_IN: f64 = 0.5;
/// One turn: the utterance (2.6 s with its padding), the VAD's stop (0.5 s), the reply
/// (17 characters: 170 ms of tone) and some quiet.
const PERIOD: f64 = 4.0;
/// What the model says each turn (the last script repeats).
const REPLY: [&str; 2] = ["Sure, ", "I can help."];

struct Args {
    server: String,
    calls: usize,
    turns: usize,
    ramp: f64,
    dialect: Dialect,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: String::new(),
        calls: 10,
        turns: 5,
        ramp: PERIOD,
        dialect: Dialect::Twilio,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--server" => args.server = value,
            "--calls" => args.calls = value.parse().map_err(|e| bad(&e))?,
            "--turns" => args.turns = value.parse().map_err(|e| bad(&e))?,
            "--ramp" => args.ramp = value.parse().map_err(|e| bad(&e))?,
            "--dialect" => args.dialect = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if args.server.is_empty() {
        return Err("--server HOST:PORT is required".into());
    }
    Ok(args)
}

fn path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Exotel => "/media",
        Dialect::Smartflo => "/smartflo/audio",
        Dialect::Twilio => "/twilio",
        _ => "/ws",
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("agent_load: {e}");
            std::process::exit(2);
        }
    };

    // The utterance with 200 ms around it, at the dialect's rate, and where the
    // recogniser hears it in each turn.
    let rate = args.dialect.default_format().sample_rate;
    let fixture = speech::load("caller_en_us", rate, Variant::Clean);
    let u = &fixture.utterances[0];
    let sample = |ms: f64| (ms / 1000.0 * f64::from(rate)) as usize;
    let audio = Audio::from_samples(
        fixture.samples[sample(u.start_ms - 200.0)..sample(u.end_ms + 200.0)].to_vec(),
        rate,
    );
    let utterance = audio.duration().as_secs_f64();
    let lines = (0..args.turns)
        .map(|turn| {
            let start = LEAD_IN + turn as f64 * PERIOD + 0.2;
            Line::new(
                u.text.clone(),
                start,
                start + (u.end_ms - u.start_ms) / 1000.0,
            )
        })
        .collect();

    let stt = DeepgramEmulator::start(deepgram::Options::with_script(lines)).await;
    let llm = OpenAiEmulator::start(openai::Config {
        chat: vec![ChatScript::text(REPLY)],
        ..openai::Config::default()
    })
    .await;
    let tts = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let env = json!({ "env": {
        "DEEPGRAM_API_KEY": deepgram::Options::default().api_key,
        "DEEPGRAM_BASE_URL": stt.ws_url(),
        "OPENAI_API_KEY": openai::API_KEY,
        "OPENAI_BASE_URL": llm.base_url(),
        "ELEVENLABS_API_KEY": elevenlabs::DEFAULT_API_KEY,
        "ELEVENLABS_BASE_URL": tts.http_url(),
    }});
    println!("{env}");

    // The server is started by whoever runs us; a line on stdin says it is up.
    let mut go = String::new();
    if std::io::stdin().lock().read_line(&mut go).is_err() {
        eprintln!("agent_load: no go line on stdin");
        std::process::exit(2);
    }

    let events = Arc::new(Mutex::new(Events::default()));
    let subscriber = tokio::spawn(subscribe(args.server.clone(), events.clone()));
    // Let the subscription settle before the first call.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let url = format!("ws://{}{}", args.server, path(args.dialect));
    let gap = Duration::from_secs_f64(PERIOD - utterance);
    let mut calls = Vec::with_capacity(args.calls);
    for i in 0..args.calls {
        let mut scenario = Scenario::new(url.clone(), args.dialect)
            .named(format!("call {i}"))
            .silence(Duration::from_secs_f64(LEAD_IN));
        for _ in 0..args.turns {
            scenario = scenario.play(audio.clone()).silence(gap);
        }
        let scenario = scenario.hangup();
        let delay = Duration::from_secs_f64(args.ramp * i as f64 / args.calls as f64);
        calls.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            callsim::run_scenario(scenario).await
        }));
    }

    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut fail = |why: String| *failures.entry(why).or_default() += 1;
    let mut turn_latencies = Vec::new();
    let (mut unanswered, mut violations, mut completed) = (0usize, 0usize, 0usize);
    for call in calls {
        match call.await {
            Ok(Ok(report)) => {
                completed += 1;
                for step in report.failures() {
                    fail(format!("step {} failed: {}", step.step, step.detail));
                }
                violations += report.call.violations.len();
                for turn in &report.call.turns {
                    match turn.latency_ms {
                        Some(ms) => turn_latencies.push(ms),
                        None => unanswered += 1,
                    }
                }
            }
            Ok(Err(e)) => fail(format!("call error: {e}")),
            Err(e) => fail(format!("call task: {e}")),
        }
    }
    // The last turns' events are on their way.
    tokio::time::sleep(Duration::from_millis(500)).await;
    subscriber.abort();
    let events = std::mem::take(&mut *events.lock().unwrap_or_else(|e| e.into_inner()));

    let field = |name: &str| -> Vec<f64> {
        events
            .turns
            .iter()
            .filter_map(|t| t.get(name).and_then(Value::as_f64))
            .collect()
    };
    let report = json!({
        "calls": args.calls,
        "turns_per_call": args.turns,
        "dialect": args.dialect.to_string(),
        "completed": completed,
        "failures": failures.values().sum::<usize>(),
        "failure_kinds": failures,
        "violations": violations,
        "callsim_turns": turn_latencies.len(),
        "callsim_unanswered_turns": unanswered,
        "callsim_turn_latency": percentiles(turn_latencies),
        "server_turn_events": events.turns.len(),
        "server_error_events": events.errors,
        "events_lagged": events.lagged,
        "end_of_turn_to_first_frame": percentiles(field("end_of_turn_to_first_frame_ms")),
        "stt_final_to_first_frame": percentiles(field("stt_final_to_first_frame_ms")),
        "llm_first_token": percentiles(field("llm_first_token_ms")),
        "tts_first_audio": percentiles(field("tts_first_audio_ms")),
        "speech_end_to_first_frame": percentiles(field("speech_end_to_first_frame_ms")),
        "llm_token_to_tts_audio": percentiles(differences(&events.turns, "llm_first_token_ms", "tts_first_audio_ms")),
        "tts_audio_to_first_frame": percentiles(differences(&events.turns, "tts_first_audio_ms", "end_of_turn_to_first_frame_ms")),
        "llm_ttfb": percentiles(field("llm_ttfb_ms")),
        "tts_ttfb": percentiles(field("tts_ttfb_ms")),
        "framework": percentiles(field("framework_ms")),
    });
    println!("{report}");
}

/// What the server's `/events` stream said.
#[derive(Default)]
struct Events {
    /// The `turn_latency` events.
    turns: Vec<Value>,
    /// `error` events.
    errors: usize,
    /// Events the stream skipped because this subscriber fell behind.
    lagged: u64,
}

/// Reads `/events` (server-sent events) over HTTP/1.0, so the body is the raw stream
/// until the connection closes, with no chunked framing to undo.
async fn subscribe(server: String, events: Arc<Mutex<Events>>) {
    let Ok(mut stream) = tokio::net::TcpStream::connect(&server).await else {
        eprintln!("agent_load: cannot connect to {server} for /events");
        return;
    };
    let request =
        format!("GET /events HTTP/1.0\r\nHost: {server}\r\nAccept: text/event-stream\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return;
    }
    let mut pending = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buffer[..n]);
        let mut consumed = 0;
        while let Some(end) = pending[consumed..].iter().position(|b| *b == b'\n') {
            let line = &pending[consumed..consumed + end];
            consumed += end + 1;
            let Some(data) = line.strip_prefix(b"data:") else {
                continue;
            };
            let Ok(event) = serde_json::from_slice::<Value>(data) else {
                continue;
            };
            let mut events = events.lock().unwrap_or_else(|e| e.into_inner());
            match event.get("type").and_then(Value::as_str) {
                Some("turn_latency") => events.turns.push(event),
                Some("error") => events.errors += 1,
                Some("lagged") => {
                    events.lagged += event.get("missed").and_then(Value::as_u64).unwrap_or(0);
                }
                _ => {}
            }
        }
        pending.drain(..consumed);
    }
}

/// `to - from` per event that has both.
fn differences(turns: &[Value], from: &str, to: &str) -> Vec<f64> {
    turns
        .iter()
        .filter_map(|t| Some(t.get(to)?.as_f64()? - t.get(from)?.as_f64()?))
        .collect()
}

/// The distribution of `values` (ms) as JSON.
fn percentiles(values: Vec<f64>) -> Value {
    serde_json::to_value(Percentiles::of_millis(&values)).unwrap_or(Value::Null)
}
