//! The OpenAI Realtime API, GA protocol (`GET /v1/realtime?model=…`, WebSocket), from
//! the spec (`providers.md` §5.3, §6, §8), independent of the adapter: every message
//! is read and written as raw JSON.
//!
//! # What it checks, like the real service
//! - **Handshake**: path `/v1/realtime`; `model` query parameter required (HTTP 400
//!   `missing_required_parameter`); `Authorization: Bearer <key>` must match
//!   [`Options::api_key`], else HTTP 401 with OpenAI's error body
//!   (`invalid_api_key`). *Emulator only*: an `OpenAI-Beta: realtime=v1` header (the
//!   beta protocol) is refused with 400, since only the GA protocol is emulated.
//! - **Client events** are JSON text frames with a known GA `type`
//!   (`session.update`, `input_audio_buffer.append|commit|clear`,
//!   `conversation.item.create|truncate|delete|retrieve`, `response.create|cancel`,
//!   `output_audio_buffer.clear`). An unknown type, a missing field or a wrong value
//!   gets an `error` event of the service's shape
//!   (`{"type":"error","event_id":…,"error":{"type":"invalid_request_error","code":…,
//!   "message":…,"param":…,"event_id":<client event_id>}}`) with code
//!   `invalid_value`, `missing_required_parameter` or `unknown_parameter`; the session
//!   stays open, as it does on the service. Text that is not JSON gets code
//!   `invalid_json`; a binary frame closes the socket with 1003 (emulator choices).
//! - **`session.update`**: `session.type` must be `"realtime"`; unknown session
//!   fields (beta ones such as `modalities`, `input_audio_format`, `voice` at the top,
//!   or `temperature`) are `unknown_parameter` and the whole update is rejected;
//!   formats must be `audio/pcmu`, `audio/pcma` or `audio/pcm` with rate 24000;
//!   `turn_detection` is `server_vad`, `semantic_vad` or null with only its own
//!   fields; `output_modalities` is `["audio"]` or `["text"]`; tools are flat
//!   (`{"type":"function","name",…}`; a Chat-style nested `function` object is
//!   refused). Accepted updates are answered with `session.updated`.
//! - **Truncation** (`conversation.item.truncate`): the item must exist and be an
//!   assistant audio item with audio (else `unsupported_content_type`, "Only model
//!   output audio messages can be truncated"), `content_index` 0, and `audio_end_ms`
//!   no longer than the audio generated for it so far (else a code-less
//!   `invalid_request_error` "Audio content of Xms is already shorter than Yms").
//! - **Responses**: `response.create` while one is active gets
//!   `conversation_already_has_active_response`; `response.cancel` with none active
//!   gets `response_cancel_not_active`; `function_call_output` must name a call the
//!   model made (emulator strictness: `invalid_value` on `item.call_id`); manual
//!   `input_audio_buffer.commit` needs ≥ 100 ms (`input_audio_buffer_commit_empty`).
//!
//! # What it answers
//! - `session.created` on connect; `session.updated` after each accepted update.
//! - **Server VAD** (unless `turn_detection` is null): the input audio is decoded per
//!   the session's input format and cut into 10 ms frames on the audio clock (bytes
//!   received, never the wall clock). A frame whose RMS exceeds
//!   [`Options::speech_rms`] is speech: the first starts a turn
//!   (`input_audio_buffer.speech_started` with `audio_start_ms` less the prefix
//!   padding); `silence_duration_ms` of quiet frames end it (`speech_stopped`,
//!   `committed`, `conversation.item.added|done`, then with a transcription model
//!   `conversation.item.input_audio_transcription.delta` per word and `.completed`
//!   with the next of [`Options::user_transcripts`] and token usage), then, with
//!   `create_response`, a response.
//! - **Responses** follow [`Options::replies`] in order (the last repeats): a spoken
//!   reply is `response.created`, `rate_limits.updated`, the output item and content
//!   part events, `response.output_audio.delta`s of a sine tone
//!   ([`Reply::tone_hz`]) in the session's output format, [`Options::chunk`] of audio
//!   each, **paced in real time** on tokio's clock (so paused-clock tests run fast),
//!   transcript deltas word by word spread over the audio, then the `.done` events and
//!   `response.done` with usage; a function-call reply streams
//!   `response.function_call_arguments.delta|done` and ends with `response.done`
//!   listing the `function_call` item. Speech during a response with
//!   `interrupt_response` cancels it (`response.done` status `cancelled`, reason
//!   `turn_detected`).
//! - Usage in `response.done` (deterministic): output tokens = 1 per 50 ms of audio
//!   generated + 1 per transcript word; input tokens = 10 + 1 per 100 ms of caller
//!   audio received on the connection.
//!
//! # Knobs
//! - [`Options::session_max`]: after this long a connection gets the `error`
//!   `session_expired` and is closed with 1001 "going away"; frames the client sent
//!   before it saw the close are still read and recorded;
//!   [`Options::expiring_connections`] limits it to the first connections.
//! - [`Faults`]: `latency` before each `response.created`; `fail_first` + `status`
//!   refuse that many handshakes (429 `rate_limit_exceeded`, 5xx `server_error`, 401);
//!   `disconnect_after` drops the first connection abruptly (no close frame) after that
//!   many audio deltas.
//!
//! Everything is recorded: handshakes ([`Handshake`]), client events ([`Received`],
//! with appended audio decoded into [`OpenAiRealtimeEmulator::audio`]) and server
//! events ([`Outgoing`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until, timeout};
use voxline_audio::tone::ToneGenerator;
use voxline_audio::{g711, pcm};

use super::{Faults, Recorded, Running};

/// The message of the `session_expired` error.
pub const SESSION_EXPIRED_MESSAGE: &str = "Your session hit the maximum duration of 60 minutes.";

const CLIENT_EVENTS: [&str; 11] = [
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "conversation.item.retrieve",
    "response.create",
    "response.cancel",
    "output_audio_buffer.clear",
];

const SESSION_FIELDS: [&str; 12] = [
    "type",
    "model",
    "instructions",
    "output_modalities",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "truncation",
    "tracing",
    "prompt",
    "include",
];

/// One scripted response.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// What the model says (its transcript).
    pub transcript: String,
    /// How long the spoken audio lasts.
    pub audio: Duration,
    /// The tone the audio is made of, Hz.
    pub tone_hz: f64,
    /// A function call instead of speech: name and arguments (JSON text).
    pub function_call: Option<(String, String)>,
}

impl Reply {
    /// A spoken reply: `transcript`, and `audio` of a 440 Hz tone.
    pub fn speech(transcript: impl Into<String>, audio: Duration) -> Self {
        Self {
            transcript: transcript.into(),
            audio,
            tone_hz: 440.0,
            function_call: None,
        }
    }

    /// The same reply with another tone.
    pub fn tone(mut self, hz: f64) -> Self {
        self.tone_hz = hz;
        self
    }

    /// A function call of `name` with `arguments`.
    pub fn call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self {
            transcript: String::new(),
            audio: Duration::ZERO,
            tone_hz: 440.0,
            function_call: Some((name.into(), arguments.into())),
        }
    }
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key `Authorization: Bearer <key>` must carry.
    pub api_key: String,
    /// Responses, in order; the last repeats. Empty: a one-second "Hello." reply.
    pub replies: Vec<Reply>,
    /// Transcripts of the caller's turns, in order (empty once exhausted).
    pub user_transcripts: Vec<String>,
    /// RMS (PCM16 units) above which a 10 ms frame of caller audio is speech.
    pub speech_rms: f64,
    /// Audio per `response.output_audio.delta`.
    pub chunk: Duration,
    /// Expire each connection after this long (`session_expired`, close 1001).
    pub session_max: Option<Duration>,
    /// How many connections (the first ones) expire after [`session_max`](Self::session_max).
    pub expiring_connections: usize,
    /// Injected failures.
    pub faults: Faults,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_key: "test-openai-key".to_owned(),
            replies: Vec::new(),
            user_transcripts: Vec::new(),
            speech_rms: 500.0,
            chunk: Duration::from_millis(100),
            session_max: None,
            expiring_connections: usize::MAX,
            faults: Faults::none(),
        }
    }
}

impl Options {
    /// Default options with `replies`.
    pub fn with_replies(replies: Vec<Reply>) -> Self {
        Self {
            replies,
            ..Self::default()
        }
    }

    /// The same options with caller transcripts.
    pub fn user_transcripts(mut self, transcripts: Vec<String>) -> Self {
        self.user_transcripts = transcripts;
        self
    }

    /// The same options with a session limit.
    pub fn session_max(mut self, max: Duration) -> Self {
        self.session_max = Some(max);
        self
    }

    /// The same options expiring only the first `count` connections.
    pub fn expiring_connections(mut self, count: usize) -> Self {
        self.expiring_connections = count;
        self
    }

    /// The same options with `faults`.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// One handshake, accepted or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    /// The request path.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Request headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// 101 when upgraded, else the refusal status.
    pub status: u16,
    /// The connection number when upgraded.
    pub connection: Option<usize>,
}

impl Handshake {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A client event received. For `input_audio_buffer.append` the `audio` field is
/// replaced by `audio_bytes` (its decoded length); the audio itself is in
/// [`OpenAiRealtimeEmulator::audio`]. A close frame from the client is recorded as
/// `{"type":"_close","code":…}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The connection number.
    pub connection: usize,
    /// The event (`{"_raw": text}` when not JSON).
    pub event: Value,
    /// When it arrived (tokio's clock).
    pub at: Instant,
}

impl Received {
    /// The event's `type`.
    pub fn kind(&self) -> &str {
        self.event["type"].as_str().unwrap_or("?")
    }
}

/// Something the emulator sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The connection number.
    pub connection: usize,
    /// The server event, or `{"_close": code, "reason": …}` / `{"_dropped": true}`.
    pub event: Value,
    /// When (tokio's clock).
    pub at: Instant,
}

struct Shared {
    options: Options,
    handshakes_seen: AtomicU32,
    connections: AtomicUsize,
    replies_used: AtomicUsize,
    transcripts_used: AtomicUsize,
    handshakes: Recorded<Handshake>,
    received: Recorded<Received>,
    audio: Recorded<(usize, Bytes)>,
    sent: Recorded<Outgoing>,
}

/// A running OpenAI Realtime emulator; stops when dropped.
#[derive(Debug)]
pub struct OpenAiRealtimeEmulator {
    running: Running,
    handshakes: Recorded<Handshake>,
    received: Recorded<Received>,
    audio: Recorded<(usize, Bytes)>,
    sent: Recorded<Outgoing>,
}

impl OpenAiRealtimeEmulator {
    /// Starts an emulator on a random loopback port.
    pub async fn start(options: Options) -> Self {
        let shared = Arc::new(Shared {
            options,
            handshakes_seen: AtomicU32::new(0),
            connections: AtomicUsize::new(0),
            replies_used: AtomicUsize::new(0),
            transcripts_used: AtomicUsize::new(0),
            handshakes: Recorded::default(),
            received: Recorded::default(),
            audio: Recorded::default(),
            sent: Recorded::default(),
        });
        let router = Router::new()
            .route("/v1/realtime", get(realtime))
            .with_state(Arc::clone(&shared));
        Self {
            running: Running::serve(router).await,
            handshakes: shared.handshakes.clone(),
            received: shared.received.clone(),
            audio: shared.audio.clone(),
            sent: shared.sent.clone(),
        }
    }

    /// `ws://127.0.0.1:PORT/v1`, the base URL for an adapter.
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.running.ws_url())
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        self.running.ws_url()
    }

    /// Every handshake so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.snapshot()
    }

    /// Every client event so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.snapshot()
    }

    /// Client events of `kind`, with their connection.
    pub fn received_of_type(&self, kind: &str) -> Vec<(usize, Value)> {
        self.received
            .snapshot()
            .into_iter()
            .filter(|r| r.kind() == kind)
            .map(|r| (r.connection, r.event))
            .collect()
    }

    /// Server events sent so far.
    pub fn sent(&self) -> Vec<Outgoing> {
        self.sent.snapshot()
    }

    /// Server events of `kind` sent, with their connection.
    pub fn sent_of_type(&self, kind: &str) -> Vec<(usize, Value)> {
        self.sent
            .snapshot()
            .into_iter()
            .filter(|o| o.event["type"] == kind)
            .map(|o| (o.connection, o.event))
            .collect()
    }

    /// The caller audio appended on `connection` (wire format), concatenated.
    pub fn audio(&self, connection: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (c, a) in self.audio.snapshot() {
            if c == connection {
                out.extend_from_slice(&a);
            }
        }
        out
    }

    /// All caller audio appended on every connection, in order.
    pub fn all_audio(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (_, a) in self.audio.snapshot() {
            out.extend_from_slice(&a);
        }
        out
    }
}

fn error_body(message: &str, kind: &str, code: Option<&str>, param: Option<&str>) -> String {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}}).to_string()
}

fn refuse(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [("content-type", "application/json")], body).into_response()
}

async fn realtime(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let attempt = shared.handshakes_seen.fetch_add(1, Ordering::SeqCst);
    let query = query.unwrap_or_default();
    let mut record = Handshake {
        path: "/v1/realtime".to_owned(),
        query: query.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: 101,
        connection: None,
    };
    let model = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "model")
        .map(|(_, v)| v.to_owned())
        .filter(|m| !m.is_empty());
    let faults = &shared.options.faults;
    let refusal = if attempt < faults.fail_first {
        let (kind, code) = match faults.status {
            429 => ("requests", "rate_limit_exceeded"),
            401 => ("invalid_request_error", "invalid_api_key"),
            s if s >= 500 => ("server_error", "server_error"),
            _ => ("invalid_request_error", "invalid_request"),
        };
        Some((
            faults.status,
            error_body(
                &format!("injected failure {}", attempt + 1),
                kind,
                Some(code),
                None,
            ),
        ))
    } else if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Bearer {}", shared.options.api_key).as_str())
    {
        Some((
            401,
            error_body(
                "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                Some("invalid_api_key"),
                None,
            ),
        ))
    } else if headers
        .get("openai-beta")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("realtime"))
    {
        Some((
            400,
            error_body(
                "This emulator speaks the GA Realtime protocol only; drop the OpenAI-Beta header.",
                "invalid_request_error",
                Some("beta_not_emulated"),
                None,
            ),
        ))
    } else if model.is_none() {
        Some((
            400,
            error_body(
                "Missing required parameter: 'model'.",
                "invalid_request_error",
                Some("missing_required_parameter"),
                Some("model"),
            ),
        ))
    } else {
        None
    };
    if let Some((status, body)) = refusal {
        record.status = status;
        shared.handshakes.push(record);
        return refuse(status, body);
    }
    match upgrade {
        Ok(upgrade) => {
            let connection = shared.connections.fetch_add(1, Ordering::SeqCst);
            record.connection = Some(connection);
            shared.handshakes.push(record);
            let model = model.unwrap_or_default();
            upgrade.on_upgrade(move |socket| async move {
                Conn::new(socket, shared, connection, model).run().await;
            })
        }
        Err(rejection) => {
            record.status = rejection.status().as_u16();
            shared.handshakes.push(record);
            rejection.into_response()
        }
    }
}

/// An audio format of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Pcm24,
    Pcmu,
    Pcma,
}

impl Fmt {
    fn bytes_per_ms(self) -> usize {
        match self {
            Self::Pcm24 => 48,
            Self::Pcmu | Self::Pcma => 8,
        }
    }

    fn rate(self) -> u32 {
        match self {
            Self::Pcm24 => 24_000,
            Self::Pcmu | Self::Pcma => 8000,
        }
    }

    fn json(self) -> Value {
        match self {
            Self::Pcm24 => json!({"type": "audio/pcm", "rate": 24000}),
            Self::Pcmu => json!({"type": "audio/pcmu"}),
            Self::Pcma => json!({"type": "audio/pcma"}),
        }
    }

    fn decode(self, bytes: &[u8]) -> Vec<i16> {
        let mut out = Vec::with_capacity(bytes.len());
        match self {
            Self::Pcm24 => {
                let even = &bytes[..bytes.len() & !1];
                let _ = pcm::decode_le(even, &mut out);
            }
            Self::Pcmu => g711::mulaw::decode(bytes, &mut out),
            Self::Pcma => g711::alaw::decode(bytes, &mut out),
        }
        out
    }

    fn encode(self, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        match self {
            Self::Pcm24 => pcm::encode_le(samples, &mut out),
            Self::Pcmu => g711::mulaw::encode(samples, &mut out),
            Self::Pcma => g711::alaw::encode(samples, &mut out),
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Vad {
    server: bool,
    prefix_padding_ms: u64,
    silence_duration_ms: u64,
    create_response: bool,
    interrupt_response: bool,
}

#[derive(Debug, Clone)]
struct SessionState {
    input: Fmt,
    output: Fmt,
    /// `None`: manual turns.
    vad: Option<Vad>,
    transcription: bool,
    value: Value,
}

/// A conversation item the emulator knows.
#[derive(Debug, Clone)]
struct Item {
    role: String,
    /// Audio generated so far for an assistant audio item, ms.
    audio_ms: u64,
    is_audio: bool,
}

/// An error to send: code, message, param.
struct Reject {
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
}

impl Reject {
    fn missing(param: &str) -> Self {
        Self {
            code: Some("missing_required_parameter"),
            message: format!("Missing required parameter: '{param}'."),
            param: Some(param.to_owned()),
        }
    }

    fn invalid(param: &str, why: impl Into<String>) -> Self {
        Self {
            code: Some("invalid_value"),
            message: why.into(),
            param: Some(param.to_owned()),
        }
    }

    fn unknown(param: &str) -> Self {
        Self {
            code: Some("unknown_parameter"),
            message: format!("Unknown parameter: '{param}'."),
            param: Some(param.to_owned()),
        }
    }

    fn code(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            message: message.into(),
            param: None,
        }
    }
}

/// The response being streamed.
struct Active {
    id: String,
    item_id: String,
    /// Events still to send, each at its time.
    queue: VecDeque<(Instant, Value)>,
    is_call: bool,
    transcript_words: u64,
}

struct Conn {
    socket: WebSocket,
    shared: Arc<Shared>,
    n: usize,
    model: String,
    ids: u64,
    session: SessionState,
    started: Instant,
    /// Caller audio received, ms (audio clock) and bytes not yet a whole frame.
    input_ms: u64,
    pending: Vec<u8>,
    uncommitted_ms: u64,
    speaking: Option<(String, u64)>,
    quiet_ms: u64,
    last_voiced_end: u64,
    items: HashMap<String, Item>,
    last_item: Option<String>,
    calls: HashSet<String>,
    active: Option<Active>,
    deltas_sent: u32,
}

impl Conn {
    fn new(socket: WebSocket, shared: Arc<Shared>, n: usize, model: String) -> Self {
        let session = SessionState {
            input: Fmt::Pcm24,
            output: Fmt::Pcm24,
            vad: Some(Vad {
                server: true,
                prefix_padding_ms: 300,
                silence_duration_ms: 500,
                create_response: true,
                interrupt_response: true,
            }),
            transcription: false,
            value: json!({}),
        };
        Self {
            socket,
            shared,
            n,
            model,
            ids: 0,
            session,
            started: Instant::now(),
            input_ms: 0,
            pending: Vec::new(),
            uncommitted_ms: 0,
            speaking: None,
            quiet_ms: 0,
            last_voiced_end: 0,
            items: HashMap::new(),
            last_item: None,
            calls: HashSet::new(),
            active: None,
            deltas_sent: 0,
        }
    }

    fn id(&mut self, prefix: &str) -> String {
        self.ids += 1;
        format!("{prefix}_{:04}{:06}", self.n, self.ids)
    }

    fn session_json(&self) -> Value {
        let mut s = self.session.value.clone();
        if let Some(map) = s.as_object_mut() {
            map.insert("type".into(), json!("realtime"));
            map.insert("object".into(), json!("realtime.session"));
            map.insert("id".into(), json!(format!("sess_{:04}", self.n)));
            map.entry("model").or_insert(json!(self.model));
        }
        s
    }

    async fn send(&mut self, mut event: Value) -> bool {
        let id = self.id("event");
        if let Some(map) = event.as_object_mut() {
            map.insert("event_id".into(), json!(id));
        }
        self.shared.sent.push(Outgoing {
            connection: self.n,
            event: event.clone(),
            at: Instant::now(),
        });
        self.socket
            .send(Message::Text(event.to_string().into()))
            .await
            .is_ok()
    }

    async fn error(&mut self, reject: Reject, client_event_id: Option<&str>) -> bool {
        self.send(json!({"type": "error", "error": {
            "type": "invalid_request_error", "code": reject.code, "message": reject.message,
            "param": reject.param, "event_id": client_event_id}}))
            .await
    }

    async fn run(mut self) {
        let created = json!({"type": "session.created", "session": self.session_json()});
        if !self.send(created).await {
            return;
        }
        let expires = self
            .shared
            .options
            .session_max
            .filter(|_| self.n < self.shared.options.expiring_connections)
            .map(|d| self.started + d);
        loop {
            let next = self
                .active
                .as_ref()
                .and_then(|a| a.queue.front().map(|(at, _)| *at));
            let far = Instant::now() + Duration::from_secs(86_400);
            tokio::select! {
                msg = self.socket.recv() => {
                    let go_on = match msg {
                        Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
                        Some(Ok(Message::Binary(_))) => {
                            self.close(1003, "binary frames are not supported").await;
                            false
                        }
                        Some(Ok(Message::Close(frame))) => {
                            self.shared.received.push(Received {
                                connection: self.n,
                                event: json!({"type": "_close",
                                              "code": frame.as_ref().map(|f| f.code)}),
                                at: Instant::now(),
                            });
                            false
                        }
                        None | Some(Err(_)) => false,
                        Some(Ok(_)) => true,
                    };
                    if !go_on {
                        return;
                    }
                }
                () = sleep_until(next.unwrap_or(far)), if next.is_some() => {
                    if !self.stream_due().await {
                        return;
                    }
                }
                () = sleep_until(expires.unwrap_or(far)), if expires.is_some() => {
                    let expired = json!({"type": "error", "error": {
                        "type": "invalid_request_error", "code": "session_expired",
                        "message": SESSION_EXPIRED_MESSAGE, "param": null, "event_id": null}});
                    let _ = self.send(expired).await;
                    self.close(1001, "going away").await;
                    return;
                }
            }
        }
    }

    /// Sends a close frame and reads (and records) what the client still sends until
    /// its close answer.
    async fn close(&mut self, code: u16, reason: &str) {
        self.shared.sent.push(Outgoing {
            connection: self.n,
            event: json!({"_close": code, "reason": reason}),
            at: Instant::now(),
        });
        let frame = CloseFrame {
            code,
            reason: reason.to_owned().into(),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = timeout(Duration::from_secs(5), async {
            while let Some(Ok(msg)) = self.socket.recv().await {
                match msg {
                    Message::Text(text) => {
                        self.record(text.as_str());
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        })
        .await;
    }

    /// Records a client event; returns it parsed.
    fn record(&self, text: &str) -> Option<Value> {
        let parsed: Option<Value> = serde_json::from_str(text).ok().filter(Value::is_object);
        let mut shown = parsed.clone().unwrap_or_else(|| json!({"_raw": text}));
        if shown["type"] == "input_audio_buffer.append"
            && let Some(b64) = shown["audio"].as_str()
            && let Ok(audio) = base64::engine::general_purpose::STANDARD.decode(b64)
        {
            shown["audio_bytes"] = json!(audio.len());
            if let Some(map) = shown.as_object_mut() {
                map.remove("audio");
            }
            self.shared.audio.push((self.n, Bytes::from(audio)));
        }
        self.shared.received.push(Received {
            connection: self.n,
            event: shown,
            at: Instant::now(),
        });
        parsed
    }

    async fn on_text(&mut self, text: &str) -> bool {
        let Some(event) = self.record(text) else {
            return self
                .error(
                    Reject::code("invalid_json", "The event is not a JSON object."),
                    None,
                )
                .await;
        };
        let event_id = event["event_id"].as_str().map(str::to_owned);
        let result = match event["type"].as_str() {
            None => Err(Reject::missing("type")),
            Some(kind) if !CLIENT_EVENTS.contains(&kind) => Err(Reject::invalid(
                "type",
                format!(
                    "Invalid value: '{kind}'. Supported values are: {}.",
                    CLIENT_EVENTS.map(|k| format!("'{k}'")).join(", ")
                ),
            )),
            Some("session.update") => self.session_update(&event).await,
            Some("input_audio_buffer.append") => self.append(&event).await,
            Some("input_audio_buffer.commit") => self.commit_manual().await,
            Some("input_audio_buffer.clear") => {
                self.uncommitted_ms = 0;
                self.pending.clear();
                Ok(self
                    .send(json!({"type": "input_audio_buffer.cleared"}))
                    .await)
            }
            Some("conversation.item.create") => self.item_create(&event).await,
            Some("conversation.item.truncate") => self.truncate(&event).await,
            Some("conversation.item.delete" | "conversation.item.retrieve") => {
                self.item_lookup(&event).await
            }
            Some("response.create") => {
                if self.active.is_some() {
                    Err(Reject::code(
                        "conversation_already_has_active_response",
                        "Conversation already has an active response in progress.",
                    ))
                } else {
                    self.start_response();
                    Ok(true)
                }
            }
            Some("response.cancel") => {
                if self.active.is_some() {
                    Ok(self.cancel("client_cancelled").await)
                } else {
                    Err(Reject::code(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found.",
                    ))
                }
            }
            Some(_) => Ok(true), // output_audio_buffer.clear: WebRTC/SIP only, ignored
        };
        match result {
            Ok(go_on) => go_on,
            Err(reject) => self.error(reject, event_id.as_deref()).await,
        }
    }

    // ---- session ------------------------------------------------------------------

    async fn session_update(&mut self, event: &Value) -> Result<bool, Reject> {
        let s = event.get("session").ok_or(Reject::missing("session"))?;
        let map = s
            .as_object()
            .ok_or(Reject::invalid("session", "session must be an object"))?;
        match s.get("type").and_then(Value::as_str) {
            None => return Err(Reject::missing("session.type")),
            Some("realtime") => {}
            Some(other) => {
                return Err(Reject::invalid(
                    "session.type",
                    format!("Invalid value: '{other}'. Supported values are: 'realtime'."),
                ));
            }
        }
        for key in map.keys() {
            if !SESSION_FIELDS.contains(&key.as_str()) {
                return Err(Reject::unknown(&format!("session.{key}")));
            }
        }
        if let Some(m) = s.get("output_modalities") {
            let ok = m == &json!(["audio"]) || m == &json!(["text"]);
            if !ok {
                return Err(Reject::invalid(
                    "session.output_modalities",
                    "output_modalities must be ['audio'] or ['text'].",
                ));
            }
        }
        let mut next = self.session.clone();
        if let Some(audio) = s.get("audio") {
            check_keys(audio, &["input", "output"], "session.audio")?;
            if let Some(input) = audio.get("input") {
                check_keys(
                    input,
                    &[
                        "format",
                        "noise_reduction",
                        "transcription",
                        "turn_detection",
                    ],
                    "session.audio.input",
                )?;
                if let Some(f) = input.get("format") {
                    next.input = parse_format(f, "session.audio.input.format")?;
                }
                if let Some(t) = input.get("transcription") {
                    if !t.is_null() && t.get("model").and_then(Value::as_str).is_none() {
                        return Err(Reject::missing("session.audio.input.transcription.model"));
                    }
                    next.transcription = !t.is_null();
                }
                if let Some(td) = input.get("turn_detection") {
                    next.vad = parse_turn_detection(td)?;
                }
            }
            if let Some(output) = audio.get("output") {
                check_keys(
                    output,
                    &["format", "voice", "speed"],
                    "session.audio.output",
                )?;
                if let Some(f) = output.get("format") {
                    next.output = parse_format(f, "session.audio.output.format")?;
                }
            }
        }
        if let Some(tools) = s.get("tools") {
            let tools = tools
                .as_array()
                .ok_or(Reject::invalid("session.tools", "tools must be an array"))?;
            for (i, t) in tools.iter().enumerate() {
                if t.get("function").is_some() {
                    return Err(Reject::unknown(&format!("session.tools[{i}].function")));
                }
                if t.get("type").and_then(Value::as_str) != Some("function") {
                    return Err(Reject::invalid(
                        &format!("session.tools[{i}].type"),
                        "Only function tools are emulated.",
                    ));
                }
                if t.get("name").and_then(Value::as_str).is_none() {
                    return Err(Reject::missing(&format!("session.tools[{i}].name")));
                }
            }
        }
        merge(&mut next.value, s);
        if let Some(audio) = next.value.get_mut("audio") {
            audio["input"]["format"] = next.input.json();
            audio["output"]["format"] = next.output.json();
        }
        self.session = next;
        let updated = json!({"type": "session.updated", "session": self.session_json()});
        Ok(self.send(updated).await)
    }

    // ---- input audio and VAD ---------------------------------------------------------

    async fn append(&mut self, event: &Value) -> Result<bool, Reject> {
        let b64 = event
            .get("audio")
            .and_then(Value::as_str)
            .ok_or(Reject::missing("audio"))?;
        let audio = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Reject::invalid("audio", "Invalid 'audio': expected base64 audio."))?;
        self.pending.extend_from_slice(&audio);
        let frame = self.session.input.bytes_per_ms() * 10;
        while self.pending.len() >= frame {
            let chunk: Vec<u8> = self.pending.drain(..frame).collect();
            let samples = self.session.input.decode(&chunk);
            let rms = f64::from(voxline_audio::level::rms(&samples)) * 32768.0;
            let start = self.input_ms;
            self.input_ms += 10;
            self.uncommitted_ms += 10;
            if !self
                .vad_frame(start, rms > self.shared.options.speech_rms)
                .await
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    async fn vad_frame(&mut self, start: u64, voiced: bool) -> bool {
        let Some(vad) = self.session.vad.clone() else {
            return true;
        };
        if voiced {
            self.quiet_ms = 0;
            self.last_voiced_end = start + 10;
            if self.speaking.is_none() {
                let item_id = self.id("item");
                let audio_start_ms = start.saturating_sub(vad.prefix_padding_ms);
                self.speaking = Some((item_id.clone(), audio_start_ms));
                if !self
                    .send(json!({"type": "input_audio_buffer.speech_started",
                                 "audio_start_ms": audio_start_ms, "item_id": item_id}))
                    .await
                {
                    return false;
                }
                if vad.interrupt_response && self.active.is_some() {
                    return self.cancel("turn_detected").await;
                }
            }
            return true;
        }
        let Some((item_id, _)) = self.speaking.clone() else {
            return true;
        };
        self.quiet_ms += 10;
        let needed = if vad.server {
            vad.silence_duration_ms
        } else {
            500
        };
        if self.quiet_ms < needed {
            return true;
        }
        self.speaking = None;
        self.quiet_ms = 0;
        let end = self.last_voiced_end;
        let previous = self.last_item.clone();
        let ok = self
            .send(json!({"type": "input_audio_buffer.speech_stopped",
                         "audio_end_ms": end, "item_id": item_id}))
            .await
            && self
                .send(json!({"type": "input_audio_buffer.committed",
                             "previous_item_id": previous, "item_id": item_id}))
                .await;
        if !ok || !self.user_audio_item(item_id).await {
            return false;
        }
        if vad.create_response && self.active.is_none() {
            self.start_response();
        }
        true
    }

    /// A committed user audio item: added, done, transcribed.
    async fn user_audio_item(&mut self, item_id: String) -> bool {
        self.uncommitted_ms = 0;
        let previous = self.last_item.replace(item_id.clone());
        self.items.insert(
            item_id.clone(),
            Item {
                role: "user".into(),
                audio_ms: 0,
                is_audio: false,
            },
        );
        let item = json!({"id": item_id, "object": "realtime.item", "type": "message",
            "status": "completed", "role": "user",
            "content": [{"type": "input_audio", "transcript": null}]});
        if !self
            .send(json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item}))
            .await
            || !self
                .send(json!({"type": "conversation.item.done", "previous_item_id": previous, "item": item}))
                .await
        {
            return false;
        }
        if !self.session.transcription {
            return true;
        }
        let k = self.shared.transcripts_used.fetch_add(1, Ordering::SeqCst);
        let transcript = self
            .shared
            .options
            .user_transcripts
            .get(k)
            .cloned()
            .unwrap_or_default();
        for word in transcript.split_inclusive(' ') {
            if !self
                .send(
                    json!({"type": "conversation.item.input_audio_transcription.delta",
                             "item_id": item_id, "content_index": 0, "delta": word}),
                )
                .await
            {
                return false;
            }
        }
        let words = transcript.split_whitespace().count() as u64;
        self.send(
            json!({"type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id, "content_index": 0, "transcript": transcript,
            "usage": {"type": "tokens", "input_tokens": 20, "output_tokens": words,
                      "total_tokens": 20 + words,
                      "input_token_details": {"text_tokens": 0, "audio_tokens": 20}}}),
        )
        .await
    }

    async fn commit_manual(&mut self) -> Result<bool, Reject> {
        if self.uncommitted_ms < 100 {
            return Err(Reject::code(
                "input_audio_buffer_commit_empty",
                format!(
                    "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {}.00ms of audio.",
                    self.uncommitted_ms
                ),
            ));
        }
        let item_id = self.id("item");
        let previous = self.last_item.clone();
        if !self
            .send(json!({"type": "input_audio_buffer.committed",
                         "previous_item_id": previous, "item_id": item_id}))
            .await
        {
            return Ok(false);
        }
        Ok(self.user_audio_item(item_id).await)
    }

    // ---- items ----------------------------------------------------------------------

    async fn item_create(&mut self, event: &Value) -> Result<bool, Reject> {
        let item = event.get("item").ok_or(Reject::missing("item"))?;
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .ok_or(Reject::missing("item.type"))?;
        let role = match kind {
            "message" => {
                let role = item
                    .get("role")
                    .and_then(Value::as_str)
                    .ok_or(Reject::missing("item.role"))?;
                let allowed: &[&str] = match role {
                    "user" => &["input_text", "input_audio", "input_image"],
                    "system" => &["input_text"],
                    "assistant" => &["output_text", "output_audio"],
                    other => {
                        return Err(Reject::invalid(
                            "item.role",
                            format!(
                                "Invalid value: '{other}'. Supported values are: 'user', 'assistant' and 'system'."
                            ),
                        ));
                    }
                };
                let content = item
                    .get("content")
                    .and_then(Value::as_array)
                    .ok_or(Reject::missing("item.content"))?;
                for (i, part) in content.iter().enumerate() {
                    let t = part
                        .get("type")
                        .and_then(Value::as_str)
                        .ok_or(Reject::missing(&format!("item.content[{i}].type")))?;
                    if !allowed.contains(&t) {
                        return Err(Reject::invalid(
                            &format!("item.content[{i}].type"),
                            format!(
                                "Invalid value: '{t}'. Supported values for {role} messages are: {}.",
                                allowed.join(", ")
                            ),
                        ));
                    }
                    if t.ends_with("_text") && part.get("text").and_then(Value::as_str).is_none() {
                        return Err(Reject::missing(&format!("item.content[{i}].text")));
                    }
                }
                role.to_owned()
            }
            "function_call_output" => {
                let call_id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .ok_or(Reject::missing("item.call_id"))?;
                item.get("output")
                    .and_then(Value::as_str)
                    .ok_or(Reject::missing("item.output"))?;
                if !self.calls.contains(call_id) {
                    return Err(Reject::invalid(
                        "item.call_id",
                        format!("No function call with call_id '{call_id}' in this conversation."),
                    ));
                }
                "tool".to_owned()
            }
            "function_call" => {
                for field in ["call_id", "name", "arguments"] {
                    if item.get(field).and_then(Value::as_str).is_none() {
                        return Err(Reject::missing(&format!("item.{field}")));
                    }
                }
                if let Some(id) = item["call_id"].as_str() {
                    self.calls.insert(id.to_owned());
                }
                "assistant".to_owned()
            }
            other => {
                return Err(Reject::invalid(
                    "item.type",
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'message', 'function_call' and 'function_call_output'."
                    ),
                ));
            }
        };
        let id = item
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| self.id("item"), str::to_owned);
        let previous = self.last_item.replace(id.clone());
        self.items.insert(
            id.clone(),
            Item {
                role,
                audio_ms: 0,
                is_audio: false,
            },
        );
        let mut added = item.clone();
        added["id"] = json!(id);
        added["object"] = json!("realtime.item");
        added["status"] = json!("completed");
        Ok(self
            .send(json!({"type": "conversation.item.added", "previous_item_id": previous, "item": added}))
            .await
            && self
                .send(json!({"type": "conversation.item.done", "previous_item_id": previous, "item": added}))
                .await)
    }

    async fn item_lookup(&mut self, event: &Value) -> Result<bool, Reject> {
        let delete = event["type"] == "conversation.item.delete";
        let id = event
            .get("item_id")
            .and_then(Value::as_str)
            .ok_or(Reject::missing("item_id"))?;
        if !self.items.contains_key(id) {
            let code = if delete {
                "item_delete_invalid_item_id"
            } else {
                "item_retrieve_invalid_item_id"
            };
            return Err(Reject::code(
                code,
                format!("Item with item_id not found: {id}"),
            ));
        }
        if delete {
            self.items.remove(id);
            Ok(self
                .send(json!({"type": "conversation.item.deleted", "item_id": id}))
                .await)
        } else {
            Ok(self
                .send(json!({"type": "conversation.item.retrieved", "item": {"id": id, "object": "realtime.item"}}))
                .await)
        }
    }

    async fn truncate(&mut self, event: &Value) -> Result<bool, Reject> {
        let id = event
            .get("item_id")
            .and_then(Value::as_str)
            .ok_or(Reject::missing("item_id"))?
            .to_owned();
        let index = event
            .get("content_index")
            .and_then(Value::as_u64)
            .ok_or(Reject::missing("content_index"))?;
        let end = event
            .get("audio_end_ms")
            .and_then(Value::as_u64)
            .ok_or(Reject::missing("audio_end_ms"))?;
        let item = self.items.get_mut(&id).ok_or_else(|| {
            Reject::code(
                "item_truncate_invalid_item_id",
                format!("Item with item_id not found: {id}"),
            )
        })?;
        if item.role != "assistant" || !item.is_audio || item.audio_ms == 0 {
            return Err(Reject::code(
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
            ));
        }
        if index != 0 {
            return Err(Reject::invalid(
                "content_index",
                "Audio content is at content_index 0.",
            ));
        }
        if end > item.audio_ms {
            return Err(Reject {
                code: None,
                message: format!(
                    "Audio content of {}ms is already shorter than {end}ms",
                    item.audio_ms
                ),
                param: None,
            });
        }
        item.audio_ms = end;
        Ok(self
            .send(json!({"type": "conversation.item.truncated", "item_id": id,
                         "content_index": 0, "audio_end_ms": end}))
            .await)
    }

    // ---- responses ------------------------------------------------------------------

    fn next_reply(&self) -> Reply {
        let replies = &self.shared.options.replies;
        if replies.is_empty() {
            return Reply::speech("Hello.", Duration::from_secs(1));
        }
        let k = self.shared.replies_used.fetch_add(1, Ordering::SeqCst);
        replies[k.min(replies.len() - 1)].clone()
    }

    /// Plans a response's events on the clock: audio paced in real time.
    fn start_response(&mut self) {
        let reply = self.next_reply();
        let id = self.id("resp");
        let item_id = self.id("item");
        let t0 = Instant::now() + self.shared.options.faults.latency;
        let mut q: VecDeque<(Instant, Value)> = VecDeque::new();
        let response =
            json!({"id": id, "object": "realtime.response", "status": "in_progress", "output": []});
        q.push_back((
            t0,
            json!({"type": "response.created", "response": response}),
        ));
        q.push_back((
            t0,
            json!({"type": "rate_limits.updated", "rate_limits": [
            {"name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 0.06},
            {"name": "tokens", "limit": 40000, "remaining": 39000, "reset_seconds": 1.5}]}),
        ));
        let base = json!({"response_id": id, "item_id": item_id, "output_index": 0});
        let with = |kind: &str, extra: Value| {
            let mut v = base.clone();
            v["type"] = json!(kind);
            if let (Some(map), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
                for (k, x) in extra {
                    map.insert(k.clone(), x.clone());
                }
            }
            v
        };
        let previous = self.last_item.replace(item_id.clone());
        if let Some((name, arguments)) = &reply.function_call {
            let call_id = self.id("call");
            self.calls.insert(call_id.clone());
            let item = json!({"id": item_id, "object": "realtime.item", "type": "function_call",
                "status": "in_progress", "call_id": call_id, "name": name, "arguments": ""});
            q.push_back((t0, json!({"type": "response.output_item.added", "response_id": id, "output_index": 0, "item": item})));
            q.push_back((t0, json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item})));
            q.push_back((
                t0,
                with(
                    "response.function_call_arguments.delta",
                    json!({"call_id": call_id, "delta": arguments}),
                ),
            ));
            q.push_back((
                t0,
                with(
                    "response.function_call_arguments.done",
                    json!({"call_id": call_id, "name": name, "arguments": arguments}),
                ),
            ));
            let mut done = item.clone();
            done["status"] = json!("completed");
            done["arguments"] = json!(arguments);
            q.push_back((t0, json!({"type": "response.output_item.done", "response_id": id, "output_index": 0, "item": done})));
            q.push_back((t0, json!({"type": "conversation.item.done", "previous_item_id": previous, "item": done})));
            self.items.insert(
                item_id.clone(),
                Item {
                    role: "assistant".into(),
                    audio_ms: 0,
                    is_audio: false,
                },
            );
        } else {
            let item = json!({"id": item_id, "object": "realtime.item", "type": "message",
                "status": "in_progress", "role": "assistant", "content": []});
            q.push_back((t0, json!({"type": "response.output_item.added", "response_id": id, "output_index": 0, "item": item})));
            q.push_back((t0, json!({"type": "conversation.item.added", "previous_item_id": previous, "item": item})));
            q.push_back((
                t0,
                with(
                    "response.content_part.added",
                    json!({"content_index": 0, "part": {"type": "audio", "transcript": ""}}),
                ),
            ));
            let chunk = self.shared.options.chunk.max(Duration::from_millis(10));
            let fmt = self.session.output;
            let total = fmt.rate() as usize * reply.audio.as_millis() as usize / 1000;
            let per = fmt.rate() as usize * chunk.as_millis() as usize / 1000;
            let mut tone = ToneGenerator::sine(fmt.rate(), reply.tone_hz, 0.3);
            let chunks = total.div_ceil(per.max(1));
            let words: Vec<&str> = reply.transcript.split_inclusive(' ').collect();
            let mut word = 0;
            let mut done_samples = 0;
            for c in 0..chunks {
                let n = per.min(total - done_samples);
                done_samples += n;
                let audio = fmt.encode(&tone.generate(n));
                let at = t0 + chunk * c as u32;
                let mut delta = with(
                    "response.output_audio.delta",
                    json!({"content_index": 0,
                    "delta": base64::engine::general_purpose::STANDARD.encode(&audio)}),
                );
                delta["_ms"] = json!(n as u64 * 1000 / u64::from(fmt.rate()));
                q.push_back((at, delta));
                let due = (c + 1) * words.len() / chunks.max(1);
                while word < due {
                    q.push_back((
                        at,
                        with(
                            "response.output_audio_transcript.delta",
                            json!({"content_index": 0, "delta": words[word]}),
                        ),
                    ));
                    word += 1;
                }
            }
            let end = t0 + chunk * chunks as u32;
            q.push_back((
                end,
                with("response.output_audio.done", json!({"content_index": 0})),
            ));
            q.push_back((
                end,
                with(
                    "response.output_audio_transcript.done",
                    json!({"content_index": 0, "transcript": reply.transcript}),
                ),
            ));
            q.push_back((end, with("response.content_part.done", json!({"content_index": 0, "part": {"type": "audio", "transcript": reply.transcript}}))));
            let done = json!({"id": item_id, "object": "realtime.item", "type": "message",
                "status": "completed", "role": "assistant",
                "content": [{"type": "output_audio", "transcript": reply.transcript}]});
            q.push_back((end, json!({"type": "response.output_item.done", "response_id": id, "output_index": 0, "item": done})));
            q.push_back((end, json!({"type": "conversation.item.done", "previous_item_id": previous, "item": done})));
            self.items.insert(
                item_id.clone(),
                Item {
                    role: "assistant".into(),
                    audio_ms: 0,
                    is_audio: true,
                },
            );
        }
        // response.done is built when the queue drains (it carries the usage so far).
        q.push_back((
            q.back().map_or(t0, |(at, _)| *at),
            json!({"type": "_response.done"}),
        ));
        self.active = Some(Active {
            id,
            item_id,
            queue: q,
            is_call: reply.function_call.is_some(),
            transcript_words: reply.transcript.split_whitespace().count() as u64,
        });
    }

    /// Sends the response events that are due.
    async fn stream_due(&mut self) -> bool {
        let now = Instant::now();
        loop {
            let Some(active) = &mut self.active else {
                return true;
            };
            let due = matches!(active.queue.front(), Some((at, _)) if *at <= now);
            if !due {
                return true;
            }
            let Some((_, mut event)) = active.queue.pop_front() else {
                return true;
            };
            if event["type"] == "_response.done" {
                return self.finish("completed", None).await;
            }
            if event["type"] == "response.output_audio.delta" {
                let ms = event["_ms"].as_u64().unwrap_or(0);
                if let Some(map) = event.as_object_mut() {
                    map.remove("_ms");
                }
                let item_id = active.item_id.clone();
                if let Some(item) = self.items.get_mut(&item_id) {
                    item.audio_ms += ms;
                }
                self.deltas_sent += 1;
            }
            if !self.send(event).await {
                return false;
            }
            if self.n == 0
                && self
                    .shared
                    .options
                    .faults
                    .disconnect_after
                    .is_some_and(|n| self.deltas_sent >= n)
            {
                self.shared.sent.push(Outgoing {
                    connection: self.n,
                    event: json!({"_dropped": true}),
                    at: Instant::now(),
                });
                return false;
            }
        }
    }

    async fn cancel(&mut self, reason: &str) -> bool {
        self.finish("cancelled", Some(reason)).await
    }

    /// Ends the active response with `response.done`.
    async fn finish(&mut self, status: &str, reason: Option<&str>) -> bool {
        let Some(active) = self.active.take() else {
            return true;
        };
        let item = self.items.get(&active.item_id).cloned();
        let audio_ms = item.as_ref().map_or(0, |i| i.audio_ms);
        let item_status = if status == "completed" {
            "completed"
        } else {
            "incomplete"
        };
        let output = if active.is_call {
            let calls: Vec<Value> = self
                .shared
                .sent
                .snapshot()
                .into_iter()
                .filter(|o| {
                    o.connection == self.n
                        && o.event["type"] == "response.function_call_arguments.done"
                        && o.event["response_id"] == json!(active.id)
                })
                .map(|o| {
                    json!({"id": active.item_id, "object": "realtime.item", "type": "function_call",
                           "status": item_status, "call_id": o.event["call_id"],
                           "name": o.event["name"], "arguments": o.event["arguments"]})
                })
                .collect();
            json!(calls)
        } else {
            json!([{"id": active.item_id, "object": "realtime.item", "type": "message",
                    "status": item_status, "role": "assistant",
                    "content": [{"type": "output_audio"}]}])
        };
        let words = if status == "completed" {
            active.transcript_words
        } else {
            0
        };
        let output_tokens = audio_ms / 50 + words;
        let input_tokens = 10 + self.input_ms / 100;
        let details = match reason {
            Some(r) => json!({"type": status, "reason": r}),
            None => Value::Null,
        };
        self.send(json!({"type": "response.done", "response": {
            "id": active.id, "object": "realtime.response", "status": status,
            "status_details": details, "output": output,
            "usage": {"total_tokens": input_tokens + output_tokens,
                      "input_tokens": input_tokens, "output_tokens": output_tokens,
                      "input_token_details": {"text_tokens": 10, "audio_tokens": input_tokens - 10,
                          "image_tokens": 0, "cached_tokens": 0},
                      "output_token_details": {"text_tokens": words, "audio_tokens": audio_ms / 50}}}}))
        .await
    }
}

fn check_keys(v: &Value, allowed: &[&str], path: &str) -> Result<(), Reject> {
    let Some(map) = v.as_object() else {
        return Err(Reject::invalid(path, format!("{path} must be an object")));
    };
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            return Err(Reject::unknown(&format!("{path}.{key}")));
        }
    }
    Ok(())
}

fn parse_format(f: &Value, path: &str) -> Result<Fmt, Reject> {
    let kind = f
        .get("type")
        .and_then(Value::as_str)
        .ok_or(Reject::missing(&format!("{path}.type")))?;
    match kind {
        "audio/pcmu" => Ok(Fmt::Pcmu),
        "audio/pcma" => Ok(Fmt::Pcma),
        "audio/pcm" => match f.get("rate") {
            None => Ok(Fmt::Pcm24),
            Some(r) if r.as_u64() == Some(24_000) => Ok(Fmt::Pcm24),
            Some(r) => Err(Reject::invalid(
                &format!("{path}.rate"),
                format!("Invalid value: {r}. Supported values are: 24000."),
            )),
        },
        other => Err(Reject::invalid(
            &format!("{path}.type"),
            format!(
                "Invalid value: '{other}'. Supported values are: 'audio/pcm', 'audio/pcmu' and 'audio/pcma'."
            ),
        )),
    }
}

fn parse_turn_detection(td: &Value) -> Result<Option<Vad>, Reject> {
    const PATH: &str = "session.audio.input.turn_detection";
    if td.is_null() {
        return Ok(None);
    }
    let kind = td
        .get("type")
        .and_then(Value::as_str)
        .ok_or(Reject::missing(&format!("{PATH}.type")))?;
    let flag = |k: &str| td.get(k).and_then(Value::as_bool).unwrap_or(true);
    match kind {
        "server_vad" => {
            check_keys(
                td,
                &[
                    "type",
                    "threshold",
                    "prefix_padding_ms",
                    "silence_duration_ms",
                    "create_response",
                    "interrupt_response",
                    "idle_timeout_ms",
                ],
                PATH,
            )?;
            if let Some(t) = td.get("threshold").and_then(Value::as_f64)
                && !(0.0..=1.0).contains(&t)
            {
                return Err(Reject::invalid(
                    &format!("{PATH}.threshold"),
                    "threshold must be between 0 and 1",
                ));
            }
            let ms = |k: &str, d: u64| td.get(k).and_then(Value::as_u64).unwrap_or(d);
            Ok(Some(Vad {
                server: true,
                prefix_padding_ms: ms("prefix_padding_ms", 300),
                silence_duration_ms: ms("silence_duration_ms", 500),
                create_response: flag("create_response"),
                interrupt_response: flag("interrupt_response"),
            }))
        }
        "semantic_vad" => {
            check_keys(
                td,
                &["type", "eagerness", "create_response", "interrupt_response"],
                PATH,
            )?;
            if let Some(e) = td.get("eagerness").and_then(Value::as_str)
                && !["low", "medium", "high", "auto"].contains(&e)
            {
                return Err(Reject::invalid(
                    &format!("{PATH}.eagerness"),
                    format!(
                        "Invalid value: '{e}'. Supported values are: 'low', 'medium', 'high' and 'auto'."
                    ),
                ));
            }
            Ok(Some(Vad {
                server: false,
                prefix_padding_ms: 0,
                silence_duration_ms: 500,
                create_response: flag("create_response"),
                interrupt_response: flag("interrupt_response"),
            }))
        }
        other => Err(Reject::invalid(
            &format!("{PATH}.type"),
            format!(
                "Invalid value: '{other}'. Supported values are: 'server_vad' and 'semantic_vad'."
            ),
        )),
    }
}

/// Merges `update` into `base`, objects recursively (session updates are partial).
fn merge(base: &mut Value, update: &Value) {
    match (base.as_object_mut(), update.as_object()) {
        (Some(b), Some(u)) => {
            for (k, v) in u {
                match b.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        _ => *base = update.clone(),
    }
}
