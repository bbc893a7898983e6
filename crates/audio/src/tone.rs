//! Tone generation: test signals, comfort tones, and in-band DTMF.

use std::f64::consts::TAU;

use crate::dtmf::DtmfDigit;

/// A sum of sines, generated continuously across calls.
///
/// ```
/// use voxline_audio::tone::ToneGenerator;
///
/// let mut tone = ToneGenerator::sine(8000, 1000.0, 0.5);
/// let mut first = vec![0i16; 4];
/// tone.fill(&mut first);
/// assert_eq!(first, [0, 11585, 16384, 11585]);
/// ```
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    sample_rate: u32,
    /// Each component: phase increment per sample and current phase, in cycles, and
    /// peak amplitude as a fraction of full scale.
    components: Vec<Component>,
}

#[derive(Debug, Clone, Copy)]
struct Component {
    step: f64,
    phase: f64,
    amplitude: f64,
}

impl ToneGenerator {
    /// Silence at `sample_rate`, to add tones to with [`ToneGenerator::with_tone`].
    pub fn new(sample_rate: u32) -> Self {
        Self {
            sample_rate,
            components: Vec::new(),
        }
    }

    /// One sine of `freq` Hz with peak `amplitude` as a fraction of full scale.
    pub fn sine(sample_rate: u32, freq: f64, amplitude: f64) -> Self {
        Self::new(sample_rate).with_tone(freq, amplitude)
    }

    /// The two tones of a DTMF digit, each at peak `amplitude` (so the sum peaks at
    /// twice that).
    pub fn dtmf(sample_rate: u32, digit: DtmfDigit, amplitude: f64) -> Self {
        let (low, high) = digit.frequencies();
        Self::new(sample_rate)
            .with_tone(low, amplitude)
            .with_tone(high, amplitude)
    }

    /// Adds a sine of `freq` Hz with peak `amplitude` (fraction of full scale).
    pub fn with_tone(mut self, freq: f64, amplitude: f64) -> Self {
        self.components.push(Component {
            step: freq / f64::from(self.sample_rate.max(1)),
            phase: 0.0,
            amplitude,
        });
        self
    }

    /// The sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Fills `out` with the next samples (saturating at full scale).
    pub fn fill(&mut self, out: &mut [i16]) {
        for sample in out.iter_mut() {
            let mut v = 0.0;
            for c in &mut self.components {
                v += c.amplitude * (TAU * c.phase).sin();
                c.phase = (c.phase + c.step).fract();
            }
            *sample = (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16;
        }
    }

    /// The next `len` samples.
    pub fn generate(&mut self, len: usize) -> Vec<i16> {
        let mut out = vec![0; len];
        self.fill(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_is_continuous_across_calls() {
        let mut a = ToneGenerator::sine(8000, 440.0, 0.3).with_tone(1000.0, 0.2);
        let mut b = a.clone();
        let whole = a.generate(1000);
        let mut parts = b.generate(333);
        parts.extend(b.generate(667));
        assert_eq!(whole, parts);
    }

    #[test]
    fn dtmf_tone_has_both_frequencies() {
        let mut t = ToneGenerator::dtmf(8000, DtmfDigit::Five, 0.25);
        let x = t.generate(8000);
        let peak = x.iter().map(|s| i32::from(*s).abs()).max().unwrap_or(0);
        assert!(peak > 16000 && peak <= 16385, "{peak}");
    }
}
