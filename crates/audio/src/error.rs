//! The crate's error type.

use std::path::PathBuf;

use crate::format::Encoding;

/// Everything that can go wrong in `voxline-audio`.
///
/// Errors describe the input that was refused, so a caller can log them with its own
/// context (call id, direction) and carry on: no error here poisons the object that
/// returned it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// A sample rate outside what the resampler and framing code accept.
    #[error("unsupported sample rate {rate} Hz (accepted: 4000 to 192000 Hz)")]
    UnsupportedSampleRate {
        /// The rate that was asked for.
        rate: u32,
    },

    /// Two rates whose ratio reduces to a fraction too large for a polyphase filter.
    #[error(
        "cannot resample {from} Hz -> {to} Hz: the ratio reduces to {up}/{down}, \
         more than {max} phases"
    )]
    UnsupportedRatio {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
        /// Reduced numerator (interpolation factor).
        up: u32,
        /// Reduced denominator (decimation factor).
        down: u32,
        /// The largest interpolation factor accepted.
        max: u32,
    },

    /// PCM16 bytes whose length is not a whole number of samples.
    #[error("PCM16 data of {len} bytes is not a whole number of 2-byte samples")]
    OddPcmLength {
        /// The byte length that was given.
        len: usize,
    },

    /// A frame size that cannot hold whole samples of the encoding, or is zero.
    #[error("invalid frame size of {bytes} bytes for {encoding}: {reason}")]
    InvalidFrameSize {
        /// The size asked for.
        bytes: usize,
        /// The encoding the frames carry.
        encoding: Encoding,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A WAV file that cannot be read or written in the format asked for.
    #[error("WAV {}: {reason}", path.as_ref().map_or_else(|| "stream".to_owned(), |p| p.display().to_string()))]
    Wav {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// What is wrong.
        reason: String,
    },

    /// An I/O error while reading or writing a file.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
