//! The JSON Deepgram sends on `/v1/listen` and the control messages it accepts.
//!
//! Parsing is lenient about fields (missing optional fields default, unknown fields are
//! ignored) and about message types (unknown `type`s are skipped, as the SDK does), and
//! never panics on provider input.

use std::time::Duration;

use serde::Deserialize;

/// `{"type":"KeepAlive"}`: holds an idle stream open (text frame).
pub(crate) const KEEP_ALIVE: &str = r#"{"type":"KeepAlive"}"#;
/// `{"type":"Finalize"}`: transcribe what is buffered now.
pub(crate) const FINALIZE: &str = r#"{"type":"Finalize"}"#;
/// `{"type":"CloseStream"}`: finish, send the last results and `Metadata`, close.
pub(crate) const CLOSE_STREAM: &str = r#"{"type":"CloseStream"}"#;

/// A message from the server, reduced to what the adapter uses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ServerMessage {
    /// A transcript (`Results`).
    Results(Results),
    /// `SpeechStarted`: speech began at `timestamp` seconds of stream time.
    SpeechStarted {
        /// Seconds of stream time.
        timestamp: Option<f64>,
    },
    /// `UtteranceEnd`: the gap after the last word passed `utterance_end_ms`.
    UtteranceEnd {
        /// End of the last word, seconds of stream time.
        last_word_end: Option<f64>,
    },
    /// `Metadata`: the summary after `CloseStream`.
    Metadata {
        /// Seconds of audio processed (what is billed).
        duration: f64,
        /// The request id, for support.
        request_id: Option<String>,
    },
    /// `Error`: the server could not use a message of ours.
    Error {
        /// `SchemaError`, `InvalidConfigureMessage`, ...
        variant: String,
        /// What went wrong.
        description: String,
    },
    /// A type this adapter does not know (skipped).
    Unknown(String),
}

/// A `Results` message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct Results {
    /// Start of the span, seconds of stream time.
    #[serde(default)]
    pub(crate) start: f64,
    /// Length of the span, seconds.
    #[serde(default)]
    pub(crate) duration: f64,
    /// This span is settled.
    #[serde(default)]
    pub(crate) is_final: bool,
    /// Endpointing detected a pause.
    #[serde(default)]
    pub(crate) speech_final: bool,
    /// This result answers a `Finalize`.
    #[serde(default)]
    pub(crate) from_finalize: bool,
    /// The alternatives (the first is the best).
    #[serde(default)]
    pub(crate) channel: Channel,
    /// Request metadata.
    #[serde(default)]
    pub(crate) metadata: Option<ResultsMetadata>,
}

/// `Results.channel`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Channel {
    #[serde(default)]
    pub(crate) alternatives: Vec<Alternative>,
}

/// `Results.metadata`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct ResultsMetadata {
    #[serde(default)]
    pub(crate) request_id: Option<String>,
}

/// One alternative transcript.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct Alternative {
    #[serde(default)]
    pub(crate) transcript: String,
    #[serde(default)]
    pub(crate) confidence: Option<f64>,
    #[serde(default)]
    pub(crate) words: Vec<WireWord>,
    #[serde(default)]
    pub(crate) languages: Vec<String>,
}

/// One word with its timing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub(crate) struct WireWord {
    #[serde(default)]
    pub(crate) word: String,
    #[serde(default)]
    pub(crate) punctuated_word: Option<String>,
    #[serde(default)]
    pub(crate) start: f64,
    #[serde(default)]
    pub(crate) end: f64,
    #[serde(default)]
    pub(crate) confidence: Option<f64>,
    #[serde(default)]
    pub(crate) language: Option<String>,
}

impl Results {
    /// The best alternative, if any.
    pub(crate) fn best(&self) -> Option<&Alternative> {
        self.channel.alternatives.first()
    }

    /// The best transcript, trimmed (empty when there is none).
    pub(crate) fn transcript(&self) -> &str {
        self.best().map_or("", |a| a.transcript.trim())
    }

    /// End of the span, seconds of stream time.
    pub(crate) fn end(&self) -> f64 {
        self.start + self.duration.max(0.0)
    }
}

#[derive(Deserialize)]
struct Tagged {
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct SpeechStartedWire {
    #[serde(default)]
    timestamp: Option<f64>,
}

#[derive(Deserialize)]
struct UtteranceEndWire {
    #[serde(default)]
    last_word_end: Option<f64>,
}

#[derive(Deserialize)]
struct MetadataWire {
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct ErrorWire {
    #[serde(default)]
    variant: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    message: Option<String>,
}

/// Parses one text frame.
///
/// # Errors
/// When the frame is not JSON or a known type has fields of the wrong type.
pub(crate) fn parse(text: &str) -> Result<ServerMessage, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    let tagged = Tagged::deserialize(&value)?;
    Ok(match tagged.kind.as_str() {
        "Results" => ServerMessage::Results(Results::deserialize(&value)?),
        "SpeechStarted" => ServerMessage::SpeechStarted {
            timestamp: SpeechStartedWire::deserialize(&value)?.timestamp,
        },
        "UtteranceEnd" => ServerMessage::UtteranceEnd {
            last_word_end: UtteranceEndWire::deserialize(&value)?
                .last_word_end
                // Deepgram reports -1 when no word was heard.
                .filter(|t| *t >= 0.0),
        },
        "Metadata" => {
            let m = MetadataWire::deserialize(&value)?;
            ServerMessage::Metadata {
                duration: m.duration,
                request_id: m.request_id,
            }
        }
        "Error" => {
            let e = ErrorWire::deserialize(&value)?;
            let description = match e.message {
                Some(m) => format!("{} (message: {m})", e.description),
                None => e.description,
            };
            ServerMessage::Error {
                variant: e.variant,
                description,
            }
        }
        other => ServerMessage::Unknown(other.to_owned()),
    })
}

/// Seconds as a duration; negative, NaN or huge values (never expected) clamp.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `Results` example from the spec (§1.4), as the server sends it.
    const SPEC_RESULTS: &str = r#"{"type":"Results","channel_index":[0,1],"duration":1.02,"start":3.5,
 "is_final":true,"speech_final":true,"from_finalize":false,
 "channel":{"alternatives":[{"transcript":"hello there","confidence":0.98,
   "languages":["en"],
   "words":[{"word":"hello","start":3.52,"end":3.9,"confidence":0.99,
             "punctuated_word":"Hello","speaker":0,"language":"en"}]}]},
 "metadata":{"request_id":"abc","model_uuid":"m",
             "model_info":{"name":"general","version":"1","arch":"nova-3"}},
 "entities":[{"label":"PHONE_NUMBER","value":"1","raw_value":"one","confidence":0.9,"start_word":0,"end_word":3}]}"#;

    #[test]
    fn parses_the_spec_results_example() {
        let ServerMessage::Results(r) = parse(SPEC_RESULTS).expect("parse") else {
            panic!("not results");
        };
        assert!(r.is_final && r.speech_final && !r.from_finalize);
        assert_eq!(r.start, 3.5);
        assert!((r.end() - 4.52).abs() < 1e-9);
        assert_eq!(r.transcript(), "hello there");
        let best = r.best().expect("alternative");
        assert_eq!(best.confidence, Some(0.98));
        assert_eq!(best.languages, ["en"]);
        assert_eq!(best.words.len(), 1);
        assert_eq!(best.words[0].punctuated_word.as_deref(), Some("Hello"));
        assert_eq!(best.words[0].end, 3.9);
        assert_eq!(
            r.metadata.and_then(|m| m.request_id).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn parses_speech_started_utterance_end_and_metadata() {
        assert_eq!(
            parse(r#"{"type":"SpeechStarted","channel":[0,1],"timestamp":12.34}"#).expect("ss"),
            ServerMessage::SpeechStarted {
                timestamp: Some(12.34)
            }
        );
        assert_eq!(
            parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":15.2}"#).expect("ue"),
            ServerMessage::UtteranceEnd {
                last_word_end: Some(15.2)
            }
        );
        assert_eq!(
            parse(r#"{"type":"UtteranceEnd","channel":[0,1],"last_word_end":-1}"#).expect("ue"),
            ServerMessage::UtteranceEnd {
                last_word_end: None
            }
        );
        let metadata = r#"{"type":"Metadata","transaction_key":"deprecated","request_id":"8c8e","sha256":"x","created":"2024-08-29T22:37:55.202Z","duration":0.0,"channels":0}"#;
        assert_eq!(
            parse(metadata).expect("metadata"),
            ServerMessage::Metadata {
                duration: 0.0,
                request_id: Some("8c8e".into())
            }
        );
    }

    #[test]
    fn parses_error_messages_and_skips_unknown_types() {
        let e = parse(r#"{"type":"Error","variant":"SchemaError","description":"bad","message":"{\"type\":\"Nope\"}"}"#)
            .expect("error");
        let ServerMessage::Error {
            variant,
            description,
        } = e
        else {
            panic!("not an error");
        };
        assert_eq!(variant, "SchemaError");
        assert!(description.starts_with("bad") && description.contains("Nope"));
        assert_eq!(
            parse(r#"{"type":"TurnInfo","event":"Update"}"#).expect("unknown"),
            ServerMessage::Unknown("TurnInfo".into())
        );
    }

    #[test]
    fn empty_interims_and_missing_fields_do_not_fail() {
        let ServerMessage::Results(r) = parse(
            r#"{"type":"Results","start":0,"duration":0.5,"is_final":false,"channel":{"alternatives":[{"transcript":"","confidence":0,"words":[]}]}}"#,
        )
        .expect("parse") else {
            panic!("not results");
        };
        assert_eq!(r.transcript(), "");
        assert!(!r.is_final);
        let ServerMessage::Results(r) =
            parse(r#"{"type":"Results","channel":{"alternatives":[]}}"#).expect("parse")
        else {
            panic!("not results");
        };
        assert!(r.best().is_none());
        assert!(parse("not json").is_err());
        assert!(parse(r#"{"type":"Results","start":"soon"}"#).is_err());
    }

    #[test]
    fn seconds_clamp() {
        assert_eq!(secs(-1.0), Duration::ZERO);
        assert_eq!(secs(f64::NAN), Duration::ZERO);
        assert_eq!(secs(1.5), Duration::from_millis(1500));
    }
}
