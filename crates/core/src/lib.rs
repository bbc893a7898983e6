//! Voxline's provider layer: what a voice agent needs from speech-to-text, language
//! model and text-to-speech services, independent of who provides them.
//!
//! Each capability is an object-safe trait ([`SpeechToText`], [`LanguageModel`],
//! [`TextToSpeech`]), so a binary picks providers from its configuration and holds them
//! as `Box<dyn ...>`. Opening a session gives a handle over bounded channels to a task
//! the adapter runs; the handle is the whole interface:
//!
//! - [`SttSession`]: audio in, [`SttEvent`]s out (interim and final transcripts, speech
//!   started, utterance end, usage, errors).
//! - [`LlmStream`]: one streamed completion: text deltas, tool calls with their
//!   arguments accumulated, the finish reason and usage.
//! - [`TtsSession`]: text in per request, audio out in the format asked for; cancelling
//!   a request guarantees none of its audio is delivered afterwards.
//! - [`RealtimeSession`] (from a [`RealtimeModel`]): a speech-to-speech model for the
//!   whole call: caller audio in, model audio, transcripts, interruptions and tool
//!   calls out.
//!
//! Dropping a handle closes the provider connection cleanly: the adapter's task sees
//! its input channel close, sends the provider's close message and exits.
//!
//! Errors are [`ProviderError`]s that say whether a retry can help; [`RetryPolicy`] is
//! the bounded backoff adapters share. [`Usage`] records feed cost metering and
//! [`Ttfb`] marks feed the time-to-first-byte metrics.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod error;
pub mod llm;
pub mod realtime;
mod retry;
pub mod stt;
pub mod tts;
mod usage;

pub use error::{ErrorKind, ProviderError};
pub use llm::{
    ChatMessage, ChatRequest, Completion, FinishReason, LanguageModel, LlmEvent, LlmStream, Role,
    ToolCall, ToolDefinition,
};
pub use realtime::{
    RealtimeConfig, RealtimeEvent, RealtimeEvents, RealtimeInput, RealtimeModel, RealtimePeer,
    RealtimeSender, RealtimeSession,
};
pub use retry::{RetryPolicy, parse_retry_after};
pub use stt::{
    SpeechToText, SttConfig, SttEvent, SttEvents, SttInput, SttPeer, SttSender, SttSession,
    Transcript, Word,
};
pub use tts::{RequestId, TextToSpeech, TtsConfig, TtsEvent, TtsInput, TtsPeer, TtsSession};
pub use usage::{Ttfb, Usage, UsageKind};

/// A boxed future, as the provider traits return (they must stay object-safe).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Reads an API key from `explicit`, else from the environment variable `var`.
///
/// Adapters take keys from their config first so tests and multi-tenant servers never
/// depend on the process environment.
pub fn key_from(explicit: Option<&str>, var: &str) -> Option<String> {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var(var).ok())
        .filter(|k| !k.trim().is_empty())
}

/// Installs rustls' ring crypto provider as the process default, once. TLS
/// connections to providers (reqwest, tungstenite) need a provider and the workspace
/// builds rustls without a default one (no C build); adapters call this before they
/// connect, so applications need not. Harmless if a provider is already installed.
pub fn install_tls() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: that one serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
