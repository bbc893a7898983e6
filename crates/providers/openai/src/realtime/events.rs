//! The Realtime API's wire messages (GA protocol): the client events this adapter
//! sends, built as JSON, and the server events it understands, parsed from JSON text
//! frames. Kept apart from the session task so they can be tested on the spec's
//! example messages.

use base64::Engine as _;
use serde_json::{Value, json};
use voxline_audio::{AudioFormat, Encoding};

/// An audio format the Realtime API (GA) takes or gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireFormat {
    /// `{"type":"audio/pcmu"}`: G.711 mu-law, 8 kHz.
    Pcmu,
    /// `{"type":"audio/pcma"}`: G.711 A-law, 8 kHz.
    Pcma,
    /// `{"type":"audio/pcm","rate":24000}`: PCM16 little-endian, 24 kHz only.
    Pcm24k,
}

impl WireFormat {
    /// The wire format for a call's audio: mu-law and A-law at 8 kHz go as they are
    /// (no transcoding); anything else is transcoded to and from 24 kHz PCM16.
    pub fn for_call(format: AudioFormat) -> Self {
        match (format.encoding, format.sample_rate) {
            (Encoding::Mulaw, 8000) => Self::Pcmu,
            (Encoding::Alaw, 8000) => Self::Pcma,
            _ => Self::Pcm24k,
        }
    }

    /// The audio this format carries.
    pub fn audio_format(self) -> AudioFormat {
        match self {
            Self::Pcmu => AudioFormat::MULAW_8K,
            Self::Pcma => AudioFormat::ALAW_8K,
            Self::Pcm24k => AudioFormat::PCM16_24K,
        }
    }

    /// The `format` object of `session.audio.input` / `.output`.
    pub fn to_json(self) -> Value {
        match self {
            Self::Pcmu => json!({"type": "audio/pcmu"}),
            Self::Pcma => json!({"type": "audio/pcma"}),
            Self::Pcm24k => json!({"type": "audio/pcm", "rate": 24000}),
        }
    }

    /// Milliseconds of audio in `bytes` of this format (8 bytes per ms for G.711 at
    /// 8 kHz, 48 for PCM16 at 24 kHz), rounded down.
    pub fn millis(self, bytes: u64) -> u64 {
        let per_ms = self.audio_format().bytes_per_second() as u64 / 1000;
        bytes / per_ms.max(1)
    }
}

/// A client event: `{"type": kind, ...fields}` as one JSON text.
fn event(kind: &str, mut fields: Value) -> String {
    if let Some(map) = fields.as_object_mut() {
        map.insert("type".into(), json!(kind));
    }
    fields.to_string()
}

/// `input_audio_buffer.append` with the audio base64-encoded.
pub fn append(audio: &[u8]) -> String {
    event(
        "input_audio_buffer.append",
        json!({"audio": base64::engine::general_purpose::STANDARD.encode(audio)}),
    )
}

/// `input_audio_buffer.clear` (manual turns: drop uncommitted audio).
pub fn clear_input() -> String {
    event("input_audio_buffer.clear", json!({}))
}

/// `conversation.item.create` with a text message. Users and the system speak in
/// `input_text` parts, the assistant in `output_text` parts.
pub fn message_item(role: &str, text: &str) -> String {
    let part = if role == "assistant" {
        "output_text"
    } else {
        "input_text"
    };
    event(
        "conversation.item.create",
        json!({"item": {"type": "message", "role": role,
                        "content": [{"type": part, "text": text}]}}),
    )
}

/// `conversation.item.create` with a tool's result.
pub fn function_output_item(call_id: &str, output: &str) -> String {
    event(
        "conversation.item.create",
        json!({"item": {"type": "function_call_output", "call_id": call_id, "output": output}}),
    )
}

/// `response.create` with no overrides (the session's settings apply).
pub fn response_create() -> String {
    event("response.create", json!({}))
}

/// `response.cancel` for `response_id` (the active response when `None`).
pub fn response_cancel(response_id: Option<&str>) -> String {
    match response_id {
        Some(id) => event("response.cancel", json!({"response_id": id})),
        None => event("response.cancel", json!({})),
    }
}

/// `conversation.item.truncate` of an assistant audio item at `audio_end_ms`.
pub fn truncate(item_id: &str, audio_end_ms: u64) -> String {
    event(
        "conversation.item.truncate",
        json!({"item_id": item_id, "content_index": 0, "audio_end_ms": audio_end_ms}),
    )
}

/// An `error` event's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// `invalid_request_error`, `server_error`, ...
    pub kind: String,
    /// `session_expired`, `unknown_parameter`, ... (`None` when the service gives
    /// none, as for truncation beyond the audio).
    pub code: Option<String>,
    /// The human message.
    pub message: String,
    /// The offending field, when named.
    pub param: Option<String>,
    /// The client event that caused it, when it had an `event_id`.
    pub event_id: Option<String>,
}

/// Token counts of `response.done.response.usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// `input_tokens` (text and audio, cached included).
    pub input: u64,
    /// `output_tokens`.
    pub output: u64,
    /// `input_token_details.audio_tokens`.
    pub input_audio: u64,
    /// `output_token_details.audio_tokens`.
    pub output_audio: u64,
}

/// Input-transcription usage (`…input_audio_transcription.completed.usage`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TranscriptionUsage {
    /// `{"type":"tokens","input_tokens","output_tokens",…}`.
    Tokens {
        /// Input tokens.
        input: u64,
        /// Output tokens.
        output: u64,
    },
    /// `{"type":"duration","seconds":…}`.
    Duration(f64),
}

/// A function call in a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// `call_id`, what the result refers to.
    pub call_id: String,
    /// The function name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
}

/// The summary in `response.done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDone {
    /// `response.id`.
    pub id: String,
    /// `completed`, `cancelled`, `incomplete`, `failed`.
    pub status: String,
    /// `status_details.reason` (`turn_detected`, `client_cancelled`, ...).
    pub reason: Option<String>,
    /// `status_details.error.message` or `.code` when failed.
    pub error: Option<String>,
    /// Function-call items among `output`.
    pub function_calls: Vec<FunctionCall>,
    /// `usage`, when present.
    pub usage: Option<TokenUsage>,
}

/// A server event this adapter acts on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// `session.created`.
    SessionCreated,
    /// `session.updated`: the configuration was accepted.
    SessionUpdated,
    /// `input_audio_buffer.speech_started`.
    SpeechStarted {
        /// The user item the speech goes into.
        item_id: String,
        /// Where speech started in the session's input audio.
        audio_start_ms: u64,
    },
    /// `input_audio_buffer.speech_stopped`.
    SpeechStopped {
        /// Where it ended.
        audio_end_ms: u64,
    },
    /// `conversation.item.input_audio_transcription.delta`.
    InputTranscriptDelta {
        /// The user item.
        item_id: String,
        /// A piece of text.
        delta: String,
    },
    /// `conversation.item.input_audio_transcription.completed`.
    InputTranscriptDone {
        /// The user item.
        item_id: String,
        /// The whole transcript.
        transcript: String,
        /// What the transcription cost.
        usage: Option<TranscriptionUsage>,
    },
    /// `response.created`.
    ResponseCreated {
        /// The response id.
        response_id: String,
    },
    /// `response.output_audio.delta`, decoded.
    AudioDelta {
        /// The response.
        response_id: String,
        /// The assistant item the audio belongs to.
        item_id: String,
        /// Audio in the session's output format.
        audio: Vec<u8>,
    },
    /// `response.output_audio_transcript.delta`.
    TranscriptDelta {
        /// The response.
        response_id: String,
        /// The assistant item.
        item_id: String,
        /// A piece of text.
        delta: String,
    },
    /// `response.output_audio_transcript.done`.
    TranscriptDone {
        /// The response.
        response_id: String,
        /// The assistant item.
        item_id: String,
        /// The whole transcript.
        transcript: String,
    },
    /// `response.function_call_arguments.done`.
    FunctionCallDone {
        /// The response.
        response_id: String,
        /// The call.
        call: FunctionCall,
    },
    /// `response.done`.
    ResponseDone(ResponseDone),
    /// `conversation.item.truncated`.
    Truncated {
        /// The item.
        item_id: String,
        /// Where it was cut.
        audio_end_ms: u64,
    },
    /// `error`.
    Error(ApiError),
    /// An event of the beta protocol (`response.audio.delta`, ...): a sign the
    /// connection speaks the other protocol.
    Beta(String),
    /// Any other event (lifecycle events with nothing to act on).
    Other(String),
}

/// A server message that is not what the GA protocol defines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad server event: {0}")]
pub struct EventError(pub String);

const BETA_EVENTS: [&str; 7] = [
    "response.audio.delta",
    "response.audio.done",
    "response.audio_transcript.delta",
    "response.audio_transcript.done",
    "response.text.delta",
    "response.text.done",
    "transcription_session.updated",
];

fn text<'a>(v: &'a Value, key: &str) -> Result<&'a str, EventError> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| EventError(format!("missing string field {key:?}")))
}

fn number(v: &Value, key: &str) -> Result<u64, EventError> {
    v.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| EventError(format!("missing number field {key:?}")))
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn count(v: &Value, path: &[&str]) -> u64 {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

impl ServerEvent {
    /// Parses one text frame.
    ///
    /// # Errors
    /// When the frame is not JSON, has no `type`, or an event this adapter acts on
    /// lacks a field it needs (or carries audio that is not base64).
    pub fn parse(frame: &str) -> Result<Self, EventError> {
        let v: Value =
            serde_json::from_str(frame).map_err(|e| EventError(format!("not JSON: {e}")))?;
        let kind = text(&v, "type")?;
        Ok(match kind {
            "session.created" => Self::SessionCreated,
            "session.updated" => Self::SessionUpdated,
            "input_audio_buffer.speech_started" => Self::SpeechStarted {
                item_id: opt_text(&v, "item_id").unwrap_or_default(),
                audio_start_ms: number(&v, "audio_start_ms")?,
            },
            "input_audio_buffer.speech_stopped" => Self::SpeechStopped {
                audio_end_ms: number(&v, "audio_end_ms")?,
            },
            "conversation.item.input_audio_transcription.delta" => Self::InputTranscriptDelta {
                item_id: text(&v, "item_id")?.to_owned(),
                delta: opt_text(&v, "delta").unwrap_or_default(),
            },
            "conversation.item.input_audio_transcription.completed" => Self::InputTranscriptDone {
                item_id: text(&v, "item_id")?.to_owned(),
                transcript: text(&v, "transcript")?.to_owned(),
                usage: v.get("usage").and_then(transcription_usage),
            },
            "response.created" => Self::ResponseCreated {
                response_id: v
                    .get("response")
                    .map(|r| text(r, "id"))
                    .transpose()?
                    .unwrap_or_default()
                    .to_owned(),
            },
            "response.output_audio.delta" => Self::AudioDelta {
                response_id: text(&v, "response_id")?.to_owned(),
                item_id: text(&v, "item_id")?.to_owned(),
                audio: base64::engine::general_purpose::STANDARD
                    .decode(text(&v, "delta")?)
                    .map_err(|e| EventError(format!("audio delta is not base64: {e}")))?,
            },
            "response.output_audio_transcript.delta" => Self::TranscriptDelta {
                response_id: text(&v, "response_id")?.to_owned(),
                item_id: text(&v, "item_id")?.to_owned(),
                delta: text(&v, "delta")?.to_owned(),
            },
            "response.output_audio_transcript.done" => Self::TranscriptDone {
                response_id: text(&v, "response_id")?.to_owned(),
                item_id: text(&v, "item_id")?.to_owned(),
                transcript: text(&v, "transcript")?.to_owned(),
            },
            "response.function_call_arguments.done" => Self::FunctionCallDone {
                response_id: text(&v, "response_id")?.to_owned(),
                call: FunctionCall {
                    call_id: text(&v, "call_id")?.to_owned(),
                    name: opt_text(&v, "name").unwrap_or_default(),
                    arguments: text(&v, "arguments")?.to_owned(),
                },
            },
            "response.done" => Self::ResponseDone(response_done(
                v.get("response")
                    .ok_or_else(|| EventError("response.done without response".into()))?,
            )?),
            "conversation.item.truncated" => Self::Truncated {
                item_id: text(&v, "item_id")?.to_owned(),
                audio_end_ms: number(&v, "audio_end_ms")?,
            },
            "error" => {
                let e = v
                    .get("error")
                    .ok_or_else(|| EventError("error event without error".into()))?;
                Self::Error(ApiError {
                    kind: opt_text(e, "type").unwrap_or_else(|| "unknown".into()),
                    code: opt_text(e, "code"),
                    message: opt_text(e, "message").unwrap_or_default(),
                    param: opt_text(e, "param"),
                    event_id: opt_text(e, "event_id"),
                })
            }
            other if BETA_EVENTS.contains(&other) => Self::Beta(other.to_owned()),
            other => Self::Other(other.to_owned()),
        })
    }
}

fn transcription_usage(u: &Value) -> Option<TranscriptionUsage> {
    match u.get("type").and_then(Value::as_str)? {
        "tokens" => Some(TranscriptionUsage::Tokens {
            input: count(u, &["input_tokens"]),
            output: count(u, &["output_tokens"]),
        }),
        "duration" => Some(TranscriptionUsage::Duration(
            u.get("seconds").and_then(Value::as_f64)?,
        )),
        _ => None,
    }
}

fn response_done(r: &Value) -> Result<ResponseDone, EventError> {
    let details = r.get("status_details");
    let error = details.and_then(|d| d.get("error")).and_then(|e| {
        opt_text(e, "message")
            .or_else(|| opt_text(e, "code"))
            .or_else(|| opt_text(e, "type"))
    });
    let function_calls = r
        .get("output")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|i| i.get("type").and_then(Value::as_str) == Some("function_call"))
                .filter_map(|i| {
                    Some(FunctionCall {
                        call_id: opt_text(i, "call_id")?,
                        name: opt_text(i, "name").unwrap_or_default(),
                        arguments: opt_text(i, "arguments").unwrap_or_default(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let usage = r
        .get("usage")
        .filter(|u| u.is_object())
        .map(|u| TokenUsage {
            input: count(u, &["input_tokens"]),
            output: count(u, &["output_tokens"]),
            input_audio: count(u, &["input_token_details", "audio_tokens"]),
            output_audio: count(u, &["output_token_details", "audio_tokens"]),
        });
    Ok(ResponseDone {
        id: opt_text(r, "id").unwrap_or_default(),
        status: text(r, "status")?.to_owned(),
        reason: details.and_then(|d| opt_text(d, "reason")),
        error,
        function_calls,
        usage,
    })
}
