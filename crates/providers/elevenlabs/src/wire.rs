//! The JSON messages on the wire: what the adapter sends on `multi-stream-input` and
//! in HTTP bodies, and what the service sends back.

use serde::Serialize;
use serde_json::Value;

use crate::config::{PronunciationDictionary, VoiceSettings};

/// A client message on `multi-stream-input`; unset fields are left out.
#[derive(Debug, Default, Serialize)]
pub(crate) struct ClientMessage<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    voice_settings: Option<&'a VoiceSettings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pronunciation_dictionary_locators: &'a [PronunciationDictionary],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flush: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    close_context: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    close_socket: bool,
}

#[derive(Debug, Serialize)]
struct GenerationConfig<'a> {
    chunk_length_schedule: &'a [u32],
}

impl<'a> ClientMessage<'a> {
    /// A context's first message: `text` a single space, with the settings that are
    /// fixed for the context's life.
    pub(crate) fn init(
        context: &'a str,
        voice_settings: Option<&'a VoiceSettings>,
        chunk_length_schedule: Option<&'a [u32]>,
        dictionaries: &'a [PronunciationDictionary],
    ) -> Self {
        Self {
            text: Some(" "),
            context_id: Some(context),
            voice_settings,
            generation_config: chunk_length_schedule.map(|chunk_length_schedule| {
                GenerationConfig {
                    chunk_length_schedule,
                }
            }),
            pronunciation_dictionary_locators: dictionaries,
            ..Self::default()
        }
    }

    /// More text for a context.
    pub(crate) fn text(context: &'a str, text: &'a str) -> Self {
        Self {
            text: Some(text),
            context_id: Some(context),
            ..Self::default()
        }
    }

    /// Generate what the context holds now, after appending `text` if any.
    pub(crate) fn flush(context: &'a str, text: Option<&'a str>) -> Self {
        Self {
            text,
            context_id: Some(context),
            flush: true,
            ..Self::default()
        }
    }

    /// End a context: the service finishes any flush in progress, then `isFinal`.
    pub(crate) fn close_context(context: &'a str) -> Self {
        Self {
            context_id: Some(context),
            close_context: true,
            ..Self::default()
        }
    }

    /// Empty text: resets a context's inactivity timer (or, with no context, the
    /// connection's).
    pub(crate) fn keepalive(context: Option<&'a str>) -> Self {
        Self {
            text: Some(""),
            context_id: context,
            ..Self::default()
        }
    }

    /// Close every context and then the connection.
    pub(crate) fn close_socket() -> Self {
        Self {
            close_socket: true,
            ..Self::default()
        }
    }

    /// The JSON text.
    pub(crate) fn to_json(&self) -> String {
        // Serialising plain strings, numbers and booleans cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message from the service, read leniently: every field optional, unknown
/// fields (alignment) ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ServerMessage {
    /// Base64 audio (`null` or absent on the final message).
    pub(crate) audio: Option<String>,
    /// `isFinal: true`: the context is finished.
    pub(crate) is_final: bool,
    /// `contextId` (or `context_id`, which the service also sends).
    pub(crate) context_id: Option<String>,
    /// An error: its code (`error`, e.g. `input_timeout_exceeded`) and `message`.
    pub(crate) error: Option<ServerError>,
}

/// An error the service reports before closing the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerError {
    /// `error`: `input_timeout_exceeded`, `max_active_conversations`, ...
    pub(crate) code: String,
    /// `message`, the human-readable explanation.
    pub(crate) message: String,
}

impl ServerMessage {
    /// Parses a text frame; `None` if it is not a JSON object.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let Value::Object(map) = serde_json::from_str::<Value>(text).ok()? else {
            return None;
        };
        let string = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_owned);
        let error = match (string("error"), string("message")) {
            (None, None) => None,
            (code, message) => Some(ServerError {
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
            }),
        };
        Some(Self {
            audio: string("audio").filter(|a| !a.is_empty()),
            is_final: map
                .get("isFinal")
                .or_else(|| map.get("is_final"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            context_id: string("contextId").or_else(|| string("context_id")),
            error,
        })
    }
}

/// The useful part of an HTTP error body: `{"detail":{"status":...,"message":...}}`
/// gives `status: message`, a plain `detail` string itself, anything else the body.
pub(crate) fn http_error_message(body: &str) -> String {
    let Ok(value) = serde_json::from_str::<Value>(body) else {
        return body.trim().to_owned();
    };
    let detail = &value["detail"];
    match (
        detail.get("status").and_then(Value::as_str),
        detail.get("message").and_then(Value::as_str),
        detail.as_str(),
    ) {
        (Some(status), Some(message), _) => format!("{status}: {message}"),
        (None, Some(message), _) | (_, _, Some(message)) => message.to_owned(),
        _ => body.trim().to_owned(),
    }
}

/// The JSON body of `POST /v1/text-to-speech/{voice_id}/stream`.
#[derive(Debug, Serialize)]
pub(crate) struct HttpBody<'a> {
    pub(crate) text: &'a str,
    pub(crate) model_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) language_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) voice_settings: Option<&'a VoiceSettings>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(crate) pronunciation_dictionary_locators: &'a [PronunciationDictionary],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) previous_text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) apply_text_normalization: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn value(m: &ClientMessage<'_>) -> Value {
        serde_json::from_str(&m.to_json()).expect("json")
    }

    #[test]
    fn client_messages_have_the_documented_shapes() {
        let settings = VoiceSettings {
            stability: Some(0.5),
            similarity_boost: Some(0.8),
            ..VoiceSettings::default()
        };
        assert_eq!(
            value(&ClientMessage::init(
                "turn-42",
                Some(&settings),
                Some(&[50]),
                &[]
            )),
            json!({"text": " ", "context_id": "turn-42",
                   "voice_settings": {"stability": 0.5, "similarity_boost": 0.8},
                   "generation_config": {"chunk_length_schedule": [50]}})
        );
        assert_eq!(
            value(&ClientMessage::init("c", None, None, &[])),
            json!({"text": " ", "context_id": "c"})
        );
        assert_eq!(
            value(&ClientMessage::text("turn-42", "Sure, one moment. ")),
            json!({"text": "Sure, one moment. ", "context_id": "turn-42"})
        );
        assert_eq!(
            value(&ClientMessage::flush("turn-42", None)),
            json!({"context_id": "turn-42", "flush": true})
        );
        assert_eq!(
            value(&ClientMessage::keepalive(Some("turn-42"))),
            json!({"text": "", "context_id": "turn-42"})
        );
        assert_eq!(value(&ClientMessage::keepalive(None)), json!({"text": ""}));
        assert_eq!(
            value(&ClientMessage::close_context("turn-42")),
            json!({"context_id": "turn-42", "close_context": true})
        );
        assert_eq!(
            value(&ClientMessage::close_socket()),
            json!({"close_socket": true})
        );
    }

    #[test]
    fn parses_the_spec_example_messages() {
        let audio = ServerMessage::parse(
            r#"{"audio":"AAEC","normalizedAlignment":{"chars":["H","e"],"charStartTimesMs":[0,40],"charDurationsMs":[40,30]},"alignment":{"chars":["H","e"],"charStartTimesMs":[0,40],"charDurationsMs":[40,30]},"contextId":"turn-42"}"#,
        )
        .expect("audio");
        assert_eq!(audio.audio.as_deref(), Some("AAEC"));
        assert_eq!(audio.context_id.as_deref(), Some("turn-42"));
        assert!(!audio.is_final && audio.error.is_none());

        let fin = ServerMessage::parse(r#"{"isFinal":true,"contextId":"turn-42"}"#).expect("final");
        assert!(fin.is_final);
        assert_eq!(fin.audio, None);

        // Some messages spell the id in snake case; audio may be null.
        let snake = ServerMessage::parse(r#"{"audio":null,"isFinal":true,"context_id":"a"}"#)
            .expect("snake");
        assert_eq!(
            (snake.context_id.as_deref(), snake.is_final),
            (Some("a"), true)
        );

        let err = ServerMessage::parse(
            r#"{"message":"Maximum simultaneous contexts per WebSocket connection exceeded (5). Please close an existing context before opening a new one.","error":"max_active_conversations","code":1008}"#,
        )
        .expect("error");
        let e = err.error.expect("error fields");
        assert_eq!(e.code, "max_active_conversations");
        assert!(e.message.starts_with("Maximum simultaneous contexts"));

        assert_eq!(ServerMessage::parse("not json"), None);
        assert_eq!(ServerMessage::parse("[1,2]"), None);
        // Wrong types are ignored, not fatal.
        let odd = ServerMessage::parse(r#"{"audio":5,"isFinal":"yes"}"#).expect("object");
        assert_eq!((odd.audio, odd.is_final), (None, false));
    }

    #[test]
    fn error_bodies_give_their_message() {
        assert_eq!(
            http_error_message(
                r#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#
            ),
            "invalid_api_key: Invalid API key"
        );
        assert_eq!(http_error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(http_error_message(" oops \n"), "oops");
        assert!(http_error_message(r#"{"detail":[{"loc":["body","text"]}]}"#).contains("loc"));
    }

    #[test]
    fn http_body_leaves_out_unset_fields() {
        let body = HttpBody {
            text: "Hello. ",
            model_id: "eleven_flash_v2_5",
            language_code: Some("en"),
            voice_settings: None,
            pronunciation_dictionary_locators: &[],
            previous_text: None,
            apply_text_normalization: None,
        };
        assert_eq!(
            serde_json::to_value(&body).expect("json"),
            json!({"text": "Hello. ", "model_id": "eleven_flash_v2_5", "language_code": "en"})
        );
    }
}
