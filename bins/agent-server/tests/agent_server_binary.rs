//! The `agent-server` binary as a user runs it (issue 6): with no API keys it starts,
//! says which providers are missing, answers `/health`, `/`, `/connect`, and closes a
//! call it cannot serve with a clear log line; `/ws/auth` refuses a missing token;
//! `POST /chat/text` answers one text turn through any OpenAI-compatible backend (here
//! the emulator).

use std::process::Command;
use std::time::Duration;

use voxline_testkit::callsim::{self, CallEnd, Dialect, Scenario};
use voxline_testkit::emulators::openai::{self, ChatScript, OpenAiEmulator};
use voxline_testkit::process::{self, ServerProcess};

const KEYS: [&str; 7] = [
    "DEEPGRAM_API_KEY",
    "OPENAI_API_KEY",
    "ELEVENLABS_API_KEY",
    "AZURE_SPEECH_KEY",
    "AZURE_SPEECH_REGION",
    "OPENAI_BASE_URL",
    "AUTH_TOKEN",
];

fn start(env: &[(&str, &str)]) -> (ServerProcess, u16) {
    let port = process::free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_agent-server"));
    for key in KEYS {
        command.env_remove(key);
    }
    command
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LOG_FORMAT", "json")
        .envs(env.iter().copied());
    (
        ServerProcess::spawn(command, port).expect("agent-server starts"),
        port,
    )
}

async fn wait_ready(server: &ServerProcess) {
    assert!(
        server.wait_listening().await,
        "agent-server did not start listening"
    );
}

/// SIGTERM, then every log line (each must be JSON).
fn stop(server: ServerProcess) -> Vec<serde_json::Value> {
    let (_, lines) = server.stop().expect("stop");
    process::json_lines(&lines).unwrap_or_else(|e| panic!("{e}"))
}

fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_keys_and_closes_calls_it_cannot_serve() {
    let (agent, port) = start(&[]);
    wait_ready(&agent).await;
    voxline_core::install_tls();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let health: serde_json::Value = http
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health")
        .json()
        .await
        .expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["max_calls"], 25, "MAX_CONNECTIONS defaults to 25");
    assert_eq!(health["active_calls"], 0);
    assert_eq!(health["capacity_usage"], 0.0);

    let info: serde_json::Value = http
        .get(&base)
        .send()
        .await
        .expect("/")
        .json()
        .await
        .expect("json");
    let providers = info["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 3);
    assert!(
        providers.iter().all(|p| p["active"] == false),
        "{providers:?}"
    );

    let webhook = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA42&CallStatus=completed")
        .send()
        .await
        .expect("webhook");
    assert_eq!(webhook.status(), 200, "call callbacks are taken");

    let connect = http
        .post(format!("{base}/connect"))
        .send()
        .await
        .expect("connect");
    assert_eq!(connect.status(), 200);

    let chat = http
        .post(format!("{base}/chat/text"))
        .json(&serde_json::json!({"message": "Hello"}))
        .send()
        .await
        .expect("chat");
    assert_eq!(chat.status(), 503);
    let body: serde_json::Value = chat.json().await.expect("json");
    assert_eq!(body["error"], "no language model configured");

    // A call: the server closes it cleanly instead of leaving the caller in silence.
    let report = callsim::run_scenario(
        Scenario::new(format!("ws://127.0.0.1:{port}/twilio"), Dialect::Twilio)
            .expect_hangup(Duration::from_secs(5)),
    )
    .await
    .expect("call");
    assert!(report.passed(), "{report}");
    assert!(
        matches!(report.call.end, CallEnd::Server { .. }),
        "{:?}",
        report.call.end
    );

    // /ws/auth wants a token, and none is configured.
    let refused = callsim::run_scenario(Scenario::new(
        format!("ws://127.0.0.1:{port}/ws/auth"),
        Dialect::Twilio,
    ))
    .await
    .expect_err("refused");
    assert!(refused.to_string().contains("401"), "{refused}");

    let lines = stop(agent);
    let missing = lines
        .iter()
        .filter(|l| message(l) == "provider missing")
        .count();
    assert_eq!(missing, 3, "{lines:?}");
    let unserved = lines
        .iter()
        .find(|l| message(l) == "call cannot be served; closing it")
        .expect("a log line for the call it could not serve");
    assert!(
        unserved["fields"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no language model")),
        "{unserved}"
    );
    assert!(
        unserved["span"]["call_id"].is_string(),
        "the line carries the call id: {unserved}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_text_answers_through_an_openai_compatible_backend() {
    let llm = OpenAiEmulator::start(openai::Config {
        chat: vec![ChatScript::text(["Two bedrooms, ", "noted."])],
        ..openai::Config::default()
    })
    .await;
    let prompt = tempfile::NamedTempFile::new().expect("file");
    std::fs::write(prompt.path(), "You are an estate agent.").expect("write");
    let base_url = llm.base_url();
    let (agent, port) = start(&[
        ("OPENAI_API_KEY", openai::API_KEY),
        ("OPENAI_BASE_URL", &base_url),
        ("SYSTEM_PROMPT_FILE", prompt.path().to_str().expect("path")),
    ]);
    wait_ready(&agent).await;
    voxline_core::install_tls();
    let http = reqwest::Client::new();
    let response: serde_json::Value = http
        .post(format!("http://127.0.0.1:{port}/chat/text"))
        .json(&serde_json::json!({
            "message": "Two bedrooms please.",
            "history": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello! What are you looking for?"}
            ]
        }))
        .send()
        .await
        .expect("chat")
        .json()
        .await
        .expect("json");
    assert_eq!(response["reply"], "Two bedrooms, noted.");
    assert_eq!(response["history"].as_array().map(Vec::len), Some(4));
    let sent = &llm.requests_to("/v1/chat/completions")[0].body["messages"];
    assert_eq!(sent[0]["content"], "You are an estate agent.");
    assert_eq!(sent[3]["content"], "Two bedrooms please.");

    let bad = http
        .post(format!("http://127.0.0.1:{port}/chat/text"))
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .expect("chat");
    assert_eq!(bad.status(), 400);
    drop(stop(agent));
}
