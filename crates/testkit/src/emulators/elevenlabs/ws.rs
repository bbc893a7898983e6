//! The WebSocket endpoints: `multi-stream-input` and `stream-input`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::{
    Endpoint, OutputFormat, Shared, Synth, WsClose, WsConnection, WsReceived, alignment,
    error_response, fault_response, invalid_key, model_rejects_language, validation_error,
};

/// Fields a `multi-stream-input` message may carry.
const MULTI_FIELDS: &[&str] = &[
    "text",
    "context_id",
    "flush",
    "close_context",
    "close_socket",
    "voice_settings",
    "generation_config",
    "pronunciation_dictionary_locators",
    "xi_api_key",
    "authorization",
    "try_trigger_generation",
];

/// Fields a `stream-input` message may carry.
const SINGLE_FIELDS: &[&str] = &[
    "text",
    "flush",
    "voice_settings",
    "generation_config",
    "pronunciation_dictionary_locators",
    "xi_api_key",
    "authorization",
    "try_trigger_generation",
];

const VOICE_SETTINGS_REASON: &str = "voice_settings field must be provided in the first message and then either be not provided or not change.";
const GENERATION_CONFIG_REASON: &str = "generation_config field must be provided in the first message and then either be not provided or not change.";
const DEFAULT_SCHEDULE: [usize; 4] = [120, 160, 250, 290];

pub(super) async fn multi_stream_input(
    state: State<Arc<Shared>>,
    path: Path<String>,
    query: Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    handshake(Endpoint::MultiStreamInput, state, path, query, headers, ws)
}

pub(super) async fn stream_input(
    state: State<Arc<Shared>>,
    path: Path<String>,
    query: Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    handshake(Endpoint::StreamInput, state, path, query, headers, ws)
}

/// What the query parameters set.
struct Params {
    format: OutputFormat,
    timeout: Duration,
    auto_mode: bool,
}

fn handshake(
    endpoint: Endpoint,
    State(shared): State<Arc<Shared>>,
    Path(voice_id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let id = shared.next_connection.fetch_add(1, Ordering::SeqCst);
    let api_key = headers
        .get("xi-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut query = BTreeMap::new();
    let mut duplicate = None;
    for (k, v) in pairs {
        if query.insert(k.clone(), v).is_some() {
            duplicate = Some(k);
        }
    }
    let result = if shared.should_fail() {
        Err(fault_response(shared.options.faults.status))
    } else if api_key
        .as_deref()
        .is_some_and(|k| k != shared.options.api_key)
    {
        Err(invalid_key())
    } else if let Some(k) = duplicate {
        Err(validation_error(&["query", &k], "parameter given twice"))
    } else {
        parse_params(&query, shared.options.default_inactivity_timeout)
    };
    let status = match &result {
        Ok(_) => 101,
        Err(response) => response.status().as_u16(),
    };
    shared.connections.push(WsConnection {
        id,
        endpoint,
        voice_id,
        query,
        api_key: api_key.clone(),
        status,
    });
    let params = match result {
        Ok(params) => params,
        Err(response) => return response,
    };
    let synth = Synth::new(params.format, &shared.options);
    ws.on_upgrade(move |socket| async move {
        let now = Instant::now();
        let conn = Conn {
            shared,
            id,
            single: endpoint == Endpoint::StreamInput,
            socket,
            synth,
            auto_mode: params.auto_mode,
            timeout: params.timeout,
            authed: api_key.is_some(),
            first_message: true,
            contexts: HashMap::new(),
            queue: VecDeque::new(),
            next_at: now,
            last_message: now,
            audio_sent: 0,
            closing_socket: false,
        };
        conn.run().await;
    })
}

#[allow(
    clippy::result_large_err,
    reason = "a refusal is the response itself, once per handshake"
)]
fn parse_params(
    query: &BTreeMap<String, String>,
    default_timeout: Duration,
) -> Result<Params, Response> {
    let mut params = Params {
        format: OutputFormat::Compressed(16),
        timeout: default_timeout,
        auto_mode: false,
    };
    for (key, value) in query {
        let bad = || validation_error(&["query", key], &format!("invalid value {value:?}"));
        match key.as_str() {
            "model_id" if value.is_empty() => return Err(bad()),
            "model_id" => {}
            "output_format" => {
                if !OutputFormat::WS.contains(&value.as_str()) {
                    return Err(bad());
                }
                params.format = OutputFormat::parse(value).ok_or_else(bad)?;
            }
            "language_code" => {
                let model = query.get("model_id").map_or("", String::as_str);
                if model_rejects_language(model) {
                    return Err(error_response(
                        StatusCode::BAD_REQUEST,
                        "unsupported_language",
                        &format!("Model {model} does not support language_code {value}"),
                    ));
                }
                if value.len() < 2 || !value.chars().all(|c| c.is_ascii_lowercase()) {
                    return Err(bad());
                }
            }
            "inactivity_timeout" => match value.parse::<u64>() {
                Ok(s @ 1..=180) => params.timeout = Duration::from_secs(s),
                _ => return Err(bad()),
            },
            "auto_mode" => params.auto_mode = parse_bool(value).ok_or_else(bad)?,
            "sync_alignment" | "enable_ssml_parsing" | "enable_logging" => {
                parse_bool(value).ok_or_else(bad)?;
            }
            "apply_text_normalization" if matches!(value.as_str(), "auto" | "on" | "off") => {}
            "optimize_streaming_latency"
                if matches!(value.as_str(), "0" | "1" | "2" | "3" | "4") => {}
            "apply_text_normalization" | "optimize_streaming_latency" => return Err(bad()),
            _ => {
                return Err(validation_error(&["query", key], "unknown query parameter"));
            }
        }
    }
    Ok(params)
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// One context's state.
#[derive(Debug)]
struct Ctx {
    /// `voice_settings` of the first message (`None` if it had none or null).
    voice_settings: Option<Value>,
    generation_config: Option<Value>,
    schedule: Vec<usize>,
    generations: usize,
    buffer: String,
    last_activity: Instant,
    /// `close_context` (or end of input) received; `isFinal` is queued.
    closed: bool,
}

/// Something to send, in order.
#[derive(Debug)]
struct Out {
    context: String,
    delay: Duration,
    kind: OutKind,
}

#[derive(Debug)]
enum OutKind {
    Audio {
        audio: Vec<u8>,
        alignment: Option<Value>,
    },
    Final,
}

/// Why the connection loop stops.
enum Stop {
    /// Send this close (after an error message if `error` is set) and stop.
    Close {
        code: u16,
        reason: String,
        error: Option<(&'static str, String)>,
    },
    /// The client went away, or the connection is cut on purpose: no close frame.
    Gone,
}

impl Stop {
    fn policy(error: &'static str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Close {
            code: 1008,
            reason: message.clone(),
            error: Some((error, message)),
        }
    }
}

struct Conn {
    shared: Arc<Shared>,
    id: usize,
    single: bool,
    socket: WebSocket,
    synth: Synth,
    auto_mode: bool,
    timeout: Duration,
    authed: bool,
    first_message: bool,
    /// By context id; `""` is `stream-input`'s one context.
    contexts: HashMap<String, Ctx>,
    queue: VecDeque<Out>,
    /// When the head of `queue` may be sent.
    next_at: Instant,
    last_message: Instant,
    audio_sent: u32,
    /// Close 1000 once `queue` is empty.
    closing_socket: bool,
}

impl Conn {
    async fn run(mut self) {
        let stop = loop {
            let deadline = self.inactivity_deadline();
            let sending = !self.queue.is_empty();
            // What is due goes out now: tokio's timer rounds a deadline up to the next
            // millisecond tick, which would add up to 1 ms to every zero-delay chunk.
            if sending && self.next_at <= Instant::now() {
                if let Err(stop) = self.send_next().await {
                    break stop;
                }
                tokio::task::yield_now().await;
                continue;
            }
            tokio::select! {
                message = self.socket.recv() => match message {
                    Some(Ok(message)) => {
                        if let Err(stop) = self.on_message(message) {
                            break stop;
                        }
                    }
                    _ => break Stop::Gone,
                },
                () = tokio::time::sleep_until(self.next_at), if sending => {
                    if let Err(stop) = self.send_next().await {
                        break stop;
                    }
                }
                () = tokio::time::sleep_until(deadline), if !self.closing_socket => {
                    break Stop::policy(
                        "input_timeout_exceeded",
                        format!(
                            "Have not received a new text input within the timeout of {} seconds. \
                             Streaming input terminated. Please make sure to either feed the input \
                             in the timely manner, or to send the end of input text (empty string \
                             \"\") when done.",
                            self.timeout.as_secs()
                        ),
                    );
                }
            }
        };
        if let Stop::Close {
            code,
            reason,
            error,
        } = stop
        {
            if let Some((error, message)) = error {
                let body = json!({"message": message, "error": error, "code": code});
                let _ = self
                    .socket
                    .send(Message::Text(body.to_string().into()))
                    .await;
            }
            let reason = truncate(&reason, 123);
            self.shared.closes.push(WsClose {
                connection: self.id,
                code,
                reason: reason.clone(),
            });
            let _ = self
                .socket
                .send(Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                })))
                .await;
            // Give the client a moment to answer the close before the drop.
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while let Some(Ok(_)) = self.socket.recv().await {}
            })
            .await;
        }
    }

    /// When the oldest open context (or the idle connection) times out.
    fn inactivity_deadline(&self) -> Instant {
        let oldest = self
            .contexts
            .values()
            .filter(|c| !c.closed)
            .map(|c| c.last_activity)
            .min()
            .unwrap_or(self.last_message);
        oldest + self.timeout
    }

    async fn send_next(&mut self) -> Result<(), Stop> {
        let Some(out) = self.queue.pop_front() else {
            return Ok(());
        };
        let mut body = Map::new();
        match out.kind {
            OutKind::Audio { audio, alignment } => {
                body.insert(
                    "audio".into(),
                    base64::engine::general_purpose::STANDARD
                        .encode(audio)
                        .into(),
                );
                let alignment = alignment.unwrap_or(Value::Null);
                body.insert("normalizedAlignment".into(), alignment.clone());
                body.insert("alignment".into(), alignment);
            }
            OutKind::Final => {
                body.insert("isFinal".into(), true.into());
                self.contexts.remove(&out.context);
            }
        }
        let audio = body.contains_key("audio");
        if !self.single {
            body.insert("contextId".into(), out.context.into());
        }
        if self
            .socket
            .send(Message::Text(Value::Object(body).to_string().into()))
            .await
            .is_err()
        {
            return Err(Stop::Gone);
        }
        if audio {
            self.audio_sent += 1;
            if self.shared.cut_after(self.audio_sent) {
                return Err(Stop::Gone);
            }
        }
        if let Some(next) = self.queue.front() {
            self.next_at = Instant::now() + next.delay;
        } else if self.closing_socket {
            return Err(Stop::Close {
                code: 1000,
                reason: String::new(),
                error: None,
            });
        }
        Ok(())
    }

    fn push(&mut self, out: Out) {
        if self.queue.is_empty() {
            self.next_at = Instant::now() + out.delay;
        }
        self.queue.push_back(out);
    }

    fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let now = Instant::now();
        let at = self.shared.now();
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                self.record(at, Value::Null);
                return Err(Stop::Close {
                    code: 1003,
                    reason: "Binary messages are not supported".into(),
                    error: None,
                });
            }
            Message::Close(_) => return Err(Stop::Gone),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
        };
        let parsed: Option<Map<String, Value>> = serde_json::from_str(text.as_str()).ok();
        self.record(at, parsed.clone().map_or(Value::Null, Value::Object));
        let Some(message) = parsed else {
            return Err(Stop::policy("invalid_message", "Invalid JSON message"));
        };
        self.last_message = now;
        let allowed = if self.single {
            SINGLE_FIELDS
        } else {
            MULTI_FIELDS
        };
        if let Some(field) = message.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(Stop::policy(
                "invalid_message",
                format!("Unexpected field {field:?} in message"),
            ));
        }
        if self.first_message {
            self.first_message = false;
            if !self.authed {
                let key = &self.shared.options.api_key;
                let ok = message.get("xi_api_key").and_then(Value::as_str) == Some(key)
                    || message.get("authorization").and_then(Value::as_str)
                        == Some(format!("Bearer {key}").as_str());
                if !ok {
                    return Err(Stop::policy("invalid_api_key", "Invalid API key"));
                }
                self.authed = true;
            }
        }
        if self.closing_socket {
            return Ok(());
        }
        if self.single {
            self.on_single(&message, now)
        } else {
            self.on_multi(&message, now)
        }
    }

    fn record(&self, at: Duration, message: Value) {
        self.shared.messages.push(WsReceived {
            connection: self.id,
            at,
            message,
        });
    }

    fn on_multi(&mut self, message: &Map<String, Value>, now: Instant) -> Result<(), Stop> {
        let flag = |name: &str| message.get(name).and_then(Value::as_bool) == Some(true);
        let text = match message.get("text") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(Stop::policy("invalid_message", "text must be a string")),
        };
        if flag("close_socket") {
            let ids: Vec<String> = self.contexts.keys().cloned().collect();
            for id in ids {
                self.close_context(&id);
            }
            self.closing_socket = true;
            if self.queue.is_empty() {
                return Err(Stop::Close {
                    code: 1000,
                    reason: String::new(),
                    error: None,
                });
            }
            return Ok(());
        }
        let id = match message.get("context_id") {
            Some(Value::String(id)) => id.clone(),
            None | Some(Value::Null) => {
                // A context-less `{"text":""}` keeps the connection alive.
                if text == Some("") && message.len() == 1 {
                    return Ok(());
                }
                String::new()
            }
            Some(_) => {
                return Err(Stop::policy(
                    "invalid_message",
                    "context_id must be a string",
                ));
            }
        };
        self.on_context(&id, message, text, now)?;
        if flag("close_context") {
            self.close_context(&id);
        }
        Ok(())
    }

    fn on_single(&mut self, message: &Map<String, Value>, now: Instant) -> Result<(), Stop> {
        let text = match message.get("text") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(Stop::policy(
                    "invalid_message",
                    "text field is required and must be a string",
                ));
            }
        };
        if !self.contexts.contains_key("") && text != " " {
            return Err(Stop::policy(
                "invalid_message",
                "The first message must have text set to a single space \" \"",
            ));
        }
        if text.is_empty() {
            // End of input: synthesise the rest, isFinal, close.
            if let Some(ctx) = self.contexts.get_mut("") {
                ctx.last_activity = now;
            }
            self.generate("");
            self.close_context("");
            self.closing_socket = true;
            return Ok(());
        }
        self.on_context("", message, Some(text), now)
    }

    /// Opens the context if new, checks the first-message rule, buffers the text and
    /// generates what the schedule or a flush asks for.
    fn on_context(
        &mut self,
        id: &str,
        message: &Map<String, Value>,
        text: Option<&str>,
        now: Instant,
    ) -> Result<(), Stop> {
        let setting = |name: &str| message.get(name).filter(|v| !v.is_null()).cloned();
        let voice_settings = setting("voice_settings");
        let generation_config = setting("generation_config");
        match self.contexts.get(id) {
            Some(ctx) if ctx.closed => return Ok(()),
            Some(ctx) => {
                if voice_settings.is_some() && voice_settings != ctx.voice_settings {
                    return Err(Stop::policy("invalid_message", VOICE_SETTINGS_REASON));
                }
                if generation_config.is_some() && generation_config != ctx.generation_config {
                    return Err(Stop::policy("invalid_message", GENERATION_CONFIG_REASON));
                }
            }
            None => {
                if self.contexts.len() >= self.shared.options.max_contexts {
                    return Err(Stop::policy(
                        "max_active_conversations",
                        format!(
                            "Maximum simultaneous contexts per WebSocket connection exceeded ({}). \
                             Please close an existing context before opening a new one.",
                            self.shared.options.max_contexts
                        ),
                    ));
                }
                let schedule = schedule(generation_config.as_ref())?;
                self.contexts.insert(
                    id.to_owned(),
                    Ctx {
                        voice_settings,
                        generation_config,
                        schedule,
                        generations: 0,
                        buffer: String::new(),
                        last_activity: now,
                        closed: false,
                    },
                );
            }
        }
        let auto_mode = self.auto_mode;
        let Some(ctx) = self.contexts.get_mut(id) else {
            return Ok(());
        };
        ctx.last_activity = now;
        let mut generate = false;
        if let Some(text) = text.filter(|t| !t.is_empty()) {
            ctx.buffer.push_str(text);
            let buffered = ctx.buffer.trim().chars().count();
            generate = if auto_mode {
                ctx.buffer.trim_end().ends_with(['.', '!', '?'])
            } else {
                let threshold = ctx.schedule[ctx.generations.min(ctx.schedule.len() - 1)];
                buffered >= threshold
            };
        }
        if generate || message.get("flush").and_then(Value::as_bool) == Some(true) {
            self.generate(id);
        }
        Ok(())
    }

    /// Synthesises everything buffered for context `id`.
    fn generate(&mut self, id: &str) {
        let Some(ctx) = self.contexts.get_mut(id) else {
            return;
        };
        let text = std::mem::take(&mut ctx.buffer);
        if text.trim().is_empty() {
            return;
        }
        ctx.generations += 1;
        let pieces = self.synth.pieces(&text);
        let latency = self.shared.options.faults.latency;
        let interval = self.shared.options.chunk_interval;
        let mut alignment = Some(alignment(&text, self.shared.options.ms_per_char));
        for (i, audio) in pieces.into_iter().enumerate() {
            self.push(Out {
                context: id.to_owned(),
                delay: if i == 0 { latency } else { interval },
                kind: OutKind::Audio {
                    audio,
                    alignment: alignment.take(),
                },
            });
        }
    }

    /// Drops the context's unflushed text and queues its `isFinal` after the audio
    /// already generated.
    fn close_context(&mut self, id: &str) {
        let Some(ctx) = self.contexts.get_mut(id) else {
            return;
        };
        if ctx.closed {
            return;
        }
        ctx.closed = true;
        ctx.buffer.clear();
        self.push(Out {
            context: id.to_owned(),
            delay: Duration::ZERO,
            kind: OutKind::Final,
        });
    }
}

/// The context's chunk schedule from `generation_config`, validated (50 to 500 each).
fn schedule(config: Option<&Value>) -> Result<Vec<usize>, Stop> {
    let Some(config) = config else {
        return Ok(DEFAULT_SCHEDULE.to_vec());
    };
    let invalid = || Stop::policy("invalid_message", "Invalid generation_config");
    let Some(object) = config.as_object() else {
        return Err(invalid());
    };
    if object.keys().any(|k| k != "chunk_length_schedule") {
        return Err(invalid());
    }
    let Some(items) = object.get("chunk_length_schedule") else {
        return Ok(DEFAULT_SCHEDULE.to_vec());
    };
    let items = items.as_array().ok_or_else(invalid)?;
    let mut schedule = Vec::with_capacity(items.len());
    for item in items {
        match item.as_u64() {
            Some(n @ 50..=500) => schedule.push(n as usize),
            _ => return Err(invalid()),
        }
    }
    if schedule.is_empty() {
        return Err(invalid());
    }
    Ok(schedule)
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons_fit_a_close_frame() {
        let long = "é".repeat(100);
        let cut = truncate(&long, 123);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len(), 122);
    }

    #[test]
    fn schedules_are_validated() {
        assert!(schedule(Some(&json!({"chunk_length_schedule": [50]}))).is_ok());
        assert!(schedule(Some(&json!({"chunk_length_schedule": [10]}))).is_err());
        assert!(schedule(Some(&json!({"chunkLengthSchedule": [50]}))).is_err());
    }
}
