//! What to call and how: [`CallOptions`], and the caller's [`Audio`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use voxline_audio::tone::ToneGenerator;
use voxline_audio::{Encoding, Resampler, wav};

use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;

/// Mono PCM16 audio at a sample rate: what the caller says. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    samples: Arc<[i16]>,
    sample_rate: u32,
}

impl Audio {
    /// Audio from samples at `sample_rate`.
    pub fn from_samples(samples: impl Into<Arc<[i16]>>, sample_rate: u32) -> Self {
        Self {
            samples: samples.into(),
            sample_rate,
        }
    }

    /// Reads a mono WAV file (PCM16, mu-law or A-law).
    ///
    /// # Errors
    /// [`CallsimError::Audio`] when the file cannot be read.
    pub fn from_wav(path: impl AsRef<Path>) -> Result<Self, CallsimError> {
        let audio = wav::read(path)?;
        Ok(Self::from_samples(
            audio.to_pcm16(),
            audio.format.sample_rate,
        ))
    }

    /// `duration` of digital silence.
    pub fn silence(duration: Duration, sample_rate: u32) -> Self {
        Self::from_samples(vec![0i16; samples_in(duration, sample_rate)], sample_rate)
    }

    /// A sine tone of `freq` Hz at `dbfs` (peak level, e.g. -10.0).
    pub fn tone(freq: f64, duration: Duration, sample_rate: u32, dbfs: f64) -> Self {
        let amplitude = 10f64.powf(dbfs / 20.0).clamp(0.0, 1.0);
        let samples = ToneGenerator::sine(sample_rate, freq, amplitude)
            .generate(samples_in(duration, sample_rate));
        Self::from_samples(samples, sample_rate)
    }

    /// The part from `from` to `to` (to the end when `None`), clamped to the audio.
    pub fn slice(&self, from: Duration, to: Option<Duration>) -> Self {
        let len = self.samples.len();
        let a = samples_in(from, self.sample_rate).min(len);
        let b = to
            .map_or(len, |t| samples_in(t, self.sample_rate).min(len))
            .max(a);
        Self::from_samples(&self.samples[a..b], self.sample_rate)
    }

    /// The samples.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Samples per second.
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// How long it lasts.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(
            (self.samples.len() as u128 * 1_000_000_000 / u128::from(self.sample_rate.max(1)))
                as u64,
        )
    }

    /// The samples at `rate`, resampled if needed.
    pub(crate) fn at_rate(&self, rate: u32) -> Result<Vec<i16>, CallsimError> {
        if rate == self.sample_rate {
            return Ok(self.samples.to_vec());
        }
        let mut resampler = Resampler::new(self.sample_rate, rate)?;
        let mut out = Vec::with_capacity(resampler.max_output_len(self.samples.len()) + 64);
        resampler.process(&self.samples, &mut out);
        resampler.flush(&mut out);
        Ok(out)
    }
}

pub(crate) fn samples_in(duration: Duration, rate: u32) -> usize {
    (duration.as_nanos() * u128::from(rate) / 1_000_000_000) as usize
}

/// The voice activity detector used to find the caller's turns in the audio sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TurnVad {
    /// WebRTC's detector (libfvad), for speech.
    #[default]
    WebRtc,
    /// Level over the noise floor: exact on clean lines, and the one to use when the
    /// caller "speaks" synthetic signals such as tones.
    Energy,
}

/// Everything about one simulated call.
///
/// Build with [`CallOptions::new`] and the builder methods; the fields are public for
/// reading and adjusting.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallOptions {
    /// `ws://` or `wss://` URL of the server. Exotel reads `?sample-rate=` from it;
    /// Twilio drops the query string, as the real Twilio does. `user:password@` in the
    /// URL becomes an `Authorization: Basic` header, as Exotel sends it.
    pub url: String,
    /// The carrier to be.
    pub dialect: Dialect,
    /// Per-call parameters, delivered as the carrier delivers them: Exotel
    /// `custom_parameters`, Smartflo and Twilio `customParameters`, Plivo
    /// `extra_headers` (`k=v;k=v`), Vonage headers flattened into `websocket:connected`,
    /// Telnyx `custom_parameters` in `start` (an unverified shape). `from` and `to` fill
    /// the dialect's own fields where it has them (Exotel, Smartflo, Telnyx), as do
    /// Smartflo's `direction` and Telnyx's `client_state`.
    pub params: Vec<(String, String)>,
    /// The line's sample rate (Exotel 8000/16000/24000, Plivo L16 8000/16000, Vonage
    /// 16000/8000); `None` for the dialect's default.
    pub sample_rate: Option<u32>,
    /// The line's encoding (Plivo: `Pcm16` for L16, `Mulaw`); `None` for the default.
    pub encoding: Option<Encoding>,
    /// What the caller says; `None` for silence only.
    pub audio: Option<Audio>,
    /// How long to keep the line open after the script, for the bot to finish.
    pub tail: Duration,
    /// Limit for TCP connect plus WebSocket upgrade.
    pub connect_timeout: Duration,
    /// How long to wait for the server's close after hanging up.
    pub close_timeout: Duration,
    /// Silence that ends a caller turn for latency measurement.
    pub turn_stop: Duration,
    /// The detector that finds the caller's turns.
    pub turn_vad: TurnVad,
    /// A silence between two pieces of bot audio longer than this is a pause between
    /// replies, not an underrun.
    pub gap_limit: Duration,
}

impl CallOptions {
    /// A call to `url` in `dialect` with no audio, a 3 s tail and default limits.
    pub fn new(url: impl Into<String>, dialect: Dialect) -> Self {
        Self {
            url: url.into(),
            dialect,
            params: Vec::new(),
            sample_rate: None,
            encoding: None,
            audio: None,
            tail: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(2),
            turn_stop: Duration::from_millis(300),
            turn_vad: TurnVad::WebRtc,
            gap_limit: Duration::from_secs(1),
        }
    }

    /// Adds a per-call parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((key.into(), value.into()));
        self
    }

    /// Sets the line's sample rate.
    pub fn sample_rate(mut self, rate: u32) -> Self {
        self.sample_rate = Some(rate);
        self
    }

    /// Sets the line's encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// Sets what the caller says.
    pub fn audio(mut self, audio: Audio) -> Self {
        self.audio = Some(audio);
        self
    }

    /// Sets the tail after the script.
    pub fn tail(mut self, tail: Duration) -> Self {
        self.tail = tail;
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets the silence that ends a caller turn.
    pub fn turn_stop(mut self, stop: Duration) -> Self {
        self.turn_stop = stop;
        self
    }

    /// Sets the detector that finds caller turns.
    pub fn turn_vad(mut self, vad: TurnVad) -> Self {
        self.turn_vad = vad;
        self
    }

    /// Sets the longest silence still counted as an underrun.
    pub fn gap_limit(mut self, limit: Duration) -> Self {
        self.gap_limit = limit;
        self
    }
}
