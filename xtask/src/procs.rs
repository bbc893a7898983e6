//! Helpers shared by the load runs (`load`, `load-agent`): the server process, its
//! resident memory and CPU time from `/proc`, and where the release binaries are.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Where cargo puts release binaries (`CARGO_TARGET_DIR` is honoured).
pub(crate) fn release_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("release")
}

/// Fails unless `taskset` (util-linux) is there to pin processes to cores.
pub(crate) fn require_taskset() -> Result<()> {
    if Command::new("taskset").arg("-V").output().is_err() {
        bail!(
            "taskset (util-linux) is needed to pin the server and the generator to separate cores"
        );
    }
    Ok(())
}

/// A free loopback address.
pub(crate) fn free_address() -> Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Waits until something accepts connections on `address`.
pub(crate) fn wait_for_listener(address: &str, what: &str) -> Result<()> {
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("{what} did not start");
        }
        thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// The server process; stopped (SIGTERM, then kill) when dropped.
pub(crate) struct Server(pub(crate) Child);

impl Server {
    pub(crate) fn stop(&mut self) -> Result<()> {
        if self.0.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .stderr(Stdio::null())
            .status();
        for _ in 0..100 {
            if self.0.try_wait()?.is_some() {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(50));
        }
        self.0.kill()?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

pub(crate) fn process_alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

/// Resident memory in KiB.
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

/// User plus system CPU time in seconds.
pub(crate) fn cpu_secs(pid: u32) -> Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may contain spaces) start at ") ".
    let rest = stat
        .rsplit_once(") ")
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    let ticks_per_sec = 100.0;
    Ok((ticks(11) + ticks(12)) / ticks_per_sec)
}
