//! The Realtime adapter against the OpenAI Realtime emulator on 127.0.0.1: setup
//! handshake, audio both ways at the right rates, transcripts, barge-in with clamped
//! truncation, tool calls, session expiry with a transparent reconnect, error mapping
//! and retries. Timing runs on tokio's paused clock.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};
use voxline_audio::{AudioFormat, Encoding, g711, pcm};
use voxline_core::{
    ErrorKind, RealtimeConfig, RealtimeEvent, RealtimeEvents, RealtimeModel, RealtimeSender,
    RetryPolicy, ToolDefinition, UsageKind,
};
use voxline_openai::realtime::TurnDetection;
use voxline_openai::{ApiConfig, OpenAiRealtime, OpenAiRealtimeConfig};
use voxline_testkit::emulators::Faults;
use voxline_testkit::emulators::openai_realtime::{OpenAiRealtimeEmulator, Options, Reply};

const KEY: &str = "test-openai-key";

fn model(emulator: &OpenAiRealtimeEmulator) -> OpenAiRealtime {
    OpenAiRealtime::new(config(emulator))
}

fn config(emulator: &OpenAiRealtimeEmulator) -> OpenAiRealtimeConfig {
    OpenAiRealtimeConfig::with_api(
        ApiConfig::new(emulator.base_url()).api_key(KEY),
        "gpt-realtime",
    )
}

/// `secs` of a loud 300 Hz tone (speech to an energy VAD) then `quiet` of silence,
/// in `format`.
fn utterance(format: AudioFormat, secs: f64, quiet: f64) -> Vec<u8> {
    let rate = format.sample_rate as f64;
    let mut samples: Vec<i16> = (0..(secs * rate) as usize)
        .map(|n| (12_000.0 * (2.0 * std::f64::consts::PI * 300.0 * n as f64 / rate).sin()) as i16)
        .collect();
    samples.extend(std::iter::repeat_n(0i16, (quiet * rate) as usize));
    encode(format, &samples)
}

fn encode(format: AudioFormat, samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    match format.encoding {
        Encoding::Mulaw => g711::mulaw::encode(samples, &mut out),
        Encoding::Alaw => g711::alaw::encode(samples, &mut out),
        Encoding::Pcm16 => pcm::encode_le(samples, &mut out),
    }
    out
}

fn decode(format: AudioFormat, bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::new();
    match format.encoding {
        Encoding::Mulaw => g711::mulaw::decode(bytes, &mut out),
        Encoding::Alaw => g711::alaw::decode(bytes, &mut out),
        Encoding::Pcm16 => pcm::decode_le(bytes, &mut out).expect("even PCM"),
    }
    out
}

/// The dominant frequency by zero crossings.
fn pitch(samples: &[i16], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(rate))
}

/// Streams `audio` in 20 ms frames in real time (paused clock) from its own task.
fn stream(
    sender: &RealtimeSender,
    format: AudioFormat,
    audio: Vec<u8>,
) -> tokio::task::JoinHandle<()> {
    let sender = sender.clone();
    let frame = format.frame_bytes(20);
    tokio::spawn(async move {
        for chunk in audio.chunks(frame) {
            if sender
                .send_audio(Bytes::copy_from_slice(chunk))
                .await
                .is_err()
            {
                return;
            }
            sleep(Duration::from_millis(20)).await;
        }
    })
}

/// Reads events until `stop` matches one (included), for at most 2 min of paused time.
async fn until(
    events: &mut RealtimeEvents,
    mut stop: impl FnMut(&RealtimeEvent) -> bool,
) -> Vec<RealtimeEvent> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(e)) => {
                let done = stop(&e);
                seen.push(e);
                if done {
                    return seen;
                }
            }
            Ok(None) => panic!("session ended; saw {}", brief(&seen)),
            Err(_) => panic!("timed out; saw {}", brief(&seen)),
        }
    }
}

/// Events without their audio bytes, for failure messages.
fn brief(events: &[RealtimeEvent]) -> String {
    events
        .iter()
        .map(|e| match e {
            RealtimeEvent::Audio(a) => format!("Audio({})", a.len()),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn audio_of(events: &[RealtimeEvent]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        if let RealtimeEvent::Audio(a) = e {
            out.extend_from_slice(a);
        }
    }
    out
}

fn is(kind: &str) -> impl FnMut(&RealtimeEvent) -> bool + '_ {
    move |e| format!("{e:?}").starts_with(kind)
}

#[tokio::test(start_paused = true)]
async fn setup_sends_bearer_model_and_a_ga_session_update_first() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let tool = ToolDefinition {
        name: "lookup_order".into(),
        description: "Finds an order".into(),
        parameters: json!({"type": "object", "properties": {"order_id": {"type": "string"}}}),
    };
    let session = model(&emulator)
        .connect(
            RealtimeConfig::new(AudioFormat::MULAW_8K)
                .instructions("You are a phone agent.")
                .voice("marin")
                .tools(vec![tool]),
        )
        .await
        .expect("connect");
    let handshakes = emulator.handshakes();
    assert_eq!(handshakes.len(), 1);
    assert_eq!(handshakes[0].status, 101);
    assert_eq!(handshakes[0].query, "model=gpt-realtime");
    assert_eq!(
        handshakes[0].header("authorization"),
        Some("Bearer test-openai-key")
    );
    assert_eq!(handshakes[0].header("openai-beta"), None);
    let received = emulator.received();
    assert_eq!(received[0].kind(), "session.update");
    let s = &received[0].event["session"];
    assert_eq!(s["type"], "realtime");
    assert_eq!(s["model"], "gpt-realtime");
    assert_eq!(s["instructions"], "You are a phone agent.");
    assert_eq!(s["output_modalities"], json!(["audio"]));
    assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
    assert_eq!(
        s["audio"]["output"]["format"],
        json!({"type": "audio/pcmu"})
    );
    assert_eq!(s["audio"]["output"]["voice"], "marin");
    assert_eq!(
        s["audio"]["input"]["turn_detection"],
        json!({"type": "server_vad", "threshold": 0.5, "prefix_padding_ms": 300,
               "silence_duration_ms": 500, "create_response": true, "interrupt_response": true})
    );
    assert_eq!(
        s["audio"]["input"]["transcription"]["model"],
        "gpt-4o-mini-transcribe"
    );
    assert_eq!(
        s["tools"],
        json!([{"type": "function", "name": "lookup_order", "description": "Finds an order",
                "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}])
    );
    assert!(
        s.get("temperature").is_none(),
        "GA sessions have no temperature"
    );
    assert_eq!(emulator.sent_of_type("session.updated").len(), 1);
    assert!(emulator.sent_of_type("error").is_empty());
    drop(session);
}

#[tokio::test(start_paused = true)]
async fn alaw_and_pcm_calls_get_their_own_wire_formats() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let _a = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::ALAW_8K))
        .await
        .expect("connect");
    let _p = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::PCM16_8K))
        .await
        .expect("connect");
    let updates = emulator.received_of_type("session.update");
    assert_eq!(
        updates[0].1["session"]["audio"]["output"]["format"],
        json!({"type": "audio/pcma"})
    );
    assert_eq!(
        updates[1].1["session"]["audio"]["input"]["format"],
        json!({"type": "audio/pcm", "rate": 24000})
    );
}

#[tokio::test(start_paused = true)]
async fn mulaw_call_goes_through_untouched_and_the_reply_keeps_pitch_and_duration() {
    let emulator = OpenAiRealtimeEmulator::start(
        Options::with_replies(vec![
            Reply::speech("Your order has shipped.", Duration::from_secs(1)).tone(440.0),
        ])
        .user_transcripts(vec!["Where is my order?".into()]),
    )
    .await;
    let format = AudioFormat::MULAW_8K;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(format))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    let caller = utterance(format, 1.0, 1.0);
    let feeding = stream(&sender, format, caller.clone());
    let seen = until(&mut events, is("TurnComplete")).await;
    feeding.await.expect("stream");

    // Caller audio: forwarded byte for byte (no transcoding).
    assert_eq!(emulator.audio(0).len(), caller.len());
    assert!(emulator.audio(0) == caller);
    // Reply: exactly 1 s of 8 kHz mu-law, a 440 Hz tone (not 3x too high or low).
    let reply = audio_of(&seen);
    assert_eq!(reply.len(), 8000);
    let f = pitch(&decode(format, &reply), 8000);
    assert!((f - 440.0).abs() < 5.0, "pitch {f}");

    // Transcripts both ways, TTFB, usage, turn complete.
    let finals: Vec<(bool, String)> = seen
        .iter()
        .filter_map(|e| match e {
            RealtimeEvent::InputTranscript { text, is_final } => {
                Some((false, format!("{is_final}:{text}")))
            }
            RealtimeEvent::OutputTranscript { text, is_final } => {
                Some((true, format!("{is_final}:{text}")))
            }
            _ => None,
        })
        .filter(|(_, t)| t.starts_with("true"))
        .collect();
    assert_eq!(
        finals,
        vec![
            (false, "true:Where is my order?".to_owned()),
            (true, "true:Your order has shipped.".to_owned())
        ]
    );
    let partial: String = seen
        .iter()
        .filter_map(|e| match e {
            RealtimeEvent::OutputTranscript {
                text,
                is_final: false,
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(partial, "Your order has shipped.");
    assert!(
        seen.iter()
            .any(|e| matches!(e, RealtimeEvent::SpeechStarted))
    );
    assert!(seen.iter().any(|e| matches!(e, RealtimeEvent::Ttfb(_))));
    let done = &emulator.sent_of_type("response.done")[0].1["response"]["usage"];
    let tokens: Vec<(u64, u64)> = seen
        .iter()
        .filter_map(|e| match e {
            RealtimeEvent::Usage(u) => match u.kind {
                UsageKind::Tokens { prompt, completion } => Some((prompt, completion)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let response_usage = (
        done["input_tokens"].as_u64().expect("input"),
        done["output_tokens"].as_u64().expect("output"),
    );
    assert_eq!(tokens.last(), Some(&response_usage));
    assert_eq!(response_usage.1, 1000 / 50 + 4);
}

#[tokio::test(start_paused = true)]
async fn pcm_8k_call_is_transcoded_to_24k_and_back_without_pitch_or_length_change() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![
        Reply::speech("Hello.", Duration::from_secs(1)).tone(440.0),
    ]))
    .await;
    let format = AudioFormat::PCM16_8K;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(format))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    let caller = utterance(format, 1.0, 1.0);
    let feeding = stream(&sender, format, caller.clone());
    let seen = until(&mut events, is("TurnComplete")).await;
    feeding.await.expect("stream");

    // 2 s of 8 kHz in -> about 2 s of 24 kHz PCM16 on the wire (resampler delay aside).
    let wire = emulator.audio(0);
    let wire_ms = wire.len() as f64 / 48.0;
    assert!((wire_ms - 2000.0).abs() < 20.0, "wire audio {wire_ms} ms");
    let f = pitch(&decode(AudioFormat::PCM16_24K, &wire[..48_000]), 24_000);
    assert!((f - 300.0).abs() < 5.0, "caller pitch on the wire {f}");

    // 1 s of 24 kHz reply -> about 1 s of 8 kHz PCM16 out, still 440 Hz.
    let reply = audio_of(&seen);
    let reply_ms = reply.len() as f64 / 16.0;
    assert!((reply_ms - 1000.0).abs() < 20.0, "reply {reply_ms} ms");
    let samples = decode(format, &reply);
    let f = pitch(&samples[400..7600], 8000);
    assert!((f - 440.0).abs() < 5.0, "reply pitch {f}");
}

#[tokio::test(start_paused = true)]
async fn barge_in_interrupts_drops_the_rest_and_truncates_within_received_audio() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![
        Reply::speech(
            "This is a long answer that goes on.",
            Duration::from_secs(4),
        ),
        Reply::speech("Sure.", Duration::from_millis(500)),
    ]))
    .await;
    let format = AudioFormat::MULAW_8K;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(format))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    // Speak 1 s, stay quiet 1.5 s (the reply starts 0.5 s in), speak again.
    let mut caller = utterance(format, 1.0, 1.5);
    caller.extend(utterance(format, 0.6, 1.0));
    let feeding = stream(&sender, format, caller);
    let seen = until(&mut events, is("Interrupted")).await;
    let heard_bytes = audio_of(&seen).len();
    assert!(
        heard_bytes > 0 && heard_bytes < 32_000,
        "part of the reply: {heard_bytes}"
    );
    // The caller heard everything delivered, and claims far more: clamped.
    sender
        .truncate(Duration::from_secs(30))
        .await
        .expect("truncate");
    let after = until(&mut events, is("TurnComplete")).await;
    feeding.await.expect("stream");

    let cancelled = &emulator.sent_of_type("response.done")[0].1["response"];
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["status_details"]["reason"], "turn_detected");
    let truncates = emulator.received_of_type("conversation.item.truncate");
    assert_eq!(truncates.len(), 1);
    let t = &truncates[0].1;
    assert_eq!(t["content_index"], 0);
    assert_eq!(
        t["audio_end_ms"].as_u64(),
        Some(heard_bytes as u64 / 8),
        "mu-law: 8 bytes per ms"
    );
    assert!(
        emulator.sent_of_type("error").is_empty(),
        "{:?}",
        emulator.sent_of_type("error")
    );
    assert_eq!(
        emulator.sent_of_type("conversation.item.truncated").len(),
        1
    );
    // Nothing of the cancelled reply after the interruption: only the new 0.5 s reply.
    assert_eq!(audio_of(&after).len(), 4000);
}

#[tokio::test(start_paused = true)]
async fn truncation_uses_the_24k_wire_rate_for_pcm_calls() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![Reply::speech(
        "A long answer.",
        Duration::from_secs(3),
    )]))
    .await;
    let format = AudioFormat::PCM16_16K;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(format))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    let feeding = stream(&sender, format, utterance(format, 0.8, 0.8));
    // Wait for about a second of reply, then say the caller heard 700 ms.
    let mut got = 0usize;
    until(&mut events, |e| {
        if let RealtimeEvent::Audio(a) = e {
            got += a.len();
        }
        got >= 32_000
    })
    .await;
    sender
        .truncate(Duration::from_millis(700))
        .await
        .expect("truncate");
    sender.interrupt().await.expect("interrupt");
    feeding.await.expect("stream");
    sleep(Duration::from_millis(200)).await;
    let t = &emulator.received_of_type("conversation.item.truncate")[0].1;
    assert_eq!(t["audio_end_ms"], 700);
    assert_eq!(
        emulator.received_of_type("response.cancel").len(),
        1,
        "interrupt sends response.cancel"
    );
    assert!(emulator.sent_of_type("error").is_empty());
}

#[tokio::test(start_paused = true)]
async fn interrupt_stops_audio_at_once() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![Reply::speech(
        "A long answer.",
        Duration::from_secs(5),
    )]))
    .await;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    sender.send_text("Tell me a story").await.expect("text");
    until(&mut events, is("Audio")).await;
    sender.interrupt().await.expect("interrupt");
    // Whatever was in flight before the cancel reached the task may still come;
    // after a short while nothing more arrives.
    sleep(Duration::from_millis(50)).await;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1), events.recv()).await {}
    let late = tokio::time::timeout(Duration::from_secs(6), events.recv()).await;
    assert!(
        !matches!(late, Ok(Some(RealtimeEvent::Audio(_)))),
        "audio after cancel: {late:?}"
    );
    let done = &emulator.sent_of_type("response.done")[0].1["response"];
    assert_eq!(done["status"], "cancelled");
    assert_eq!(done["status_details"]["reason"], "client_cancelled");
}

#[tokio::test(start_paused = true)]
async fn tool_call_round_trip() {
    let emulator = OpenAiRealtimeEmulator::start(Options::with_replies(vec![
        Reply::call("lookup_order", r#"{"order_id":"A1"}"#),
        Reply::speech("It shipped yesterday.", Duration::from_millis(600)),
    ]))
    .await;
    let tool = ToolDefinition {
        name: "lookup_order".into(),
        description: "Finds an order".into(),
        parameters: json!({"type": "object"}),
    };
    let session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K).tools(vec![tool]))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    sender.send_text("Where is order A1?").await.expect("text");
    let seen = until(&mut events, is("ToolCall")).await;
    let Some(RealtimeEvent::ToolCall(call)) = seen.last() else {
        panic!("no tool call");
    };
    assert_eq!(call.name, "lookup_order");
    assert_eq!(call.arguments, r#"{"order_id":"A1"}"#);
    sender
        .send_tool_result(call.id.clone(), r#"{"status":"shipped"}"#)
        .await
        .expect("result");
    let seen = until(&mut events, is("TurnComplete")).await;
    let seen = if audio_of(&seen).is_empty() {
        // The first TurnComplete ends the function-call response.
        until(&mut events, is("TurnComplete")).await
    } else {
        seen
    };
    assert_eq!(audio_of(&seen).len(), 4800);
    assert!(
        !seen.iter().any(|e| matches!(e, RealtimeEvent::ToolCall(_))),
        "the call is reported once"
    );
    let items = emulator.received_of_type("conversation.item.create");
    assert_eq!(
        items[0].1["item"],
        json!({"type": "message", "role": "user",
               "content": [{"type": "input_text", "text": "Where is order A1?"}]})
    );
    assert_eq!(
        items[1].1["item"],
        json!({"type": "function_call_output", "call_id": call.id, "output": "{\"status\":\"shipped\"}"})
    );
    let kinds: Vec<String> = emulator
        .received()
        .iter()
        .map(|r| r.kind().to_owned())
        .filter(|k| k != "input_audio_buffer.append")
        .collect();
    assert_eq!(
        kinds,
        [
            "session.update",
            "conversation.item.create",
            "response.create",
            "conversation.item.create",
            "response.create"
        ]
    );
    assert!(emulator.sent_of_type("error").is_empty());
}

#[tokio::test(start_paused = true)]
async fn session_expiry_reconnects_reseeds_and_keeps_every_byte_of_caller_audio() {
    let emulator = OpenAiRealtimeEmulator::start(
        Options::with_replies(vec![Reply::speech(
            "Hi, how can I help?",
            Duration::from_millis(500),
        )])
        .user_transcripts(vec!["Hello there".into()])
        .session_max(Duration::from_secs(4)),
    )
    .await;
    let format = AudioFormat::MULAW_8K;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(format).instructions("Be brief."))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    // 1 s speech, then 5 s of quiet streamed across the 4 s limit.
    let caller = utterance(format, 1.0, 5.0);
    let feeding = stream(&sender, format, caller.clone());
    let seen = until(&mut events, is("Reconnected")).await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, RealtimeEvent::TurnComplete))
    );
    assert!(
        !seen.iter().any(|e| matches!(e, RealtimeEvent::Error(_))),
        "{seen:?}"
    );
    feeding.await.expect("stream");
    sleep(Duration::from_millis(100)).await;

    assert_eq!(emulator.handshakes().len(), 2);
    assert_eq!(
        emulator.sent_of_type("error")[0].1["error"]["code"],
        "session_expired"
    );
    // The new session: configured first, then seeded with the conversation.
    let second: Vec<Value> = emulator
        .received()
        .into_iter()
        .filter(|r| r.connection == 1 && r.kind() != "input_audio_buffer.append")
        .map(|r| r.event)
        .collect();
    assert_eq!(second[0]["type"], "session.update");
    assert_eq!(second[0]["session"]["instructions"], "Be brief.");
    assert_eq!(
        second[1]["item"],
        json!({"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello there"}]})
    );
    assert_eq!(
        second[2]["item"],
        json!({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hi, how can I help?"}]})
    );
    // No caller audio lost or duplicated across the two connections.
    assert_eq!(emulator.all_audio().len(), caller.len());
    assert!(emulator.all_audio() == caller);
    assert!(!emulator.audio(1).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_replaced() {
    let emulator = OpenAiRealtimeEmulator::start(
        Options::with_replies(vec![Reply::speech(
            "One two three.",
            Duration::from_secs(2),
        )])
        .faults(Faults::disconnect_after(3)),
    )
    .await;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    let (sender, mut events) = session.split();
    sender.send_text("Count").await.expect("text");
    // The drop happens 200 ms into the connection: a quick failure, still replaced.
    until(&mut events, is("Reconnected")).await;
    assert_eq!(emulator.handshakes().len(), 2);
    sender.send_text("Again").await.expect("text");
    until(&mut events, is("TurnComplete")).await;
}

#[tokio::test(start_paused = true)]
async fn a_rejected_session_update_fails_connect_once() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let config = config(&emulator).turn_detection(TurnDetection::SemanticVad {
        eagerness: "sometimes".into(),
        create_response: true,
        interrupt_response: true,
    });
    let error = OpenAiRealtime::new(config)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("rejected");
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert!(error.message.contains("invalid_value"), "{error}");
    assert!(error.message.contains("eagerness"), "{error}");
    assert_eq!(emulator.handshakes().len(), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn a_wrong_key_is_a_permanent_auth_error() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let config = OpenAiRealtimeConfig::with_api(
        ApiConfig::new(emulator.base_url()).api_key("wrong"),
        "gpt-realtime",
    );
    let error = OpenAiRealtime::new(config)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect_err("refused");
    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(error.status, Some(401));
    assert!(error.message.contains("invalid_api_key"), "{error}");
    assert_eq!(emulator.handshakes().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_and_server_errors_are_retried_with_bounded_backoff() {
    let emulator =
        OpenAiRealtimeEmulator::start(Options::default().faults(Faults::fail(503, 2))).await;
    let started = Instant::now();
    let _session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("third attempt");
    assert_eq!(emulator.handshakes().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(750),
        "250 + 500 ms"
    );

    let emulator =
        OpenAiRealtimeEmulator::start(Options::default().faults(Faults::fail(429, 10))).await;
    let retry = RetryPolicy {
        attempts: 2,
        initial: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let error = OpenAiRealtime::new(OpenAiRealtimeConfig::with_api(
        ApiConfig::new(emulator.base_url())
            .api_key(KEY)
            .retry(retry),
        "gpt-realtime",
    ))
    .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
    .await
    .expect_err("still limited");
    assert_eq!(error.kind, ErrorKind::RateLimited);
    assert_eq!(emulator.handshakes().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_closes_the_socket_with_a_close_frame() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K))
        .await
        .expect("connect");
    drop(session);
    sleep(Duration::from_millis(100)).await;
    let closes = emulator.received_of_type("_close");
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].1["code"], 1000);
}

#[tokio::test(start_paused = true)]
async fn history_seeds_the_first_session() {
    let emulator = OpenAiRealtimeEmulator::start(Options::default()).await;
    let _session = model(&emulator)
        .connect(RealtimeConfig::new(AudioFormat::MULAW_8K).history(vec![
            voxline_core::ChatMessage::user("My order is A1."),
            voxline_core::ChatMessage::assistant("Thanks, let me check."),
        ]))
        .await
        .expect("connect");
    sleep(Duration::from_millis(50)).await;
    let items = emulator.received_of_type("conversation.item.create");
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].1["item"]["content"][0]["type"], "output_text");
    assert!(emulator.sent_of_type("error").is_empty());
}
