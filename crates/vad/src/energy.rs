//! A VAD from signal level alone: RMS against an adaptive noise floor.

use voxline_audio::level;

use crate::detector::{Vad, check_frame};
use crate::error::VadError;
use crate::floor::NoiseFloor;

/// Tuning for [`EnergyVad`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnergyVadConfig {
    /// How far above the noise floor a frame must be to count as speech, in dB.
    pub margin_db: f32,
    /// How far back the noise floor looks for the quietest moment, in seconds.
    /// Longer than a syllable, shorter than the time noise takes to change.
    pub floor_window_secs: f32,
    /// The floor never goes below this (dBFS), so dither in digital silence is not
    /// taken for speech.
    pub lowest_floor_dbfs: f32,
}

impl Default for EnergyVadConfig {
    fn default() -> Self {
        Self {
            margin_db: 12.0,
            floor_window_secs: 2.0,
            lowest_floor_dbfs: -70.0,
        }
    }
}

/// The cheapest detector: a frame is speech when its level stands `margin_db` above
/// the quietest level of the last couple of seconds (a running-minimum noise floor).
///
/// It knows nothing about speech, so steady tones and loud noise bursts count; use it
/// where CPU matters more than precision, or as a level gate beside a real VAD.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    sample_rate: u32,
    frame_len: usize,
    config: EnergyVadConfig,
    floor: NoiseFloor,
}

impl EnergyVad {
    /// A detector at any rate with `frame_ms` frames (1 to 100 ms) and default tuning.
    ///
    /// # Errors
    /// [`VadError::InvalidConfig`] for an empty or oversized frame.
    pub fn new(sample_rate: u32, frame_ms: u32) -> Result<Self, VadError> {
        Self::with_config(sample_rate, frame_ms, EnergyVadConfig::default())
    }

    /// A detector with the given tuning.
    ///
    /// # Errors
    /// [`VadError::InvalidConfig`] for a frame outside 1 to 100 ms, a rate of zero, or
    /// a non-positive floor window.
    pub fn with_config(
        sample_rate: u32,
        frame_ms: u32,
        config: EnergyVadConfig,
    ) -> Result<Self, VadError> {
        if !(1..=100).contains(&frame_ms) || sample_rate == 0 {
            return Err(VadError::InvalidConfig {
                field: "frame_ms",
                value: format!("{frame_ms} ms at {sample_rate} Hz"),
                reason: "frames must be 1 to 100 ms at a non-zero rate",
            });
        }
        if config.floor_window_secs.is_nan() || config.floor_window_secs <= 0.0 {
            return Err(VadError::InvalidConfig {
                field: "floor_window_secs",
                value: config.floor_window_secs.to_string(),
                reason: "must be positive",
            });
        }
        let window_frames = (config.floor_window_secs * 1000.0 / frame_ms as f32).ceil() as usize;
        Ok(Self {
            sample_rate,
            frame_len: (sample_rate * frame_ms / 1000).max(1) as usize,
            config,
            floor: NoiseFloor::new(window_frames, config.lowest_floor_dbfs),
        })
    }

    /// The current noise floor estimate in dBFS.
    pub fn noise_floor_dbfs(&self) -> f32 {
        self.floor.dbfs()
    }
}

impl Vad for EnergyVad {
    fn name(&self) -> &'static str {
        "energy"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn frame_len(&self) -> usize {
        self.frame_len
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        check_frame("energy", self.frame_len, frame)?;
        let level = level::dbfs(frame);
        self.floor.update(level);
        let above = level - self.noise_floor_dbfs() - self.config.margin_db;
        // A soft step: 0.5 at the margin, 0.9 three dB above it.
        Ok(1.0 / (1.0 + (-above / 1.4).exp()))
    }

    fn reset(&mut self) {
        self.floor.reset();
    }
}
