//! Vonage Voice API WebSockets: the spec's messages (§6): binary audio, `websocket:*`
//! text events, headers flattened into the first frame.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{BotCommand, CallEvent, Decoded, Dialect, Dtmf, EncodeError, WsFrame};

const CONNECTED: &str = r#"{"event":"websocket:connected","content-type":"audio/l16;rate=16000",
    "uuid":"aaaa-bbbb","tenant":"abc","lead":{"id":7}}"#;

#[test]
fn connected_is_the_start() {
    let mut s = session(Dialect::Vonage);
    assert_eq!(s.format(), AudioFormat::PCM16_16K);
    let info = start(&mut s, CONNECTED);
    assert_eq!(info.dialect, Dialect::Vonage);
    assert_eq!(info.call_id, "aaaa-bbbb");
    assert_eq!(info.stream_id, None);
    assert_eq!(
        (info.from, info.to, info.account, info.direction),
        (None, None, None, None)
    );
    assert_eq!(
        json!(info.custom),
        json!({"uuid":"aaaa-bbbb","tenant":"abc","lead":{"id":7}})
    );
    assert_eq!(info.format, AudioFormat::PCM16_16K);
}

#[test]
fn call_id_headers_and_fallback() {
    for (headers, want) in [
        (
            r#""call_id":"c1","uuid":"u1","conversation_uuid":"v1""#,
            "c1",
        ),
        (r#""uuid":"u1","conversation_uuid":"v1""#, "u1"),
        (r#""conversation_uuid":"v1""#, "v1"),
        (r#""tenant":"abc""#, "conn-42"),
        (r#""call_id":"","uuid":5"#, "conn-42"),
    ] {
        let mut s = session(Dialect::Vonage);
        let json = format!(
            r#"{{"event":"websocket:connected","content-type":"audio/l16;rate=8000",{headers}}}"#
        );
        assert_eq!(start(&mut s, &json).call_id, want, "{headers}");
    }
}

#[test]
fn rates() {
    for (content_type, format) in [
        ("audio/l16;rate=8000", AudioFormat::PCM16_8K),
        ("audio/l16;rate=16000", AudioFormat::PCM16_16K),
        ("audio/L16; rate=24000", AudioFormat::PCM16_24K),
    ] {
        let mut s = session(Dialect::Vonage);
        let json = format!(r#"{{"event":"websocket:connected","content-type":"{content_type}"}}"#);
        assert_eq!(start(&mut s, &json).format, format);
        let frame = s.outbound_frame_size();
        assert_eq!(
            (frame.unit(), frame.frame()),
            (format.frame_bytes(20), format.frame_bytes(20))
        );
    }
    let mut s = session(Dialect::Vonage);
    for bad in [
        "audio/l16;rate=44100",
        "audio/l16",
        "audio/pcmu;rate=8000",
        "audio/l16;rate=x",
    ] {
        let json = format!(r#"{{"event":"websocket:connected","content-type":"{bad}"}}"#);
        assert!(is_invalid(&refuse(&mut s, &json), "content-type"), "{bad}");
    }
    assert!(is_missing(
        &refuse(&mut s, r#"{"event":"websocket:connected"}"#),
        "content-type"
    ));
    assert!(s.info().is_none());
}

#[test]
fn binary_audio_and_text_events() {
    let mut s = session(Dialect::Vonage);
    start(&mut s, CONNECTED);
    let frame = audio(640);
    match s.decode(&WsFrame::Binary(frame.clone())) {
        Ok(Decoded::Event(CallEvent::Media(chunk))) => {
            assert_eq!(chunk.payload, frame);
            assert_eq!(
                (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
                (None, None, None)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"websocket:dtmf","digit":"5","duration":260}"#
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '5',
            duration_ms: Some(260)
        })
    );
    assert!(is_invalid(
        &refuse(&mut s, r#"{"event":"websocket:dtmf","digit":"x"}"#),
        "digit"
    ));
    assert_eq!(
        event(&mut s, r#"{"event":"websocket:cleared"}"#),
        CallEvent::Cleared
    );
    for name in ["websocket:notify", "websocket:media:update", "other"] {
        assert_eq!(
            decode(&mut s, &format!(r#"{{"event":"{name}","payload":{{}}}}"#)),
            Decoded::Ignored { event: name.into() }
        );
    }
    assert!(is_missing(
        &refuse(&mut s, r#"{"action":"clear"}"#),
        "event"
    ));
}

#[test]
fn play_is_split_into_20_ms_binary_frames() {
    let mut s = session(Dialect::Vonage);
    start(&mut s, CONNECTED);
    let pcm = audio(640 * 3);
    let frames = encode(&mut s, BotCommand::Play(pcm.clone()));
    assert_eq!(
        frames,
        (0..3)
            .map(|i| WsFrame::Binary(pcm.slice(i * 640..(i + 1) * 640)))
            .collect::<Vec<_>>()
    );
    for bad in [0, 320, 700, 1281] {
        assert_eq!(
            encode_err(&mut s, BotCommand::Play(audio(bad))),
            EncodeError::ChunkSize {
                dialect: Dialect::Vonage,
                len: bad,
                unit: 640
            }
        );
    }
}

#[test]
fn clear_marks_and_call_control() {
    let mut s = session(Dialect::Vonage);
    // Clear needs no id, before or after the start.
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"action":"clear"})
    );
    start(&mut s, CONNECTED);
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"action":"clear"})
    );
    for (command, name) in [
        (BotCommand::Mark("m".into()), "mark"),
        (BotCommand::Hangup, "hangup"),
        (BotCommand::Transfer { to: "x".into() }, "transfer"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::Unsupported {
                dialect: Dialect::Vonage,
                command: name
            }
        );
    }
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Vonage
        }
    );
}

#[test]
fn binary_before_connected_is_media() {
    let mut s = session(Dialect::Vonage);
    assert!(matches!(
        s.decode(&WsFrame::Binary(Bytes::from_static(&[0; 640]))),
        Ok(Decoded::Event(CallEvent::Media(_)))
    ));
}
