//! OpenAI and OpenAI-compatible HTTP APIs for Voxline.
//!
//! - [`OpenAiChat`]: [`LanguageModel`](voxline_core::LanguageModel) over
//!   `POST /chat/completions` with `stream: true`: text deltas as they come, tool calls
//!   accumulated from their fragments, the finish reason, token usage from the final
//!   usage chunk and the time to the first token. Works unchanged against any
//!   compatible server (Groq, Together, vLLM, Ollama) given its base URL; the key is
//!   optional for local servers.
//! - [`OpenAiTranscription`]: [`SpeechToText`](voxline_core::SpeechToText) over
//!   `POST /audio/transcriptions`, one multipart request per utterance (phone audio
//!   decoded to PCM16 and sent as a WAV file when the turn is finalised).
//! - [`OpenAiSpeech`]: [`TextToSpeech`](voxline_core::TextToSpeech) over
//!   `POST /audio/speech` with `response_format: "pcm"`, the 24 kHz body streamed and
//!   transcoded to the session's format (8 kHz mu-law for phone calls).
//!
//! All three take an [`ApiConfig`]: the base URL (`https://api.openai.com/v1` by
//! default), the key (from the config, else `OPENAI_API_KEY`), and a
//! [`RetryPolicy`](voxline_core::RetryPolicy) for 408/429/5xx answers and connection
//! failures (401 and other 4xx are permanent; `Retry-After` is honoured).
//!
//! [`OpenAiRealtime`]: [`RealtimeModel`](voxline_core::RealtimeModel) over the
//! Realtime API (WebSocket, GA protocol); see [`realtime`].
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod chat;
mod http;
pub mod realtime;
pub mod sse;
mod stt;
mod tts;

pub use chat::{ChatConfig, ChunkParser, OpenAiChat, Step, TokenLimitField, function_tool};
pub use http::{API_KEY_ENV, ApiConfig, DEFAULT_BASE_URL};
pub use realtime::{OpenAiRealtime, OpenAiRealtimeConfig, TurnDetection};
pub use stt::{OpenAiTranscription, TranscriptionConfig};
pub use tts::{MAX_INPUT_CHARS, OpenAiSpeech, SPEECH_PCM_FORMAT, SpeechConfig};

/// The audio crate whose types the configs and sessions use ([`audio::AudioFormat`],
/// [`audio::Transcoder`]), re-exported so callers need no separate dependency.
pub use voxline_audio as audio;
