//! [`ElevenLabs`]: text-to-speech over the `multi-stream-input` WebSocket, one context
//! per request.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tracing::{debug, info, trace, warn};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RequestId, TextToSpeech, Ttfb, TtsConfig, TtsEvent,
    TtsInput, TtsPeer, TtsSession, Usage, UsageKind,
};

use crate::PROVIDER;
use crate::audio::{Converter, FormatPlan, Transport};
use crate::chunker::Chunker;
use crate::config::{ElevenLabsConfig, path_segment};
use crate::wire::{ClientMessage, ServerError, ServerMessage, http_error_message};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Requests waiting for a free context before input is no longer read.
const MAX_WAITING: usize = 32;
/// Requests remembered as failed, so their later input is ignored.
const MAX_FAILED: usize = 32;
/// How long a cancelled context may go without `isFinal` or audio before its slot is
/// reused anyway.
const CANCEL_GRACE: Duration = Duration::from_secs(10);

/// ElevenLabs text-to-speech over the `multi-stream-input` WebSocket.
///
/// Each session holds one socket (opened by [`TextToSpeech::connect`], reopened on
/// demand if the service closes it) and maps every request to a context. See the
/// crate docs for the protocol mapping.
#[derive(Debug, Clone)]
pub struct ElevenLabs {
    config: Arc<ElevenLabsConfig>,
}

impl ElevenLabs {
    /// An adapter with `config`.
    pub fn new(config: ElevenLabsConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The config.
    pub fn config(&self) -> &ElevenLabsConfig {
        &self.config
    }
}

impl TextToSpeech for ElevenLabs {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, tts: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>> {
        Box::pin(async move {
            let config = Arc::clone(&self.config);
            let key = config.key()?;
            let plan = FormatPlan::new(tts.format, Transport::WebSocket)?;
            let url = ws_url(&config, &tts, &plan)?;
            let socket = connect(&config, &url, &key).await?;
            info!(
                provider = PROVIDER,
                output_format = %plan.output_format(),
                transcoding = !plan.is_native(),
                "session connected"
            );
            let (session, peer) = TtsSession::channel(PROVIDER, config.channel_capacity);
            let TtsPeer { input, events } = peer;
            let task = Task {
                config,
                url,
                key,
                plan,
                socket: Some(socket),
                broken: None,
                last_error: None,
                requests: HashMap::new(),
                contexts: HashMap::new(),
                waiting: VecDeque::new(),
                failed: VecDeque::new(),
                events,
            };
            tokio::spawn(task.run(input));
            Ok(session)
        })
    }
}

/// The `multi-stream-input` URL with its query.
fn ws_url(
    config: &ElevenLabsConfig,
    tts: &TtsConfig,
    plan: &FormatPlan,
) -> Result<Url, ProviderError> {
    let voice = tts.voice.as_deref().unwrap_or(&config.voice_id);
    let mut url = config.url(
        &format!(
            "/v1/text-to-speech/{}/multi-stream-input",
            path_segment(voice)
        ),
        true,
    )?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("model_id", &config.model_id);
        q.append_pair("output_format", &plan.output_format());
        let timeout = config.inactivity_timeout.as_secs().clamp(1, 180);
        q.append_pair("inactivity_timeout", &timeout.to_string());
        if let Some(language) = config.language_code(tts.language.as_deref()) {
            q.append_pair("language_code", &language);
        }
        if let Some(auto) = config.auto_mode {
            q.append_pair("auto_mode", bool_str(auto));
        }
        if let Some(n) = &config.apply_text_normalization {
            q.append_pair("apply_text_normalization", n);
        }
        if let Some(logging) = config.enable_logging {
            q.append_pair("enable_logging", bool_str(logging));
        }
    }
    Ok(url)
}

pub(crate) fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Opens the socket, retrying retryable failures per the config's policy.
async fn connect(config: &ElevenLabsConfig, url: &Url, key: &str) -> Result<Socket, ProviderError> {
    config.retry.run(|| open_once(config, url, key)).await
}

async fn open_once(
    config: &ElevenLabsConfig,
    url: &Url,
    key: &str,
) -> Result<Socket, ProviderError> {
    voxline_core::install_tls();
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
    let key = HeaderValue::from_str(key).map_err(|_| {
        ProviderError::new(
            PROVIDER,
            ErrorKind::Auth,
            "the API key is not a valid header value",
        )
    })?;
    request.headers_mut().insert("xi-api-key", key);
    // Audio arrives base64 in JSON; allow large messages as pipecat does (16 MiB),
    // but keep the read buffer small: one socket per call.
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .max_message_size(Some(16 << 20));
    let connecting = tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true);
    match tokio::time::timeout(config.connect_timeout, connecting).await {
        Err(_) => Err(ProviderError::new(
            PROVIDER,
            ErrorKind::Timeout,
            "WebSocket handshake timed out",
        )),
        Ok(Err(e)) => Err(handshake_error(e)),
        Ok(Ok((socket, _))) => Ok(socket),
    }
}

/// Maps a failed handshake: an HTTP refusal by status, anything else as a connection
/// failure.
fn handshake_error(error: tungstenite::Error) -> ProviderError {
    match error {
        tungstenite::Error::Http(response) => {
            let status = response.status().as_u16();
            let body = response
                .body()
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            let mut e = ProviderError::from_http(PROVIDER, status, http_error_message(&body));
            if let Some(after) = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| voxline_core::parse_retry_after(v, std::time::SystemTime::now()))
            {
                e = e.with_retry_after(after);
            }
            e
        }
        other => ProviderError::new(
            PROVIDER,
            ErrorKind::Connection,
            format!("WebSocket connection failed: {other}"),
        ),
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Taking text.
    Open,
    /// Flushed and closed; waiting for the rest of its audio and `isFinal`.
    Finishing,
    /// Cancelled: `Done` reported, late audio dropped, slot held until `isFinal`.
    Cancelled,
}

/// One request = one context.
#[derive(Debug)]
struct Request {
    context: String,
    state: State,
    chunker: Chunker,
    converter: Converter,
    /// Characters of text received for it (the usage figure).
    chars: u64,
    first_text: Instant,
    /// The first flush or finish: where time to first byte is measured from.
    flushed: Option<Instant>,
    audio_seen: bool,
    /// The last time it was touched or heard from (for the cancel grace).
    last_seen: Instant,
}

/// A request waiting for a free context, with its input so far.
#[derive(Debug)]
struct Waiting {
    request: RequestId,
    inputs: Vec<TtsInput>,
}

/// The session task: owns the socket, reads the caller's input and the service's
/// messages, reports events.
struct Task {
    config: Arc<ElevenLabsConfig>,
    url: Url,
    key: String,
    plan: FormatPlan,
    socket: Option<Socket>,
    /// Set when a send failed; handled once the current step is done.
    broken: Option<ProviderError>,
    /// The error the service announced before it closed, if any.
    last_error: Option<ServerError>,
    requests: HashMap<RequestId, Request>,
    contexts: HashMap<String, RequestId>,
    waiting: VecDeque<Waiting>,
    failed: VecDeque<RequestId>,
    events: mpsc::Sender<TtsEvent>,
}

async fn next_message(socket: &mut Option<Socket>) -> Option<Result<Message, tungstenite::Error>> {
    match socket {
        Some(socket) => socket.next().await,
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self, mut input: mpsc::Receiver<TtsInput>) {
        let interval = self
            .config
            .keepalive_interval
            .max(Duration::from_millis(100));
        let mut keepalive = tokio::time::interval_at(Instant::now() + interval, interval);
        keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let grace = self.grace_deadline();
            tokio::select! {
                biased;
                next = input.recv(), if self.waiting.len() < MAX_WAITING => match next {
                    Some(next) => self.on_input(next).await,
                    None => break,
                },
                message = next_message(&mut self.socket) => self.on_socket(message).await,
                _ = keepalive.tick() => self.keepalive().await,
                () = tokio::time::sleep_until(grace.unwrap_or_else(Instant::now)), if grace.is_some() => {
                    self.expire_cancelled();
                }
            }
            self.settle().await;
        }
        self.shutdown().await;
    }

    /// After each step: handle a broken connection, start waiting requests.
    async fn settle(&mut self) {
        loop {
            if let Some(error) = self.broken.take() {
                self.lost(error).await;
            }
            if self.requests.len() < self.config.max_contexts.max(1)
                && let Some(waiting) = self.waiting.pop_front()
            {
                debug!(request = %waiting.request, "context free; request starts");
                for input in waiting.inputs {
                    self.on_input(input).await;
                }
                continue;
            }
            break;
        }
    }

    async fn emit(&self, event: TtsEvent) {
        // A closed channel means the caller is gone; the input side ends the task.
        let _ = self.events.send(event).await;
    }

    async fn send(&mut self, message: ClientMessage<'_>) {
        let Some(socket) = &mut self.socket else {
            return;
        };
        let json = message.to_json();
        trace!(message = %json, "send");
        if let Err(e) = socket.send(Message::Text(json.into())).await {
            self.socket = None;
            self.broken.get_or_insert(ProviderError::new(
                PROVIDER,
                ErrorKind::Connection,
                format!("send failed: {e}"),
            ));
        }
    }

    async fn ensure_connected(&mut self) -> Result<(), ProviderError> {
        if self.socket.is_some() {
            return Ok(());
        }
        let socket = connect(&self.config, &self.url, &self.key).await?;
        info!(provider = PROVIDER, "reconnected");
        self.socket = Some(socket);
        self.last_error = None;
        Ok(())
    }

    async fn on_input(&mut self, input: TtsInput) {
        let now = Instant::now();
        match input {
            TtsInput::Text { request, text } => {
                if !self.requests.contains_key(&request) {
                    if let Some(w) = self.waiting.iter_mut().find(|w| w.request == request) {
                        w.inputs.push(TtsInput::Text { request, text });
                        return;
                    }
                    if self.failed.contains(&request) {
                        debug!(%request, "text for a failed request ignored");
                        return;
                    }
                    if self.requests.len() >= self.config.max_contexts.max(1) {
                        debug!(%request, "all contexts busy; request waits");
                        self.waiting.push_back(Waiting {
                            request,
                            inputs: vec![TtsInput::Text { request, text }],
                        });
                        return;
                    }
                    if !self.open(request, now).await {
                        return;
                    }
                }
                self.feed(request, &text, now).await;
            }
            TtsInput::Flush { request } => {
                if let Some(r) = self.requests.get_mut(&request) {
                    if r.state != State::Open {
                        return;
                    }
                    r.flushed.get_or_insert(now);
                    let chunk = r.chunker.drain();
                    let context = r.context.clone();
                    self.send(ClientMessage::flush(&context, chunk.as_deref()))
                        .await;
                } else if let Some(w) = self.waiting.iter_mut().find(|w| w.request == request) {
                    w.inputs.push(input);
                }
                // A flush for a context never opened would open a phantom one on the
                // service (it counts toward the limit): nothing to flush, so nothing
                // is sent.
            }
            TtsInput::Finish { request } => {
                if let Some(r) = self.requests.get_mut(&request) {
                    if r.state != State::Open {
                        return;
                    }
                    r.state = State::Finishing;
                    r.flushed.get_or_insert(now);
                    let chunk = r.chunker.drain();
                    let context = r.context.clone();
                    self.send(ClientMessage::flush(&context, chunk.as_deref()))
                        .await;
                    self.send(ClientMessage::close_context(&context)).await;
                } else if let Some(w) = self.waiting.iter_mut().find(|w| w.request == request) {
                    w.inputs.push(input);
                } else if !self.failed.contains(&request) {
                    // Never had text: nothing to say.
                    self.emit(TtsEvent::Done { request }).await;
                }
            }
            TtsInput::Cancel { request } => {
                if let Some(r) = self.requests.get_mut(&request) {
                    let state = r.state;
                    r.state = State::Cancelled;
                    r.last_seen = now;
                    let (context, chars) = (r.context.clone(), r.chars);
                    if state == State::Open {
                        self.send(ClientMessage::close_context(&context)).await;
                    }
                    debug!(%request, %context, "cancelled; its late audio is dropped");
                    if state != State::Cancelled {
                        self.emit_usage(chars).await;
                    }
                } else {
                    self.waiting.retain(|w| w.request != request);
                }
                self.emit(TtsEvent::Done { request }).await;
            }
            _ => warn!("unknown input ignored"),
        }
    }

    /// Streams text into an open request, up to the last word boundary.
    async fn feed(&mut self, request: RequestId, text: &str, now: Instant) {
        let Some(r) = self.requests.get_mut(&request) else {
            return;
        };
        if r.state != State::Open {
            warn!(%request, "text after finish or cancel ignored");
            return;
        }
        r.chars += text.chars().count() as u64;
        r.last_seen = now;
        let chunk = r.chunker.push(text);
        let context = r.context.clone();
        if let Some(chunk) = chunk {
            self.send(ClientMessage::text(&context, &chunk)).await;
        }
    }

    /// Opens a context for `request`, connecting first if needed.
    async fn open(&mut self, request: RequestId, now: Instant) -> bool {
        let converter = match self
            .ensure_connected()
            .await
            .and_then(|()| self.plan.converter())
        {
            Ok(converter) => converter,
            Err(error) => {
                self.fail(request, error).await;
                return false;
            }
        };
        let context = request.to_string();
        debug!(%request, %context, "context opens");
        self.requests.insert(
            request,
            Request {
                context: context.clone(),
                state: State::Open,
                chunker: Chunker::default(),
                converter,
                chars: 0,
                first_text: now,
                flushed: None,
                audio_seen: false,
                last_seen: now,
            },
        );
        self.contexts.insert(context.clone(), request);
        let config = Arc::clone(&self.config);
        self.send(ClientMessage::init(
            &context,
            config.voice_settings.as_ref(),
            config.chunk_length_schedule.as_deref(),
            &config.pronunciation_dictionaries,
        ))
        .await;
        true
    }

    /// Reports `request` failed and remembers it so its later input is ignored.
    async fn fail(&mut self, request: RequestId, error: ProviderError) {
        warn!(%request, %error, "request failed");
        if self.failed.len() >= MAX_FAILED {
            self.failed.pop_front();
        }
        self.failed.push_back(request);
        self.emit(TtsEvent::Error {
            request: Some(request),
            error,
        })
        .await;
        self.emit(TtsEvent::Done { request }).await;
    }

    async fn emit_usage(&self, chars: u64) {
        if chars > 0 {
            self.emit(TtsEvent::Usage(Usage {
                provider: PROVIDER,
                kind: UsageKind::Characters(chars),
                reported: false,
            }))
            .await;
        }
    }

    async fn on_socket(&mut self, message: Option<Result<Message, tungstenite::Error>>) {
        match message {
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                if let Some(socket) = &mut self.socket {
                    // Flushes tungstenite's reply to the close.
                    let _ =
                        tokio::time::timeout(self.config.close_timeout, socket.close(None)).await;
                }
                self.socket = None;
                let message = match &self.last_error {
                    Some(e) if !e.message.is_empty() => format!("{}: {}", e.code, e.message),
                    _ => reason,
                };
                self.lost(ProviderError::from_close(PROVIDER, code, message))
                    .await;
            }
            Some(Ok(Message::Binary(_))) => warn!("unexpected binary message ignored"),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                self.socket = None;
                let error = ProviderError::new(
                    PROVIDER,
                    ErrorKind::Connection,
                    format!("connection lost: {e}"),
                );
                self.lost(error).await;
            }
            None => {
                self.socket = None;
                let error =
                    ProviderError::new(PROVIDER, ErrorKind::Connection, "connection closed");
                self.lost(error).await;
            }
        }
    }

    /// The connection is gone: every live request fails (retryably when the network
    /// failed); the next request reconnects.
    async fn lost(&mut self, error: ProviderError) {
        self.socket = None;
        let timeout = self
            .last_error
            .as_ref()
            .is_some_and(|e| e.code == "input_timeout_exceeded");
        let mut live: Vec<(RequestId, u64)> = self
            .requests
            .iter()
            .filter(|(_, r)| r.state != State::Cancelled)
            .map(|(id, r)| (*id, r.chars))
            .collect();
        live.sort_unstable();
        if live.is_empty() {
            debug!(%error, timeout, "connection closed while idle; the next request reconnects");
        } else {
            warn!(%error, requests = live.len(), "connection lost with requests in flight");
        }
        self.requests.clear();
        self.contexts.clear();
        for (request, chars) in live {
            self.emit_usage(chars).await;
            self.fail(request, error.clone()).await;
        }
    }

    async fn on_text(&mut self, text: &str) {
        let Some(message) = ServerMessage::parse(text) else {
            warn!("unparsable message ignored");
            return;
        };
        if let Some(error) = message.error {
            warn!(code = %error.code, message = %error.message, "service error");
            self.last_error = Some(error);
        }
        let Some(context) = message.context_id else {
            if message.audio.is_some() {
                warn!("audio without a context id dropped");
            }
            return;
        };
        let Some(&request) = self.contexts.get(&context) else {
            trace!(%context, "message for a finished context dropped");
            return;
        };
        if let Some(audio) = message.audio {
            self.on_audio(request, &audio).await;
        }
        if message.is_final {
            self.on_final(request).await;
        }
    }

    async fn on_audio(&mut self, request: RequestId, encoded: &str) {
        let Some(r) = self.requests.get_mut(&request) else {
            return;
        };
        let now = Instant::now();
        r.last_seen = now;
        if r.state == State::Cancelled {
            trace!(%request, "late audio of a cancelled request dropped");
            return;
        }
        let bytes = match base64::engine::general_purpose::STANDARD.decode(encoded) {
            Ok(bytes) => bytes,
            Err(e) => {
                warn!(%request, error = %e, "undecodable audio dropped");
                return;
            }
        };
        let audio = r.converter.push(&bytes);
        let ttfb = (!r.audio_seen).then(|| now - r.flushed.unwrap_or(r.first_text).min(now));
        r.audio_seen = true;
        if let Some(latency) = ttfb {
            debug!(%request, ?latency, "first audio");
            self.emit(TtsEvent::Ttfb {
                request,
                ttfb: Ttfb {
                    provider: PROVIDER,
                    latency,
                },
            })
            .await;
        }
        if !audio.is_empty() {
            self.emit(TtsEvent::Audio { request, audio }).await;
        }
    }

    async fn on_final(&mut self, request: RequestId) {
        let Some(mut r) = self.requests.remove(&request) else {
            return;
        };
        self.contexts.remove(&r.context);
        if r.state == State::Cancelled {
            trace!(%request, "cancelled context finished");
            return;
        }
        debug!(%request, "done");
        let tail = r.converter.finish();
        if !tail.is_empty() {
            self.emit(TtsEvent::Audio {
                request,
                audio: tail,
            })
            .await;
        }
        self.emit_usage(r.chars).await;
        self.emit(TtsEvent::Done { request }).await;
    }

    /// Keeps open contexts alive (or the idle socket, with a context-less message).
    async fn keepalive(&mut self) {
        if self.socket.is_none() {
            return;
        }
        let mut open: Vec<(RequestId, String)> = self
            .requests
            .iter()
            .filter(|(_, r)| r.state == State::Open)
            .map(|(id, r)| (*id, r.context.clone()))
            .collect();
        open.sort_unstable();
        if open.is_empty() {
            self.send(ClientMessage::keepalive(None)).await;
        }
        for (_, context) in open {
            self.send(ClientMessage::keepalive(Some(&context))).await;
        }
    }

    fn grace_deadline(&self) -> Option<Instant> {
        self.requests
            .values()
            .filter(|r| r.state == State::Cancelled)
            .map(|r| r.last_seen + CANCEL_GRACE)
            .min()
    }

    /// Frees the slots of cancelled contexts the service never finished.
    fn expire_cancelled(&mut self) {
        let now = Instant::now();
        let expired: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.state == State::Cancelled && r.last_seen + CANCEL_GRACE <= now)
            .map(|(id, _)| *id)
            .collect();
        for request in expired {
            if let Some(r) = self.requests.remove(&request) {
                debug!(%request, "no isFinal for a cancelled context; slot reused");
                self.contexts.remove(&r.context);
            }
        }
    }

    /// The caller is gone: `close_socket`, wait briefly for the service's close.
    async fn shutdown(mut self) {
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        debug!("session closing");
        let close = ClientMessage::close_socket().to_json();
        if socket.send(Message::Text(close.into())).await.is_err() {
            return;
        }
        let drain = async { while let Some(Ok(_)) = socket.next().await {} };
        if tokio::time::timeout(self.config.close_timeout, drain)
            .await
            .is_err()
        {
            debug!("no close from the service in time; closing");
            let _ = socket.close(None).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxline_audio::AudioFormat;

    #[test]
    fn url_carries_model_format_timeout_and_language() {
        let config = ElevenLabsConfig::default().base_url("http://127.0.0.1:1");
        let tts = TtsConfig::new(AudioFormat::MULAW_8K)
            .voice("abc")
            .language("en-GB");
        let plan = FormatPlan::new(tts.format, Transport::WebSocket).expect("plan");
        let url = ws_url(&config, &tts, &plan).expect("url");
        assert_eq!(
            url.as_str(),
            "ws://127.0.0.1:1/v1/text-to-speech/abc/multi-stream-input?model_id=eleven_flash_v2_5&output_format=ulaw_8000&inactivity_timeout=180&language_code=en"
        );
    }
}
