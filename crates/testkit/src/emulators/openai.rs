//! An OpenAI HTTP API emulator: `POST /v1/chat/completions` (streamed and not),
//! `POST /v1/audio/transcriptions` and `POST /v1/audio/speech`, written from the
//! published API shapes (`../shared/specs/providers.md` §5), not from any adapter.
//!
//! Strict the way the service is:
//! - `Authorization: Bearer <key>` is required (401 with OpenAI's error body when it is
//!   missing or wrong), unless [`Config::api_key`] is `None` (a local server).
//! - Unknown paths and methods other than POST: 404 `Invalid URL (METHOD /path)`.
//! - Unknown top-level fields: 400 `Unrecognized request argument supplied: name`.
//!   Missing required fields (`model`, `messages`, `input`, `voice`, `file`): 400.
//! - Chat: message roles and shapes are checked; a `tool` message must answer a
//!   `tool_calls` id of the assistant message before it, and every such id must be
//!   answered; tools must be `{"type":"function","function":{"name":…}}` with a valid
//!   name; `stream_options` needs `stream: true`; `parallel_tool_calls` and
//!   `tool_choice` need `tools`; `temperature` must be within 0–2.
//! - Transcription: `multipart/form-data` only, with a `file` whose name has a
//!   supported extension; a `.wav` must parse as a WAV and hold at least 0.1 s;
//!   `language` must be ISO-639-1 (`en`, not `en-US`); `gpt-4o*` models take only
//!   `response_format` `json` or `text`.
//! - Speech: `model`, `input` (at most 4,096 characters) and `voice` (a known voice or
//!   `{"id":…}`) are required; `speed` within 0.25–4; `instructions` are refused for
//!   `tts-1`/`tts-1-hd`.
//!
//! Error bodies have OpenAI's shape: `{"error":{"message","type","param","code"}}`.
//!
//! Knobs ([`Config`]): the key, [`Faults`] (latency before each response;
//! `fail_first` requests answered with `status`, 429 carrying `Retry-After`;
//! `disconnect_after` cuts the first streamed body after that many SSE events or
//! audio chunks, without `[DONE]`), scripted chat replies ([`ChatScript`]: text
//! chunks, parallel tool calls split into argument fragments, mid-stream errors),
//! scripted transcripts, the pause between streamed chunks, and how much speech audio
//! a character makes. Speech audio is a deterministic 440 Hz tone, 24 kHz PCM16,
//! [`Config::speech_ms_per_char`] per input character, in chunks of an odd byte
//! count so that clients must carry half samples across chunks.
//!
//! Limits: transcription `stream=true` and speech `stream_format: "sse"` are refused
//! with 400 (not emulated); speech is produced as `pcm` or `wav` only (other formats
//! get 400 naming the emulator).
//!
//! Everything received is recorded ([`OpenAiEmulator::requests`]), and every streamed
//! body's fate ([`OpenAiEmulator::streams`]): completed, cut by the emulator, or closed
//! by the client early.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::{Faults, Recorded, Running};

/// The key the emulator expects by default.
pub const API_KEY: &str = "sk-test-voxline-emulator";

/// The largest upload accepted (the service's limit is 25 MB).
const MAX_UPLOAD: usize = 25 * 1024 * 1024;

const CHAT_FIELDS: &[&str] = &[
    "audio",
    "frequency_penalty",
    "function_call",
    "functions",
    "logit_bias",
    "logprobs",
    "max_completion_tokens",
    "max_tokens",
    "messages",
    "metadata",
    "modalities",
    "model",
    "n",
    "parallel_tool_calls",
    "prediction",
    "presence_penalty",
    "prompt_cache_key",
    "prompt_cache_retention",
    "reasoning_effort",
    "response_format",
    "safety_identifier",
    "seed",
    "service_tier",
    "stop",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "tool_choice",
    "tools",
    "top_logprobs",
    "top_p",
    "user",
    "verbosity",
    "web_search_options",
];

const TRANSCRIPTION_FIELDS: &[&str] = &[
    "file",
    "model",
    "chunking_strategy",
    "include[]",
    "known_speaker_names[]",
    "known_speaker_references[]",
    "language",
    "prompt",
    "response_format",
    "stream",
    "temperature",
    "timestamp_granularities[]",
];

const TRANSCRIPTION_MODELS: &[&str] = &[
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
    "gpt-4o-transcribe-diarize",
];

const AUDIO_EXTENSIONS: &[&str] = &[
    "flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm",
];

const SPEECH_FIELDS: &[&str] = &[
    "model",
    "input",
    "voice",
    "instructions",
    "response_format",
    "speed",
    "stream_format",
];

const SPEECH_MODELS: &[&str] = &[
    "tts-1",
    "tts-1-hd",
    "gpt-4o-mini-tts",
    "gpt-4o-mini-tts-2025-12-15",
];

const VOICES: &[&str] = &[
    "alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse",
    "marin", "cedar",
];

/// The speech emulator's output rate (`response_format: "pcm"`).
pub const SPEECH_SAMPLE_RATE: u32 = 24_000;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The key required as `Authorization: Bearer <key>`; `None` requires none.
    pub api_key: Option<String>,
    /// Latency, failures and disconnects.
    pub faults: Faults,
    /// `Retry-After` (whole seconds) sent with 429 answers; `None` sends none.
    pub retry_after: Option<Duration>,
    /// Chat replies, one per chat request in order; the last one repeats.
    pub chat: Vec<ChatScript>,
    /// Transcripts, one per transcription request in order; `""` once used up.
    pub transcripts: Vec<String>,
    /// Pause before each streamed chunk (SSE event or audio chunk).
    pub chunk_interval: Duration,
    /// Send an SSE comment line (`: keepalive`) before the first chat chunk.
    pub keepalive_comment: bool,
    /// Milliseconds of speech audio per input character.
    pub speech_ms_per_char: u32,
    /// Bytes per streamed speech chunk (odd by default, so chunks split samples).
    pub speech_chunk_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            api_key: Some(API_KEY.to_owned()),
            faults: Faults::none(),
            retry_after: Some(Duration::from_secs(1)),
            chat: vec![ChatScript::text(["Hello", "! How can", " I help?"])],
            transcripts: Vec::new(),
            chunk_interval: Duration::ZERO,
            keepalive_comment: true,
            speech_ms_per_char: 50,
            speech_chunk_bytes: 4801,
        }
    }
}

/// One scripted chat reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatScript {
    /// What is streamed, in order.
    pub steps: Vec<ChatStep>,
    /// The `finish_reason` of the last choice chunk.
    pub finish_reason: String,
    /// `prompt_tokens` in the usage chunk.
    pub prompt_tokens: u64,
    /// `completion_tokens` in the usage chunk.
    pub completion_tokens: u64,
}

/// A part of a scripted chat reply.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatStep {
    /// One chunk with `delta.content`.
    Text(String),
    /// Tool calls: one chunk per call with its `index`, `id` and `function.name`,
    /// then the argument fragments, one per chunk, interleaved across the calls.
    ToolCalls(Vec<ScriptedToolCall>),
    /// A mid-stream `{"error":{…}}` payload; the stream then ends without `[DONE]`.
    Error {
        /// The error's message.
        message: String,
        /// Its `type` (`server_error`, ...).
        kind: String,
    },
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptedToolCall {
    /// The call id (`call_…`).
    pub id: String,
    /// The function name.
    pub name: String,
    /// The arguments JSON, in the fragments it is streamed in.
    pub fragments: Vec<String>,
}

impl ScriptedToolCall {
    /// A call whose `arguments` arrive in `fragments`.
    pub fn new<S: Into<String>>(
        id: impl Into<String>,
        name: impl Into<String>,
        fragments: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            fragments: fragments.into_iter().map(Into::into).collect(),
        }
    }
}

impl ChatScript {
    /// A text reply in these chunks, `finish_reason: "stop"`.
    pub fn text<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        let steps: Vec<ChatStep> = chunks
            .into_iter()
            .map(|c| ChatStep::Text(c.into()))
            .collect();
        let completion_tokens = steps.len() as u64;
        Self {
            steps,
            finish_reason: "stop".to_owned(),
            prompt_tokens: 42,
            completion_tokens,
        }
    }

    /// A reply calling `calls` in parallel, `finish_reason: "tool_calls"`.
    pub fn tool_calls(calls: Vec<ScriptedToolCall>) -> Self {
        let completion_tokens = calls.iter().map(|c| c.fragments.len() as u64 + 2).sum();
        Self {
            steps: vec![ChatStep::ToolCalls(calls)],
            finish_reason: "tool_calls".to_owned(),
            prompt_tokens: 42,
            completion_tokens,
        }
    }

    /// The same reply with `text` streamed before everything else.
    pub fn preceded_by(mut self, text: impl Into<String>) -> Self {
        self.steps.insert(0, ChatStep::Text(text.into()));
        self
    }

    /// The same reply with these usage figures.
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.prompt_tokens = prompt_tokens;
        self.completion_tokens = completion_tokens;
        self
    }
}

/// A request as the emulator received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; for multipart, an object of the text fields (the file is in
    /// [`file`](Self::file)); `Null` when the body was not parsed.
    pub body: Value,
    /// The uploaded `file` part of a multipart request.
    pub file: Option<UploadedFile>,
    /// The status the emulator answered with.
    pub status: u16,
}

impl RecordedRequest {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A file part of a multipart upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadedFile {
    /// The part's `filename`.
    pub filename: Option<String>,
    /// The part's `Content-Type`.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Bytes,
}

/// How a streamed response body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Every chunk was handed to the connection.
    Completed,
    /// The emulator cut it ([`Faults::disconnect_after`]).
    Cut,
    /// The client closed the connection before the end.
    ClientClosed,
}

/// A streamed response body and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// The request path.
    pub path: String,
    /// Chunks handed to the connection.
    pub chunks_sent: u32,
    /// How it ended.
    pub end: StreamEnd,
}

/// A running emulator; it stops when dropped.
#[derive(Debug)]
pub struct OpenAiEmulator {
    running: Running,
    /// Every request received, in order.
    pub requests: Recorded<RecordedRequest>,
    /// Every streamed body, once it ended.
    pub streams: Recorded<StreamRecord>,
}

impl OpenAiEmulator {
    /// Starts an emulator with `config` on a random loopback port.
    pub async fn start(config: Config) -> Self {
        let requests = Recorded::default();
        let streams = Recorded::default();
        let shared = Arc::new(Shared {
            fail_remaining: AtomicU32::new(config.faults.fail_first),
            disconnect_used: AtomicBool::new(false),
            chat_served: AtomicU32::new(0),
            transcripts: Mutex::new(config.transcripts.iter().cloned().collect()),
            next_id: AtomicU64::new(1),
            config,
            requests: requests.clone(),
            streams: streams.clone(),
        });
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(MAX_UPLOAD))
            .with_state(shared);
        Self {
            running: Running::serve(router).await,
            requests,
            streams,
        }
    }

    /// `http://127.0.0.1:PORT/v1`: the base URL to configure a client with.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.running.http_url())
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        self.running.http_url()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.running.connections()
    }

    /// The recorded requests to `path` (e.g. `/v1/chat/completions`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests
            .snapshot()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

#[derive(Debug)]
struct Shared {
    config: Config,
    fail_remaining: AtomicU32,
    disconnect_used: AtomicBool,
    chat_served: AtomicU32,
    transcripts: Mutex<VecDeque<String>>,
    next_id: AtomicU64,
    requests: Recorded<RecordedRequest>,
    streams: Recorded<StreamRecord>,
}

impl Shared {
    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// An OpenAI-shaped error answer.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    param: Option<String>,
    code: Option<&'static str>,
    retry_after: Option<Duration>,
}

impl ApiError {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    fn missing(param: &str) -> Self {
        Self::invalid(format!("Missing required parameter: '{param}'."))
            .param(param)
            .code("missing_required_parameter")
    }

    fn no_model() -> Self {
        Self::invalid("you must provide a model parameter")
    }

    fn unknown_model(model: &str) -> Self {
        Self::invalid(format!(
            "The model `{model}` does not exist or you do not have access to it."
        ))
        .status(StatusCode::NOT_FOUND)
        .code("model_not_found")
    }

    fn unrecognized(mut names: Vec<String>) -> Self {
        names.sort();
        if names.len() == 1 {
            Self::invalid(format!(
                "Unrecognized request argument supplied: {}",
                names[0]
            ))
        } else {
            Self::invalid(format!(
                "Unrecognized request arguments supplied: {}",
                names.join(", ")
            ))
        }
    }

    fn invalid_value(param: &str, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| format!("'{s}'")).collect();
        Self::invalid(format!(
            "Invalid value: '{value}'. Supported values are: {}.",
            list.join(", ")
        ))
        .param(param)
        .code("invalid_value")
    }

    fn fault(status: u16, retry_after: Option<Duration>) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (message, kind, code) = match status.as_u16() {
            401 => (
                "Incorrect API key provided: sk-te***ator. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            403 => (
                "You are not allowed to sample from this model",
                "invalid_request_error",
                None,
            ),
            429 => (
                "Rate limit reached for requests. Please try again in 1s.",
                "requests",
                Some("rate_limit_exceeded"),
            ),
            503 => (
                "The engine is currently overloaded, please try again later.",
                "server_error",
                None,
            ),
            _ => (
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            ),
        };
        Self {
            status,
            message: message.to_owned(),
            kind,
            param: None,
            code,
            retry_after: if status == StatusCode::TOO_MANY_REQUESTS {
                retry_after
            } else {
                None
            },
        }
    }

    fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
        }
        response
    }
}

/// What a handler produced: an answer plus, for the record, the body it read.
struct Handled {
    response: Result<Response, ApiError>,
    body: Value,
    file: Option<UploadedFile>,
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    let recorded_headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let handled = route(&shared, &method, &path, &headers, request).await;
    let response = match handled.response {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    shared.requests.push(RecordedRequest {
        method: method.to_string(),
        path,
        headers: recorded_headers,
        body: handled.body,
        file: handled.file,
        status: response.status().as_u16(),
    });
    if !shared.config.faults.latency.is_zero() {
        tokio::time::sleep(shared.config.faults.latency).await;
    }
    let mut response = response;
    let id = format!("req_{:016x}", shared.id());
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    request: Request,
) -> Handled {
    let fail = |error: ApiError| Handled {
        response: Err(error),
        body: Value::Null,
        file: None,
    };
    let known = matches!(
        path,
        "/v1/chat/completions" | "/v1/audio/transcriptions" | "/v1/audio/speech"
    );
    if !known || method != Method::POST {
        return fail(
            ApiError::invalid(format!("Invalid URL ({method} {path})"))
                .status(StatusCode::NOT_FOUND),
        );
    }
    if let Err(e) = check_auth(&shared.config, headers) {
        return fail(e);
    }
    if shared
        .fail_remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return fail(ApiError::fault(
            shared.config.faults.status,
            shared.config.retry_after,
        ));
    }
    match path {
        "/v1/audio/transcriptions" => transcriptions(shared, headers, request).await,
        _ => {
            let bytes = match axum::body::to_bytes(request.into_body(), MAX_UPLOAD).await {
                Ok(bytes) => bytes,
                Err(_) => {
                    return fail(
                        ApiError::invalid("Request body too large")
                            .status(StatusCode::PAYLOAD_TOO_LARGE),
                    );
                }
            };
            let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
                return Handled {
                    response: Err(ApiError::invalid(
                        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
                    )),
                    body: Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                    file: None,
                };
            };
            let response = match body.as_object() {
                None => Err(ApiError::invalid(format!(
                    "Invalid type for request body: expected an object, but got {} instead.",
                    json_type(&body)
                ))),
                Some(object) if path == "/v1/chat/completions" => chat(shared, object),
                Some(object) => speech(shared, object),
            };
            Handled {
                response,
                body,
                file: None,
            }
        }
    }
}

fn check_auth(config: &Config, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = &config.api_key else {
        return Ok(());
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        None | Some("") => Err(ApiError::invalid(
            "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
        )
        .status(StatusCode::UNAUTHORIZED)),
        Some(key) if key == expected => Ok(()),
        Some(key) => Err(ApiError::invalid(format!(
            "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
            redact(key)
        ))
        .status(StatusCode::UNAUTHORIZED)
        .code("invalid_api_key")),
    }
}

fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn check_fields(object: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    let unknown: Vec<String> = object
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .cloned()
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::unrecognized(unknown))
    }
}

fn string_field<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    param: &str,
) -> Result<Option<&'a str>, ApiError> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ApiError::invalid(format!(
            "Invalid type for '{param}': expected a string, but got {} instead.",
            json_type(other)
        ))
        .param(param)
        .code("invalid_type")),
    }
}

fn number_in(
    object: &Map<String, Value>,
    name: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, ApiError> {
    let Some(value) = object.get(name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(n) = value.as_f64() else {
        return Err(ApiError::invalid(format!(
            "Invalid type for '{name}': expected a decimal, but got {} instead.",
            json_type(value)
        ))
        .param(name)
        .code("invalid_type"));
    };
    if n < min {
        return Err(ApiError::invalid(format!(
            "Invalid '{name}': decimal below minimum value. Expected a value >= {min}, but got {n} instead."
        ))
        .param(name)
        .code("decimal_below_min_value"));
    }
    if n > max {
        return Err(ApiError::invalid(format!(
            "Invalid '{name}': decimal above maximum value. Expected a value <= {max}, but got {n} instead."
        ))
        .param(name)
        .code("decimal_above_max_value"));
    }
    Ok(Some(n))
}

// ---------------------------------------------------------------------------------
// Chat completions

fn chat(shared: &Arc<Shared>, body: &Map<String, Value>) -> Result<Response, ApiError> {
    check_fields(body, CHAT_FIELDS)?;
    let model = string_field(body, "model", "model")?.ok_or_else(ApiError::no_model)?;
    let messages =
        match body.get("messages") {
            None | Some(Value::Null) => return Err(ApiError::missing("messages")),
            Some(Value::Array(m)) => m,
            Some(other) => return Err(ApiError::invalid(format!(
                "Invalid type for 'messages': expected an array of objects, but got {} instead.",
                json_type(other)
            ))
            .param("messages")
            .code("invalid_type")),
        };
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        )
        .param("messages")
        .code("empty_array"));
    }
    check_messages(messages)?;
    let has_tools = match body.get("tools") {
        None | Some(Value::Null) => false,
        Some(Value::Array(tools)) => {
            check_tools(tools)?;
            !tools.is_empty()
        }
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid type for 'tools': expected an array of objects, but got {} instead.",
                json_type(other)
            ))
            .param("tools")
            .code("invalid_type"));
        }
    };
    for name in ["parallel_tool_calls", "tool_choice"] {
        if body.contains_key(name) && !has_tools {
            return Err(ApiError::invalid(format!(
                "Invalid value for '{name}': '{name}' is only allowed when 'tools' are specified."
            ))
            .param(name));
        }
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid type for 'stream': expected a boolean, but got {} instead.",
                json_type(other)
            ))
            .param("stream")
            .code("invalid_type"));
        }
    };
    let mut include_usage = false;
    let mut include_obfuscation = true;
    if let Some(options) = body.get("stream_options").filter(|v| !v.is_null()) {
        if !stream {
            return Err(ApiError::invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
            .param("stream_options"));
        }
        let Some(options) = options.as_object() else {
            return Err(ApiError::invalid(
                "Invalid type for 'stream_options': expected an object.",
            )
            .param("stream_options"));
        };
        let unknown: Vec<String> = options
            .keys()
            .filter(|k| !["include_usage", "include_obfuscation"].contains(&k.as_str()))
            .map(|k| format!("stream_options.{k}"))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::unrecognized(unknown));
        }
        include_usage = options.get("include_usage") == Some(&Value::Bool(true));
        include_obfuscation = options.get("include_obfuscation") != Some(&Value::Bool(false));
    }
    number_in(body, "temperature", 0.0, 2.0)?;
    for name in ["max_completion_tokens", "max_tokens"] {
        if let Some(value) = body.get(name).filter(|v| !v.is_null())
            && value.as_u64().is_none_or(|n| n == 0)
        {
            return Err(ApiError::invalid(format!(
                "Invalid '{name}': expected a positive integer, but got {value} instead."
            ))
            .param(name));
        }
    }

    let served = shared.chat_served.fetch_add(1, Ordering::SeqCst) as usize;
    let script = shared
        .config
        .chat
        .get(served)
        .or_else(|| shared.config.chat.last())
        .cloned()
        .unwrap_or_else(|| ChatScript::text(["OK"]));
    let id = format!("chatcmpl-emu{}", shared.id());
    if !stream {
        return Ok(axum::Json(whole_completion(&script, &id, model)).into_response());
    }
    let mut events = Vec::new();
    if shared.config.keepalive_comment {
        events.push(Bytes::from_static(b": keepalive\n\n"));
    }
    events.extend(
        chunks(&script, &id, model, include_usage, include_obfuscation)
            .into_iter()
            .map(|data| Bytes::from(format!("data: {data}\n\n"))),
    );
    let body = stream_body(shared, "/v1/chat/completions", events);
    Ok((
        [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
        ],
        body,
    )
        .into_response())
}

fn check_messages(messages: &[Value]) -> Result<(), ApiError> {
    const ROLES: &[&str] = &[
        "system",
        "assistant",
        "user",
        "function",
        "tool",
        "developer",
    ];
    // Tool call ids of the latest assistant message still waiting for an answer.
    let mut open: Vec<String> = Vec::new();
    let mut answerable: HashSet<String> = HashSet::new();
    for (i, message) in messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let Some(message) = message.as_object() else {
            return Err(ApiError::invalid(format!(
                "Invalid type for '{param}': expected an object, but got {} instead.",
                json_type(message)
            ))
            .param(param)
            .code("invalid_type"));
        };
        let role = string_field(message, "role", &format!("{param}.role"))?
            .ok_or_else(|| ApiError::missing(&format!("{param}.role")))?;
        if !ROLES.contains(&role) {
            return Err(ApiError::invalid_value(
                &format!("{param}.role"),
                role,
                ROLES,
            ));
        }
        let allowed: &[&str] = match role {
            "assistant" => &[
                "role",
                "content",
                "name",
                "tool_calls",
                "refusal",
                "audio",
                "function_call",
            ],
            "tool" => &["role", "content", "tool_call_id"],
            _ => &["role", "content", "name"],
        };
        let unknown: Vec<String> = message
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| format!("{param}.{k}"))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::unrecognized(unknown));
        }
        let content = message.get("content").filter(|c| !c.is_null());
        if let Some(content) = content
            && !content.is_string()
            && !content.is_array()
        {
            return Err(ApiError::invalid(format!(
                "Invalid type for '{param}.content': expected one of a string or array of objects, but got {} instead.",
                json_type(content)
            ))
            .param(format!("{param}.content"))
            .code("invalid_type"));
        }
        if role != "tool" && !open.is_empty() {
            return Err(ApiError::invalid(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                open.join(", ")
            ))
            .param(format!("{param}.role")));
        }
        match role {
            "assistant" => {
                let calls = match message.get("tool_calls") {
                    None | Some(Value::Null) => &[][..],
                    Some(Value::Array(calls)) => calls.as_slice(),
                    Some(_) => {
                        return Err(ApiError::invalid(format!(
                            "Invalid type for '{param}.tool_calls': expected an array."
                        ))
                        .param(format!("{param}.tool_calls")));
                    }
                };
                if content.is_none() && calls.is_empty() {
                    return Err(ApiError::missing(&format!("{param}.content")));
                }
                answerable.clear();
                for (j, call) in calls.iter().enumerate() {
                    let id = check_tool_call(call, &format!("{param}.tool_calls[{j}]"))?;
                    open.push(id.clone());
                    answerable.insert(id);
                }
            }
            "tool" => {
                let id = string_field(message, "tool_call_id", &format!("{param}.tool_call_id"))?
                    .ok_or_else(|| ApiError::missing(&format!("{param}.tool_call_id")))?;
                if content.is_none() {
                    return Err(ApiError::missing(&format!("{param}.content")));
                }
                if !answerable.contains(id) {
                    return Err(ApiError::invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    )
                    .param(format!("{param}.role")));
                }
                open.retain(|o| o != id);
            }
            _ => {
                answerable.clear();
                if content.is_none() {
                    return Err(ApiError::missing(&format!("{param}.content")));
                }
            }
        }
    }
    if !open.is_empty() {
        return Err(ApiError::invalid(format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            open.join(", ")
        ))
        .param("messages"));
    }
    Ok(())
}

fn check_tool_call(call: &Value, param: &str) -> Result<String, ApiError> {
    let Some(call) = call.as_object() else {
        return Err(
            ApiError::invalid(format!("Invalid type for '{param}': expected an object."))
                .param(param),
        );
    };
    check_nested(call, &["id", "type", "function"], param)?;
    let id = string_field(call, "id", &format!("{param}.id"))?
        .ok_or_else(|| ApiError::missing(&format!("{param}.id")))?;
    let kind = string_field(call, "type", &format!("{param}.type"))?
        .ok_or_else(|| ApiError::missing(&format!("{param}.type")))?;
    if kind != "function" {
        return Err(ApiError::invalid_value(
            &format!("{param}.type"),
            kind,
            &["function"],
        ));
    }
    let Some(function) = call.get("function").and_then(Value::as_object) else {
        return Err(ApiError::missing(&format!("{param}.function")));
    };
    check_nested(
        function,
        &["name", "arguments"],
        &format!("{param}.function"),
    )?;
    string_field(function, "name", &format!("{param}.function.name"))?
        .ok_or_else(|| ApiError::missing(&format!("{param}.function.name")))?;
    string_field(
        function,
        "arguments",
        &format!("{param}.function.arguments"),
    )?
    .ok_or_else(|| ApiError::missing(&format!("{param}.function.arguments")))?;
    Ok(id.to_owned())
}

fn check_nested(
    object: &Map<String, Value>,
    allowed: &[&str],
    param: &str,
) -> Result<(), ApiError> {
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "Additional properties are not allowed ('{key}' was unexpected) - '{param}'"
        ))
        .param(param));
    }
    Ok(())
}

fn check_tools(tools: &[Value]) -> Result<(), ApiError> {
    for (i, tool) in tools.iter().enumerate() {
        let param = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(ApiError::invalid(format!(
                "Invalid type for '{param}': expected an object."
            ))
            .param(param));
        };
        check_nested(tool, &["type", "function"], &param)?;
        let kind = string_field(tool, "type", &format!("{param}.type"))?
            .ok_or_else(|| ApiError::missing(&format!("{param}.type")))?;
        if kind != "function" {
            return Err(ApiError::invalid_value(
                &format!("{param}.type"),
                kind,
                &["function", "custom"],
            ));
        }
        let Some(function) = tool.get("function").and_then(Value::as_object) else {
            return Err(ApiError::missing(&format!("{param}.function")));
        };
        check_nested(
            function,
            &["name", "description", "parameters", "strict"],
            &format!("{param}.function"),
        )?;
        let name = string_field(function, "name", &format!("{param}.function.name"))?
            .ok_or_else(|| ApiError::missing(&format!("{param}.function.name")))?;
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(ApiError::invalid(format!(
                "Invalid '{param}.function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            ))
            .param(format!("{param}.function.name"))
            .code("invalid_value"));
        }
        if let Some(parameters) = function.get("parameters")
            && !parameters.is_object()
        {
            return Err(ApiError::invalid(format!(
                "Invalid type for '{param}.function.parameters': expected an object, but got {} instead.",
                json_type(parameters)
            ))
            .param(format!("{param}.function.parameters"))
            .code("invalid_type"));
        }
    }
    Ok(())
}

/// The `data:` payloads of a streamed reply, `[DONE]` last (unless it errors).
fn chunks(
    script: &ChatScript,
    id: &str,
    model: &str,
    include_usage: bool,
    include_obfuscation: bool,
) -> Vec<String> {
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut c = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 1_760_000_000,
            "model": model,
            "service_tier": "default",
            "system_fingerprint": "fp_emulator",
            "choices": choices,
        });
        if include_usage {
            c["usage"] = usage.unwrap_or(Value::Null);
        }
        if include_obfuscation {
            c["obfuscation"] = json!("x9Q");
        }
        c.to_string()
    };
    let delta = |delta: Value, finish: Option<&str>| json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]);
    let mut out = vec![chunk(
        delta(
            json!({"role": "assistant", "content": "", "refusal": null}),
            None,
        ),
        None,
    )];
    for step in &script.steps {
        match step {
            ChatStep::Text(text) => out.push(chunk(delta(json!({"content": text}), None), None)),
            ChatStep::ToolCalls(calls) => {
                for (index, call) in calls.iter().enumerate() {
                    out.push(chunk(
                        delta(
                            json!({"tool_calls": [{"index": index, "id": call.id, "type": "function",
                                "function": {"name": call.name, "arguments": ""}}]}),
                            None,
                        ),
                        None,
                    ));
                }
                // Interleave the argument fragments across the calls.
                let longest = calls.iter().map(|c| c.fragments.len()).max().unwrap_or(0);
                for round in 0..longest {
                    for (index, call) in calls.iter().enumerate() {
                        if let Some(fragment) = call.fragments.get(round) {
                            out.push(chunk(
                                delta(
                                    json!({"tool_calls": [{"index": index,
                                        "function": {"arguments": fragment}}]}),
                                    None,
                                ),
                                None,
                            ));
                        }
                    }
                }
            }
            ChatStep::Error { message, kind } => {
                out.push(
                    json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
                        .to_string(),
                );
                return out;
            }
        }
    }
    out.push(chunk(delta(json!({}), Some(&script.finish_reason)), None));
    if include_usage {
        out.push(chunk(json!([]), Some(usage_json(script))));
    }
    out.push("[DONE]".to_owned());
    out
}

fn usage_json(script: &ChatScript) -> Value {
    json!({
        "prompt_tokens": script.prompt_tokens,
        "completion_tokens": script.completion_tokens,
        "total_tokens": script.prompt_tokens + script.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
            "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    })
}

fn whole_completion(script: &ChatScript, id: &str, model: &str) -> Value {
    let mut text = String::new();
    let mut calls = Vec::new();
    for step in &script.steps {
        match step {
            ChatStep::Text(t) => text.push_str(t),
            ChatStep::ToolCalls(c) => calls.extend(c.iter().map(|c| {
                json!({"id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.fragments.concat()}})
            })),
            ChatStep::Error { .. } => {}
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }, "refusal": null});
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null,
            "finish_reason": script.finish_reason}],
        "usage": usage_json(script),
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    })
}

/// A streamed body fed by a task that notices when the client goes away and that
/// cuts the first streamed body when `disconnect_after` says so.
fn stream_body(shared: &Arc<Shared>, path: &str, chunks: Vec<Bytes>) -> Body {
    let cut_after = shared
        .config
        .faults
        .disconnect_after
        .filter(|_| !shared.disconnect_used.swap(true, Ordering::SeqCst));
    let interval = shared.config.chunk_interval;
    let streams = shared.streams.clone();
    let path = path.to_owned();
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        let mut sent = 0u32;
        let mut end = StreamEnd::Completed;
        for chunk in chunks {
            if cut_after == Some(sent) {
                let _ = tx
                    .send(Err(std::io::Error::other("emulated disconnect")))
                    .await;
                end = StreamEnd::Cut;
                break;
            }
            if !interval.is_zero() {
                tokio::select! {
                    () = tx.closed() => { end = StreamEnd::ClientClosed; break; }
                    () = tokio::time::sleep(interval) => {}
                }
            }
            if tx.send(Ok(chunk)).await.is_err() {
                end = StreamEnd::ClientClosed;
                break;
            }
            sent += 1;
        }
        // The body's end (the chunked terminator) comes an interval after the last
        // chunk too, as from a server that flushes each event as it is written.
        if end == StreamEnd::Completed && !interval.is_zero() {
            tokio::select! {
                () = tx.closed() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
        drop(tx);
        streams.push(StreamRecord {
            path,
            chunks_sent: sent,
            end,
        });
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}

// ---------------------------------------------------------------------------------
// Transcriptions

async fn transcriptions(shared: &Arc<Shared>, headers: &HeaderMap, request: Request) -> Handled {
    let mut body = Map::new();
    let mut file = None;
    let response = read_transcription(headers, request, &mut body, &mut file)
        .await
        .and_then(|()| transcribe(shared, &body, file.as_ref()));
    Handled {
        response,
        body: Value::Object(body),
        file,
    }
}

async fn read_transcription(
    headers: &HeaderMap,
    request: Request,
    fields: &mut Map<String, Value>,
    file: &mut Option<UploadedFile>,
) -> Result<(), ApiError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::invalid(format!(
            "Invalid Content-Type header ({content_type}), expected multipart/form-data. (HINT: If you're using curl, you can pass -H 'Content-Type: multipart/form-data')"
        )));
    }
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::invalid(format!("Could not parse multipart form: {e}")))?;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::invalid(format!("Could not parse multipart form: {e}")))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let filename = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field
                .bytes()
                .await
                .map_err(|e| ApiError::invalid(format!("Could not parse multipart form: {e}")))?;
            *file = Some(UploadedFile {
                filename,
                content_type,
                bytes,
            });
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::invalid(format!("Could not parse multipart form: {e}")))?;
            fields.insert(name, Value::String(text));
        }
    }
    Ok(())
}

fn transcribe(
    shared: &Arc<Shared>,
    fields: &Map<String, Value>,
    file: Option<&UploadedFile>,
) -> Result<Response, ApiError> {
    let mut all = fields.clone();
    if file.is_some() {
        all.insert("file".into(), Value::Null);
    }
    check_fields(&all, TRANSCRIPTION_FIELDS)?;
    let model = string_field(fields, "model", "model")?
        .filter(|m| !m.is_empty())
        .ok_or_else(ApiError::no_model)?;
    if !TRANSCRIPTION_MODELS.contains(&model) {
        return Err(ApiError::unknown_model(model));
    }
    let file = file.ok_or_else(|| ApiError::missing("file"))?;
    let extension = file
        .filename
        .as_deref()
        .and_then(|f| f.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    let unsupported = || {
        ApiError::invalid(format!(
            "Invalid file format. Supported formats: {:?}",
            AUDIO_EXTENSIONS
        ))
        .param("file")
        .code("invalid_value")
    };
    let Some(extension) = extension.filter(|e| AUDIO_EXTENSIONS.contains(&e.as_str())) else {
        return Err(unsupported());
    };
    if extension != "wav" {
        return Err(ApiError::invalid(format!(
            "emulator: only .wav uploads are decoded (got .{extension})"
        ))
        .param("file"));
    }
    let reader = hound::WavReader::new(Cursor::new(&file.bytes[..])).map_err(|_| unsupported())?;
    let spec = reader.spec();
    let seconds = f64::from(reader.duration()) / f64::from(spec.sample_rate.max(1));
    if seconds < 0.1 {
        return Err(ApiError::invalid(
            "Audio file is too short. Minimum audio length is 0.1 seconds.",
        )
        .param("file")
        .code("audio_too_short"));
    }
    if let Some(language) = string_field(fields, "language", "language")? {
        let valid = language.len() == 2 && language.chars().all(|c| c.is_ascii_lowercase());
        if !valid {
            return Err(ApiError::invalid(format!(
                "Invalid language '{language}'. Language parameter must be specified in ISO-639-1 format."
            ))
            .param("language")
            .code("invalid_language_format"));
        }
    }
    let format = string_field(fields, "response_format", "response_format")?.unwrap_or("json");
    const FORMATS: &[&str] = &["json", "text", "srt", "verbose_json", "vtt"];
    if !FORMATS.contains(&format) {
        return Err(ApiError::invalid_value("response_format", format, FORMATS));
    }
    let whisper = model == "whisper-1";
    if !whisper && !["json", "text"].contains(&format) {
        return Err(ApiError::invalid(format!(
            "response_format '{format}' is not compatible with model '{model}'. Use 'json' or 'text' instead."
        ))
        .param("response_format")
        .code("unsupported_value"));
    }
    if let Some(stream) = string_field(fields, "stream", "stream")?
        && stream == "true"
    {
        let message = if whisper {
            "Streaming is not supported for the whisper-1 model.".to_owned()
        } else {
            "emulator: stream=true is not emulated".to_owned()
        };
        return Err(ApiError::invalid(message).param("stream"));
    }
    if let Some(t) = string_field(fields, "temperature", "temperature")?
        && t.parse::<f64>().map_or(true, |t| !(0.0..=1.0).contains(&t))
    {
        return Err(ApiError::invalid(format!("Invalid 'temperature': {t}")).param("temperature"));
    }
    let text = shared
        .transcripts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop_front()
        .unwrap_or_default();
    if format == "text" {
        return Ok((
            [("content-type", "text/plain; charset=utf-8")],
            format!("{text}\n"),
        )
            .into_response());
    }
    let usage = if whisper {
        json!({"type": "duration", "seconds": seconds.ceil() as u64})
    } else {
        let audio_tokens = (seconds * 10.0).ceil() as u64;
        let output_tokens = text.split_whitespace().count() as u64 + 1;
        json!({"type": "tokens", "input_tokens": audio_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            "output_tokens": output_tokens, "total_tokens": audio_tokens + output_tokens})
    };
    let body = if format == "verbose_json" {
        json!({"task": "transcribe", "language": "english", "duration": seconds, "text": text,
            "segments": [], "usage": usage})
    } else {
        json!({"text": text, "usage": usage})
    };
    Ok(axum::Json(body).into_response())
}

// ---------------------------------------------------------------------------------
// Speech

fn speech(shared: &Arc<Shared>, body: &Map<String, Value>) -> Result<Response, ApiError> {
    check_fields(body, SPEECH_FIELDS)?;
    let model = string_field(body, "model", "model")?.ok_or_else(ApiError::no_model)?;
    if !SPEECH_MODELS.contains(&model) {
        return Err(ApiError::unknown_model(model));
    }
    let input = string_field(body, "input", "input")?.ok_or_else(|| ApiError::missing("input"))?;
    let chars = input.chars().count();
    if chars > 4096 {
        return Err(ApiError::invalid(format!(
            "Invalid 'input': string too long. Expected a string with maximum length 4096, but got a string with length {chars} instead."
        ))
        .param("input")
        .code("string_above_max_length"));
    }
    match body.get("voice") {
        None | Some(Value::Null) => return Err(ApiError::missing("voice")),
        Some(Value::String(voice)) if VOICES.contains(&voice.as_str()) => {}
        Some(Value::String(voice)) => return Err(ApiError::invalid_value("voice", voice, VOICES)),
        Some(Value::Object(voice)) if voice.get("id").is_some_and(Value::is_string) => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "Invalid type for 'voice': expected a string or an object with an id, but got {} instead.",
                json_type(other)
            ))
            .param("voice")
            .code("invalid_type"))
        }
    }
    let legacy = model.starts_with("tts-1");
    if body.get("instructions").is_some_and(|v| !v.is_null()) && legacy {
        return Err(ApiError::invalid(format!(
            "instructions are not supported for model '{model}'."
        ))
        .param("instructions"));
    }
    string_field(body, "instructions", "instructions")?;
    number_in(body, "speed", 0.25, 4.0)?;
    const FORMATS: &[&str] = &["mp3", "opus", "aac", "flac", "wav", "pcm"];
    let format = string_field(body, "response_format", "response_format")?.unwrap_or("mp3");
    if !FORMATS.contains(&format) {
        return Err(ApiError::invalid_value("response_format", format, FORMATS));
    }
    if let Some(stream_format) = string_field(body, "stream_format", "stream_format")? {
        match stream_format {
            "audio" => {}
            "sse" if legacy => {
                return Err(ApiError::invalid(format!(
                    "stream_format 'sse' is not supported for model '{model}'."
                ))
                .param("stream_format"));
            }
            "sse" => {
                return Err(
                    ApiError::invalid("emulator: stream_format 'sse' is not emulated")
                        .param("stream_format"),
                );
            }
            other => {
                return Err(ApiError::invalid_value(
                    "stream_format",
                    other,
                    &["audio", "sse"],
                ));
            }
        }
    }
    if !["pcm", "wav"].contains(&format) {
        return Err(ApiError::invalid(format!(
            "emulator: response_format '{format}' is not produced; use 'pcm' or 'wav'"
        ))
        .param("response_format"));
    }
    let pcm = speech_audio(chars, shared.config.speech_ms_per_char);
    let (content_type, audio) = if format == "wav" {
        let format =
            voxline_audio::AudioFormat::new(voxline_audio::Encoding::Pcm16, SPEECH_SAMPLE_RATE);
        let wav = voxline_audio::wav::to_bytes(format, &pcm).map_err(|e| {
            ApiError::invalid(format!("emulator: cannot write the WAV: {e}"))
                .status(StatusCode::INTERNAL_SERVER_ERROR)
        })?;
        ("audio/wav", wav)
    } else {
        ("audio/pcm", pcm)
    };
    let size = shared.config.speech_chunk_bytes.max(1);
    let chunks: Vec<Bytes> = Bytes::from(audio)
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect();
    let body = stream_body(shared, "/v1/audio/speech", chunks);
    Ok(([("content-type", content_type)], body).into_response())
}

/// `ms_per_char` ms of a 440 Hz tone per character, 24 kHz PCM16 LE.
fn speech_audio(chars: usize, ms_per_char: u32) -> Vec<u8> {
    let samples = chars * ms_per_char as usize * SPEECH_SAMPLE_RATE as usize / 1000;
    let mut out = Vec::with_capacity(samples * 2);
    for n in 0..samples {
        let phase = 2.0 * std::f64::consts::PI * 440.0 * n as f64 / f64::from(SPEECH_SAMPLE_RATE);
        let sample = (phase.sin() * 8000.0).round() as i16;
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}
