//! A call the bridge cannot serve (no API key, the model unreachable) is closed
//! cleanly (close code 1000) with a log line giving the reason and the call id; the
//! server keeps running and serving the next calls.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{Bridge, http, metric, no_retries};
use voxline_core::RealtimeModel;
use voxline_gemini::{Gemini, GeminiConfig};
use voxline_openai::{ApiConfig, OpenAiRealtime, OpenAiRealtimeConfig};
use voxline_testkit::callsim::{self, CallEnd, Dialect, Scenario};
use voxline_testkit::emulators::gemini::{self as gemini_emu, GeminiEmulator};

/// Log lines as JSON, kept for the test to read.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Self {
        let logs = Self::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .json()
            .with_current_span(true)
            .with_env_filter("info")
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// A loopback address nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("ws://{addr}")
}

/// Calls the bridge and expects it to hang up; returns the call id.
async fn refused_call(bridge: &Bridge, dialect: Dialect, what: &str) -> String {
    let report = callsim::run_scenario(
        Scenario::new(bridge.url(dialect), dialect).expect_hangup(Duration::from_secs(10)),
    )
    .await
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(report.passed(), "{what}: {report}");
    assert!(
        matches!(
            report.call.end,
            CallEnd::Server {
                code: Some(1000),
                ..
            }
        ),
        "{what}: not a clean close: {:?}",
        report.call.end
    );
    report.call.ids.call_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_the_bridge_cannot_serve_are_closed_with_the_reason_logged() {
    let logs = Logs::install();
    // Gemini with no key (the emulator would take one), OpenAI and Gemini unreachable.
    let emulator = GeminiEmulator::start(gemini_emu::Options::default()).await;
    let mut no_key = GeminiConfig::default().base_url(emulator.ws_url());
    no_key.api_key = Some(String::new());
    let cases: Vec<(&str, Dialect, Arc<dyn RealtimeModel>, &str)> = vec![
        (
            "gemini without a key",
            Dialect::Twilio,
            Arc::new(Gemini::new(no_key)),
            "Auth",
        ),
        (
            "gemini unreachable",
            Dialect::Exotel,
            Arc::new(Gemini::new(
                GeminiConfig::default()
                    .api_key("test-key")
                    .base_url(closed_port())
                    .retry(no_retries()),
            )),
            "Connection",
        ),
        (
            "openai unreachable",
            Dialect::Smartflo,
            {
                let mut api = ApiConfig::new(closed_port()).api_key("k");
                api.retry = no_retries();
                Arc::new(OpenAiRealtime::new(OpenAiRealtimeConfig::with_api(
                    api,
                    "gpt-realtime",
                )))
            },
            "Connection",
        ),
    ];
    for (what, dialect, model, kind) in cases {
        let bridge = Bridge::start(model).await;
        let first = refused_call(&bridge, dialect, what).await;
        // The server is still up: health answers and the next call is handled the same.
        let (status, body) = http(bridge.addr, "GET", "/health", None, "").await;
        assert_eq!(status, 200, "{what}: {body}");
        let second = refused_call(&bridge, dialect, what).await;
        assert_eq!(bridge.server.active_calls(), 0, "{what}");
        let text = bridge.metrics_text().await;
        assert_eq!(
            metric(&text, "voxline_bridge_sessions_total{outcome=\"failed\"}"),
            Some(2.0),
            "{what}"
        );

        let lines = logs.lines();
        for call_id in [&first, &second] {
            let line = lines
                .iter()
                .find(|l| {
                    l["fields"]["message"]
                        == "cannot open the realtime session; hanging up the call"
                        && l["span"]["call_id"] == call_id.as_str()
                })
                .unwrap_or_else(|| panic!("{what}: no log line for call {call_id}"));
            let error = line["fields"]["error"].as_str().unwrap_or_default();
            assert!(error.contains(kind), "{what}: {error}");
        }
    }
}
