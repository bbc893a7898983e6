//! The echo bot's call logic: plays each caller turn back, or echoes every frame at
//! once. Lives here, not in the binary, so tests and other binaries can host it.

use std::time::Duration;

use voxline_audio::AudioFormat;
use voxline_telephony::{CallEvent, CallInfo};
use voxline_vad::{TurnConfig, TurnDetector, TurnEvent, VadKind};

use crate::bus::EventKind;
use crate::handler::{Call, CallHandler, HandlerFactory};
use crate::playout::PlayoutEvent;

/// How the echo bot answers.
#[derive(Debug, Clone)]
pub enum EchoMode {
    /// Send every media frame straight back.
    Immediate,
    /// Wait for the caller to finish a turn, then play it back.
    Conversational(ConversationConfig),
}

/// Settings for the conversational echo.
#[derive(Debug, Clone)]
pub struct ConversationConfig {
    /// Silence that ends a caller's turn.
    pub silence: Duration,
    /// Longest turn kept; audio beyond it is dropped (the first part is replayed).
    pub max_turn: Duration,
    /// The detector used to find turns.
    pub vad: VadKind,
    /// Speech needed to start a turn (and to interrupt a playback).
    pub start_secs: f32,
    /// Audio kept after the last speech when replaying.
    pub tail: Duration,
}

impl Default for ConversationConfig {
    /// 2 s of silence ends a turn, 30 s turns at most, WebRTC VAD.
    fn default() -> Self {
        Self {
            silence: Duration::from_secs(2),
            max_turn: Duration::from_secs(30),
            vad: VadKind::default(),
            start_secs: 0.2,
            tail: Duration::from_millis(200),
        }
    }
}

/// Makes an echo handler for each call.
#[derive(Debug, Clone)]
pub struct EchoFactory {
    mode: EchoMode,
}

impl EchoFactory {
    /// An echo bot in `mode`.
    pub fn new(mode: EchoMode) -> Self {
        Self { mode }
    }

    /// Immediate echo.
    pub fn immediate() -> Self {
        Self::new(EchoMode::Immediate)
    }

    /// Conversational echo with default settings.
    pub fn conversational() -> Self {
        Self::new(EchoMode::Conversational(ConversationConfig::default()))
    }
}

impl HandlerFactory for EchoFactory {
    fn create(&self, info: &CallInfo) -> Box<dyn CallHandler> {
        match &self.mode {
            EchoMode::Immediate => Box::new(ImmediateEcho),
            EchoMode::Conversational(config) => {
                match ConversationalEcho::new(info.format, config) {
                    Ok(echo) => Box::new(echo),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build the turn detector; echoing immediately instead");
                        Box::new(ImmediateEcho)
                    }
                }
            }
        }
    }
}

/// Echoes every frame back at once.
#[derive(Debug)]
struct ImmediateEcho;

impl CallHandler for ImmediateEcho {
    fn on_event(&mut self, event: CallEvent, call: &mut Call<'_>) {
        if let CallEvent::Media(chunk) = event {
            call.send_now(chunk.payload);
        }
    }
}

/// Listens for a turn, then plays it back; stops at once if the caller talks over it.
struct ConversationalEcho {
    format: AudioFormat,
    detector: TurnDetector,
    config: ConversationConfig,
    /// The current turn's audio (from pre-roll before its onset) while capturing.
    turn: Vec<i16>,
    /// Samples of pre-roll before the onset at the start of `turn`.
    onset_offset: usize,
    capturing: bool,
    max_samples: usize,
    samples: Vec<i16>,
    /// Replays started, for mark names.
    replays: u64,
    /// The mark that ends the replay in progress, if any.
    playing: Option<String>,
    /// When the turn being answered ended (for the latency metric).
    answered_at: Option<std::time::Instant>,
}

impl ConversationalEcho {
    fn new(
        format: AudioFormat,
        config: &ConversationConfig,
    ) -> Result<Self, voxline_vad::VadError> {
        let vad = config.vad.build(format.sample_rate)?;
        let turns = TurnConfig {
            stop_secs: config.silence.as_secs_f32(),
            start_secs: config.start_secs,
            ..TurnConfig::default()
        };
        Ok(Self {
            format,
            detector: TurnDetector::new(vad, format.sample_rate, turns)?,
            config: config.clone(),
            turn: Vec::new(),
            onset_offset: 0,
            capturing: false,
            max_samples: format.samples_in(config.max_turn),
            samples: Vec::new(),
            replays: 0,
            playing: None,
            answered_at: None,
        })
    }

    fn on_media(&mut self, payload: &[u8], call: &mut Call<'_>) {
        self.samples.clear();
        self.format.encoding.decode(payload, &mut self.samples);
        let events = self.detector.push(&self.samples);
        let mut started_now = false;
        for event in events {
            call.publish(EventKind::from(&event));
            match event {
                TurnEvent::SpeechStarted { at, pre_roll, .. } => {
                    started_now = true;
                    if self.playing.take().is_some() {
                        // Barge-in: the caller talks over the replay.
                        call.clear("barge_in");
                    }
                    self.capturing = true;
                    let pre_roll_samples = self.format.samples_in(Duration::from_secs_f32(
                        self.detector.config().pre_roll_secs,
                    ));
                    self.onset_offset = (at.sample() as usize).min(pre_roll_samples);
                    self.turn.clear();
                    self.keep(&pre_roll);
                }
                TurnEvent::SpeechStopped {
                    speech_duration, ..
                } => {
                    if self.capturing {
                        self.replay(speech_duration, call);
                    }
                }
            }
        }
        if self.capturing && !started_now {
            let samples = std::mem::take(&mut self.samples);
            self.keep(&samples);
            self.samples = samples;
        }
    }

    fn keep(&mut self, samples: &[i16]) {
        let room = self.max_samples.saturating_sub(self.turn.len());
        if samples.len() > room && room > 0 {
            tracing::warn!(max = ?self.config.max_turn, "turn longer than the buffer; keeping its start");
        }
        self.turn
            .extend_from_slice(&samples[..samples.len().min(room)]);
    }

    fn replay(&mut self, speech_duration: Duration, call: &mut Call<'_>) {
        self.capturing = false;
        // Keep the pre-roll, the speech and a short tail; drop the silence that ended
        // the turn.
        let keep = self.onset_offset + self.format.samples_in(speech_duration + self.config.tail);
        self.turn.truncate(keep);
        if self.turn.is_empty() {
            return;
        }
        let mut bytes = Vec::with_capacity(self.turn.len() * self.format.bytes_per_sample());
        self.format.encoding.encode(&self.turn, &mut bytes);
        self.turn.clear();
        self.replays += 1;
        let mark = format!("echo-{}", self.replays);
        call.play(&bytes);
        call.mark(mark.clone());
        self.playing = Some(mark);
        self.answered_at = Some(std::time::Instant::now());
    }
}

impl CallHandler for ConversationalEcho {
    fn on_event(&mut self, event: CallEvent, call: &mut Call<'_>) {
        match event {
            CallEvent::Media(chunk) => self.on_media(&chunk.payload, call),
            CallEvent::Mark { name } if self.playing.as_deref() == Some(name.as_str()) => {
                self.playing = None;
            }
            CallEvent::Clear => {
                // A peer asked us to stop: drop the replay and the turn in progress.
                call.clear("peer_clear");
                self.playing = None;
                self.capturing = false;
                self.turn.clear();
                self.detector.reset();
            }
            CallEvent::Dtmf(dtmf) => tracing::info!(digit = %dtmf.digit, "caller pressed a key"),
            _ => {}
        }
    }

    fn on_playout(&mut self, event: PlayoutEvent, call: &mut Call<'_>) {
        if event == PlayoutEvent::Started
            && let Some(at) = self.answered_at.take()
        {
            call.observe_turn_latency(at.elapsed());
        }
    }
}
