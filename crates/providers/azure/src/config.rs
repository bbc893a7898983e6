//! Configuration shared by the text-to-speech and speech-to-text adapters: credentials,
//! region, base URLs, user agent and retry policy.

use std::fmt;

use voxline_core::{ErrorKind, ProviderError, RetryPolicy, key_from};

use crate::PROVIDER;

/// Environment variable read for the resource key when the config has none.
pub const KEY_ENV: &str = "AZURE_SPEECH_KEY";
/// Environment variable read for the region (`westus`, `westeurope`, ...) when the
/// config has none.
pub const REGION_ENV: &str = "AZURE_SPEECH_REGION";
/// The `User-Agent` sent when none is configured (the TTS REST API requires one).
pub const DEFAULT_USER_AGENT: &str = concat!("voxline-azure/", env!("CARGO_PKG_VERSION"));
/// Path of the token exchange endpoint under the token base URL.
pub const ISSUE_TOKEN_PATH: &str = "/sts/v1.0/issueToken";

/// How to reach Azure AI Speech. Keys and region come from here first, then from
/// [`KEY_ENV`] and [`REGION_ENV`].
///
/// The three hosts (TTS, STT, token exchange) are derived from the region unless a
/// base URL is set; [`AzureConfig::base_url`] points all three at one server (an
/// emulator, a proxy).
#[derive(Clone)]
#[non_exhaustive]
pub struct AzureConfig {
    /// The Speech resource key, sent as `Ocp-Apim-Subscription-Key` (or exchanged
    /// for a token when [`exchange_token`](Self::exchange_token) is set).
    pub key: Option<String>,
    /// A ready-made bearer token (`Authorization: Bearer <token>`), e.g. one issued
    /// elsewhere or an Entra ID `aad#<resource id>#<token>`; takes precedence over
    /// the key.
    pub token: Option<String>,
    /// Exchange the key for a 10-minute token at the `issueToken` endpoint and send
    /// the token instead of the key (reused for 9 minutes).
    pub exchange_token: bool,
    /// The resource's region, e.g. `westus`.
    pub region: Option<String>,
    /// Overrides `https://<region>.tts.speech.microsoft.com`.
    pub tts_base_url: Option<String>,
    /// Overrides `https://<region>.stt.speech.microsoft.com`.
    pub stt_base_url: Option<String>,
    /// Overrides `https://<region>.api.cognitive.microsoft.com` (token exchange).
    pub token_base_url: Option<String>,
    /// The `User-Agent` header: the application name, under 255 characters.
    pub user_agent: String,
    /// Retries for 429, 5xx and dropped connections.
    pub retry: RetryPolicy,
}

impl fmt::Debug for AzureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("AzureConfig")
            .field("key", &redact(&self.key))
            .field("token", &redact(&self.token))
            .field("exchange_token", &self.exchange_token)
            .field("region", &self.region)
            .field("tts_base_url", &self.tts_base_url)
            .field("stt_base_url", &self.stt_base_url)
            .field("token_base_url", &self.token_base_url)
            .field("user_agent", &self.user_agent)
            .field("retry", &self.retry)
            .finish()
    }
}

impl Default for AzureConfig {
    fn default() -> Self {
        Self {
            key: None,
            token: None,
            exchange_token: false,
            region: None,
            tts_base_url: None,
            stt_base_url: None,
            token_base_url: None,
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            retry: RetryPolicy::default(),
        }
    }
}

impl AzureConfig {
    /// A config that reads key and region from the environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same config with a resource key.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// The same config with a ready-made bearer token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The same config, exchanging the key for a token first (or not).
    pub fn exchange_token(mut self, on: bool) -> Self {
        self.exchange_token = on;
        self
    }

    /// The same config for `region`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The same config with every host (TTS, STT, token) at `url`, e.g. an emulator's
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.tts_base_url = Some(url.clone());
        self.stt_base_url = Some(url.clone());
        self.token_base_url = Some(url);
        self
    }

    /// The same config with another `User-Agent`.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = agent.into();
        self
    }

    /// The same config with another retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn region_or_env(&self) -> Option<String> {
        key_from(self.region.as_deref(), REGION_ENV)
    }

    /// The TTS base URL: the override, else the region's host.
    pub(crate) fn tts_base(&self) -> Result<String, ProviderError> {
        self.base(&self.tts_base_url, "tts.speech.microsoft.com")
    }

    /// The STT base URL: the override, else the region's host.
    pub(crate) fn stt_base(&self) -> Result<String, ProviderError> {
        self.base(&self.stt_base_url, "stt.speech.microsoft.com")
    }

    /// The token exchange URL.
    pub(crate) fn token_url(&self) -> Result<String, ProviderError> {
        Ok(format!(
            "{}{ISSUE_TOKEN_PATH}",
            self.base(&self.token_base_url, "api.cognitive.microsoft.com")?
        ))
    }

    fn base(&self, explicit: &Option<String>, host: &str) -> Result<String, ProviderError> {
        if let Some(url) = explicit {
            return Ok(url.trim_end_matches('/').to_owned());
        }
        let region = self.region_or_env().ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("no region: set AzureConfig::region or {REGION_ENV}"),
            )
        })?;
        let region = region.trim();
        if !region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("region {region:?} is not a region name such as westus"),
            ));
        }
        Ok(format!("https://{region}.{host}"))
    }

    pub(crate) fn check_user_agent(&self) -> Result<(), ProviderError> {
        let len = self.user_agent.chars().count();
        if len == 0 || len >= 255 {
            return Err(ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                "User-Agent must be 1 to 254 characters",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_from_the_region() {
        let c = AzureConfig::new().region("westus");
        assert_eq!(
            c.tts_base().ok().as_deref(),
            Some("https://westus.tts.speech.microsoft.com")
        );
        assert_eq!(
            c.stt_base().ok().as_deref(),
            Some("https://westus.stt.speech.microsoft.com")
        );
        assert_eq!(
            c.token_url().ok().as_deref(),
            Some("https://westus.api.cognitive.microsoft.com/sts/v1.0/issueToken")
        );
    }

    #[test]
    fn base_url_overrides_every_host() {
        let c = AzureConfig::new().base_url("http://127.0.0.1:9/");
        assert_eq!(c.tts_base().ok().as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            c.token_url().ok().as_deref(),
            Some("http://127.0.0.1:9/sts/v1.0/issueToken")
        );
    }

    #[test]
    fn odd_region_names_are_refused() {
        let c = AzureConfig::new().region("west us/../x");
        assert_eq!(c.tts_base().map_err(|e| e.kind), Err(ErrorKind::BadRequest));
    }

    #[test]
    fn debug_hides_secrets() {
        let c = AzureConfig::new().key("secret-key").token("secret-token");
        let text = format!("{c:?}");
        assert!(!text.contains("secret"), "{text}");
    }
}
