//! Smartflo: the spec's example messages (§2.1, §2.2): camelCase, mu-law 8 kHz,
//! numbered outbound media in 160-byte units.

mod common;

use common::*;
use serde_json::json;
use voxline_audio::AudioFormat;
use voxline_telephony::{BotCommand, CallEvent, Dialect, Dtmf, EncodeError, Stop};

const START: &str = r#"{
  "event": "start",
  "sequenceNumber": "1",
  "start": {
    "accountSid": "ACXXXXXXXX…",
    "streamSid": "MZXXXXXXXX…",
    "callSid": "CAXXXXXXXX…",
    "from": "XXXXXXXXXX",
    "to": "YYYYYYYYYY",
    "direction": "outbound",
    "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "bitRate": 64, "bitDepth": 8 },
    "customParameters": { "FirstName": "Jane" }
  }
}"#;

const SID: &str = "MZXXXXXXXX…";

fn started() -> voxline_telephony::Session {
    let mut s = session(Dialect::Smartflo);
    start(&mut s, START);
    s
}

#[test]
fn inbound_messages() {
    let mut s = session(Dialect::Smartflo);
    assert_eq!(
        event(&mut s, r#"{ "event": "connected" }"#),
        CallEvent::Connected
    );
    let info = start(&mut s, START);
    assert_eq!(info.dialect, Dialect::Smartflo);
    assert_eq!(info.call_id, "CAXXXXXXXX…");
    assert_eq!(info.stream_id.as_deref(), Some(SID));
    assert_eq!(info.account.as_deref(), Some("ACXXXXXXXX…"));
    assert_eq!(info.from.as_deref(), Some("XXXXXXXXXX"));
    assert_eq!(info.to.as_deref(), Some("YYYYYYYYYY"));
    assert_eq!(info.direction.as_deref(), Some("outbound"));
    assert_eq!(json!(info.custom), json!({"FirstName": "Jane"}));
    assert_eq!(info.format, AudioFormat::MULAW_8K);

    let ulaw = audio(800);
    let chunk = media(
        &mut s,
        &format!(
            r#"{{"event":"media","sequenceNumber":"4","streamSid":"{SID}",
                "media":{{"chunk":"1","timestamp":"100","payload":"{}"}}}}"#,
            b64(&ulaw)
        ),
    );
    assert_eq!(chunk.payload, ulaw);
    assert_eq!(
        (chunk.sequence, chunk.chunk, chunk.timestamp_ms),
        (Some(4), Some(1), Some(100))
    );

    assert_eq!(
        event(
            &mut s,
            r##"{"event":"dtmf","streamSid":"MZ","dtmf":{"digit":"#"}}"##
        ),
        CallEvent::Dtmf(Dtmf {
            digit: '#',
            duration_ms: None
        })
    );
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"mark","streamSid":"MZ","mark":{"name":"end"}}"#
        ),
        CallEvent::Mark { name: "end".into() }
    );
    assert_eq!(
        event(
            &mut s,
            r#"{"event":"stop","sequenceNumber":"9","stop":{"accountSid":"AC","callSid":"CA","reason":"callended"}}"#
        ),
        CallEvent::Stop(Stop {
            reason: Some("callended".into())
        })
    );
}

#[test]
fn stream_id_falls_back_to_top_level() {
    let mut s = session(Dialect::Smartflo);
    let info = start(
        &mut s,
        r#"{"event":"start","streamSid":"MZtop","start":{"callSid":"CA1"}}"#,
    );
    assert_eq!(info.stream_id.as_deref(), Some("MZtop"));
    let e = refuse(&mut s, r#"{"event":"start","start":{"callSid":"CA1"}}"#);
    assert!(is_missing(&e, "start.streamSid"), "{e}");
    let e = refuse(&mut s, r#"{"event":"start","start":{"streamSid":"MZ"}}"#);
    assert!(is_missing(&e, "start.callSid"), "{e}");
}

#[test]
fn outbound_media_is_numbered_from_one() {
    let mut s = started();
    let a = audio(160);
    let b = audio(4000);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(a.clone())),
        json!({"event":"media","streamSid":SID,"media":{"payload":b64(&a),"chunk":1}})
    );
    // A refused play does not use a number.
    assert_eq!(
        encode_err(&mut s, BotCommand::Play(audio(100))),
        EncodeError::ChunkSize {
            dialect: Dialect::Smartflo,
            len: 100,
            unit: 160
        }
    );
    // Marks and clears are not numbered.
    assert_eq!(
        encode_json(&mut s, BotCommand::Mark("end".into())),
        json!({"event":"mark","streamSid":SID,"mark":{"name":"end"}})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(b.clone())),
        json!({"event":"media","streamSid":SID,"media":{"payload":b64(&b),"chunk":2}})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Clear),
        json!({"event":"clear","streamSid":SID})
    );
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(audio(320)))["media"]["chunk"],
        json!(3)
    );
}

#[test]
fn chunk_rules() {
    let mut s = started();
    let frame = s.outbound_frame_size();
    assert_eq!((frame.unit(), frame.frame()), (160, 160));
    for bad in [0, 1, 159, 161, 319] {
        assert_eq!(
            encode_err(&mut s, BotCommand::Play(audio(bad))),
            EncodeError::ChunkSize {
                dialect: Dialect::Smartflo,
                len: bad,
                unit: 160
            }
        );
    }
    for good in [160, 320, 800, 4000] {
        encode(&mut s, BotCommand::Play(audio(good)));
    }
}

#[test]
fn no_call_control_on_the_socket() {
    let mut s = started();
    for (command, name) in [
        (BotCommand::Hangup, "hangup"),
        (BotCommand::Transfer { to: "100".into() }, "transfer"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::Unsupported {
                dialect: Dialect::Smartflo,
                command: name
            }
        );
    }
    assert_eq!(
        encode_err(&mut s, BotCommand::Mark(String::new())),
        EncodeError::EmptyMarkName {
            dialect: Dialect::Smartflo
        }
    );
}

#[test]
fn nothing_is_sent_before_start() {
    let mut s = session(Dialect::Smartflo);
    assert_eq!(s.format(), AudioFormat::MULAW_8K);
    for (command, name) in [
        (BotCommand::Play(audio(160)), "play"),
        (BotCommand::Mark("m".into()), "mark"),
        (BotCommand::Clear, "clear"),
    ] {
        assert_eq!(
            encode_err(&mut s, command),
            EncodeError::NoStreamId {
                dialect: Dialect::Smartflo,
                command: name
            }
        );
    }
    // The counter did not move.
    start(&mut s, START);
    assert_eq!(
        encode_json(&mut s, BotCommand::Play(audio(160)))["media"]["chunk"],
        json!(1)
    );
}

#[test]
fn snake_case_is_not_smartflo() {
    // Smartflo is camelCase only: Exotel's spellings are not read.
    let mut s = session(Dialect::Smartflo);
    let e = refuse(
        &mut s,
        r#"{"event":"start","start":{"stream_sid":"MZ","call_sid":"CA"}}"#,
    );
    assert!(is_missing(&e, "start.streamSid"), "{e}");
    let chunk = media(
        &mut s,
        r#"{"event":"media","sequence_number":"5","media":{"payload":""}}"#,
    );
    assert_eq!(chunk.sequence, None);
}
