//! Load testing: many concurrent calls against a server in immediate-echo mode.
//!
//! Each call is one task with its own monotonic origin, sending frame `n` at
//! `t0 + n * frame`. Every payload starts with a 6-byte tag (`VX` and a little-endian
//! per-call frame counter), so the echo of a frame is matched to its send time and the
//! turnaround (frame sent -> the same payload back) goes into one shared histogram.
//! The hot path builds one string per frame and allocates nothing else: the base64 of
//! the untagged part of the payload is computed once per run, and turnarounds are
//! batched into the histogram.
//!
//! Each connection holds a file descriptor: for thousands of calls raise the limit
//! first (`ulimit -n 65536`); callsim cannot raise it itself.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use voxline_audio::{AudioFormat, Encoding};

use crate::callsim::connect::{self, Socket, Target};
use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;
use crate::callsim::ids::IdGen;
use crate::callsim::wire::{self, Wire};

const TAG: [u8; 2] = *b"VX";
const TAG_LEN: usize = 6;
const RING: usize = 256;
const BATCH: usize = 64;

/// What load to generate.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadOptions {
    /// The server's URL (as for [`CallOptions::url`](super::CallOptions::url)).
    pub url: String,
    /// The carrier to be.
    pub dialect: Dialect,
    /// Concurrent calls.
    pub calls: usize,
    /// How long each call streams.
    pub duration: Duration,
    /// Call starts are spread evenly over this long.
    pub ramp: Duration,
    /// Per-call parameters.
    pub params: Vec<(String, String)>,
    /// Line sample rate, as for a single call.
    pub sample_rate: Option<u32>,
    /// Line encoding, as for a single call.
    pub encoding: Option<Encoding>,
    /// Limit for each connection and upgrade.
    pub connect_timeout: Duration,
    /// After its last frame, each call waits this long for outstanding echoes.
    pub drain: Duration,
    /// WebSocket read and write buffer size per connection.
    pub buffer_size: usize,
}

impl LoadOptions {
    /// `calls` calls of `duration` each, all started at once, 4 KiB buffers.
    pub fn new(url: impl Into<String>, dialect: Dialect, calls: usize, duration: Duration) -> Self {
        Self {
            url: url.into(),
            dialect,
            calls,
            duration,
            ramp: Duration::ZERO,
            params: Vec::new(),
            sample_rate: None,
            encoding: None,
            connect_timeout: Duration::from_secs(10),
            drain: Duration::from_secs(1),
            buffer_size: 4096,
        }
    }

    /// Spreads the starts over `ramp`.
    pub fn ramp(mut self, ramp: Duration) -> Self {
        self.ramp = ramp;
        self
    }

    /// Adds a per-call parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// Sets the line's sample rate.
    pub fn sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = Some(rate);
        self
    }

    /// Sets the line's encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// Sets the wait for outstanding echoes.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Percentiles {
    /// The distribution of `values` (milliseconds), exact: nearest-rank percentiles.
    /// For figures gathered elsewhere, such as a server's own latency events.
    pub fn of_millis(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let rank = |p: f64| sorted[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Self {
            count: n as u64,
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: sorted[n - 1],
            mean_ms: sorted.iter().sum::<f64>() / n as f64,
        }
    }

    fn from_micros(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The dialect spoken.
    pub dialect: Dialect,
    /// The URL called.
    pub url: String,
    /// The line format.
    pub line_format: String,
    /// Caller audio per frame, in ms.
    pub frame_ms: u64,
    /// Calls attempted.
    pub calls: usize,
    /// Streaming time per call, in s.
    pub duration_secs: f64,
    /// Spread of the starts, in s.
    pub ramp_secs: f64,
    /// Calls that connected and opened their stream.
    pub connected: usize,
    /// Calls that could not connect or upgrade.
    pub connect_failures: usize,
    /// Calls that failed after connecting (socket error or server close).
    pub mid_call_failures: usize,
    /// Connect (TCP + upgrade) times.
    pub connect: Percentiles,
    /// Media frames sent.
    pub frames_sent: u64,
    /// Tagged media frames received back.
    pub frames_received: u64,
    /// Received frames matched to a send time.
    pub frames_matched: u64,
    /// Sent frames whose echo never came (or came too late to match).
    pub frames_lost: u64,
    /// Frame sent -> the same payload received back.
    pub turnaround: Percentiles,
    /// The frame rate each call should send (1 / frame).
    pub target_fps_per_call: f64,
    /// The frame rate achieved per call (frames over the time taken to send them).
    pub achieved_fps_per_call: f64,
    /// Frames sent more than one frame after they were due: the generator (or the
    /// socket) could not keep up.
    pub late_frames: u64,
    /// The worst lateness of a frame, in ms.
    pub max_send_lag_ms: f64,
    /// Wall-clock time of the whole run, in s.
    pub wall_secs: f64,
    /// callsim's own CPU time (user + system) during the run, in s.
    pub cpu_secs: Option<f64>,
    /// That CPU time as a percentage of one core over the run.
    pub cpu_percent: Option<f64>,
    /// callsim's peak resident memory, in KiB.
    pub max_rss_kib: Option<u64>,
    /// Distinct failure messages with their counts (at most 10).
    pub errors: Vec<(String, usize)>,
}

impl LoadReport {
    /// Connect plus mid-call failures.
    pub fn failures(&self) -> usize {
        self.connect_failures + self.mid_call_failures
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} load on {}: {} calls x {:.1} s, ramp {:.1} s, {} in {} ms frames",
            self.dialect,
            self.url,
            self.calls,
            self.duration_secs,
            self.ramp_secs,
            self.line_format,
            self.frame_ms
        )?;
        writeln!(
            f,
            "  calls        {} connected, {} connect failures, {} mid-call failures",
            self.connected, self.connect_failures, self.mid_call_failures
        )?;
        writeln!(
            f,
            "               {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
            "p50", "p90", "p99", "max", "mean", "count"
        )?;
        for (name, p) in [
            ("connect ms", &self.connect),
            ("turnaround", &self.turnaround),
        ] {
            writeln!(
                f,
                "  {name:<12} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9}",
                p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms, p.mean_ms, p.count
            )?;
        }
        writeln!(
            f,
            "  frames       {} sent, {} received, {} matched, {} lost",
            self.frames_sent, self.frames_received, self.frames_matched, self.frames_lost
        )?;
        writeln!(
            f,
            "  frame rate   {:.2}/s per call achieved, {:.2}/s target; {} late frames, worst {:.1} ms late",
            self.achieved_fps_per_call,
            self.target_fps_per_call,
            self.late_frames,
            self.max_send_lag_ms
        )?;
        let cpu = match (self.cpu_secs, self.cpu_percent) {
            (Some(s), Some(p)) => format!("{s:.2} s CPU ({p:.0}% of one core)"),
            _ => "CPU time unavailable".to_owned(),
        };
        let rss = self.max_rss_kib.map_or_else(String::new, |k| {
            format!(", peak RSS {:.1} MiB", k as f64 / 1024.0)
        });
        writeln!(f, "  callsim      {:.1} s wall, {cpu}{rss}", self.wall_secs)?;
        if self.late_frames > 0 && self.cpu_percent.is_some_and(|p| p > 80.0) {
            writeln!(
                f,
                "  note         frames were late while callsim was busy: the generator may be the bottleneck"
            )?;
        }
        for (e, n) in &self.errors {
            writeln!(f, "  error x{n:<5} {e}")?;
        }
        Ok(())
    }
}

struct Shared {
    options: LoadOptions,
    target: Target,
    format: AudioFormat,
    frame: Duration,
    frames_per_call: u64,
    /// Base64 of the payload after the tag (JSON dialects).
    rest_b64: String,
    /// The untagged payload (Vonage).
    rest: Vec<u8>,
    turnaround: Mutex<Histogram<u64>>,
}

#[derive(Debug, Default)]
struct CallStats {
    connected: bool,
    connect_failure: Option<String>,
    mid_call_failure: Option<String>,
    connect_us: Option<u64>,
    sent: u64,
    received: u64,
    matched: u64,
    late: u64,
    max_lag: Duration,
    sending_time: Duration,
}

/// Runs `options.calls` concurrent calls and measures turnaround against a server that
/// echoes every media frame straight back.
///
/// # Errors
/// Only for options that cannot work (bad URL, format, zero calls); connection
/// failures are counted in the report.
pub async fn load(options: LoadOptions) -> Result<LoadReport, CallsimError> {
    if options.calls == 0 {
        return Err(CallsimError::InvalidOptions {
            field: "calls",
            reason: "at least one call".into(),
        });
    }
    let target = connect::prepare(&options.url, options.dialect, options.sample_rate)?;
    let format = options
        .dialect
        .line_format(options.encoding, target.sample_rate)?;
    wire::check_params(options.dialect, &options.params)?;
    let frame = options.dialect.frame();
    let frame_bytes = format.frame_bytes(frame.as_millis() as u32);
    let rest = vec![format.encoding.silence_byte(); frame_bytes.saturating_sub(TAG_LEN)];
    let frames_per_call = options
        .duration
        .as_nanos()
        .div_ceil(frame.as_nanos().max(1)) as u64;
    let histogram = || {
        Histogram::<u64>::new_with_bounds(1, 120_000_000, 3).map_err(|e| {
            CallsimError::InvalidOptions {
                field: "histogram",
                reason: e.to_string(),
            }
        })
    };
    let shared = Arc::new(Shared {
        rest_b64: base64::engine::general_purpose::STANDARD.encode(&rest),
        rest,
        target,
        format,
        frame,
        frames_per_call,
        turnaround: Mutex::new(histogram()?),
        options,
    });

    let cpu_before = cpu_time();
    let started = Instant::now();
    let calls = shared.options.calls;
    let mut tasks = JoinSet::new();
    for i in 0..calls {
        let offset = if calls > 1 {
            shared.options.ramp.mul_f64(i as f64 / calls as f64)
        } else {
            Duration::ZERO
        };
        let shared = Arc::clone(&shared);
        tasks.spawn(one_call(shared, started + offset));
    }
    let mut stats = Vec::with_capacity(calls);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(s) => stats.push(s),
            Err(e) => stats.push(CallStats {
                mid_call_failure: Some(format!("call task failed: {e}")),
                ..CallStats::default()
            }),
        }
    }
    let wall = started.elapsed();
    let cpu = match (cpu_before, cpu_time()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };

    let mut connect_hist = histogram()?;
    let mut errors: HashMap<String, usize> = HashMap::new();
    let (mut sent, mut received, mut matched, mut late) = (0, 0, 0, 0);
    let mut max_lag = Duration::ZERO;
    let mut sending_time = Duration::ZERO;
    let (mut connected, mut connect_failures, mut mid_failures) = (0, 0, 0);
    for s in &stats {
        if let Some(us) = s.connect_us {
            connect_hist.saturating_record(us.max(1));
        }
        connected += usize::from(s.connected);
        if let Some(e) = &s.connect_failure {
            connect_failures += 1;
            *errors.entry(e.clone()).or_default() += 1;
        }
        if let Some(e) = &s.mid_call_failure {
            mid_failures += 1;
            *errors.entry(e.clone()).or_default() += 1;
        }
        sent += s.sent;
        received += s.received;
        matched += s.matched;
        late += s.late;
        max_lag = max_lag.max(s.max_lag);
        sending_time += s.sending_time;
    }
    let mut errors: Vec<(String, usize)> = errors.into_iter().collect();
    errors.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    errors.truncate(10);

    let turnaround = Percentiles::from_micros(
        &shared
            .turnaround
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    let options = &shared.options;
    Ok(LoadReport {
        dialect: options.dialect,
        url: shared.target.url.clone(),
        line_format: shared.format.to_string(),
        frame_ms: frame.as_millis() as u64,
        calls,
        duration_secs: options.duration.as_secs_f64(),
        ramp_secs: options.ramp.as_secs_f64(),
        connected,
        connect_failures,
        mid_call_failures: mid_failures,
        connect: Percentiles::from_micros(&connect_hist),
        frames_sent: sent,
        frames_received: received,
        frames_matched: matched,
        frames_lost: sent.saturating_sub(matched),
        turnaround,
        target_fps_per_call: 1.0 / frame.as_secs_f64(),
        achieved_fps_per_call: if sending_time.is_zero() {
            0.0
        } else {
            sent as f64 / sending_time.as_secs_f64()
        },
        late_frames: late,
        max_send_lag_ms: max_lag.as_secs_f64() * 1000.0,
        wall_secs: wall.as_secs_f64(),
        cpu_secs: cpu.map(|d| d.as_secs_f64()),
        cpu_percent: cpu.map(|d| 100.0 * d.as_secs_f64() / wall.as_secs_f64().max(1e-9)),
        max_rss_kib: max_rss_kib(),
        errors,
    })
}

async fn one_call(shared: Arc<Shared>, start_at: Instant) -> CallStats {
    let mut stats = CallStats::default();
    tokio::time::sleep_until(start_at.into()).await;
    let options = &shared.options;
    let (mut ws, connect_time) = match connect::connect(
        &shared.target,
        options.connect_timeout,
        options.buffer_size,
    )
    .await
    {
        Ok(ok) => ok,
        Err(e) => {
            let mut message = e.to_string();
            if message.contains("Too many open files") {
                message.push_str(" (raise the limit with `ulimit -n`)");
            }
            stats.connect_failure = Some(message);
            return stats;
        }
    };
    stats.connect_us = Some(connect_time.as_micros() as u64);
    let mut wire = Wire::new(
        options.dialect,
        shared.format,
        options.params.clone(),
        &mut IdGen::new(),
    );
    let mut result = async {
        for frame in wire.opening() {
            connect::timed(ws.feed(Message::text(frame))).await?;
        }
        connect::timed(ws.flush()).await
    }
    .await;
    if result.is_ok() {
        stats.connected = true;
        result = stream(&shared, &mut ws, &mut wire, &mut stats).await;
    }
    if let Err(e) = result {
        stats.mid_call_failure = Some(e);
        return stats;
    }
    // Hang up as the carrier does.
    if let Some(stop) = wire.stop() {
        let _ = connect::timed(ws.send(Message::text(stop))).await;
    }
    let _ = connect::timed(ws.close(None)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if message.is_close() {
            break;
        }
    }
    stats
}

/// Streams the call's frames and matches echoes; `Err` on a socket failure or an early
/// close.
async fn stream(
    shared: &Shared,
    ws: &mut Socket,
    wire: &mut Wire,
    stats: &mut CallStats,
) -> Result<(), String> {
    let t0 = Instant::now();
    let frame = shared.frame;
    let total = shared.frames_per_call;
    let vonage = shared.options.dialect == Dialect::Vonage;
    let mut ring = [(u32::MAX, t0); RING];
    let mut batch: Vec<u64> = Vec::with_capacity(BATCH);
    let mut b64 = String::with_capacity(shared.rest_b64.len() + 8);
    let mut n: u64 = 0;
    let mut last_sent = t0;
    let mut drain_until: Option<Instant> = None;
    let flush_batch = |batch: &mut Vec<u64>| {
        if batch.is_empty() {
            return;
        }
        let mut h = shared
            .turnaround
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for &us in batch.iter() {
            h.saturating_record(us.max(1));
        }
        batch.clear();
    };
    let outcome = loop {
        let now = Instant::now();
        // Send what is due.
        let mut fed = false;
        while n < total {
            let due = t0 + frame * u32::try_from(n).unwrap_or(u32::MAX);
            if due > now {
                break;
            }
            let lag = now.saturating_duration_since(due);
            if lag > frame {
                stats.late += 1;
            }
            stats.max_lag = stats.max_lag.max(lag);
            let counter = n as u32;
            let mut tag = [0u8; TAG_LEN];
            tag[..2].copy_from_slice(&TAG);
            tag[2..].copy_from_slice(&counter.to_le_bytes());
            let message = if vonage {
                let mut payload = Vec::with_capacity(TAG_LEN + shared.rest.len());
                payload.extend_from_slice(&tag);
                payload.extend_from_slice(&shared.rest);
                Message::binary(payload)
            } else {
                b64.clear();
                base64::engine::general_purpose::STANDARD.encode_string(tag, &mut b64);
                b64.push_str(&shared.rest_b64);
                Message::text(wire.media(&b64))
            };
            ring[(counter as usize) % RING] = (counter, Instant::now());
            if let Err(e) = connect::timed(ws.feed(message)).await {
                tracing::debug!(error = %e, "load call failed while sending");
                return Err(e);
            }
            fed = true;
            n += 1;
            stats.sent += 1;
            last_sent = Instant::now();
        }
        if fed && let Err(e) = connect::timed(ws.flush()).await {
            return Err(e);
        }
        if n >= total {
            let until = *drain_until.get_or_insert(last_sent + shared.options.drain);
            if stats.matched >= stats.sent || now >= until {
                break Ok(());
            }
        }
        let deadline = match drain_until {
            Some(d) => d,
            None => t0 + frame * u32::try_from(n).unwrap_or(u32::MAX),
        };
        tokio::select! {
            biased;
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    if let Some(counter) = tag_in_text(text.as_str()) {
                        match_echo(counter, &mut ring, stats, &mut batch);
                    }
                }
                Some(Ok(Message::Binary(data))) => {
                    if let Some(counter) = tag_in_bytes(&data) {
                        match_echo(counter, &mut ring, stats, &mut batch);
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    break Err(format!(
                        "the server closed the call early (close code {})",
                        frame.map_or_else(|| "none".to_owned(), |f| u16::from(f.code).to_string())
                    ));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break Err(e.to_string()),
                None => break Err("the connection closed early".to_owned()),
            },
            () = tokio::time::sleep_until(deadline.into()) => {}
        }
        if batch.len() >= BATCH {
            flush_batch(&mut batch);
        }
    };
    flush_batch(&mut batch);
    stats.sending_time = last_sent.saturating_duration_since(t0) + frame;
    outcome
}

fn match_echo(
    counter: u32,
    ring: &mut [(u32, Instant); RING],
    stats: &mut CallStats,
    batch: &mut Vec<u64>,
) {
    stats.received += 1;
    let slot = &mut ring[(counter as usize) % RING];
    if slot.0 == counter {
        let rtt = slot.1.elapsed();
        slot.0 = u32::MAX;
        stats.matched += 1;
        batch.push(rtt.as_micros() as u64);
    }
}

fn tag_in_bytes(data: &[u8]) -> Option<u32> {
    if data.len() >= TAG_LEN && data[..2] == TAG {
        Some(u32::from_le_bytes([data[2], data[3], data[4], data[5]]))
    } else {
        None
    }
}

/// Finds `"payload"` in a JSON frame and decodes the tag from the first 8 base64
/// characters of its value, without parsing the frame.
fn tag_in_text(text: &str) -> Option<u32> {
    // Carriers put the audio in `media.payload`, Voxline in `audio`.
    let key = if text.contains("\"payload\"") {
        "\"payload\""
    } else {
        "\"audio\""
    };
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let b64 = rest.get(..8)?;
    let mut tag = [0u8; 6];
    let n = base64::engine::general_purpose::STANDARD
        .decode_slice(b64, &mut tag)
        .ok()?;
    if n == TAG_LEN {
        tag_in_bytes(&tag)
    } else {
        None
    }
}

/// This process's CPU time (user + system) from `/proc/self/stat`, assuming the usual
/// 100 clock ticks per second.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn max_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_millis_are_nearest_rank() {
        let values: Vec<f64> = (1..=200).rev().map(f64::from).collect();
        let p = Percentiles::of_millis(&values);
        assert_eq!(p.count, 200);
        assert_eq!(
            (p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms),
            (100.0, 180.0, 198.0, 200.0)
        );
        assert!((p.mean_ms - 100.5).abs() < 1e-9);
        assert_eq!(Percentiles::of_millis(&[]), Percentiles::default());
    }

    #[test]
    fn tags_are_found_in_json_and_binary() {
        let mut tag = [0u8; 6];
        tag[..2].copy_from_slice(&TAG);
        tag[2..].copy_from_slice(&123_456u32.to_le_bytes());
        let mut payload = tag.to_vec();
        payload.extend([0xFF; 154]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&payload);
        let compact = format!(r#"{{"event":"media","media":{{"payload":"{b64}"}}}}"#);
        let spaced = format!(r#"{{"event": "media", "media": {{"payload" : "{b64}"}}}}"#);
        assert_eq!(tag_in_text(&compact), Some(123_456));
        assert_eq!(tag_in_text(&spaced), Some(123_456));
        assert_eq!(tag_in_bytes(&payload), Some(123_456));
        assert_eq!(
            tag_in_text(r#"{"event":"media","media":{"payload":"//////8="}}"#),
            None
        );
        assert_eq!(tag_in_text(r#"{"event":"mark"}"#), None);
        assert_eq!(tag_in_bytes(&[0; 3]), None);
    }

    #[test]
    fn cpu_time_is_readable_here() {
        assert!(cpu_time().is_some());
        assert!(max_rss_kib().is_some_and(|k| k > 0));
    }
}
