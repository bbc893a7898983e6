//! Codec plus resampler as one streaming object.

use std::time::Duration;

use crate::error::AudioError;
use crate::format::{AudioFormat, Encoding};
use crate::g711::{alaw, mulaw};
use crate::pcm;
use crate::resample::Resampler;

/// Converts a byte stream from one [`AudioFormat`] to another: decode, resample,
/// encode, in one call on the hot path.
///
/// Chunks may be any size, including ones that split a PCM16 sample in two: the odd
/// byte is carried into the next call. Like [`Resampler`], output lags input by
/// [`Transcoder::delay`] and [`Transcoder::flush`] releases the rest at the end of a
/// stream. Scratch buffers are kept between calls, so steady-state processing does not
/// allocate beyond the caller's output buffer.
///
/// ```
/// use voxline_audio::{AudioFormat, Transcoder};
///
/// // A carrier's 20 ms mu-law frame to 16 kHz PCM16 for a speech recogniser.
/// let mut t = Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::PCM16_16K)?;
/// let mut pcm = Vec::new();
/// t.process(&[0xFF; 160], &mut pcm);
/// t.flush(&mut pcm);
/// assert_eq!(pcm.len(), 640); // 320 samples of 2 bytes
/// # Ok::<(), voxline_audio::AudioError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Transcoder {
    from: AudioFormat,
    to: AudioFormat,
    resampler: Resampler,
    /// The first byte of a PCM16 sample whose second byte has not arrived yet.
    pending: Option<u8>,
    decoded: Vec<i16>,
    resampled: Vec<i16>,
}

impl Transcoder {
    /// A transcoder from `from` to `to`.
    ///
    /// # Errors
    /// When the sample rates are not supported by [`Resampler::new`].
    pub fn new(from: AudioFormat, to: AudioFormat) -> Result<Self, AudioError> {
        Ok(Self {
            from,
            to,
            resampler: Resampler::new(from.sample_rate, to.sample_rate)?,
            pending: None,
            decoded: Vec::new(),
            resampled: Vec::new(),
        })
    }

    /// The input format.
    pub fn from_format(&self) -> AudioFormat {
        self.from
    }

    /// The output format.
    pub fn to_format(&self) -> AudioFormat {
        self.to
    }

    /// The latency added by resampling (zero when the rates are equal).
    pub fn delay(&self) -> Duration {
        self.resampler.delay()
    }

    /// Converts `input`, appending the converted bytes that are ready to `output`.
    pub fn process(&mut self, input: &[u8], output: &mut Vec<u8>) {
        self.decoded.clear();
        self.decode(input);
        if self.from.sample_rate == self.to.sample_rate {
            encode(self.to.encoding, &self.decoded, output);
        } else {
            self.resampled.clear();
            self.resampler.process(&self.decoded, &mut self.resampled);
            encode(self.to.encoding, &self.resampled, output);
        }
    }

    /// Convenience for [`Transcoder::process`] into a new buffer.
    pub fn convert(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.max_output_len(input.len()));
        self.process(input, &mut out);
        out
    }

    /// Ends the stream: appends the resampler's held-back output and resets for a new
    /// stream. Returns how many bytes of a dangling partial PCM16 sample were
    /// discarded (0 or 1); a non-zero value means the input was malformed.
    #[must_use = "a dangling byte means the input stream was cut mid-sample"]
    pub fn flush(&mut self, output: &mut Vec<u8>) -> usize {
        self.resampled.clear();
        self.resampler.flush(&mut self.resampled);
        encode(self.to.encoding, &self.resampled, output);
        usize::from(self.pending.take().is_some())
    }

    /// Drops all state (held-back samples, a carried byte), as if newly created.
    pub fn reset(&mut self) {
        self.resampler.reset();
        self.pending = None;
    }

    /// An upper bound on the bytes [`Transcoder::process`] appends for `input_len`
    /// input bytes.
    pub fn max_output_len(&self, input_len: usize) -> usize {
        let samples = input_len / self.from.bytes_per_sample() + 1;
        self.resampler.max_output_len(samples) * self.to.bytes_per_sample()
    }

    fn decode(&mut self, mut input: &[u8]) {
        match self.from.encoding {
            Encoding::Mulaw => mulaw::decode(input, &mut self.decoded),
            Encoding::Alaw => alaw::decode(input, &mut self.decoded),
            Encoding::Pcm16 => {
                if let Some(low) = self.pending.take() {
                    match input.split_first() {
                        Some((&high, rest)) => {
                            self.decoded.push(i16::from_le_bytes([low, high]));
                            input = rest;
                        }
                        None => {
                            self.pending = Some(low);
                            return;
                        }
                    }
                }
                let whole = input.len() & !1;
                if whole < input.len() {
                    self.pending = Some(input[whole]);
                }
                pcm::decode_whole_samples(&input[..whole], &mut self.decoded);
            }
        }
    }
}

fn encode(encoding: Encoding, samples: &[i16], output: &mut Vec<u8>) {
    match encoding {
        Encoding::Pcm16 => pcm::encode_le(samples, output),
        Encoding::Mulaw => mulaw::encode(samples, output),
        Encoding::Alaw => alaw::encode(samples, output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm16_split_mid_sample_is_carried() {
        let mut t = Transcoder::new(AudioFormat::PCM16_8K, AudioFormat::MULAW_8K).expect("ok");
        let mut out = Vec::new();
        let sample = 1000i16.to_le_bytes();
        t.process(&sample[..1], &mut out);
        assert!(out.is_empty());
        t.process(&[], &mut out);
        t.process(&sample[1..], &mut out);
        assert_eq!(out, [mulaw::encode_sample(1000)]);
        assert_eq!(t.flush(&mut out), 0);
    }

    #[test]
    fn flush_reports_a_dangling_byte() {
        let mut t = Transcoder::new(AudioFormat::PCM16_8K, AudioFormat::PCM16_8K).expect("ok");
        let mut out = Vec::new();
        t.process(&[1, 2, 3], &mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!(t.flush(&mut out), 1);
        assert_eq!(t.flush(&mut out), 0);
    }

    #[test]
    fn mulaw_to_alaw_at_the_same_rate() {
        let mut t = Transcoder::new(AudioFormat::MULAW_8K, AudioFormat::ALAW_8K).expect("ok");
        assert_eq!(t.delay(), Duration::ZERO);
        let out = t.convert(&[0xFF, 0x7F]);
        assert_eq!(out, [0xD5, 0xD5]);
    }
}
