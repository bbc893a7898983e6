//! Signal levels: RMS and dBFS, per buffer or per frame.
//!
//! dBFS here is RMS relative to a full-scale amplitude of 32768, so a full-scale sine
//! reads -3.01 dBFS and a full-scale square wave 0 dBFS. Digital silence reads
//! [`SILENCE_DBFS`] rather than minus infinity, so levels stay comparable, printable
//! and serialisable.

/// The level reported for digital silence: below anything 16-bit audio can carry
/// (one LSB of RMS is about -90 dBFS).
pub const SILENCE_DBFS: f32 = -120.0;

/// RMS as a fraction of full scale, 0.0 to 1.0.
pub fn rms(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    ((energy / samples.len() as f64).sqrt() / 32768.0) as f32
}

/// The RMS level in dBFS, floored at [`SILENCE_DBFS`].
pub fn dbfs(samples: &[i16]) -> f32 {
    to_dbfs(rms(samples))
}

/// An RMS fraction of full scale to dBFS, floored at [`SILENCE_DBFS`].
pub fn to_dbfs(rms: f32) -> f32 {
    if rms <= 0.0 {
        SILENCE_DBFS
    } else {
        (20.0 * rms.log10()).max(SILENCE_DBFS)
    }
}

/// dBFS to an RMS fraction of full scale.
pub fn from_dbfs(dbfs: f32) -> f32 {
    10f32.powf(dbfs / 20.0)
}

/// The largest absolute sample, as a fraction of full scale.
pub fn peak(samples: &[i16]) -> f32 {
    samples
        .iter()
        .map(|&s| f32::from(s).abs())
        .fold(0.0, f32::max)
        / 32768.0
}

/// The level of each whole frame of `frame_len` samples, in dBFS; a trailing partial
/// frame is skipped.
///
/// # Panics
/// When `frame_len` is zero.
pub fn frame_dbfs(samples: &[i16], frame_len: usize) -> impl Iterator<Item = f32> + '_ {
    assert!(frame_len > 0, "frame_dbfs: frame length must not be zero");
    samples.chunks_exact(frame_len).map(dbfs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_levels() {
        assert_eq!(dbfs(&[]), SILENCE_DBFS);
        assert_eq!(dbfs(&[0; 160]), SILENCE_DBFS);
        let square: Vec<i16> = (0..160)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        assert!(dbfs(&square).abs() < 0.01);
        let sine: Vec<i16> = (0..8000)
            .map(|n| {
                (32767.0 * (2.0 * std::f64::consts::PI * 1000.0 * n as f64 / 8000.0).sin()) as i16
            })
            .collect();
        assert!((dbfs(&sine) + 3.01).abs() < 0.01);
        assert!((peak(&sine) - 1.0).abs() < 0.001);
        let quiet: Vec<i16> = sine.iter().map(|s| s / 100).collect();
        assert!((dbfs(&quiet) + 43.01).abs() < 0.05);
        assert!((from_dbfs(-6.0206) - 0.5).abs() < 1e-4);
    }

    #[test]
    fn per_frame_levels() {
        let mut x = vec![0i16; 160];
        x.extend(std::iter::repeat_n(1000i16, 160));
        x.push(5);
        let levels: Vec<f32> = frame_dbfs(&x, 160).collect();
        assert_eq!(levels.len(), 2);
        assert_eq!(levels[0], SILENCE_DBFS);
        assert!((levels[1] - 20.0 * (1000.0f32 / 32768.0).log10()).abs() < 0.01);
    }
}
