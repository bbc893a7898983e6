//! ElevenLabs text-to-speech for Voxline.
//!
//! Two [`TextToSpeech`](voxline_core::TextToSpeech) implementations:
//!
//! - [`ElevenLabs`]: the WebSocket `multi-stream-input` endpoint, one context per
//!   [`RequestId`](voxline_core::RequestId) on one socket per session. Text is streamed
//!   in word-sized chunks as it arrives; `Flush` ends a sentence (`flush`), `Finish`
//!   flushes and closes the context (`close_context`, then `isFinal`), `Cancel` closes
//!   the context and drops whatever audio it still receives for it (barge-in). Idle
//!   contexts are kept alive every [`ElevenLabsConfig::keepalive_interval`]; a socket
//!   the service closed for inactivity is reopened for the next request.
//! - [`ElevenLabsHttp`]: `POST /v1/text-to-speech/{voice_id}/stream`, one request per
//!   flushed sentence, cancelled by dropping the response. Usage comes from the
//!   `character-cost` header.
//!
//! Audio is requested in the session's format where the service produces it
//! (`ulaw_8000` for 8 kHz mu-law phone audio, `pcm_*` for PCM16, `alaw_8000` over
//! HTTP), so phone audio is passed through untouched; any other format is produced
//! from the nearest native one with [`voxline_audio::Transcoder`].
//!
//! Character alignment (`alignment`, `normalizedAlignment`) is received but ignored.
//!
//! ```no_run
//! use voxline_audio::AudioFormat;
//! use voxline_core::{TextToSpeech, TtsConfig, TtsEvent};
//! use voxline_elevenlabs::{ElevenLabs, ElevenLabsConfig};
//!
//! # async fn demo() -> Result<(), voxline_core::ProviderError> {
//! // The key comes from ELEVENLABS_API_KEY unless the config has one.
//! let tts = ElevenLabs::new(ElevenLabsConfig::default());
//! let mut session = tts.connect(TtsConfig::new(AudioFormat::MULAW_8K)).await?;
//! let request = session.say("Hello, how can I help? ").await?;
//! while let Some(event) = session.recv().await {
//!     match event {
//!         TtsEvent::Audio { audio, .. } => { /* 8 kHz mu-law, ready for the carrier */ }
//!         TtsEvent::Done { request: done } if done == request => break,
//!         _ => {}
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod audio;
mod chunker;
mod config;
mod http;
mod wire;
mod ws;

pub use config::{ElevenLabsConfig, PronunciationDictionary, VoiceSettings};
pub use http::ElevenLabsHttp;
pub use ws::ElevenLabs;

/// The provider name in events, errors and metrics.
pub const PROVIDER: &str = "elevenlabs";

/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "ELEVENLABS_API_KEY";

/// The service's base URL; the WebSocket URL is derived from it (`wss://`).
pub const DEFAULT_BASE_URL: &str = "https://api.elevenlabs.io";
