//! Telephony audio for Voxline: the code on the hot path of every call.
//!
//! Carriers stream 8 kHz mu-law or PCM16; speech recognisers want 16 kHz PCM; speech
//! synthesis returns 16, 22.05, 24 or 44.1 kHz. This crate converts between them and
//! shapes the result for the wire:
//!
//! - [`Encoding`] and [`AudioFormat`]: what a byte stream means and how long it lasts.
//! - [`g711`]: mu-law and A-law, table-driven and bit-exact with the reference.
//! - [`pcm`]: PCM16 little-endian bytes and `f32` conversions.
//! - [`Resampler`]: streaming, low-latency, chunking-independent rate conversion.
//! - [`Transcoder`]: codec plus resampler as one streaming object.
//! - [`Rechunker`]: arbitrary chunks in, carrier-sized frames out.
//! - [`Pacer`]: the real-time playout schedule for frames sent to a caller.
//! - [`level`], [`tone`] and [`dtmf`]: levels in dBFS, tone generation and in-band
//!   DTMF detection.
//! - [`wav`]: WAV files in PCM16, mu-law and A-law.
//!
//! There is no async and no I/O here beyond WAV files: every type is plain state that
//! a per-call task owns, so it can be tested deterministically and benchmarked alone.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

pub mod dtmf;
mod error;
mod format;
pub mod g711;
pub mod level;
pub mod pacer;
pub mod pcm;
mod rechunk;
mod resample;
pub mod tone;
mod transcode;
pub mod wav;

pub use error::AudioError;
pub use format::{AudioFormat, Encoding, ParseFormatError};
pub use pacer::{Pacer, PacerConfig};
pub use rechunk::{FrameSize, Frames, Rechunker, SharedFrames};
pub use resample::{MAX_PHASES, MAX_RATE, MIN_RATE, Resampler};
pub use transcode::Transcoder;
