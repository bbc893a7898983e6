//! earshot (a small pure-Rust VAD with its weights compiled in) behind the `Vad`
//! trait, for the evaluation. It was not adopted: see docs/benchmarks.md.

use voxline_vad::{Vad, VadError};

const FRAME: usize = 256;

/// The earshot detector (pykeio): 16 kHz, 256-sample (16 ms) frames, no model file.
pub struct EarshotVad {
    detector: Box<earshot::Detector>,
}

impl std::fmt::Debug for EarshotVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarshotVad").finish_non_exhaustive()
    }
}

impl EarshotVad {
    /// A detector for one stream.
    pub fn new() -> Self {
        Self {
            detector: earshot::Detector::default_boxed(),
        }
    }
}

impl Default for EarshotVad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad for EarshotVad {
    fn name(&self) -> &'static str {
        "earshot"
    }

    fn sample_rate(&self) -> u32 {
        16_000
    }

    fn frame_len(&self) -> usize {
        FRAME
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        if frame.len() != FRAME {
            return Err(VadError::FrameLength {
                detector: "earshot",
                expected: FRAME,
                got: frame.len(),
            });
        }
        Ok(self.detector.predict_i16(frame).clamp(0.0, 1.0))
    }

    fn reset(&mut self) {
        self.detector.reset();
    }
}
