//! Deepgram live streaming speech-to-text for Voxline (WebSocket `/v1/listen`).
//!
//! [`Deepgram`] implements [`voxline_core::SpeechToText`]. A session is one WebSocket to
//! `wss://api.deepgram.com/v1/listen` with every option in the query string and the key
//! in `Authorization: Token <key>`. Phone audio goes as it comes off the line
//! (`encoding=mulaw&sample_rate=8000`, or `alaw`, or `linear16` for PCM16), in binary
//! frames; control messages are JSON text frames:
//!
//! - `{"type":"KeepAlive"}` whenever nothing was sent for
//!   [`DeepgramConfig::keepalive_interval`] (Deepgram closes an idle stream with 1011
//!   NET-0001 after about 10 s);
//! - `{"type":"Finalize"}` on [`SttSession::finalize`](voxline_core::SttSession::finalize);
//! - `{"type":"CloseStream"}` when the caller closes or drops the session, after which
//!   the adapter reads the last results and the `Metadata` summary, whose `duration` is
//!   reported as [`Usage`](voxline_core::Usage).
//!
//! A connection that drops for a retryable reason (close 1011, no close frame, a
//! network error) is re-established with bounded backoff; the audio not yet covered by
//! a final result is resent, and timestamps stay in the session's audio time. A 401 or
//! 403 at the handshake is permanent.
//!
//! ```no_run
//! use voxline_core::{SpeechToText, SttConfig, SttEvent};
//! use voxline_audio::AudioFormat;
//! use voxline_deepgram::{Deepgram, DeepgramConfig};
//!
//! # async fn demo(frames: Vec<bytes::Bytes>) -> Result<(), voxline_core::ProviderError> {
//! let stt = Deepgram::new(DeepgramConfig::default()); // key from DEEPGRAM_API_KEY
//! let mut session = stt.connect(SttConfig::new(AudioFormat::MULAW_8K)).await?;
//! for frame in frames {
//!     session.send_audio(frame).await?;
//! }
//! for event in session.close().await {
//!     if let SttEvent::Transcript(t) = event {
//!         println!("{}", t.text);
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

use voxline_core::{BoxFuture, ProviderError, SpeechToText, SttConfig, SttSession};

pub use config::{API_KEY_ENV, DEFAULT_BASE_URL, DeepgramConfig, Endpointing};

/// The provider name in events, errors and logs.
pub const PROVIDER: &str = "deepgram";

/// Deepgram streaming speech-to-text.
#[derive(Debug, Clone)]
pub struct Deepgram {
    config: Arc<DeepgramConfig>,
}

impl Deepgram {
    /// An adapter with `config`.
    pub fn new(config: DeepgramConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The adapter's config.
    pub fn config(&self) -> &DeepgramConfig {
        &self.config
    }
}

impl SpeechToText for Deepgram {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, config: SttConfig) -> BoxFuture<'_, Result<SttSession, ProviderError>> {
        Box::pin(session::open(Arc::clone(&self.config), config))
    }
}
