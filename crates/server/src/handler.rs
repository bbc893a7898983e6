//! What a binary plugs into the server: a handler per call.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use voxline_telephony::{BotCommand, CallEvent, CallInfo, Modes, Session, TextRole, WsFrame};

use crate::bus::{EventBus, EventKind};
use crate::metrics::CallMetrics;
use crate::playout::{Playout, PlayoutEvent, QueueFull};

/// One call's logic. The server calls it from the call's own task, one event at a
/// time, so it needs no locking; it must not block. Work that waits (a provider's
/// reply) runs in tasks the handler spawns and comes back through the handler's own
/// channel: the connection polls [`poll_wake`](Self::poll_wake) beside the socket and
/// calls [`on_wake`](Self::on_wake) when it is ready, so results are acted on at once
/// rather than at the next carrier frame.
pub trait CallHandler: Send + 'static {
    /// An event from the carrier: media, DTMF, marks, clear, stop.
    fn on_event(&mut self, event: CallEvent, call: &mut Call<'_>);

    /// Something the playout did (audio started, everything played).
    fn on_playout(&mut self, event: PlayoutEvent, call: &mut Call<'_>) {
        let _ = (event, call);
    }

    /// Ready when the handler's own tasks have something for it (poll a channel's
    /// receiver here and keep what it gives for `on_wake`). The default never wakes.
    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let _ = cx;
        Poll::Pending
    }

    /// Runs after `poll_wake` returned ready: act on what the tasks delivered.
    fn on_wake(&mut self, call: &mut Call<'_>) {
        let _ = call;
    }
}

/// Makes a handler for each call once its `start` has arrived.
pub trait HandlerFactory: Send + Sync + 'static {
    /// A handler for the call described by `info`.
    fn create(&self, info: &CallInfo) -> Box<dyn CallHandler>;
}

impl<F> HandlerFactory for F
where
    F: Fn(&CallInfo) -> Box<dyn CallHandler> + Send + Sync + 'static,
{
    fn create(&self, info: &CallInfo) -> Box<dyn CallHandler> {
        self(info)
    }
}

/// A handler's view of its call: what it knows and what it can do.
pub struct Call<'a> {
    pub(crate) call_id: &'a Arc<str>,
    pub(crate) info: &'a CallInfo,
    pub(crate) session: &'a mut Session,
    pub(crate) playout: &'a mut Playout,
    pub(crate) bus: &'a EventBus,
    pub(crate) metrics: &'a CallMetrics,
    /// Frames to write after the handler returns.
    pub(crate) out: &'a mut Vec<WsFrame>,
    /// Set when the handler sent audio straight back (for the turnaround metric).
    pub(crate) replied_now: bool,
    pub(crate) close: bool,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("call_id", self.call_id)
            .finish_non_exhaustive()
    }
}

impl Call<'_> {
    /// The call's id (the carrier's, or the connection's for dialects without one).
    pub fn id(&self) -> &Arc<str> {
        self.call_id
    }

    /// What the carrier said about the call.
    pub fn info(&self) -> &CallInfo {
        self.info
    }

    /// Queues audio in the call's format for paced playout.
    pub fn play(&mut self, audio: &[u8]) {
        if let Err(QueueFull { queued }) = self.playout.play(audio) {
            tracing::warn!(?queued, "playout queue full; audio dropped");
            self.publish(EventKind::Error {
                message: format!("playout queue full ({queued:?} queued); audio dropped"),
            });
        }
    }

    /// Queues a mark behind the audio queued so far; the carrier echoes it (as a
    /// [`CallEvent::Mark`]) when that audio has played.
    pub fn mark(&mut self, name: impl Into<String>) {
        if let Err(QueueFull { queued }) = self.playout.mark(name.into()) {
            tracing::warn!(?queued, "playout queue full; mark dropped");
        }
    }

    /// Drops all queued audio and tells the carrier to drop what it has buffered: the
    /// barge-in path. Takes effect now, not at the next frame.
    pub fn clear(&mut self, reason: &str) {
        let dropped = self.playout.clear();
        self.command(&BotCommand::Clear);
        tracing::debug!(dropped, reason, "playout cleared");
        self.publish(EventKind::Clear {
            reason: reason.to_owned(),
        });
    }

    /// Sends audio at once, unpaced, in the dialect's frame size (whole frames now,
    /// the remainder with the next call). For immediate echo: whole frames of `audio`
    /// go out without a copy.
    pub fn send_now(&mut self, audio: Bytes) {
        for frame in self.playout.frames_now(audio) {
            encode(
                self.session,
                self.out,
                self.bus,
                self.call_id,
                &BotCommand::Play(frame),
            );
        }
        self.replied_now = true;
    }

    /// Ends the call: the dialect's socket hang-up where it has one (Exotel: closing
    /// the socket), else just closes the socket with code 1000 (the carrier's REST API
    /// is needed to end the call itself).
    pub fn hangup(&mut self) {
        if self.session.encode(&BotCommand::Hangup, self.out).is_err() {
            self.out.push(WsFrame::Close {
                code: 1000,
                reason: "hangup".to_owned(),
            });
        }
        self.close = true;
    }

    /// Whether the dialect has a text channel (Voxline's own protocol for browser and
    /// app clients): transcripts, the bot's words and mode acknowledgements.
    pub fn supports_text(&self) -> bool {
        self.session.supports_text()
    }

    /// Sends words to a client with a text channel (the caller's transcript or the
    /// bot's words); ignored, with a debug line, where the dialect has none.
    pub fn send_text(&mut self, role: TextRole, text: &str, is_final: bool) {
        if self.supports_text() {
            self.command(&BotCommand::Text {
                role,
                text: text.to_owned(),
                is_final,
            });
        } else {
            tracing::debug!("no text channel on this dialect; text not sent");
        }
    }

    /// Acknowledges the modes in force to a client with a text channel.
    pub fn send_modes(&mut self, modes: Modes) {
        if self.supports_text() {
            self.command(&BotCommand::Modes(modes));
        }
    }

    /// Whether audio is queued or playing.
    pub fn is_playing(&self) -> bool {
        self.playout.is_playing()
    }

    /// How much of the current playback the caller has heard.
    pub fn played(&self) -> Duration {
        self.playout.played()
    }

    /// Publishes an event on the bus, stamped with this call's id.
    pub fn publish(&self, kind: EventKind) {
        self.bus.publish(self.call_id, kind);
    }

    /// Records a turn latency (end of the caller's turn to the reply's first frame).
    pub fn observe_turn_latency(&self, latency: Duration) {
        self.metrics.turn_latency.observe(latency.as_secs_f64());
    }

    /// Encodes a command into the outgoing frames, logging what the dialect refuses.
    pub(crate) fn command(&mut self, command: &BotCommand) {
        encode(self.session, self.out, self.bus, self.call_id, command);
    }
}

/// Encodes `command` into `out`; a refusal is logged and published, not fatal.
fn encode(
    session: &mut Session,
    out: &mut Vec<WsFrame>,
    bus: &EventBus,
    call_id: &Arc<str>,
    command: &BotCommand,
) {
    if let Err(e) = session.encode(command, out) {
        tracing::warn!(error = %e, "cannot send command");
        bus.publish(
            call_id,
            EventKind::Error {
                message: e.to_string(),
            },
        );
    }
}
