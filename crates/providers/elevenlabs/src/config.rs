//! Configuration shared by the WebSocket and HTTP adapters, and the URLs built from it.

use std::time::Duration;

use reqwest::Url;
use serde::Serialize;
use voxline_core::{ErrorKind, ProviderError, RetryPolicy};

use crate::{API_KEY_ENV, DEFAULT_BASE_URL, PROVIDER};

/// How to reach ElevenLabs and what to ask of it.
///
/// Start from [`ElevenLabsConfig::default`] and change what you need; the key is
/// taken from [`ElevenLabsConfig::api_key`] first, then from `ELEVENLABS_API_KEY`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ElevenLabsConfig {
    /// The API key (`xi-api-key`); `None` reads `ELEVENLABS_API_KEY`.
    pub api_key: Option<String>,
    /// `https://api.elevenlabs.io` by default; tests point it at an emulator
    /// (`http://127.0.0.1:PORT`). The WebSocket URL swaps the scheme for `ws(s)`.
    pub base_url: String,
    /// The voice used when the session config names none.
    pub voice_id: String,
    /// `model_id`, e.g. `eleven_flash_v2_5` (the default: lowest latency).
    pub model_id: String,
    /// Voice settings, sent in the first message of every context (WebSocket) or
    /// in every request body (HTTP). `None` uses the voice's stored settings.
    pub voice_settings: Option<VoiceSettings>,
    /// `generation_config.chunk_length_schedule` (WebSocket): characters buffered
    /// before each generation, 50 to 500 each. `None` uses the service's default.
    pub chunk_length_schedule: Option<Vec<u32>>,
    /// Pronunciation dictionaries (at most 3).
    pub pronunciation_dictionaries: Vec<PronunciationDictionary>,
    /// `auto_mode` (WebSocket): generate per whole sentence for the lowest latency;
    /// only worth it when whole sentences are sent.
    pub auto_mode: Option<bool>,
    /// `apply_text_normalization`: `auto`, `on` or `off`.
    pub apply_text_normalization: Option<String>,
    /// `enable_logging=false` is zero-retention mode (enterprise plans).
    pub enable_logging: Option<bool>,
    /// `optimize_streaming_latency` (HTTP), 0 to 4; deprecated by the service.
    pub optimize_streaming_latency: Option<u8>,
    /// `inactivity_timeout` (WebSocket): seconds without text before the service
    /// ends the stream; 1 to 180, 180 by default.
    pub inactivity_timeout: Duration,
    /// How often idle contexts (or an idle socket) are kept alive.
    pub keepalive_interval: Duration,
    /// Contexts open at once on one socket; the service allows 5. Requests beyond
    /// this wait for a context to finish.
    pub max_contexts: usize,
    /// Retries for connections and HTTP requests that fail retryably.
    pub retry: RetryPolicy,
    /// How long the WebSocket handshake or an HTTP response head may take.
    pub connect_timeout: Duration,
    /// How long to wait for the service's close after `close_socket`.
    pub close_timeout: Duration,
    /// Capacity of the session's input and event channels.
    pub channel_capacity: usize,
}

impl Default for ElevenLabsConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            // "Rachel", a premade voice every account has.
            voice_id: "21m00Tcm4TlvDq8ikWAM".to_owned(),
            model_id: "eleven_flash_v2_5".to_owned(),
            voice_settings: None,
            chunk_length_schedule: None,
            pronunciation_dictionaries: Vec::new(),
            auto_mode: None,
            apply_text_normalization: None,
            enable_logging: None,
            optimize_streaming_latency: None,
            inactivity_timeout: Duration::from_secs(180),
            keepalive_interval: Duration::from_secs(10),
            max_contexts: 5,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            channel_capacity: 64,
        }
    }
}

impl ElevenLabsConfig {
    /// The same config with an API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The same config with another base URL (an emulator's, say).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The same config with another default voice.
    pub fn voice_id(mut self, voice: impl Into<String>) -> Self {
        self.voice_id = voice.into();
        self
    }

    /// The same config with another model.
    pub fn model_id(mut self, model: impl Into<String>) -> Self {
        self.model_id = model.into();
        self
    }

    /// The same config with voice settings.
    pub fn voice_settings(mut self, settings: VoiceSettings) -> Self {
        self.voice_settings = Some(settings);
        self
    }

    /// The same config with a chunk schedule.
    pub fn chunk_length_schedule(mut self, schedule: Vec<u32>) -> Self {
        self.chunk_length_schedule = Some(schedule);
        self
    }

    /// The same config with a retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same config with another keepalive interval.
    pub fn keepalive_interval(mut self, interval: Duration) -> Self {
        self.keepalive_interval = interval;
        self
    }

    /// The key from the config or the environment.
    pub(crate) fn key(&self) -> Result<String, ProviderError> {
        voxline_core::key_from(self.api_key.as_deref(), API_KEY_ENV).ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                format!("no API key: set {API_KEY_ENV} or ElevenLabsConfig::api_key"),
            )
        })
    }

    /// `language_code` for a BCP-47 tag (`en-US` -> `en`), when the model takes one.
    pub(crate) fn language_code(&self, language: Option<&str>) -> Option<String> {
        let language = language?;
        let takes_language = !matches!(
            self.model_id.as_str(),
            "eleven_multilingual_v2"
                | "eleven_flash_v2"
                | "eleven_turbo_v2"
                | "eleven_monolingual_v1"
        );
        let primary = language.split(['-', '_']).next()?.to_ascii_lowercase();
        if !takes_language {
            tracing::warn!(
                model = %self.model_id,
                language,
                "model takes no language_code; not sent"
            );
            return None;
        }
        (!primary.is_empty()).then_some(primary)
    }

    /// `base_url` + `path`, with the scheme turned into `ws`/`wss` if `websocket`.
    pub(crate) fn url(&self, path: &str, websocket: bool) -> Result<Url, ProviderError> {
        let bad = |why: String| ProviderError::new(PROVIDER, ErrorKind::BadRequest, why);
        let mut url = Url::parse(&self.base_url)
            .map_err(|e| bad(format!("invalid base URL {:?}: {e}", self.base_url)))?;
        let scheme = match (url.scheme(), websocket) {
            ("https" | "wss", true) => "wss",
            ("http" | "ws", true) => "ws",
            ("https" | "wss", false) => "https",
            ("http" | "ws", false) => "http",
            (other, _) => return Err(bad(format!("unsupported URL scheme {other:?}"))),
        };
        url.set_scheme(scheme)
            .map_err(|()| bad(format!("cannot use scheme {scheme} with {url}")))?;
        let base_path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base_path}{path}"));
        Ok(url)
    }
}

/// Voice settings: every field optional; unset ones are not sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VoiceSettings {
    /// 0 to 1: lower is more expressive, higher more monotone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stability: Option<f64>,
    /// 0 to 1: how closely to match the original voice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity_boost: Option<f64>,
    /// 0 to 1: style exaggeration (V2+ models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub style: Option<f64>,
    /// Speaker boost (V2+ models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_speaker_boost: Option<bool>,
    /// 0.7 to 1.2 on the WebSocket; 1.0 is normal speed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// A pronunciation dictionary to apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PronunciationDictionary {
    /// `pronunciation_dictionary_id`.
    pub pronunciation_dictionary_id: String,
    /// `version_id`.
    pub version_id: String,
}

/// Percent-encodes a voice id for a path segment (ids are alphanumeric; anything
/// else is escaped rather than trusted).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_the_scheme_family_and_base_path() {
        let c = ElevenLabsConfig::default();
        assert_eq!(
            c.url("/v1/x", true).expect("url").as_str(),
            "wss://api.elevenlabs.io/v1/x"
        );
        let c = c.base_url("http://127.0.0.1:9/prefix/");
        assert_eq!(
            c.url("/v1/x", true).expect("url").as_str(),
            "ws://127.0.0.1:9/prefix/v1/x"
        );
        assert_eq!(
            c.url("/v1/x", false).expect("url").as_str(),
            "http://127.0.0.1:9/prefix/v1/x"
        );
        assert!(c.base_url("ftp://x").url("/v1", false).is_err());
    }

    #[test]
    fn language_codes_are_primary_subtags_for_models_that_take_them() {
        let c = ElevenLabsConfig::default();
        assert_eq!(c.language_code(Some("en-US")).as_deref(), Some("en"));
        assert_eq!(c.language_code(None), None);
        let c = c.model_id("eleven_multilingual_v2");
        assert_eq!(c.language_code(Some("de-DE")), None);
    }

    #[test]
    fn voice_settings_serialise_only_what_is_set() {
        let s = VoiceSettings {
            stability: Some(0.5),
            speed: Some(1.1),
            ..VoiceSettings::default()
        };
        let json = serde_json::to_value(&s).expect("json");
        assert_eq!(json, serde_json::json!({"stability": 0.5, "speed": 1.1}));
        assert_eq!(path_segment("a b/c"), "a%20b%2Fc");
    }
}
