//! Plivo AudioStream: the spec's example messages (§4.1, §4.2).

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{BotCommand, CallEvent, Dialect, Dtmf, EncodeError, Stop};

const START: &str = r#"{ "event": "start", "sequenceNumber": 1,
  "start": { "callId": "12345678-…", "streamId": "87654321-…", "accountId": "MAXXXXXXXXXXXXXXXXXX",
             "tracks": ["inbound"], "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000 } },
  "extra_headers": "userId=12345;sessionId=abc-xyz" }"#;

const STREAM: &str = "87654321-…";

fn start_with(encoding: &str, rate: &str) -> String {
    format!(
        r#"{{"event":"start","sequenceNumber":1,"start":{{"callId":"c","streamId":"s",
            "mediaFormat":{{"encoding":"{encoding}","sampleRate":{rate}}}}}}}"#
    )
}

#[test]
fn inbound_messages() {
    let mut s = session(Dialect::Plivo);
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Plivo);
    assert_eq!(info.call_id, "12345678-…");
    assert_eq!(info.stream_id.as_deref(), Some(STREAM));
    assert_eq!(info.account.as_deref(), Some("MAXXXXXXXXXXXXXXXXXX"));
    assert_eq!(
        (
            info.from.as_deref(),
            info.to.as_deref(),
            info.direction.as_deref()
        ),
        (None, None, None)
    );
    assert_eq!(
        json!(info.custom),
        json!({"userId": "12345", "sessionId": "abc-xyz", "extra_headers": "userId=12345;sessionId=abc-xyz"})
    );
    assert_eq!(info.format, AudioFormat::MULAW_8K);

    let ulaw = audio(160);
    let chunk = media(
        &mut s,
        &format!(
            r#"{{ "event": "media", "sequenceNumber": 42, "streamId": "{STREAM}",
                 "media": {{ "track": "inbound", "timestamp": "1705312200000", "chunk": 41, "payload": "{}" }},
                 "extra_headers": "userId=12345;sessionId=abc-xyz" }}"#,
            b64(&ulaw)
        ),
    );
    assert_eq!(chunk.payload, ulaw);
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (Some(42), Some(41), Some(1_705_312_200_000))
    );
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"dtmf","sequenceNumber":43,"streamId":"s","dtmf":{"track":"inbound","digit":"9","timestamp":"1705312200100"}}"#
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '9',
            duration_ms: None
        })
    );
    for name in ["playedStream", "played"] {
        assert_eq!(
            event(
                &mut s,
                &format!(
                    r#"{{"event":"{name}","sequenceNumber":44,"streamId":"s","name":"customer greeting audio"}}"#
                )
            ),
            CallEvent::Mark {
                name: "customer greeting audio".into()
            }
        );
    }
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"clearedAudio","sequenceNumber":45,"streamId":"s"}"#
        ),
        CallEvent::Cleared
    );
    let e = refuse(&mut s, r#"{"event":"playedStream","streamId":"s"}"#);
    assert!(is_missing(&e, "name"), "{e}");
    // Not in Plivo's protocol, but understood.
    assert_eq!(
        event(&mut s, r#"{"event":"stop"}"#),
        CallEvent::Stop(Stop::default())
    );
}

#[test]
fn outbound_messages() {
    let mut s = session(Dialect::Plivo);
    start(&mut s, START);
    let ulaw = audio(160);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(ulaw.clone())),
        json!({ "event": "playAudio", "media": { "contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": b64(&ulaw) } })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark("customer greeting audio".into())),
        json!({ "event": "checkpoint", "streamId": STREAM, "name": "customer greeting audio" })
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({ "event": "clearAudio", "streamId": STREAM })
    );
    for (command, name) in [
        (BotCommand::Hangup, "hangup"),
        (BotCommand::Transfer { to: "sip:x".into() }, "transfer"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::Unsupported {
                dialect: Dialect::Plivo,
                command: name
            }
        );
    }
}

#[test]
fn linear_pcm_at_8_and_16_khz() {
    for (rate, format) in [
        ("8000", AudioFormat::PCM16_8K),
        ("16000", AudioFormat::PCM16_16K),
    ] {
        let mut s = session(Dialect::Plivo);
        assert_eq!(
            start(&mut s, &start_with("audio/x-l16", rate)).format,
            format
        );
        let frame = s.outbound_frame_size();
        assert_eq!((frame.unit(), frame.frame()), (2, format.frame_bytes(20)));
        let pcm = audio(642);
        assert_eq!(
            encode_json(&mut s, BotCommand::Play(pcm.clone())),
            json!({"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":format.sample_rate,"payload":b64(&pcm)}})
        );
        assert_eq!(
            encode_err(&mut s, BotCommand::Play(audio(641))),
            EncodeError::ChunkSize {
                dialect: Dialect::Plivo,
                len: 641,
                unit: 2
            }
        );
    }
    // The rate may also come from the content type.
    let mut s = session(Dialect::Plivo);
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-l16;rate=16000"}}}"#,
    );
    assert_eq!(info.format, AudioFormat::PCM16_16K);
}

#[test]
fn formats_that_cannot_be_named_are_refused() {
    let mut s = session(Dialect::Plivo);
    for (json, path, missing) in [
        (start_with("audio/x-l16", "24000"), "start.mediaFormat.sampleRate", false),
        (start_with("audio/x-l16", "\"fast\""), "start.mediaFormat.sampleRate", false),
        (start_with("audio/ogg", "8000"), "start.mediaFormat.encoding", false),
        (
            r#"{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-l16"}}}"#.to_owned(),
            "start.mediaFormat.sampleRate",
            true,
        ),
        (
            r#"{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{}}}"#.to_owned(),
            "start.mediaFormat.encoding",
            true,
        ),
        (r#"{"event":"start","start":{"callId":"c","streamId":"s"}}"#.to_owned(), "start.mediaFormat", true),
        (r#"{"event":"start","start":{"streamId":"s"}}"#.to_owned(), "start.callId", true),
        (r#"{"event":"start","start":{"callId":"c"}}"#.to_owned(), "start.streamId", true),
        (
            r#"{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-mulaw"}},"extra_headers":5}"#.to_owned(),
            "extra_headers",
            false,
        ),
    ] {
        let e = refuse(&mut s, &json);
        assert_eq!(field(&e), path, "{json}: {e}");
        assert_eq!(is_missing(&e, path), missing, "{json}: {e}");
    }
    assert!(s.info().is_none());
}

#[test]
fn play_works_before_start_but_checkpoint_and_clear_need_the_stream() {
    let mut s = session(Dialect::Plivo);
    assert_eq!(s.format(), AudioFormat::MULAW_8K);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(Bytes::from_static(&[0xff]))),
        json!({"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"/w=="}})
    );
    for (command, name) in [
        (BotCommand::Mark("m".into()), "mark"),
        (BotCommand::Clear, "clear"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::NoStreamId {
                dialect: Dialect::Plivo,
                command: name
            }
        );
    }
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Plivo
        }
    );
}

#[test]
fn extra_headers_edge_cases() {
    let mut s = session(Dialect::Plivo);
    let info = start(
        &mut s,
        r#"{"event":"start","start":{"callId":"c","streamId":"s","mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000},
            "extra_headers":" a=1;;flag; b = x=y "}}"#,
    );
    assert_eq!(
        json!(info.custom),
        json!({"a": "1", "flag": "", "b": "x=y", "extra_headers": " a=1;;flag; b = x=y "})
    );
}
