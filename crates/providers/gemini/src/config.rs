//! Adapter configuration: endpoint, credentials, model, turn detection, resumption,
//! the silence watchdog and reconnection limits.

use std::time::Duration;

use voxline_core::{ErrorKind, ProviderError, RetryPolicy};

use crate::PROVIDER;

/// The Gemini API's WebSocket host.
pub const DEFAULT_BASE_URL: &str = "wss://generativelanguage.googleapis.com";

/// The API version in the Gemini API path. `v1beta` is the documented Live endpoint;
/// the newest SDKs use `v1`, and `v1alpha` carries alpha features.
pub const DEFAULT_API_VERSION: &str = "v1beta";

/// The default native-audio Live model (volatile: keep it configurable).
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash-native-audio-preview-12-2025";

/// Environment variables the key is read from when the config has none, in the order
/// the official SDK reads them (`GOOGLE_API_KEY` wins when both are set).
pub const API_KEY_ENVS: [&str; 2] = ["GOOGLE_API_KEY", "GEMINI_API_KEY"];

/// Which Google service to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// The Gemini Developer API: `x-goog-api-key` header, model `models/<id>`.
    GeminiApi,
    /// Vertex AI: `Authorization: Bearer <OAuth token>`, model
    /// `projects/<p>/locations/<l>/publishers/google/models/<id>`.
    Vertex {
        /// The Google Cloud project id.
        project: String,
        /// The region (`us-central1`) or `global`.
        location: String,
        /// An OAuth access token (scope cloud-platform); the adapter does not mint it.
        access_token: String,
    },
}

/// Start-of-speech sensitivity of the server's voice activity detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSensitivity {
    /// Detects speech onset sooner (more false starts).
    High,
    /// Detects speech onset later (fewer false starts).
    Low,
}

/// End-of-speech sensitivity of the server's voice activity detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndSensitivity {
    /// Ends the caller's turn sooner.
    High,
    /// Waits longer before ending the caller's turn.
    Low,
}

/// `realtimeInputConfig.automaticActivityDetection`: the server's turn detection.
/// `None` fields are left to the service's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityDetection {
    /// Turn server VAD off (the adapter then relies on the caller's `Interrupt`).
    pub disabled: bool,
    /// How readily speech onset is detected.
    pub start_sensitivity: Option<StartSensitivity>,
    /// How readily the end of speech is detected.
    pub end_sensitivity: Option<EndSensitivity>,
    /// Audio kept before detected speech onset, in ms.
    pub prefix_padding_ms: Option<u32>,
    /// Silence that ends the caller's turn, in ms.
    pub silence_duration_ms: Option<u32>,
}

/// `contextWindowCompression.slidingWindow`: needed for sessions past 15 minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Context size that triggers compression.
    pub trigger_tokens: u64,
    /// Size kept after compression (`None`: the service's default, half the trigger).
    pub target_tokens: Option<u64>,
}

/// What the silence watchdog does when the caller's turn ended and the model stays
/// silent (a known Live API failure after an interruption).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watchdog {
    /// How long to wait for model audio after the caller's turn ended.
    pub timeout: Duration,
    /// The text sent as `realtimeInput.text` on the first firing. A second firing
    /// reconnects with the resumption handle and sends it again.
    pub nudge_text: String,
}

impl Default for Watchdog {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(6),
            nudge_text: "(The caller is waiting for your answer.)".to_owned(),
        }
    }
}

/// Configuration of the Gemini Live adapter.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GeminiConfig {
    /// The API key; `None` reads [`API_KEY_ENVS`]. Unused with Vertex.
    pub api_key: Option<String>,
    /// Scheme and host (`wss://...`, or `ws://127.0.0.1:PORT` for the emulator). With
    /// Vertex, `None`-like empty string picks `wss://<location>-aiplatform.googleapis.com`.
    pub base_url: String,
    /// API version in the path (Gemini API only).
    pub api_version: String,
    /// The model id, without the `models/` prefix.
    pub model: String,
    /// Gemini API or Vertex AI.
    pub backend: Backend,
    /// BCP-47 language of the model's speech (`speechConfig.languageCode`).
    pub language_code: Option<String>,
    /// Server turn detection settings.
    pub activity_detection: ActivityDetection,
    /// Ask for transcripts of the caller's speech.
    pub input_transcription: bool,
    /// Ask for transcripts of the model's speech.
    pub output_transcription: bool,
    /// Sliding-window context compression; `None` leaves it off.
    pub compression: Option<Compression>,
    /// Ask for resumption handles and reconnect with them on `goAway` or a drop.
    pub session_resumption: bool,
    /// The silence watchdog; `None` turns it off.
    pub watchdog: Option<Watchdog>,
    /// Handshake and setup retries; also the limit of consecutive reconnect failures.
    pub retry: RetryPolicy,
    /// How long `setupComplete` may take.
    pub setup_timeout: Duration,
    /// Caller audio kept while reconnecting (older audio is dropped beyond it).
    pub reconnect_buffer: Duration,
    /// Capacity of the session's channels, in messages each way.
    pub channel_capacity: usize,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            model: DEFAULT_MODEL.to_owned(),
            backend: Backend::GeminiApi,
            language_code: None,
            activity_detection: ActivityDetection::default(),
            input_transcription: true,
            output_transcription: true,
            compression: None,
            session_resumption: true,
            watchdog: Some(Watchdog::default()),
            retry: RetryPolicy::default(),
            setup_timeout: Duration::from_secs(15),
            reconnect_buffer: Duration::from_secs(5),
            channel_capacity: 256,
        }
    }
}

impl GeminiConfig {
    /// The same config with an explicit API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The same config pointing at another host (the emulator: `ws://127.0.0.1:PORT`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into().trim_end_matches('/').to_owned();
        self
    }

    /// The same config with another model id.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The same config with another API version (`v1`, `v1beta`, `v1alpha`).
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// The same config talking to Vertex AI with an OAuth access token.
    pub fn vertex(
        mut self,
        project: impl Into<String>,
        location: impl Into<String>,
        access_token: impl Into<String>,
    ) -> Self {
        let location = location.into();
        if self.base_url == DEFAULT_BASE_URL {
            self.base_url = if location == "global" {
                "wss://aiplatform.googleapis.com".to_owned()
            } else {
                format!("wss://{location}-aiplatform.googleapis.com")
            };
        }
        self.backend = Backend::Vertex {
            project: project.into(),
            location,
            access_token: access_token.into(),
        };
        self
    }

    /// The same config with turn detection settings.
    pub fn activity_detection(mut self, vad: ActivityDetection) -> Self {
        self.activity_detection = vad;
        self
    }

    /// The same config with context window compression.
    pub fn compression(mut self, compression: Option<Compression>) -> Self {
        self.compression = compression;
        self
    }

    /// The same config with another watchdog (or none).
    pub fn watchdog(mut self, watchdog: Option<Watchdog>) -> Self {
        self.watchdog = watchdog;
        self
    }

    /// The same config with another retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same config with session resumption on or off.
    pub fn session_resumption(mut self, on: bool) -> Self {
        self.session_resumption = on;
        self
    }

    /// The WebSocket URL of the Live endpoint.
    pub fn url(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        match self.backend {
            Backend::GeminiApi => format!(
                "{base}/ws/google.ai.generativelanguage.{}.GenerativeService.BidiGenerateContent",
                self.api_version
            ),
            Backend::Vertex { .. } => {
                format!(
                    "{base}/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
                )
            }
        }
    }

    /// The model name as `setup.model` wants it.
    pub fn model_path(&self) -> String {
        match &self.backend {
            Backend::GeminiApi if self.model.starts_with("models/") => self.model.clone(),
            Backend::GeminiApi => format!("models/{}", self.model),
            Backend::Vertex {
                project, location, ..
            } if !self.model.starts_with("projects/") => format!(
                "projects/{project}/locations/{location}/publishers/google/models/{}",
                self.model
            ),
            Backend::Vertex { .. } => self.model.clone(),
        }
    }

    /// The auth header (name, value) for the handshake.
    pub(crate) fn auth_header(&self) -> Result<(&'static str, String), ProviderError> {
        match &self.backend {
            Backend::GeminiApi => {
                let key = API_KEY_ENVS
                    .iter()
                    .find_map(|var| voxline_core::key_from(self.api_key.as_deref(), var))
                    .ok_or_else(|| {
                        ProviderError::new(
                            PROVIDER,
                            ErrorKind::Auth,
                            "no API key: set GeminiConfig::api_key, GOOGLE_API_KEY or GEMINI_API_KEY",
                        )
                    })?;
                Ok(("x-goog-api-key", key))
            }
            Backend::Vertex { access_token, .. } if !access_token.trim().is_empty() => {
                Ok(("authorization", format!("Bearer {access_token}")))
            }
            Backend::Vertex { .. } => Err(ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                "no Vertex AI access token",
            )),
        }
    }

    pub(crate) fn is_vertex(&self) -> bool {
        matches!(self.backend, Backend::Vertex { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_model_paths() {
        let c = GeminiConfig::default();
        assert_eq!(
            c.url(),
            "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
        );
        assert_eq!(c.model_path(), format!("models/{DEFAULT_MODEL}"));
        let v = GeminiConfig::default()
            .model("gemini-live-2.5-flash-native-audio")
            .vertex("p1", "us-central1", "tok");
        assert_eq!(
            v.url(),
            "wss://us-central1-aiplatform.googleapis.com/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
        );
        assert_eq!(
            v.model_path(),
            "projects/p1/locations/us-central1/publishers/google/models/gemini-live-2.5-flash-native-audio"
        );
        assert_eq!(
            v.auth_header().expect("token"),
            ("authorization", "Bearer tok".to_owned())
        );
        let local = GeminiConfig::default().base_url("ws://127.0.0.1:9/");
        assert!(local.url().starts_with("ws://127.0.0.1:9/ws/"));
        assert_eq!(
            GeminiConfig::default()
                .api_key("k")
                .auth_header()
                .expect("key"),
            ("x-goog-api-key", "k".to_owned())
        );
    }
}
