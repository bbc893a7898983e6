//! One streaming session: the task that owns the WebSocket, forwards audio, sends the
//! control messages, turns results into events and reconnects after a drop.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use reqwest::Url;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use voxline_core::{
    ErrorKind, ProviderError, RetryPolicy, SttConfig, SttEvent, SttInput, SttPeer, SttSession,
    Transcript, Ttfb, Usage, UsageKind, Word,
};

use crate::PROVIDER;
use crate::config::DeepgramConfig;
use crate::messages::{self, Results, ServerMessage, secs};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Connecting = Pin<Box<dyn Future<Output = Result<Box<Socket>, ProviderError>> + Send>>;

/// How long a handshake may take before it counts as a retryable timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a session: connects (retrying retryable handshake failures) and spawns the
/// task that owns the connection.
pub(crate) async fn open(
    config: Arc<DeepgramConfig>,
    session: SttConfig,
) -> Result<SttSession, ProviderError> {
    voxline_core::install_tls();
    let connector = Arc::new(Connector {
        url: config.listen_url(&session)?,
        key: config.key()?,
    });
    tracing::debug!(url = %connector.url, "deepgram: connecting");
    let socket = config.retry.run(|| connector.connect()).await?;
    let (handle, peer) = SttSession::channel(PROVIDER, config.channel_capacity);
    let bytes_per_second =
        session.format.bytes_per_second() as f64 * f64::from(config.channels.max(1));
    let now = Instant::now();
    let task = Task {
        peer,
        connector,
        retry: config.retry,
        keepalive: config.keepalive_interval,
        close_timeout: config.close_timeout,
        want_interims: session.interim_results,
        bytes_per_second,
        link: Link::Up(socket),
        conn: Conn::starting_at(0),
        session_bytes: 0,
        replay: Replay::new((config.replay_window.as_secs_f64() * bytes_per_second) as usize),
        failures: 0,
        last_sent: now,
        ttfb: None,
        first_audio: true,
        finalize_pending: false,
        input_open: true,
        closing_until: None,
        last_interim: None,
        done: false,
    };
    tokio::spawn(task.run());
    Ok(handle)
}

/// Makes connections: the URL with the options and the key.
struct Connector {
    url: Url,
    key: String,
}

impl Connector {
    fn connect(self: &Arc<Self>) -> Connecting {
        let this = Arc::clone(self);
        Box::pin(async move {
            match timeout(CONNECT_TIMEOUT, this.handshake()).await {
                Ok(result) => result,
                Err(_) => Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Timeout,
                    "WebSocket handshake timed out",
                )),
            }
        })
    }

    async fn handshake(&self) -> Result<Box<Socket>, ProviderError> {
        let mut request = self.url.as_str().into_client_request().map_err(|e| {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        })?;
        let auth = HeaderValue::from_str(&format!("Token {}", self.key)).map_err(|_| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Auth,
                "the API key has characters not allowed in a header",
            )
        })?;
        request.headers_mut().insert("authorization", auth);
        // Audio frames are small and control messages tiny: small buffers.
        let ws_config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(8 * 1024);
        match tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true).await {
            Ok((socket, response)) => {
                let request_id = response
                    .headers()
                    .get("dg-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info!(request_id, "deepgram: connected");
                Ok(Box::new(socket))
            }
            Err(e) => Err(handshake_error(e)),
        }
    }
}

/// Maps a failed handshake: the HTTP status (401/403 permanent, 429/5xx retryable)
/// with Deepgram's `dg-error` reason, or a retryable connection error.
fn handshake_error(error: tungstenite::Error) -> ProviderError {
    match error {
        tungstenite::Error::Http(response) => {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            let message = match (header("dg-error"), body.is_empty()) {
                (Some(reason), _) => reason,
                (None, false) => body,
                (None, true) => "handshake refused".to_owned(),
            };
            let mut e = ProviderError::from_http(PROVIDER, response.status().as_u16(), message);
            if let Some(after) = header("retry-after")
                .and_then(|v| voxline_core::parse_retry_after(&v, std::time::SystemTime::now()))
            {
                e = e.with_retry_after(after);
            }
            if let Some(id) = header("dg-request-id") {
                tracing::warn!(request_id = %id, status = ?e.status, "deepgram: handshake refused");
            }
            e
        }
        tungstenite::Error::Url(e) => {
            ProviderError::new(PROVIDER, ErrorKind::BadRequest, format!("bad URL: {e}"))
        }
        other => ProviderError::new(PROVIDER, ErrorKind::Connection, other.to_string()),
    }
}

/// The state of the provider connection.
enum Link {
    /// Connected.
    Up(Box<Socket>),
    /// Dropped; the next attempt is due at `at`.
    Down { at: Instant },
    /// A handshake in flight.
    Connecting(Connecting),
    /// Finished for good.
    Gone,
}

/// What happened on the link.
enum LinkEvent {
    Frame(Option<Result<Message, tungstenite::Error>>),
    Timer,
    RetryDue,
    Connected(Result<Box<Socket>, ProviderError>),
}

async fn link_event(link: &mut Link, deadline: Instant) -> LinkEvent {
    match link {
        Link::Up(socket) => tokio::select! {
            frame = socket.next() => LinkEvent::Frame(frame),
            () = sleep_until(deadline) => LinkEvent::Timer,
        },
        Link::Down { at } => {
            sleep_until(*at).await;
            LinkEvent::RetryDue
        }
        Link::Connecting(handshake) => LinkEvent::Connected(handshake.as_mut().await),
        Link::Gone => std::future::pending().await,
    }
}

/// Per-connection accounting.
struct Conn {
    /// Where this connection's audio starts in the session's audio, bytes.
    offset_bytes: u64,
    /// Audio sent on this connection, bytes (resent audio included: it is billed).
    sent_bytes: u64,
    /// `Metadata.duration`, once received.
    metadata_duration: Option<f64>,
    /// Whether a result arrived (a connection that gives none counts as a failure).
    got_result: bool,
    /// Whether its usage was reported.
    usage_reported: bool,
}

impl Conn {
    fn starting_at(offset_bytes: u64) -> Self {
        Self {
            offset_bytes,
            sent_bytes: 0,
            metadata_duration: None,
            got_result: false,
            usage_reported: false,
        }
    }
}

/// Recent audio not yet covered by a final result, bounded, for resending after a
/// reconnect.
struct Replay {
    chunks: VecDeque<(u64, Bytes)>,
    bytes: usize,
    limit: usize,
}

impl Replay {
    fn new(limit: usize) -> Self {
        Self {
            chunks: VecDeque::new(),
            bytes: 0,
            limit,
        }
    }

    fn push(&mut self, start: u64, audio: Bytes) {
        self.bytes += audio.len();
        self.chunks.push_back((start, audio));
        while self.bytes > self.limit {
            match self.chunks.pop_front() {
                Some((_, dropped)) => self.bytes -= dropped.len(),
                None => break,
            }
        }
    }

    /// Forgets chunks that end at or before `end` (a final result covers them).
    fn settle(&mut self, end: u64) {
        while let Some((start, chunk)) = self.chunks.front() {
            if start + chunk.len() as u64 > end {
                break;
            }
            self.bytes -= chunk.len();
            self.chunks.pop_front();
        }
    }

    fn start(&self) -> Option<u64> {
        self.chunks.front().map(|(start, _)| *start)
    }
}

/// The session task.
struct Task {
    peer: SttPeer,
    connector: Arc<Connector>,
    retry: RetryPolicy,
    keepalive: Duration,
    close_timeout: Duration,
    want_interims: bool,
    bytes_per_second: f64,
    link: Link,
    conn: Conn,
    /// Audio received from the caller, bytes.
    session_bytes: u64,
    replay: Replay,
    /// Consecutive connections (or handshakes) that failed before giving a result.
    failures: u32,
    /// When we last sent anything (audio or a control message).
    last_sent: Instant,
    /// A pending TTFB mark: since when, and whether a final result closes it.
    ttfb: Option<(Instant, bool)>,
    first_audio: bool,
    /// A `Finalize` asked for while disconnected.
    finalize_pending: bool,
    input_open: bool,
    /// `CloseStream` sent; wait for the close until then.
    closing_until: Option<Instant>,
    /// The last non-empty interim, in case the final for its span comes back empty.
    last_interim: Option<Transcript>,
    done: bool,
}

enum Step {
    Input(Option<SttInput>),
    Link(LinkEvent),
}

impl Task {
    async fn run(mut self) {
        while !self.done {
            let deadline = self
                .closing_until
                .unwrap_or(self.last_sent + self.keepalive);
            let step = tokio::select! {
                input = self.peer.input.recv(), if self.input_open => Step::Input(input),
                event = link_event(&mut self.link, deadline) => Step::Link(event),
            };
            match step {
                Step::Input(Some(SttInput::Audio(audio))) => self.on_audio(audio).await,
                Step::Input(Some(SttInput::Finalize)) => self.on_finalize().await,
                Step::Input(Some(other)) => {
                    tracing::debug!(?other, "deepgram: input not handled");
                }
                Step::Input(None) => self.on_input_closed().await,
                Step::Link(event) => self.on_link(event).await,
            }
        }
        tracing::debug!(
            session_seconds = self.session_bytes as f64 / self.bytes_per_second,
            "deepgram: session ended"
        );
    }

    fn socket(&mut self) -> Option<&mut Socket> {
        match &mut self.link {
            Link::Up(socket) => Some(socket),
            _ => None,
        }
    }

    async fn emit(&mut self, event: SttEvent) {
        // A caller that dropped the handle no longer listens; the task still closes.
        let _ = self.peer.send(event).await;
    }

    /// Sends one frame; a failure is a dropped connection.
    async fn send(&mut self, message: Message) {
        let Some(socket) = self.socket() else {
            return;
        };
        match socket.send(message).await {
            Ok(()) => self.last_sent = Instant::now(),
            Err(e) => {
                let error = ProviderError::new(PROVIDER, ErrorKind::Connection, e.to_string());
                self.on_drop(error).await;
            }
        }
    }

    async fn on_audio(&mut self, audio: Bytes) {
        // An empty binary frame tells Deepgram to close the stream: never send one.
        if audio.is_empty() {
            return;
        }
        if self.first_audio {
            self.first_audio = false;
            self.ttfb = Some((Instant::now(), false));
        }
        let start = self.session_bytes;
        let len = audio.len() as u64;
        self.session_bytes += len;
        self.replay.push(start, audio.clone());
        if matches!(self.link, Link::Up(_)) {
            self.conn.sent_bytes += len;
            self.send(Message::Binary(audio)).await;
        }
    }

    async fn on_finalize(&mut self) {
        self.ttfb = Some((Instant::now(), true));
        if matches!(self.link, Link::Up(_)) {
            self.send(Message::text(messages::FINALIZE)).await;
        } else {
            self.finalize_pending = true;
        }
    }

    async fn on_input_closed(&mut self) {
        self.input_open = false;
        if matches!(self.link, Link::Up(_)) {
            self.begin_close().await;
        }
        // Down or connecting: the close follows the reconnect, so buffered audio is
        // still transcribed; if the reconnect fails the session ends there.
    }

    async fn begin_close(&mut self) {
        tracing::debug!("deepgram: CloseStream");
        self.closing_until = Some(Instant::now() + self.close_timeout);
        self.send(Message::text(messages::CLOSE_STREAM)).await;
    }

    async fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Frame(Some(Ok(Message::Text(text)))) => self.on_text(&text).await,
            LinkEvent::Frame(Some(Ok(Message::Close(frame)))) => {
                if self.closing_until.is_some() {
                    // The normal end after CloseStream; keep reading so the close
                    // handshake completes, the stream then ends.
                    return;
                }
                let (code, reason) = frame
                    .map(|f| (u16::from(f.code), f.reason.to_string()))
                    .unwrap_or((1005, String::new()));
                let error = if matches!(code, 1000 | 1001 | 1005) {
                    ProviderError::new(
                        PROVIDER,
                        ErrorKind::Connection,
                        format!("the server closed the stream unasked ({code} {reason})"),
                    )
                    .with_status(code)
                } else {
                    ProviderError::from_close(PROVIDER, code, reason)
                };
                self.on_drop(error).await;
            }
            LinkEvent::Frame(Some(Ok(other))) => {
                tracing::trace!(?other, "deepgram: frame ignored");
            }
            LinkEvent::Frame(Some(Err(e))) => {
                if self.closing_until.is_some()
                    && matches!(
                        e,
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed
                    )
                {
                    self.finish().await;
                    return;
                }
                let error = ProviderError::new(PROVIDER, ErrorKind::Connection, e.to_string())
                    .with_status(1006);
                self.on_drop(error).await;
            }
            LinkEvent::Frame(None) => {
                if self.closing_until.is_some() {
                    self.finish().await;
                } else {
                    let error = ProviderError::new(
                        PROVIDER,
                        ErrorKind::Connection,
                        "connection closed without a close frame",
                    )
                    .with_status(1006);
                    self.on_drop(error).await;
                }
            }
            LinkEvent::Timer => {
                if self.closing_until.is_some() {
                    tracing::warn!("deepgram: no close after CloseStream in time");
                    if let Some(socket) = self.socket() {
                        let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                    }
                    self.finish().await;
                } else {
                    tracing::trace!("deepgram: KeepAlive");
                    self.send(Message::text(messages::KEEP_ALIVE)).await;
                }
            }
            LinkEvent::RetryDue => {
                self.link = Link::Connecting(self.connector.connect());
            }
            LinkEvent::Connected(Ok(socket)) => self.on_reconnected(socket).await,
            LinkEvent::Connected(Err(error)) => {
                self.failures += 1;
                if error.is_retryable() && self.failures < self.retry.attempts.max(1) {
                    let pause = self.retry.delay(self.failures, &error);
                    tracing::warn!(%error, ?pause, failures = self.failures, "deepgram: reconnect failed");
                    self.link = Link::Down {
                        at: Instant::now() + pause,
                    };
                } else {
                    tracing::error!(%error, "deepgram: giving up reconnecting");
                    self.emit(SttEvent::Error(error)).await;
                    self.finish().await;
                }
            }
        }
    }

    /// The connection dropped (or failed on send): report, then reconnect if it may help.
    async fn on_drop(&mut self, error: ProviderError) {
        tracing::warn!(%error, "deepgram: connection lost");
        self.report_usage().await;
        self.link = Link::Gone;
        if self.conn.got_result {
            self.failures = 0;
        } else {
            self.failures += 1;
        }
        let retry = error.is_retryable()
            && self.closing_until.is_none()
            && self.failures < self.retry.attempts.max(1);
        let pause = self.retry.delay(self.failures, &error);
        self.emit(SttEvent::Error(error)).await;
        if retry {
            self.link = Link::Down {
                at: Instant::now() + pause,
            };
        } else {
            self.finish().await;
        }
    }

    async fn on_reconnected(&mut self, socket: Box<Socket>) {
        let offset = self.replay.start().unwrap_or(self.session_bytes);
        tracing::info!(
            resend_bytes = self.session_bytes - offset,
            offset_seconds = offset as f64 / self.bytes_per_second,
            "deepgram: reconnected"
        );
        self.link = Link::Up(socket);
        self.conn = Conn::starting_at(offset);
        self.last_interim = None;
        let backlog: Vec<Bytes> = self.replay.chunks.iter().map(|(_, c)| c.clone()).collect();
        for chunk in backlog {
            if !matches!(self.link, Link::Up(_)) {
                return;
            }
            self.conn.sent_bytes += chunk.len() as u64;
            self.send(Message::Binary(chunk)).await;
        }
        if !matches!(self.link, Link::Up(_)) {
            return;
        }
        self.emit(SttEvent::Reconnected).await;
        if std::mem::take(&mut self.finalize_pending) {
            self.send(Message::text(messages::FINALIZE)).await;
        }
        if !self.input_open {
            self.begin_close().await;
        }
    }

    async fn on_text(&mut self, text: &str) {
        let message = match messages::parse(text) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(error = %e, text, "deepgram: unreadable message skipped");
                return;
            }
        };
        let offset = self.conn.offset_bytes as f64 / self.bytes_per_second;
        match message {
            ServerMessage::Results(results) => self.on_results(results, offset).await,
            ServerMessage::SpeechStarted { timestamp } => {
                let at = timestamp.map(|t| secs(t + offset));
                self.emit(SttEvent::SpeechStarted { at }).await;
            }
            ServerMessage::UtteranceEnd { last_word_end } => {
                let last_word_end = last_word_end.map(|t| secs(t + offset));
                self.emit(SttEvent::UtteranceEnd { last_word_end }).await;
            }
            ServerMessage::Metadata {
                duration,
                request_id,
            } => {
                tracing::debug!(duration, request_id, "deepgram: metadata");
                self.conn.metadata_duration = Some(duration);
            }
            ServerMessage::Error {
                variant,
                description,
            } => {
                let error = ProviderError::new(
                    PROVIDER,
                    ErrorKind::BadRequest,
                    format!("{variant}: {description}"),
                );
                self.emit(SttEvent::Error(error)).await;
            }
            ServerMessage::Unknown(kind) => {
                tracing::debug!(kind, "deepgram: unknown message type skipped");
            }
        }
    }

    async fn on_results(&mut self, results: Results, offset: f64) {
        self.conn.got_result = true;
        if let Some(request_id) = results
            .metadata
            .as_ref()
            .and_then(|m| m.request_id.as_ref())
        {
            tracing::trace!(request_id, "deepgram: results");
        }
        let end_secs = offset + results.end();
        if results.is_final {
            self.replay
                .settle((end_secs * self.bytes_per_second).max(0.0) as u64);
        }
        let text = results.transcript();
        if let Some((since, needs_final)) = self.ttfb
            && ((needs_final && results.is_final) || (!needs_final && !text.is_empty()))
        {
            self.ttfb = None;
            self.emit(SttEvent::Ttfb(Ttfb {
                provider: PROVIDER,
                latency: since.elapsed(),
            }))
            .await;
        }
        let transcript = to_transcript(&results, offset);
        if !results.is_final {
            if transcript.text.is_empty() {
                return;
            }
            self.last_interim = Some(transcript.clone());
            if self.want_interims {
                self.emit(SttEvent::Transcript(transcript)).await;
            }
            return;
        }
        let interim = self.last_interim.take();
        if !transcript.text.is_empty() {
            self.emit(SttEvent::Transcript(transcript)).await;
            return;
        }
        // An empty final: fall back on the last interim's words in this span (the
        // final sometimes comes back empty although interims had the words).
        if let Some(rescued) = interim.and_then(|i| rescue(i, secs(end_secs))) {
            tracing::debug!(
                text = rescued.text,
                "deepgram: empty final, using the interim"
            );
            let rescued = Transcript {
                is_final: true,
                end_of_utterance: results.speech_final,
                ..rescued
            };
            self.emit(SttEvent::Transcript(rescued)).await;
        } else if results.speech_final {
            // Still the end of an utterance: keep the marker.
            self.emit(SttEvent::Transcript(transcript)).await;
        }
    }

    /// Reports this connection's usage once: Deepgram's figure when it sent one,
    /// else the audio sent.
    async fn report_usage(&mut self) {
        if self.conn.usage_reported {
            return;
        }
        self.conn.usage_reported = true;
        let usage = match self.conn.metadata_duration {
            Some(duration) => Usage {
                provider: PROVIDER,
                kind: UsageKind::AudioSeconds(duration),
                reported: true,
            },
            None if self.conn.sent_bytes > 0 => Usage {
                provider: PROVIDER,
                kind: UsageKind::AudioSeconds(self.conn.sent_bytes as f64 / self.bytes_per_second),
                reported: false,
            },
            None => return,
        };
        self.emit(SttEvent::Usage(usage)).await;
    }

    async fn finish(&mut self) {
        self.report_usage().await;
        self.link = Link::Gone;
        self.done = true;
    }
}

/// A final-shaped copy of `interim` keeping only the words that start before `end`;
/// `None` if nothing is left.
fn rescue(interim: Transcript, end: Duration) -> Option<Transcript> {
    if interim.words.is_empty() {
        return (interim.start < end).then_some(interim);
    }
    let words: Vec<Word> = interim
        .words
        .into_iter()
        .filter(|w| w.start < end)
        .collect();
    if words.is_empty() {
        return None;
    }
    let text = words
        .iter()
        .map(|w| w.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Transcript {
        text,
        words,
        ..interim
    })
}

/// A `Results` message as a transcript in session time (`offset` seconds added).
fn to_transcript(results: &Results, offset: f64) -> Transcript {
    let best = results.best();
    Transcript {
        text: results.transcript().to_owned(),
        is_final: results.is_final,
        end_of_utterance: results.is_final && results.speech_final,
        confidence: best.and_then(|a| a.confidence).map(|c| c as f32),
        start: secs(results.start + offset),
        duration: secs(results.duration),
        words: best
            .map(|a| {
                a.words
                    .iter()
                    .map(|w| Word {
                        text: w.punctuated_word.clone().unwrap_or_else(|| w.word.clone()),
                        start: secs(w.start + offset),
                        end: secs(w.end + offset),
                        confidence: w.confidence.map(|c| c as f32),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        language: best.and_then(|a| a.languages.first().cloned()).or_else(|| {
            best.and_then(|a| a.words.first())
                .and_then(|w| w.language.clone())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_keeps_what_no_final_covers_within_its_limit() {
        let mut replay = Replay::new(500);
        for i in 0..4u64 {
            replay.push(i * 160, Bytes::from(vec![0u8; 160]));
        }
        // 640 bytes > 500: the oldest chunk went.
        assert_eq!(replay.start(), Some(160));
        replay.settle(400);
        // The chunk 320..480 is not fully covered.
        assert_eq!(replay.start(), Some(320));
        replay.settle(10_000);
        assert_eq!(replay.start(), None);
        assert_eq!(replay.bytes, 0);
    }

    #[test]
    fn results_move_to_session_time() {
        let Ok(ServerMessage::Results(r)) = messages::parse(
            r#"{"type":"Results","start":1.0,"duration":0.5,"is_final":true,"speech_final":true,
               "channel":{"alternatives":[{"transcript":"hi","confidence":0.5,
               "words":[{"word":"hi","punctuated_word":"Hi.","start":1.1,"end":1.4,"confidence":0.9}]}]}}"#,
        ) else {
            panic!("parse");
        };
        let t = to_transcript(&r, 10.0);
        assert_eq!(t.start, Duration::from_secs(11));
        assert_eq!(t.duration, Duration::from_millis(500));
        assert!(t.is_final && t.end_of_utterance);
        assert_eq!(t.words[0].text, "Hi.");
        assert_eq!(t.words[0].start, secs(11.1));
        assert_eq!(t.words[0].end, secs(11.4));
    }

    #[test]
    fn rescue_keeps_the_interim_words_inside_the_final_span() {
        let word = |text: &str, start: u64| Word {
            text: text.into(),
            start: Duration::from_millis(start),
            end: Duration::from_millis(start + 200),
            confidence: None,
        };
        let interim = Transcript {
            text: "book a table".into(),
            is_final: false,
            end_of_utterance: false,
            confidence: None,
            start: Duration::ZERO,
            duration: Duration::from_secs(1),
            words: vec![word("book", 0), word("a", 300), word("table", 900)],
            language: None,
        };
        let kept = rescue(interim.clone(), Duration::from_millis(800)).expect("words");
        assert_eq!(kept.text, "book a");
        assert!(rescue(interim, Duration::ZERO).is_none());
    }
}
