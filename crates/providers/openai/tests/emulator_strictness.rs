//! The emulator refuses what the service refuses, with OpenAI's error shape: raw
//! requests, bypassing the adapter.

use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use voxline_testkit::emulators::openai::{API_KEY, Config, OpenAiEmulator};

async fn start() -> (OpenAiEmulator, reqwest::Client) {
    voxline_core::install_tls();
    (
        OpenAiEmulator::start(Config::default()).await,
        reqwest::Client::new(),
    )
}

/// Status and `error.message` of a response.
async fn error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    for key in ["message", "type", "param", "code"] {
        assert!(
            body["error"].get(key).is_some(),
            "error.{key} missing: {body}"
        );
    }
    (
        status,
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn chat(emulator: &OpenAiEmulator, client: &reqwest::Client, body: Value) -> (u16, String) {
    let response = client
        .post(format!("{}/chat/completions", emulator.base_url()))
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .expect("answer");
    error(response).await
}

fn user() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

#[tokio::test]
async fn auth_is_required_and_checked() {
    let (emulator, client) = start().await;
    let url = format!("{}/chat/completions", emulator.base_url());
    let body = json!({"model": "m", "messages": user()});
    let (status, message) =
        error(client.post(&url).json(&body).send().await.expect("answer")).await;
    assert_eq!(status, 401);
    assert!(
        message.starts_with("You didn't provide an API key"),
        "{message}"
    );
    let (status, message) = error(
        client
            .post(&url)
            .bearer_auth("sk-wrong-0123456789")
            .json(&body)
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        message.starts_with("Incorrect API key provided: sk-"),
        "{message}"
    );
    assert!(!message.contains("wrong-0123456789"), "the key is redacted");
}

#[tokio::test]
async fn chat_requests_are_validated_like_the_service() {
    let (emulator, client) = start().await;
    let cases = [
        (
            json!({"messages": user()}),
            "you must provide a model parameter",
        ),
        (
            json!({"model": "m"}),
            "Missing required parameter: 'messages'.",
        ),
        (
            json!({"model": "m", "messages": user(), "streaming": true}),
            "Unrecognized request argument supplied: streaming",
        ),
        (
            json!({"model": "m", "messages": user(), "stream_options": {"include_usage": true}}),
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
        ),
        (
            json!({"model": "m", "messages": user(), "parallel_tool_calls": true}),
            "Invalid value for 'parallel_tool_calls': 'parallel_tool_calls' is only allowed when 'tools' are specified.",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x"},
                {"role": "tool", "tool_call_id": "call_1", "content": "done"}]}),
            "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "user", "content": "and?"}]}),
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: call_1",
        ),
        (
            json!({"model": "m", "messages": user(), "tools": [{"type": "function",
                "function": {"name": "has space"}}]}),
            "Invalid 'tools[0].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
        ),
        (
            json!({"model": "m", "messages": user(), "temperature": 3}),
            "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
        ),
        (
            json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
            "Invalid value: 'robot'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', 'developer'.",
        ),
    ];
    for (body, expected) in cases {
        let (status, message) = chat(&emulator, &client, body.clone()).await;
        assert_eq!((status, message.as_str()), (400, expected), "{body}");
    }
}

#[tokio::test]
async fn unknown_paths_and_methods_are_invalid_urls() {
    let (emulator, client) = start().await;
    let (status, message) = error(
        client
            .post(format!("{}/chat/completion", emulator.base_url()))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(
        (status, message.as_str()),
        (404, "Invalid URL (POST /v1/chat/completion)")
    );
    let (status, _) = error(
        client
            .get(format!("{}/audio/speech", emulator.base_url()))
            .bearer_auth(API_KEY)
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(status, 404);
}

fn wav(samples: usize) -> Vec<u8> {
    let len = (samples * 2) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    for v in [1u16, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [8000u32, 16000] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [2u16, 16] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(b"data");
    out.extend_from_slice(&len.to_le_bytes());
    out.resize(out.len() + samples * 2, 0);
    out
}

/// An upload (file name and bytes), its text fields, and the expected message.
type Case = (
    Option<(&'static str, Vec<u8>)>,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

async fn transcribe(
    emulator: &OpenAiEmulator,
    client: &reqwest::Client,
    file: Option<(&'static str, Vec<u8>)>,
    fields: &[(&'static str, &'static str)],
) -> reqwest::Response {
    let mut form = Form::new();
    if let Some((name, bytes)) = file {
        form = form.part("file", Part::bytes(bytes).file_name(name));
    }
    for (k, v) in fields {
        form = form.text(*k, *v);
    }
    client
        .post(format!("{}/audio/transcriptions", emulator.base_url()))
        .bearer_auth(API_KEY)
        .multipart(form)
        .send()
        .await
        .expect("answer")
}

#[tokio::test]
async fn transcription_uploads_are_validated_like_the_service() {
    let (emulator, client) = start().await;
    let ok = transcribe(
        &emulator,
        &client,
        Some(("a.wav", wav(8000))),
        &[("model", "whisper-1")],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["usage"], json!({"type": "duration", "seconds": 1}));

    let cases: [Case; 6] = [
        (
            Some(("a.wav", wav(8000))),
            vec![],
            "you must provide a model parameter",
        ),
        (
            None,
            vec![("model", "whisper-1")],
            "Missing required parameter: 'file'.",
        ),
        (
            Some(("a.wav", wav(8000))),
            vec![("model", "whisper-1"), ("lang", "en")],
            "Unrecognized request argument supplied: lang",
        ),
        (
            Some(("a.wav", wav(8000))),
            vec![("model", "whisper-1"), ("language", "en-US")],
            "Invalid language 'en-US'. Language parameter must be specified in ISO-639-1 format.",
        ),
        (
            Some(("a.wav", wav(400))),
            vec![("model", "whisper-1")],
            "Audio file is too short. Minimum audio length is 0.1 seconds.",
        ),
        (
            Some(("a.wav", wav(8000))),
            vec![
                ("model", "gpt-4o-mini-transcribe"),
                ("response_format", "verbose_json"),
            ],
            "response_format 'verbose_json' is not compatible with model 'gpt-4o-mini-transcribe'. Use 'json' or 'text' instead.",
        ),
    ];
    for (file, fields, expected) in cases {
        let (status, message) = error(transcribe(&emulator, &client, file, &fields).await).await;
        assert_eq!((status, message.as_str()), (400, expected), "{fields:?}");
    }
    let (status, message) = error(
        transcribe(
            &emulator,
            &client,
            Some(("a.txt", b"hello".to_vec())),
            &[("model", "whisper-1")],
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(message.starts_with("Invalid file format."), "{message}");
    // JSON instead of multipart.
    let (status, message) = error(
        client
            .post(format!("{}/audio/transcriptions", emulator.base_url()))
            .bearer_auth(API_KEY)
            .json(&json!({"model": "whisper-1"}))
            .send()
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        message.starts_with("Invalid Content-Type header (application/json)"),
        "{message}"
    );
}

#[tokio::test]
async fn speech_requests_are_validated_like_the_service() {
    let (emulator, client) = start().await;
    let url = format!("{}/audio/speech", emulator.base_url());
    let base = json!({"model": "gpt-4o-mini-tts", "input": "Hi", "voice": "alloy",
        "response_format": "pcm"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let without = |key: &str| {
        let mut body = base.clone();
        body.as_object_mut().expect("object").remove(key);
        body
    };
    let long = "a".repeat(4097);
    let cases = [
        (without("input"), "Missing required parameter: 'input'."),
        (without("voice"), "Missing required parameter: 'voice'."),
        (without("model"), "you must provide a model parameter"),
        (
            with("format", json!("pcm")),
            "Unrecognized request argument supplied: format",
        ),
        (
            with("input", json!(long)),
            "Invalid 'input': string too long. Expected a string with maximum length 4096, but got a string with length 4097 instead.",
        ),
        (
            with("speed", json!(5)),
            "Invalid 'speed': decimal above maximum value. Expected a value <= 4, but got 5 instead.",
        ),
    ];
    for (body, expected) in cases {
        let response = client
            .post(&url)
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .expect("answer");
        let (status, message) = error(response).await;
        assert_eq!((status, message.as_str()), (400, expected), "{body}");
    }
    let response = client
        .post(&url)
        .bearer_auth(API_KEY)
        .json(&with("voice", json!("robot")))
        .send()
        .await
        .expect("answer");
    let (status, message) = error(response).await;
    assert_eq!(status, 400);
    assert!(message.starts_with("Invalid value: 'robot'."), "{message}");

    let ok = client
        .post(&url)
        .bearer_auth(API_KEY)
        .json(&base)
        .send()
        .await
        .expect("answer");
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.bytes().await.expect("audio").len(),
        2 * 50 * 48,
        "50 ms a character"
    );
}
