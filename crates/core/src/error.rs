//! Provider errors: what went wrong, and whether trying again can help.

use std::time::Duration;

/// What kind of failure a [`ProviderError`] is; decides whether it is retryable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The key or token was refused (HTTP 401/403, an auth close code). Permanent.
    Auth,
    /// The request was malformed or asked for something unsupported (other 4xx, a
    /// config close code such as 1008 or 1007 at set-up). Permanent.
    BadRequest,
    /// Too many requests or concurrent streams (HTTP 429). Retryable after a pause.
    RateLimited,
    /// The provider failed (HTTP 5xx, close code 1011). Retryable.
    Server,
    /// The connection could not be made or dropped mid-stream. Retryable.
    Connection,
    /// The provider did not answer in time. Retryable.
    Timeout,
    /// The provider sent something this adapter cannot understand. Permanent.
    Protocol,
    /// The session was already closed or cancelled by this side. Permanent.
    Closed,
}

impl ErrorKind {
    /// Whether an operation that failed this way may succeed if tried again.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::RateLimited | Self::Server | Self::Connection | Self::Timeout
        )
    }
}

/// A failure talking to a provider, with the provider's own words and status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider}: {kind:?}{}: {message}", status.map(|s| format!(" (status {s})")).unwrap_or_default())]
#[non_exhaustive]
pub struct ProviderError {
    /// Which provider (`"deepgram"`, `"openai"`, ...).
    pub provider: &'static str,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// The HTTP status or WebSocket close code, when there was one.
    pub status: Option<u16>,
    /// The provider's message (its error body or close reason), or ours.
    pub message: String,
    /// How long the provider asked us to wait (`Retry-After`), if it said.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `kind` with a message.
    pub fn new(provider: &'static str, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            provider,
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Maps an HTTP error status and body: 401/403 auth, 408 timeout, 429 rate limit,
    /// 5xx server (the last three retryable), any other status a bad request.
    pub fn from_http(provider: &'static str, status: u16, body: impl Into<String>) -> Self {
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::BadRequest,
        };
        Self::new(provider, kind, body).with_status(status)
    }

    /// Maps a WebSocket close code and reason: 1011 and 1012-1014 are server-side and
    /// retryable, 1006 (no close frame) a dropped connection, 1008 a policy or auth
    /// refusal, 1007 and 1003 bad data, anything else a protocol error.
    pub fn from_close(provider: &'static str, code: u16, reason: impl Into<String>) -> Self {
        let kind = match code {
            1011..=1014 => ErrorKind::Server,
            1006 | 1001 => ErrorKind::Connection,
            1008 => ErrorKind::BadRequest,
            1003 | 1007 | 1009 => ErrorKind::BadRequest,
            4001 | 4003 => ErrorKind::Auth,
            _ => ErrorKind::Protocol,
        };
        Self::new(provider, kind, reason).with_status(code)
    }

    /// The same error with a status or close code.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The same error with the provider's requested pause.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// A refused `try_send` on a session's input: the queue full (a timeout: the
    /// provider is behind) or the session gone.
    pub(crate) fn from_try_send<T>(
        provider: &'static str,
        error: &tokio::sync::mpsc::error::TrySendError<T>,
        what: &str,
    ) -> Self {
        match error {
            tokio::sync::mpsc::error::TrySendError::Full(_) => Self::new(
                provider,
                ErrorKind::Timeout,
                format!("{what} input queue full"),
            ),
            tokio::sync::mpsc::error::TrySendError::Closed(_) => Self::closed(provider),
        }
    }

    /// The session is closed (used when a handle outlives its task).
    pub fn closed(provider: &'static str) -> Self {
        Self::new(provider, ErrorKind::Closed, "session closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_retryable_or_permanent() {
        for (status, kind, retryable) in [
            (400, ErrorKind::BadRequest, false),
            (401, ErrorKind::Auth, false),
            (403, ErrorKind::Auth, false),
            (404, ErrorKind::BadRequest, false),
            (408, ErrorKind::Timeout, true),
            (422, ErrorKind::BadRequest, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Server, true),
            (503, ErrorKind::Server, true),
        ] {
            let e = ProviderError::from_http("x", status, "body");
            assert_eq!((e.kind, e.is_retryable()), (kind, retryable), "{status}");
            assert_eq!(e.status, Some(status));
        }
    }

    #[test]
    fn close_codes_map_to_kinds() {
        assert!(ProviderError::from_close("deepgram", 1011, "NET-0001").is_retryable());
        assert!(ProviderError::from_close("x", 1006, "").is_retryable());
        assert!(!ProviderError::from_close("x", 1008, "input_timeout_exceeded").is_retryable());
        assert_eq!(
            ProviderError::from_close("x", 1000, "").kind,
            ErrorKind::Protocol
        );
    }

    #[test]
    fn display_names_provider_status_and_message() {
        let e = ProviderError::from_http("openai", 429, "Rate limit reached");
        assert_eq!(
            e.to_string(),
            "openai: RateLimited (status 429): Rate limit reached"
        );
    }
}
