//! Azure AI Speech for Voxline: text-to-speech over REST with SSML, and speech-to-text
//! over the REST API for short audio.
//!
//! - [`AzureTts`] implements [`voxline_core::TextToSpeech`]: one
//!   `POST https://<region>.tts.speech.microsoft.com/cognitiveservices/v1` per flushed
//!   sentence, SSML in, raw audio streamed back. Phone audio is native:
//!   `X-Microsoft-OutputFormat: raw-8khz-8bit-mono-mulaw` for 8 kHz mu-law, the
//!   `raw-*-16bit-mono-pcm` formats for PCM16; anything else is transcoded locally.
//!   Cancelling a request aborts its HTTP response.
//! - [`AzureStt`] implements [`voxline_core::SpeechToText`]: per utterance, the audio
//!   is buffered until `finalize`, converted to a 16 kHz PCM16 mono WAV and sent to
//!   `POST https://<region>.stt.speech.microsoft.com/speech/recognition/conversation/cognitiveservices/v1`.
//!   One final transcript per utterance; no interim results (the REST API has none;
//!   Azure's streaming protocol is the Speech SDK's WebSocket, not implemented here);
//!   at most 60 s of audio per utterance.
//!
//! Authentication is the resource key (`Ocp-Apim-Subscription-Key`, from
//! [`AzureConfig::key`] or `AZURE_SPEECH_KEY`), a bearer token, or a token exchanged
//! for the key at the `issueToken` endpoint. The region comes from
//! [`AzureConfig::region`] or `AZURE_SPEECH_REGION`; base URLs can be overridden (tests
//! point them at the emulator in `voxline-testkit`).
//!
//! Azure reports no usage: sessions report the characters they sent for synthesis and
//! the audio seconds they sent for recognition (`reported: false`).

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod config;
mod http;
pub mod recognition;
pub mod ssml;
mod stt;
mod tts;

pub use config::{AzureConfig, DEFAULT_USER_AGENT, ISSUE_TOKEN_PATH, KEY_ENV, REGION_ENV};
pub use recognition::{Recognition, RecognitionStatus};
pub use ssml::VoiceOptions;
pub use stt::{
    AzureStt, DEFAULT_LANGUAGE, MAX_UTTERANCE, Profanity, RecognitionMode, ResultFormat,
    SttOptions, WAV_CONTENT_TYPE,
};
pub use tts::{AzureTts, OUTPUT_FORMAT_HEADER, TTS_PATH, native_output_format, requested_output};

/// The provider name in events, errors and metrics.
pub const PROVIDER: &str = "azure";

/// The HTTP client adapters share: rustls with the ring provider, no overall timeout
/// (audio bodies stream for as long as the speech lasts).
fn http_client() -> Result<reqwest::Client, voxline_core::ProviderError> {
    voxline_core::install_tls();
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| {
            voxline_core::ProviderError::new(
                PROVIDER,
                voxline_core::ErrorKind::Connection,
                format!("cannot build the HTTP client: {e}"),
            )
        })
}
