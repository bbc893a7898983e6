//! What the three HTTP APIs share: where the server is, how to authenticate, the HTTP
//! client, retries, and how OpenAI-style error bodies and `Retry-After` are read.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, Response};
use tokio::time::Instant;
use voxline_core::{ErrorKind, ProviderError, RetryPolicy};

/// The provider name in errors, usage records and logs.
pub(crate) const PROVIDER: &str = "openai";

/// The environment variable the API key is read from when the config has none.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";

/// OpenAI's own API. Any OpenAI-compatible server (Groq, Together, vLLM, Ollama) works
/// with its base URL instead, e.g. `http://localhost:11434/v1`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The longest error body quoted in an error message.
const MAX_QUOTED_BODY: usize = 500;

/// Where and how to reach an OpenAI or OpenAI-compatible server. Shared by the chat,
/// transcription and speech adapters.
#[derive(Clone)]
pub struct ApiConfig {
    /// The API root including the version, without a trailing slash:
    /// `https://api.openai.com/v1` (paths such as `/chat/completions` are appended).
    pub base_url: String,
    /// The API key, sent as `Authorization: Bearer <key>`. When `None` the key comes
    /// from [`key_env`](Self::key_env); when neither has one, no `Authorization` header
    /// is sent (local servers such as vLLM or Ollama need none).
    pub api_key: Option<String>,
    /// The environment variable to read the key from when `api_key` is `None`
    /// (`OPENAI_API_KEY` by default; `None` never reads the environment).
    pub key_env: Option<String>,
    /// Sent as `OpenAI-Organization` when set.
    pub organization: Option<String>,
    /// Sent as `OpenAI-Project` when set.
    pub project: Option<String>,
    /// Retries of 408/429/5xx answers and connection failures before a response
    /// starts. Mid-stream failures are reported, not retried.
    pub retry: RetryPolicy,
    /// How long to wait for the TCP (and TLS) connection.
    pub connect_timeout: Duration,
}

impl ApiConfig {
    /// OpenAI's API with the key from `OPENAI_API_KEY`.
    pub fn openai() -> Self {
        Self::new(DEFAULT_BASE_URL)
    }

    /// A server at `base_url` (`http://127.0.0.1:8000/v1`), key from `OPENAI_API_KEY`
    /// if set.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            key_env: Some(API_KEY_ENV.to_owned()),
            organization: None,
            project: None,
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
        }
    }

    /// The same config with an explicit key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The same config sending no key at all, whatever the environment holds (local
    /// servers).
    pub fn without_key(mut self) -> Self {
        self.api_key = None;
        self.key_env = None;
        self
    }

    /// The same config with a retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The key to send, if any: the config's, else the environment's.
    pub(crate) fn resolve_key(&self) -> Option<String> {
        match &self.key_env {
            Some(var) => voxline_core::key_from(self.api_key.as_deref(), var),
            None => self.api_key.clone().filter(|k| !k.trim().is_empty()),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self::openai()
    }
}

impl fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_env", &self.key_env)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("retry", &self.retry)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// An HTTP client bound to one server, with its headers resolved once.
#[derive(Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    base_url: String,
    retry: RetryPolicy,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// A client for `config`.
    pub(crate) fn new(config: &ApiConfig) -> Result<Self, ProviderError> {
        voxline_core::install_tls();
        let mut headers = HeaderMap::new();
        if let Some(key) = config.resolve_key() {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ProviderError::new(PROVIDER, ErrorKind::Auth, "API key is not a valid header")
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        } else {
            tracing::debug!(base_url = %config.base_url, "no API key: sending no Authorization header");
        }
        for (name, value) in [
            ("openai-organization", &config.organization),
            ("openai-project", &config.project),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    ProviderError::new(
                        PROVIDER,
                        ErrorKind::BadRequest,
                        format!("{name} is not a valid header value"),
                    )
                })?;
                headers.insert(name, value);
            }
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .user_agent(concat!("voxline-openai/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                ProviderError::new(
                    PROVIDER,
                    ErrorKind::BadRequest,
                    format!("cannot build the HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            client,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            retry: config.retry,
        })
    }

    /// `POST {base}{path}`, not yet sent.
    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(format!("{}{path}", self.base_url))
    }

    /// Sends the request `build` makes, retrying retryable failures (connection
    /// errors, 408, 429, 5xx) under the retry policy. Returns the successful response
    /// and when the attempt that produced it started.
    pub(crate) async fn send<F>(
        &self,
        what: &'static str,
        build: F,
    ) -> Result<(Response, Instant), ProviderError>
    where
        F: Fn() -> RequestBuilder,
    {
        self.retry
            .run(|| attempt(what, build()))
            .await
            .inspect_err(|e| tracing::warn!(endpoint = what, error = %e, "request failed"))
    }
}

async fn attempt(
    what: &'static str,
    request: RequestBuilder,
) -> Result<(Response, Instant), ProviderError> {
    let started = Instant::now();
    let response = request.send().await.map_err(from_reqwest)?;
    let status = response.status();
    tracing::debug!(
        endpoint = what,
        status = status.as_u16(),
        request_id = ?response.headers().get("x-request-id"),
        "response"
    );
    if status.is_success() {
        Ok((response, started))
    } else {
        Err(error_from_response(response).await)
    }
}

/// Maps a transport failure: timeouts and connection failures are retryable.
pub(crate) fn from_reqwest(e: reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::BadRequest
    } else {
        ErrorKind::Connection
    };
    ProviderError::new(PROVIDER, kind, error_chain(&e))
}

/// The error and its sources in one line (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A non-2xx response as a [`ProviderError`]: the status decides the kind, the
/// message comes from the JSON error body, the pause from `Retry-After`.
pub(crate) async fn error_from_response(response: Response) -> ProviderError {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let body = response.text().await.unwrap_or_default();
    let mut error = ProviderError::from_http(PROVIDER, status, error_message(&body));
    if let Some(after) = retry_after {
        error = error.with_retry_after(after);
    }
    error
}

/// The human message in an error body. OpenAI sends
/// `{"error":{"message":…,"type":…,"code":…}}`; compatible servers sometimes send
/// `{"error":"…"}`, `{"message":"…"}` or `{"detail":"…"}`. Anything else is quoted,
/// shortened.
pub(crate) fn error_message(body: &str) -> String {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(body) {
        if let Some(error) = value.get("error") {
            if let Some(text) = error.as_str() {
                return text.to_owned();
            }
            if let Some(message) = error.get("message").and_then(|m| m.as_str()) {
                return match error.get("code").and_then(|c| c.as_str()) {
                    Some(code) => format!("{message} [{code}]"),
                    None => message.to_owned(),
                };
            }
        }
        for key in ["message", "detail"] {
            if let Some(text) = value.get(key).and_then(|m| m.as_str()) {
                return text.to_owned();
            }
        }
    }
    let body = body.trim();
    if body.is_empty() {
        return "(empty body)".to_owned();
    }
    let mut end = body.len().min(MAX_QUOTED_BODY);
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    body[..end].to_owned()
}

/// The pause a server asks for: `retry-after-ms` (milliseconds), else `retry-after`
/// in seconds or as an HTTP date. Zero, negative and unparsable values are ignored.
/// Values beyond the retry policy's longest pause are capped by the policy.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms > 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    voxline_core::parse_retry_after(header("retry-after")?, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).expect("header"));
        }
        map
    }

    #[test]
    fn retry_after_reads_ms_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // 1994-11-06 08:49:30
        assert_eq!(
            retry_after(&headers(&[("retry-after-ms", "1500")]), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(
                &headers(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "0")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn error_messages_come_from_the_json_body() {
        assert_eq!(
            error_message(
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#
            ),
            "Incorrect API key provided [invalid_api_key]"
        );
        assert_eq!(
            error_message(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message("  "), "(empty body)");
        assert_eq!(error_message(&"é".repeat(400)).len(), 500);
    }
}
