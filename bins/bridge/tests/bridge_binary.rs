//! The `bridge` binary as a user runs it: with no API key it starts, says the key is
//! missing, answers `/health` and `/metrics`, closes each call with a log line giving
//! the reason and the call id, and exits cleanly on SIGTERM. Pointed at the Gemini
//! emulator with a key, it answers a caller.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{http, utterance};
use voxline_testkit::callsim::{self, CallEnd, Dialect, Scenario};
use voxline_testkit::emulators::gemini::{GeminiEmulator, Options, Turn};
use voxline_testkit::process::{self, ServerProcess};

/// Provider keys that would switch the bridge to a real service.
const KEYS: [&str; 4] = [
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "OPENAI_API_KEY",
    "BRIDGE_API_KEY",
];

/// Starts the bridge on a free port with JSON logs; returns it and its port.
fn start(extra: &[&str]) -> (ServerProcess, u16) {
    let port = process::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bridge"));
    for key in KEYS {
        command.env_remove(key);
    }
    command.args([
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--log-format",
        "json",
        "--shutdown-grace-secs",
        "2",
    ]);
    command.args(extra);
    (
        ServerProcess::spawn(command, port).expect("bridge starts"),
        port,
    )
}

async fn wait_ready(server: &ServerProcess) {
    assert!(
        server.wait_listening().await,
        "bridge did not start listening"
    );
}

/// SIGTERM, then the exit status and every log line (each must be JSON).
fn stop(server: ServerProcess) -> (std::process::ExitStatus, Vec<serde_json::Value>) {
    let (status, lines) = server.stop().expect("stop");
    let lines = process::json_lines(&lines).unwrap_or_else(|e| panic!("{e}"));
    (status, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_key_it_starts_answers_health_and_closes_calls_with_a_reason() {
    for model in ["gemini", "openai"] {
        let (process, port) = start(&["--model", model]);
        wait_ready(&process).await;
        let addr = format!("127.0.0.1:{port}").parse().expect("address");
        let (status, body) = http(addr, "GET", "/health", None, "").await;
        assert_eq!(status, 200, "{model}: {body}");
        let health: serde_json::Value = serde_json::from_str(&body).expect("JSON health");
        assert_eq!(health["status"], "ok", "{model}");
        let (status, metrics) = http(addr, "GET", "/metrics", None, "").await;
        assert_eq!(status, 200, "{model}");
        assert!(
            metrics.contains("voxline_bridge_sessions_active"),
            "{model}: {metrics}"
        );

        // Without a key the bridge never contacts the provider: the test stays offline.
        let report = callsim::run_scenario(
            Scenario::new(format!("ws://{addr}/media"), Dialect::Exotel)
                .expect_hangup(Duration::from_secs(20)),
        )
        .await
        .expect("call");
        assert!(report.passed(), "{model}: {report}");
        assert!(
            matches!(
                report.call.end,
                CallEnd::Server {
                    code: Some(1000),
                    ..
                }
            ),
            "{model}: {:?}",
            report.call.end
        );
        let (status, _) = http(addr, "GET", "/health", None, "").await;
        assert_eq!(status, 200, "{model}: still up after the call");

        let (status, lines) = stop(process);
        assert!(
            status.success(),
            "{model}: exits cleanly on SIGTERM: {status}"
        );
        let message =
            |l: &serde_json::Value| l["fields"]["message"].as_str().unwrap_or("").to_owned();
        assert!(
            lines
                .iter()
                .any(|l| message(l).starts_with("no API key for the model")),
            "{model}: no start-up line about the key: {lines:?}"
        );
        let call_id = report.call.ids.call_id.as_str();
        assert!(
            lines.iter().any(|l| message(l)
                == "cannot open the realtime session; hanging up the call"
                && l["span"]["call_id"] == call_id),
            "{model}: no log line closing call {call_id}: {lines:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pointed_at_the_emulator_it_answers_a_caller() {
    let options = Options::with_script(vec![Turn::new("Hello.", Duration::from_millis(800))]);
    let key = options.api_key.clone();
    let emulator = GeminiEmulator::start(options).await;
    let url = emulator.ws_url();
    let (process, port) = start(&[
        "--model",
        "gemini",
        "--base-url",
        &url,
        "--api-key",
        &key,
        "--instructions",
        "Be brief.",
        "--voice",
        "Puck",
    ]);
    wait_ready(&process).await;
    let report = callsim::run_scenario(
        Scenario::new(
            format!("ws://127.0.0.1:{port}/ws/stream/CA1"),
            Dialect::Twilio,
        )
        .silence(Duration::from_millis(300))
        .play(utterance(0, 8000))
        .wait_for_audio(Duration::from_secs(15))
        .wait_until_quiet(Duration::from_secs(10))
        .hangup(),
    )
    .await
    .expect("call");
    assert!(report.passed(), "{report}");
    let setup = &emulator.setups()[0].1;
    assert_eq!(
        setup["systemInstruction"]["parts"][0]["text"], "Be brief.",
        "{setup}"
    );
    let (status, lines) = stop(process);
    assert!(status.success(), "{status}");
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["message"] == "realtime session open"),
        "{lines:?}"
    );
}
