//! The Gemini Live emulator is strict like the service: driven here with a raw
//! WebSocket client, the way the official SDK sends (mixed camelCase / snake_case).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use voxline_testkit::emulators::gemini::{BAD_KEY_REASON, GeminiEmulator, Options, Turn};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const PATH: &str = "/ws/google.ai.generativelanguage.v1.GenerativeService.BidiGenerateContent";

async fn connect(
    emulator: &GeminiEmulator,
    path: &str,
    key: Option<&str>,
) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("{}{path}", emulator.ws_url())
        .into_client_request()
        .expect("request");
    if let Some(key) = key {
        request
            .headers_mut()
            .insert("x-goog-api-key", key.parse().expect("header"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .expect("send");
}

/// The next server message: must be a binary frame of JSON. A close gives its code.
async fn next(ws: &mut Ws) -> Result<Value, (u16, String)> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(serde_json::from_slice(&b).expect("json")),
            Some(Ok(Message::Text(t))) => panic!("server JSON in a text frame: {t}"),
            Some(Ok(Message::Close(f))) => {
                return Err(f.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                }));
            }
            Some(Ok(_)) => {}
            other => panic!("connection ended: {other:?}"),
        }
    }
}

fn sdk_setup() -> Value {
    json!({"setup": {
        "model": "models/gemini-2.5-flash-native-audio-preview-12-2025",
        "generationConfig": {"responseModalities": ["AUDIO"],
            "speechConfig": {"voice_config": {"prebuilt_voice_config": {"voice_name": "Puck"}}}},
        "inputAudioTranscription": {},
        "sessionResumption": {}
    }})
}

fn pcm_frame(amplitude: f64, ms: u64) -> String {
    let n = (16 * ms) as usize;
    let mut bytes = Vec::with_capacity(n * 2);
    for i in 0..n {
        let s =
            (amplitude * (i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 16000.0).sin()) as i16;
        bytes.extend_from_slice(&s.to_le_bytes());
    }
    B64.encode(bytes)
}

#[tokio::test]
async fn setup_must_come_first() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(&mut ws, json!({"realtimeInput": {"text": "hi"}})).await;
    let (code, reason) = next(&mut ws).await.expect_err("closed");
    assert_eq!(code, 1007);
    assert!(reason.contains("first message must be setup"), "{reason}");
}

#[tokio::test]
async fn missing_key_is_refused_at_the_handshake_and_a_wrong_key_at_setup() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    match connect(&emulator, PATH, None).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        other => panic!("expected 401, got {other:?}"),
    }
    match connect(&emulator, "/ws/v1/whatever", Some("test-key")).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 404),
        other => panic!("expected 404, got {other:?}"),
    }
    let mut ws = connect(&emulator, PATH, Some("nope"))
        .await
        .expect("upgrade");
    send(&mut ws, sdk_setup()).await;
    assert_eq!(next(&mut ws).await, Err((1007, BAD_KEY_REASON.to_owned())));
}

#[tokio::test]
async fn unknown_setup_field_and_bad_audio_are_1007() {
    let emulator = GeminiEmulator::start(Options::default()).await;
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(
        &mut ws,
        json!({"setup": {"model": "models/m", "generation_config": {}, "voice": "x"}}),
    )
    .await;
    let (code, reason) = next(&mut ws).await.expect_err("closed");
    assert_eq!(code, 1007);
    assert!(reason.contains("Unknown name \"voice\""), "{reason}");

    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(&mut ws, sdk_setup()).await;
    assert!(
        next(&mut ws)
            .await
            .expect("setupComplete")
            .get("setupComplete")
            .is_some()
    );
    send(&mut ws, json!({"realtime_input": {"audio": {"data": pcm_frame(0.0, 20), "mime_type": "audio/wav"}}})).await;
    loop {
        match next(&mut ws).await {
            Ok(_) => {}
            Err((code, reason)) => {
                assert_eq!(code, 1007);
                assert!(reason.contains("MIME"), "{reason}");
                break;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn sdk_style_audio_gets_a_paced_reply_and_speech_over_it_interrupts() {
    let script = vec![Turn::new("Hello there.", Duration::from_secs(2)).heard("hi")];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(&mut ws, sdk_setup()).await;
    assert!(
        next(&mut ws)
            .await
            .expect("setup")
            .get("setupComplete")
            .is_some()
    );
    let handle = next(&mut ws).await.expect("handle");
    assert_eq!(handle["sessionResumptionUpdate"]["resumable"], true);
    // 400 ms of speech then 600 ms of silence, snake_case as the SDK sends it.
    for i in 0..50 {
        let amplitude = if i < 20 { 8000.0 } else { 0.0 };
        send(&mut ws, json!({"realtime_input": {"audio": {"data": pcm_frame(amplitude, 20), "mime_type": "audio/pcm;rate=16000"}}})).await;
    }
    let heard = next(&mut ws).await.expect("transcript");
    assert_eq!(heard["serverContent"]["inputTranscription"]["text"], "hi");
    let start = tokio::time::Instant::now();
    let first = next(&mut ws).await.expect("audio");
    assert_eq!(
        first["serverContent"]["outputTranscription"]["text"],
        "Hello there."
    );
    let part = &first["serverContent"]["modelTurn"]["parts"][0]["inlineData"];
    assert_eq!(part["mimeType"], "audio/pcm;rate=24000");
    // Paced: the next pieces come 40 ms apart on the clock.
    for _ in 0..5 {
        next(&mut ws).await.expect("audio");
    }
    assert!(start.elapsed() >= Duration::from_millis(200));
    // Barge in.
    for _ in 0..10 {
        send(&mut ws, json!({"realtimeInput": {"audio": {"data": pcm_frame(8000.0, 20), "mimeType": "audio/pcm;rate=16000"}}})).await;
    }
    loop {
        let m = next(&mut ws).await.expect("message");
        if m["serverContent"]["interrupted"] == true {
            break;
        }
    }
    let after = next(&mut ws).await.expect("turnComplete");
    assert_eq!(after["serverContent"]["turnComplete"], true);
}

#[tokio::test]
async fn tool_response_must_answer_a_pending_call_id() {
    let script = vec![Turn::new("Done.", Duration::from_millis(200)).tool_call("f", json!({}))];
    let emulator = GeminiEmulator::start(Options::with_script(script)).await;
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(&mut ws, sdk_setup()).await;
    next(&mut ws).await.expect("setupComplete");
    next(&mut ws).await.expect("handle");
    send(&mut ws, json!({"realtimeInput": {"text": "go"}})).await;
    let call = next(&mut ws).await.expect("toolCall");
    assert_eq!(call["toolCall"]["functionCalls"][0]["name"], "f");
    send(&mut ws, json!({"toolResponse": {"functionResponses": [{"id": "wrong", "name": "f", "response": {}}]}})).await;
    let (code, reason) = next(&mut ws).await.expect_err("closed");
    assert_eq!(code, 1007);
    assert!(reason.contains("wrong"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn go_away_then_close_and_resume_continues_the_script() {
    let options = Options {
        script: vec![
            Turn::new("one", Duration::from_millis(80)),
            Turn::new("two", Duration::from_millis(80)),
        ],
        go_away_after: Some(Duration::from_secs(1)),
        go_away_notice: Duration::from_secs(2),
        ..Options::default()
    };
    let emulator = GeminiEmulator::start(options).await;
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    send(&mut ws, sdk_setup()).await;
    next(&mut ws).await.expect("setupComplete");
    next(&mut ws).await.expect("handle");
    send(&mut ws, json!({"realtimeInput": {"text": "first"}})).await;
    let mut handle = String::new();
    let mut go_away = false;
    let close = loop {
        match next(&mut ws).await {
            Ok(m) => {
                if let Some(h) = m["sessionResumptionUpdate"]["newHandle"].as_str() {
                    handle = h.to_owned();
                }
                go_away |= m["goAway"]["timeLeft"] == "2s";
            }
            Err(close) => break close,
        }
    };
    assert!(go_away);
    assert_eq!(close.0, 1000);
    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    let mut setup = sdk_setup();
    setup["setup"]["sessionResumption"] = json!({"handle": handle});
    send(&mut ws, setup).await;
    next(&mut ws).await.expect("setupComplete");
    next(&mut ws).await.expect("handle");
    send(&mut ws, json!({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "second"}]}], "turnComplete": true}})).await;
    let reply = next(&mut ws).await.expect("reply");
    assert_eq!(
        reply["serverContent"]["outputTranscription"]["text"], "two",
        "state carried over"
    );

    let mut ws = connect(&emulator, PATH, Some("test-key"))
        .await
        .expect("upgrade");
    let mut setup = sdk_setup();
    setup["setup"]["sessionResumption"] = json!({"handle": "forged"});
    send(&mut ws, setup).await;
    assert_eq!(next(&mut ws).await.expect_err("closed").0, 1007);
}
