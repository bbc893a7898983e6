//! Call limits, health routes, malformed frames, idle timeout and graceful shutdown,
//! over real loopback sockets.

mod common;

use std::time::Duration;

use common::{TestServer, get, metric, next_json, twilio_call, twilio_media};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use voxline_server::echo::EchoFactory;
use voxline_server::{EventKind, ServerConfig};

#[tokio::test]
async fn the_call_beyond_the_limit_is_refused_and_counted() {
    let config = ServerConfig {
        max_calls: 2,
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, EchoFactory::immediate()).await;
    let url = server.ws_url("/twilio");
    let first = twilio_call(&url, "CA1").await;
    let second = twilio_call(&url, "CA2").await;
    let (status, _) = get(server.addr, "/ready").await;
    assert_eq!(status, 503, "at capacity");

    match tokio_tungstenite::connect_async(&url).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("the third call must get HTTP 503, got {other:?}"),
    }
    let (_, metrics) = get(server.addr, "/metrics").await;
    assert_eq!(
        metric(
            &metrics,
            r#"voxline_calls_rejected_total{reason="capacity"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "voxline_calls_active"),
        Some(2.0),
        "{metrics}"
    );

    drop(first);
    drop(second);
    // The slots free up once the server sees the sockets close.
    for _ in 0..100 {
        if server.server.active_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(server.addr, "/ready").await.0, 200);
    let _third = twilio_call(&url, "CA3").await;
}

#[tokio::test]
async fn service_routes_answer() {
    let server = TestServer::start(ServerConfig::default(), EchoFactory::immediate()).await;
    let (status, body) = get(server.addr, "/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).expect("JSON health");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["active_calls"], 0);
    assert_eq!(get(server.addr, "/live").await.0, 200);
    assert_eq!(get(server.addr, "/ready").await.0, 200);
    let (status, body) = get(server.addr, "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "voxline_calls_active",
        "voxline_frames_in_total",
        "voxline_call_duration_seconds_bucket",
    ] {
        assert!(body.contains(name), "{name} missing from:\n{body}");
    }
    assert_eq!(
        get(server.addr, "/anything").await.0,
        426,
        "a plain GET on a call path asks for an upgrade"
    );
}

#[tokio::test]
async fn malformed_frames_are_reported_and_the_call_continues() {
    let server = TestServer::start(ServerConfig::default(), EchoFactory::immediate()).await;
    let mut events = server.server.bus().subscribe();
    let mut socket = twilio_call(&server.ws_url("/twilio"), "CA-bad").await;
    socket
        .send(Message::text("this is not json"))
        .await
        .expect("send");
    socket
        .send(Message::text(r#"{"event":"media","streamSid":"MZ00000000000000000000000000000001","media":{"payload":"***"}}"#))
        .await
        .expect("send");
    socket
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .expect("send");
    socket
        .send(twilio_media(2, &[0x55; 160]))
        .await
        .expect("send");
    let echo = next_json(&mut socket, Duration::from_secs(5))
        .await
        .expect("the good frame is echoed");
    assert_eq!(echo["event"], "media");
    assert_eq!(echo["streamSid"], "MZ00000000000000000000000000000001");

    let (_, metrics) = get(server.addr, "/metrics").await;
    assert_eq!(
        metric(&metrics, r#"voxline_decode_errors_total{dialect="twilio"}"#),
        Some(3.0),
        "{metrics}"
    );
    let mut errors = 0;
    while let Ok(event) = events.try_recv() {
        if let EventKind::Error { message } = &event.kind {
            assert!(message.contains("twilio"), "{message}");
            assert_eq!(&*event.call_id, "CA-bad");
            errors += 1;
        }
    }
    assert_eq!(errors, 3);
}

#[tokio::test]
async fn a_silent_carrier_is_hung_up_on() {
    let config = ServerConfig {
        idle_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let server = TestServer::start(config, EchoFactory::immediate()).await;
    let mut socket = twilio_call(&server.ws_url("/twilio"), "CA-idle").await;
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(message) = socket.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|f| f.reason.to_string());
            }
        }
        None
    })
    .await
    .expect("closed within the timeout");
    assert_eq!(closed.as_deref(), Some("idle timeout"));
}

#[tokio::test]
async fn shutdown_drains_then_closes_live_calls() {
    let config = ServerConfig {
        shutdown_grace: Duration::from_millis(500),
        ..ServerConfig::default()
    };
    let mut server = TestServer::start(config, EchoFactory::immediate()).await;
    let addr = server.addr;
    let url = server.ws_url("/twilio");
    let mut socket = twilio_call(&url, "CA-live").await;
    let task = server.shutdown();

    // While draining: not ready, no new calls, the live call still works.
    let mut ready = 0;
    for _ in 0..50 {
        ready = get(addr, "/ready").await.0;
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ready, 503);
    match tokio_tungstenite::connect_async(&url).await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("no new calls while draining, got {other:?}"),
    }
    socket
        .send(twilio_media(2, &[0x55; 160]))
        .await
        .expect("send");
    assert!(
        next_json(&mut socket, Duration::from_secs(2))
            .await
            .is_some(),
        "the live call is still served"
    );

    // After the grace period the call is closed with 1001 and the server exits.
    let code = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(message) = socket.next().await {
            if let Ok(Message::Close(frame)) = message {
                return frame.map(|f| u16::from(f.code));
            }
        }
        None
    })
    .await
    .expect("closed");
    assert_eq!(code, Some(1001));
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("server exits")
        .expect("join")
        .expect("serve");
}

/// Opening frames and one media frame per dialect, written from the spec by hand.
fn dialect_frames(dialect: &str) -> (Vec<Message>, Message) {
    use base64::Engine;
    let b64 = |n: usize, byte: u8| base64::engine::general_purpose::STANDARD.encode(vec![byte; n]);
    let text = |v: serde_json::Value| Message::text(v.to_string());
    match dialect {
        "exotel" => (
            vec![
                text(serde_json::json!({"event": "connected"})),
                text(
                    serde_json::json!({"event": "start", "sequence_number": "1", "stream_sid": "MZ1", "start": {
                    "stream_sid": "MZ1", "call_sid": "CA1", "account_sid": "AC1", "from": "+911", "to": "+912",
                    "custom_parameters": {}, "media_format": {"encoding": "audio/x-raw", "sample_rate": "8000", "bit_rate": "16"}}}),
                ),
            ],
            text(
                serde_json::json!({"event": "media", "sequence_number": "2", "stream_sid": "MZ1",
                "media": {"chunk": "1", "timestamp": "0", "payload": b64(1600, 0)}}),
            ),
        ),
        "smartflo" => (
            vec![
                text(serde_json::json!({"event": "connected"})),
                text(
                    serde_json::json!({"event": "start", "sequenceNumber": "1", "start": {
                    "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "from": "1", "to": "2", "direction": "outbound",
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "bitRate": 64, "bitDepth": 8},
                    "customParameters": {}}}),
                ),
            ],
            text(serde_json::json!({"event": "media", "streamSid": "MZ1",
                "media": {"chunk": "1", "timestamp": "0", "payload": b64(800, 0xFF)}})),
        ),
        "twilio" => (
            vec![
                text(
                    serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
                ),
                text(
                    serde_json::json!({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
                    "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"], "customParameters": {},
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}),
                ),
            ],
            text(
                serde_json::json!({"event": "media", "sequenceNumber": "2", "streamSid": "MZ1",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": b64(160, 0xFF)}}),
            ),
        ),
        "plivo" => (
            vec![text(
                serde_json::json!({"event": "start", "sequenceNumber": 1, "start": {
                "callId": "c1", "streamId": "s1", "accountId": "MA1", "tracks": ["inbound"],
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}, "extra_headers": "a=1"}),
            )],
            text(
                serde_json::json!({"event": "media", "sequenceNumber": 2, "streamId": "s1",
                "media": {"track": "inbound", "timestamp": "0", "chunk": 1, "payload": b64(160, 0xFF)}}),
            ),
        ),
        "telnyx" => (
            vec![
                text(serde_json::json!({"event": "connected", "version": "1.0.0"})),
                text(
                    serde_json::json!({"event": "start", "sequence_number": "1", "stream_id": "st1", "start": {
                    "user_id": "u1", "call_control_id": "v3:c1", "call_session_id": "cs1", "from": "+1", "to": "+2",
                    "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}}),
                ),
            ],
            text(
                serde_json::json!({"event": "media", "sequence_number": "2", "stream_id": "st1",
                "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": b64(160, 0xFF)}}),
            ),
        ),
        _ => (
            vec![text(
                serde_json::json!({"event": "websocket:connected", "content-type": "audio/l16;rate=16000"}),
            )],
            Message::binary(vec![0u8; 640]),
        ),
    }
}

#[tokio::test]
async fn malformed_frames_in_every_dialect_are_counted_and_skipped() {
    let server = TestServer::start(ServerConfig::default(), EchoFactory::immediate()).await;
    for dialect in ["exotel", "smartflo", "twilio", "plivo", "telnyx", "vonage"] {
        let (opening, media) = dialect_frames(dialect);
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/ws"))
            .await
            .expect("upgrade");
        for frame in opening {
            socket.send(frame).await.expect("send");
        }
        let mut bad = vec![
            Message::text("not json at all"),
            Message::text(r#"{"event":"media","#),
        ];
        if dialect != "vonage" {
            // Valid JSON whose audio is not base64.
            let mut broken = match &media {
                Message::Text(t) => {
                    serde_json::from_str::<serde_json::Value>(t.as_str()).expect("json")
                }
                _ => unreachable!("JSON dialects send text media"),
            };
            broken["media"]["payload"] = serde_json::Value::String("%%% not base64 %%%".into());
            bad.push(Message::text(broken.to_string()));
        }
        let expected_errors = bad.len() as f64;
        for frame in bad {
            socket.send(frame).await.expect("send");
        }
        socket.send(media.clone()).await.expect("send");
        // The call goes on: the good frame comes back.
        let echoed = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(message)) = socket.next().await {
                match message {
                    Message::Binary(data) => return data.len() == 640,
                    Message::Text(text) => {
                        return text.as_str().contains("media")
                            || text.as_str().contains("playAudio");
                    }
                    _ => {}
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        assert!(
            echoed,
            "{dialect}: the call did not go on after malformed frames"
        );
        let (_, metrics) = get(server.addr, "/metrics").await;
        let errors = metric(
            &metrics,
            &format!(r#"voxline_decode_errors_total{{dialect="{dialect}"}}"#),
        );
        assert_eq!(errors, Some(expected_errors), "{dialect}:\n{metrics}");
    }
}
