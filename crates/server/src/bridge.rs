//! A call joined to a realtime speech model (Gemini Live, OpenAI Realtime).
//!
//! [`BridgeFactory`] gives each call a handler that opens one
//! [`RealtimeSession`] in the call's own audio format (the adapters transcode both
//! ways) and then stays out of the way:
//!
//! ```text
//! carrier media ──on_event──> try_send_audio (as it arrives; while connecting, a bounded buffer)
//!                   └──────> TurnDetector (local VAD: when the caller stopped, for the latency metric)
//! RealtimeEvents ──poll_wake (bounded inbox)──on_wake──> Audio: Call::play (paced, re-chunked)
//!                                                        Interrupted: Call::clear + truncate to Call::played
//!                                                        transcripts, usage, TTFB, errors: logs, bus, metrics
//!                                                        session over: hang up once playout is done
//! ```
//!
//! The handler never blocks: the connect runs in a spawned task whose result, like
//! the session's events, comes back through [`CallHandler::poll_wake`]. Every queue
//! is bounded: the start-up audio buffer by [`BridgeConfig::connect_buffer`], the
//! inbox by [`BridgeConfig::event_buffer`], the session's channels by the adapter and
//! the playout by the server's `max_queued_audio`.

mod metrics;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::Instrument;
use voxline_audio::AudioFormat;
use voxline_core::{
    ProviderError, RealtimeConfig, RealtimeEvent, RealtimeEvents, RealtimeModel, RealtimeSender,
    RealtimeSession, UsageKind,
};
use voxline_telephony::{CallEvent, CallInfo};
use voxline_vad::{AudioTime, TurnConfig, TurnDetector, TurnEvent, VadKind};

use crate::bus::EventKind;
use crate::handler::{Call, CallHandler, HandlerFactory};
use crate::playout::PlayoutEvent;

pub use metrics::{BridgeMetrics, ErrorKindLabel, OutcomeLabel, TokenLabel};

/// Longest transcript text gathered for one log line; the rest is cut.
const MAX_TRANSCRIPT_CHARS: usize = 4096;
/// After the first dropped caller frame, log one line per this many more.
const DROP_LOG_EVERY: u64 = 100;

/// How the bridge treats each call.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// The session template: instructions, voice, tools, temperature. Its formats are
    /// replaced by each call's own.
    pub session: RealtimeConfig,
    /// Caller audio kept while the session connects; the oldest is dropped beyond it
    /// (and a log line says so).
    pub connect_buffer: Duration,
    /// Model events held between the session and the call's task.
    pub event_buffer: usize,
    /// The local voice detector that dates the end of the caller's speech.
    pub vad: VadKind,
    /// Silence that ends a caller's turn for the latency metric (the model's own turn
    /// detection decides when it answers).
    pub turn_stop: Duration,
}

impl BridgeConfig {
    /// A config opening sessions like `session`, with a 2 s start-up buffer, 64 events
    /// of inbox, WebRTC VAD and a 0.5 s turn stop.
    pub fn new(session: RealtimeConfig) -> Self {
        Self {
            session,
            connect_buffer: Duration::from_secs(2),
            event_buffer: 64,
            vad: VadKind::default(),
            turn_stop: Duration::from_millis(500),
        }
    }
}

/// Makes a bridge handler for each call: one realtime session per call.
pub struct BridgeFactory {
    model: Arc<dyn RealtimeModel>,
    config: Arc<BridgeConfig>,
    metrics: BridgeMetrics,
}

impl std::fmt::Debug for BridgeFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeFactory")
            .field("model", &self.model.name())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl BridgeFactory {
    /// Bridges calls to `model`, opening sessions as `config` says and recording into
    /// `metrics` (register them with [`BridgeMetrics::new`] to export them).
    pub fn new(
        model: Arc<dyn RealtimeModel>,
        config: BridgeConfig,
        metrics: BridgeMetrics,
    ) -> Self {
        Self {
            model,
            config: Arc::new(config),
            metrics,
        }
    }

    /// The metrics the handlers record into.
    pub fn metrics(&self) -> &BridgeMetrics {
        &self.metrics
    }
}

impl HandlerFactory for BridgeFactory {
    fn create(&self, info: &CallInfo) -> Box<dyn CallHandler> {
        Box::new(BridgeCall::start(self, info))
    }
}

/// A model that cannot be reached (no API key configured, say): every connect fails
/// at once with an auth error carrying `reason`, so each call is closed with that
/// reason in its log line and no request leaves the machine.
#[derive(Debug, Clone)]
pub struct UnavailableModel {
    provider: &'static str,
    reason: String,
}

impl UnavailableModel {
    /// A stand-in for `provider` refusing every session because of `reason`.
    pub fn new(provider: &'static str, reason: impl Into<String>) -> Self {
        Self {
            provider,
            reason: reason.into(),
        }
    }
}

impl RealtimeModel for UnavailableModel {
    fn name(&self) -> &'static str {
        self.provider
    }

    fn connect(
        &self,
        _config: RealtimeConfig,
    ) -> voxline_core::BoxFuture<'_, Result<RealtimeSession, ProviderError>> {
        let error = ProviderError::new(
            self.provider,
            voxline_core::ErrorKind::Auth,
            self.reason.clone(),
        );
        Box::pin(std::future::ready(Err(error)))
    }
}

type ConnectResult = Result<RealtimeSession, ProviderError>;

/// Where the call's session stands.
enum Link {
    /// The connect task is running.
    Connecting {
        result: oneshot::Receiver<ConnectResult>,
        task: JoinHandle<()>,
        since: Instant,
    },
    /// The connect finished; `on_wake` takes it from here.
    Connected(ConnectResult, Instant),
    /// The session is open.
    Up {
        sender: RealtimeSender,
        events: RealtimeEvents,
        /// The session's event stream ended (`on_wake` hangs up).
        ended: bool,
    },
    /// No session (failed, ended, or the carrier stopped).
    Closed,
}

/// One call's bridge.
struct BridgeCall {
    provider: &'static str,
    format: AudioFormat,
    link: Link,
    metrics: BridgeMetrics,
    /// Caller audio waiting for the session to open.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    pending_limit: usize,
    pending_overflowed: bool,
    /// Model events taken from the session, with when they were taken.
    inbox: VecDeque<(Instant, RealtimeEvent)>,
    inbox_limit: usize,
    frames_dropped: u64,
    detector: Option<TurnDetector>,
    samples: Vec<i16>,
    /// Caller audio pushed into the detector so far.
    audio_pushed: u64,
    onset: Option<AudioTime>,
    /// When the caller's last turn ended, while no reply has started since.
    awaiting_reply: Option<Instant>,
    /// When the current reply started going out to the carrier.
    reply_started: Option<Instant>,
    /// Model audio was queued since the last reply boundary (mark or clear).
    reply_audio: bool,
    replies: u64,
    caller_text: String,
    bot_text: String,
    /// Hang up once the playout has finished.
    hangup_when_quiet: bool,
    hung_up: bool,
}

impl BridgeCall {
    fn start(factory: &BridgeFactory, info: &CallInfo) -> Self {
        let config = &factory.config;
        let format = info.format;
        let mut session = config.session.clone();
        session.input_format = format;
        session.output_format = format;
        let (tx, rx) = oneshot::channel();
        let model = Arc::clone(&factory.model);
        let provider = model.name();
        tracing::info!(provider, format = %format, "opening the realtime session");
        let task = tokio::spawn(
            async move {
                let result = model.connect(session).await;
                let _ = tx.send(result);
            }
            .instrument(tracing::Span::current()),
        );
        let detector = build_detector(config, format);
        Self {
            provider,
            format,
            link: Link::Connecting {
                result: rx,
                task,
                since: Instant::now(),
            },
            metrics: factory.metrics.clone(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            pending_limit: format.bytes_in(config.connect_buffer),
            pending_overflowed: false,
            inbox: VecDeque::with_capacity(config.event_buffer.clamp(1, 64)),
            inbox_limit: config.event_buffer.max(1),
            frames_dropped: 0,
            detector,
            samples: Vec::new(),
            audio_pushed: 0,
            onset: None,
            awaiting_reply: None,
            reply_started: None,
            reply_audio: false,
            replies: 0,
            caller_text: String::new(),
            bot_text: String::new(),
            hangup_when_quiet: false,
            hung_up: false,
        }
    }

    /// Forwards one frame of caller audio, or keeps it while the session connects.
    fn forward(&mut self, audio: Bytes, arrived: Instant) {
        match &self.link {
            Link::Up { sender, .. } => match sender.try_send_audio(audio) {
                Ok(()) => self
                    .metrics
                    .uplink_forward
                    .observe(arrived.elapsed().as_secs_f64()),
                Err(e) => self.dropped(&e.to_string()),
            },
            Link::Connecting { .. } | Link::Connected(..) => {
                self.pending_bytes += audio.len();
                self.pending.push_back(audio);
                while self.pending_bytes > self.pending_limit {
                    let Some(old) = self.pending.pop_front() else {
                        break;
                    };
                    self.pending_bytes -= old.len();
                    self.metrics.frames_dropped.inc();
                    if !self.pending_overflowed {
                        self.pending_overflowed = true;
                        tracing::warn!(
                            kept = ?self.format.duration_of(self.pending_limit),
                            "the realtime session is still connecting and the caller audio buffer is full; dropping the oldest audio"
                        );
                    }
                }
            }
            Link::Closed => {}
        }
    }

    fn dropped(&mut self, why: &str) {
        self.frames_dropped += 1;
        self.metrics.frames_dropped.inc();
        if self.frames_dropped % DROP_LOG_EVERY == 1 {
            tracing::warn!(
                dropped = self.frames_dropped,
                reason = why,
                "caller audio not forwarded to the model"
            );
        }
    }

    /// Runs the local VAD over a caller frame: dates the end of each caller turn.
    fn listen(&mut self, payload: &[u8], arrived: Instant, call: &mut Call<'_>) {
        let Some(detector) = self.detector.as_mut() else {
            return;
        };
        self.samples.clear();
        self.format.encoding.decode(payload, &mut self.samples);
        self.audio_pushed += self.samples.len() as u64;
        for event in detector.push(&self.samples) {
            call.publish(EventKind::from(&event));
            match event {
                TurnEvent::SpeechStarted { at, .. } => {
                    self.onset = Some(at);
                    self.awaiting_reply = None;
                }
                TurnEvent::SpeechStopped {
                    speech_duration, ..
                } => {
                    let Some(onset) = self.onset.take() else {
                        continue;
                    };
                    // The caller's audio arrives in real time: the speech ended as long
                    // before this frame's arrival as there is audio after it.
                    let ended_audio = onset.as_duration() + speech_duration;
                    let now_audio =
                        AudioTime::new(self.audio_pushed, self.format.sample_rate).as_duration();
                    let ended = arrived
                        .checked_sub(now_audio.saturating_sub(ended_audio))
                        .unwrap_or(arrived);
                    match self.reply_started {
                        // The model answered before the local VAD called the turn over.
                        Some(started) if started > ended && call.is_playing() => {
                            self.observe_response(started - ended, call);
                        }
                        _ => self.awaiting_reply = Some(ended),
                    }
                }
            }
        }
    }

    fn observe_response(&self, latency: Duration, call: &Call<'_>) {
        self.metrics.response_latency.observe(latency.as_secs_f64());
        call.observe_turn_latency(latency);
        tracing::debug!(?latency, "caller speech end to first model audio sent");
    }

    /// The connect task finished.
    fn on_connected(&mut self, result: ConnectResult, since: Instant, call: &mut Call<'_>) {
        match result {
            Ok(session) => {
                self.metrics.session("connected");
                self.metrics.sessions_active.inc();
                tracing::info!(
                    provider = self.provider,
                    took = ?since.elapsed(),
                    buffered = ?self.format.duration_of(self.pending_bytes),
                    "realtime session open"
                );
                let (sender, events) = session.split();
                let mut dropped = 0u64;
                for audio in self.pending.drain(..) {
                    if sender.try_send_audio(audio).is_err() {
                        dropped += 1;
                    }
                }
                self.pending_bytes = 0;
                if dropped > 0 {
                    self.metrics.frames_dropped.inc_by(dropped);
                    tracing::warn!(
                        dropped,
                        "buffered caller audio did not fit the session's input"
                    );
                }
                self.link = Link::Up {
                    sender,
                    events,
                    ended: false,
                };
            }
            Err(e) => {
                self.metrics.session("failed");
                self.metrics.error(e.kind);
                tracing::error!(
                    provider = self.provider,
                    error = %e,
                    "cannot open the realtime session; hanging up the call"
                );
                call.publish(EventKind::Error {
                    message: format!("realtime session failed: {e}"),
                });
                self.link = Link::Closed;
                self.pending.clear();
                self.pending_bytes = 0;
                self.hang_up(call);
            }
        }
    }

    fn on_model_event(&mut self, taken: Instant, event: RealtimeEvent, call: &mut Call<'_>) {
        match event {
            RealtimeEvent::Audio(audio) => {
                call.play(&audio);
                self.reply_audio = true;
                self.metrics
                    .downlink_forward
                    .observe(taken.elapsed().as_secs_f64());
            }
            RealtimeEvent::Interrupted => {
                let heard = call.played();
                let was_playing = call.is_playing() || self.reply_audio;
                call.clear("barge_in");
                self.reply_audio = false;
                self.reply_started = None;
                tracing::info!(?heard, "caller barged in: playback cleared");
                self.flush_bot_text(call, " (interrupted)");
                if was_playing && let Link::Up { sender, .. } = &self.link {
                    let sender = sender.clone();
                    tokio::spawn(
                        async move {
                            if let Err(e) = sender.truncate(heard).await {
                                tracing::debug!(error = %e, "truncate not sent");
                            }
                        }
                        .instrument(tracing::Span::current()),
                    );
                }
            }
            RealtimeEvent::TurnComplete => {
                self.flush_bot_text(call, "");
                if self.reply_audio {
                    // A mark ends the reply's stream: the next reply's `played` starts
                    // from zero, and the carrier echoes it when the reply has played.
                    self.replies += 1;
                    call.mark(format!("reply-{}", self.replies));
                    self.reply_audio = false;
                }
                tracing::debug!("model turn complete");
            }
            RealtimeEvent::InputTranscript { text, is_final } => {
                call.publish(EventKind::Transcript {
                    speaker: "caller".to_owned(),
                    text: text.clone(),
                    is_final,
                });
                if is_final {
                    // A final transcript is the whole utterance, not one more piece.
                    self.caller_text.clear();
                    tracing::info!(speaker = "caller", text = %text.trim(), "transcript");
                } else {
                    append(&mut self.caller_text, &text);
                }
            }
            RealtimeEvent::OutputTranscript { text, is_final } => {
                call.publish(EventKind::Transcript {
                    speaker: "bot".to_owned(),
                    text: text.clone(),
                    is_final,
                });
                if is_final {
                    self.bot_text.clear();
                    tracing::info!(speaker = "bot", text = %text.trim(), "transcript");
                } else {
                    append(&mut self.bot_text, &text);
                }
            }
            RealtimeEvent::SpeechStarted => tracing::debug!("the model heard the caller start"),
            RealtimeEvent::ToolCall(tool) => {
                tracing::warn!(
                    tool = %tool.name,
                    id = %tool.id,
                    arguments = %tool.arguments,
                    "the model called a tool, but none is configured; answering with an error"
                );
                if let Link::Up { sender, .. } = &self.link {
                    let sender = sender.clone();
                    let output =
                        serde_json::json!({"error": "no tools are configured"}).to_string();
                    tokio::spawn(
                        async move {
                            let _ = sender.send_tool_result(tool.id, output).await;
                        }
                        .instrument(tracing::Span::current()),
                    );
                }
            }
            RealtimeEvent::ToolCallsCancelled(ids) => {
                tracing::info!(?ids, "the model withdrew tool calls");
            }
            RealtimeEvent::Ttfb(ttfb) => {
                self.metrics
                    .provider_ttfb
                    .observe(ttfb.latency.as_secs_f64());
                tracing::debug!(latency = ?ttfb.latency, "provider time to first audio");
            }
            RealtimeEvent::Usage(usage) => {
                if let UsageKind::Tokens { prompt, completion } = usage.kind {
                    self.metrics.tokens("prompt", prompt);
                    self.metrics.tokens("completion", completion);
                    tracing::debug!(prompt, completion, "tokens used");
                }
            }
            RealtimeEvent::Reconnected => {
                self.metrics.reconnects.inc();
                tracing::info!(
                    provider = self.provider,
                    "realtime connection replaced; the call goes on"
                );
            }
            RealtimeEvent::Error(e) => {
                self.metrics.error(e.kind);
                tracing::warn!(provider = self.provider, error = %e, "realtime session error; the call goes on");
                call.publish(EventKind::Error {
                    message: format!("realtime: {e}"),
                });
            }
            other => tracing::debug!(event = ?other, "realtime event ignored"),
        }
    }

    /// Logs (and publishes as final) the bot's words gathered from pieces.
    fn flush_bot_text(&mut self, call: &mut Call<'_>, suffix: &str) {
        let text = std::mem::take(&mut self.bot_text);
        let text = text.trim();
        if !text.is_empty() {
            tracing::info!(speaker = "bot", text = %format_args!("{text}{suffix}"), "transcript");
            call.publish(EventKind::Transcript {
                speaker: "bot".to_owned(),
                text: text.to_owned(),
                is_final: true,
            });
        }
    }

    fn session_over(&mut self, call: &mut Call<'_>) {
        self.metrics.sessions_active.dec();
        self.link = Link::Closed;
        tracing::error!(
            provider = self.provider,
            "the realtime session ended for good; hanging up the call"
        );
        call.publish(EventKind::Error {
            message: "realtime session ended".to_owned(),
        });
        if call.is_playing() {
            self.hangup_when_quiet = true;
        } else {
            self.hang_up(call);
        }
    }

    fn hang_up(&mut self, call: &mut Call<'_>) {
        if !self.hung_up {
            self.hung_up = true;
            call.hangup();
        }
    }

    /// Ends the session (carrier gone): dropping the handle closes it cleanly.
    fn close_session(&mut self) {
        match std::mem::replace(&mut self.link, Link::Closed) {
            Link::Up { .. } => {
                self.metrics.sessions_active.dec();
                tracing::info!(provider = self.provider, "closing the realtime session");
            }
            Link::Connecting { task, .. } => task.abort(),
            _ => {}
        }
    }
}

impl CallHandler for BridgeCall {
    fn on_event(&mut self, event: CallEvent, call: &mut Call<'_>) {
        match event {
            CallEvent::Media(chunk) => {
                let arrived = Instant::now();
                let payload = chunk.payload;
                self.forward(payload.clone(), arrived);
                self.listen(&payload, arrived, call);
            }
            CallEvent::Stop(stop) => {
                tracing::info!(reason = ?stop.reason, "call over");
                self.close_session();
            }
            CallEvent::Clear => call.clear("peer_clear"),
            CallEvent::Dtmf(dtmf) => tracing::info!(digit = %dtmf.digit, "caller pressed a key"),
            CallEvent::Mark { name } => tracing::debug!(mark = %name, "reply played"),
            _ => {}
        }
    }

    fn on_playout(&mut self, event: PlayoutEvent, call: &mut Call<'_>) {
        match event {
            PlayoutEvent::Started => {
                let now = Instant::now();
                self.reply_started = Some(now);
                if let Some(ended) = self.awaiting_reply.take() {
                    self.observe_response(now.saturating_duration_since(ended), call);
                }
            }
            PlayoutEvent::Finished => {
                if self.hangup_when_quiet {
                    self.hang_up(call);
                }
            }
        }
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.inbox.is_empty() {
            return Poll::Ready(());
        }
        match &mut self.link {
            Link::Connecting {
                result,
                since,
                task: _,
            } => match Pin::new(result).poll(cx) {
                Poll::Ready(result) => {
                    let since = *since;
                    let result = result.unwrap_or_else(|_| {
                        Err(ProviderError::new(
                            self.provider,
                            voxline_core::ErrorKind::Closed,
                            "the connect task ended without an answer",
                        ))
                    });
                    self.link = Link::Connected(result, since);
                    Poll::Ready(())
                }
                Poll::Pending => Poll::Pending,
            },
            Link::Connected(..) => Poll::Ready(()),
            Link::Up { events, ended, .. } => {
                if *ended {
                    return Poll::Ready(());
                }
                while self.inbox.len() < self.inbox_limit {
                    // `recv` is cancel-safe: a fresh future per poll registers the waker.
                    match std::pin::pin!(events.recv()).poll(cx) {
                        Poll::Ready(Some(event)) => self.inbox.push_back((Instant::now(), event)),
                        Poll::Ready(None) => {
                            *ended = true;
                            break;
                        }
                        Poll::Pending => break,
                    }
                }
                if self.inbox.is_empty() && !*ended {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            }
            Link::Closed => Poll::Pending,
        }
    }

    fn on_wake(&mut self, call: &mut Call<'_>) {
        if matches!(self.link, Link::Connected(..))
            && let Link::Connected(result, since) = std::mem::replace(&mut self.link, Link::Closed)
        {
            self.on_connected(result, since, call);
        }
        while let Some((taken, event)) = self.inbox.pop_front() {
            self.on_model_event(taken, event, call);
        }
        if matches!(self.link, Link::Up { ended: true, .. }) {
            self.session_over(call);
        }
    }
}

impl Drop for BridgeCall {
    fn drop(&mut self) {
        self.close_session();
    }
}

fn build_detector(config: &BridgeConfig, format: AudioFormat) -> Option<TurnDetector> {
    let turns = TurnConfig {
        stop_secs: config.turn_stop.as_secs_f32(),
        ..TurnConfig::default()
    };
    let built = config
        .vad
        .build(format.sample_rate)
        .and_then(|vad| TurnDetector::new(vad, format.sample_rate, turns));
    match built {
        Ok(detector) => Some(detector),
        Err(e) => {
            tracing::warn!(error = %e, "no local voice detector: the response latency metric is off for this call");
            None
        }
    }
}

fn append(buffer: &mut String, text: &str) {
    let room = MAX_TRANSCRIPT_CHARS.saturating_sub(buffer.len());
    if room == 0 {
        return;
    }
    let mut end = text.len().min(room);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    buffer.push_str(&text[..end]);
}
