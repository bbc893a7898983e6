//! `cargo xtask load-bridge`: concurrent bridged calls, measured.
//!
//! Each case starts the load driver (`bins/bridge/examples/load_driver.rs`: the
//! Gemini Live emulator plus callsim calls) pinned to CPU 1, then `bridge --model
//! gemini` pointed at that emulator pinned to CPU 0, samples the bridge's CPU time and
//! resident memory from `/proc` while the calls run (as `cargo xtask load` does, with
//! its helpers), and reads the bridge's forwarding histograms from `/metrics` at the
//! end. Prints one Markdown row per case for each table.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::procs::{
    Server, cpu_secs, free_address, process_alive, release_dir, require_taskset, rss_kib,
    wait_for_listener,
};

pub(crate) fn sweep(quick: bool) -> Result<()> {
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "bridge",
            "--bin",
            "bridge",
            "--example",
            "load_driver",
        ])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("release build failed");
    }
    require_taskset()?;
    let (cases, duration, ramp): (Vec<(&str, usize)>, u64, u64) = if quick {
        (vec![("twilio", 20)], 12, 2)
    } else {
        (
            vec![
                ("twilio", 50),
                ("twilio", 100),
                ("twilio", 200),
                ("exotel", 200),
            ],
            30,
            5,
        )
    };
    println!(
        "each call {duration} s of repeated turns after a {ramp} s ramp; bridge on CPU 0, driver (emulator + callsim) on CPU 1\n"
    );
    let mut rows = Vec::new();
    for (dialect, calls) in cases {
        rows.push(run_case(dialect, calls, duration, ramp)?);
    }
    println!(
        "| dialect | calls | calls passed | replies heard | caller wait p50 / p99 (ms) | bridge CPU (steady) | CPU per call | RSS per call, steady / max (KiB) | driver CPU |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{}", r.capacity);
    }
    println!(
        "\n| dialect | calls | uplink p50 / p99 (us) | uplink frames | downlink p50 / p99 (us) | downlink chunks | response latency p50 / p99 (ms, bridge VAD) | provider TTFB p50 (ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{}", r.latency);
    }
    Ok(())
}

struct Row {
    capacity: String,
    latency: String,
}

fn run_case(dialect: &str, calls: usize, duration: u64, ramp: u64) -> Result<Row> {
    let address = free_address()?;
    let mut driver = Command::new("taskset")
        .args(["-c", "1"])
        .arg(release("examples/load_driver"))
        .args(["--bridge", &address, "--dialect", dialect])
        .args(["--calls", &calls.to_string()])
        .args(["--duration", &duration.to_string()])
        .args(["--ramp", &ramp.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("cannot start the load driver")?;
    let driver_pid = driver.id();
    let mut out = BufReader::new(driver.stdout.take().context("driver stdout")?);
    let mut first = String::new();
    out.read_line(&mut first)?;
    let emulator = first
        .trim()
        .strip_prefix("emulator ")
        .context("the driver did not print the emulator's URL")?
        .to_owned();

    let mut bridge = Server(
        Command::new("taskset")
            .args(["-c", "0"])
            .arg(release("bridge"))
            .args(["--model", "gemini"])
            .args(["--base-url", &emulator, "--api-key", "test-key"])
            .args(["--listen", &address, "--max-calls", "20000"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start the bridge")?,
    );
    let pid = bridge.0.id();
    wait_for_listener(&address, "the bridge")?;
    let idle_rss = rss_kib(pid)?;

    // The steady window: every call connected (a second after the ramp) until a
    // second before the first calls end.
    let sampling_started = Instant::now();
    let (steady_from, steady_to) = (ramp + 1, duration - 1);
    let (mut steady, mut max_rss) = (Vec::new(), idle_rss);
    let mut window_start: Option<(Instant, f64, f64)> = None;
    let mut window_end: Option<(Instant, f64, f64)> = None;
    while process_alive(driver_pid) {
        let rss = rss_kib(pid)?;
        max_rss = max_rss.max(rss);
        let t = sampling_started.elapsed().as_secs_f64();
        if t >= steady_from as f64 && t < steady_to as f64 {
            steady.push(rss);
            if window_start.is_none() {
                window_start = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(driver_pid)?));
            }
        } else if t >= steady_to as f64 && window_end.is_none() {
            window_end = Some((Instant::now(), cpu_secs(pid)?, cpu_secs(driver_pid)?));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let mut rest = String::new();
    out.read_to_string(&mut rest)?;
    driver.wait()?;
    let metrics = get(&address, "/metrics")?;
    drop(bridge.stop());
    let report: serde_json::Value = serde_json::from_str(rest.trim())
        .with_context(|| format!("the driver did not print JSON: {rest}"))?;

    let ((t0, bridge0, driver0), (t1, bridge1, driver1)) = window_start
        .zip(window_end)
        .context("the run ended before its steady window did")?;
    let window = (t1 - t0).as_secs_f64();
    let bridge_cpu = (bridge1 - bridge0) / window;
    let driver_cpu = (driver1 - driver0) / window;
    steady.sort_unstable();
    let steady_rss = steady.get(steady.len() / 2).copied().unwrap_or(max_rss);
    let per_call = |rss: u64| rss.saturating_sub(idle_rss) as f64 / calls as f64;
    let r = &report["response_ms"];
    let capacity = format!(
        "| {dialect} | {calls} | {} of {calls} | {} | {:.0} / {:.0} | {:.0}% of a core | {:.2}% | {:.0} / {:.0} | {:.0}% |",
        report["passed"],
        report["replies_heard"],
        r["p50"].as_f64().unwrap_or(f64::NAN),
        r["p99"].as_f64().unwrap_or(f64::NAN),
        bridge_cpu * 100.0,
        bridge_cpu * 100.0 / calls as f64,
        per_call(steady_rss),
        per_call(max_rss),
        driver_cpu * 100.0,
    );
    let us = |name: &str, q: f64| quantile(&metrics, name, q).map_or(f64::NAN, |s| s * 1e6);
    let ms = |name: &str, q: f64| quantile(&metrics, name, q).map_or(f64::NAN, |s| s * 1e3);
    let count = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}_count ")))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or("0")
            .to_owned()
    };
    let (up, down) = (
        "voxline_bridge_uplink_forward_seconds",
        "voxline_bridge_downlink_forward_seconds",
    );
    let (response, ttfb) = (
        "voxline_bridge_response_latency_seconds",
        "voxline_bridge_provider_ttfb_seconds",
    );
    let latency = format!(
        "| {dialect} | {calls} | {:.1} / {:.1} | {} | {:.1} / {:.1} | {} | {:.0} / {:.0} | {:.0} |",
        us(up, 0.5),
        us(up, 0.99),
        count(up),
        us(down, 0.5),
        us(down, 0.99),
        count(down),
        ms(response, 0.5),
        ms(response, 0.99),
        ms(ttfb, 0.5),
    );
    Ok(Row { capacity, latency })
}

/// A release build's file.
fn release(file: &str) -> std::path::PathBuf {
    release_dir().join(file)
}

/// A plain HTTP GET on loopback: the body.
fn get(address: &str, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

/// The `q` quantile of a Prometheus histogram, interpolated linearly inside its
/// bucket (buckets are 1.5x apart, so within 25%).
fn quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let target = q * total;
    let (mut low, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= target {
            if le.is_infinite() {
                return Some(low);
            }
            let share = if count > below {
                (target - below) / (count - below)
            } else {
                1.0
            };
            return Some(low + (le - low) * share);
        }
        (low, below) = (le, count);
    }
    None
}
