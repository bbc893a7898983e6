//! Telnyx media streaming: the spec's example messages (§5.1, §5.2).

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{BotCommand, CallEvent, Dialect, Dtmf, EncodeError, Stop};

const START: &str = r#"{ "event": "start", "sequence_number": "1",
  "start": { "user_id": "3e6f995f-…", "call_control_id": "v3:…", "call_session_id": "ff55a038-…",
             "client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d", "from": "+1312…", "to": "+1313…",
             "media_format": { "encoding": "PCMU", "sample_rate": 8000, "channels": 1 } },
  "stream_id": "32de0dea-53cb-4b21-89a4-9e1819c043bc" }"#;

fn start_with(encoding: &str, rate: u32) -> String {
    format!(
        r#"{{"event":"start","start":{{"call_control_id":"v3:x",
            "media_format":{{"encoding":"{encoding}","sample_rate":{rate},"channels":1}}}},"stream_id":"s"}}"#
    )
}

#[test]
fn inbound_messages() {
    let mut s = session(Dialect::Telnyx);
    assert_eq!(
        event(&mut s, r#"{ "event": "connected", "version": "1.0.0" }"#),
        CallEvent::Connected
    );
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Telnyx);
    assert_eq!(info.call_id, "v3:…");
    assert_eq!(
        info.stream_id.as_deref(),
        Some("32de0dea-53cb-4b21-89a4-9e1819c043bc")
    );
    assert_eq!(info.from.as_deref(), Some("+1312…"));
    assert_eq!(info.to.as_deref(), Some("+1313…"));
    assert_eq!(info.account.as_deref(), Some("3e6f995f-…"));
    assert_eq!(info.direction, None);
    assert_eq!(
        json!(info.custom),
        json!({"client_state": "aGF2ZSBhIG5pY2UgZGF5ID1d"})
    );
    assert_eq!(info.format, AudioFormat::MULAW_8K);

    let ulaw = audio(160);
    let chunk = media(
        &mut s,
        &format!(
            r#"{{ "event": "media", "sequence_number": "4",
                 "media": {{ "track": "inbound", "chunk": "2", "timestamp": "5", "payload": "{}" }},
                 "stream_id": "32de0dea-…" }}"#,
            b64(&ulaw)
        ),
    );
    assert_eq!(chunk.payload, ulaw);
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (Some(4), Some(2), Some(5))
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "dtmf", "stream_id": "…", "occurred_at": "2025-06-05T08:54:19.698408Z", "sequence_number": "5", "dtmf": { "digit": "1" } }"#
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '1',
            duration_ms: None
        })
    );
    assert_eq!(
        event(&mut s, r#"{"event":"mark","mark":{"name":"greeting-end"}}"#),
        CallEvent::Mark {
            name: "greeting-end".into()
        }
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "stop", "sequence_number": "5", "stop": { "user_id": "…", "call_control_id": "v2:…" }, "stream_id": "…" }"#
        ),
        CallEvent::Stop(Stop { reason: None })
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "stream_id": "…", "event": "error", "sequence_number": "6",
                 "error": { "title": "rate_limit_reached", "code": "100005", "detail": "Too many requests" } }"#
        ),
        CallEvent::CarrierError {
            code: Some("100005".into()),
            message: "rate_limit_reached: Too many requests".into()
        }
    );
    assert_eq!(
        event(&mut s, r#"{"event":"error","error":{"code":100003}}"#),
        CallEvent::CarrierError {
            code: Some("100003".into()),
            message: "unspecified error".into()
        }
    );
}

#[test]
fn outbound_messages_carry_no_stream_id() {
    let mut s = session(Dialect::Telnyx);
    // Nothing needs the stream id, so nothing waits for start.
    let ulaw = audio(160);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(ulaw.clone())),
        json!({ "event": "media", "media": { "payload": b64(&ulaw) } })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({ "event": "clear" })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark("greeting-end".into())),
        json!({ "event": "mark", "mark": { "name": "greeting-end" } })
    );
    start(&mut s, START);
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({ "event": "clear" })
    );
    for (command, name) in [
        (BotCommand::Hangup, "hangup"),
        (BotCommand::Transfer { to: "+1".into() }, "transfer"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::Unsupported {
                dialect: Dialect::Telnyx,
                command: name
            }
        );
    }
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Telnyx
        }
    );
}

#[test]
fn codecs() {
    for (encoding, rate, format) in [
        ("PCMU", 8000, AudioFormat::MULAW_8K),
        ("audio/x-mulaw", 8000, AudioFormat::MULAW_8K),
        ("PCMA", 8000, AudioFormat::ALAW_8K),
        ("L16", 8000, AudioFormat::PCM16_8K),
        ("L16", 16000, AudioFormat::PCM16_16K),
        ("L16", 24000, AudioFormat::PCM16_24K),
    ] {
        let mut s = session(Dialect::Telnyx);
        assert_eq!(
            start(&mut s, &start_with(encoding, rate)).format,
            format,
            "{encoding}"
        );
        let frame = s.outbound_frame_size();
        assert_eq!(
            (frame.unit(), frame.frame()),
            (format.frame_bytes(20), format.frame_bytes(20))
        );
    }
    let mut s = session(Dialect::Telnyx);
    for codec in ["G722", "OPUS", "AMR-WB"] {
        let e = refuse(&mut s, &start_with(codec, 16000));
        assert!(is_invalid(&e, "start.media_format.encoding"), "{e}");
        assert!(e.to_string().contains(codec), "{e}");
    }
    let e = refuse(&mut s, &start_with("L16", 11025));
    assert!(is_invalid(&e, "start.media_format.sample_rate"), "{e}");
    let e = refuse(
        &mut s,
        r#"{"event":"start","start":{"call_control_id":"v3","media_format":{"encoding":"L16"}}}"#,
    );
    assert!(is_missing(&e, "start.media_format.sample_rate"), "{e}");
    let e = refuse(
        &mut s,
        r#"{"event":"start","start":{"media_format":{"encoding":"PCMU"}}}"#,
    );
    assert!(is_missing(&e, "start.call_control_id"), "{e}");
    // No media_format: PCMU, Telnyx's default codec.
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"call_control_id":"v3"}}"#,
    );
    assert_eq!((info.format, info.stream_id), (AudioFormat::MULAW_8K, None));
}

#[test]
fn l16_is_big_endian_on_the_wire() {
    let mut s = session(Dialect::Telnyx);
    start(&mut s, &start_with("L16", 16000));
    // Samples 1 and -2 as RTP sends them: 00 01 FF FE.
    let chunk = media(
        &mut s,
        &format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            b64(&[0x00, 0x01, 0xFF, 0xFE])
        ),
    );
    assert_eq!(chunk.payload, Bytes::from_static(&[0x01, 0x00, 0xFE, 0xFF]));
    let e = refuse(
        &mut s,
        &format!(
            r#"{{"event":"media","media":{{"payload":"{}"}}}}"#,
            b64(&[1, 2, 3])
        ),
    );
    assert!(is_invalid(&e, "media.payload"), "{e}");

    let pcm: Vec<u8> = (0..640).map(|i| i as u8).collect();
    let v = encode_json(&mut s, BotCommand::Play(Bytes::from(pcm.clone())));
    let mut wire: Vec<u8> = pcm.clone();
    for pair in wire.chunks_exact_mut(2) {
        pair.swap(0, 1);
    }
    assert_eq!(v, json!({"event":"media","media":{"payload":b64(&wire)}}));
    assert_eq!(
        encode_err(&mut s, BotCommand::Play(audio(600))),
        EncodeError::ChunkSize {
            dialect: Dialect::Telnyx,
            len: 600,
            unit: 640
        }
    );
}

#[test]
fn custom_parameters_as_a_list_or_an_object() {
    let mut s = session(Dialect::Telnyx);
    let info = start(
        &mut s,
        r#"{"event":"start","stream_id":"s","start":{"call_control_id":"v3","client_state":"c3RhdGU=",
            "custom_parameters":[{"name":"tenant","value":"abc"},{"name":"n","value":2}]}}"#,
    );
    assert_eq!(
        json!(info.custom),
        json!({"client_state":"c3RhdGU=","tenant":"abc","n":2})
    );
    let info = start(
        &mut s,
        r#"{"event":"start","stream_id":"s","start":{"call_control_id":"v3","custom_parameters":{"tenant":"abc"}}}"#,
    );
    assert_eq!(json!(info.custom), json!({"tenant":"abc"}));
    let e = refuse(
        &mut s,
        r#"{"event":"start","start":{"call_control_id":"v3","custom_parameters":[{"value":"x"}]}}"#,
    );
    assert!(is_invalid(&e, "start.custom_parameters"), "{e}");
}
