//! URLs as each carrier uses them, and the WebSocket connection.

use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;

/// The client socket type.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A URL ready to call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// What to connect to (no user info; Twilio: no query).
    pub(crate) url: String,
    /// `Authorization: Basic …` from user info in the URL.
    pub(crate) authorization: Option<String>,
    /// The line rate the URL asks for (Exotel's `sample-rate`).
    pub(crate) sample_rate: Option<u32>,
}

/// Small buffers: telephony frames are a few KiB, and the 128 KiB defaults cost memory
/// and CPU at thousands of calls.
pub(crate) fn ws_config(buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(buffer)
        .write_buffer_size(buffer)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Checks `url` and adapts it as `dialect`'s carrier would.
pub(crate) fn prepare(
    url: &str,
    dialect: Dialect,
    sample_rate: Option<u32>,
) -> Result<Target, CallsimError> {
    let invalid = |reason: &str| CallsimError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("no scheme; expected ws:// or wss://"))?;
    if !matches!(scheme, "ws" | "wss") {
        return Err(invalid("the scheme must be ws or wss"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let tail = tail.split('#').next().unwrap_or_default();
    let (path, query) = match tail.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (tail, None),
    };
    let mut query: Vec<String> = query
        .unwrap_or_default()
        .split('&')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();

    let mut line_rate = None;
    match dialect {
        Dialect::Exotel => {
            let from_url = query.iter().find_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                matches!(k, "sample-rate" | "sample_rate").then_some(v)
            });
            match (from_url, sample_rate) {
                (Some(v), rate) => {
                    let parsed: u32 = v
                        .parse()
                        .map_err(|_| invalid("sample-rate is not a number"))?;
                    if rate.is_some_and(|r| r != parsed) {
                        return Err(CallsimError::InvalidOptions {
                            field: "sample_rate",
                            reason: format!(
                                "the URL asks for sample-rate={parsed}, the options for {}",
                                rate.unwrap_or_default()
                            ),
                        });
                    }
                    line_rate = Some(parsed);
                }
                (None, Some(rate)) => {
                    query.push(format!("sample-rate={rate}"));
                    line_rate = Some(rate);
                }
                (None, None) => {}
            }
        }
        Dialect::Twilio => {
            if !query.is_empty() {
                tracing::info!(
                    url,
                    "Twilio drops the query string of a stream URL; pass per-call data as params"
                );
            }
            query.clear();
            line_rate = sample_rate;
        }
        _ => line_rate = sample_rate,
    }

    let path = if path.is_empty() { "/" } else { path };
    let mut out = format!("{scheme}://{host}{path}");
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query.join("&"));
    }
    let authorization = userinfo.map(|user| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(percent_decode(user))
        )
    });
    Ok(Target {
        url: out,
        authorization,
        sample_rate: line_rate,
    })
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(b) = hex {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// How long a send may wait for the server to take the data.
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a socket operation with [`SEND_TIMEOUT`], so a server that stops reading ends
/// the call with an error instead of hanging it.
pub(crate) async fn timed<T>(
    fut: impl std::future::Future<Output = Result<T, tokio_tungstenite::tungstenite::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(SEND_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "sending timed out after {} s: the server is not reading",
            SEND_TIMEOUT.as_secs()
        )),
    }
}

/// Connects and upgrades; returns the socket and how long it took.
pub(crate) async fn connect(
    target: &Target,
    timeout: Duration,
    buffer: usize,
) -> Result<(Socket, Duration), CallsimError> {
    let mut request =
        target
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| CallsimError::InvalidUrl {
                url: target.url.clone(),
                reason: e.to_string(),
            })?;
    if let Some(auth) = &target.authorization {
        let value = HeaderValue::from_str(auth).map_err(|e| CallsimError::InvalidUrl {
            url: target.url.clone(),
            reason: format!("user info: {e}"),
        })?;
        request.headers_mut().insert("authorization", value);
    }
    let started = Instant::now();
    let connecting =
        tokio_tungstenite::connect_async_with_config(request, Some(ws_config(buffer)), true);
    match tokio::time::timeout(timeout, connecting).await {
        Ok(Ok((socket, _response))) => Ok((socket, started.elapsed())),
        Ok(Err(e)) => Err(CallsimError::Connect {
            url: target.url.clone(),
            source: Box::new(e),
        }),
        Err(_) => Err(CallsimError::ConnectTimeout {
            url: target.url.clone(),
            after: timeout,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exotel_reads_and_writes_the_sample_rate() {
        let t = prepare("ws://h:1/x?sample-rate=16000&a=b", Dialect::Exotel, None).expect("ok");
        assert_eq!(t.sample_rate, Some(16000));
        assert_eq!(t.url, "ws://h:1/x?sample-rate=16000&a=b");
        let t = prepare("ws://h:1/x", Dialect::Exotel, Some(24000)).expect("ok");
        assert_eq!(t.url, "ws://h:1/x?sample-rate=24000");
        assert!(prepare("ws://h/x?sample-rate=16000", Dialect::Exotel, Some(8000)).is_err());
    }

    #[test]
    fn twilio_drops_the_query_and_user_info_becomes_basic_auth() {
        let t = prepare("ws://key:tok%21@h:1/media?token=x", Dialect::Twilio, None).expect("ok");
        assert_eq!(t.url, "ws://h:1/media");
        // base64("key:tok!")
        assert_eq!(t.authorization.as_deref(), Some("Basic a2V5OnRvayE="));
        assert_eq!(
            prepare("ws://h:1", Dialect::Plivo, None).expect("ok").url,
            "ws://h:1/"
        );
        assert!(prepare("http://h/", Dialect::Plivo, None).is_err());
        assert!(prepare("h:1/x", Dialect::Plivo, None).is_err());
    }
}
