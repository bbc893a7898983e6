//! Turn detection: when the caller starts and stops talking, in audio time.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use voxline_audio::{Resampler, level};

use crate::detector::Vad;
use crate::error::VadError;
use crate::floor::NoiseFloor;

/// How a [`TurnDetector`] decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnConfig {
    /// Speech must last this long (voiced time) before a turn starts.
    pub start_secs: f32,
    /// Silence must last this long before a turn ends. The echo bot uses 2.0.
    pub stop_secs: f32,
    /// Frames quieter than this (RMS, dBFS) are never speech, whatever the VAD says.
    pub min_dbfs: f32,
    /// Frames less than this far above the noise floor (the quietest level of the
    /// last two seconds) are never speech either. This trims the VAD's hangover in
    /// noise, so turns end when the voice does; 0 turns it off.
    pub min_snr_db: f32,
    /// A frame is speech when the VAD's probability reaches this.
    pub confidence: f32,
    /// Audio kept from before a turn's onset and handed over with
    /// [`TurnEvent::SpeechStarted`], so the start of a word is never cut.
    pub pre_roll_secs: f32,
}

impl Default for TurnConfig {
    /// 0.2 s to start, 0.8 s to stop, -50 dBFS and 3 dB above the noise floor,
    /// 0.5 confidence, 0.3 s pre-roll.
    fn default() -> Self {
        Self {
            start_secs: 0.2,
            stop_secs: 0.8,
            min_dbfs: -50.0,
            min_snr_db: 3.0,
            confidence: 0.5,
            pre_roll_secs: 0.3,
        }
    }
}

impl TurnConfig {
    fn validate(&self) -> Result<(), VadError> {
        let check = |field, value: f32, ok: bool, reason| {
            if ok {
                Ok(())
            } else {
                Err(VadError::InvalidConfig {
                    field,
                    value: value.to_string(),
                    reason,
                })
            }
        };
        check(
            "start_secs",
            self.start_secs,
            (0.0..=10.0).contains(&self.start_secs),
            "must be 0 to 10 s",
        )?;
        check(
            "stop_secs",
            self.stop_secs,
            (0.0..=60.0).contains(&self.stop_secs),
            "must be 0 to 60 s",
        )?;
        check(
            "pre_roll_secs",
            self.pre_roll_secs,
            (0.0..=5.0).contains(&self.pre_roll_secs),
            "must be 0 to 5 s",
        )?;
        check(
            "confidence",
            self.confidence,
            (0.0..=1.0).contains(&self.confidence),
            "must be 0 to 1",
        )?;
        check(
            "min_snr_db",
            self.min_snr_db,
            (0.0..=40.0).contains(&self.min_snr_db),
            "must be 0 to 40 dB",
        )?;
        check(
            "min_dbfs",
            self.min_dbfs,
            (-130.0..=0.0).contains(&self.min_dbfs),
            "must be -130 to 0 dBFS",
        )
    }
}

/// A point in a call's audio: samples since the detector started, at its input rate.
/// Audio time, not wall-clock time, so results are the same on every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AudioTime {
    sample: u64,
    sample_rate: u32,
}

impl AudioTime {
    /// The instant `sample` samples into a stream at `sample_rate`.
    pub const fn new(sample: u64, sample_rate: u32) -> Self {
        Self {
            sample,
            sample_rate,
        }
    }

    /// Samples since the start.
    pub const fn sample(&self) -> u64 {
        self.sample
    }

    /// The rate the samples are counted at.
    pub const fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Time since the start.
    pub fn as_duration(&self) -> Duration {
        Duration::from_nanos(
            (u128::from(self.sample) * 1_000_000_000 / u128::from(self.sample_rate.max(1))) as u64,
        )
    }

    /// Milliseconds since the start.
    pub fn as_millis_f64(&self) -> f64 {
        self.sample as f64 * 1000.0 / f64::from(self.sample_rate.max(1))
    }
}

impl fmt::Display for AudioTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3} s", self.as_millis_f64() / 1000.0)
    }
}

/// What a [`TurnDetector`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TurnEvent {
    /// The caller started talking at `at` (the first voiced frame of the turn; the event
    /// itself comes `start_secs` later).
    SpeechStarted {
        /// The turn's onset.
        at: AudioTime,
        /// When the turn was recognised: the end of the frame that completed
        /// `start_secs` of speech (the audio time this event belongs to).
        detected_at: AudioTime,
        /// Input audio from `pre_roll_secs` before the onset up to the end of the chunk
        /// just pushed: with the chunks that follow, the whole turn with nothing cut.
        pre_roll: Vec<i16>,
    },
    /// The caller stopped talking: the silence has lasted longer than `stop_secs`.
    SpeechStopped {
        /// When the turn was judged over: the end of the first frame that made the
        /// silence longer than `stop_secs` (within a frame of the last voiced frame's
        /// end plus `stop_secs`).
        at: AudioTime,
        /// From the onset to the end of the last voiced frame.
        speech_duration: Duration,
    },
}

/// The detector's view of the caller right now: the input to barge-in decisions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoiceActivity {
    /// Within a turn (started and not yet stopped).
    pub speaking: bool,
    /// The onset of the current turn or of speech that may become one.
    pub onset: Option<AudioTime>,
    /// Voiced audio since the onset (frames that passed the VAD and the level gate).
    pub speech: Duration,
    /// Mean level of those voiced frames, in dBFS (energy average).
    pub speech_dbfs: f32,
    /// The last frame's speech probability.
    pub probability: f32,
    /// The last frame's level in dBFS.
    pub level_dbfs: f32,
    /// Unvoiced audio since the last voiced frame (zero while the caller is voiced):
    /// how long the caller has paused, before the turn's `stop_secs` decides it ended.
    pub silence: Duration,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Quiet,
    /// Voiced frames seen, not yet `start_secs` of them.
    Starting {
        onset: u64,
        voiced: u32,
        gap: u32,
    },
    /// In a turn; `last_end` is the end of the last voiced frame.
    Speaking {
        onset: u64,
        last_end: u64,
    },
    /// In a turn, `silent` unvoiced frames after `last_end`.
    Stopping {
        onset: u64,
        last_end: u64,
        silent: u32,
    },
}

/// Finds turns in a stream of caller audio of any rate and chunk size.
///
/// Audio is resampled to the VAD's rate if needed (with `voxline-audio`, output aligned
/// to the input) and cut into the VAD's frames. A frame is voiced when the VAD's
/// probability reaches `confidence`, its level reaches `min_dbfs`, and it stands
/// `min_snr_db` above the noise floor. A turn starts after `start_secs` of voiced
/// frames (brief gaps of up to 60 ms allowed) and is dated at its first voiced frame;
/// it stops when the silence after the last voiced frame exceeds `stop_secs`, so a
/// pause of exactly `stop_secs` does not split a turn.
pub struct TurnDetector {
    vad: Box<dyn Vad>,
    config: TurnConfig,
    input_rate: u32,
    resampler: Option<Resampler>,
    resampled: Vec<i16>,
    frame: Vec<i16>,
    /// The VAD-rate sample index of `frame[0]`.
    frame_start: u64,
    start_frames: u32,
    stop_frames: u32,
    max_start_gap: u32,
    state: State,
    floor: NoiseFloor,
    /// Recent input audio for pre-roll; `history_end` input samples seen so far.
    history: VecDeque<i16>,
    history_end: u64,
    keep: usize,
    activity: VoiceActivity,
    voiced_energy: f64,
    voiced_frames: u64,
    vad_errors: u64,
    last_error: Option<VadError>,
}

impl fmt::Debug for TurnDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnDetector")
            .field("vad", &self.vad.name())
            .field("config", &self.config)
            .field("input_rate", &self.input_rate)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TurnDetector {
    /// A detector for input at `input_rate` Hz using `vad`.
    ///
    /// # Errors
    /// [`VadError::InvalidConfig`] for out-of-range settings, and
    /// [`VadError::Audio`] when the input cannot be resampled to the VAD's rate.
    pub fn new(vad: Box<dyn Vad>, input_rate: u32, config: TurnConfig) -> Result<Self, VadError> {
        config.validate()?;
        let vad_rate = vad.sample_rate();
        let resampler = if vad_rate == input_rate {
            None
        } else {
            Some(Resampler::new(input_rate, vad_rate)?)
        };
        let frame_secs = vad.frame_len() as f32 / vad_rate as f32;
        let frames = |secs: f32| ((secs / frame_secs) - 1e-4).ceil().max(1.0) as u32;
        // Strictly longer than `stop_secs`: one frame more than fits in it.
        let stop_frames = (config.stop_secs / frame_secs + 1e-4).floor() as u32 + 1;
        let rate = input_rate as f32;
        let keep = ((config.pre_roll_secs + config.start_secs + 0.2) * rate) as usize
            + vad.frame_len() * 4;
        Ok(Self {
            start_frames: frames(config.start_secs),
            stop_frames,
            max_start_gap: frames(0.06),
            frame: Vec::with_capacity(vad.frame_len()),
            vad,
            config,
            input_rate,
            resampler,
            resampled: Vec::new(),
            frame_start: 0,
            state: State::Quiet,
            floor: NoiseFloor::new((2.0 / frame_secs).ceil() as usize, level::SILENCE_DBFS),
            history: VecDeque::with_capacity(keep),
            history_end: 0,
            keep,
            activity: VoiceActivity {
                speaking: false,
                onset: None,
                speech: Duration::ZERO,
                speech_dbfs: level::SILENCE_DBFS,
                probability: 0.0,
                level_dbfs: level::SILENCE_DBFS,
                silence: Duration::ZERO,
            },
            voiced_energy: 0.0,
            voiced_frames: 0,
            vad_errors: 0,
            last_error: None,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// The VAD's name.
    pub fn vad_name(&self) -> &'static str {
        self.vad.name()
    }

    /// Feeds a chunk of input audio; returns the turn events it completes.
    pub fn push(&mut self, chunk: &[i16]) -> Vec<TurnEvent> {
        self.history.extend(chunk);
        self.history_end += chunk.len() as u64;

        let mut events = Vec::new();
        let mut resampled = std::mem::take(&mut self.resampled);
        resampled.clear();
        let audio: &[i16] = match &mut self.resampler {
            Some(r) => {
                r.process(chunk, &mut resampled);
                &resampled
            }
            None => chunk,
        };
        let frame_len = self.vad.frame_len();
        let mut rest = audio;
        while !rest.is_empty() {
            let take = (frame_len - self.frame.len()).min(rest.len());
            self.frame.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.frame.len() == frame_len {
                self.on_frame(&mut events);
                self.frame.clear();
                self.frame_start += frame_len as u64;
            }
        }
        self.resampled = resampled;

        // Pre-roll for a turn that started in this chunk: from before its onset to now.
        for event in &mut events {
            if let TurnEvent::SpeechStarted { at, pre_roll, .. } = event {
                let from = at
                    .sample()
                    .saturating_sub((self.config.pre_roll_secs * self.input_rate as f32) as u64);
                let history_start = self.history_end - self.history.len() as u64;
                let skip = from.saturating_sub(history_start) as usize;
                *pre_roll = self.history.iter().skip(skip).copied().collect();
            }
        }
        let excess = self.history.len().saturating_sub(self.keep);
        self.history.drain(..excess);
        events
    }

    /// The caller's voice activity after the last frame: what barge-in decisions use.
    pub fn activity(&self) -> VoiceActivity {
        self.activity
    }

    /// How many frames the VAD failed on (counted as silence) since the start.
    pub fn vad_errors(&self) -> u64 {
        self.vad_errors
    }

    /// The last VAD failure, if one happened since the last call.
    pub fn take_error(&mut self) -> Option<VadError> {
        self.last_error.take()
    }

    /// Forgets the stream: state, buffered audio, the VAD's memory, and audio time
    /// (the next sample is time zero again).
    pub fn reset(&mut self) {
        self.vad.reset();
        if let Some(r) = &mut self.resampler {
            r.reset();
        }
        self.frame.clear();
        self.frame_start = 0;
        self.state = State::Quiet;
        self.floor.reset();
        self.history.clear();
        self.history_end = 0;
        self.voiced_energy = 0.0;
        self.voiced_frames = 0;
        self.activity.speaking = false;
        self.activity.onset = None;
        self.activity.speech = Duration::ZERO;
        self.activity.silence = Duration::ZERO;
        self.activity.speech_dbfs = level::SILENCE_DBFS;
    }

    /// A VAD-rate sample index as input-rate audio time.
    fn time(&self, vad_sample: u64) -> AudioTime {
        let vad_rate = u64::from(self.vad.sample_rate());
        AudioTime::new(
            vad_sample * u64::from(self.input_rate) / vad_rate,
            self.input_rate,
        )
    }

    fn on_frame(&mut self, events: &mut Vec<TurnEvent>) {
        let probability = match self.vad.speech_probability(&self.frame) {
            Ok(p) => p,
            Err(e) => {
                self.vad_errors += 1;
                self.last_error = Some(e);
                0.0
            }
        };
        let level_rms = level::rms(&self.frame);
        let level_dbfs = level::to_dbfs(level_rms);
        self.floor.update(level_dbfs);
        let voiced = probability >= self.config.confidence
            && level_dbfs >= self.config.min_dbfs
            && level_dbfs >= self.floor.dbfs() + self.config.min_snr_db;
        let (start, end) = (self.frame_start, self.frame_start + self.frame.len() as u64);
        self.activity.probability = probability;
        self.activity.level_dbfs = level_dbfs;

        self.state = match (self.state, voiced) {
            (State::Quiet, false) => State::Quiet,
            (State::Quiet, true) => {
                self.begin_run(start);
                self.advance_start(start, 0, 0, end, events)
            }
            (
                State::Starting {
                    onset, voiced: n, ..
                },
                true,
            ) => self.advance_start(onset, n, 0, end, events),
            (
                State::Starting {
                    onset,
                    voiced: n,
                    gap,
                },
                false,
            ) => {
                if gap + 1 > self.max_start_gap {
                    self.end_run();
                    State::Quiet
                } else {
                    State::Starting {
                        onset,
                        voiced: n,
                        gap: gap + 1,
                    }
                }
            }
            (State::Speaking { onset, .. } | State::Stopping { onset, .. }, true) => {
                State::Speaking {
                    onset,
                    last_end: end,
                }
            }
            (State::Speaking { onset, last_end }, false) => {
                self.advance_stop(onset, last_end, 0, end, events)
            }
            (
                State::Stopping {
                    onset,
                    last_end,
                    silent,
                },
                false,
            ) => self.advance_stop(onset, last_end, silent, end, events),
        };
        if voiced {
            self.activity.silence = Duration::ZERO;
        } else {
            self.activity.silence += self.vad.frame_duration();
        }
        if voiced {
            self.voiced_frames += 1;
            self.voiced_energy += f64::from(level_rms) * f64::from(level_rms);
            let frame = self.vad.frame_duration();
            self.activity.speech += frame;
            self.activity.speech_dbfs =
                level::to_dbfs((self.voiced_energy / self.voiced_frames as f64).sqrt() as f32);
        }
    }

    fn begin_run(&mut self, onset: u64) {
        self.activity.onset = Some(self.time(onset));
        self.activity.speech = Duration::ZERO;
        self.voiced_energy = 0.0;
        self.voiced_frames = 0;
    }

    fn end_run(&mut self) {
        self.activity.onset = None;
        self.activity.speaking = false;
        self.activity.speech = Duration::ZERO;
        self.activity.speech_dbfs = level::SILENCE_DBFS;
    }

    /// One more voiced frame while starting.
    fn advance_start(
        &mut self,
        onset: u64,
        voiced: u32,
        gap: u32,
        end: u64,
        events: &mut Vec<TurnEvent>,
    ) -> State {
        let voiced = voiced + 1;
        if voiced < self.start_frames {
            return State::Starting { onset, voiced, gap };
        }
        self.activity.speaking = true;
        events.push(TurnEvent::SpeechStarted {
            at: self.time(onset),
            detected_at: self.time(end),
            pre_roll: Vec::new(),
        });
        State::Speaking {
            onset,
            last_end: end,
        }
    }

    /// One more silent frame while in a turn.
    fn advance_stop(
        &mut self,
        onset: u64,
        last_end: u64,
        silent: u32,
        end: u64,
        events: &mut Vec<TurnEvent>,
    ) -> State {
        let silent = silent + 1;
        if silent < self.stop_frames {
            return State::Stopping {
                onset,
                last_end,
                silent,
            };
        }
        let speech_duration = self
            .time(last_end)
            .as_duration()
            .saturating_sub(self.time(onset).as_duration());
        events.push(TurnEvent::SpeechStopped {
            at: self.time(end),
            speech_duration,
        });
        self.end_run();
        State::Quiet
    }
}
