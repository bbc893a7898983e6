//! Voice activity detection, turn detection and the voice half of barge-in.
//!
//! Every Voxline binary decides "the caller started / stopped talking" here, the same
//! measurable way:
//!
//! - [`Vad`]: frames in, speech probability out; object-safe and `Send`. Detectors:
//!   [`WebRtcVad`] (libfvad's GMM, cheap and decisive), [`EnergyVad`] (level over an
//!   adaptive noise floor, cheapest) and `SileroVad` (feature `silero`: the Silero v5
//!   network run by tract in pure Rust). Any other detector plugs in through the
//!   trait; `earshot` was evaluated that way and not adopted (see
//!   `docs/benchmarks.md`).
//! - [`TurnDetector`]: any rate, any chunk size in; [`TurnEvent::SpeechStarted`] and
//!   [`TurnEvent::SpeechStopped`] out, dated in audio time (samples), with pre-roll.
//! - [`InterruptionPolicy`] and [`InterruptionRule`]: when speech over the bot is a
//!   barge-in; the agent adds transcript rules through the same trait.
//!
//! No async and no I/O (beyond loading a model file).
//!
//! ```
//! use voxline_vad::{TurnConfig, TurnDetector, TurnEvent, VadKind};
//!
//! let vad = VadKind::default().build(8000)?;
//! let mut turns = TurnDetector::new(vad, 8000, TurnConfig::default())?;
//! for event in turns.push(&[0i16; 8000]) {
//!     if let TurnEvent::SpeechStarted { at, .. } = event {
//!         println!("caller started at {at}");
//!     }
//! }
//! # Ok::<(), voxline_vad::VadError>(())
//! ```
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

mod detector;
mod energy;
mod error;
mod floor;
mod interruption;
#[cfg(feature = "silero")]
pub mod silero;
mod turn;
mod webrtc;

pub use detector::Vad;
pub use energy::{EnergyVad, EnergyVadConfig};
pub use error::VadError;
pub use interruption::{AllOf, Decision, Evidence, InterruptionPolicy, InterruptionRule};
#[cfg(feature = "silero")]
pub use silero::{SileroModel, SileroVad};
pub use turn::{AudioTime, TurnConfig, TurnDetector, TurnEvent, VoiceActivity};
pub use webrtc::{WebRtcMode, WebRtcVad};

/// Which detector to build, as chosen in configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum VadKind {
    /// [`WebRtcVad`] in 10 ms frames.
    WebRtc(WebRtcMode),
    /// [`EnergyVad`] in 10 ms frames.
    Energy(EnergyVadConfig),
    /// `SileroVad` sharing a loaded model.
    #[cfg(feature = "silero")]
    Silero(SileroModel),
}

impl Default for VadKind {
    /// WebRTC in its aggressive mode.
    fn default() -> Self {
        VadKind::WebRtc(WebRtcMode::Aggressive)
    }
}

impl VadKind {
    /// Builds a detector for audio arriving at `input_rate`. WebRTC and energy run at
    /// the input rate when they can (no resampling); the model-based detectors run at
    /// 16 kHz and [`TurnDetector`] resamples to it.
    ///
    /// # Errors
    /// When the detector cannot be built at any rate for this input.
    pub fn build(&self, input_rate: u32) -> Result<Box<dyn Vad>, VadError> {
        Ok(match self {
            VadKind::WebRtc(mode) => {
                let rate = if [8000, 16000, 32000, 48000].contains(&input_rate) {
                    input_rate
                } else {
                    16000
                };
                Box::new(WebRtcVad::new(rate, *mode, 10)?)
            }
            VadKind::Energy(config) => Box::new(EnergyVad::with_config(input_rate, 10, *config)?),
            #[cfg(feature = "silero")]
            VadKind::Silero(model) => Box::new(SileroVad::new(model)),
        })
    }
}
