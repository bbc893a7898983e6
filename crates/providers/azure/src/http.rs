//! Credentials (key header, bearer token, token exchange) and one HTTP attempt with
//! Azure's error mapping.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use tokio::sync::Mutex;
use tokio::time::Instant;
use voxline_core::{ErrorKind, ProviderError, key_from};

use crate::PROVIDER;
use crate::config::{AzureConfig, KEY_ENV};

/// The header carrying a resource key.
pub(crate) const KEY_HEADER: &str = "Ocp-Apim-Subscription-Key";
/// Tokens are valid for 10 minutes; reuse them for 9.
const TOKEN_REUSE: Duration = Duration::from_secs(9 * 60);
/// The most of an error body kept in a [`ProviderError`] message.
const MAX_ERROR_BODY: usize = 2048;

/// How requests authenticate.
#[derive(Debug, Clone)]
pub(crate) enum Credential {
    /// `Ocp-Apim-Subscription-Key: <key>`.
    Key(String),
    /// `Authorization: Bearer <token>`, given by the caller.
    Bearer(String),
    /// `Authorization: Bearer <token>` with the token fetched from `issueToken`
    /// using the key, cached, and the key header as a fallback on 401.
    Exchange(Arc<TokenExchange>),
}

#[derive(Debug)]
pub(crate) struct TokenExchange {
    key: String,
    url: String,
    cached: Mutex<Option<(String, Instant)>>,
}

/// One request's auth header.
#[derive(Debug, Clone)]
pub(crate) enum AuthHeader {
    Key(String),
    Bearer { token: String, exchanged: bool },
}

impl AuthHeader {
    pub(crate) fn apply(&self, builder: RequestBuilder) -> RequestBuilder {
        match self {
            AuthHeader::Key(key) => builder.header(KEY_HEADER, key),
            AuthHeader::Bearer { token, .. } => {
                builder.header(AUTHORIZATION, format!("Bearer {token}"))
            }
        }
    }
}

impl Credential {
    /// The credential a config describes: a token first, then the key (config, then
    /// environment), exchanged for a token if asked.
    pub(crate) fn from_config(config: &AzureConfig) -> Result<Self, ProviderError> {
        if let Some(token) = config.token.as_deref().filter(|t| !t.trim().is_empty()) {
            return Ok(Credential::Bearer(token.to_owned()));
        }
        let key = key_from(config.key.as_deref(), KEY_ENV).ok_or_else(|| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                format!("no key: set AzureConfig::key, AzureConfig::token or {KEY_ENV}"),
            )
        })?;
        if config.exchange_token {
            Ok(Credential::Exchange(Arc::new(TokenExchange {
                key,
                url: config.token_url()?,
                cached: Mutex::new(None),
            })))
        } else {
            Ok(Credential::Key(key))
        }
    }

    /// The header for the next request, fetching a token if needed.
    pub(crate) async fn header(&self, client: &Client) -> Result<AuthHeader, ProviderError> {
        match self {
            Credential::Key(key) => Ok(AuthHeader::Key(key.clone())),
            Credential::Bearer(token) => Ok(AuthHeader::Bearer {
                token: token.clone(),
                exchanged: false,
            }),
            Credential::Exchange(exchange) => Ok(AuthHeader::Bearer {
                token: exchange.token(client).await?,
                exchanged: true,
            }),
        }
    }

    /// After a 401 on an exchanged token: forget the token and give the key header to
    /// try once more with (tokens are scoped to the host that issued them).
    pub(crate) async fn fallback(&self) -> Option<AuthHeader> {
        match self {
            Credential::Exchange(exchange) => {
                *exchange.cached.lock().await = None;
                Some(AuthHeader::Key(exchange.key.clone()))
            }
            _ => None,
        }
    }
}

impl TokenExchange {
    async fn token(&self, client: &Client) -> Result<String, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, at)) = cached.as_ref()
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        tracing::debug!(url = %self.url, "fetching an Azure Speech token");
        let response = client
            .post(&self.url)
            .header(KEY_HEADER, &self.key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .body(Vec::new())
            .send()
            .await
            .map_err(transport_error)?;
        let response = check_status(response).await?;
        let token = response.text().await.map_err(transport_error)?;
        let token = token.trim().to_owned();
        if token.is_empty() {
            return Err(ProviderError::new(
                PROVIDER,
                ErrorKind::Protocol,
                "issueToken answered with an empty token",
            ));
        }
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }
}

/// Sends one request built by `build` with the credential's header; on a 401 with an
/// exchanged token, once more with the key header. Non-2xx statuses become errors.
pub(crate) async fn send_authorized<F>(
    client: &Client,
    credential: &Credential,
    build: F,
) -> Result<Response, ProviderError>
where
    F: Fn() -> RequestBuilder,
{
    let auth = credential.header(client).await?;
    let response = auth.apply(build()).send().await.map_err(transport_error)?;
    if response.status() == StatusCode::UNAUTHORIZED
        && matches!(
            auth,
            AuthHeader::Bearer {
                exchanged: true,
                ..
            }
        )
        && let Some(key) = credential.fallback().await
    {
        tracing::warn!("token refused (401): falling back to the key header");
        let response = key.apply(build()).send().await.map_err(transport_error)?;
        return check_status(response).await;
    }
    check_status(response).await
}

/// Turns a non-2xx response into a [`ProviderError`] with its body and `Retry-After`.
pub(crate) async fn check_status(response: Response) -> Result<Response, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(parse_retry_after);
    let body = response.text().await.unwrap_or_default();
    let mut message: String = body.trim().chars().take(MAX_ERROR_BODY).collect();
    if message.is_empty() {
        // Azure often answers 400 and 401 with an empty body.
        message = status
            .canonical_reason()
            .unwrap_or("no error body")
            .to_owned();
    }
    let mut error = ProviderError::from_http(PROVIDER, status.as_u16(), message);
    if let Some(after) = retry_after {
        error = error.with_retry_after(after);
    }
    tracing::debug!(status = status.as_u16(), error = %error, "Azure answered with an error");
    Err(error)
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    voxline_core::parse_retry_after(value.to_str().ok()?, std::time::SystemTime::now())
}

/// A transport failure: no connection, or one that dropped (retryable).
pub(crate) fn transport_error(error: reqwest::Error) -> ProviderError {
    let kind = if error.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connection
    };
    ProviderError::new(PROVIDER, kind, error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_are_read() {
        let v = HeaderValue::from_static("3");
        assert_eq!(parse_retry_after(&v), Some(Duration::from_secs(3)));
        let v = HeaderValue::from_static("0.5");
        assert_eq!(parse_retry_after(&v), Some(Duration::from_millis(500)));
        let v = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(parse_retry_after(&v), None);
    }

    #[test]
    fn a_token_wins_over_the_key() {
        let c = AzureConfig::new().key("k").token("t");
        assert!(matches!(Credential::from_config(&c), Ok(Credential::Bearer(t)) if t == "t"));
        let c = AzureConfig::new().key("k");
        assert!(matches!(Credential::from_config(&c), Ok(Credential::Key(k)) if k == "k"));
    }
}
