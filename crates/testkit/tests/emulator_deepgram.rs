//! The Deepgram emulator against a raw WebSocket client: it refuses what the real
//! service refuses and answers control messages as the spec says.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_testkit::emulators::deepgram::{
    DeepgramEmulator, Frame, Line, NET0001_REASON, Options,
};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PHONE: &str = "model=nova-3&encoding=mulaw&sample_rate=8000";

async fn connect(
    emulator: &DeepgramEmulator,
    query: &str,
    auth: Option<&str>,
) -> Result<Socket, Error> {
    let mut request = format!("{}/v1/listen?{query}", emulator.ws_url())
        .into_client_request()
        .expect("request");
    if let Some(auth) = auth {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(auth).expect("header"),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

fn token() -> String {
    format!("Token {}", Options::default().api_key)
}

/// The refusal's status, `dg-error` header and JSON body.
async fn refused(
    emulator: &DeepgramEmulator,
    query: &str,
    auth: Option<&str>,
) -> (u16, String, Value) {
    match connect(emulator, query, auth).await {
        Err(Error::Http(response)) => {
            let reason = response
                .headers()
                .get("dg-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let body = response
                .body()
                .as_deref()
                .map(|b| serde_json::from_slice(b).expect("JSON body"))
                .unwrap_or_default();
            (response.status().as_u16(), reason, body)
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("upgrade accepted for {query}"),
    }
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await.expect("open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).expect("JSON"),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

async fn next_close(socket: &mut Socket) -> (u16, String) {
    loop {
        match socket.next().await {
            Some(Ok(Message::Close(Some(c)))) => return (u16::from(c.code), c.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_handshake_needs_the_token_and_valid_options() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let (status, reason, body) = refused(&emulator, PHONE, None).await;
    assert_eq!(
        (status, body["err_code"].as_str()),
        (401, Some("INVALID_AUTH"))
    );
    assert_eq!(reason, "Invalid credentials.");
    let (status, ..) = refused(&emulator, PHONE, Some("Bearer test-deepgram-key")).await;
    assert_eq!(status, 401);

    let token = token();
    for (query, needle) in [
        ("model=nova-3&encoding=mulaw", "sample_rate is required"),
        (
            "model=nova-3&encoding=mp3&sample_rate=8000",
            "unsupported encoding",
        ),
        ("encoding=mulaw&sample_rate=8000", "model is required"),
        (
            "model=nova-3&encoding=mulaw&sample_rate=8000&punctuate=1",
            "true or false",
        ),
        (
            "model=nova-3&encoding=mulaw&sample_rate=8000&utterance_end_ms=1000",
            "interim_results",
        ),
        (
            "model=nova-3&encoding=mulaw&sample_rate=8000&vad_event=true",
            "unknown query parameter",
        ),
    ] {
        let (status, reason, body) = refused(&emulator, query, Some(&token)).await;
        assert_eq!(status, 400, "{query}");
        assert!(reason.contains(needle), "{query}: {reason}");
        assert_eq!(body["err_msg"].as_str(), Some(reason.as_str()));
    }
    let socket = connect(&emulator, PHONE, Some(&token))
        .await
        .expect("valid");
    drop(socket);
    let statuses: Vec<u16> = emulator.handshakes().iter().map(|h| h.status).collect();
    assert_eq!(statuses, [401, 401, 400, 400, 400, 400, 400, 400, 101]);
}

#[tokio::test]
async fn control_messages_are_answered_as_the_spec_says() {
    let emulator = DeepgramEmulator::start(Options::with_script(vec![Line::new(
        "Hello there.",
        0.1,
        0.5,
    )]))
    .await;
    let mut socket = connect(
        &emulator,
        &format!("{PHONE}&punctuate=true"),
        Some(&token()),
    )
    .await
    .expect("connect");
    // An unknown control message: a SchemaError, and the stream stays open.
    socket
        .send(Message::text(r#"{"type":"Flush"}"#))
        .await
        .expect("send");
    let error = next_json(&mut socket).await;
    assert_eq!(
        (error["type"].as_str(), error["variant"].as_str()),
        (Some("Error"), Some("SchemaError"))
    );
    // KeepAlive: no answer. 0.3 s of audio, then Finalize flushes "Hello".
    socket
        .send(Message::text(r#"{"type":"KeepAlive"}"#))
        .await
        .expect("send");
    socket
        .send(Message::binary(vec![0xFFu8; 2400]))
        .await
        .expect("send");
    socket
        .send(Message::text(r#"{"type":"Finalize"}"#))
        .await
        .expect("send");
    let result = next_json(&mut socket).await;
    assert_eq!(result["type"], "Results");
    assert_eq!(result["is_final"], true);
    assert_eq!(result["from_finalize"], true);
    assert_eq!(result["channel"]["alternatives"][0]["transcript"], "Hello");
    // CloseStream: the rest, Metadata with the audio duration, close 1000.
    socket
        .send(Message::binary(vec![0xFFu8; 5600]))
        .await
        .expect("send");
    socket
        .send(Message::text(r#"{"type":"CloseStream"}"#))
        .await
        .expect("send");
    let mut last = next_json(&mut socket).await;
    while last["type"] != "Metadata" {
        last = next_json(&mut socket).await;
    }
    assert_eq!(last["duration"], 1.0);
    assert_eq!(next_close(&mut socket).await.0, 1000);
    let controls: Vec<String> = emulator
        .control_messages()
        .into_iter()
        .map(|(_, t)| t)
        .collect();
    assert_eq!(controls, ["Flush", "KeepAlive", "Finalize", "CloseStream"]);
}

#[tokio::test]
async fn an_empty_binary_frame_closes_the_stream() {
    let emulator = DeepgramEmulator::start(Options::default()).await;
    let mut socket = connect(&emulator, PHONE, Some(&token()))
        .await
        .expect("connect");
    socket
        .send(Message::binary(vec![0xFFu8; 800]))
        .await
        .expect("send");
    socket
        .send(Message::binary(Vec::new()))
        .await
        .expect("send");
    let metadata = next_json(&mut socket).await;
    assert_eq!(metadata["type"], "Metadata");
    assert_eq!(metadata["duration"], 0.1);
    assert_eq!(next_close(&mut socket).await.0, 1000);
    assert!(
        emulator
            .received()
            .iter()
            .any(|r| r.frame == Frame::EmptyBinary)
    );
}

#[tokio::test]
async fn an_idle_stream_is_closed_with_1011_net_0001() {
    // The default is Deepgram's 10 s (the adapter tests drive it on a paused clock);
    // a short one here, on the real clock, checks only that a KeepAlive postpones it.
    let emulator =
        DeepgramEmulator::start(Options::default().idle_timeout(Duration::from_millis(300))).await;
    let mut socket = connect(&emulator, PHONE, Some(&token()))
        .await
        .expect("connect");
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    socket
        .send(Message::text(r#"{"type":"KeepAlive"}"#))
        .await
        .expect("send");
    let (code, reason) = next_close(&mut socket).await;
    assert_eq!((code, reason.as_str()), (1011, NET0001_REASON));
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "postponed by the KeepAlive"
    );
    assert_eq!(Options::default().idle_timeout, Duration::from_secs(10));
}
