//! The ElevenLabs emulator on its own, driven by a raw WebSocket client: it must be
//! as strict as the service (spec §2 and the §6 checklist).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_testkit::emulators::elevenlabs::{
    DEFAULT_API_KEY, ElevenLabsEmulator, ElevenLabsOptions,
};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const MULTI: &str = "/v1/text-to-speech/voice1/multi-stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000";

async fn open(
    emulator: &ElevenLabsEmulator,
    path: &str,
    key: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("{}{path}", emulator.ws_url())
        .into_client_request()
        .expect("request");
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("xi-api-key", key.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, value: Value) {
    ws.send(Message::Text(value.to_string().into()))
        .await
        .expect("send");
}

/// The next JSON text message, or `None` at a close.
async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(300), ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => {
                return Some(serde_json::from_str(t.as_str()).expect("json"));
            }
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// Reads until the close frame; gives its code and reason and the messages before.
async fn close_of(ws: &mut Ws) -> (u16, String, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(300), ws.next())
            .await
            .expect("in time")
        {
            Some(Ok(Message::Text(t))) => {
                before.push(serde_json::from_str(t.as_str()).expect("json"))
            }
            Some(Ok(Message::Close(Some(frame)))) => {
                return (u16::from(frame.code), frame.reason.to_string(), before);
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

fn status_of(error: tungstenite::Error) -> u16 {
    match error {
        tungstenite::Error::Http(response) => response.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_context_streams_audio_and_ends_with_is_final_echoing_its_id() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": " ", "context_id": "turn-42", "generation_config": {"chunk_length_schedule": [50]}})).await;
    // 60 characters pass the 50-character schedule: generated without a flush.
    send(
        &mut ws,
        json!({"text": "a".repeat(59) + " ", "context_id": "turn-42"}),
    )
    .await;
    let mut audio = 0;
    while audio < 59 * 10 * 8 {
        let m = next_json(&mut ws).await.expect("audio");
        assert_eq!(m["contextId"], "turn-42");
        audio += base64_len(&m["audio"]);
    }
    send(
        &mut ws,
        json!({"context_id": "turn-42", "close_context": true}),
    )
    .await;
    assert_eq!(
        next_json(&mut ws).await,
        Some(json!({"isFinal": true, "contextId": "turn-42"}))
    );
}

fn base64_len(v: &Value) -> usize {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("base64")
        .len()
}

#[tokio::test]
async fn changing_voice_settings_after_the_first_message_closes_1008() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(
        &mut ws,
        json!({"text": " ", "context_id": "c", "voice_settings": {"stability": 0.5}}),
    )
    .await;
    // Repeating them unchanged is fine.
    send(
        &mut ws,
        json!({"text": "Hi ", "context_id": "c", "voice_settings": {"stability": 0.5}}),
    )
    .await;
    send(
        &mut ws,
        json!({"text": "there ", "context_id": "c", "voice_settings": {"stability": 0.9}}),
    )
    .await;
    let (code, reason, before) = close_of(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.starts_with("voice_settings field must be provided in the first message"));
    assert_eq!(before.last().map(|m| m["code"].clone()), Some(json!(1008)));
}

#[tokio::test]
async fn a_keepalive_stamped_before_the_init_makes_the_init_fail() {
    // pipecat #4527: the keepalive became the context's first message, without
    // voice_settings, so the real init was refused.
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": "", "context_id": "c"})).await;
    send(
        &mut ws,
        json!({"text": " ", "context_id": "c", "voice_settings": {"speed": 1.1}}),
    )
    .await;
    let (code, reason, _) = close_of(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.starts_with("voice_settings field"));
}

#[tokio::test]
async fn a_sixth_context_is_refused_even_when_opened_by_a_flush() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    for i in 0..5 {
        send(&mut ws, json!({"text": " ", "context_id": format!("c{i}")})).await;
    }
    // A flush for an unknown id opens a phantom context (pipecat #4126).
    send(&mut ws, json!({"context_id": "phantom", "flush": true})).await;
    let (code, _, before) = close_of(&mut ws).await;
    assert_eq!(code, 1008);
    assert_eq!(
        before.last().map(|m| m["error"].clone()),
        Some(json!("max_active_conversations"))
    );
}

#[tokio::test]
async fn a_closed_context_frees_its_slot_after_is_final() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    for i in 0..5 {
        send(&mut ws, json!({"text": " ", "context_id": format!("c{i}")})).await;
    }
    send(&mut ws, json!({"context_id": "c0", "close_context": true})).await;
    assert_eq!(
        next_json(&mut ws).await,
        Some(json!({"isFinal": true, "contextId": "c0"}))
    );
    send(&mut ws, json!({"text": " ", "context_id": "c5"})).await;
    send(
        &mut ws,
        json!({"text": "Fine. ", "context_id": "c5", "flush": true}),
    )
    .await;
    let m = next_json(&mut ws).await.expect("audio");
    assert_eq!(m["contextId"], "c5");
    assert!(emulator.closes().is_empty());
}

#[tokio::test]
async fn auth_is_the_header_or_the_first_message() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let refused = open(&emulator, MULTI, Some("wrong"))
        .await
        .expect_err("refused");
    assert_eq!(status_of(refused), 401);

    // No header: the first message must carry the key.
    let mut ws = open(&emulator, MULTI, None).await.expect("open");
    send(&mut ws, json!({"text": " ", "context_id": "c"})).await;
    let (code, reason, _) = close_of(&mut ws).await;
    assert_eq!((code, reason.as_str()), (1008, "Invalid API key"));

    let mut ws = open(&emulator, MULTI, None).await.expect("open");
    send(
        &mut ws,
        json!({"text": " ", "context_id": "c", "xi_api_key": DEFAULT_API_KEY}),
    )
    .await;
    send(
        &mut ws,
        json!({"text": "Ok. ", "context_id": "c", "flush": true}),
    )
    .await;
    assert!(
        next_json(&mut ws)
            .await
            .is_some_and(|m| m.get("audio").is_some())
    );
}

#[tokio::test]
async fn query_parameters_are_validated_at_the_handshake() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let base = "/v1/text-to-speech/v/multi-stream-input";
    for (query, status) in [
        ("?outputFormat=ulaw_8000", 422),
        ("?output_format=ulaw_16000", 422),
        ("?output_format=alaw_8000", 422),
        ("?inactivity_timeout=500", 422),
        ("?auto_mode=yes", 422),
        ("?model_id=eleven_multilingual_v2&language_code=en", 400),
    ] {
        let error = open(&emulator, &format!("{base}{query}"), Some(DEFAULT_API_KEY))
            .await
            .expect_err(query);
        assert_eq!(status_of(error), status, "{query}");
    }
    let ok = "?model_id=eleven_flash_v2_5&language_code=en&output_format=pcm_8000&inactivity_timeout=180&auto_mode=true&sync_alignment=false";
    open(&emulator, &format!("{base}{ok}"), Some(DEFAULT_API_KEY))
        .await
        .expect("accepted");
}

#[tokio::test]
async fn unknown_fields_and_binary_frames_are_refused() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": " ", "contextId": "c"})).await;
    let (code, reason, _) = close_of(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.contains("contextId"));

    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    ws.send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("send");
    let (code, _, _) = close_of(&mut ws).await;
    assert_eq!(code, 1003);
}

/// Real time here (this crate's tests have no paused clock; the adapter's tests drive
/// the timeout under paused time): a 1 s timeout, keepalives every 200 ms.
#[tokio::test]
async fn inactivity_closes_1008_after_the_timeout_unless_kept_alive() {
    let options = ElevenLabsOptions {
        default_inactivity_timeout: Duration::from_secs(1),
        ..ElevenLabsOptions::default()
    };
    let emulator = ElevenLabsEmulator::start(options).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": " ", "context_id": "c"})).await;
    // Keepalives for the context hold it open past the timeout...
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        send(&mut ws, json!({"text": "", "context_id": "c"})).await;
    }
    assert!(emulator.closes().is_empty());
    // ...and then silence.
    let (code, reason, before) = close_of(&mut ws).await;
    assert_eq!(code, 1008);
    assert!(reason.len() <= 123);
    assert!(
        reason.starts_with("Have not received a new text input within the timeout of 1 seconds")
    );
    assert_eq!(
        before.last().map(|m| m["error"].clone()),
        Some(json!("input_timeout_exceeded"))
    );
}

#[tokio::test]
async fn stream_input_takes_the_sdk_first_message_and_ends_on_empty_text() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let path =
        "/v1/text-to-speech/v/stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000";
    let mut ws = open(&emulator, path, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    // What the official SDK sends first (spec §8).
    send(
        &mut ws,
        json!({"text": " ", "try_trigger_generation": true, "voice_settings": null,
                         "generation_config": {"chunk_length_schedule": [50]}}),
    )
    .await;
    send(&mut ws, json!({"text": "Hello world.  "})).await;
    send(&mut ws, json!({"text": ""})).await;
    let mut audio = 0;
    loop {
        let m = next_json(&mut ws).await.expect("message");
        assert!(
            m.get("contextId").is_none(),
            "no context ids on stream-input"
        );
        if m["isFinal"] == json!(true) {
            break;
        }
        audio += base64_len(&m["audio"]);
    }
    assert_eq!(audio, emulator.audio_bytes_for("Hello world.", "ulaw_8000"));
    let (code, _, _) = close_of(&mut ws).await;
    assert_eq!(code, 1000);

    let mut ws = open(&emulator, path, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": "Hello"})).await;
    let (code, _, _) = close_of(&mut ws).await;
    assert_eq!(code, 1008, "the first text must be a single space");
}

#[tokio::test]
async fn close_socket_finishes_every_context_then_closes_1000() {
    let emulator = ElevenLabsEmulator::start(ElevenLabsOptions::default()).await;
    let mut ws = open(&emulator, MULTI, Some(DEFAULT_API_KEY))
        .await
        .expect("open");
    send(&mut ws, json!({"text": " ", "context_id": "a"})).await;
    send(
        &mut ws,
        json!({"text": "One. ", "context_id": "a", "flush": true}),
    )
    .await;
    send(&mut ws, json!({"close_socket": true})).await;
    let (code, _, before) = close_of(&mut ws).await;
    assert_eq!(code, 1000);
    assert_eq!(
        before.last(),
        Some(&json!({"isFinal": true, "contextId": "a"}))
    );
    assert!(before[0].get("audio").is_some());
}
