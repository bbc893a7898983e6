//! `cargo xtask load`: the echo server's capacity, measured with callsim.
//!
//! Each case starts `echo-bot --immediate-echo` pinned to CPU 0 and `callsim load`
//! pinned to CPU 1 (so the generator does not steal the server's core), samples the
//! server's CPU time and resident memory from `/proc` while the calls run, and prints
//! one Markdown row per case.

use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::procs::{
    Server, cpu_secs, free_address, process_alive, release_dir, require_taskset, rss_kib,
    wait_for_listener,
};

/// One load case.
struct Case {
    shape: &'static str,
    dialect: &'static str,
    path: &'static str,
    calls: usize,
    /// Frames each call sends per second.
    frames_per_sec: f64,
}

pub(crate) fn sweep(quick: bool) -> Result<()> {
    let status = Command::new("cargo")
        .args(["build", "--release", "-p", "echo-bot", "-p", "callsim"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("release build failed");
    }
    require_taskset()?;
    let exotel = |calls| Case {
        shape: "Exotel: 100 ms PCM16 8 kHz",
        dialect: "exotel",
        path: "/media",
        calls,
        frames_per_sec: 10.0,
    };
    let twilio = |calls| Case {
        shape: "Twilio: 20 ms mu-law 8 kHz",
        dialect: "twilio",
        path: "/twilio",
        calls,
        frames_per_sec: 50.0,
    };
    let (cases, duration, ramp): (Vec<Case>, u64, u64) = if quick {
        (vec![exotel(200), twilio(50)], 6, 2)
    } else {
        (
            vec![
                exotel(500),
                exotel(1000),
                exotel(2000),
                exotel(3000),
                exotel(4000),
                twilio(100),
                twilio(250),
                twilio(500),
                twilio(600),
                twilio(750),
                twilio(1000),
            ],
            30,
            10,
        )
    };
    println!(
        "duration {duration} s per case after a {ramp} s ramp; server on CPU 0, callsim on CPU 1\n"
    );
    println!(
        "| shape | calls | turnaround p50 / p99 / max (ms) | frames echoed | server CPU (steady) | server CPU per frame (us) | RSS per call, steady / max (KiB) | callsim CPU (steady) | failures |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for case in &cases {
        let row = run_case(case, duration, ramp)?;
        println!("{row}");
    }
    Ok(())
}

fn run_case(case: &Case, duration: u64, ramp: u64) -> Result<String> {
    let address = free_address()?;
    let mut server = Server(
        Command::new("taskset")
            .args([
                "-c",
                "0",
                &release_dir().join("echo-bot").to_string_lossy(),
                "--immediate-echo",
                "--listen",
                &address,
            ])
            .args(["--max-calls", "20000", "--idle-timeout-secs", "120"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start echo-bot")?,
    );
    let pid = server.0.id();
    wait_for_listener(&address, "echo-bot")?;
    let idle_rss = rss_kib(pid)?;

    let url = format!("ws://{address}{}", case.path);
    let generator = Command::new("taskset")
        .args([
            "-c",
            "1",
            &release_dir().join("callsim").to_string_lossy(),
            "load",
            &url,
            "--dialect",
            case.dialect,
        ])
        .args([
            "--calls",
            &case.calls.to_string(),
            "--duration",
            &duration.to_string(),
        ])
        .args(["--ramp", &ramp.to_string(), "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start callsim")?;
    let generator_pid = generator.id();

    // Sample both processes while the calls run. The steady window starts a second
    // after the ramp and ends a second before the calls do: CPU is the difference of
    // the CPU times at its ends, steady RSS the median of the samples inside it.
    let sampling_started = Instant::now();
    let (steady_from, steady_to) = (ramp + 1, ramp + duration - 1);
    let mut steady = Vec::new();
    let mut max_rss = idle_rss;
    let mut window_start: Option<(Instant, f64, f64)> = None;
    let mut window_end: Option<(Instant, f64, f64)> = None;
    while process_alive(generator_pid) {
        let rss = rss_kib(pid)?;
        max_rss = max_rss.max(rss);
        let t = sampling_started.elapsed().as_secs_f64();
        let in_window = t >= steady_from as f64 && t < steady_to as f64;
        if in_window {
            steady.push(rss);
            if window_start.is_none() {
                window_start = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(generator_pid)?));
            }
        } else if t >= steady_to as f64 && window_end.is_none() {
            window_end = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(generator_pid)?));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let output = generator.wait_with_output()?;
    drop(server.stop());
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("callsim load did not print JSON")?;
    let ((t0, server0, gen0), (t1, server1, gen1)) = window_start
        .zip(window_end)
        .context("the run ended before its steady window did")?;
    let window = (t1 - t0).as_secs_f64();
    let server_cpu = (server1 - server0) / window;
    let generator_cpu = (gen1 - gen0) / window;
    let frames_per_sec = case.calls as f64 * case.frames_per_sec;

    steady.sort_unstable();
    let steady_rss = steady.get(steady.len() / 2).copied().unwrap_or(max_rss);
    let calls = case.calls as f64;
    let per_call = |rss: u64| rss.saturating_sub(idle_rss) as f64 / calls;
    let matched = report["frames_matched"].as_f64().unwrap_or(0.0);
    let t = &report["turnaround"];
    Ok(format!(
        "| {} | {} | {:.2} / {:.2} / {:.1} | {:.0} of {:.0} | {:.0}% of a core | {:.1} | {:.1} / {:.1} | {:.0}% | {} |",
        case.shape,
        case.calls,
        t["p50_ms"].as_f64().unwrap_or(f64::NAN),
        t["p99_ms"].as_f64().unwrap_or(f64::NAN),
        t["max_ms"].as_f64().unwrap_or(f64::NAN),
        matched,
        report["frames_sent"].as_f64().unwrap_or(0.0),
        server_cpu * 100.0,
        server_cpu / frames_per_sec * 1e6,
        per_call(steady_rss),
        per_call(max_rss),
        generator_cpu * 100.0,
        report["connect_failures"].as_u64().unwrap_or(0)
            + report["mid_call_failures"].as_u64().unwrap_or(0),
    ))
}
