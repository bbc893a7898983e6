//! In-band DTMF detection with the Goertzel algorithm.
//!
//! Carriers usually report key presses as events, but some pass them only as tones in
//! the audio (RFC 4733 stripped, or a PSTN leg in the middle), and a voice agent must
//! not mistake them for speech. [`DtmfDetector`] finds the 16 digits in a stream of
//! PCM16 at any rate.
//!
//! Audio is analysed in blocks of 12.75 ms (102 samples at 8 kHz, 78 Hz resolution).
//! A block holds a digit when, for the strongest row and column tone:
//! - each tone is above a minimum level;
//! - the two are within the allowed twist of each other;
//! - each is well above the other tones of its group;
//! - together they carry nearly all of the block's energy (speech and noise spread
//!   theirs across the band: this is what rejects talk-off);
//! - the column tone's second harmonic is weak (voiced speech is rich in harmonics;
//!   the row tones' harmonics fall among the column frequencies, so they are not
//!   checked).
//!
//! A digit starts after two consecutive blocks agree (so tones shorter than about
//! 25 ms are ignored) and ends after two blocks without it, which bridges a single
//! dropped block. Each [`DtmfTone`] is reported when it ends, with its start and
//! duration in samples of the stream.

use std::f64::consts::TAU;
use std::fmt;
use std::time::Duration;

/// The low-group (row) frequencies in Hz.
pub const ROW_FREQUENCIES: [f64; 4] = [697.0, 770.0, 852.0, 941.0];
/// The high-group (column) frequencies in Hz.
pub const COLUMN_FREQUENCIES: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// One of the 16 DTMF keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum DtmfDigit {
    One,
    Two,
    Three,
    A,
    Four,
    Five,
    Six,
    B,
    Seven,
    Eight,
    Nine,
    C,
    Star,
    Zero,
    Pound,
    D,
}

impl DtmfDigit {
    /// All 16 keys, row by row of the keypad.
    pub const ALL: [DtmfDigit; 16] = [
        DtmfDigit::One,
        DtmfDigit::Two,
        DtmfDigit::Three,
        DtmfDigit::A,
        DtmfDigit::Four,
        DtmfDigit::Five,
        DtmfDigit::Six,
        DtmfDigit::B,
        DtmfDigit::Seven,
        DtmfDigit::Eight,
        DtmfDigit::Nine,
        DtmfDigit::C,
        DtmfDigit::Star,
        DtmfDigit::Zero,
        DtmfDigit::Pound,
        DtmfDigit::D,
    ];

    /// The key at `row` and `column` of the keypad (both 0..4).
    pub fn from_position(row: usize, column: usize) -> Option<Self> {
        (row < 4 && column < 4).then(|| Self::ALL[row * 4 + column])
    }

    /// The key's row and column on the keypad.
    pub fn position(self) -> (usize, usize) {
        let index = self as usize;
        (index / 4, index % 4)
    }

    /// The (row, column) frequencies in Hz.
    pub fn frequencies(self) -> (f64, f64) {
        let (row, column) = self.position();
        (ROW_FREQUENCIES[row], COLUMN_FREQUENCIES[column])
    }

    /// The key's character: `0`-`9`, `*`, `#`, `A`-`D`.
    pub fn as_char(self) -> char {
        b"123A456B789C*0#D"[self as usize] as char
    }

    /// The key for a character (`a`-`d` accepted too).
    pub fn from_char(c: char) -> Option<Self> {
        let c = c.to_ascii_uppercase();
        b"123A456B789C*0#D"
            .iter()
            .position(|&k| char::from(k) == c)
            .map(|i| Self::ALL[i])
    }
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

/// A detected key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfTone {
    /// The key.
    pub digit: DtmfDigit,
    /// Where the tone starts, in samples since the detector was created or reset.
    pub start: u64,
    /// How long it lasts, in samples.
    pub duration: u64,
    /// The sample rate of the stream, to turn samples into time.
    pub sample_rate: u32,
}

impl DtmfTone {
    /// The start as a time offset in the stream.
    pub fn start_time(&self) -> Duration {
        samples_to_duration(self.start, self.sample_rate)
    }

    /// The duration as time.
    pub fn duration_time(&self) -> Duration {
        samples_to_duration(self.duration, self.sample_rate)
    }
}

fn samples_to_duration(samples: u64, rate: u32) -> Duration {
    Duration::from_nanos((u128::from(samples) * 1_000_000_000 / u128::from(rate.max(1))) as u64)
}

/// Detection thresholds. The defaults reject talk-off on the project's speech
/// fixtures while detecting tones in noise at 20 dB SNR.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DtmfConfig {
    /// Minimum RMS level of each of the two tones, in dBFS.
    pub min_tone_dbfs: f64,
    /// How much louder the column tone may be than the row tone, in dB.
    pub max_normal_twist_db: f64,
    /// How much louder the row tone may be than the column tone, in dB.
    pub max_reverse_twist_db: f64,
    /// How far each tone must stand above the others of its group, in dB.
    pub min_group_margin_db: f64,
    /// The least share of the block's energy the two tones must carry (0 to 1).
    pub min_tone_share: f64,
    /// How far the column tone must stand above its second harmonic, in dB.
    pub min_harmonic_margin_db: f64,
}

impl Default for DtmfConfig {
    fn default() -> Self {
        Self {
            min_tone_dbfs: -40.0,
            max_normal_twist_db: 8.0,
            max_reverse_twist_db: 8.0,
            min_group_margin_db: 8.0,
            min_tone_share: 0.80,
            min_harmonic_margin_db: 10.0,
        }
    }
}

/// The duration of one analysis block, as samples at 8 kHz.
const BLOCK_AT_8K: usize = 102;

/// A streaming DTMF detector for one direction of one call.
///
/// ```
/// use voxline_audio::dtmf::{DtmfDetector, DtmfDigit};
/// use voxline_audio::tone::ToneGenerator;
///
/// let mut detector = DtmfDetector::new(8000);
/// let mut tones = Vec::new();
/// detector.push(&ToneGenerator::dtmf(8000, DtmfDigit::Seven, 0.2).generate(800), &mut tones);
/// detector.push(&[0; 800], &mut tones);
/// assert_eq!(tones.len(), 1);
/// assert_eq!(tones[0].digit, DtmfDigit::Seven);
/// ```
#[derive(Debug, Clone)]
pub struct DtmfDetector {
    sample_rate: u32,
    config: DtmfConfig,
    block_len: usize,
    /// Goertzel coefficients `2 cos ω`: 4 rows, 4 columns, then the columns' second
    /// harmonics.
    coeffs: [f64; 12],
    block: Vec<f64>,
    /// Index of the first sample of the current block.
    block_start: u64,
    state: State,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Idle,
    /// One block saw `digit`, starting at `start`.
    Candidate {
        digit: DtmfDigit,
        start: u64,
    },
    /// The digit is on; `end` is the end of the last block that saw it.
    Active {
        digit: DtmfDigit,
        start: u64,
        end: u64,
        misses: u8,
    },
}

impl DtmfDetector {
    /// A detector with the default thresholds for audio at `sample_rate` Hz.
    pub fn new(sample_rate: u32) -> Self {
        Self::with_config(sample_rate, DtmfConfig::default())
    }

    /// A detector with the given thresholds.
    pub fn with_config(sample_rate: u32, config: DtmfConfig) -> Self {
        let rate = f64::from(sample_rate.max(1));
        let block_len = (BLOCK_AT_8K * sample_rate as usize).div_ceil(8000).max(1);
        let harmonics = COLUMN_FREQUENCIES.map(|f| 2.0 * f);
        let mut coeffs = [0.0; 12];
        let frequencies = ROW_FREQUENCIES
            .iter()
            .chain(&COLUMN_FREQUENCIES)
            .chain(&harmonics);
        for (c, freq) in coeffs.iter_mut().zip(frequencies) {
            *c = 2.0 * (TAU * freq / rate).cos();
        }
        Self {
            sample_rate,
            config,
            block_len,
            coeffs,
            block: Vec::with_capacity(block_len),
            block_start: 0,
            state: State::Idle,
        }
    }

    /// Analyses `samples`, appending every key press that ended to `out`.
    pub fn push(&mut self, samples: &[i16], out: &mut Vec<DtmfTone>) {
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (self.block_len - self.block.len()).min(rest.len());
            self.block
                .extend(rest[..take].iter().map(|&s| f64::from(s) / 32768.0));
            rest = &rest[take..];
            if self.block.len() == self.block_len {
                let digit = self.classify();
                self.block.clear();
                self.advance(digit, out);
                self.block_start += self.block_len as u64;
            }
        }
    }

    /// Ends the stream: reports a key still pressed, then resets.
    pub fn flush(&mut self, out: &mut Vec<DtmfTone>) {
        if let State::Active {
            digit, start, end, ..
        } = self.state
        {
            out.push(self.tone(digit, start, end));
        }
        self.reset();
    }

    /// Forgets the stream, as if newly created.
    pub fn reset(&mut self) {
        self.block.clear();
        self.block_start = 0;
        self.state = State::Idle;
    }

    /// The key being pressed right now, if any.
    pub fn current(&self) -> Option<DtmfDigit> {
        match self.state {
            State::Active { digit, .. } => Some(digit),
            _ => None,
        }
    }

    fn tone(&self, digit: DtmfDigit, start: u64, end: u64) -> DtmfTone {
        DtmfTone {
            digit,
            start,
            duration: end - start,
            sample_rate: self.sample_rate,
        }
    }

    /// Runs the block's verdict through the start/end debouncing.
    fn advance(&mut self, seen: Option<DtmfDigit>, out: &mut Vec<DtmfTone>) {
        let (start, end) = (self.block_start, self.block_start + self.block_len as u64);
        self.state = match (self.state, seen) {
            (State::Idle, None) => State::Idle,
            (State::Idle | State::Candidate { .. }, Some(digit)) => match self.state {
                State::Candidate { digit: d, start: s } if d == digit => State::Active {
                    digit,
                    start: s,
                    end,
                    misses: 0,
                },
                _ => State::Candidate { digit, start },
            },
            (State::Candidate { .. }, None) => State::Idle,
            (
                State::Active {
                    digit,
                    start: s,
                    end: e,
                    misses,
                },
                seen,
            ) => {
                if seen == Some(digit) {
                    State::Active {
                        digit,
                        start: s,
                        end,
                        misses: 0,
                    }
                } else if seen.is_none() && misses == 0 {
                    State::Active {
                        digit,
                        start: s,
                        end: e,
                        misses: 1,
                    }
                } else {
                    out.push(self.tone(digit, s, e));
                    match seen {
                        Some(other) => State::Candidate {
                            digit: other,
                            start,
                        },
                        None => State::Idle,
                    }
                }
            }
        };
    }

    /// The digit this block holds, if it passes every check.
    fn classify(&self) -> Option<DtmfDigit> {
        let n = self.block.len() as f64;
        let mean_power = self.block.iter().map(|v| v * v).sum::<f64>() / n;
        if mean_power <= 0.0 {
            return None;
        }
        // Goertzel power at each frequency, scaled so a sine of amplitude a reads a²/2.
        let mut power = [0.0f64; 12];
        for (p, &coeff) in power.iter_mut().zip(&self.coeffs) {
            let (mut s1, mut s2) = (0.0, 0.0);
            for &x in &self.block {
                let s0 = x + coeff * s1 - s2;
                s2 = s1;
                s1 = s0;
            }
            *p = 2.0 * (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (n * n);
        }
        let strongest = |group: &[f64]| {
            let (best, &p) = group
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap_or((0, &0.0));
            let runner_up = group
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != best)
                .map(|(_, &q)| q)
                .fold(0.0, f64::max);
            (best, p, runner_up)
        };
        let (row, row_power, row_next) = strongest(&power[0..4]);
        let (column, column_power, column_next) = strongest(&power[4..8]);
        let c = &self.config;
        let db = |ratio: f64| 10.0 * ratio.max(1e-30).log10();
        let min_power = 10f64.powf(c.min_tone_dbfs / 10.0);
        let twist = db(column_power / row_power);
        let passes = row_power >= min_power
            && column_power >= min_power
            && twist <= c.max_normal_twist_db
            && -twist <= c.max_reverse_twist_db
            && db(row_power / row_next) >= c.min_group_margin_db
            && db(column_power / column_next) >= c.min_group_margin_db
            && (row_power + column_power) >= c.min_tone_share * mean_power
            && db(column_power / power[8 + column]) >= c.min_harmonic_margin_db;
        passes
            .then(|| DtmfDigit::from_position(row, column))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keypad_mapping() {
        assert_eq!(DtmfDigit::Five.frequencies(), (770.0, 1336.0));
        assert_eq!(DtmfDigit::Pound.frequencies(), (941.0, 1477.0));
        assert_eq!(DtmfDigit::D.frequencies(), (941.0, 1633.0));
        for d in DtmfDigit::ALL {
            assert_eq!(DtmfDigit::from_char(d.as_char()), Some(d));
            let (r, c) = d.position();
            assert_eq!(DtmfDigit::from_position(r, c), Some(d));
        }
        assert_eq!(DtmfDigit::from_char('x'), None);
        assert_eq!(DtmfDigit::from_char('b'), Some(DtmfDigit::B));
    }
}
