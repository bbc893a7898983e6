//! The WebRTC VAD (libfvad, through the `webrtc-vad` crate).

use crate::detector::{Vad, check_frame};
use crate::error::VadError;

/// How eagerly WebRTC's VAD calls a frame speech; higher modes report less speech.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebRtcMode {
    /// Mode 0: reports the most speech.
    Quality,
    /// Mode 1.
    LowBitrate,
    /// Mode 2.
    #[default]
    Aggressive,
    /// Mode 3: reports the least speech.
    VeryAggressive,
}

impl WebRtcMode {
    /// The mode from its number, 0 to 3.
    pub fn from_level(level: u8) -> Option<Self> {
        match level {
            0 => Some(WebRtcMode::Quality),
            1 => Some(WebRtcMode::LowBitrate),
            2 => Some(WebRtcMode::Aggressive),
            3 => Some(WebRtcMode::VeryAggressive),
            _ => None,
        }
    }

    fn to_crate(self) -> webrtc_vad::VadMode {
        match self {
            WebRtcMode::Quality => webrtc_vad::VadMode::Quality,
            WebRtcMode::LowBitrate => webrtc_vad::VadMode::LowBitrate,
            WebRtcMode::Aggressive => webrtc_vad::VadMode::Aggressive,
            WebRtcMode::VeryAggressive => webrtc_vad::VadMode::VeryAggressive,
        }
    }
}

/// The GMM-based VAD from WebRTC: cheap, decisive (0 or 1 per frame), at 8, 16, 32 or
/// 48 kHz in 10, 20 or 30 ms frames.
pub struct WebRtcVad {
    inner: SendVad,
    sample_rate: u32,
    mode: WebRtcMode,
    frame_len: usize,
}

/// `webrtc_vad::Vad` holds a raw pointer to its C state, which makes it `!Send`.
struct SendVad(webrtc_vad::Vad);

// SAFETY: the pointer is to a heap object created by `fvad_new` and owned solely by
// this value (freed in its `Drop`); libfvad keeps no global or thread-local state (its
// sources have no mutable statics), so using it from another thread after a move is
// sound. It is not `Sync`: `&self` never reaches the C code, and every call that does
// takes `&mut self`.
#[allow(unsafe_code)]
unsafe impl Send for SendVad {}

impl std::fmt::Debug for WebRtcVad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcVad")
            .field("sample_rate", &self.sample_rate)
            .field("mode", &self.mode)
            .field("frame_len", &self.frame_len)
            .finish()
    }
}

impl WebRtcVad {
    /// A detector at `sample_rate` (8, 16, 32 or 48 kHz) taking `frame_ms` frames (10,
    /// 20 or 30).
    ///
    /// # Errors
    /// [`VadError::UnsupportedSampleRate`] or [`VadError::UnsupportedFrameDuration`].
    pub fn new(sample_rate: u32, mode: WebRtcMode, frame_ms: u32) -> Result<Self, VadError> {
        let rate = to_rate(sample_rate)?;
        if ![10, 20, 30].contains(&frame_ms) {
            return Err(VadError::UnsupportedFrameDuration {
                detector: "webrtc",
                frame_ms,
                supported: "10, 20, 30 ms",
            });
        }
        Ok(Self {
            inner: SendVad(webrtc_vad::Vad::new_with_rate_and_mode(
                rate,
                mode.to_crate(),
            )),
            sample_rate,
            mode,
            frame_len: (sample_rate * frame_ms / 1000) as usize,
        })
    }

    /// The aggressiveness mode.
    pub fn mode(&self) -> WebRtcMode {
        self.mode
    }
}

fn to_rate(sample_rate: u32) -> Result<webrtc_vad::SampleRate, VadError> {
    match sample_rate {
        8000 => Ok(webrtc_vad::SampleRate::Rate8kHz),
        16000 => Ok(webrtc_vad::SampleRate::Rate16kHz),
        32000 => Ok(webrtc_vad::SampleRate::Rate32kHz),
        48000 => Ok(webrtc_vad::SampleRate::Rate48kHz),
        rate => Err(VadError::UnsupportedSampleRate {
            detector: "webrtc",
            rate,
            supported: "8000, 16000, 32000, 48000 Hz",
        }),
    }
}

impl Vad for WebRtcVad {
    fn name(&self) -> &'static str {
        "webrtc"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn frame_len(&self) -> usize {
        self.frame_len
    }

    fn speech_probability(&mut self, frame: &[i16]) -> Result<f32, VadError> {
        // The crate indexes frame[0] (panics on empty input) and rejects other lengths.
        check_frame("webrtc", self.frame_len, frame)?;
        match self.inner.0.is_voice_segment(frame) {
            Ok(true) => Ok(1.0),
            Ok(false) => Ok(0.0),
            Err(()) => Err(VadError::FrameLength {
                detector: "webrtc",
                expected: self.frame_len,
                got: frame.len(),
            }),
        }
    }

    fn reset(&mut self) {
        // fvad_reset also resets the mode and rate to defaults; a new instance keeps ours.
        if let Ok(rate) = to_rate(self.sample_rate) {
            self.inner = SendVad(webrtc_vad::Vad::new_with_rate_and_mode(
                rate,
                self.mode.to_crate(),
            ));
        }
    }
}
