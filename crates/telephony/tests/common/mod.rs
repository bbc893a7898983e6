//! Helpers shared by the dialect tests.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use serde_json::Value;
use voxline_telephony::{
    AudioChunk, BotCommand, CallEvent, CallInfo, DecodeError, Decoded, Dialect, EncodeError,
    Session, SessionConfig, WsFrame,
};

/// A session for `dialect` with no URL rate.
pub fn session(dialect: Dialect) -> Session {
    session_with_rate(dialect, None)
}

/// A session for `dialect` whose URL asked for `rate`.
pub fn session_with_rate(dialect: Dialect, rate: Option<u32>) -> Session {
    Session::new(SessionConfig::new(dialect, "conn-42").with_url_sample_rate(rate))
}

pub fn text(json: &str) -> WsFrame {
    WsFrame::Text(json.to_owned())
}

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Test audio: `len` bytes counting up.
pub fn audio(len: usize) -> Bytes {
    Bytes::from((0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// Decodes a text frame that must decode.
pub fn decode(session: &mut Session, json: &str) -> Decoded {
    session
        .decode(&text(json))
        .unwrap_or_else(|e| panic!("{json} should decode: {e}"))
}

/// Decodes a text frame that must give an event.
pub fn event(session: &mut Session, json: &str) -> CallEvent {
    match decode(session, json) {
        Decoded::Event(event) => event,
        other => panic!("{json} should give an event, gave {other:?}"),
    }
}

pub fn start(session: &mut Session, json: &str) -> CallInfo {
    match event(session, json) {
        CallEvent::Start(info) => info,
        other => panic!("expected a start, got {other:?}"),
    }
}

pub fn media(session: &mut Session, json: &str) -> AudioChunk {
    match event(session, json) {
        CallEvent::Media(chunk) => chunk,
        other => panic!("expected media, got {other:?}"),
    }
}

/// Decodes a frame that must be refused.
pub fn refuse(session: &mut Session, json: &str) -> DecodeError {
    match session.decode(&text(json)) {
        Err(e) => e,
        Ok(d) => panic!("{json} should be refused, gave {d:?}"),
    }
}

/// The field a decode error names (its path), if it names one.
pub fn field(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::MissingField { field, .. } | DecodeError::InvalidField { field, .. } => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

pub fn is_missing(e: &DecodeError, path: &str) -> bool {
    matches!(e, DecodeError::MissingField { field, .. } if *field == path)
}

pub fn is_invalid(e: &DecodeError, path: &str) -> bool {
    matches!(e, DecodeError::InvalidField { field, .. } if *field == path)
}

/// Encodes a command that must encode; returns its frames.
pub fn encode(session: &mut Session, command: BotCommand) -> Vec<WsFrame> {
    let mut out = Vec::new();
    session
        .encode(&command, &mut out)
        .unwrap_or_else(|e| panic!("{command:?} should encode: {e}"));
    out
}

/// Encodes a command that must give exactly one text frame; returns it as JSON.
pub fn encode_json(session: &mut Session, command: BotCommand) -> Value {
    let frames = encode(session, command);
    assert_eq!(frames.len(), 1, "one frame expected: {frames:?}");
    json_of(&frames[0])
}

pub fn json_of(frame: &WsFrame) -> Value {
    match frame {
        WsFrame::Text(t) => serde_json::from_str(t).expect("encoder writes valid JSON"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// Encodes a command that must be refused; checks `out` stays empty.
pub fn encode_err(session: &mut Session, command: BotCommand) -> EncodeError {
    let mut out = Vec::new();
    let e = session
        .encode(&command, &mut out)
        .expect_err("the command should be refused");
    assert!(out.is_empty(), "nothing may be written on error: {out:?}");
    e
}
