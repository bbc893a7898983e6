//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong in `voxline-vad`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VadError {
    /// A sample rate the detector cannot run at.
    #[error("{detector} VAD does not run at {rate} Hz (supported: {supported})")]
    UnsupportedSampleRate {
        /// Which detector.
        detector: &'static str,
        /// The rate asked for.
        rate: u32,
        /// The rates it supports, for the message.
        supported: &'static str,
    },

    /// A frame length the detector cannot take.
    #[error("{detector} VAD takes frames of {expected} samples, got {got}")]
    FrameLength {
        /// Which detector.
        detector: &'static str,
        /// The length it takes at its rate.
        expected: usize,
        /// The length it was given.
        got: usize,
    },

    /// A frame duration the detector does not support.
    #[error("{detector} VAD does not take {frame_ms} ms frames (supported: {supported})")]
    UnsupportedFrameDuration {
        /// Which detector.
        detector: &'static str,
        /// The duration asked for.
        frame_ms: u32,
        /// The durations it supports, for the message.
        supported: &'static str,
    },

    /// A configuration value out of range.
    #[error("invalid VAD configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value, as text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A model file that cannot be loaded.
    #[error("cannot load VAD model {}: {reason}", path.display())]
    Model {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// The model failed on a frame.
    #[error("{detector} VAD inference failed: {reason}")]
    Inference {
        /// Which detector.
        detector: &'static str,
        /// What went wrong.
        reason: String,
    },

    /// Resampling the input to the detector's rate is not possible.
    #[error(transparent)]
    Audio(#[from] voxline_audio::AudioError),
}
