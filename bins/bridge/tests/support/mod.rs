//! The bridge on 127.0.0.1:0 against the provider emulators, and what the tests
//! measure on the audio.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use tokio::sync::oneshot;
use voxline_core::{RealtimeConfig, RealtimeModel, RetryPolicy};
use voxline_fixtures::speech::{self, Variant};
use voxline_gemini::{Gemini, GeminiConfig};
use voxline_openai::{ApiConfig, OpenAiRealtime, OpenAiRealtimeConfig};
use voxline_server::bridge::{BridgeConfig, BridgeFactory, BridgeMetrics};
use voxline_server::webhook_router;
use voxline_server::{Server, ServerConfig};
use voxline_testkit::callsim::{Audio, Dialect};
use voxline_testkit::emulators::gemini::GeminiEmulator;
use voxline_testkit::emulators::openai_realtime::{self, OpenAiRealtimeEmulator};

/// The bridge serving on loopback; stops when dropped.
pub struct Bridge {
    pub addr: SocketAddr,
    pub server: Server,
    pub metrics: BridgeMetrics,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Bridge {
    /// Hosts a `BridgeFactory` for `model` with the bridge binary's routes.
    pub async fn start(model: Arc<dyn RealtimeModel>) -> Self {
        Self::with_config(model, bridge_config()).await
    }

    pub async fn with_config(model: Arc<dyn RealtimeModel>, config: BridgeConfig) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let mut registry = Registry::default();
        let metrics = BridgeMetrics::new(&mut registry);
        let server = Server::with_registry(
            ServerConfig::default(),
            BridgeFactory::new(model, config, metrics.clone()),
            registry,
        );
        let server = server
            .clone()
            .routes(webhook_router("/webhook", server.bus()));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            server,
            metrics,
            stop: Some(stop),
        }
    }

    /// The carrier URL for `dialect` (the paths carriers are pointed at).
    pub fn url(&self, dialect: Dialect) -> String {
        format!("ws://{}{}", self.addr, path(dialect))
    }

    /// `/metrics` as text.
    pub async fn metrics_text(&self) -> String {
        http(self.addr, "GET", "/metrics", None, "").await.1
    }
}

pub fn bridge_config() -> BridgeConfig {
    BridgeConfig::new(RealtimeConfig::new(voxline_audio::AudioFormat::MULAW_8K))
}

pub fn path(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Exotel => "/media",
        Dialect::Smartflo => "/smartflo/audio",
        Dialect::Twilio => "/ws/stream/CA0001",
        _ => "/ws",
    }
}

/// Gemini Live at the emulator, without the silence watchdog.
pub fn gemini(emulator: &GeminiEmulator) -> Arc<dyn RealtimeModel> {
    let config = GeminiConfig::default()
        .api_key("test-key")
        .base_url(emulator.ws_url())
        .watchdog(None);
    Arc::new(Gemini::new(config))
}

/// OpenAI Realtime at the emulator.
pub fn openai(emulator: &OpenAiRealtimeEmulator) -> Arc<dyn RealtimeModel> {
    let api =
        ApiConfig::new(emulator.base_url()).api_key(openai_realtime::Options::default().api_key);
    Arc::new(OpenAiRealtime::new(OpenAiRealtimeConfig::with_api(
        api,
        "gpt-realtime",
    )))
}

/// A retry policy that gives up at once (unreachable-model tests).
pub fn no_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 1,
        initial: Duration::from_millis(10),
        max: Duration::from_millis(10),
    }
}

/// Utterance `index` of the US caller fixture at `rate`.
pub fn utterance(index: usize, rate: u32) -> Audio {
    let speech = speech::load("caller_en_us", rate, Variant::Clean);
    let u = &speech.utterances[index];
    let at = |ms: f64| (ms * f64::from(rate) / 1000.0) as usize;
    Audio::from_samples(speech.samples[at(u.start_ms)..at(u.end_ms)].to_vec(), rate)
}

/// A tone as measured: its pitch (zero crossings) and how long it lasts.
#[derive(Debug, Clone, Copy)]
pub struct Tone {
    pub hz: f64,
    pub duration: Duration,
    /// How well a sine at the expected pitch fits the middle half, dB.
    pub snr_db: f64,
}

/// Measures the tone in `samples` between its first and last loud sample.
pub fn tone(samples: &[i16], rate: u32, expected_hz: f64) -> Option<Tone> {
    let loud = |s: &i16| s.unsigned_abs() > 1500;
    let first = samples.iter().position(loud)?;
    let last = samples.iter().rposition(loud)?;
    let span = &samples[first..=last];
    // Rising zero crossings, with a little hysteresis against codec noise.
    let (mut rising, mut below) = (Vec::new(), false);
    for (i, &s) in span.iter().enumerate() {
        if s < -300 {
            below = true;
        } else if s > 300 && below {
            below = false;
            rising.push(i);
        }
    }
    // The mean period over runs of whole cycles: a playback gap (an underrun) or the
    // cut of a clear is skipped, not averaged in.
    let periods: Vec<usize> = rising.windows(2).map(|w| w[1] - w[0]).collect();
    let mut sorted = periods.clone();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)?;
    let steady: Vec<usize> = periods.into_iter().filter(|&p| p <= median + 2).collect();
    let hz = steady.len() as f64 * f64::from(rate) / steady.iter().sum::<usize>().max(1) as f64;
    let x = voxline_fixtures::analysis::to_f64(voxline_fixtures::analysis::middle_half(span));
    let fit = voxline_fixtures::analysis::sine_fit(&x, expected_hz, f64::from(rate));
    Some(Tone {
        hz,
        duration: Duration::from_secs_f64(span.len() as f64 / f64::from(rate)),
        snr_db: fit.snr_db(),
    })
}

/// The share of `samples`' power at `hz`, 0 to 1: Goertzel over 20 ms blocks, so
/// gaps and phase jumps between pieces of audio do not matter.
pub fn power_share(samples: &[i16], rate: u32, hz: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI * hz / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let block = (rate / 50) as usize;
    let (mut at_hz, mut total) = (0.0f64, 0.0f64);
    for chunk in samples.chunks_exact(block) {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for &x in chunk {
            let x = f64::from(x);
            total += x * x;
            let s0 = x + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        // A sine at `hz` of amplitude a gives (n a / 2)^2 here and n a^2 / 2 of energy.
        at_hz += 2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / block as f64;
    }
    if total == 0.0 {
        0.0
    } else {
        (at_hz / total).min(1.0)
    }
}

/// Asserts that `samples` hold one tone of `hz` lasting `length` (give or take 60 ms:
/// a frame of padding and the codecs' filters).
pub fn assert_tone(what: &str, samples: &[i16], rate: u32, hz: f64, length: Duration) {
    let t = tone(samples, rate, hz).unwrap_or_else(|| panic!("{what}: no tone heard"));
    assert!(
        (t.hz - hz).abs() < hz * 0.02,
        "{what}: the reply's pitch is {:.1} Hz, not {hz} Hz (audio at the wrong rate)",
        t.hz
    );
    assert!(
        t.snr_db > 20.0,
        "{what}: a {hz} Hz sine fits the reply badly ({:.1} dB)",
        t.snr_db
    );
    let diff = t.duration.as_secs_f64() - length.as_secs_f64();
    assert!(
        diff.abs() < 0.06,
        "{what}: the reply lasts {:?}, not {length:?} (audio at the wrong speed)",
        t.duration
    );
}

pub use voxline_testkit::http::request as http;

/// A metric's value from the Prometheus text.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|line| {
            line.starts_with(name_and_labels) && line[name_and_labels.len()..].starts_with(' ')
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
