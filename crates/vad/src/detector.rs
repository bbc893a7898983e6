//! The [`Vad`] trait every detector implements.

use std::time::Duration;

use crate::error::VadError;

/// A voice activity detector: frames of a fixed length in, a speech probability out.
///
/// Object-safe and `Send`, so a per-call task can own a `Box<dyn Vad>` chosen from
/// configuration. Detectors are stateful (they smooth over frames); [`Vad::reset`]
/// forgets the stream.
pub trait Vad: Send {
    /// A short name for logs and metrics (`webrtc`, `energy`, `silero`, `earshot`).
    fn name(&self) -> &'static str;

    /// The sample rate frames must be at.
    fn sample_rate(&self) -> u32;

    /// The number of samples in a frame.
    fn frame_len(&self) -> usize;

    /// The probability, from 0 to 1, that the frame holds speech. Detectors that only
    /// decide (WebRTC) answer 0 or 1.
    ///
    /// # Errors
    /// [`VadError::FrameLength`] when `frame` is not [`Vad::frame_len`] samples, and
    /// [`VadError::Inference`] when a model fails.
    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError>;

    /// Forgets everything about the stream so far.
    fn reset(&mut self);

    /// The duration of one frame.
    fn frame_duration(&self) -> Duration {
        Duration::from_nanos(
            self.frame_len() as u64 * 1_000_000_000 / u64::from(self.sample_rate().max(1)),
        )
    }
}

impl<V: Vad + ?Sized> Vad for Box<V> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }

    fn frame_len(&self) -> usize {
        (**self).frame_len()
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        (**self).speech_probability(frame)
    }

    fn reset(&mut self) {
        (**self).reset();
    }
}

/// Checks a frame's length for a detector.
pub(crate) fn check_frame(
    detector: &'static str,
    expected: usize,
    frame: &[i16],
) -> Result<(), VadError> {
    if frame.len() == expected {
        Ok(())
    } else {
        Err(VadError::FrameLength {
            detector,
            expected,
            got: frame.len(),
        })
    }
}
