//! Gemini Live (BidiGenerateContent) realtime speech-to-speech for Voxline.
//!
//! [`Gemini`] implements [`voxline_core::RealtimeModel`]. A session is one WebSocket to
//! `wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent`
//! with the key in `x-goog-api-key` (or Vertex AI with a bearer token). The adapter
//! sends `setup` first and `connect` resolves once the service answered
//! `setupComplete`. Client messages are JSON text frames; the service answers with JSON
//! in **binary** frames (text frames are read too).
//!
//! - Caller audio (phone audio: 8 kHz mu-law) is transcoded as it arrives to PCM16
//!   16 kHz and sent as `realtimeInput.audio` (`audio/pcm;rate=16000`).
//! - Model audio (PCM16 24 kHz, or the rate its mime type states) is transcoded to the
//!   session's output format.
//! - `serverContent.interrupted` becomes [`RealtimeEvent::Interrupted`] and the rest of
//!   the interrupted turn's audio is dropped; transcripts, tool calls
//!   (`toolCall` / `toolResponse`), `toolCallCancellation` and `usageMetadata` map to
//!   their events.
//! - Session continuity: the latest resumable `sessionResumptionUpdate` handle is kept;
//!   on `goAway` or a reconnectable close the adapter reconnects with it, buffering
//!   caller audio meanwhile (bounded), and reports [`RealtimeEvent::Reconnected`].
//! - A silence watchdog nudges (then reconnects) when the caller's turn ended and the
//!   model stays silent, a known failure after interruptions.
//! - `Truncate` is a no-op: the Live API has no message to cut the model's record of
//!   its reply; the service assumes real-time playback and cuts the turn itself at the
//!   interruption.
//!
//! ```no_run
//! use voxline_audio::AudioFormat;
//! use voxline_core::{RealtimeConfig, RealtimeEvent, RealtimeModel};
//! use voxline_gemini::{Gemini, GeminiConfig};
//!
//! # async fn demo(frames: Vec<bytes::Bytes>) -> Result<(), voxline_core::ProviderError> {
//! let model = Gemini::new(GeminiConfig::default()); // key from GOOGLE_API_KEY / GEMINI_API_KEY
//! let config = RealtimeConfig::new(AudioFormat::MULAW_8K).instructions("Be brief.");
//! let mut session = model.connect(config).await?;
//! for frame in frames {
//!     session.sender().send_audio(frame).await?;
//! }
//! while let Some(event) = session.recv().await {
//!     if let RealtimeEvent::Audio(mulaw) = event {
//!         let _ = mulaw; // play it to the caller
//!     }
//! }
//! # Ok(()) }
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod config;
mod messages;
mod session;

use std::sync::Arc;

use voxline_core::{BoxFuture, ProviderError, RealtimeConfig, RealtimeModel, RealtimeSession};

pub use config::{
    API_KEY_ENVS, ActivityDetection, Backend, Compression, DEFAULT_API_VERSION, DEFAULT_BASE_URL,
    DEFAULT_MODEL, EndSensitivity, GeminiConfig, StartSensitivity, Watchdog,
};

#[cfg(doc)]
use voxline_core::RealtimeEvent;

/// The provider name in events, errors and logs.
pub const PROVIDER: &str = "gemini";

/// Gemini Live speech-to-speech.
#[derive(Debug, Clone)]
pub struct Gemini {
    config: Arc<GeminiConfig>,
}

impl Gemini {
    /// An adapter with `config`.
    pub fn new(config: GeminiConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The adapter's config.
    pub fn config(&self) -> &GeminiConfig {
        &self.config
    }
}

impl RealtimeModel for Gemini {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(
        &self,
        config: RealtimeConfig,
    ) -> BoxFuture<'_, Result<RealtimeSession, ProviderError>> {
        Box::pin(session::open(Arc::clone(&self.config), config))
    }
}
