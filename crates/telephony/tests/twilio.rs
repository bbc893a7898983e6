//! Twilio Media Streams: the spec's example messages (§3.1, §3.2).

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{
    BotCommand, CallEvent, DecodeError, Decoded, Dialect, Dtmf, EncodeError, Stop, WsFrame,
};

const START: &str = r#"{ "event": "start", "sequenceNumber": "1",
  "start": { "accountSid": "AC…", "streamSid": "MZ…", "callSid": "CA…",
             "tracks": ["inbound"],
             "customParameters": { "from_number": "+15550001111" },
             "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 } },
  "streamSid": "MZ…" }"#;

fn started() -> voxline_telephony::Session {
    let mut s = session(Dialect::Twilio);
    start(&mut s, START);
    s
}

#[test]
fn inbound_messages() {
    let mut s = session(Dialect::Twilio);
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "connected", "protocol": "Call", "version": "1.0.0" }"#
        ),
        CallEvent::Connected
    );
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Twilio);
    assert_eq!(info.call_id, "CA…");
    assert_eq!(info.stream_id.as_deref(), Some("MZ…"));
    assert_eq!(info.account.as_deref(), Some("AC…"));
    // Promoted from the `from_number` parameter; no `to_number` given.
    assert_eq!(info.from.as_deref(), Some("+15550001111"));
    assert_eq!(info.to, None);
    assert_eq!(info.direction, None);
    assert_eq!(json!(info.custom), json!({"from_number": "+15550001111"}));
    assert_eq!(info.format, AudioFormat::MULAW_8K);

    let ulaw = [0xffu8; 160];
    let chunk = media(
        &mut s,
        &format!(
            r#"{{ "event": "media", "sequenceNumber": "2",
                 "media": {{ "track": "inbound", "chunk": "1", "timestamp": "0", "payload": "{}" }},
                 "streamSid": "MZ…" }}"#,
            b64(&ulaw)
        ),
    );
    assert_eq!(chunk.payload, Bytes::copy_from_slice(&ulaw));
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (Some(2), Some(1), Some(0))
    );

    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "dtmf", "streamSid": "MZ…", "sequenceNumber": "5", "dtmf": { "track": "inbound_track", "digit": "1" } }"#
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '1',
            duration_ms: None
        })
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "mark", "sequenceNumber": "4", "streamSid": "MZ…", "mark": { "name": "my label" } }"#
        ),
        CallEvent::Mark {
            name: "my label".into()
        }
    );
    assert_eq!(
        event(
            &mut s,
            r#"{ "event": "stop", "sequenceNumber": "5", "stop": { "accountSid": "AC…", "callSid": "CA…" }, "streamSid": "MZ…" }"#
        ),
        CallEvent::Stop(Stop { reason: None })
    );
}

#[test]
fn numbers_from_both_custom_parameters_and_start() {
    let mut s = session(Dialect::Twilio);
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1",
            "customParameters":{"from_number":"+1555","to_number":"+1666","tenant":"abc"}}}"#,
    );
    assert_eq!(
        (info.from.as_deref(), info.to.as_deref()),
        (Some("+1555"), Some("+1666"))
    );
    // Numbers in start itself win.
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"streamSid":"MZ1","callSid":"CA1","from":"+1000",
            "customParameters":{"from_number":"+1555","to_number":7}}}"#,
    );
    assert_eq!(
        (info.from.as_deref(), info.to.as_deref()),
        (Some("+1000"), None)
    );
}

#[test]
fn outbound_messages() {
    let mut s = started();
    let ulaw = audio(160);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(ulaw.clone())),
        json!({ "event": "media", "streamSid": "MZ…", "media": { "payload": b64(&ulaw) } })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark("greeting-end".into())),
        json!({ "event": "mark", "streamSid": "MZ…", "mark": { "name": "greeting-end" } })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({ "event": "clear", "streamSid": "MZ…" })
    );
    // Any non-empty length.
    for len in [1, 7, 161, 8000] {
        let v = encode_json(&mut s, BotCommand::Play(audio(len)));
        assert_eq!(v["media"]["payload"], json!(b64(&audio(len))));
        assert!(v["media"].get("chunk").is_none());
    }
}

#[test]
fn strict_cases() {
    let mut s = session(Dialect::Twilio);
    assert_eq!(
        encode_err(&mut s, BotCommand::Clear),
        EncodeError::NoStreamId {
            dialect: Dialect::Twilio,
            command: "clear"
        }
    );
    start(&mut s, START);
    let frame = s.outbound_frame_size();
    assert_eq!((frame.unit(), frame.frame()), (1, 160));
    assert_eq!(
        encode_err(&mut s, BotCommand::Play(Bytes::new())),
        EncodeError::ChunkSize {
            dialect: Dialect::Twilio,
            len: 0,
            unit: 1
        }
    );
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Twilio
        }
    );
    for (command, name) in [
        (BotCommand::Hangup, "hangup"),
        (BotCommand::Transfer { to: "+1".into() }, "transfer"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::Unsupported {
                dialect: Dialect::Twilio,
                command: name
            }
        );
    }
    assert!(matches!(
        s.decode(&WsFrame::Binary(Bytes::from_static(&[0xff; 160]))),
        Err(DecodeError::UnexpectedFrame {
            dialect: Dialect::Twilio,
            kind: "binary",
            len: 160
        })
    ));
    let e = refuse(
        &mut s,
        r#"{"event":"media","sequenceNumber":"two","media":{"payload":""}}"#,
    );
    assert!(is_invalid(&e, "sequenceNumber"), "{e}");
    let e = refuse(&mut s, r#"{"event":"start","start":{"callSid":"CA"}}"#);
    assert!(is_missing(&e, "start.streamSid"), "{e}");
}

#[test]
fn outbound_track_media_is_not_caller_audio() {
    let mut s = started();
    assert_eq!(
        decode(
            &mut s,
            r#"{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"1","timestamp":"0","payload":"/w=="},"streamSid":"MZ…"}"#
        ),
        Decoded::Ignored {
            event: "media".into()
        }
    );
}
