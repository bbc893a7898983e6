//! Run with `cargo run --release -p bridge --example load_driver -- --bridge 127.0.0.1:8080 --calls 50`
//!
//! The other side of a bridge load test (`cargo xtask load-bridge` runs it): starts
//! the Gemini Live emulator on loopback (zero added latency, 1.5 s tone replies) and
//! prints its URL as the first line of stdout (`emulator ws://127.0.0.1:PORT`), waits
//! for the bridge's `/health`, then places `--calls` concurrent callsim calls, each
//! repeating "say an utterance, wait for the reply to play out" for `--duration`
//! seconds. Prints one JSON object: calls completed and failed, replies heard, and the
//! callers' response latency (end of their speech to the reply's first audio).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use voxline_fixtures::speech::{self, Variant};
use voxline_testkit::callsim::{self, Audio, Dialect, Scenario, TurnVad};
use voxline_testkit::emulators::gemini::{GeminiEmulator, Options, Turn};

#[derive(Debug, Parser)]
struct Args {
    /// The bridge's address.
    #[arg(long)]
    bridge: String,
    /// Concurrent calls.
    #[arg(long, default_value_t = 50)]
    calls: usize,
    /// How long each call lasts, seconds.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Call starts are spread over this many seconds.
    #[arg(long, default_value_t = 5)]
    ramp: u64,
    /// The carrier: twilio (20 ms mu-law frames) or exotel (100 ms PCM16).
    #[arg(long, default_value = "twilio")]
    dialect: Dialect,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    let reply = Duration::from_millis(1500);
    let emulator =
        GeminiEmulator::start(Options::with_script(vec![Turn::new("Sure, noted.", reply)])).await;
    println!("emulator {}", emulator.ws_url());

    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(&args.bridge).await.is_ok() {
            break;
        }
        if started.elapsed() > Duration::from_secs(20) {
            anyhow::bail!("the bridge at {} did not come up", args.bridge);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let caller = speech::load("caller_en_us", 8000, Variant::Clean);
    let u = &caller.utterances[0];
    let utterance = Audio::from_samples(
        caller.samples[(u.start_ms * 8.0) as usize..(u.end_ms * 8.0) as usize].to_vec(),
        8000,
    );
    // One round: the utterance, the reply, a pause.
    let round = utterance.duration() + reply + Duration::from_millis(1300);
    let rounds = (Duration::from_secs(args.duration).as_secs_f64() / round.as_secs_f64())
        .floor()
        .max(1.0) as usize;
    let path = match args.dialect {
        Dialect::Exotel => "/media",
        Dialect::Smartflo => "/smartflo/audio",
        _ => "/ws",
    };
    let url = format!("ws://{}{path}", args.bridge);
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..args.calls {
        let delay = Duration::from_secs(args.ramp).mul_f64(i as f64 / args.calls.max(1) as f64);
        let mut scenario = Scenario::new(url.clone(), args.dialect)
            .turn_vad(TurnVad::Energy)
            .tail(Duration::from_millis(200))
            .silence(Duration::from_millis(300));
        for _ in 0..rounds {
            scenario = scenario
                .play(utterance.clone())
                .wait_for_audio(Duration::from_secs(10))
                .wait_until_quiet(Duration::from_secs(10))
                .silence(Duration::from_millis(500));
        }
        let scenario = scenario.hangup();
        calls.spawn(async move {
            tokio::time::sleep(delay).await;
            callsim::run_scenario(scenario).await
        });
    }
    let (mut passed, mut failed, mut errors, mut late) = (0, 0, 0, 0u64);
    let (mut replies, mut latencies) = (0usize, Vec::new());
    while let Some(done) = calls.join_next().await {
        match done.context("call task")? {
            Ok(report) => {
                if report.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                    eprintln!("{report}");
                }
                late += report.call.frames.media_late;
                for t in &report.call.turns {
                    if let Some(ms) = t.latency_ms {
                        replies += 1;
                        latencies.push(ms);
                    }
                }
            }
            Err(e) => {
                errors += 1;
                eprintln!("call failed: {e}");
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let summary = serde_json::json!({
        "calls": args.calls,
        "rounds_per_call": rounds,
        "passed": passed,
        "failed": failed,
        "errors": errors,
        "caller_frames_late": late,
        "replies_heard": replies,
        "response_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
    });
    println!("{summary}");
    Ok(())
}
