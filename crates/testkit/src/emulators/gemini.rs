//! Gemini Live API (`BidiGenerateContent`, WebSocket), from the spec (`providers.md`
//! §4, §6, §8), independent of the adapter.
//!
//! # What it checks, like the real service
//! - **Path**: `/ws/google.ai.generativelanguage.{v1,v1beta,v1alpha}.GenerativeService.BidiGenerateContent`
//!   (also with the doubled leading slash the official SDK sends), or the Vertex AI path
//!   `/ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent`. Anything
//!   else is HTTP 404.
//! - **Auth**: Gemini API: `x-goog-api-key` (or `?key=`); Vertex: `Authorization:
//!   Bearer <token>`, both compared with [`Options::api_key`]. No credential at all is
//!   refused at the handshake with HTTP 401 and Google's JSON error body
//!   (`UNAUTHENTICATED`). A wrong key is accepted at the handshake and the socket is
//!   closed with **1007** `API key not valid. Please pass a valid API key.` once the
//!   `setup` arrives, as the service does at setup (§4.6).
//! - **Order**: `setup` must be the first message (else close 1007 with a reason); a
//!   second `setup` is 1007 too. Its fields are checked by name (camelCase or
//!   snake_case, as the service's JSON parser accepts both, §8): an unknown field is
//!   1007 `Invalid JSON payload received. Unknown name ...`; `model` must be
//!   `models/...` (Vertex: `projects/.../models/...`); `responseModalities` exactly one
//!   of `AUDIO`/`TEXT`; a resumption `handle` must be one this emulator issued.
//! - **Messages**: exactly one of `setup`, `clientContent`, `realtimeInput`,
//!   `toolResponse` per message; `realtimeInput` exactly one field; audio must be
//!   `audio/pcm` (rate from `;rate=`, 16000 if absent) with valid base64 of whole PCM16
//!   samples; each `functionResponses[]` needs the `id` of a pending call. Any
//!   violation closes with 1007 and the reason. Text and binary client frames are both
//!   accepted and recorded.
//! - **Frames**: every server message is JSON in a **binary** frame.
//!
//! # What it answers
//! Replies follow [`Options::script`] (one [`Turn`] per caller turn, in order; the last
//! repeats). A caller turn ends when the received audio, decoded as PCM16 at its
//! declared rate, had speech (RMS above [`Options::speech_rms`] for at least 100 ms)
//! followed by [`Options::end_silence`] of quiet, measured on the audio clock; or on
//! `audioStreamEnd`, a `realtimeInput.text`, or a `clientContent` with
//! `turnComplete: true`. Then it sends the turn's `inputTranscription` (if scripted,
//! `finished: true`), its `toolCall` (if scripted; the reply waits for the matching
//! `toolResponse`), and streams the reply **paced in real time on tokio's clock**: a
//! sine tone (PCM16 24 kHz, `audio/pcm;rate=24000`) in [`Options::chunk`] pieces, the
//! `outputTranscription` with the first piece, then `generationComplete`,
//! `turnComplete`, `usageMetadata` and (with `sessionResumption` in the setup) a
//! resumable `sessionResumptionUpdate`. Speech arriving during a reply interrupts it:
//! `interrupted: true`, then `turnComplete`, plus `toolCallCancellation` for a pending
//! call.
//!
//! Usage is counted as 32 tokens per second of audio each way (prompt: audio received
//! during the turn; response: audio sent).
//!
//! # Knobs
//! - [`Turn::tone`]: a reply's own tone instead of [`Options::tone_hz`].
//! - [`Options::go_away_after`]: send `goAway` (`timeLeft` = [`Options::go_away_notice`])
//!   that long after a connection opened, then close it (1000) when the notice ends;
//!   [`Options::go_away_connections`] limits it to the first connections.
//! - Resumption: a `setup` with `sessionResumption.handle` continues that session's
//!   state (its position in the script).
//! - [`Options::silent_after_interrupt`]: after an interruption, the connection never
//!   answers again (the known Live API failure, for watchdog tests).
//! - [`Faults`]: `latency` before each reply's first audio; `fail_first` + `status`
//!   refuse handshakes with that HTTP status and Google's error body; `disconnect_after`
//!   drops the first connection abruptly after that many server messages (setupComplete
//!   not counted).
//!
//! Everything is recorded: handshakes ([`Handshake`]), client messages ([`Received`]),
//! server messages ([`Outgoing`]) and close frames sent ([`Closed`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};
use tokio::time::{Instant, sleep_until};

use super::{Faults, Recorded, Running};

/// The close reason for a wrong API key (code 1007).
pub const BAD_KEY_REASON: &str = "API key not valid. Please pass a valid API key.";

/// Output audio rate (PCM16 LE mono).
pub const OUTPUT_RATE: u32 = 24_000;

/// Setup fields the service knows (camelCase; snake_case is accepted too).
const SETUP_FIELDS: [&str; 14] = [
    "model",
    "generationConfig",
    "systemInstruction",
    "tools",
    "realtimeInputConfig",
    "inputAudioTranscription",
    "outputAudioTranscription",
    "sessionResumption",
    "contextWindowCompression",
    "proactivity",
    "historyConfig",
    "explicitVadSignal",
    "avatarConfig",
    "safetySettings",
];

const REALTIME_FIELDS: [&str; 7] = [
    "audio",
    "audioStreamEnd",
    "activityStart",
    "activityEnd",
    "text",
    "video",
    "mediaChunks",
];

/// One scripted reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The caller's words, sent as `inputTranscription` when the turn ends.
    pub heard: Option<String>,
    /// The model's words, sent as `outputTranscription`.
    pub reply: String,
    /// Length of the reply's tone audio.
    pub audio: Duration,
    /// A tool call made before replying: name and JSON args.
    pub tool_call: Option<(String, Value)>,
    /// This reply's tone, Hz (`None`: [`Options::tone_hz`]), so tests can tell replies
    /// apart by pitch.
    pub tone_hz: Option<f64>,
}

impl Turn {
    /// A reply of `audio` tone with transcript `reply`.
    pub fn new(reply: impl Into<String>, audio: Duration) -> Self {
        Self {
            heard: None,
            reply: reply.into(),
            audio,
            tool_call: None,
            tone_hz: None,
        }
    }

    /// The same turn answered with a tone of `hz`.
    pub fn tone(mut self, hz: f64) -> Self {
        self.tone_hz = Some(hz);
        self
    }

    /// The same turn with the caller's words.
    pub fn heard(mut self, text: impl Into<String>) -> Self {
        self.heard = Some(text.into());
        self
    }

    /// The same turn calling a tool first.
    pub fn tool_call(mut self, name: impl Into<String>, args: Value) -> Self {
        self.tool_call = Some((name.into(), args));
        self
    }
}

/// The emulator's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The accepted API key (Gemini API) or bearer token (Vertex).
    pub api_key: String,
    /// Replies, one per caller turn; the last repeats.
    pub script: Vec<Turn>,
    /// Frequency of the reply tone.
    pub tone_hz: f64,
    /// Reply audio piece length (one `serverContent` message each).
    pub chunk: Duration,
    /// PCM16 RMS above which received audio counts as speech.
    pub speech_rms: f64,
    /// Quiet that ends the caller's turn.
    pub end_silence: Duration,
    /// Send `goAway` this long after each connection opens.
    pub go_away_after: Option<Duration>,
    /// The `timeLeft` of `goAway`; the connection closes when it runs out.
    pub go_away_notice: Duration,
    /// How many connections (the first ones) get the `goAway`; later ones run on.
    pub go_away_connections: usize,
    /// Go silent for the rest of a connection after an interruption.
    pub silent_after_interrupt: bool,
    /// Injected failures.
    pub faults: Faults,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_key: "test-key".to_owned(),
            script: vec![Turn::new("Hello, how can I help?", Duration::from_secs(1))],
            tone_hz: 440.0,
            chunk: Duration::from_millis(40),
            speech_rms: 500.0,
            end_silence: Duration::from_millis(500),
            go_away_after: None,
            go_away_notice: Duration::from_secs(5),
            go_away_connections: usize::MAX,
            silent_after_interrupt: false,
            faults: Faults::default(),
        }
    }
}

impl Options {
    /// Default options with `script`.
    pub fn with_script(script: Vec<Turn>) -> Self {
        Self {
            script,
            ..Self::default()
        }
    }

    /// The same options with faults.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }
}

/// A handshake as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    /// The request path.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// Headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The HTTP status answered (101 when upgraded).
    pub status: u16,
}

impl Handshake {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client message.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// Which connection (0-based, upgraded ones only).
    pub connection: usize,
    /// Whether it came in a binary frame.
    pub binary: bool,
    /// The JSON (`Value::Null` if it was not JSON).
    pub json: Value,
}

/// A server message.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Which connection.
    pub connection: usize,
    /// When it was sent (tokio clock).
    pub at: Instant,
    /// The JSON.
    pub json: Value,
}

/// A close frame the emulator sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Closed {
    /// Which connection.
    pub connection: usize,
    /// Close code.
    pub code: u16,
    /// Reason.
    pub reason: String,
}

/// State carried across connections by resumption handles.
#[derive(Debug, Clone, Copy, Default)]
struct SessionState {
    session: usize,
    next_turn: usize,
}

struct Shared {
    options: Options,
    handshakes_seen: AtomicUsize,
    connections: AtomicUsize,
    sessions: AtomicUsize,
    handles: Mutex<HashMap<String, SessionState>>,
    handshakes: Recorded<Handshake>,
    received: Recorded<Received>,
    sent: Recorded<Outgoing>,
    closed: Recorded<Closed>,
    client_closes: Recorded<(usize, Option<u16>)>,
}

/// A running Gemini Live emulator.
pub struct GeminiEmulator {
    running: Running,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GeminiEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeminiEmulator")
            .field("addr", &self.running.addr())
            .finish_non_exhaustive()
    }
}

impl GeminiEmulator {
    /// Starts the emulator on a random loopback port.
    pub async fn start(options: Options) -> Self {
        let shared = Arc::new(Shared {
            options,
            handshakes_seen: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            sessions: AtomicUsize::new(0),
            handles: Mutex::new(HashMap::new()),
            handshakes: Recorded::default(),
            received: Recorded::default(),
            sent: Recorded::default(),
            closed: Recorded::default(),
            client_closes: Recorded::default(),
        });
        let router = Router::new()
            .fallback(handshake)
            .with_state(Arc::clone(&shared));
        Self {
            running: Running::serve(router).await,
            shared,
        }
    }

    /// `ws://127.0.0.1:PORT`, the base URL for the adapter.
    pub fn ws_url(&self) -> String {
        self.running.ws_url()
    }

    /// Handshakes seen.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.shared.handshakes.snapshot()
    }

    /// Client messages received.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.snapshot()
    }

    /// Server messages sent.
    pub fn sent(&self) -> Vec<Outgoing> {
        self.shared.sent.snapshot()
    }

    /// Close frames sent.
    pub fn closed(&self) -> Vec<Closed> {
        self.shared.closed.snapshot()
    }

    /// Close frames the client sent: connection and code.
    pub fn client_closes(&self) -> Vec<(usize, Option<u16>)> {
        self.shared.client_closes.snapshot()
    }

    /// The `setup` messages received, by connection.
    pub fn setups(&self) -> Vec<(usize, Value)> {
        self.received()
            .into_iter()
            .filter_map(|r| field(&r.json, "setup").map(|s| (r.connection, s.clone())))
            .collect()
    }

    /// Decoded caller audio (PCM16 LE) of `connection`, with the mime types declared.
    pub fn audio(&self, connection: usize) -> (Vec<u8>, Vec<String>) {
        let mut pcm = Vec::new();
        let mut mimes = Vec::new();
        for r in self
            .received()
            .iter()
            .filter(|r| r.connection == connection)
        {
            if let Some(audio) = field(&r.json, "realtimeInput").and_then(|ri| field(ri, "audio")) {
                if let Some(bytes) = field(audio, "data")
                    .and_then(Value::as_str)
                    .and_then(|d| B64.decode(d).ok())
                {
                    pcm.extend_from_slice(&bytes);
                }
                if let Some(m) = field(audio, "mimeType").and_then(Value::as_str)
                    && !mimes.iter().any(|x| x == m)
                {
                    mimes.push(m.to_owned());
                }
            }
        }
        (pcm, mimes)
    }

    /// Server messages having top-level key `key`, with their connection.
    pub fn sent_with(&self, key: &str) -> Vec<(usize, Value)> {
        self.sent()
            .into_iter()
            .filter(|o| o.json.get(key).is_some())
            .map(|o| (o.connection, o.json))
            .collect()
    }
}

/// A field by its camelCase name or its snake_case form.
fn field<'a>(v: &'a Value, camel: &str) -> Option<&'a Value> {
    let obj = v.as_object()?;
    obj.get(camel).or_else(|| obj.get(&snake(camel)))
}

fn snake(camel: &str) -> String {
    let mut out = String::new();
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn google_error(status: u16, message: &str) -> Response {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let body = json!({"error": {"code": status, "message": message, "status": name}});
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn is_gemini_path(path: &str) -> bool {
    let path = path.trim_start_matches('/');
    ["v1", "v1beta", "v1alpha"].iter().any(|v| {
        path == format!("ws/google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContent")
    })
}

fn is_vertex_path(path: &str) -> bool {
    path.trim_start_matches('/')
        == "ws/google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
}

async fn handshake(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let attempt = shared.handshakes_seen.fetch_add(1, Ordering::SeqCst);
    let mut record = Handshake {
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
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
    };
    let vertex = is_vertex_path(uri.path());
    let refusal = if !vertex && !is_gemini_path(uri.path()) {
        Some((404, format!("Method not found: {}", uri.path())))
    } else if attempt < shared.options.faults.fail_first as usize {
        let status = shared.options.faults.status;
        Some((status, format!("injected failure {}", attempt + 1)))
    } else {
        None
    };
    let credential = if vertex {
        record
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_owned)
    } else {
        record
            .header("x-goog-api-key")
            .map(str::to_owned)
            .or_else(|| {
                record.query.as_deref().and_then(|q| {
                    q.split('&')
                        .find_map(|kv| kv.strip_prefix("key=").map(str::to_owned))
                })
            })
    };
    let refusal = refusal.or_else(|| {
        credential.is_none().then(|| {
            (
                401,
                "Request is missing required authentication credential.".to_owned(),
            )
        })
    });
    if let Some((status, message)) = refusal {
        record.status = status;
        shared.handshakes.push(record);
        return google_error(status, &message);
    }
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(rejection) => {
            record.status = rejection.status().as_u16();
            shared.handshakes.push(record);
            return rejection.into_response();
        }
    };
    shared.handshakes.push(record);
    let key_ok = credential.as_deref() == Some(shared.options.api_key.as_str());
    let connection = shared.connections.fetch_add(1, Ordering::SeqCst);
    upgrade.on_upgrade(move |socket| async move {
        let mut conn = Conn::new(shared, socket, connection, vertex, key_ok);
        conn.run().await;
    })
}

/// Why a connection loop stopped.
enum Stop {
    /// Closed with a frame (already sent) or by the client.
    Closed,
    /// Dropped abruptly (fault).
    Dropped,
}

/// A reply being streamed.
struct Reply {
    turn: Turn,
    /// Pending tool call id; audio waits until it is answered.
    waiting_call: Option<String>,
    samples_total: usize,
    samples_sent: usize,
    next_at: Instant,
    started: bool,
    tone: voxline_audio::tone::ToneGenerator,
}

struct Conn {
    shared: Arc<Shared>,
    socket: WebSocket,
    connection: usize,
    vertex: bool,
    key_ok: bool,
    opened: Instant,
    setup_done: bool,
    resumption: bool,
    history_pending: bool,
    state: SessionState,
    results: u32,
    calls_made: usize,
    handles_issued: usize,
    // Caller speech detection on the audio clock.
    voiced: Duration,
    quiet: Duration,
    in_speech: bool,
    turn_audio: Duration,
    silenced: bool,
    reply: Option<Reply>,
    go_away_at: Option<Instant>,
    close_at: Option<Instant>,
}

impl Conn {
    fn new(
        shared: Arc<Shared>,
        socket: WebSocket,
        connection: usize,
        vertex: bool,
        key_ok: bool,
    ) -> Self {
        let opened = Instant::now();
        let go_away_at = shared
            .options
            .go_away_after
            .filter(|_| connection < shared.options.go_away_connections)
            .map(|d| opened + d);
        Self {
            shared,
            socket,
            connection,
            vertex,
            key_ok,
            opened,
            setup_done: false,
            resumption: false,
            history_pending: false,
            state: SessionState::default(),
            results: 0,
            calls_made: 0,
            handles_issued: 0,
            voiced: Duration::ZERO,
            quiet: Duration::ZERO,
            in_speech: false,
            turn_audio: Duration::ZERO,
            silenced: false,
            reply: None,
            go_away_at,
            close_at: None,
        }
    }

    async fn run(&mut self) {
        loop {
            let deadline = [
                self.reply
                    .as_ref()
                    .filter(|r| r.waiting_call.is_none())
                    .map(|r| r.next_at),
                self.go_away_at,
                self.close_at,
            ]
            .into_iter()
            .flatten()
            .min();
            let result = tokio::select! {
                msg = self.socket.recv() => match msg {
                    Some(Ok(Message::Text(t))) => self.on_client(t.as_bytes(), false).await,
                    Some(Ok(Message::Binary(b))) => self.on_client(&b, true).await,
                    Some(Ok(Message::Close(frame))) => {
                        self.shared
                            .client_closes
                            .push((self.connection, frame.map(|f| f.code)));
                        Err(Stop::Closed)
                    }
                    None | Some(Err(_)) => Err(Stop::Closed),
                    Some(Ok(_)) => Ok(()),
                },
                () = sleep_until(deadline.unwrap_or(self.opened)), if deadline.is_some() => {
                    self.on_timer().await
                }
            };
            match result {
                Ok(()) => {}
                Err(Stop::Closed) => break,
                Err(Stop::Dropped) => return,
            }
        }
        let _ = self.socket.send(Message::Close(None)).await;
    }

    async fn close(&mut self, code: u16, reason: &str) -> Result<(), Stop> {
        self.shared.closed.push(Closed {
            connection: self.connection,
            code,
            reason: reason.to_owned(),
        });
        let _ = self
            .socket
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.into(),
            })))
            .await;
        Err(Stop::Closed)
    }

    async fn send(&mut self, message: Value) -> Result<(), Stop> {
        let counts = self.setup_done && field(&message, "setupComplete").is_none();
        if counts {
            if let Some(limit) = self.shared.options.faults.disconnect_after
                && self.connection == 0
                && self.results >= limit
            {
                return Err(Stop::Dropped);
            }
            self.results += 1;
        }
        self.shared.sent.push(Outgoing {
            connection: self.connection,
            at: Instant::now(),
            json: message.clone(),
        });
        self.socket
            .send(Message::Binary(message.to_string().into()))
            .await
            .map_err(|_| Stop::Closed)
    }

    async fn on_client(&mut self, data: &[u8], binary: bool) -> Result<(), Stop> {
        let json: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
        self.shared.received.push(Received {
            connection: self.connection,
            binary,
            json: json.clone(),
        });
        let Some(obj) = json.as_object() else {
            return self
                .close(1007, "Invalid JSON payload received. Expected an object.")
                .await;
        };
        if obj.len() != 1 {
            return self
                .close(
                    1007,
                    "Invalid JSON payload received. Exactly one message type per message.",
                )
                .await;
        }
        let (key, body) = obj
            .iter()
            .next()
            .map(|(k, v)| (camel(k), v.clone()))
            .unwrap_or_default();
        if !self.setup_done {
            if key != "setup" {
                return self
                    .close(1007, "Invalid request: the first message must be setup.")
                    .await;
            }
            return self.on_setup(&body).await;
        }
        match key.as_str() {
            "setup" => {
                self.close(1007, "Invalid request: setup was already sent.")
                    .await
            }
            "realtimeInput" => self.on_realtime(&body).await,
            "clientContent" => self.on_client_content(&body).await,
            "toolResponse" => self.on_tool_response(&body).await,
            other => {
                let reason = format!(
                    "Invalid JSON payload received. Unknown name \"{other}\": Cannot find field."
                );
                self.close(1007, &reason).await
            }
        }
    }

    async fn on_setup(&mut self, setup: &Value) -> Result<(), Stop> {
        let Some(obj) = setup.as_object() else {
            return self
                .close(
                    1007,
                    "Invalid JSON payload received. setup must be an object.",
                )
                .await;
        };
        for name in obj.keys() {
            if !SETUP_FIELDS.contains(&camel(name).as_str()) {
                let reason = format!(
                    "Invalid JSON payload received. Unknown name \"{name}\" at 'setup': Cannot find field."
                );
                return self.close(1007, &reason).await;
            }
        }
        if !self.key_ok {
            return self.close(1007, BAD_KEY_REASON).await;
        }
        let model = field(setup, "model")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let model_ok = if self.vertex {
            model.starts_with("projects/") && model.contains("/models/")
        } else {
            model.starts_with("models/") && model.len() > "models/".len()
        };
        if !model_ok {
            let reason = format!(
                "models/{model} is not found for API version, or is not supported for bidiGenerateContent."
            );
            return self.close(1007, &reason).await;
        }
        if let Some(modalities) =
            field(setup, "generationConfig").and_then(|g| field(g, "responseModalities"))
        {
            let ok = modalities
                .as_array()
                .is_some_and(|m| m.len() == 1 && matches!(m[0].as_str(), Some("AUDIO" | "TEXT")));
            if !ok {
                return self
                    .close(1007, "Request contains an invalid argument. responseModalities must be exactly one of AUDIO or TEXT.")
                    .await;
            }
        }
        if let Some(res) = field(setup, "sessionResumption") {
            self.resumption = true;
            if let Some(handle) = field(res, "handle").and_then(Value::as_str) {
                let found = self
                    .shared
                    .handles
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(handle)
                    .copied();
                match found {
                    Some(state) => self.state = state,
                    None => {
                        return self
                            .close(1007, "Request contains an invalid argument. Invalid session resumption handle.")
                            .await;
                    }
                }
            } else {
                self.new_session();
            }
        } else {
            self.new_session();
        }
        self.history_pending = field(setup, "historyConfig")
            .and_then(|h| field(h, "initialHistoryInClientContent"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        self.send(json!({"setupComplete": {}})).await?;
        self.setup_done = true;
        if self.resumption {
            self.issue_handle().await?;
        }
        Ok(())
    }

    fn new_session(&mut self) {
        self.state = SessionState {
            session: self.shared.sessions.fetch_add(1, Ordering::SeqCst),
            next_turn: 0,
        };
    }

    async fn issue_handle(&mut self) -> Result<(), Stop> {
        self.handles_issued += 1;
        let handle = format!(
            "handle-s{}-c{}-{}",
            self.state.session, self.connection, self.handles_issued
        );
        self.shared
            .handles
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(handle.clone(), self.state);
        self.send(json!({"sessionResumptionUpdate": {"newHandle": handle, "resumable": true}}))
            .await
    }

    async fn on_realtime(&mut self, body: &Value) -> Result<(), Stop> {
        let Some(obj) = body.as_object() else {
            return self
                .close(
                    1007,
                    "Invalid JSON payload received. realtimeInput must be an object.",
                )
                .await;
        };
        if obj.len() != 1 {
            return self
                .close(1007, "Request contains an invalid argument. realtimeInput must have exactly one field.")
                .await;
        }
        let (name, value) = obj
            .iter()
            .next()
            .map(|(k, v)| (camel(k), v.clone()))
            .unwrap_or_default();
        if !REALTIME_FIELDS.contains(&name.as_str()) {
            let reason = format!(
                "Invalid JSON payload received. Unknown name \"{name}\" at 'realtime_input': Cannot find field."
            );
            return self.close(1007, &reason).await;
        }
        match name.as_str() {
            "audio" => self.on_audio(&value).await,
            "audioStreamEnd" | "activityEnd" => {
                if self.in_speech {
                    self.end_of_turn().await?;
                }
                Ok(())
            }
            "text" => {
                if value.as_str().is_none_or(str::is_empty) {
                    return self
                        .close(1007, "Request contains an invalid argument. Empty text.")
                        .await;
                }
                self.end_of_turn().await
            }
            _ => Ok(()),
        }
    }

    async fn on_audio(&mut self, blob: &Value) -> Result<(), Stop> {
        let mime = field(blob, "mimeType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !mime.starts_with("audio/pcm") {
            let reason =
                format!("Request contains an invalid argument. Unsupported MIME type: {mime}");
            return self.close(1007, &reason).await;
        }
        let rate = mime
            .split(';')
            .find_map(|p| p.trim().strip_prefix("rate="))
            .map_or(Some(16_000), |r| r.parse::<u32>().ok())
            .filter(|r| (8_000..=48_000).contains(r));
        let Some(rate) = rate else {
            let reason = format!("Request contains an invalid argument. Bad audio rate in {mime}");
            return self.close(1007, &reason).await;
        };
        let data = field(blob, "data")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let pcm = match B64.decode(data) {
            Ok(p) if p.len() % 2 == 0 => p,
            _ => {
                return self
                    .close(1007, "Invalid JSON payload received. Invalid audio data (base64 PCM16 expected).")
                    .await;
            }
        };
        let samples: Vec<i16> = pcm
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        if samples.is_empty() {
            return Ok(());
        }
        let length = Duration::from_secs_f64(samples.len() as f64 / f64::from(rate));
        let rms = f64::from(voxline_audio::level::rms(&samples)) * 32768.0;
        self.turn_audio += length;
        if rms > self.shared.options.speech_rms {
            self.voiced += length;
            self.quiet = Duration::ZERO;
            if self.voiced >= Duration::from_millis(100) && !self.in_speech {
                self.in_speech = true;
                if self.reply.is_some() {
                    self.interrupt().await?;
                }
            }
        } else {
            self.quiet += length;
            if self.quiet >= self.shared.options.end_silence {
                if self.in_speech {
                    self.end_of_turn().await?;
                }
                self.voiced = Duration::ZERO;
            }
        }
        Ok(())
    }

    async fn interrupt(&mut self) -> Result<(), Stop> {
        let Some(reply) = self.reply.take() else {
            return Ok(());
        };
        self.send(json!({"serverContent": {"interrupted": true}}))
            .await?;
        if let Some(id) = reply.waiting_call {
            self.send(json!({"toolCallCancellation": {"ids": [id]}}))
                .await?;
        }
        self.send(json!({"serverContent": {"turnComplete": true}}))
            .await?;
        if self.shared.options.silent_after_interrupt {
            self.silenced = true;
        }
        Ok(())
    }

    /// The caller's turn ended: transcribe it and start the reply.
    async fn end_of_turn(&mut self) -> Result<(), Stop> {
        self.in_speech = false;
        self.voiced = Duration::ZERO;
        if self.silenced {
            return Ok(());
        }
        if self.reply.is_some() {
            self.interrupt().await?;
        }
        let shared = Arc::clone(&self.shared);
        let opts = &shared.options;
        let turn = opts
            .script
            .get(self.state.next_turn)
            .or(opts.script.last())
            .cloned()
            .unwrap_or_else(|| Turn::new("OK.", Duration::from_millis(500)));
        self.state.next_turn += 1;
        if let Some(heard) = &turn.heard {
            self.send(
                json!({"serverContent": {"inputTranscription": {"text": heard, "finished": true}}}),
            )
            .await?;
        }
        let mut waiting_call = None;
        if let Some((name, args)) = &turn.tool_call {
            self.calls_made += 1;
            let id = format!("fc-{}-{}", self.state.session, self.calls_made);
            self.send(
                json!({"toolCall": {"functionCalls": [{"id": id, "name": name, "args": args}]}}),
            )
            .await?;
            waiting_call = Some(id);
        }
        let samples_total = (turn.audio.as_secs_f64() * f64::from(OUTPUT_RATE)).round() as usize;
        let tone_hz = turn.tone_hz.unwrap_or(opts.tone_hz);
        self.reply = Some(Reply {
            turn,
            waiting_call,
            samples_total,
            samples_sent: 0,
            next_at: Instant::now() + opts.faults.latency,
            started: false,
            tone: voxline_audio::tone::ToneGenerator::sine(OUTPUT_RATE, tone_hz, 0.3),
        });
        Ok(())
    }

    async fn on_timer(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        if self.close_at.is_some_and(|t| t <= now) {
            return self.close(1000, "Session duration limit reached.").await;
        }
        if self.go_away_at.is_some_and(|t| t <= now) {
            self.go_away_at = None;
            let notice = self.shared.options.go_away_notice;
            self.close_at = Some(now + notice);
            let left = format!("{}s", notice.as_secs_f64());
            return self.send(json!({"goAway": {"timeLeft": left}})).await;
        }
        let chunk_samples =
            (self.shared.options.chunk.as_secs_f64() * f64::from(OUTPUT_RATE)).round() as usize;
        let Some(reply) = self.reply.as_mut() else {
            return Ok(());
        };
        if reply.next_at > now || reply.waiting_call.is_some() {
            return Ok(());
        }
        if reply.samples_sent < reply.samples_total {
            let n = chunk_samples
                .max(1)
                .min(reply.samples_total - reply.samples_sent);
            let samples = reply.tone.generate(n);
            let mut bytes = Vec::with_capacity(n * 2);
            for s in samples {
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            let mut content = Map::new();
            content.insert(
                "modelTurn".into(),
                json!({"parts": [{"inlineData": {"mimeType": format!("audio/pcm;rate={OUTPUT_RATE}"), "data": B64.encode(&bytes)}}]}),
            );
            if !reply.started {
                reply.started = true;
                content.insert(
                    "outputTranscription".into(),
                    json!({"text": reply.turn.reply}),
                );
            }
            reply.samples_sent += n;
            reply.next_at += Duration::from_secs_f64(n as f64 / f64::from(OUTPUT_RATE));
            return self.send(json!({"serverContent": content})).await;
        }
        // Done: the turn's closing messages.
        let sent_audio = reply.samples_total as f64 / f64::from(OUTPUT_RATE);
        self.reply = None;
        self.send(json!({"serverContent": {"generationComplete": true}}))
            .await?;
        self.send(json!({"serverContent": {"turnComplete": true}}))
            .await?;
        let prompt = (self.turn_audio.as_secs_f64() * 32.0).round() as u64;
        let response = (sent_audio * 32.0).round() as u64;
        self.turn_audio = Duration::ZERO;
        self.send(json!({"usageMetadata": {
            "promptTokenCount": prompt,
            "responseTokenCount": response,
            "totalTokenCount": prompt + response,
            "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": prompt}],
            "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": response}],
        }}))
        .await?;
        if self.resumption {
            self.issue_handle().await?;
        }
        Ok(())
    }

    async fn on_client_content(&mut self, body: &Value) -> Result<(), Stop> {
        let turns = field(body, "turns");
        if turns.is_some_and(|t| !t.is_array()) {
            return self
                .close(1007, "Invalid JSON payload received. turns must be a list.")
                .await;
        }
        let complete = field(body, "turnComplete")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if self.history_pending {
            if complete {
                self.history_pending = false;
            }
            return Ok(());
        }
        if complete {
            self.end_of_turn().await?;
        }
        Ok(())
    }

    async fn on_tool_response(&mut self, body: &Value) -> Result<(), Stop> {
        let responses = field(body, "functionResponses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if responses.is_empty() {
            return self
                .close(
                    1007,
                    "Request contains an invalid argument. No function responses.",
                )
                .await;
        }
        for r in responses {
            let id = field(&r, "id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let pending = self.reply.as_ref().and_then(|p| p.waiting_call.clone());
            if id.is_empty() && !self.vertex {
                return self
                    .close(
                        1007,
                        "Request contains an invalid argument. function_response.id is required.",
                    )
                    .await;
            }
            if pending.as_deref() != Some(id.as_str()) && !(self.vertex && id.is_empty()) {
                let reason =
                    format!("Request contains an invalid argument. Unknown function call id: {id}");
                return self.close(1007, &reason).await;
            }
            if field(&r, "response").is_none_or(|v| !v.is_object()) {
                return self
                    .close(1007, "Invalid JSON payload received. function_response.response must be an object.")
                    .await;
            }
            if let Some(reply) = self.reply.as_mut() {
                reply.waiting_call = None;
                reply.next_at = Instant::now() + self.shared.options.faults.latency;
            }
        }
        Ok(())
    }
}
