//! The HTTP endpoints: `POST /v1/text-to-speech/{voice_id}/stream` (chunked audio
//! body) and `POST /v1/text-to-speech/{voice_id}` (the whole body at once).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{
    HttpRequest, OutputFormat, Shared, Synth, error_response, fault_response, invalid_key,
    model_rejects_language, validation_error,
};

/// Fields the JSON body may carry.
const BODY_FIELDS: &[&str] = &[
    "text",
    "model_id",
    "language_code",
    "voice_settings",
    "pronunciation_dictionary_locators",
    "seed",
    "previous_text",
    "next_text",
    "previous_request_ids",
    "next_request_ids",
    "apply_text_normalization",
    "apply_language_text_normalization",
    "use_pvc_as_ivc",
];

const VOICE_SETTINGS_FIELDS: &[&str] = &[
    "stability",
    "similarity_boost",
    "style",
    "use_speaker_boost",
    "speed",
];

pub(super) async fn stream(
    state: State<Arc<Shared>>,
    path: Path<String>,
    query: Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(true, state, path, query, headers, body).await
}

pub(super) async fn convert(
    state: State<Arc<Shared>>,
    path: Path<String>,
    query: Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(false, state, path, query, headers, body).await
}

async fn handle(
    streaming: bool,
    State(shared): State<Arc<Shared>>,
    Path(voice_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let api_key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut query = BTreeMap::new();
    for (k, v) in pairs {
        query.insert(k, v);
    }
    let suffix = if streaming { "/stream" } else { "" };
    let mut record = HttpRequest {
        path: format!("/v1/text-to-speech/{voice_id}{suffix}"),
        query: query.clone(),
        api_key: api_key.clone(),
        body: json.clone(),
        status: 200,
    };
    let result = check(&shared, api_key.as_deref(), &headers, &query, &json);
    let (format, text) = match result {
        Ok(ok) => ok,
        Err(response) => {
            record.status = response.status().as_u16();
            shared.http.push(record);
            return response;
        }
    };
    shared.http.push(record);

    let mut synth = Synth::new(format, &shared.options);
    let pieces = synth.pieces(&text);
    let cost = text.chars().count();
    let content_type = match format {
        OutputFormat::Compressed(_) => "audio/mpeg",
        _ => "application/octet-stream",
    };
    let mut response = if streaming {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
        let options = shared.options.clone();
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            pause(options.faults.latency).await;
            for (i, piece) in pieces.into_iter().enumerate() {
                if i > 0 {
                    pause(options.chunk_interval).await;
                }
                if tx.send(Ok(Bytes::from(piece))).await.is_err() {
                    return;
                }
                let sent = u32::try_from(i + 1).unwrap_or(u32::MAX);
                if shared.cut_after(sent) {
                    let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "cut");
                    let _ = tx.send(Err(cut)).await;
                    return;
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Body::from_stream(stream).into_response()
    } else {
        pause(shared.options.faults.latency).await;
        Body::from(pieces.concat()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert("character-cost", HeaderValue::from(cost));
    headers.insert("request-id", HeaderValue::from_static("emulated-request"));
    response
}

/// Validates the request; gives the format and text to synthesise.
#[allow(
    clippy::result_large_err,
    reason = "a refusal is the response itself, once per request"
)]
fn check(
    shared: &Shared,
    api_key: Option<&str>,
    headers: &HeaderMap,
    query: &BTreeMap<String, String>,
    json: &Value,
) -> Result<(OutputFormat, String), Response> {
    if shared.should_fail() {
        return Err(fault_response(shared.options.faults.status));
    }
    if api_key != Some(shared.options.api_key.as_str()) {
        return Err(invalid_key());
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(validation_error(&["body"], "expected application/json"));
    }
    let mut format = OutputFormat::Compressed(16);
    for (key, value) in query {
        let bad = || validation_error(&["query", key], &format!("invalid value {value:?}"));
        match key.as_str() {
            "output_format" => {
                if !OutputFormat::HTTP.contains(&value.as_str()) {
                    return Err(bad());
                }
                format = OutputFormat::parse(value).ok_or_else(bad)?;
            }
            "optimize_streaming_latency"
                if matches!(value.as_str(), "0" | "1" | "2" | "3" | "4") => {}
            "enable_logging" if matches!(value.as_str(), "true" | "false") => {}
            "optimize_streaming_latency" | "enable_logging" => return Err(bad()),
            _ => return Err(validation_error(&["query", key], "unknown query parameter")),
        }
    }
    let Some(body) = json.as_object() else {
        return Err(validation_error(&["body"], "expected a JSON object"));
    };
    if let Some(field) = body.keys().find(|k| !BODY_FIELDS.contains(&k.as_str())) {
        return Err(validation_error(
            &["body", field],
            "extra fields not permitted",
        ));
    }
    let text = match body.get("text") {
        Some(Value::String(t)) if !t.trim().is_empty() => t.clone(),
        _ => return Err(validation_error(&["body", "text"], "field required")),
    };
    if let Some(settings) = body.get("voice_settings").filter(|v| !v.is_null()) {
        let ok = settings.as_object().is_some_and(|s| {
            s.keys()
                .all(|k| VOICE_SETTINGS_FIELDS.contains(&k.as_str()))
        });
        if !ok {
            return Err(validation_error(
                &["body", "voice_settings"],
                "invalid voice settings",
            ));
        }
    }
    let model = body
        .get("model_id")
        .and_then(Value::as_str)
        .unwrap_or("eleven_multilingual_v2");
    if body.get("language_code").is_some_and(|v| !v.is_null()) && model_rejects_language(model) {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "unsupported_language",
            &format!("Model {model} does not support language_code"),
        ));
    }
    if model.starts_with("eleven_v3") && body.get("previous_text").is_some_and(|v| !v.is_null()) {
        return Err(error_response(
            StatusCode::BAD_REQUEST,
            "invalid_parameters",
            "previous_text is not supported with this model",
        ));
    }
    Ok((format, text))
}

/// Sleeps for `delay`, or not at all when it is zero (tokio's timer would still wait for
/// its next millisecond tick).
async fn pause(delay: Duration) {
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
}
