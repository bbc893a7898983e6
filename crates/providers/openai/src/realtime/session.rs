//! One Realtime session: the task that owns the WebSocket, forwards caller audio,
//! turns server events into [`RealtimeEvent`]s and replaces an expired or dropped
//! connection with a new, re-seeded session.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_audio::Transcoder;
use voxline_core::{
    ChatMessage, ErrorKind, ProviderError, RealtimeConfig, RealtimeEvent, RealtimeInput,
    RealtimePeer, RealtimeSession, RetryPolicy, Role, ToolCall, Ttfb, Usage, UsageKind,
};

use super::events::{self, ApiError, ServerEvent, TranscriptionUsage, WireFormat};
use super::{OpenAiRealtimeConfig, TurnDetection};
use crate::http::{PROVIDER, error_message};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Setup = Pin<Box<dyn Future<Output = Result<Box<Socket>, ProviderError>> + Send>>;

/// A connection that ended sooner than this after it was set up counts as a quick
/// failure; after [`MAX_QUICK_FAILURES`] in a row the session gives up.
const QUICK_FAILURE: Duration = Duration::from_secs(5);
const MAX_QUICK_FAILURES: u32 = 3;
/// Text and tool results kept while a replacement session is set up.
const MAX_DEFERRED: usize = 32;
/// How long to wait for the server's close frame after ours.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Error codes that are harmless races (logged, not reported).
const BENIGN_CODES: [&str; 2] = [
    "response_cancel_not_active",
    "conversation_already_has_active_response",
];

/// Connects, configures the session and spawns its task.
pub(super) async fn open(
    config: OpenAiRealtimeConfig,
    session: RealtimeConfig,
) -> Result<RealtimeSession, ProviderError> {
    voxline_core::install_tls();
    let input_wire = WireFormat::for_call(session.input_format);
    let output_wire = WireFormat::for_call(session.output_format);
    let transcoder = |from, to| {
        Transcoder::new(from, to).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("cannot convert {from} to {to}: {e}"),
            )
        })
    };
    let input_tx = (input_wire.audio_format() != session.input_format)
        .then(|| transcoder(session.input_format, input_wire.audio_format()))
        .transpose()?;
    let output_tx = (output_wire.audio_format() != session.output_format)
        .then(|| transcoder(output_wire.audio_format(), session.output_format))
        .transpose()?;
    if session.temperature.is_some() {
        tracing::debug!("openai realtime: temperature is not part of the GA session; not sent");
    }
    let connector = Arc::new(Connector {
        url: config.url()?,
        key: config.key(),
        organization: config.api.organization.clone(),
        project: config.api.project.clone(),
        retry: config.api.retry,
        connect_timeout: config.api.connect_timeout,
        setup_timeout: config.setup_timeout,
        session_update: config.session_update(&session).to_string(),
    });
    let seed: Vec<String> = session.history.iter().filter_map(seed_item).collect();
    let mut history = VecDeque::new();
    for m in &session.history {
        if matches!(m.role, Role::User | Role::Assistant) && !m.content.is_empty() {
            history.push_back(HistoryItem {
                item_id: None,
                role: m.role,
                text: m.content.clone(),
            });
        }
    }
    while history.len() > config.history_items {
        history.pop_front();
    }
    tracing::debug!(url = %connector.url, input = ?input_wire, output = ?output_wire, "openai realtime: connecting");
    let socket = connector.setup(seed).await?;
    tracing::info!(model = %config.model, "openai realtime: session configured");
    let (handle, peer) = RealtimeSession::channel(PROVIDER, config.channel_capacity);
    let gap_cap = input_wire.audio_format().bytes_in(config.gap_audio);
    let task = Task {
        peer,
        connector,
        link: Link::Up(socket),
        connected_at: Instant::now(),
        quick_failures: 0,
        input_wire,
        output_wire,
        input_tx,
        output_tx,
        interrupts: config.turn_detection.interrupts(),
        manual: config.turn_detection == TurnDetection::Manual,
        history,
        history_cap: config.history_items,
        cuts: HashMap::new(),
        gap: VecDeque::new(),
        gap_bytes: 0,
        gap_cap,
        deferred: VecDeque::new(),
        response: None,
        discarded: HashSet::new(),
        item: None,
        seen_calls: HashSet::new(),
        pending_calls: HashSet::new(),
        want_response: false,
        turn_started: None,
        audio_since_speech: false,
        beta_reported: false,
        caller_gone: false,
    };
    tokio::spawn(task.run());
    Ok(handle)
}

/// The `conversation.item.create` seeding one history message, if it has one.
fn seed_item(m: &ChatMessage) -> Option<String> {
    match m.role {
        Role::Tool => m
            .tool_call_id
            .as_deref()
            .map(|id| events::function_output_item(id, &m.content)),
        Role::System => Some(events::message_item("system", &m.content)),
        Role::User => Some(events::message_item("user", &m.content)),
        Role::Assistant if !m.tool_calls.is_empty() => {
            // One item per call; the text (if any) is lost, which the model tolerates.
            m.tool_calls.first().map(|c| {
                serde_json::json!({"type": "conversation.item.create", "item": {
                    "type": "function_call", "call_id": c.id, "name": c.name,
                    "arguments": c.arguments}})
                .to_string()
            })
        }
        Role::Assistant => Some(events::message_item("assistant", &m.content)),
    }
}

/// Opens connections: the URL, the headers and the `session.update` to send first.
struct Connector {
    url: Url,
    key: Option<String>,
    organization: Option<String>,
    project: Option<String>,
    retry: RetryPolicy,
    connect_timeout: Duration,
    setup_timeout: Duration,
    session_update: String,
}

impl Connector {
    /// Connects and configures a session (retrying retryable failures), then sends
    /// the `seed` items.
    fn setup(self: &Arc<Self>, seed: Vec<String>) -> Setup {
        let this = Arc::clone(self);
        Box::pin(async move { this.retry.run(|| this.attempt(&seed)).await })
    }

    async fn attempt(&self, seed: &[String]) -> Result<Box<Socket>, ProviderError> {
        let mut socket = timeout(self.connect_timeout, self.handshake())
            .await
            .map_err(|_| {
                ProviderError::new(
                    PROVIDER,
                    ErrorKind::Timeout,
                    "WebSocket handshake timed out",
                )
            })??;
        socket
            .send(Message::text(self.session_update.clone()))
            .await
            .map_err(send_error)?;
        let deadline = Instant::now() + self.setup_timeout;
        loop {
            let frame = timeout_at(deadline, socket.next()).await.map_err(|_| {
                ProviderError::new(PROVIDER, ErrorKind::Timeout, "no session.updated in time")
            })?;
            match frame {
                Some(Ok(Message::Text(text))) => match ServerEvent::parse(&text) {
                    Ok(ServerEvent::SessionUpdated) => break,
                    Ok(ServerEvent::Error(e)) => {
                        tracing::warn!(code = ?e.code, param = ?e.param, message = %e.message, "openai realtime: session.update rejected");
                        return Err(api_error(&e));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "openai realtime: unreadable event"),
                },
                Some(Ok(Message::Close(frame))) => return Err(close_error(frame.as_ref())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(read_error(e)),
                None => {
                    return Err(ProviderError::new(
                        PROVIDER,
                        ErrorKind::Connection,
                        "connection closed during setup",
                    ));
                }
            }
        }
        for item in seed {
            socket
                .send(Message::text(item.clone()))
                .await
                .map_err(send_error)?;
        }
        Ok(socket)
    }

    async fn handshake(&self) -> Result<Box<Socket>, ProviderError> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        })?;
        let headers = request.headers_mut();
        if let Some(key) = &self.key {
            let mut auth = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                ProviderError::new(PROVIDER, ErrorKind::Auth, "API key is not a valid header")
            })?;
            auth.set_sensitive(true);
            headers.insert("authorization", auth);
        }
        for (name, value) in [
            ("openai-organization", &self.organization),
            ("openai-project", &self.project),
        ] {
            if let Some(value) = value.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
                headers.insert(name, value);
            }
        }
        // No Nagle: audio frames are small and latency-critical.
        match tokio_tungstenite::connect_async_with_config(request, None, true).await {
            Ok((socket, response)) => {
                tracing::debug!(request_id = ?response.headers().get("x-request-id"), "openai realtime: connected");
                Ok(Box::new(socket))
            }
            Err(e) => Err(handshake_error(e)),
        }
    }
}

/// A refused handshake: its status (401/403 permanent, 429/5xx retryable), the
/// message of its JSON error body and `Retry-After`.
fn handshake_error(error: tungstenite::Error) -> ProviderError {
    match error {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let mut e = ProviderError::from_http(
                PROVIDER,
                response.status().as_u16(),
                error_message(&body),
            );
            if let Some(after) =
                crate::http::retry_after(response.headers(), std::time::SystemTime::now())
            {
                e = e.with_retry_after(after);
            }
            e
        }
        tungstenite::Error::Url(e) => {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        }
        other => ProviderError::new(PROVIDER, ErrorKind::Connection, other.to_string()),
    }
}

fn send_error(e: tungstenite::Error) -> ProviderError {
    ProviderError::new(PROVIDER, ErrorKind::Connection, format!("send failed: {e}"))
}

fn read_error(e: tungstenite::Error) -> ProviderError {
    ProviderError::new(PROVIDER, ErrorKind::Connection, format!("read failed: {e}"))
}

fn close_error(frame: Option<&CloseFrame>) -> ProviderError {
    match frame {
        Some(f) => ProviderError::from_close(PROVIDER, u16::from(f.code), f.reason.as_str()),
        None => ProviderError::from_close(PROVIDER, 1005, "closed without a code"),
    }
}

/// An `error` event as a [`ProviderError`]: `session_expired` and server errors are
/// retryable, rate limits too; invalid requests and bad keys are permanent.
pub(super) fn api_error(e: &ApiError) -> ProviderError {
    let code = e.code.as_deref().unwrap_or_default();
    let kind = match (e.kind.as_str(), code) {
        (_, "session_expired") => ErrorKind::Connection,
        (_, "invalid_api_key") | ("authentication_error", _) => ErrorKind::Auth,
        (_, c) if c.contains("rate_limit") => ErrorKind::RateLimited,
        ("rate_limit_error", _) => ErrorKind::RateLimited,
        ("server_error", _) => ErrorKind::Server,
        ("invalid_request_error", _) => ErrorKind::BadRequest,
        _ => ErrorKind::Protocol,
    };
    let mut message = e.message.clone();
    if !code.is_empty() {
        message.push_str(&format!(" [{code}]"));
    }
    if let Some(param) = &e.param {
        message.push_str(&format!(" (param {param})"));
    }
    ProviderError::new(PROVIDER, kind, message)
}

enum Link {
    Up(Box<Socket>),
    SettingUp(Setup),
}

enum Step {
    Input(Option<RealtimeInput>),
    Frame(Option<Result<Message, tungstenite::Error>>),
    Ready(Result<Box<Socket>, ProviderError>),
}

/// A user or assistant text item, for re-seeding a replacement session.
#[derive(Debug, Clone)]
struct HistoryItem {
    item_id: Option<String>,
    role: Role,
    text: String,
}

/// The assistant audio item being received (what a truncation targets).
#[derive(Debug)]
struct ItemAudio {
    id: String,
    /// Bytes received for it, in the wire output format.
    bytes: u64,
    /// Where it was last truncated, ms.
    truncated_at: Option<u64>,
}

struct Task {
    peer: RealtimePeer,
    connector: Arc<Connector>,
    link: Link,
    connected_at: Instant,
    quick_failures: u32,
    input_wire: WireFormat,
    output_wire: WireFormat,
    input_tx: Option<Transcoder>,
    output_tx: Option<Transcoder>,
    interrupts: bool,
    manual: bool,
    history: VecDeque<HistoryItem>,
    history_cap: usize,
    /// Fraction of an assistant item the caller heard, by item id (truncations).
    cuts: HashMap<String, f64>,
    /// Caller audio (wire format) waiting for a replacement session.
    gap: VecDeque<Vec<u8>>,
    gap_bytes: usize,
    gap_cap: usize,
    deferred: VecDeque<RealtimeInput>,
    /// The response in progress.
    response: Option<String>,
    /// Responses whose remaining output is dropped (barge-in, interrupt).
    discarded: HashSet<String>,
    item: Option<ItemAudio>,
    seen_calls: HashSet<String>,
    pending_calls: HashSet<String>,
    /// Tool results are all in but the calling response has not finished yet.
    want_response: bool,
    /// When the caller's turn ended (or text was sent), for TTFB.
    turn_started: Option<Instant>,
    /// Model audio was delivered since the caller last started speaking.
    audio_since_speech: bool,
    beta_reported: bool,
    caller_gone: bool,
}

impl Task {
    async fn run(mut self) {
        loop {
            let step = match &mut self.link {
                Link::Up(socket) => tokio::select! {
                    frame = socket.next() => Step::Frame(frame),
                    input = self.peer.input.recv() => Step::Input(input),
                },
                Link::SettingUp(setup) => tokio::select! {
                    ready = setup.as_mut() => Step::Ready(ready),
                    input = self.peer.input.recv() => Step::Input(input),
                },
            };
            let go_on = match step {
                Step::Input(None) => {
                    self.close().await;
                    return;
                }
                Step::Input(Some(input)) => self.on_input(input).await,
                Step::Frame(frame) => self.on_frame(frame).await,
                Step::Ready(ready) => self.on_ready(ready).await,
            };
            if !go_on || self.caller_gone {
                self.close().await;
                return;
            }
        }
    }

    async fn emit(&mut self, event: RealtimeEvent) {
        if !self.peer.send(event).await {
            self.caller_gone = true;
        }
    }

    /// Sends a text event on the live connection; a failure starts a reconnect.
    async fn send(&mut self, text: String) -> bool {
        let Link::Up(socket) = &mut self.link else {
            return true;
        };
        match socket.send(Message::text(text)).await {
            Ok(()) => true,
            Err(e) => self.on_drop(send_error(e)).await,
        }
    }

    async fn close(&mut self) {
        if let Link::Up(socket) = &mut self.link {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                let _ = timeout(CLOSE_TIMEOUT, async {
                    while let Some(Ok(_)) = socket.next().await {}
                })
                .await;
            }
            tracing::debug!("openai realtime: closed");
        }
    }

    // ---- caller input -------------------------------------------------------

    async fn on_input(&mut self, input: RealtimeInput) -> bool {
        match input {
            RealtimeInput::Audio(audio) => self.on_audio(&audio).await,
            other if matches!(self.link, Link::SettingUp(_)) => {
                if matches!(
                    other,
                    RealtimeInput::Truncate { .. } | RealtimeInput::Interrupt
                ) {
                    // Nothing plays from a session being set up.
                    return true;
                }
                if self.deferred.len() >= MAX_DEFERRED {
                    tracing::warn!(
                        "openai realtime: too many inputs while reconnecting; dropping one"
                    );
                    self.deferred.pop_front();
                }
                self.deferred.push_back(other);
                true
            }
            RealtimeInput::Text(text) => {
                self.remember(None, Role::User, text.clone());
                self.turn_started = Some(Instant::now());
                self.send(events::message_item("user", &text)).await
                    && self.send(events::response_create()).await
            }
            RealtimeInput::ToolResult { call_id, output } => {
                self.pending_calls.remove(&call_id);
                if !self
                    .send(events::function_output_item(&call_id, &output))
                    .await
                {
                    return false;
                }
                if !self.pending_calls.is_empty() {
                    return true;
                }
                if self.response.is_some() {
                    self.want_response = true;
                    return true;
                }
                self.turn_started = Some(Instant::now());
                self.send(events::response_create()).await
            }
            RealtimeInput::Truncate { heard } => self.on_truncate(heard).await,
            RealtimeInput::Interrupt => {
                if let Some(id) = self.response.clone() {
                    self.discarded.insert(id.clone());
                    if !self.send(events::response_cancel(Some(&id))).await {
                        return false;
                    }
                }
                if self.manual {
                    return self.send(events::clear_input()).await;
                }
                true
            }
            _ => true,
        }
    }

    async fn on_audio(&mut self, audio: &[u8]) -> bool {
        let wire = match &mut self.input_tx {
            Some(t) => t.convert(audio),
            None => audio.to_vec(),
        };
        if wire.is_empty() {
            return true;
        }
        if matches!(self.link, Link::Up(_)) {
            return self.send(events::append(&wire)).await;
        }
        self.gap_bytes += wire.len();
        self.gap.push_back(wire);
        while self.gap_bytes > self.gap_cap {
            match self.gap.pop_front() {
                Some(old) => {
                    self.gap_bytes -= old.len();
                    tracing::warn!(
                        dropped_ms = self.input_wire.millis(old.len() as u64),
                        "openai realtime: reconnect gap too long; oldest caller audio dropped"
                    );
                }
                None => break,
            }
        }
        true
    }

    async fn on_truncate(&mut self, heard: Duration) -> bool {
        let Some(item) = &mut self.item else {
            tracing::debug!("openai realtime: truncate with no assistant audio; skipped");
            return true;
        };
        let received = self.output_wire.millis(item.bytes);
        let heard_ms = u64::try_from(heard.as_millis()).unwrap_or(u64::MAX);
        let end = heard_ms.min(received);
        if received == 0 || item.truncated_at.is_some_and(|at| at <= end) {
            // No audio yet (the service would answer unsupported_content_type), or
            // already cut at least this short.
            return true;
        }
        item.truncated_at = Some(end);
        let id = item.id.clone();
        let fraction = end as f64 / received as f64;
        tracing::debug!(item_id = %id, heard_ms, received_ms = received, audio_end_ms = end, "openai realtime: truncating");
        self.cut_history(&id, fraction);
        self.cuts.insert(id.clone(), fraction);
        if self.cuts.len() > self.history_cap.max(8) * 2 {
            self.cuts.clear();
            self.cuts.insert(id.clone(), fraction);
        }
        self.send(events::truncate(&id, end)).await
    }

    // ---- server events ----------------------------------------------------------

    async fn on_frame(&mut self, frame: Option<Result<Message, tungstenite::Error>>) -> bool {
        match frame {
            Some(Ok(Message::Text(text))) => match ServerEvent::parse(&text) {
                Ok(event) => self.on_event(event).await,
                Err(e) => {
                    tracing::warn!(error = %e, "openai realtime: unreadable event skipped");
                    true
                }
            },
            Some(Ok(Message::Close(frame))) => self.on_drop(close_error(frame.as_ref())).await,
            Some(Ok(Message::Binary(_))) => {
                tracing::warn!("openai realtime: unexpected binary frame ignored");
                true
            }
            Some(Ok(_)) => true,
            Some(Err(e)) => self.on_drop(read_error(e)).await,
            None => {
                self.on_drop(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Connection,
                    "connection closed without a close frame",
                ))
                .await
            }
        }
    }

    async fn on_event(&mut self, event: ServerEvent) -> bool {
        match event {
            ServerEvent::SpeechStarted { item_id, .. } => {
                tracing::debug!(%item_id, "openai realtime: speech started");
                self.emit(RealtimeEvent::SpeechStarted).await;
                if self.interrupts {
                    if let Some(id) = &self.response {
                        self.discarded.insert(id.clone());
                    }
                    if self.audio_since_speech {
                        self.emit(RealtimeEvent::Interrupted).await;
                    }
                }
                self.audio_since_speech = false;
                self.turn_started = None;
            }
            ServerEvent::SpeechStopped { .. } => self.turn_started = Some(Instant::now()),
            ServerEvent::InputTranscriptDelta { delta, .. } if !delta.is_empty() => {
                self.emit(RealtimeEvent::InputTranscript {
                    text: delta,
                    is_final: false,
                })
                .await;
            }
            ServerEvent::InputTranscriptDone {
                item_id,
                transcript,
                usage,
            } => {
                self.remember(Some(item_id), Role::User, transcript.clone());
                self.emit(RealtimeEvent::InputTranscript {
                    text: transcript,
                    is_final: true,
                })
                .await;
                let kind = match usage {
                    Some(TranscriptionUsage::Tokens { input, output }) => Some(UsageKind::Tokens {
                        prompt: input,
                        completion: output,
                    }),
                    Some(TranscriptionUsage::Duration(s)) => Some(UsageKind::AudioSeconds(s)),
                    None => None,
                };
                if let Some(kind) = kind {
                    self.emit(usage_event(kind)).await;
                }
            }
            ServerEvent::ResponseCreated { response_id } => self.response = Some(response_id),
            ServerEvent::AudioDelta {
                response_id,
                item_id,
                audio,
            } => self.on_audio_delta(&response_id, item_id, &audio).await,
            ServerEvent::TranscriptDelta {
                response_id, delta, ..
            } if !self.discarded.contains(&response_id) => {
                self.emit(RealtimeEvent::OutputTranscript {
                    text: delta,
                    is_final: false,
                })
                .await;
            }
            ServerEvent::TranscriptDone {
                response_id,
                item_id,
                transcript,
            } => {
                let mut text = transcript.clone();
                if let Some(fraction) = self.cuts.get(&item_id) {
                    text = cut_text(&text, *fraction);
                }
                self.remember(Some(item_id), Role::Assistant, text);
                if !self.discarded.contains(&response_id) {
                    self.emit(RealtimeEvent::OutputTranscript {
                        text: transcript,
                        is_final: true,
                    })
                    .await;
                }
            }
            ServerEvent::FunctionCallDone { response_id, call }
                if !self.discarded.contains(&response_id) =>
            {
                self.on_call(call).await;
            }
            ServerEvent::ResponseDone(done) => {
                tracing::debug!(response_id = %done.id, status = %done.status, reason = ?done.reason, "openai realtime: response done");
                if done.status == "completed" {
                    for call in done.function_calls {
                        self.on_call(call).await;
                    }
                }
                self.seen_calls.clear();
                if let Some(u) = done.usage {
                    self.emit(usage_event(UsageKind::Tokens {
                        prompt: u.input,
                        completion: u.output,
                    }))
                    .await;
                }
                match done.status.as_str() {
                    "failed" => {
                        let message = done.error.unwrap_or_else(|| "response failed".into());
                        self.emit(RealtimeEvent::Error(ProviderError::new(
                            PROVIDER,
                            ErrorKind::Server,
                            message,
                        )))
                        .await;
                    }
                    "cancelled" => {}
                    _ => self.emit(RealtimeEvent::TurnComplete).await,
                }
                self.discarded.remove(&done.id);
                if self.response.as_deref() == Some(done.id.as_str()) || done.id.is_empty() {
                    self.response = None;
                }
                if self.want_response && self.pending_calls.is_empty() {
                    self.want_response = false;
                    self.turn_started = Some(Instant::now());
                    return self.send(events::response_create()).await;
                }
            }
            ServerEvent::Truncated {
                item_id,
                audio_end_ms,
            } => {
                tracing::debug!(%item_id, audio_end_ms, "openai realtime: item truncated");
            }
            ServerEvent::Error(e) => {
                let code = e.code.as_deref().unwrap_or_default();
                if code == "session_expired" {
                    tracing::info!(message = %e.message, "openai realtime: session expired; starting a new one");
                    return self.on_drop(api_error(&e)).await;
                }
                if BENIGN_CODES.contains(&code) {
                    tracing::debug!(code, "openai realtime: harmless error");
                } else {
                    tracing::warn!(code, kind = %e.kind, param = ?e.param, message = %e.message, "openai realtime: error event");
                    self.emit(RealtimeEvent::Error(api_error(&e))).await;
                }
            }
            ServerEvent::Beta(name) => {
                tracing::error!(event = %name, "openai realtime: beta-protocol event on a GA connection");
                if !self.beta_reported {
                    self.beta_reported = true;
                    self.emit(RealtimeEvent::Error(ProviderError::new(
                        PROVIDER,
                        ErrorKind::Protocol,
                        format!("the server speaks the beta protocol ({name})"),
                    )))
                    .await;
                }
            }
            _ => {}
        }
        true
    }

    async fn on_audio_delta(&mut self, response_id: &str, item_id: String, audio: &[u8]) {
        if self.discarded.contains(response_id) || audio.is_empty() {
            return;
        }
        match &mut self.item {
            Some(item) if item.id == item_id => item.bytes += audio.len() as u64,
            _ => {
                self.item = Some(ItemAudio {
                    id: item_id,
                    bytes: audio.len() as u64,
                    truncated_at: None,
                });
            }
        }
        if let Some(started) = self.turn_started.take() {
            self.emit(RealtimeEvent::Ttfb(Ttfb {
                provider: PROVIDER,
                latency: started.elapsed(),
            }))
            .await;
        }
        let out = match &mut self.output_tx {
            Some(t) => t.convert(audio),
            None => audio.to_vec(),
        };
        self.audio_since_speech = true;
        if !out.is_empty() {
            self.emit(RealtimeEvent::Audio(Bytes::from(out))).await;
        }
    }

    async fn on_call(&mut self, call: events::FunctionCall) {
        if !self.seen_calls.insert(call.call_id.clone()) {
            return;
        }
        self.pending_calls.insert(call.call_id.clone());
        tracing::debug!(call_id = %call.call_id, name = %call.name, "openai realtime: tool call");
        self.emit(RealtimeEvent::ToolCall(ToolCall {
            id: call.call_id,
            name: call.name,
            arguments: call.arguments,
        }))
        .await;
    }

    // ---- history ------------------------------------------------------------------

    fn remember(&mut self, item_id: Option<String>, role: Role, text: String) {
        if text.trim().is_empty() {
            return;
        }
        self.history.push_back(HistoryItem {
            item_id,
            role,
            text,
        });
        while self.history.len() > self.history_cap {
            self.history.pop_front();
        }
    }

    fn cut_history(&mut self, item_id: &str, fraction: f64) {
        if let Some(h) = self
            .history
            .iter_mut()
            .rev()
            .find(|h| h.item_id.as_deref() == Some(item_id))
        {
            h.text = cut_text(&h.text, fraction);
        }
    }

    fn seed(&self) -> Vec<String> {
        self.history
            .iter()
            .filter(|h| !h.text.trim().is_empty())
            .map(|h| {
                let role = if h.role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                events::message_item(role, &h.text)
            })
            .collect()
    }

    // ---- reconnection ---------------------------------------------------------------

    /// The connection ended (or expired): start a replacement session unless the
    /// failure is permanent or connections keep dying young.
    async fn on_drop(&mut self, error: ProviderError) -> bool {
        if matches!(self.link, Link::SettingUp(_)) {
            return true;
        }
        if self.connected_at.elapsed() < QUICK_FAILURE {
            self.quick_failures += 1;
        } else {
            self.quick_failures = 0;
        }
        if !error.is_retryable() || self.quick_failures > MAX_QUICK_FAILURES {
            tracing::warn!(error = %error, quick_failures = self.quick_failures, "openai realtime: session ended");
            self.emit(RealtimeEvent::Error(error)).await;
            return false;
        }
        tracing::warn!(error = %error, history = self.history.len(), "openai realtime: replacing the session");
        if let Link::Up(socket) = &mut self.link {
            // Best effort: the old connection may already be gone.
            let _ = timeout(
                Duration::from_millis(200),
                socket.send(Message::Close(None)),
            )
            .await;
        }
        // What the old session was doing is gone with it.
        self.response = None;
        self.discarded.clear();
        self.item = None;
        self.seen_calls.clear();
        self.want_response = false;
        if !self.pending_calls.is_empty() {
            let ids: Vec<String> = self.pending_calls.drain().collect();
            self.emit(RealtimeEvent::ToolCallsCancelled(ids)).await;
        }
        self.link = Link::SettingUp(self.connector.setup(self.seed()));
        true
    }

    async fn on_ready(&mut self, ready: Result<Box<Socket>, ProviderError>) -> bool {
        match ready {
            Err(e) => {
                tracing::warn!(error = %e, "openai realtime: cannot replace the session");
                self.emit(RealtimeEvent::Error(e)).await;
                false
            }
            Ok(socket) => {
                self.link = Link::Up(socket);
                self.connected_at = Instant::now();
                let gap: Vec<Vec<u8>> = self.gap.drain(..).collect();
                self.gap_bytes = 0;
                tracing::info!(
                    gap_ms = gap
                        .iter()
                        .map(|g| self.input_wire.millis(g.len() as u64))
                        .sum::<u64>(),
                    "openai realtime: session replaced"
                );
                for chunk in gap {
                    if !self.send(events::append(&chunk)).await {
                        return false;
                    }
                }
                self.emit(RealtimeEvent::Reconnected).await;
                while let Some(input) = self.deferred.pop_front() {
                    if !Box::pin(self.on_input(input)).await {
                        return false;
                    }
                }
                true
            }
        }
    }
}

fn usage_event(kind: UsageKind) -> RealtimeEvent {
    RealtimeEvent::Usage(Usage {
        provider: PROVIDER,
        kind,
        reported: true,
    })
}

/// The first `fraction` of `text`, cut at a word boundary.
fn cut_text(text: &str, fraction: f64) -> String {
    if fraction >= 1.0 {
        return text.to_owned();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let keep = (words.len() as f64 * fraction.max(0.0)).round() as usize;
    words[..keep.min(words.len())].join(" ")
}
