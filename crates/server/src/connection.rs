//! One carrier connection: dialect detection, decoding, the handler, paced playout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant as TokioInstant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field};
use voxline_telephony::detect::{Detection, Detector};
use voxline_telephony::{
    BotCommand, CallEvent, CallInfo, Decoded, Dialect, Session, SessionConfig, Stop, WsFrame,
};

use crate::bus::{EventBus, EventKind};
use crate::config::ServerConfig;
use crate::handler::{Call, CallHandler, HandlerFactory};
use crate::metrics::{CallMetrics, Metrics};
use crate::playout::{Outgoing, Playout, PlayoutEvent};

/// Frames examined to detect a dialect before giving up.
const DETECTION_FRAMES: usize = 4;
/// How long to wait for the carrier to close after its `stop`.
const STOP_LINGER: Duration = Duration::from_secs(2);

/// What every connection shares.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) factory: Arc<dyn HandlerFactory>,
    pub(crate) metrics: Metrics,
    pub(crate) bus: EventBus,
    pub(crate) shutdown: CancellationToken,
    pub(crate) connections: AtomicU64,
    /// The call limit (permits of the server's semaphore).
    pub(crate) limiter_size: usize,
}

/// What the upgrade request said about the connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectionHint {
    pub(crate) dialect: Option<Dialect>,
    pub(crate) url_sample_rate: Option<u32>,
    /// The query string, for dialects that read it (Voxline's custom parameters).
    pub(crate) url_query: Option<String>,
}

/// Runs a connection to its end.
pub(crate) async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    hint: ConnectionHint,
    permit: OwnedSemaphorePermit,
) {
    let number = shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let conn_id: Arc<str> = Arc::from(format!("conn-{number}"));
    let span = tracing::info_span!("call", conn = %conn_id, call_id = field::Empty, dialect = field::Empty);
    shared.metrics.calls_active.inc();
    let started = Instant::now();
    let mut connection = Connection {
        socket,
        shared: Arc::clone(&shared),
        hint,
        call_id: Arc::clone(&conn_id),
        state: None,
        out: Vec::new(),
        stopped: None,
        ended: false,
    };
    connection.run().instrument(span).await;
    let duration = started.elapsed();
    shared.metrics.calls_active.dec();
    shared.metrics.call_duration.observe(duration.as_secs_f64());
    shared.bus.publish(
        &connection.call_id,
        EventKind::CallEnded {
            duration_ms: duration.as_millis() as u64,
        },
    );
    drop(permit);
}

/// A call once its dialect is known.
struct CallState {
    session: Session,
    metrics: CallMetrics,
    /// Present once `start` has arrived.
    active: Option<ActiveCall>,
}

struct ActiveCall {
    info: CallInfo,
    handler: Box<dyn CallHandler>,
    playout: Playout,
    first_media: bool,
}

struct Connection {
    socket: WebSocket,
    shared: Arc<Shared>,
    hint: ConnectionHint,
    call_id: Arc<str>,
    state: Option<CallState>,
    out: Vec<WsFrame>,
    /// When the carrier's `stop` arrived.
    stopped: Option<Instant>,
    ended: bool,
}

impl Connection {
    async fn run(&mut self) {
        if let Some(dialect) = self.shared.config.dialect.or(self.hint.dialect) {
            self.begin(dialect);
            for frame in self.session_opening() {
                self.out.push(frame);
            }
            self.flush().await;
        }
        let mut detector = Detector::new();
        let mut pending: Vec<WsFrame> = Vec::new();
        let idle_timeout = self.shared.config.idle_timeout;
        let idle = sleep(idle_timeout);
        tokio::pin!(idle);
        let mut wake: Option<Instant> = None;

        while !self.ended {
            let linger = self.stopped.map(|at| at + STOP_LINGER);
            tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => {
                    tracing::info!("server shutting down: closing the call");
                    self.close(1001, "server shutting down").await;
                    break;
                }
                message = self.socket.recv() => {
                    let received = Instant::now();
                    match message {
                        None => break,
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "WebSocket error; ending the call");
                            break;
                        }
                        Some(Ok(message)) => {
                            idle.as_mut().reset(TokioInstant::now() + idle_timeout);
                            let Some(frame) = to_frame(message) else {
                                if self.ended { break; }
                                continue;
                            };
                            self.shared.metrics.frames_in.inc();
                            if self.state.is_none() {
                                let detection = detector.observe(&frame);
                                pending.push(frame);
                                match detection {
                                    Detection::Decided(dialect) => {
                                        self.begin(dialect);
                                        for frame in std::mem::take(&mut pending) {
                                            self.on_frame(frame, received);
                                        }
                                    }
                                    Detection::NeedMore if pending.len() < DETECTION_FRAMES => {}
                                    Detection::NeedMore | Detection::Unknown => {
                                        tracing::warn!(frames = pending.len(), "cannot tell which carrier dialect this is; closing");
                                        self.shared.bus.publish(&self.call_id, EventKind::Error {
                                            message: "unknown carrier dialect".into(),
                                        });
                                        self.close(1003, "unknown dialect: use a dialect path such as /twilio").await;
                                        break;
                                    }
                                }
                            } else {
                                self.on_frame(frame, received);
                            }
                        }
                    }
                }
                () = sleep_until_opt(wake) => {}
                () = handler_wake(&mut self.state) => self.on_wake(),
                () = &mut idle => {
                    tracing::warn!(?idle_timeout, "no frame from the carrier; closing the call");
                    self.close(1000, "idle timeout").await;
                    break;
                }
                () = sleep_until_opt(linger) => {
                    tracing::debug!("carrier did not close after stop; closing");
                    self.close(1000, "stream stopped").await;
                    break;
                }
            }
            wake = self.poll_playout();
            self.flush().await;
        }
        self.finish_call();
    }

    fn session_opening(&self) -> Vec<WsFrame> {
        self.state
            .as_ref()
            .map(|s| s.session.opening_frames())
            .unwrap_or_default()
    }

    /// The dialect is known: set up the session.
    fn begin(&mut self, dialect: Dialect) {
        tracing::Span::current().record("dialect", dialect.name());
        let session = Session::new(
            SessionConfig::new(dialect, self.call_id.to_string())
                .with_url_sample_rate(self.hint.url_sample_rate)
                .with_url_query(self.hint.url_query.clone()),
        );
        self.state = Some(CallState {
            session,
            metrics: self.shared.metrics.for_dialect(dialect),
            active: None,
        });
    }

    fn on_frame(&mut self, frame: WsFrame, received: Instant) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match state.session.decode(&frame) {
            Ok(Decoded::Event(event)) => self.on_event(event, received),
            Ok(Decoded::Ignored { event }) => tracing::debug!(event, "ignored carrier event"),
            Err(e) => {
                state.metrics.decode_errors.inc();
                tracing::warn!(error = %e, "malformed carrier frame skipped");
                self.shared.bus.publish(
                    &self.call_id,
                    EventKind::Error {
                        message: e.to_string(),
                    },
                );
            }
        }
    }

    fn on_event(&mut self, event: CallEvent, received: Instant) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        match &event {
            CallEvent::Start(info) => {
                if state.active.is_some() {
                    tracing::warn!("second start on one stream ignored");
                    return;
                }
                self.call_id = Arc::from(info.call_id.as_str());
                tracing::Span::current().record("call_id", info.call_id.as_str());
                let config = &self.shared.config;
                let playout = match Playout::new(
                    info.format,
                    state.session.outbound_frame_size(),
                    config.playout_lead,
                    config.max_queued_audio,
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot set up playout; ending the call");
                        self.ended = true;
                        return;
                    }
                };
                self.shared
                    .metrics
                    .calls_total
                    .get_or_create(&crate::metrics::DialectLabel {
                        dialect: info.dialect.name().to_owned(),
                    })
                    .inc();
                tracing::info!(from = ?info.from, to = ?info.to, format = %info.format, "call started");
                self.shared.bus.publish(
                    &self.call_id,
                    EventKind::CallStarted {
                        dialect: info.dialect.name().to_owned(),
                        from: info.from.clone(),
                        to: info.to.clone(),
                        format: info.format.to_string(),
                    },
                );
                let handler = self.shared.factory.create(info);
                state.active = Some(ActiveCall {
                    info: info.clone(),
                    handler,
                    playout,
                    first_media: true,
                });
                return;
            }
            CallEvent::Media(_) => {
                if let Some(active) = state.active.as_mut()
                    && active.first_media
                {
                    active.first_media = false;
                    self.shared
                        .bus
                        .publish(&self.call_id, EventKind::FirstMedia);
                }
            }
            CallEvent::Mark { name } => {
                self.shared
                    .bus
                    .publish(&self.call_id, EventKind::Mark { name: name.clone() });
            }
            CallEvent::Dtmf(dtmf) => {
                tracing::info!(digit = %dtmf.digit, "DTMF");
                self.shared.bus.publish(
                    &self.call_id,
                    EventKind::Dtmf {
                        digit: dtmf.digit.to_string(),
                    },
                );
            }
            CallEvent::Stop(stop) => {
                tracing::info!(reason = ?stop.reason, "carrier stopped the stream");
                self.shared.bus.publish(
                    &self.call_id,
                    EventKind::Stop {
                        reason: stop.reason.clone(),
                    },
                );
                self.stopped = Some(Instant::now());
            }
            CallEvent::CarrierError { code, message } => {
                tracing::warn!(?code, message, "carrier reported an error");
                self.shared.bus.publish(
                    &self.call_id,
                    EventKind::Error {
                        message: format!("carrier error {code:?}: {message}"),
                    },
                );
            }
            // Connected, Clear, Cleared, and what only the handler acts on (a browser
            // client's text messages and mode changes, and events added later).
            _ => {}
        }
        let is_media = matches!(event, CallEvent::Media(_));
        match self.with_handler(|handler, call| handler.on_event(event, call)) {
            None if is_media => tracing::debug!("media before start dropped"),
            Some(true) => {
                if let Some(state) = &self.state {
                    state
                        .metrics
                        .frame_turnaround
                        .observe(received.elapsed().as_secs_f64());
                }
            }
            _ => {}
        }
    }

    /// Runs `f` with the call's handler and the handler's view of the call, once the
    /// call has started; ends the connection if the handler closed the call. Returns
    /// whether the handler replied at once (immediate echo), or `None` before `start`.
    fn with_handler(
        &mut self,
        f: impl FnOnce(&mut dyn CallHandler, &mut Call<'_>),
    ) -> Option<bool> {
        let state = self.state.as_mut()?;
        let active = state.active.as_mut()?;
        let mut call = Call {
            call_id: &self.call_id,
            info: &active.info,
            session: &mut state.session,
            playout: &mut active.playout,
            bus: &self.shared.bus,
            metrics: &state.metrics,
            out: &mut self.out,
            replied_now: false,
            close: false,
        };
        f(active.handler.as_mut(), &mut call);
        let (replied_now, close) = (call.replied_now, call.close);
        if close {
            // Dialects without a hang-up message end the call by closing the socket:
            // with a close frame, so the carrier sees a clean end, not a reset.
            if !self.out.iter().any(|f| matches!(f, WsFrame::Close { .. })) {
                self.out.push(WsFrame::Close {
                    code: 1000,
                    reason: "call ended by the bot".to_owned(),
                });
            }
            self.ended = true;
        }
        Some(replied_now)
    }

    /// The handler's own tasks delivered something: let it act.
    fn on_wake(&mut self) {
        self.with_handler(|handler, call| handler.on_wake(call));
    }

    /// Moves due playout frames to the output and tells the handler what happened.
    fn poll_playout(&mut self) -> Option<Instant> {
        let state = self.state.as_mut()?;
        let emulate_marks = state.session.dialect() == Dialect::Vonage;
        let active = state.active.as_mut()?;
        let mut due = Vec::new();
        let mut events = Vec::new();
        let wake = active.playout.poll(&mut due, &mut events);
        self.with_handler(|handler, call| {
            let mut emulated = Vec::new();
            for item in due {
                match item {
                    Outgoing::Audio(frame) => call.command(&BotCommand::Play(frame)),
                    Outgoing::Mark(name) if emulate_marks => emulated.push(name),
                    Outgoing::Mark(name) => call.command(&BotCommand::Mark(name)),
                }
            }
            for event in events {
                call.publish(match event {
                    PlayoutEvent::Started => EventKind::PlaybackStarted,
                    PlayoutEvent::Finished => EventKind::PlaybackFinished,
                });
                handler.on_playout(event, call);
            }
            // The dialect has no marks on the wire (Vonage): report them as they go out.
            for name in emulated {
                call.publish(EventKind::Mark { name: name.clone() });
                handler.on_event(CallEvent::Mark { name }, call);
            }
        });
        // Frames added by the handler may be due now: poll again at once.
        wake.or(if self.out.is_empty() {
            None
        } else {
            Some(Instant::now())
        })
    }

    async fn flush(&mut self) {
        if self.out.is_empty() {
            return;
        }
        let mut closing = false;
        let count = self.out.len() as u64;
        for frame in self.out.drain(..) {
            let message = match frame {
                WsFrame::Text(text) => Message::Text(text.into()),
                WsFrame::Binary(data) => Message::Binary(data),
                WsFrame::Close { code, reason } => {
                    closing = true;
                    Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }))
                }
            };
            if let Err(e) = self.socket.feed(message).await {
                tracing::warn!(error = %e, "cannot write to the carrier; ending the call");
                self.ended = true;
                return;
            }
            if closing {
                break;
            }
        }
        if let Err(e) = self.socket.flush().await {
            tracing::warn!(error = %e, "cannot write to the carrier; ending the call");
            self.ended = true;
            return;
        }
        if let Some(state) = &self.state {
            state.metrics.frames_out.inc_by(count);
        }
        if closing {
            self.ended = true;
        }
    }

    async fn close(&mut self, code: u16, reason: &str) {
        self.out.push(WsFrame::Close {
            code,
            reason: reason.to_owned(),
        });
        self.flush().await;
    }

    /// The socket is done: a handler that never saw `stop` gets one (Plivo and Vonage
    /// end streams by closing).
    fn finish_call(&mut self) {
        if self
            .state
            .as_ref()
            .and_then(|s| s.active.as_ref())
            .is_none()
        {
            return;
        }
        if self.stopped.is_none() {
            let stop = CallEvent::Stop(Stop {
                reason: Some("socket closed".into()),
            });
            self.with_handler(|handler, call| handler.on_event(stop, call));
        }
        tracing::info!("call ended");
    }
}

/// A WebSocket message as a dialect frame; `None` for control frames.
fn to_frame(message: Message) -> Option<WsFrame> {
    match message {
        Message::Text(text) => Some(WsFrame::Text(text.as_str().to_owned())),
        Message::Binary(data) => Some(WsFrame::Binary(data)),
        Message::Ping(_) | Message::Pong(_) | Message::Close(_) => None,
    }
}

/// Resolves when the call's handler has work from its own tasks; never before `start`.
async fn handler_wake(state: &mut Option<CallState>) {
    match state.as_mut().and_then(|s| s.active.as_mut()) {
        Some(active) => std::future::poll_fn(|cx| active.handler.poll_wake(cx)).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `at`, or forever.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(TokioInstant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
