//! The OpenAI Realtime emulator on its own, driven by a raw WebSocket client: it
//! refuses what the service refuses, the way the service does.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_testkit::emulators::openai_realtime::{OpenAiRealtimeEmulator, Options, Reply};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn open(emulator: &OpenAiRealtimeEmulator, key: &str) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("{}/realtime?model=gpt-realtime", emulator.base_url())
        .into_client_request()
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    let (ws, _) = tokio_tungstenite::connect_async_with_config(request, None, true).await?;
    Ok(ws)
}

async fn next(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("json");
            if v["type"] != "rate_limits.updated" {
                return v;
            }
        }
    }
}

/// The next event of `kind`, skipping others.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["type"] == kind {
            return v;
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

fn session(format: &str) -> Value {
    json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"format": {"type": format}}, "output": {"format": {"type": format}}}}})
}

#[tokio::test]
async fn wrong_key_is_refused_with_401_and_the_error_body() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    match open(&emulator, "nope").await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().expect("body")).expect("json");
            assert_eq!(body["error"]["code"], "invalid_api_key");
            assert_eq!(body["error"]["type"], "invalid_request_error");
        }
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn session_update_needs_type_realtime_and_refuses_beta_fields() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let mut ws = open(&emulator, "test-openai-key").await.expect("open");
    assert_eq!(next(&mut ws).await["type"], "session.created");

    send(
        &mut ws,
        json!({"type": "session.update", "event_id": "c1", "session": {"instructions": "x"}}),
    )
    .await;
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["code"], "missing_required_parameter");
    assert_eq!(e["error"]["param"], "session.type");
    assert_eq!(e["error"]["event_id"], "c1");

    send(&mut ws, json!({"type": "session.update", "session": {"type": "realtime", "input_audio_format": "g711_ulaw"}})).await;
    let e = next(&mut ws).await;
    assert_eq!(e["error"]["code"], "unknown_parameter");
    assert_eq!(e["error"]["param"], "session.input_audio_format");

    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await["error"]["param"],
        "session.audio.input.format.rate"
    );

    send(
        &mut ws,
        json!({"type": "session.update", "session": {"type": "realtime",
        "tools": [{"type": "function", "function": {"name": "f"}}]}}),
    )
    .await;
    assert_eq!(
        next(&mut ws).await["error"]["param"],
        "session.tools[0].function"
    );

    send(&mut ws, session("audio/pcmu")).await;
    let ok = next(&mut ws).await;
    assert_eq!(ok["type"], "session.updated");
    assert_eq!(
        ok["session"]["audio"]["output"]["format"]["type"],
        "audio/pcmu"
    );
}

#[tokio::test]
async fn unknown_events_and_missing_fields_get_error_events() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let mut ws = open(&emulator, "test-openai-key").await.expect("open");
    next(&mut ws).await;
    send(&mut ws, json!({"type": "response.audio.delta"})).await;
    let e = next(&mut ws).await;
    assert_eq!(e["error"]["code"], "invalid_value");
    assert_eq!(e["error"]["param"], "type");
    send(&mut ws, json!({"type": "input_audio_buffer.append"})).await;
    assert_eq!(
        next(&mut ws).await["error"]["code"],
        "missing_required_parameter"
    );
    send(&mut ws, json!({"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "call_x", "output": "{}"}})).await;
    assert_eq!(next(&mut ws).await["error"]["param"], "item.call_id");
    send(&mut ws, json!({"type": "response.cancel"})).await;
    assert_eq!(
        next(&mut ws).await["error"]["code"],
        "response_cancel_not_active"
    );
    send(&mut ws, json!({"type": "input_audio_buffer.commit"})).await;
    assert_eq!(
        next(&mut ws).await["error"]["code"],
        "input_audio_buffer_commit_empty"
    );
    // The session is still usable.
    send(&mut ws, session("audio/pcmu")).await;
    assert_eq!(next(&mut ws).await["type"], "session.updated");
}

#[tokio::test(start_paused = true)]
async fn truncation_is_limited_to_the_audio_generated() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![Reply::speech(
        "One two.",
        Duration::from_secs(1),
    )]))
    .await;
    let mut ws = open(&emulator, "test-openai-key").await.expect("open");
    next(&mut ws).await;
    send(&mut ws, session("audio/pcmu")).await;
    next(&mut ws).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let created = next_of(&mut ws, "response.created").await;
    assert!(created["response"]["id"].is_string());
    let delta = next_of(&mut ws, "response.output_audio.delta").await;
    let item = delta["item_id"].as_str().expect("item").to_owned();
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        delta["delta"].as_str().expect("delta"),
    )
    .expect("b64");
    assert_eq!(bytes.len(), 800, "100 ms of 8 kHz mu-law per delta");
    let done = next_of(&mut ws, "response.done").await;
    assert_eq!(done["response"]["status"], "completed");
    send(&mut ws, json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": 1500})).await;
    let e = next(&mut ws).await;
    assert_eq!(e["type"], "error");
    assert_eq!(e["error"]["code"], Value::Null);
    assert_eq!(
        e["error"]["message"],
        "Audio content of 1000ms is already shorter than 1500ms"
    );
    send(&mut ws, json!({"type": "conversation.item.truncate", "item_id": item, "content_index": 0, "audio_end_ms": 400})).await;
    let t = next(&mut ws).await;
    assert_eq!(t["type"], "conversation.item.truncated");
    assert_eq!(t["audio_end_ms"], 400);
}

#[tokio::test(start_paused = true)]
async fn audio_is_paced_in_real_time_and_sessions_expire() {
    let emulator = OpenAiRealtimeEmulator::start(
        Options::with_replies(vec![Reply::speech("Hi.", Duration::from_secs(2))])
            .session_max(Duration::from_secs(10)),
    )
    .await;
    let mut ws = open(&emulator, "test-openai-key").await.expect("open");
    next(&mut ws).await;
    send(&mut ws, session("audio/pcm")).await;
    next(&mut ws).await;
    send(&mut ws, json!({"type": "response.create"})).await;
    let first = next_of(&mut ws, "response.output_audio.delta").await;
    let t0 = tokio::time::Instant::now();
    assert!(first["delta"].is_string());
    next_of(&mut ws, "response.done").await;
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_millis(2100),
        "2 s of audio took {took:?}"
    );
    let e = next_of(&mut ws, "error").await;
    assert_eq!(e["error"]["code"], "session_expired");
    match ws.next().await {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected close 1001, got {other:?}"),
    }
}
