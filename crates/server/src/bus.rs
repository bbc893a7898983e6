//! The in-process event bus: timestamped call events for the dashboard and tests.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

/// One thing that happened in a call.
#[derive(Debug, Clone, Serialize)]
pub struct BusEvent {
    /// The call (the carrier's call id once known, else the connection id).
    pub call_id: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// The carrier's `start` arrived.
    CallStarted {
        /// The dialect.
        dialect: String,
        /// Calling number.
        from: Option<String>,
        /// Called number.
        to: Option<String>,
        /// Audio format, e.g. `mulaw_8000`.
        format: String,
    },
    /// The first caller audio arrived.
    FirstMedia,
    /// The caller started a turn.
    TurnStarted {
        /// Audio time of the onset, ms since the call's first audio.
        audio_ms: f64,
        /// Audio time at which the turn was recognised (onset plus the start time).
        detected_ms: f64,
    },
    /// The caller's turn ended.
    TurnStopped {
        /// Audio time the turn was judged over, ms.
        audio_ms: f64,
        /// How long the caller spoke, ms.
        speech_ms: f64,
    },
    /// The bot started sending audio after being quiet.
    PlaybackStarted,
    /// Everything queued has been sent and played out.
    PlaybackFinished,
    /// A mark was echoed by the carrier.
    Mark {
        /// Its name.
        name: String,
    },
    /// The bot told the carrier to drop queued audio.
    Clear {
        /// Why (`barge_in`, `peer_clear`, ...).
        reason: String,
    },
    /// The caller pressed a key.
    Dtmf {
        /// The key.
        digit: String,
    },
    /// The carrier stopped the stream.
    Stop {
        /// Its reason, if given.
        reason: Option<String>,
    },
    /// Words recognised from the caller or spoken by the bot.
    Transcript {
        /// `caller` or `bot`.
        speaker: String,
        /// The words.
        text: String,
        /// Final (not an interim guess that may change).
        is_final: bool,
    },
    /// A reply's latency marks, ms (absent stages did not happen, e.g. no speech for a
    /// text turn).
    TurnLatency {
        /// End of the caller's speech (VAD) to the reply's first audio frame.
        speech_end_to_first_frame_ms: Option<f64>,
        /// End of the turn to the reply's first frame (or its text).
        end_of_turn_to_first_frame_ms: Option<f64>,
        /// End of the turn to the model's first text.
        llm_first_token_ms: Option<f64>,
        /// End of the turn to the first synthesised audio.
        tts_first_audio_ms: Option<f64>,
        /// The recogniser's final transcript to the reply's first frame.
        stt_final_to_first_frame_ms: Option<f64>,
        /// The model's own time to first token (its adapter's measure, from the request).
        llm_ttfb_ms: Option<f64>,
        /// The synthesiser's own time to the first segment's first audio.
        tts_ttfb_ms: Option<f64>,
        /// End of turn to first frame less those two: what Voxline itself added.
        framework_ms: Option<f64>,
    },
    /// What the call used (at its end).
    Usage {
        /// Seconds of audio recognised.
        stt_seconds: f64,
        /// Characters synthesised.
        tts_characters: u64,
        /// Prompt tokens.
        llm_prompt_tokens: u64,
        /// Generated tokens.
        llm_completion_tokens: u64,
    },
    /// A carrier's HTTP callback about the call (status changes and the like).
    Webhook {
        /// The callback's fields as received.
        payload: serde_json::Value,
    },
    /// Something failed; the call goes on.
    Error {
        /// What.
        message: String,
    },
    /// The connection closed.
    CallEnded {
        /// How long the call lasted, ms.
        duration_ms: u64,
    },
}

impl From<&voxline_vad::TurnEvent> for EventKind {
    /// The bus event for a turn detector's event.
    fn from(event: &voxline_vad::TurnEvent) -> Self {
        match event {
            voxline_vad::TurnEvent::SpeechStarted {
                at, detected_at, ..
            } => EventKind::TurnStarted {
                audio_ms: at.as_millis_f64(),
                detected_ms: detected_at.as_millis_f64(),
            },
            voxline_vad::TurnEvent::SpeechStopped {
                at,
                speech_duration,
            } => EventKind::TurnStopped {
                audio_ms: at.as_millis_f64(),
                speech_ms: speech_duration.as_secs_f64() * 1000.0,
            },
        }
    }
}

/// A broadcast channel of [`BusEvent`]s. Publishing never blocks: subscribers that
/// fall more than the capacity behind lose the oldest events (and are told so).
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Arc<BusEvent>>,
}

impl EventBus {
    /// A bus keeping up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        Self {
            sender: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Publishes an event now.
    pub fn publish(&self, call_id: &Arc<str>, kind: EventKind) {
        if self.sender.receiver_count() == 0 {
            return;
        }
        let at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let _ = self.sender.send(Arc::new(BusEvent {
            call_id: Arc::clone(call_id),
            at_ms,
            kind,
        }));
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<BusEvent>> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}
