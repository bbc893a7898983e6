//! The OpenAI Realtime API (GA protocol) over WebSocket: a speech-to-speech model for
//! a whole call, as a [`RealtimeModel`].
//!
//! [`OpenAiRealtime`] connects to `GET {base}/realtime?model=…` (base
//! `wss://api.openai.com/v1` by default; an `https://`/`http://` base from
//! [`ApiConfig`] is turned into `wss://`/`ws://`) with `Authorization: Bearer <key>` and
//! no `OpenAI-Beta` header, sends `session.update` with `session.type: "realtime"` as
//! its first message, and resolves `connect` once `session.updated` arrives. Phone
//! audio goes natively: `audio/pcmu` (or `audio/pcma`) both ways for 8 kHz G.711 calls,
//! else `audio/pcm` at 24 kHz with transcoding both ways.
//!
//! The session task forwards caller audio as it arrives (`input_audio_buffer.append`),
//! turns server events into [`RealtimeEvent`]s, answers tool calls, truncates the
//! assistant item the caller was hearing when told how much was heard (clamped to
//! the audio received for that item, measured in the real output format), and
//! replaces an expired or dropped connection with a new session seeded with the
//! conversation so far, keeping the caller audio sent in the gap.
//!
//! The older beta protocol (`OpenAI-Beta: realtime=v1`) is not supported: its event
//! names differ and are logged as errors if a server sends them.
//!
//! [`RealtimeEvent`]: voxline_core::RealtimeEvent

pub mod events;
mod session;

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RealtimeConfig, RealtimeModel, RealtimeSession,
};

use crate::http::{ApiConfig, PROVIDER};
pub use events::WireFormat;

/// The default model (volatile; keep it configurable).
pub const DEFAULT_REALTIME_MODEL: &str = "gpt-realtime";

/// How the service decides that the caller's turn has ended (`audio.input.turn_detection`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TurnDetection {
    /// `server_vad`: energy-based voice activity detection on the service.
    ServerVad {
        /// Activation threshold, 0 to 1 (0.5).
        threshold: f32,
        /// Audio kept before detected speech, ms (300).
        prefix_padding_ms: u32,
        /// Silence that ends the turn, ms (500).
        silence_duration_ms: u32,
        /// Start a response when the turn ends (true).
        create_response: bool,
        /// Cancel the response in progress when the caller speaks (true): barge-in.
        interrupt_response: bool,
        /// Prompt the caller after this much silence, ms (`None`: never).
        idle_timeout_ms: Option<u32>,
    },
    /// `semantic_vad`: the model judges whether the caller has finished.
    SemanticVad {
        /// `low`, `medium`, `high` or `auto`.
        eagerness: String,
        /// Start a response when the turn ends.
        create_response: bool,
        /// Cancel the response in progress when the caller speaks.
        interrupt_response: bool,
    },
    /// `null`: manual turns. The client commits the buffer and asks for responses
    /// (not driven by this adapter beyond text input and `response.cancel`).
    Manual,
}

impl Default for TurnDetection {
    /// `server_vad` with the service's defaults.
    fn default() -> Self {
        Self::ServerVad {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
            idle_timeout_ms: None,
        }
    }
}

impl TurnDetection {
    fn to_json(&self) -> Value {
        match self {
            Self::ServerVad {
                threshold,
                prefix_padding_ms,
                silence_duration_ms,
                create_response,
                interrupt_response,
                idle_timeout_ms,
            } => {
                let mut v = json!({
                    "type": "server_vad",
                    "threshold": round3(*threshold),
                    "prefix_padding_ms": prefix_padding_ms,
                    "silence_duration_ms": silence_duration_ms,
                    "create_response": create_response,
                    "interrupt_response": interrupt_response,
                });
                if let (Some(ms), Some(map)) = (idle_timeout_ms, v.as_object_mut()) {
                    map.insert("idle_timeout_ms".into(), json!(ms));
                }
                v
            }
            Self::SemanticVad {
                eagerness,
                create_response,
                interrupt_response,
            } => json!({
                "type": "semantic_vad",
                "eagerness": eagerness,
                "create_response": create_response,
                "interrupt_response": interrupt_response,
            }),
            Self::Manual => Value::Null,
        }
    }

    /// Whether the service cancels a response when the caller starts speaking.
    fn interrupts(&self) -> bool {
        match self {
            Self::ServerVad {
                interrupt_response, ..
            }
            | Self::SemanticVad {
                interrupt_response, ..
            } => *interrupt_response,
            Self::Manual => false,
        }
    }
}

/// `f32` as the short decimal it was written as (0.5, not 0.5000000…).
fn round3(x: f32) -> f64 {
    format!("{x}").parse().unwrap_or(f64::from(x))
}

/// Configuration of [`OpenAiRealtime`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenAiRealtimeConfig {
    /// Server, key (`OPENAI_API_KEY`), organisation, project and handshake retries.
    /// Its base URL may be `https://…/v1` (turned into `wss://`) or a `ws(s)://` URL.
    pub api: ApiConfig,
    /// The model, sent as the `model` query parameter and in `session.model`.
    pub model: String,
    /// The voice when the session's config has none (`marin`, `cedar`, `alloy`, ...).
    pub voice: Option<String>,
    /// Turn detection.
    pub turn_detection: TurnDetection,
    /// The input-transcription model (`gpt-4o-mini-transcribe`, `whisper-1`); `None`
    /// turns caller transcripts off.
    pub transcription_model: Option<String>,
    /// The caller's language for transcription (ISO-639-1), if known.
    pub transcription_language: Option<String>,
    /// `near_field`, `far_field`, or `None` for no noise reduction.
    pub noise_reduction: Option<String>,
    /// How long to wait for `session.updated`.
    pub setup_timeout: Duration,
    /// Messages buffered each way between the handle and the task.
    pub channel_capacity: usize,
    /// User and assistant text items kept to re-seed a replacement session.
    pub history_items: usize,
    /// Caller audio kept while a replacement session is being set up.
    pub gap_audio: Duration,
}

impl OpenAiRealtimeConfig {
    /// `model` on OpenAI's API, key from `OPENAI_API_KEY`.
    pub fn new(model: impl Into<String>) -> Self {
        Self::with_api(ApiConfig::openai(), model)
    }

    /// `model` on the server `api` describes.
    pub fn with_api(api: ApiConfig, model: impl Into<String>) -> Self {
        Self {
            api,
            model: model.into(),
            voice: None,
            turn_detection: TurnDetection::default(),
            transcription_model: Some("gpt-4o-mini-transcribe".to_owned()),
            transcription_language: None,
            noise_reduction: None,
            setup_timeout: Duration::from_secs(10),
            channel_capacity: 64,
            history_items: 40,
            gap_audio: Duration::from_secs(10),
        }
    }

    /// The same config with turn detection.
    pub fn turn_detection(mut self, turn_detection: TurnDetection) -> Self {
        self.turn_detection = turn_detection;
        self
    }

    /// The same config with a default voice.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }

    /// The same config with an input-transcription model (`None`: off).
    pub fn transcription_model(mut self, model: Option<String>) -> Self {
        self.transcription_model = model;
        self
    }

    /// `{base}/realtime?model=…` with a WebSocket scheme.
    ///
    /// # Errors
    /// When the base URL is not a URL or has a scheme other than http(s)/ws(s).
    pub fn url(&self) -> Result<Url, ProviderError> {
        let bad = |why: String| ProviderError::new(PROVIDER, ErrorKind::BadRequest, why);
        let base = self.api.base_url.trim_end_matches('/');
        let (scheme, rest) = base
            .split_once("://")
            .ok_or_else(|| bad(format!("base URL {base:?} has no scheme")))?;
        let scheme = match scheme {
            "https" | "wss" => "wss",
            "http" | "ws" => "ws",
            other => return Err(bad(format!("unsupported URL scheme {other:?}"))),
        };
        let mut url = Url::parse(&format!("{scheme}://{rest}/realtime"))
            .map_err(|e| bad(format!("bad base URL: {e}")))?;
        url.query_pairs_mut().append_pair("model", &self.model);
        Ok(url)
    }

    /// The key to send: the config's, else the environment variable's.
    fn key(&self) -> Option<String> {
        self.api.resolve_key()
    }

    /// The `session.update` event for `session` (the first message of a connection).
    pub fn session_update(&self, session: &RealtimeConfig) -> Value {
        let mut input = json!({
            "format": WireFormat::for_call(session.input_format).to_json(),
            "turn_detection": self.turn_detection.to_json(),
        });
        let mut output = json!({"format": WireFormat::for_call(session.output_format).to_json()});
        if let Some(map) = input.as_object_mut() {
            if let Some(model) = &self.transcription_model {
                let mut t = json!({"model": model});
                if let (Some(lang), Some(t)) = (&self.transcription_language, t.as_object_mut()) {
                    t.insert("language".into(), json!(lang));
                }
                map.insert("transcription".into(), t);
            }
            if let Some(nr) = &self.noise_reduction {
                map.insert("noise_reduction".into(), json!({"type": nr}));
            }
        }
        if let (Some(voice), Some(map)) = (
            session.voice.as_ref().or(self.voice.as_ref()),
            output.as_object_mut(),
        ) {
            map.insert("voice".into(), json!(voice));
        }
        let mut s = json!({
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "audio": {"input": input, "output": output},
        });
        if let Some(map) = s.as_object_mut() {
            if let Some(instructions) = &session.instructions {
                map.insert("instructions".into(), json!(instructions));
            }
            if !session.tools.is_empty() {
                let tools: Vec<Value> = session
                    .tools
                    .iter()
                    .map(|t| {
                        json!({"type": "function", "name": t.name,
                               "description": t.description, "parameters": t.parameters})
                    })
                    .collect();
                map.insert("tools".into(), json!(tools));
                map.insert("tool_choice".into(), json!("auto"));
            }
        }
        json!({"type": "session.update", "session": s})
    }
}

/// [`RealtimeModel`] over OpenAI's Realtime API (GA protocol, WebSocket).
///
/// Handshake failures are retried under the config's [`RetryPolicy`](voxline_core::RetryPolicy) (429 and 5xx
/// retryable, 401/403 and other 4xx permanent); a `session.update` the service
/// rejects fails `connect` with the service's error, not retried. `RealtimeConfig`'s
/// `temperature` is not sent: the GA session has no such field.
#[derive(Debug, Clone)]
pub struct OpenAiRealtime {
    config: OpenAiRealtimeConfig,
}

impl OpenAiRealtime {
    /// A client for `config`.
    pub fn new(config: OpenAiRealtimeConfig) -> Self {
        Self { config }
    }

    /// The configuration.
    pub fn config(&self) -> &OpenAiRealtimeConfig {
        &self.config
    }
}

impl RealtimeModel for OpenAiRealtime {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(
        &self,
        config: RealtimeConfig,
    ) -> BoxFuture<'_, Result<RealtimeSession, ProviderError>> {
        Box::pin(session::open(self.config.clone(), config))
    }
}
