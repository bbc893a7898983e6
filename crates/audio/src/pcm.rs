//! 16-bit little-endian PCM bytes to and from samples, and `f32` conversions.
//!
//! Wire buffers (base64-decoded payloads, WebSocket frames) carry no alignment
//! guarantee, so nothing here casts `&[u8]` to `&[i16]`: bytes are read in pairs.

use crate::error::AudioError;

/// Decodes little-endian PCM16 bytes, appending the samples to `out`.
///
/// # Errors
/// [`AudioError::OddPcmLength`] when `bytes` is not a whole number of samples; nothing
/// is appended then. Streams that may split a sample across chunks should use
/// [`crate::Transcoder`], which carries the odd byte over.
pub fn decode_le(bytes: &[u8], out: &mut Vec<i16>) -> Result<(), AudioError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(AudioError::OddPcmLength { len: bytes.len() });
    }
    decode_whole_samples(bytes, out);
    Ok(())
}

/// Decodes the whole samples in `bytes`, ignoring a trailing odd byte.
pub(crate) fn decode_whole_samples(bytes: &[u8], out: &mut Vec<i16>) {
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|pair| i16::from_le_bytes([pair[0], pair[1]])),
    );
}

/// Encodes samples as little-endian PCM16, appending the bytes to `out`.
pub fn encode_le(samples: &[i16], out: &mut Vec<u8>) {
    out.reserve(samples.len() * 2);
    for &s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// One sample as `f32` in [-1.0, 1.0).
#[inline]
pub fn to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// One `f32` sample to `i16`: scaled by 32768, rounded to nearest, saturated at the
/// ends of the range (NaN becomes 0).
#[inline]
pub fn from_f32(value: f32) -> i16 {
    round_saturate(value * 32768.0)
}

/// Rounds half away from zero and saturates to `i16` (`as` casts saturate; NaN is 0).
#[inline]
pub(crate) fn round_saturate(value: f32) -> i16 {
    (value + 0.5f32.copysign(value)) as i16
}

/// Converts samples to `f32` in [-1.0, 1.0), appending to `out`.
pub fn extend_f32(samples: &[i16], out: &mut Vec<f32>) {
    out.extend(samples.iter().map(|&s| to_f32(s)));
}

/// Converts `f32` samples to `i16` (see [`from_f32`]), appending to `out`.
pub fn extend_i16(values: &[f32], out: &mut Vec<i16>) {
    out.extend(values.iter().map(|&v| from_f32(v)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_at_any_offset() {
        let samples: Vec<i16> = vec![0, 1, -1, i16::MAX, i16::MIN, 0x1234];
        let mut bytes = vec![0xAA]; // misalign the payload on purpose
        encode_le(&samples, &mut bytes);
        assert_eq!(&bytes[1..5], &[0, 0, 1, 0]);
        let mut back = Vec::new();
        decode_le(&bytes[1..], &mut back).expect("even length");
        assert_eq!(back, samples);
    }

    #[test]
    fn odd_length_is_refused_without_output() {
        let mut out = vec![7];
        let err = decode_le(&[1, 2, 3], &mut out).expect_err("odd");
        assert!(matches!(err, AudioError::OddPcmLength { len: 3 }));
        assert_eq!(out, [7]);
    }

    #[test]
    fn float_conversion_rounds_and_saturates() {
        assert_eq!(from_f32(to_f32(12345)), 12345);
        assert_eq!(from_f32(to_f32(i16::MIN)), i16::MIN);
        assert_eq!(from_f32(2.0), i16::MAX);
        assert_eq!(from_f32(-2.0), i16::MIN);
        assert_eq!(from_f32(f32::NAN), 0);
        assert_eq!(round_saturate(1.5), 2);
        assert_eq!(round_saturate(-1.5), -2);
        assert_eq!(round_saturate(0.49), 0);
        for s in [i16::MIN, -1, 0, 1, i16::MAX] {
            assert_eq!(from_f32(to_f32(s)), s);
        }
    }
}
