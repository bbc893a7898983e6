//! One Live session: the task that owns the WebSocket, forwards caller input, turns
//! server messages into events, reconnects with the resumption handle and runs the
//! silence watchdog.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_audio::{AudioFormat, Encoding, Transcoder};
use voxline_core::{
    ErrorKind, ProviderError, RealtimeConfig, RealtimeEvent, RealtimeInput, RealtimePeer,
    RealtimeSession, ToolCall, Ttfb, Usage, UsageKind,
};

use crate::PROVIDER;
use crate::config::GeminiConfig;
use crate::messages::{self, INPUT_RATE, ServerMessage};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Box<Socket>, ProviderError>> + Send>>;

/// How long the WebSocket handshake itself may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the service's close frame after ours.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A connection that lived this long resets the consecutive-failure count.
const STABLE_AFTER: Duration = Duration::from_secs(10);
/// RMS (PCM16) above which a caller frame counts as speech, for the watchdog and TTFB.
const SPEECH_RMS: f64 = 600.0;
/// Voiced audio needed before a pause counts as the end of an utterance.
const MIN_SPEECH: Duration = Duration::from_millis(200);
/// Silence that ends a caller utterance (local estimate; the service decides itself).
const END_SILENCE: Duration = Duration::from_millis(700);
/// Control messages (tool results, text) kept while reconnecting.
const MAX_QUEUED_CONTROL: usize = 64;
/// Tool calls remembered for their names until answered.
const MAX_OPEN_CALLS: usize = 256;

/// Opens a session: connects and sets up (retrying retryable failures), seeds the
/// history, and spawns the task that owns the connection.
pub(crate) async fn open(
    config: Arc<GeminiConfig>,
    session: RealtimeConfig,
) -> Result<RealtimeSession, ProviderError> {
    voxline_core::install_tls();
    let encoder = Transcoder::new(session.input_format, AudioFormat::PCM16_16K).map_err(|e| {
        ProviderError::new(
            PROVIDER,
            ErrorKind::BadRequest,
            format!("cannot take {:?} input: {e}", session.input_format),
        )
    })?;
    let connector = Arc::new(Connector {
        url: config.url(),
        auth: config.auth_header()?,
        config: Arc::clone(&config),
        session: session.clone(),
    });
    tracing::debug!(url = %connector.url, model = %config.model, "gemini: connecting");
    let mut socket = config.retry.run(|| connector.connect(None)).await?;
    if let Some(history) = messages::history(&session.history) {
        send_json(&mut socket, &history).await?;
    }
    let (handle, peer) = RealtimeSession::channel(PROVIDER, config.channel_capacity);
    let audio_limit = AudioFormat::PCM16_16K.bytes_in(config.reconnect_buffer);
    let now = Instant::now();
    let task = Task {
        peer,
        connector,
        output_format: session.output_format,
        link: Link::Up(socket),
        connected_at: now,
        input_open: true,
        encoder,
        decoder: None,
        handle: None,
        outbox: Outbox::new(audio_limit),
        dropping: false,
        in_model_turn: false,
        calls: HashMap::new(),
        next_call: 0,
        speech: SpeechTracker::default(),
        turn_ended_at: None,
        answered: None,
        awaiting_since: None,
        watchdog_fired: 0,
        nudge_on_connect: false,
        failures: 0,
        last_error: None,
        config,
    };
    tokio::spawn(task.run());
    Ok(handle)
}

/// Makes connections: handshake with the auth header, `setup`, wait for
/// `setupComplete`.
struct Connector {
    url: String,
    auth: (&'static str, String),
    config: Arc<GeminiConfig>,
    session: RealtimeConfig,
}

impl Connector {
    fn connect(self: &Arc<Self>, handle: Option<String>) -> Connecting {
        let this = Arc::clone(self);
        Box::pin(async move {
            let setup_timeout = this.config.setup_timeout;
            match timeout(setup_timeout, this.handshake_and_setup(handle.as_deref())).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Timeout,
                    "no setupComplete in time",
                )),
            }
        })
    }

    async fn handshake_and_setup(
        &self,
        handle: Option<&str>,
    ) -> Result<Box<Socket>, ProviderError> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        })?;
        let value = HeaderValue::from_str(&self.auth.1).map_err(|_| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                "the credential has characters not allowed in a header",
            )
        })?;
        request.headers_mut().insert(self.auth.0, value);
        // Audio chunks are a few KiB of base64: modest buffers.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(32 * 1024)
            .write_buffer_size(16 * 1024);
        let connecting =
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
        let mut socket = match timeout(HANDSHAKE_TIMEOUT, connecting).await {
            Ok(Ok((socket, _))) => Box::new(socket),
            Ok(Err(e)) => return Err(handshake_error(e)),
            Err(_) => {
                return Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Timeout,
                    "WebSocket handshake timed out",
                ));
            }
        };
        let setup = messages::setup(&self.config, &self.session, handle);
        send_json(&mut socket, &setup).await?;
        loop {
            match socket.next().await {
                Some(Ok(Message::Binary(data))) => {
                    if setup_reply(&data)? {
                        break;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if setup_reply(text.as_bytes())? {
                        break;
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(close_error(frame.as_ref(), true)),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return Err(ProviderError::new(
                        PROVIDER,
                        ErrorKind::Connection,
                        format!("connection lost during setup: {e}"),
                    ));
                }
                None => {
                    return Err(ProviderError::new(
                        PROVIDER,
                        ErrorKind::Connection,
                        "connection closed during setup",
                    ));
                }
            }
        }
        tracing::info!(resumed = handle.is_some(), "gemini: setup complete");
        Ok(socket)
    }
}

/// Whether a message received during setup is `setupComplete`.
fn setup_reply(data: &[u8]) -> Result<bool, ProviderError> {
    let m = ServerMessage::parse(data)
        .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::Protocol, e))?;
    if let Some(error) = m.error {
        return Err(ProviderError::new(PROVIDER, ErrorKind::BadRequest, error));
    }
    Ok(m.setup_complete)
}

async fn send_json(socket: &mut Socket, value: &Value) -> Result<(), ProviderError> {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .map_err(|e| {
            ProviderError::new(PROVIDER, ErrorKind::Connection, format!("send failed: {e}"))
        })
}

/// Maps a refused handshake: HTTP status and Google's JSON error message.
fn handshake_error(error: tungstenite::Error) -> ProviderError {
    match error {
        tungstenite::Error::Http(response) => {
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| {
                    if body.is_empty() {
                        "handshake refused".to_owned()
                    } else {
                        body
                    }
                });
            let mut e = ProviderError::from_http(PROVIDER, response.status().as_u16(), message);
            if let Some(after) = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| voxline_core::parse_retry_after(v, std::time::SystemTime::now()))
            {
                e = e.with_retry_after(after);
            }
            tracing::warn!(status = ?e.status, message = %e.message, "gemini: handshake refused");
            e
        }
        tungstenite::Error::Url(e) => {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        }
        other => ProviderError::new(PROVIDER, ErrorKind::Connection, other.to_string()),
    }
}

/// Maps a close frame. During setup a 1007 is a configuration or key problem
/// (permanent); an API-key reason is an auth error.
fn close_error(frame: Option<&CloseFrame>, during_setup: bool) -> ProviderError {
    let Some(frame) = frame else {
        return ProviderError::new(
            PROVIDER,
            ErrorKind::Connection,
            "closed without a close frame",
        )
        .with_status(1005);
    };
    let code = u16::from(frame.code);
    let reason = frame.reason.to_string();
    let mut e = ProviderError::from_close(PROVIDER, code, reason.clone());
    if reason.to_ascii_lowercase().contains("api key") {
        e.kind = ErrorKind::Auth;
    }
    if during_setup && code == 1000 {
        e.kind = ErrorKind::Protocol;
    }
    tracing::warn!(code, reason = %reason, during_setup, "gemini: closed by the service");
    e
}

/// Whether a close on an established session should be answered by reconnecting.
fn reconnectable(error: &ProviderError) -> bool {
    error.is_retryable() || matches!(error.status, Some(1000 | 1001 | 1005 | 1006 | 1012 | 1013))
}

/// The state of the provider connection.
enum Link {
    /// Connected and set up.
    Up(Box<Socket>),
    /// A handshake and setup in flight.
    Connecting(Connecting),
    /// Waiting before the next attempt.
    Down { at: Instant },
    /// Finished for good.
    Gone,
}

enum LinkEvent {
    Frame(Option<Result<Message, tungstenite::Error>>),
    Connected(Result<Box<Socket>, ProviderError>),
    RetryDue,
}

async fn link_event(link: &mut Link) -> LinkEvent {
    match link {
        Link::Up(socket) => LinkEvent::Frame(socket.next().await),
        Link::Connecting(connecting) => LinkEvent::Connected(connecting.as_mut().await),
        Link::Down { at } => {
            sleep_until(*at).await;
            LinkEvent::RetryDue
        }
        Link::Gone => std::future::pending().await,
    }
}

/// Client messages waiting for a connection: caller audio (bounded by bytes, oldest
/// dropped first) and control messages (bounded by count).
struct Outbox {
    queue: VecDeque<(Value, usize)>,
    audio_bytes: usize,
    audio_limit: usize,
    dropped_bytes: usize,
}

impl Outbox {
    fn new(audio_limit: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            audio_bytes: 0,
            audio_limit,
            dropped_bytes: 0,
        }
    }

    fn push_audio(&mut self, pcm: &[u8]) {
        self.queue.push_back((messages::audio(pcm), pcm.len()));
        self.audio_bytes += pcm.len();
        while self.audio_bytes > self.audio_limit {
            let Some(pos) = self.queue.iter().position(|(_, n)| *n > 0) else {
                break;
            };
            if let Some((_, n)) = self.queue.remove(pos) {
                self.audio_bytes -= n;
                self.dropped_bytes += n;
            }
        }
    }

    fn push_control(&mut self, message: Value) {
        if self.queue.iter().filter(|(_, n)| *n == 0).count() >= MAX_QUEUED_CONTROL {
            tracing::warn!("gemini: too many queued control messages; dropping one");
            return;
        }
        self.queue.push_back((message, 0));
    }
}

/// A local energy estimate of the caller's speech: when an utterance ended (for TTFB
/// and the watchdog; the service's own VAD decides the turn).
#[derive(Default)]
struct SpeechTracker {
    voiced: Duration,
    silence: Duration,
    last_voiced: Option<Instant>,
    /// Caller speech arrived since the model last started a turn.
    fresh: bool,
}

impl SpeechTracker {
    /// Feeds PCM16 16 kHz; returns when the utterance ended if this chunk ended one.
    fn push(&mut self, pcm: &[u8], now: Instant) -> Option<Instant> {
        let samples = pcm.len() / 2;
        if samples == 0 {
            return None;
        }
        let sum: f64 = pcm
            .chunks_exact(2)
            .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])).powi(2))
            .sum();
        let rms = (sum / samples as f64).sqrt();
        let length = AudioFormat::PCM16_16K.duration_of(pcm.len());
        if rms > SPEECH_RMS {
            self.voiced += length;
            self.silence = Duration::ZERO;
            self.last_voiced = Some(now);
            self.fresh = true;
            None
        } else {
            self.silence += length;
            if self.voiced >= MIN_SPEECH && self.silence >= END_SILENCE {
                self.voiced = Duration::ZERO;
                self.last_voiced.take()
            } else {
                if self.silence >= END_SILENCE {
                    self.voiced = Duration::ZERO;
                }
                None
            }
        }
    }

    /// The end of the caller's latest speech, once per model turn (for TTFB).
    fn take_fresh(&mut self) -> Option<Instant> {
        std::mem::take(&mut self.fresh)
            .then_some(self.last_voiced)
            .flatten()
    }

    fn speaking(&self) -> bool {
        self.voiced > Duration::ZERO && self.silence < END_SILENCE
    }
}

struct Task {
    peer: RealtimePeer,
    connector: Arc<Connector>,
    config: Arc<GeminiConfig>,
    output_format: AudioFormat,
    link: Link,
    connected_at: Instant,
    input_open: bool,
    /// Caller audio -> PCM16 16 kHz.
    encoder: Transcoder,
    /// Model audio (at its rate) -> the output format.
    decoder: Option<(u32, Transcoder)>,
    /// The latest resumable handle.
    handle: Option<String>,
    outbox: Outbox,
    /// Dropping the rest of an interrupted turn's audio (until `turnComplete`).
    dropping: bool,
    in_model_turn: bool,
    /// Our call id -> (the wire id, if the service gave one; the function name).
    calls: HashMap<String, (Option<String>, String)>,
    next_call: u64,
    speech: SpeechTracker,
    /// When the caller's last turn ended, for TTFB.
    turn_ended_at: Option<Instant>,
    /// The end of the caller speech the model last answered (its last voiced frame),
    /// so the local end-of-speech estimate reached later is not taken as a new turn.
    answered: Option<Instant>,
    /// Waiting for model audio since then (the watchdog is armed).
    awaiting_since: Option<Instant>,
    watchdog_fired: u32,
    nudge_on_connect: bool,
    failures: u32,
    last_error: Option<ProviderError>,
}

enum Step {
    Continue,
    Stop,
}

impl Task {
    async fn run(mut self) {
        loop {
            let watchdog = self.watchdog_deadline();
            let step = tokio::select! {
                input = self.peer.input.recv(), if self.input_open => match input {
                    Some(input) => self.on_input(input).await,
                    None => {
                        self.input_open = false;
                        self.close().await;
                        Step::Stop
                    }
                },
                event = link_event(&mut self.link) => self.on_link(event).await,
                () = sleep_until(watchdog.unwrap_or_else(Instant::now)), if watchdog.is_some() => {
                    self.on_watchdog().await
                }
            };
            if let Step::Stop = step {
                break;
            }
        }
        tracing::debug!("gemini: session task ended");
    }

    fn watchdog_deadline(&self) -> Option<Instant> {
        let wd = self.config.watchdog.as_ref()?;
        let since = self.awaiting_since?;
        if !matches!(self.link, Link::Up(_)) || self.speech.speaking() {
            return None;
        }
        let from = self.speech.last_voiced.map_or(since, |v| v.max(since));
        Some(from + wd.timeout)
    }

    async fn emit(&mut self, event: RealtimeEvent) {
        // A caller that dropped its events still closes the input; keep going till then.
        let _ = self.peer.send(event).await;
    }

    async fn on_input(&mut self, input: RealtimeInput) -> Step {
        match input {
            RealtimeInput::Audio(audio) => self.on_audio(&audio).await,
            RealtimeInput::Text(text) => {
                let now = Instant::now();
                self.turn_ended_at = Some(now);
                self.arm(now);
                self.send_or_queue(messages::text(&text)).await
            }
            RealtimeInput::ToolResult { call_id, output } => {
                let Some((wire_id, name)) = self.calls.remove(&call_id) else {
                    tracing::warn!(call_id = %call_id, "gemini: result for an unknown tool call");
                    return Step::Continue;
                };
                let message = messages::tool_response(wire_id.as_deref(), &name, &output);
                self.send_or_queue(message).await
            }
            RealtimeInput::Truncate { heard } => {
                // The Live API has no truncate message: the service assumes real-time
                // playback and cuts its record of the reply at the interruption.
                tracing::debug!(?heard, "gemini: truncate is a no-op");
                Step::Continue
            }
            RealtimeInput::Interrupt => {
                // No cancel message exists either; stop delivering this turn's audio.
                if self.in_model_turn {
                    self.dropping = true;
                    self.reset_decoder();
                }
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    async fn on_audio(&mut self, audio: &Bytes) -> Step {
        let mut pcm = Vec::with_capacity(self.encoder.max_output_len(audio.len()));
        self.encoder.process(audio, &mut pcm);
        if pcm.is_empty() {
            return Step::Continue;
        }
        let now = Instant::now();
        if let Some(ended) = self.speech.push(&pcm, now) {
            // The model may already have answered this utterance (it can start before
            // the local 700 ms estimate): then its end is no turn still waiting.
            if self.answered != Some(ended) {
                self.turn_ended_at = Some(ended);
                self.arm(ended);
            }
        }
        if matches!(self.link, Link::Up(_)) {
            self.send_or_queue(messages::audio(&pcm)).await
        } else {
            self.outbox.push_audio(&pcm);
            Step::Continue
        }
    }

    /// Arms the watchdog: the caller's turn ended at `at`.
    fn arm(&mut self, at: Instant) {
        if self.awaiting_since.is_none() {
            self.awaiting_since = Some(at);
        }
    }

    fn disarm(&mut self) {
        self.awaiting_since = None;
        self.watchdog_fired = 0;
    }

    async fn send_or_queue(&mut self, message: Value) -> Step {
        let Link::Up(socket) = &mut self.link else {
            self.outbox.push_control(message);
            return Step::Continue;
        };
        match send_json(socket, &message).await {
            Ok(()) => Step::Continue,
            Err(e) => {
                tracing::warn!(error = %e, "gemini: send failed; reconnecting");
                self.outbox.push_control(message);
                self.reconnect(Some(e)).await
            }
        }
    }

    async fn on_link(&mut self, event: LinkEvent) -> Step {
        match event {
            LinkEvent::Frame(Some(Ok(Message::Binary(data)))) => self.on_message(&data).await,
            LinkEvent::Frame(Some(Ok(Message::Text(text)))) => {
                self.on_message(text.as_bytes()).await
            }
            LinkEvent::Frame(Some(Ok(Message::Close(frame)))) => {
                let e = close_error(frame.as_ref(), false);
                if reconnectable(&e) {
                    self.reconnect(Some(e)).await
                } else {
                    self.fail(e).await
                }
            }
            LinkEvent::Frame(Some(Ok(_))) => Step::Continue,
            LinkEvent::Frame(Some(Err(e))) => {
                let e = ProviderError::new(PROVIDER, ErrorKind::Connection, e.to_string());
                self.reconnect(Some(e)).await
            }
            LinkEvent::Frame(None) => {
                let e = ProviderError::new(PROVIDER, ErrorKind::Connection, "connection lost")
                    .with_status(1006);
                self.reconnect(Some(e)).await
            }
            LinkEvent::Connected(Ok(socket)) => self.on_connected(socket).await,
            LinkEvent::Connected(Err(e)) => {
                if e.is_retryable() {
                    self.retry_later(e).await
                } else {
                    // Typically a 1007 at setup: configuration or key. Never loop on it.
                    self.fail(e).await
                }
            }
            LinkEvent::RetryDue => {
                self.link = Link::Connecting(self.connector.connect(self.handle.clone()));
                Step::Continue
            }
        }
    }

    async fn fail(&mut self, e: ProviderError) -> Step {
        tracing::error!(error = %e, "gemini: session failed");
        self.link = Link::Gone;
        self.emit(RealtimeEvent::Error(e)).await;
        Step::Stop
    }

    /// Starts a new connection (resuming with the latest handle). `error` is the
    /// reason when the old one failed (reported), `None` for a planned rotation.
    async fn reconnect(&mut self, error: Option<ProviderError>) -> Step {
        if let Link::Up(mut old) = std::mem::replace(&mut self.link, Link::Gone) {
            // Close the old connection in the background; it is no longer read.
            tokio::spawn(async move {
                let _ = timeout(CLOSE_TIMEOUT, old.send(Message::Close(None))).await;
            });
        }
        self.in_model_turn = false;
        self.dropping = false;
        self.reset_decoder();
        if let Some(e) = error {
            if self.connected_at.elapsed() >= STABLE_AFTER {
                self.failures = 0;
            }
            self.failures += 1;
            if self.failures > self.config.retry.attempts.max(1) {
                return self.fail(e).await;
            }
            self.emit(RealtimeEvent::Error(e.clone())).await;
            self.last_error = Some(e);
        }
        tracing::info!(
            resume = self.handle.is_some(),
            failures = self.failures,
            "gemini: reconnecting"
        );
        self.link = Link::Connecting(self.connector.connect(self.handle.clone()));
        Step::Continue
    }

    async fn retry_later(&mut self, e: ProviderError) -> Step {
        self.failures += 1;
        if self.failures > self.config.retry.attempts.max(1) {
            return self.fail(e).await;
        }
        let pause = self.config.retry.delay(self.failures.saturating_sub(1), &e);
        tracing::warn!(error = %e, ?pause, "gemini: reconnect failed; retrying");
        self.last_error = Some(e);
        self.link = Link::Down {
            at: Instant::now() + pause,
        };
        Step::Continue
    }

    async fn on_connected(&mut self, socket: Box<Socket>) -> Step {
        self.link = Link::Up(socket);
        self.connected_at = Instant::now();
        if self.outbox.dropped_bytes > 0 {
            tracing::warn!(
                bytes = self.outbox.dropped_bytes,
                "gemini: caller audio dropped while reconnecting (buffer full)"
            );
            self.outbox.dropped_bytes = 0;
        }
        let queued: Vec<(Value, usize)> = self.outbox.queue.drain(..).collect();
        self.outbox.audio_bytes = 0;
        tracing::info!(queued = queued.len(), "gemini: reconnected");
        self.emit(RealtimeEvent::Reconnected).await;
        for (message, _) in queued {
            if let Step::Stop = self.send_or_queue(message).await {
                return Step::Stop;
            }
            if !matches!(self.link, Link::Up(_)) {
                return Step::Continue;
            }
        }
        if self.nudge_on_connect {
            self.nudge_on_connect = false;
            if let Some(wd) = &self.config.watchdog {
                let text = messages::text(&wd.nudge_text);
                self.awaiting_since = Some(Instant::now());
                return self.send_or_queue(text).await;
            }
        }
        Step::Continue
    }

    async fn on_watchdog(&mut self) -> Step {
        let Some(wd) = self.config.watchdog.clone() else {
            return Step::Continue;
        };
        self.watchdog_fired += 1;
        match self.watchdog_fired {
            1 => {
                tracing::warn!("gemini: model silent after the caller's turn; nudging");
                self.awaiting_since = Some(Instant::now());
                self.send_or_queue(messages::text(&wd.nudge_text)).await
            }
            2 => {
                tracing::warn!("gemini: model still silent; reconnecting with the handle");
                self.nudge_on_connect = true;
                self.awaiting_since = None;
                let fired = self.watchdog_fired;
                let step = self.reconnect(None).await;
                self.watchdog_fired = fired;
                step
            }
            _ => {
                tracing::error!("gemini: model still silent after a reconnect; watchdog gives up");
                self.awaiting_since = None;
                Step::Continue
            }
        }
    }

    fn reset_decoder(&mut self) {
        if let Some((_, d)) = &mut self.decoder {
            d.reset();
        }
    }

    async fn on_message(&mut self, data: &[u8]) -> Step {
        let m = match ServerMessage::parse(data) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "gemini: unreadable server message ignored");
                return Step::Continue;
            }
        };
        if let Some((handle, true)) = m.resumption
            && !handle.is_empty()
        {
            self.handle = Some(handle);
        }
        if m.interrupted {
            self.dropping = true;
            self.reset_decoder();
            let now = Instant::now();
            self.turn_ended_at = None;
            self.awaiting_since = Some(now);
            self.emit(RealtimeEvent::Interrupted).await;
        }
        for (pcm, rate) in &m.audio {
            if self.dropping {
                continue;
            }
            if !self.in_model_turn {
                self.in_model_turn = true;
                let voiced = self.speech.take_fresh();
                if voiced.is_some() {
                    self.answered = voiced;
                }
                if let Some(ended) = self.turn_ended_at.take().or(voiced) {
                    let latency = Instant::now().saturating_duration_since(ended);
                    self.emit(RealtimeEvent::Ttfb(Ttfb {
                        provider: PROVIDER,
                        latency,
                    }))
                    .await;
                }
            }
            self.disarm();
            if let Some(out) = self.decode(pcm, *rate)
                && !out.is_empty()
            {
                self.emit(RealtimeEvent::Audio(Bytes::from(out))).await;
            }
        }
        if let Some((text, is_final)) = m.input_transcription {
            if is_final && self.awaiting_since.is_none() && !self.in_model_turn {
                self.arm(Instant::now());
            }
            self.emit(RealtimeEvent::InputTranscript { text, is_final })
                .await;
        }
        if let Some((text, is_final)) = m.output_transcription {
            self.emit(RealtimeEvent::OutputTranscript { text, is_final })
                .await;
        }
        for call in m.tool_calls {
            self.disarm();
            let id = call.id.clone().unwrap_or_else(|| {
                self.next_call += 1;
                format!("gemini-call-{}", self.next_call)
            });
            if self.calls.len() >= MAX_OPEN_CALLS {
                self.calls.clear();
            }
            self.calls.insert(id.clone(), (call.id, call.name.clone()));
            self.emit(RealtimeEvent::ToolCall(ToolCall {
                id,
                name: call.name,
                arguments: call.args,
            }))
            .await;
        }
        if !m.cancelled.is_empty() {
            for id in &m.cancelled {
                self.calls.remove(id);
            }
            self.emit(RealtimeEvent::ToolCallsCancelled(m.cancelled))
                .await;
        }
        if m.turn_complete {
            if !self.dropping
                && let Some((_, d)) = &mut self.decoder
            {
                let mut tail = Vec::new();
                let _ = d.flush(&mut tail);
                if !tail.is_empty() {
                    self.emit(RealtimeEvent::Audio(Bytes::from(tail))).await;
                }
            }
            self.dropping = false;
            self.in_model_turn = false;
            self.emit(RealtimeEvent::TurnComplete).await;
        }
        if let Some((prompt, completion)) = m.usage {
            self.emit(RealtimeEvent::Usage(Usage {
                provider: PROVIDER,
                kind: UsageKind::Tokens { prompt, completion },
                reported: true,
            }))
            .await;
        }
        if let Some(error) = m.error {
            self.emit(RealtimeEvent::Error(ProviderError::new(
                PROVIDER,
                ErrorKind::Server,
                error,
            )))
            .await;
        }
        if let Some(time_left) = m.go_away {
            tracing::info!(?time_left, "gemini: goAway; rotating the connection");
            return self.reconnect(None).await;
        }
        Step::Continue
    }

    /// Transcodes model audio at `rate` to the output format.
    fn decode(&mut self, pcm: &[u8], rate: u32) -> Option<Vec<u8>> {
        if self.decoder.as_ref().is_none_or(|(r, _)| *r != rate) {
            match Transcoder::new(AudioFormat::new(Encoding::Pcm16, rate), self.output_format) {
                Ok(t) => self.decoder = Some((rate, t)),
                Err(e) => {
                    tracing::warn!(rate, error = %e, "gemini: model audio rate not supported");
                    return None;
                }
            }
        }
        let (_, d) = self.decoder.as_mut()?;
        let mut out = Vec::with_capacity(d.max_output_len(pcm.len()));
        d.process(pcm, &mut out);
        Some(out)
    }

    /// Ends the session cleanly: close frame 1000, then wait briefly for the reply.
    async fn close(&mut self) {
        if let Link::Up(mut socket) = std::mem::replace(&mut self.link, Link::Gone) {
            let frame = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
            let _ = timeout(CLOSE_TIMEOUT, async {
                while let Some(Ok(m)) = socket.next().await {
                    if m.is_close() {
                        break;
                    }
                }
            })
            .await;
        }
        tracing::debug!(input_rate = INPUT_RATE, "gemini: session closed");
    }
}
