//! `/webhook`: carriers' HTTP callbacks about calls (Twilio status callbacks,
//! Exotel passthru, ...) onto the event bus.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value};

use crate::bus::{EventBus, EventKind};

/// Largest callback body accepted, in bytes.
const MAX_BODY: usize = 64 * 1024;

/// Fields a carrier names its call id with, in the order they are tried.
pub const CALL_ID_FIELDS: [&str; 10] = [
    "CallSid",
    "call_sid",
    "callSid",
    "CallUUID",
    "call_uuid",
    "CallUuid",
    "callId",
    "call_id",
    "CallId",
    "call_control_id",
];

/// The call id an event is filed under when a callback names none.
pub const UNKNOWN_CALL: &str = "webhook";

/// A router serving `GET` and `POST` `path`: the query string and a JSON or
/// form-encoded body become one JSON object, published on `bus` as
/// [`EventKind::Webhook`] under the call id taken from a known field
/// ([`CALL_ID_FIELDS`]), else [`UNKNOWN_CALL`]. Answers 200 `ok`, or 400 for a body
/// that claims to be JSON and is not.
pub fn webhook_router(path: &str, bus: EventBus) -> Router {
    Router::new()
        .route(path, get(webhook).post(webhook))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(bus)
}

async fn webhook(
    State(bus): State<EventBus>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let payload = match payload(uri.query(), &headers, &body) {
        Ok(payload) => payload,
        Err(e) => {
            tracing::warn!(error = %e, "webhook body refused: not JSON");
            return (StatusCode::BAD_REQUEST, format!("invalid JSON: {e}\n")).into_response();
        }
    };
    let call_id = call_id(&payload);
    let status = ["CallStatus", "Status", "status", "event", "EventType"]
        .iter()
        .find_map(|k| payload.get(*k).and_then(Value::as_str));
    tracing::info!(
        call_id = call_id.as_deref().unwrap_or(UNKNOWN_CALL),
        status,
        fields = payload.len(),
        "webhook received"
    );
    let fields_json = serde_json::Value::Object(payload.clone());
    tracing::debug!(payload = %fields_json, "webhook payload");
    let call_id: Arc<str> = Arc::from(call_id.as_deref().unwrap_or(UNKNOWN_CALL));
    bus.publish(
        &call_id,
        EventKind::Webhook {
            payload: Value::Object(payload),
        },
    );
    (StatusCode::OK, "ok\n").into_response()
}

/// The callback's fields: the query string's, then the body's (JSON object, or form).
fn payload(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Map<String, Value>, serde_json::Error> {
    let mut fields = Map::new();
    if let Some(query) = query {
        parse_form(query, &mut fields);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        return Ok(fields);
    }
    if content_type.contains("json") || (content_type.is_empty() && trimmed.starts_with(b"{")) {
        match serde_json::from_slice::<Value>(body)? {
            Value::Object(map) => fields.extend(map),
            other => {
                fields.insert("body".to_owned(), other);
            }
        }
    } else {
        parse_form(&String::from_utf8_lossy(body), &mut fields);
    }
    Ok(fields)
}

/// The call id named by a known field (string or number).
fn call_id(payload: &Map<String, Value>) -> Option<String> {
    CALL_ID_FIELDS.iter().find_map(|k| match payload.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `a=1&b=x+y` into `fields` (a repeated key keeps its last value).
fn parse_form(text: &str, fields: &mut Map<String, Value>) {
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(key);
        if !key.is_empty() {
            fields.insert(key, Value::String(percent_decode(value)));
        }
    }
}

/// Form decoding: `+` is a space, `%XX` a byte; bad escapes are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|&h| hex(h)),
                bytes.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_json_and_queries_become_one_object() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().expect("header"),
        );
        let p = payload(
            Some("tenant=a%20b"),
            &headers,
            b"CallSid=CA123&CallStatus=in-progress&From=%2B15550001111&Note=x+y",
        )
        .expect("form");
        assert_eq!(p["tenant"], "a b");
        assert_eq!(p["From"], "+15550001111");
        assert_eq!(p["Note"], "x y");
        assert_eq!(call_id(&p).as_deref(), Some("CA123"));

        let p = payload(None, &HeaderMap::new(), br#"{"callId": 42, "event": "x"}"#).expect("json");
        assert_eq!(call_id(&p).as_deref(), Some("42"));
        assert!(payload(None, &HeaderMap::new(), b"{not json").is_err());
        let p = payload(Some("CallUUID=u-1"), &HeaderMap::new(), b"").expect("query only");
        assert_eq!(call_id(&p).as_deref(), Some("u-1"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
    }
}
