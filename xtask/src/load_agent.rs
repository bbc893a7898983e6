//! `cargo xtask load-agent`: the agent server's own latency and its capacity, with
//! the provider emulators behind it.
//!
//! Each case starts the driver (`crates/testkit/examples/agent_load.rs`: the
//! Deepgram, OpenAI chat and ElevenLabs emulators at zero latency, and callsim) pinned
//! to CPU 1, then `agent-server` pinned to CPU 0 with the emulators' URLs and keys in
//! its environment. Once the server listens, its idle RSS is read and the driver
//! places the calls; the server's CPU time and resident memory are sampled from
//! `/proc` while they run. The driver reports callsim's turn latencies and the
//! server's exact `turn_latency` events (from `/events`); two Markdown tables follow.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::procs::{
    Server, cpu_secs, free_address, process_alive, release_dir, require_taskset, rss_kib,
    wait_for_listener,
};

/// One turn of a call, seconds (the driver's `PERIOD`), and the silence before it.
const PERIOD: f64 = 4.0;
const LEAD_IN: f64 = 0.5;
/// The driver waits this long after the go line before the first call.
const SETTLE: f64 = 0.3;

struct Case {
    calls: usize,
    turns: usize,
    ramp: f64,
}

struct Measured {
    case: Case,
    report: Value,
    server_cpu: f64,
    driver_cpu: f64,
    idle_rss: u64,
    steady_rss: u64,
    max_rss: u64,
}

pub(crate) fn sweep(quick: bool) -> Result<()> {
    // Target flags apply to every package named, so one build per target.
    crate::step(
        "build agent-server",
        crate::cargo(&[
            "build",
            "--release",
            "-p",
            "agent-server",
            "--bin",
            "agent-server",
        ]),
    )?;
    crate::step(
        "build the driver",
        crate::cargo(&[
            "build",
            "--release",
            "-p",
            "voxline-testkit",
            "--example",
            "agent_load",
        ]),
    )?;
    crate::step(
        "build the in-process run",
        crate::cargo(&[
            "build",
            "--release",
            "-p",
            "voxline-server",
            "--example",
            "agent_latency",
        ]),
    )?;
    require_taskset()?;
    // The first case is the latency one: few calls, their turns spread over the
    // period so that no two end together. The others load the server.
    let cases = if quick {
        vec![
            Case {
                calls: 5,
                turns: 10,
                ramp: PERIOD,
            },
            Case {
                calls: 50,
                turns: 4,
                ramp: 4.0,
            },
        ]
    } else {
        let load = |calls| Case {
            calls,
            turns: 6,
            ramp: 10.0,
        };
        vec![
            Case {
                calls: 20,
                turns: 20,
                ramp: PERIOD,
            },
            load(100),
            load(500),
            load(1000),
        ]
    };
    let mut results = Vec::new();
    for case in cases {
        println!(
            "xtask: {} calls x {} turns (ramp {} s)",
            case.calls, case.turns, case.ramp
        );
        let measured = run_case(case)?;
        println!("xtask: driver report: {}", measured.report);
        results.push(measured);
    }
    let (calls, turns) = if quick { (5, 10) } else { (20, 20) };
    println!("xtask: in one process, {calls} calls x {turns} turns (CPU 0)");
    let output = Command::new("taskset")
        .args(["-c", "0"])
        .arg(release_dir().join("examples").join("agent_latency"))
        .args(["--calls", &calls.to_string(), "--turns", &turns.to_string()])
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run agent_latency")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let in_process: Value = serde_json::from_str(text.trim())
        .with_context(|| format!("agent_latency printed no report: {text:?}"))?;
    println!("xtask: in-process report: {in_process}");
    print_tables(&results);
    print_in_process(&in_process);
    Ok(())
}

/// The in-process run's row: the providers' emulators, the server and the callers on
/// one thread, so no process waits for another CPU to wake.
fn print_in_process(r: &Value) {
    println!(
        "\nIn one process (crates/server/examples/agent_latency.rs on CPU 0; the recogniser's final ends each turn)\n"
    );
    println!(
        "| calls | turns measured | failures | end of turn -> first frame p50 / p99 / max | STT final -> first frame p50 / p99 / max | model's own time to first token p50 / p99 / max | synthesiser's own time to first audio p50 / p99 / max | Voxline's own p50 / p99 / max |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {} | {} of {} | {} | {} | {} | {} | {} | {} |",
        r["calls"],
        r["turn_events"],
        r["calls"].as_u64().unwrap_or(0) * r["turns_per_call"].as_u64().unwrap_or(0),
        r["failures"],
        p(&r["end_of_turn_to_first_frame"]),
        p(&r["stt_final_to_first_frame"]),
        p(&r["llm_ttfb"]),
        p(&r["tts_ttfb"]),
        p(&r["framework"]),
    );
}

fn run_case(case: Case) -> Result<Measured> {
    let address = free_address()?;
    let mut driver = Command::new("taskset")
        .args(["-c", "1"])
        .arg(release_dir().join("examples").join("agent_load"))
        .args(["--server", &address, "--dialect", "twilio"])
        .args(["--calls", &case.calls.to_string()])
        .args(["--turns", &case.turns.to_string()])
        .args(["--ramp", &case.ramp.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the agent_load driver")?;
    let driver_pid = driver.id();
    let mut stdout = BufReader::new(driver.stdout.take().context("driver stdout")?);
    let mut line = String::new();
    stdout.read_line(&mut line)?;
    let env: Value = serde_json::from_str(&line).context("the driver printed no environment")?;

    let log_path = std::env::temp_dir().join("voxline-load-agent-server.log");
    let log = File::create(&log_path)?;
    let port = address.rsplit(':').next().unwrap_or_default().to_owned();
    let mut command = Command::new("taskset");
    command
        .args(["-c", "0"])
        .arg(release_dir().join("agent-server"))
        .env("HOST", "127.0.0.1")
        .env("PORT", port)
        .env("MAX_CONNECTIONS", "5000")
        .env("IDLE_SECS", "600")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(log);
    for (name, value) in env["env"]
        .as_object()
        .context("no env in the driver's line")?
    {
        command.env(name, value.as_str().unwrap_or_default());
    }
    let mut server = Server(command.spawn().context("cannot start agent-server")?);
    let pid = server.0.id();
    wait_for_listener(&address, "agent-server")?;
    thread::sleep(Duration::from_millis(500));
    let idle_rss = rss_kib(pid)?;

    let mut stdin = driver.stdin.take().context("driver stdin")?;
    writeln!(stdin, "go")?;
    drop(stdin);

    // All calls are up from the end of the ramp until the first one ends; the steady
    // window is that span less a second at each end.
    let call_secs = LEAD_IN + case.turns as f64 * PERIOD;
    let (steady_from, steady_to) = (SETTLE + case.ramp + 1.0, SETTLE + call_secs - 1.0);
    let started = Instant::now();
    let mut steady = Vec::new();
    let mut max_rss = idle_rss;
    let mut window_start: Option<(Instant, f64, f64)> = None;
    let mut window_end: Option<(Instant, f64, f64)> = None;
    while process_alive(driver_pid) && driver.try_wait()?.is_none() {
        let rss = rss_kib(pid)?;
        max_rss = max_rss.max(rss);
        let t = started.elapsed().as_secs_f64();
        if t >= steady_from && t < steady_to {
            steady.push(rss);
            if window_start.is_none() {
                window_start = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(driver_pid)?));
            }
        } else if t >= steady_to && window_end.is_none() {
            window_end = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(driver_pid)?));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest)?;
    driver.wait()?;
    drop(server.stop());
    let report: Value = serde_json::from_str(rest.trim())
        .with_context(|| format!("the driver printed no report: {rest:?}"))?;
    let ((t0, server0, driver0), (t1, server1, driver1)) = window_start
        .zip(window_end)
        .context("the run ended before its steady window did")?;
    let window = (t1 - t0).as_secs_f64();
    steady.sort_unstable();
    Ok(Measured {
        steady_rss: steady.get(steady.len() / 2).copied().unwrap_or(max_rss),
        case,
        report,
        server_cpu: (server1 - server0) / window,
        driver_cpu: (driver1 - driver0) / window,
        idle_rss,
        max_rss,
    })
}

fn print_tables(results: &[Measured]) {
    println!(
        "\nWhere the time goes (server's turn_latency events, ms): the whole, the providers' own times to first byte (their adapters' measure from the request) and what is left, Voxline's own\n"
    );
    println!(
        "| calls | turns measured | end of turn -> first frame p50 / p99 / max | model's own time to first token p50 / p99 | synthesiser's own time to first audio p50 / p99 | Voxline's own p50 / p99 / max |"
    );
    println!("|---|---|---|---|---|---|");
    for m in results {
        let r = &m.report;
        println!(
            "| {} | {} of {} | {} | {} | {} | {} |",
            m.case.calls,
            r["server_turn_events"],
            m.case.calls * m.case.turns,
            p(&r["end_of_turn_to_first_frame"]),
            p2(&r["llm_ttfb"]),
            p2(&r["tts_ttfb"]),
            p(&r["framework"]),
        );
    }

    println!("\nStages (ms from the end of the turn unless said)\n");
    println!(
        "| calls | -> model's first token p50 / p99 | first token -> first TTS audio p50 / p99 | first TTS audio -> first frame p50 / p99 | STT final -> first frame p50 / p99 / max | caller's wait (callsim, speech end -> audio heard) p50 / p99 |"
    );
    println!("|---|---|---|---|---|---|");
    for m in results {
        let r = &m.report;
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            m.case.calls,
            p2(&r["llm_first_token"]),
            p2(&r["llm_token_to_tts_audio"]),
            p2(&r["tts_audio_to_first_frame"]),
            p(&r["stt_final_to_first_frame"]),
            p2(&r["callsim_turn_latency"]),
        );
    }

    println!("\nCapacity (server on CPU 0; emulators and callsim on CPU 1)\n");
    println!(
        "| calls | server CPU (steady) | server CPU per call | RSS idle (MiB) | RSS per call, steady / max (KiB) | end of turn -> first frame p50 / p99 (ms) | caller's wait p50 / p99 (ms) | turns answered | failures | driver CPU (steady) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for m in results {
        let r = &m.report;
        let calls = m.case.calls as f64;
        let per_call = |rss: u64| rss.saturating_sub(m.idle_rss) as f64 / calls;
        let failures = r["failures"].as_u64().unwrap_or(0)
            + r["violations"].as_u64().unwrap_or(0)
            + r["callsim_unanswered_turns"].as_u64().unwrap_or(0)
            + r["server_error_events"].as_u64().unwrap_or(0);
        println!(
            "| {} | {:.0}% of a core | {:.2}% of a core | {:.1} | {:.1} / {:.1} | {} | {} | {} of {} | {} | {:.0}% |",
            m.case.calls,
            m.server_cpu * 100.0,
            m.server_cpu * 100.0 / calls,
            m.idle_rss as f64 / 1024.0,
            per_call(m.steady_rss),
            per_call(m.max_rss),
            p2(&r["end_of_turn_to_first_frame"]),
            p2(&r["callsim_turn_latency"]),
            r["callsim_turns"],
            m.case.calls * m.case.turns,
            failures,
            m.driver_cpu * 100.0,
        );
    }
}

/// A report field in ms with two decimals, or `-`.
fn ms(v: &Value, key: &str) -> String {
    v[key].as_f64().map_or("-".into(), |x| format!("{x:.2}"))
}

/// `p50 / p99 / max` of a percentiles object.
fn p(v: &Value) -> String {
    format!(
        "{} / {} / {}",
        ms(v, "p50_ms"),
        ms(v, "p99_ms"),
        ms(v, "max_ms")
    )
}

/// `p50 / p99` of a percentiles object.
fn p2(v: &Value) -> String {
    format!("{} / {}", ms(v, "p50_ms"), ms(v, "p99_ms"))
}
