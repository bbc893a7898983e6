//! Voxline: a Rust framework for AI voice agents on phone calls.
//!
//! This facade re-exports the member crates behind cargo features, so an application
//! can depend on `voxline` alone and switch parts on as it needs them. Each crate can
//! also be used on its own.
//!
//! | feature | module | crate |
//! |---|---|---|
//! | `audio` (default) | [`audio`] | `voxline-audio`: G.711, resampling, framing, pacing, DTMF, WAV |

#[cfg(feature = "audio")]
#[doc(inline)]
pub use voxline_audio as audio;
