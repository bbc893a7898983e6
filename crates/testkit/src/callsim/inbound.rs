//! Strict parsing of what the bot sends, per dialect, as the carrier would judge it.

use base64::Engine as _;
use serde_json::{Map, Value};
use voxline_audio::g711::mulaw;
use voxline_audio::{AudioFormat, Encoding, Resampler};

use crate::callsim::dialect::Dialect;
use crate::callsim::report::ViolationKind;
use crate::callsim::wire::MODE_KEYS;

/// What the carrier does with one frame from the bot.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum BotAction {
    /// Audio to queue for playout, already decoded to PCM16 at the line rate.
    Audio(Vec<i16>),
    /// A mark (Plivo `checkpoint`, Vonage `notify`) to echo once the audio before it
    /// has played.
    Mark {
        name: String,
        /// Vonage's `notify` payload, echoed back as it came.
        payload: Option<Value>,
    },
    /// Drop the queued audio.
    Clear,
    /// Words for the client to show (Voxline `transcript`).
    Text {
        /// `user` or `bot`.
        role: String,
        text: String,
        is_final: bool,
    },
    /// The channels in force (Voxline `modes`), in the order of [`MODE_KEYS`].
    Modes([bool; 4]),
}

/// One problem found in a frame.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub(crate) kind: ViolationKind,
    pub(crate) message: String,
}

/// The verdict on one frame: what to do, and what was wrong with it.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub(crate) action: Option<BotAction>,
    /// Mistakes the carrier would reject or mishandle.
    pub(crate) violations: Vec<Finding>,
    /// Undocumented but harmless things.
    pub(crate) warnings: Vec<Finding>,
}

impl Parsed {
    fn violation(&mut self, kind: ViolationKind, message: impl Into<String>) {
        self.violations.push(Finding {
            kind,
            message: message.into(),
        });
    }

    fn warning(&mut self, kind: ViolationKind, message: impl Into<String>) {
        self.warnings.push(Finding {
            kind,
            message: message.into(),
        });
    }
}

/// The carrier's parser for frames from the bot.
#[derive(Debug)]
pub(crate) struct Inbound {
    dialect: Dialect,
    format: AudioFormat,
    stream_id: String,
    /// Plivo may send audio at a rate other than the stream's: one resampler per rate.
    resamplers: Vec<Resampler>,
}

/// The documented key for the stream id on frames to the carrier, and the spellings
/// that are mistakes.
fn stream_id_keys(dialect: Dialect) -> (&'static str, &'static [&'static str]) {
    match dialect {
        Dialect::Exotel => ("stream_sid", &["streamSid", "streamId", "stream_id"]),
        Dialect::Smartflo | Dialect::Twilio => {
            ("streamSid", &["stream_sid", "streamId", "stream_id"])
        }
        Dialect::Plivo => ("streamId", &["streamSid", "stream_sid", "stream_id"]),
        Dialect::Telnyx | Dialect::Vonage | Dialect::Voxline => {
            ("", &["stream_id", "streamSid", "stream_sid", "streamId"])
        }
    }
}

impl Inbound {
    pub(crate) fn new(dialect: Dialect, format: AudioFormat, stream_id: String) -> Self {
        Self {
            dialect,
            format,
            stream_id,
            resamplers: Vec::new(),
        }
    }

    /// 20 ms of the line format, in bytes.
    fn frame20_bytes(&self) -> usize {
        self.format.frame_bytes(20)
    }

    /// Judges a text frame.
    pub(crate) fn text(&mut self, text: &str) -> Parsed {
        let mut out = Parsed::default();
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                out.violation(ViolationKind::InvalidJson, format!("not JSON: {e}"));
                return out;
            }
        };
        let Value::Object(obj) = value else {
            out.violation(ViolationKind::InvalidJson, "JSON that is not an object");
            return out;
        };
        if self.dialect == Dialect::Vonage {
            self.vonage_text(&obj, &mut out);
            return out;
        }
        if self.dialect == Dialect::Voxline {
            self.voxline_text(&obj, &mut out);
            return out;
        }
        let Some(event) = obj.get("event") else {
            out.violation(ViolationKind::MissingField, "no \"event\" field");
            return out;
        };
        let Some(event) = event.as_str() else {
            out.violation(ViolationKind::MissingField, "\"event\" is not a string");
            return out;
        };
        match (self.dialect, event) {
            (Dialect::Plivo, "playAudio") => {
                self.check_stream_id(&obj, false, &mut out);
                self.plivo_audio(&obj, &mut out);
            }
            (Dialect::Plivo, "checkpoint") => {
                self.check_stream_id(&obj, true, &mut out);
                match obj.get("name").and_then(Value::as_str) {
                    Some(name) if !name.is_empty() => {
                        out.action = Some(BotAction::Mark {
                            name: name.to_owned(),
                            payload: None,
                        });
                    }
                    _ => out.violation(
                        ViolationKind::EmptyMarkName,
                        "checkpoint without a non-empty \"name\"",
                    ),
                }
            }
            (Dialect::Plivo, "clearAudio") => {
                self.check_stream_id(&obj, true, &mut out);
                out.action = Some(BotAction::Clear);
            }
            (Dialect::Plivo, other) => out.violation(
                ViolationKind::UnknownEvent,
                format!("Plivo accepts playAudio, checkpoint and clearAudio, not {other:?}"),
            ),
            (_, "media") => {
                self.check_stream_id(&obj, true, &mut out);
                self.media(&obj, &mut out);
            }
            (_, "mark") => {
                self.check_stream_id(&obj, true, &mut out);
                match obj
                    .get("mark")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                {
                    Some(name) if !name.is_empty() => {
                        out.action = Some(BotAction::Mark {
                            name: name.to_owned(),
                            payload: None,
                        });
                    }
                    _ => out.violation(
                        ViolationKind::EmptyMarkName,
                        "mark without a non-empty \"mark.name\"",
                    ),
                }
            }
            (_, "clear") => {
                self.check_stream_id(&obj, true, &mut out);
                out.action = Some(BotAction::Clear);
            }
            (dialect, other) => out.violation(
                ViolationKind::UnknownEvent,
                format!("{dialect} accepts media, mark and clear, not {other:?}"),
            ),
        }
        out
    }

    /// Judges a binary frame.
    pub(crate) fn binary(&mut self, data: &[u8]) -> Parsed {
        let mut out = Parsed::default();
        if self.dialect == Dialect::Voxline {
            // The protocol sends audio as JSON; play it anyway, to hear the rest.
            out.violation(
                ViolationKind::WrongFrameType,
                format!(
                    "binary frame of {} bytes: Voxline sends audio as {{\"event\":\"media\",\"audio\":...}}",
                    data.len()
                ),
            );
            out.action = Some(BotAction::Audio(self.line_samples(data, &mut out)));
            return out;
        }
        if self.dialect != Dialect::Vonage {
            out.violation(
                ViolationKind::WrongFrameType,
                format!(
                    "binary frame of {} bytes: {} takes JSON text frames only",
                    data.len(),
                    self.dialect
                ),
            );
            return out;
        }
        let want = self.frame20_bytes();
        if data.len() != want {
            out.violation(
                ViolationKind::BadChunkSize,
                format!(
                    "binary audio frame of {} bytes: Vonage requires exactly 20 ms ({want} bytes at {} Hz)",
                    data.len(),
                    self.format.sample_rate
                ),
            );
        }
        out.action = Some(BotAction::Audio(decode_pcm16(data)));
        out
    }

    /// Voxline's messages to the client: `media`, `mark`, `clear`, `hangup`,
    /// `transcript`, `modes`.
    fn voxline_text(&mut self, obj: &Map<String, Value>, out: &mut Parsed) {
        let Some(event) = obj.get("event").and_then(Value::as_str) else {
            out.violation(ViolationKind::MissingField, "no string \"event\" field");
            return;
        };
        self.check_stream_id(obj, false, out);
        match event {
            "media" => {
                let Some(audio) = obj.get("audio").and_then(Value::as_str) else {
                    out.violation(ViolationKind::MissingField, "no string \"audio\"");
                    return;
                };
                match base64::engine::general_purpose::STANDARD.decode(audio) {
                    Ok(bytes) if bytes.is_empty() => {
                        out.violation(ViolationKind::BadChunkSize, "empty audio");
                    }
                    Ok(bytes) => out.action = Some(BotAction::Audio(self.line_samples(&bytes, out))),
                    Err(e) => out.violation(
                        ViolationKind::BadBase64,
                        format!("audio is not base64: {e}"),
                    ),
                }
            }
            "mark" => match obj.get("name").and_then(Value::as_str) {
                Some(name) if !name.is_empty() => {
                    out.action = Some(BotAction::Mark {
                        name: name.to_owned(),
                        payload: None,
                    });
                }
                _ => out.violation(
                    ViolationKind::EmptyMarkName,
                    "mark without a non-empty \"name\"",
                ),
            },
            "clear" => out.action = Some(BotAction::Clear),
            // The server closes the socket next; the close ends the call.
            "hangup" => {}
            "transcript" => {
                let role = obj.get("role").and_then(Value::as_str);
                let text = obj.get("text").and_then(Value::as_str);
                let is_final = obj.get("final").and_then(Value::as_bool);
                match (role, text, is_final) {
                    (Some(role @ ("user" | "bot")), Some(text), Some(is_final)) => {
                        out.action = Some(BotAction::Text {
                            role: role.to_owned(),
                            text: text.to_owned(),
                            is_final,
                        });
                    }
                    (Some(role), Some(_), Some(_)) => out.violation(
                        ViolationKind::MissingField,
                        format!("transcript role {role:?}: expected \"user\" or \"bot\""),
                    ),
                    _ => out.violation(
                        ViolationKind::MissingField,
                        "transcript needs a string \"role\", a string \"text\" and a boolean \"final\"",
                    ),
                }
            }
            "modes" => {
                let mut modes = [false; 4];
                for (slot, key) in modes.iter_mut().zip(MODE_KEYS) {
                    match obj.get(key).and_then(Value::as_bool) {
                        Some(on) => *slot = on,
                        None => {
                            out.violation(
                                ViolationKind::MissingField,
                                format!("modes without a boolean {key:?}"),
                            );
                            return;
                        }
                    }
                }
                out.action = Some(BotAction::Modes(modes));
            }
            other => out.violation(
                ViolationKind::UnknownEvent,
                format!(
                    "Voxline clients accept media, mark, clear, hangup, transcript and modes, not {other:?}"
                ),
            ),
        }
    }

    /// Line-format bytes (Voxline: PCM16 or mu-law) as samples; a PCM16 payload that is
    /// not whole samples is a violation.
    fn line_samples(&self, bytes: &[u8], out: &mut Parsed) -> Vec<i16> {
        match self.format.encoding {
            Encoding::Mulaw => decode_mulaw(bytes),
            _ => {
                if !bytes.len().is_multiple_of(2) {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!(
                            "{} bytes of PCM16 is not a whole number of samples",
                            bytes.len()
                        ),
                    );
                }
                decode_pcm16(bytes)
            }
        }
    }

    fn vonage_text(&mut self, obj: &Map<String, Value>, out: &mut Parsed) {
        match obj.get("action").and_then(Value::as_str) {
            Some("clear") => out.action = Some(BotAction::Clear),
            Some("notify") => {
                let payload = obj.get("payload").cloned().unwrap_or(Value::Null);
                let name = match payload.get("name").and_then(Value::as_str) {
                    Some(name) => name.to_owned(),
                    None => payload.to_string(),
                };
                out.action = Some(BotAction::Mark {
                    name,
                    payload: Some(payload),
                });
            }
            Some(other) => out.violation(
                ViolationKind::UnknownEvent,
                format!("Vonage accepts the actions clear and notify, not {other:?}"),
            ),
            None => {
                let looks_like_audio = obj.contains_key("media")
                    || obj.contains_key("payload")
                    || obj.get("event").and_then(Value::as_str) == Some("media");
                if looks_like_audio {
                    out.violation(
                        ViolationKind::WrongFrameType,
                        "audio in a text frame: Vonage takes audio as binary frames",
                    );
                } else {
                    out.violation(
                        ViolationKind::UnknownEvent,
                        "text frame without an \"action\" (Vonage accepts clear and notify)",
                    );
                }
            }
        }
    }

    fn check_stream_id(&self, obj: &Map<String, Value>, required: bool, out: &mut Parsed) {
        let (key, wrong) = stream_id_keys(self.dialect);
        if key.is_empty() {
            if let Some(k) = wrong.iter().find(|k| obj.contains_key(**k)) {
                out.warning(
                    ViolationKind::UnexpectedStreamId,
                    format!(
                        "{k:?} on a frame to {}, whose frames carry no stream id",
                        self.dialect
                    ),
                );
            }
            return;
        }
        match obj.get(key) {
            Some(Value::String(id)) if *id == self.stream_id => {}
            Some(Value::String(id)) => out.violation(
                ViolationKind::WrongStreamId,
                format!("{key} {id:?} is not this stream's {:?}", self.stream_id),
            ),
            Some(other) => out.violation(
                ViolationKind::WrongStreamId,
                format!("{key} is {other}, not a string"),
            ),
            None => {
                if let Some(k) = wrong.iter().find(|k| obj.contains_key(**k)) {
                    out.violation(
                        ViolationKind::WrongKey,
                        format!(
                            "stream id spelled {k:?}; {} spells it {key:?}",
                            self.dialect
                        ),
                    );
                } else if required {
                    out.violation(
                        ViolationKind::MissingStreamId,
                        format!("no {key:?} on a frame that needs it"),
                    );
                }
            }
        }
    }

    /// Decodes `media.payload`, or records why it cannot.
    fn payload(&self, media: Option<&Value>, out: &mut Parsed) -> Option<Vec<u8>> {
        let Some(media) = media.and_then(Value::as_object) else {
            out.violation(ViolationKind::MissingField, "no \"media\" object");
            return None;
        };
        let Some(payload) = media.get("payload").and_then(Value::as_str) else {
            out.violation(ViolationKind::MissingField, "no string \"media.payload\"");
            return None;
        };
        match base64::engine::general_purpose::STANDARD.decode(payload) {
            Ok(bytes) if bytes.is_empty() => {
                out.violation(ViolationKind::BadChunkSize, "empty audio payload");
                None
            }
            Ok(bytes) => Some(bytes),
            Err(e) => {
                out.violation(
                    ViolationKind::BadBase64,
                    format!("payload is not base64: {e}"),
                );
                None
            }
        }
    }

    fn media(&mut self, obj: &Map<String, Value>, out: &mut Parsed) {
        let Some(bytes) = self.payload(obj.get("media"), out) else {
            return;
        };
        let len = bytes.len();
        match self.dialect {
            Dialect::Exotel => {
                let unit = self.frame20_bytes();
                if len % unit != 0 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!(
                            "{len} bytes is not a multiple of {unit} (20 ms of PCM16 at {} Hz)",
                            self.format.sample_rate
                        ),
                    );
                }
                if len > 100 * 1024 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!("{len} bytes is over Exotel's 100 KB maximum"),
                    );
                }
                let mut samples = decode_pcm16(&bytes);
                // Exotel waits 20 ms after a piece shorter than 20 ms.
                let unit_samples = unit / 2;
                let rem = samples.len() % unit_samples;
                if rem != 0 {
                    samples.resize(samples.len() + unit_samples - rem, 0);
                }
                out.action = Some(BotAction::Audio(samples));
            }
            Dialect::Smartflo => {
                if len < 160 || len % 160 != 0 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!("{len} bytes: Smartflo needs a multiple of 160 bytes (20 ms), at least 160"),
                    );
                }
                out.action = Some(BotAction::Audio(decode_mulaw(&bytes)));
            }
            Dialect::Telnyx => {
                if len < 160 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!("{len} bytes: Telnyx RTP chunks hold 20 ms (160 bytes) to 30 s"),
                    );
                } else if len > 8000 * 30 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!("{len} bytes: over Telnyx's 30 s per chunk"),
                    );
                }
                out.action = Some(BotAction::Audio(decode_mulaw(&bytes)));
            }
            _ => out.action = Some(BotAction::Audio(decode_mulaw(&bytes))),
        }
    }

    fn plivo_audio(&mut self, obj: &Map<String, Value>, out: &mut Parsed) {
        let media = obj.get("media");
        let content_type = media.and_then(|m| m.get("contentType"));
        let rate = media.and_then(|m| m.get("sampleRate"));
        let encoding = match content_type.and_then(Value::as_str) {
            Some("audio/x-mulaw") => Encoding::Mulaw,
            Some("audio/x-l16") => Encoding::Pcm16,
            Some(other) => {
                out.violation(
                    ViolationKind::BadMediaFormat,
                    format!("media.contentType {other:?}: expected audio/x-mulaw or audio/x-l16"),
                );
                return;
            }
            None => {
                out.violation(
                    ViolationKind::MissingField,
                    "no string \"media.contentType\"",
                );
                return;
            }
        };
        let Some(rate) = rate.and_then(Value::as_u64) else {
            out.violation(
                ViolationKind::MissingField,
                "no numeric \"media.sampleRate\"",
            );
            return;
        };
        let valid = matches!(
            (encoding, rate),
            (Encoding::Mulaw, 8000) | (Encoding::Pcm16, 8000) | (Encoding::Pcm16, 16000)
        );
        if !valid {
            out.violation(
                ViolationKind::BadMediaFormat,
                format!(
                    "{} at {rate} Hz is not a Plivo playAudio format",
                    encoding.name()
                ),
            );
            return;
        }
        let Some(bytes) = self.payload(media, out) else {
            return;
        };
        let samples = match encoding {
            Encoding::Pcm16 => {
                if bytes.len() % 2 != 0 {
                    out.violation(
                        ViolationKind::BadChunkSize,
                        format!(
                            "{} bytes of L16 is not a whole number of samples",
                            bytes.len()
                        ),
                    );
                }
                decode_pcm16(&bytes)
            }
            _ => decode_mulaw(&bytes),
        };
        let rate = rate as u32;
        let samples = if rate == self.format.sample_rate {
            samples
        } else {
            self.resample(rate, &samples)
        };
        out.action = Some(BotAction::Audio(samples));
    }

    fn resample(&mut self, from: u32, samples: &[i16]) -> Vec<i16> {
        let to = self.format.sample_rate;
        let index = match self.resamplers.iter().position(|r| r.from_rate() == from) {
            Some(i) => i,
            None => match Resampler::new(from, to) {
                Ok(r) => {
                    self.resamplers.push(r);
                    self.resamplers.len() - 1
                }
                // Both rates are validated above; keep the samples rather than fail.
                Err(_) => return samples.to_vec(),
            },
        };
        let mut out = Vec::with_capacity(samples.len() * to as usize / from.max(1) as usize + 1);
        self.resamplers[index].process(samples, &mut out);
        out
    }
}

/// PCM16 little-endian bytes to samples; a trailing odd byte is ignored.
pub(crate) fn decode_pcm16(bytes: &[u8]) -> Vec<i16> {
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

fn decode_mulaw(bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::with_capacity(bytes.len());
    mulaw::decode(bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inbound(dialect: Dialect) -> Inbound {
        Inbound::new(dialect, dialect.default_format(), "SID".into())
    }

    fn kinds(p: &Parsed) -> Vec<ViolationKind> {
        p.violations.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn twilio_media_mark_clear() {
        let mut twilio = inbound(Dialect::Twilio);
        let p = twilio.text(r#"{"event":"media","streamSid":"SID","media":{"payload":"//8="}}"#);
        assert!(p.violations.is_empty());
        assert_eq!(p.action, Some(BotAction::Audio(vec![0, 0])));
        let p = twilio.text(r#"{"event":"mark","streamSid":"SID","mark":{"name":"a"}}"#);
        assert!(matches!(p.action, Some(BotAction::Mark { ref name, .. }) if name == "a"));
        let p = twilio.text(r#"{"event":"clear","streamSid":"SID"}"#);
        assert_eq!(p.action, Some(BotAction::Clear));
    }

    #[test]
    fn mistakes_are_named() {
        let mut twilio = inbound(Dialect::Twilio);
        let cases = [
            ("not json", ViolationKind::InvalidJson),
            ("[1]", ViolationKind::InvalidJson),
            (r#"{"streamSid":"SID"}"#, ViolationKind::MissingField),
            (
                r#"{"event":"play","streamSid":"SID"}"#,
                ViolationKind::UnknownEvent,
            ),
            (
                r#"{"event":"clear","streamSid":"X"}"#,
                ViolationKind::WrongStreamId,
            ),
            (
                r#"{"event":"clear","stream_sid":"SID"}"#,
                ViolationKind::WrongKey,
            ),
            (r#"{"event":"clear"}"#, ViolationKind::MissingStreamId),
            (
                r#"{"event":"media","streamSid":"SID","media":{"payload":"!!"}}"#,
                ViolationKind::BadBase64,
            ),
            (
                r#"{"event":"media","streamSid":"SID"}"#,
                ViolationKind::MissingField,
            ),
            (
                r#"{"event":"mark","streamSid":"SID","mark":{"name":""}}"#,
                ViolationKind::EmptyMarkName,
            ),
            (
                r#"{"event":"mark","streamSid":"SID","mark":{}}"#,
                ViolationKind::EmptyMarkName,
            ),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(&twilio.text(text)), vec![kind], "{text}");
        }
        assert_eq!(
            kinds(&twilio.binary(&[0; 160])),
            vec![ViolationKind::WrongFrameType]
        );
    }

    #[test]
    fn chunk_size_rules() {
        let b64 = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![0u8; n]);
        let mut exotel = inbound(Dialect::Exotel);
        let ok = format!(
            r#"{{"event":"media","stream_sid":"SID","media":{{"payload":"{}"}}}}"#,
            b64(3200)
        );
        assert!(exotel.text(&ok).violations.is_empty());
        let bad = format!(
            r#"{{"event":"media","stream_sid":"SID","media":{{"payload":"{}"}}}}"#,
            b64(4096)
        );
        let p = exotel.text(&bad);
        assert_eq!(kinds(&p), vec![ViolationKind::BadChunkSize]);
        // Padded up to the next 20 ms.
        assert!(matches!(p.action, Some(BotAction::Audio(ref s)) if s.len() == 2080));

        let mut smartflo = inbound(Dialect::Smartflo);
        for (n, ok) in [(160, true), (800, true), (100, false), (250, false)] {
            let text = format!(
                r#"{{"event":"media","streamSid":"SID","media":{{"payload":"{}"}}}}"#,
                b64(n)
            );
            assert_eq!(smartflo.text(&text).violations.is_empty(), ok, "{n}");
        }

        let mut vonage = inbound(Dialect::Vonage);
        assert!(vonage.binary(&[0; 640]).violations.is_empty());
        assert_eq!(
            kinds(&vonage.binary(&[0; 320])),
            vec![ViolationKind::BadChunkSize]
        );
        assert_eq!(
            kinds(&vonage.text(r#"{"event":"media","media":{"payload":"AAAA"}}"#)),
            vec![ViolationKind::WrongFrameType]
        );
        assert_eq!(
            vonage.text(r#"{"action":"clear"}"#).action,
            Some(BotAction::Clear)
        );
    }

    #[test]
    fn plivo_checks_its_own_names() {
        let mut plivo = inbound(Dialect::Plivo);
        let play = r#"{"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"//8="}}"#;
        let p = plivo.text(play);
        assert!(p.violations.is_empty(), "{:?}", p.violations);
        assert_eq!(p.action, Some(BotAction::Audio(vec![0, 0])));
        let p = plivo.text(r#"{"event":"checkpoint","streamId":"SID","name":"n"}"#);
        assert!(matches!(p.action, Some(BotAction::Mark { ref name, .. }) if name == "n"));
        assert_eq!(
            kinds(&plivo.text(r#"{"event":"clearAudio"}"#)),
            vec![ViolationKind::MissingStreamId]
        );
        assert_eq!(
            kinds(&plivo.text(r#"{"event":"media","streamId":"SID"}"#)),
            vec![ViolationKind::UnknownEvent]
        );
        let l16_16k = r#"{"event":"playAudio","media":{"contentType":"audio/x-l16","sampleRate":16000,"payload":"AAAAAAAAAAA="}}"#;
        let p = plivo.text(l16_16k);
        assert!(p.violations.is_empty());
        let bad_rate = r#"{"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":16000,"payload":"AAAA"}}"#;
        assert_eq!(
            kinds(&plivo.text(bad_rate)),
            vec![ViolationKind::BadMediaFormat]
        );
    }

    #[test]
    fn voxline_messages() {
        let mut voxline = inbound(Dialect::Voxline);
        let p = voxline.text(r#"{"event":"media","audio":"AAABAA=="}"#);
        assert!(p.violations.is_empty());
        assert_eq!(p.action, Some(BotAction::Audio(vec![0, 1])));
        let p = voxline.text(r#"{"event":"mark","name":"m"}"#);
        assert!(matches!(p.action, Some(BotAction::Mark { ref name, .. }) if name == "m"));
        assert_eq!(
            voxline.text(r#"{"event":"clear"}"#).action,
            Some(BotAction::Clear)
        );
        assert_eq!(voxline.text(r#"{"event":"hangup"}"#).action, None);
        assert_eq!(
            voxline
                .text(r#"{"event":"transcript","role":"bot","text":"hi","final":true}"#)
                .action,
            Some(BotAction::Text {
                role: "bot".into(),
                text: "hi".into(),
                is_final: true
            })
        );
        assert_eq!(
            voxline
                .text(r#"{"event":"modes","voice_input":true,"text_input":false,"voice_output":true,"text_output":false}"#)
                .action,
            Some(BotAction::Modes([true, false, true, false]))
        );
        let cases = [
            (
                r#"{"event":"media","payload":"AAAA"}"#,
                ViolationKind::MissingField,
            ),
            (
                r#"{"event":"media","media":{"payload":"AAAA"}}"#,
                ViolationKind::MissingField,
            ),
            (
                r#"{"event":"media","audio":"AA=="}"#,
                ViolationKind::BadChunkSize,
            ),
            (
                r#"{"event":"media","audio":"!!"}"#,
                ViolationKind::BadBase64,
            ),
            (
                r#"{"event":"mark","mark":{"name":"m"}}"#,
                ViolationKind::EmptyMarkName,
            ),
            (
                r#"{"event":"transcript","role":"assistant","text":"x","final":true}"#,
                ViolationKind::MissingField,
            ),
            (
                r#"{"event":"transcript","role":"bot","text":"x","is_final":true}"#,
                ViolationKind::MissingField,
            ),
            (
                r#"{"event":"modes","voice_input":true}"#,
                ViolationKind::MissingField,
            ),
            (r#"{"event":"playAudio"}"#, ViolationKind::UnknownEvent),
            (r#"{"audio":"AAAA"}"#, ViolationKind::MissingField),
        ];
        for (text, kind) in cases {
            assert_eq!(kinds(&voxline.text(text)), vec![kind], "{text}");
        }
        let p = voxline.binary(&[0; 640]);
        assert_eq!(kinds(&p), vec![ViolationKind::WrongFrameType]);
        assert!(matches!(p.action, Some(BotAction::Audio(ref s)) if s.len() == 320));
    }

    #[test]
    fn telnyx_stream_id_is_only_a_warning() {
        let mut telnyx = inbound(Dialect::Telnyx);
        let p = telnyx.text(r#"{"event":"clear","stream_id":"SID"}"#);
        assert!(p.violations.is_empty());
        assert_eq!(p.warnings.len(), 1);
        assert_eq!(p.action, Some(BotAction::Clear));
    }
}
