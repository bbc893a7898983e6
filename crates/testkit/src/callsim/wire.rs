//! The frames a carrier sends, built by hand per dialect from the spec's examples.
//!
//! Nothing here is shared with the server's dialect code: the shapes are written from
//! `../shared/specs/telephony.md`, field by field, so a test fails when either side
//! spells a key differently from the carrier.

use std::fmt::Write as _;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value, json};
use voxline_audio::{AudioFormat, Encoding};

use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;
use crate::callsim::ids::{self, IdGen};

/// Voxline's four channels: parameters with these names go into the `start`'s `modes`.
pub(crate) const MODE_KEYS: [&str; 4] =
    ["voice_input", "text_input", "voice_output", "text_output"];

/// A mode parameter's value as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Checks the call's parameters can go on the wire (Voxline's modes must be booleans).
pub(crate) fn check_params(
    dialect: Dialect,
    params: &[(String, String)],
) -> Result<(), CallsimError> {
    if dialect != Dialect::Voxline {
        return Ok(());
    }
    for (key, value) in params {
        if MODE_KEYS.contains(&key.as_str()) && parse_bool(value).is_none() {
            return Err(CallsimError::InvalidOptions {
                field: "params",
                reason: format!("{key}={value:?}: a Voxline mode is true or false"),
            });
        }
    }
    Ok(())
}

/// The identifiers callsim gave the call, as the carrier puts them on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallIds {
    /// The stream id (`stream_sid`, `streamSid`, `streamId` or `stream_id`); empty for
    /// Vonage and Voxline, which have none.
    pub stream_id: String,
    /// The call id (`call_sid`, `callSid`, `callId`, `call_control_id`, or Voxline's
    /// `call_id`); empty for Vonage.
    pub call_id: String,
    /// The account id where the dialect has one (`account_sid`, `accountSid`,
    /// `accountId`, Telnyx's `user_id`); empty otherwise.
    pub account_id: String,
}

impl CallIds {
    pub(crate) fn generate(dialect: Dialect, ids: &mut IdGen) -> Self {
        match dialect {
            Dialect::Exotel | Dialect::Smartflo | Dialect::Twilio => Self {
                stream_id: ids.sid("MZ"),
                call_id: ids.sid("CA"),
                account_id: ids.sid("AC"),
            },
            Dialect::Plivo => Self {
                stream_id: ids.uuid(),
                call_id: ids.uuid(),
                account_id: format!("MA{}", ids.upper_alnum(18)),
            },
            Dialect::Telnyx => {
                let mut raw = [0u8; 24];
                for chunk in raw.chunks_mut(8) {
                    chunk.copy_from_slice(&ids.next_u64().to_le_bytes());
                }
                Self {
                    stream_id: ids.uuid(),
                    call_id: format!(
                        "v3:{}",
                        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
                    ),
                    account_id: ids.uuid(),
                }
            }
            Dialect::Vonage => Self {
                stream_id: String::new(),
                call_id: String::new(),
                account_id: String::new(),
            },
            Dialect::Voxline => Self {
                stream_id: String::new(),
                call_id: format!("web-{}", ids.uuid()),
                account_id: String::new(),
            },
        }
    }
}

/// The carrier's encoder: owns the ids, the sequence number and the chunk counter.
#[derive(Debug)]
pub(crate) struct Wire {
    dialect: Dialect,
    format: AudioFormat,
    ids: CallIds,
    params: Vec<(String, String)>,
    /// The last sequence number used (the `start` frame is 1).
    seq: u64,
    /// Media frames sent so far.
    chunk: u64,
    frame_ms: u64,
    start_unix_ms: u64,
    session_id: String,
}

impl Wire {
    pub(crate) fn new(
        dialect: Dialect,
        format: AudioFormat,
        params: Vec<(String, String)>,
        ids_gen: &mut IdGen,
    ) -> Self {
        let ids = CallIds::generate(dialect, ids_gen);
        Self {
            dialect,
            format,
            ids,
            params,
            seq: 0,
            chunk: 0,
            frame_ms: dialect.frame().as_millis() as u64,
            start_unix_ms: 0,
            session_id: ids_gen.uuid(),
        }
    }

    pub(crate) fn ids(&self) -> &CallIds {
        &self.ids
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The parameters that do not fill a field of their own, as a JSON object.
    fn custom_params(&self, reserved: &[&str]) -> Map<String, Value> {
        self.params
            .iter()
            .filter(|(k, _)| !reserved.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    }

    /// The JSON text frames that open the stream, in order.
    pub(crate) fn opening(&mut self) -> Vec<String> {
        self.start_unix_ms = ids::unix_ms();
        let rate = self.format.sample_rate;
        match self.dialect {
            Dialect::Exotel => {
                let seq = self.next_seq();
                let start = json!({
                    "event": "start",
                    "sequence_number": seq.to_string(),
                    "stream_sid": self.ids.stream_id,
                    "start": {
                        "stream_sid": self.ids.stream_id,
                        "call_sid": self.ids.call_id,
                        "account_sid": self.ids.account_id,
                        "from": self.param("from").unwrap_or("+919876543210"),
                        "to": self.param("to").unwrap_or("+918047491899"),
                        "custom_parameters": self.custom_params(&["from", "to"]),
                        "media_format": {
                            "encoding": "audio/x-raw",
                            "sample_rate": rate.to_string(),
                            "bit_rate": "16",
                        },
                    },
                });
                vec![
                    json!({ "event": "connected" }).to_string(),
                    start.to_string(),
                ]
            }
            Dialect::Smartflo => {
                let seq = self.next_seq();
                let start = json!({
                    "event": "start",
                    "sequenceNumber": seq.to_string(),
                    "start": {
                        "accountSid": self.ids.account_id,
                        "streamSid": self.ids.stream_id,
                        "callSid": self.ids.call_id,
                        "from": self.param("from").unwrap_or("9876543210"),
                        "to": self.param("to").unwrap_or("8047491899"),
                        "direction": self.param("direction").unwrap_or("inbound"),
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "bitRate": 64,
                            "bitDepth": 8,
                        },
                        "customParameters": self.custom_params(&["from", "to", "direction"]),
                    },
                });
                vec![
                    json!({ "event": "connected" }).to_string(),
                    start.to_string(),
                ]
            }
            Dialect::Twilio => {
                let seq = self.next_seq();
                let start = json!({
                    "event": "start",
                    "sequenceNumber": seq.to_string(),
                    "start": {
                        "accountSid": self.ids.account_id,
                        "streamSid": self.ids.stream_id,
                        "callSid": self.ids.call_id,
                        "tracks": ["inbound"],
                        "customParameters": self.custom_params(&[]),
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                    "streamSid": self.ids.stream_id,
                });
                vec![
                    json!({ "event": "connected", "protocol": "Call", "version": "1.0.0" })
                        .to_string(),
                    start.to_string(),
                ]
            }
            Dialect::Plivo => {
                let seq = self.next_seq();
                let start = json!({
                    "event": "start",
                    "sequenceNumber": seq,
                    "start": {
                        "callId": self.ids.call_id,
                        "streamId": self.ids.stream_id,
                        "accountId": self.ids.account_id,
                        "tracks": ["inbound"],
                        "mediaFormat": {
                            "encoding": plivo_content_type(self.format),
                            "sampleRate": rate,
                        },
                    },
                    "extra_headers": self.extra_headers(),
                });
                vec![start.to_string()]
            }
            Dialect::Telnyx => {
                let seq = self.next_seq();
                let mut start = json!({
                    "user_id": self.ids.account_id,
                    "call_control_id": self.ids.call_id,
                    "call_session_id": self.session_id,
                    "from": self.param("from").unwrap_or("+13125550100"),
                    "to": self.param("to").unwrap_or("+13125550199"),
                    "media_format": { "encoding": "PCMU", "sample_rate": 8000, "channels": 1 },
                });
                if let Value::Object(fields) = &mut start {
                    if let Some(state) = self.param("client_state") {
                        fields.insert("client_state".into(), Value::String(state.to_owned()));
                    }
                    let custom = self.custom_params(&["from", "to", "client_state"]);
                    if !custom.is_empty() {
                        fields.insert("custom_parameters".into(), Value::Object(custom));
                    }
                }
                let start = json!({
                    "event": "start",
                    "sequence_number": seq.to_string(),
                    "start": start,
                    "stream_id": self.ids.stream_id,
                });
                vec![
                    json!({ "event": "connected", "version": "1.0.0" }).to_string(),
                    start.to_string(),
                ]
            }
            Dialect::Vonage => {
                let mut fields = Map::new();
                fields.insert("event".into(), "websocket:connected".into());
                fields.insert(
                    "content-type".into(),
                    format!("audio/l16;rate={rate}").into(),
                );
                for (k, v) in &self.params {
                    if k != "event" && k != "content-type" {
                        fields.insert(k.clone(), Value::String(v.clone()));
                    }
                }
                vec![Value::Object(fields).to_string()]
            }
            Dialect::Voxline => {
                let mut modes = Map::new();
                for (k, v) in &self.params {
                    if MODE_KEYS.contains(&k.as_str())
                        && let Some(on) = parse_bool(v)
                    {
                        modes.insert(k.clone(), Value::Bool(on));
                    }
                }
                let mut start = json!({
                    "event": "start",
                    "call_id": self.ids.call_id,
                    "sample_rate": rate,
                    "encoding": match self.format.encoding {
                        Encoding::Mulaw => "mulaw",
                        Encoding::Alaw => "alaw",
                        Encoding::Pcm16 => "pcm16",
                    },
                    "custom": self.custom_params(&MODE_KEYS),
                });
                if !modes.is_empty()
                    && let Value::Object(fields) = &mut start
                {
                    fields.insert("modes".into(), Value::Object(modes));
                }
                vec![start.to_string()]
            }
        }
    }

    /// A typed message from the caller (Voxline `text_message`); `None` for dialects
    /// without a text channel.
    pub(crate) fn text_message(&self, text: &str) -> Option<String> {
        (self.dialect == Dialect::Voxline)
            .then(|| json!({ "event": "text_message", "text": text }).to_string())
    }

    /// A change of channels (Voxline `mode_change`) with only the given fields; `None`
    /// for dialects without a text channel.
    pub(crate) fn mode_change(&self, modes: [Option<bool>; 4]) -> Option<String> {
        if self.dialect != Dialect::Voxline {
            return None;
        }
        let mut fields = Map::new();
        fields.insert("event".into(), "mode_change".into());
        for (key, value) in MODE_KEYS.iter().zip(modes) {
            if let Some(on) = value {
                fields.insert((*key).to_owned(), Value::Bool(on));
            }
        }
        Some(Value::Object(fields).to_string())
    }

    fn extra_headers(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.params.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            let _ = write!(out, "{k}={v}");
        }
        out
    }

    /// One media frame carrying `payload_b64` (base64 of the encoded audio), as a JSON
    /// text frame. Vonage media is binary and never goes through here.
    pub(crate) fn media(&mut self, payload_b64: &str) -> String {
        let seq = self.next_seq();
        self.chunk += 1;
        let chunk = self.chunk;
        let before = (chunk - 1) * self.frame_ms;
        let sid = &self.ids.stream_id;
        let mut out = String::with_capacity(payload_b64.len() + 200);
        // Written by hand (the hot path of load tests); every value is ASCII without
        // quotes or backslashes, so no escaping is needed.
        let _ = match self.dialect {
            // Exotel's example: sequence 3, chunk 2, timestamp 200 (the chunk's end).
            Dialect::Exotel => write!(
                out,
                r#"{{"event":"media","sequence_number":"{seq}","stream_sid":"{sid}","media":{{"chunk":"{chunk}","timestamp":"{}","payload":"{payload_b64}"}}}}"#,
                chunk * self.frame_ms
            ),
            Dialect::Smartflo => write!(
                out,
                r#"{{"event":"media","sequenceNumber":"{seq}","streamSid":"{sid}","media":{{"chunk":"{chunk}","timestamp":"{before}","payload":"{payload_b64}"}}}}"#
            ),
            Dialect::Twilio => write!(
                out,
                r#"{{"event":"media","sequenceNumber":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{before}","payload":"{payload_b64}"}},"streamSid":"{sid}"}}"#
            ),
            Dialect::Plivo => {
                let headers = json_string(&self.extra_headers());
                write!(
                    out,
                    r#"{{"event":"media","sequenceNumber":{seq},"streamId":"{sid}","media":{{"track":"inbound","timestamp":"{}","chunk":{chunk},"payload":"{payload_b64}"}},"extra_headers":{headers}}}"#,
                    self.start_unix_ms + before
                )
            }
            Dialect::Voxline => write!(out, r#"{{"event":"media","audio":"{payload_b64}"}}"#),
            Dialect::Telnyx | Dialect::Vonage => write!(
                out,
                r#"{{"event":"media","sequence_number":"{seq}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{before}","payload":"{payload_b64}"}},"stream_id":"{sid}"}}"#
            ),
        };
        out
    }

    /// A DTMF key press.
    pub(crate) fn dtmf(&mut self, digit: char, duration_ms: u32) -> String {
        let digit = digit.to_string();
        let sid = self.ids.stream_id.clone();
        match self.dialect {
            Dialect::Exotel => {
                let seq = self.next_seq();
                json!({
                    "event": "dtmf",
                    "sequence_number": seq.to_string(),
                    "stream_sid": sid,
                    "dtmf": { "digit": digit, "duration": duration_ms.to_string() },
                })
            }
            Dialect::Smartflo => {
                let seq = self.next_seq();
                json!({
                    "event": "dtmf",
                    "sequenceNumber": seq.to_string(),
                    "streamSid": sid,
                    "dtmf": { "digit": digit },
                })
            }
            Dialect::Twilio => {
                let seq = self.next_seq();
                json!({
                    "event": "dtmf",
                    "streamSid": sid,
                    "sequenceNumber": seq.to_string(),
                    "dtmf": { "track": "inbound_track", "digit": digit },
                })
            }
            Dialect::Plivo => {
                let seq = self.next_seq();
                json!({
                    "event": "dtmf",
                    "sequenceNumber": seq,
                    "streamId": sid,
                    "dtmf": {
                        "track": "inbound",
                        "digit": digit,
                        "timestamp": ids::unix_ms().to_string(),
                    },
                    "extra_headers": self.extra_headers(),
                })
            }
            Dialect::Telnyx => {
                let seq = self.next_seq();
                json!({
                    "event": "dtmf",
                    "stream_id": sid,
                    "occurred_at": ids::rfc3339(ids::unix_micros()),
                    "sequence_number": seq.to_string(),
                    "dtmf": { "digit": digit },
                })
            }
            Dialect::Vonage => json!({
                "event": "websocket:dtmf",
                "digit": digit,
                "duration": duration_ms,
            }),
            Dialect::Voxline => json!({ "event": "dtmf", "digit": digit }),
        }
        .to_string()
    }

    /// The carrier's answer to a mark whose audio has played (Plivo `playedStream`,
    /// Vonage `websocket:notify` with the original payload).
    pub(crate) fn mark_echo(&mut self, name: &str, payload: Option<&Value>) -> String {
        let sid = self.ids.stream_id.clone();
        match self.dialect {
            Dialect::Exotel => {
                let seq = self.next_seq();
                json!({
                    "event": "mark",
                    "sequence_number": seq.to_string(),
                    "stream_sid": sid,
                    "mark": { "name": name },
                })
            }
            Dialect::Smartflo | Dialect::Twilio => {
                let seq = self.next_seq();
                json!({
                    "event": "mark",
                    "sequenceNumber": seq.to_string(),
                    "streamSid": sid,
                    "mark": { "name": name },
                })
            }
            Dialect::Plivo => {
                let seq = self.next_seq();
                json!({
                    "event": "playedStream",
                    "sequenceNumber": seq,
                    "streamId": sid,
                    "name": name,
                })
            }
            Dialect::Telnyx => {
                let seq = self.next_seq();
                json!({
                    "event": "mark",
                    "sequence_number": seq.to_string(),
                    "stream_id": sid,
                    "mark": { "name": name },
                })
            }
            Dialect::Vonage => json!({
                "event": "websocket:notify",
                "payload": payload.cloned().unwrap_or(Value::Null),
            }),
            Dialect::Voxline => json!({ "event": "mark", "name": name }),
        }
        .to_string()
    }

    /// The carrier's acknowledgement of a clear, where it sends one (Plivo
    /// `clearedAudio`, Vonage `websocket:cleared`).
    pub(crate) fn clear_ack(&mut self) -> Option<String> {
        match self.dialect {
            Dialect::Plivo => {
                let seq = self.next_seq();
                Some(
                    json!({
                        "event": "clearedAudio",
                        "sequenceNumber": seq,
                        "streamId": self.ids.stream_id,
                    })
                    .to_string(),
                )
            }
            Dialect::Vonage => Some(json!({ "event": "websocket:cleared" }).to_string()),
            _ => None,
        }
    }

    /// The `stop` event that ends the stream, where the dialect has one.
    pub(crate) fn stop(&mut self) -> Option<String> {
        let sid = self.ids.stream_id.clone();
        let call = self.ids.call_id.clone();
        let account = self.ids.account_id.clone();
        let frame = match self.dialect {
            Dialect::Exotel => {
                let seq = self.next_seq();
                json!({
                    "event": "stop",
                    "sequence_number": seq.to_string(),
                    "stream_sid": sid,
                    "stop": { "call_sid": call, "account_sid": account, "reason": "callended" },
                })
            }
            Dialect::Smartflo => {
                let seq = self.next_seq();
                json!({
                    "event": "stop",
                    "sequenceNumber": seq.to_string(),
                    "streamSid": sid,
                    "stop": { "accountSid": account, "callSid": call, "reason": "callended" },
                })
            }
            Dialect::Twilio => {
                let seq = self.next_seq();
                json!({
                    "event": "stop",
                    "sequenceNumber": seq.to_string(),
                    "stop": { "accountSid": account, "callSid": call },
                    "streamSid": sid,
                })
            }
            Dialect::Telnyx => {
                let seq = self.next_seq();
                json!({
                    "event": "stop",
                    "sequence_number": seq.to_string(),
                    "stop": { "user_id": account, "call_control_id": call },
                    "stream_id": sid,
                })
            }
            Dialect::Voxline => json!({ "event": "stop" }),
            Dialect::Plivo | Dialect::Vonage => return None,
        };
        Some(frame.to_string())
    }
}

/// Plivo's name for a line format (`audio/x-mulaw` or `audio/x-l16`).
pub(crate) fn plivo_content_type(format: AudioFormat) -> &'static str {
    match format.encoding {
        Encoding::Pcm16 => "audio/x-l16",
        _ => "audio/x-mulaw",
    }
}

fn json_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(dialect: Dialect, params: &[(&str, &str)]) -> Wire {
        let params = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Wire::new(dialect, dialect.default_format(), params, &mut IdGen::new())
    }

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).expect("valid JSON")
    }

    #[test]
    fn every_frame_is_valid_json() {
        for dialect in Dialect::ALL {
            let mut w = wire(dialect, &[("a\"b", "c;d"), ("from", "+1")]);
            let mut frames = w.opening();
            if dialect != Dialect::Vonage {
                frames.push(w.media("AAAA"));
            }
            frames.push(w.dtmf('5', 100));
            frames.push(w.mark_echo("m", None));
            frames.extend(w.clear_ack());
            frames.extend(w.stop());
            for frame in frames {
                let v = parse(&frame);
                assert!(v.get("event").and_then(Value::as_str).is_some(), "{frame}");
            }
        }
    }

    #[test]
    fn sequence_numbers_and_chunks_count_up() {
        let mut w = wire(Dialect::Twilio, &[]);
        w.opening();
        let first = parse(&w.media("AAAA"));
        let second = parse(&w.media("AAAA"));
        assert_eq!(first["sequenceNumber"], "2");
        assert_eq!(first["media"]["chunk"], "1");
        assert_eq!(first["media"]["timestamp"], "0");
        assert_eq!(second["sequenceNumber"], "3");
        assert_eq!(second["media"]["chunk"], "2");
        assert_eq!(second["media"]["timestamp"], "20");

        let mut w = wire(Dialect::Exotel, &[]);
        w.opening();
        w.media("AAAA");
        let second = parse(&w.media("AAAA"));
        assert_eq!(second["sequence_number"], "3");
        assert_eq!(second["media"]["chunk"], "2");
        assert_eq!(second["media"]["timestamp"], "200");

        let mut w = wire(Dialect::Plivo, &[("k", "v"), ("x", "y")]);
        let start = parse(&w.opening()[0]);
        assert_eq!(start["sequenceNumber"], 1);
        assert_eq!(start["extra_headers"], "k=v;x=y");
        let media = parse(&w.media("AAAA"));
        assert_eq!(media["sequenceNumber"], 2);
        assert_eq!(media["media"]["chunk"], 1);
        assert!(media["media"]["timestamp"].is_string());
    }

    #[test]
    fn voxline_frames_follow_the_protocol() {
        let mut w = wire(
            Dialect::Voxline,
            &[
                ("voice_output", "false"),
                ("text_input", "1"),
                ("tenant", "abc"),
            ],
        );
        let start = parse(&w.opening()[0]);
        assert_eq!(start["event"], "start");
        assert!(
            start["call_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("web-"))
        );
        assert_eq!(start["sample_rate"], 16000);
        assert_eq!(start["encoding"], "pcm16");
        assert_eq!(
            start["modes"],
            json!({"voice_output": false, "text_input": true})
        );
        assert_eq!(start["custom"], json!({"tenant": "abc"}));
        assert_eq!(
            parse(&w.media("AAAA")),
            json!({"event":"media","audio":"AAAA"})
        );
        assert_eq!(
            parse(&w.dtmf('5', 100)),
            json!({"event":"dtmf","digit":"5"})
        );
        assert_eq!(
            parse(&w.mark_echo("m", None)),
            json!({"event":"mark","name":"m"})
        );
        assert_eq!(w.clear_ack(), None);
        assert_eq!(w.stop().map(|s| parse(&s)), Some(json!({"event":"stop"})));
        assert_eq!(
            w.text_message("hi \"there\"").map(|s| parse(&s)),
            Some(json!({"event":"text_message","text":"hi \"there\""}))
        );
        assert_eq!(
            w.mode_change([None, Some(false), None, Some(true)])
                .map(|s| parse(&s)),
            Some(json!({"event":"mode_change","text_input":false,"text_output":true}))
        );
        // Without mode parameters, no `modes`.
        let mut plain = wire(Dialect::Voxline, &[]);
        assert!(parse(&plain.opening()[0]).get("modes").is_none());
        // Other dialects have no text channel.
        let twilio = wire(Dialect::Twilio, &[]);
        assert_eq!(twilio.text_message("hi"), None);
        assert_eq!(twilio.mode_change([Some(true); 4]), None);
        assert!(check_params(Dialect::Voxline, &[("voice_input".into(), "maybe".into())]).is_err());
        assert!(check_params(Dialect::Twilio, &[("voice_input".into(), "maybe".into())]).is_ok());
    }
}
