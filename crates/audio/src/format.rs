//! Audio encodings and formats: what a byte stream on the wire means.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How samples are encoded on the wire. Telephony audio is mono throughout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// 16-bit signed linear PCM, little-endian (Exotel, Vonage, most model APIs).
    Pcm16,
    /// G.711 mu-law, one byte per sample (Twilio, Smartflo, Plivo, North America).
    Mulaw,
    /// G.711 A-law, one byte per sample (Europe, India's E1 trunks).
    Alaw,
}

impl Encoding {
    /// Decodes `bytes` in this encoding to samples appended to `out`. A trailing odd
    /// byte of PCM16 (half a sample) is ignored: callers that stream keep their own
    /// carry (the `Transcoder` does).
    pub fn decode(self, bytes: &[u8], out: &mut Vec<i16>) {
        match self {
            Encoding::Mulaw => crate::g711::mulaw::decode(bytes, out),
            Encoding::Alaw => crate::g711::alaw::decode(bytes, out),
            Encoding::Pcm16 => {
                let whole = bytes.len() & !1;
                // A whole number of bytes cannot fail to decode.
                let _ = crate::pcm::decode_le(&bytes[..whole], out);
            }
        }
    }

    /// Encodes `samples` in this encoding, appended to `out`.
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        match self {
            Encoding::Mulaw => crate::g711::mulaw::encode(samples, out),
            Encoding::Alaw => crate::g711::alaw::encode(samples, out),
            Encoding::Pcm16 => crate::pcm::encode_le(samples, out),
        }
    }

    /// Bytes per sample: 2 for PCM16, 1 for G.711.
    pub const fn bytes_per_sample(self) -> usize {
        match self {
            Encoding::Pcm16 => 2,
            Encoding::Mulaw | Encoding::Alaw => 1,
        }
    }

    /// The byte that encodes silence, used to pad frames: 0x00 for PCM16, 0xFF for
    /// mu-law, 0xD5 for A-law.
    pub const fn silence_byte(self) -> u8 {
        match self {
            Encoding::Pcm16 => 0x00,
            Encoding::Mulaw => 0xFF,
            Encoding::Alaw => 0xD5,
        }
    }

    /// A short lowercase name: `pcm16`, `mulaw` or `alaw`.
    pub const fn name(self) -> &'static str {
        match self {
            Encoding::Pcm16 => "pcm16",
            Encoding::Mulaw => "mulaw",
            Encoding::Alaw => "alaw",
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not an encoding or format this crate knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown audio format {input:?}: expected <encoding>_<rate> such as ulaw_8000 or pcm_16000"
)]
pub struct ParseFormatError {
    /// The text that failed to parse.
    pub input: String,
}

impl FromStr for Encoding {
    type Err = ParseFormatError;

    /// Accepts the names providers use: `pcm16`, `pcm`, `linear16`, `s16le`, `l16`,
    /// `mulaw`, `ulaw`, `pcmu`, `alaw`, `pcma` (case-insensitive).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "pcm16" | "pcm" | "linear16" | "s16le" | "l16" => Ok(Encoding::Pcm16),
            "mulaw" | "ulaw" | "pcmu" | "mu-law" | "g711_ulaw" => Ok(Encoding::Mulaw),
            "alaw" | "pcma" | "a-law" | "g711_alaw" => Ok(Encoding::Alaw),
            _ => Err(ParseFormatError {
                input: s.to_owned(),
            }),
        }
    }
}

/// An encoding at a sample rate: enough to turn a byte count into a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AudioFormat {
    /// The sample encoding.
    pub encoding: Encoding,
    /// Samples per second.
    pub sample_rate: u32,
}

impl AudioFormat {
    /// 8 kHz mu-law: the North American phone line.
    pub const MULAW_8K: AudioFormat = AudioFormat::new(Encoding::Mulaw, 8000);
    /// 8 kHz A-law.
    pub const ALAW_8K: AudioFormat = AudioFormat::new(Encoding::Alaw, 8000);
    /// 8 kHz PCM16 (Exotel's default).
    pub const PCM16_8K: AudioFormat = AudioFormat::new(Encoding::Pcm16, 8000);
    /// 16 kHz PCM16 (most speech-to-text models).
    pub const PCM16_16K: AudioFormat = AudioFormat::new(Encoding::Pcm16, 16000);
    /// 24 kHz PCM16 (OpenAI and Gemini speech output).
    pub const PCM16_24K: AudioFormat = AudioFormat::new(Encoding::Pcm16, 24000);

    /// A format from its parts.
    pub const fn new(encoding: Encoding, sample_rate: u32) -> Self {
        Self {
            encoding,
            sample_rate,
        }
    }

    /// Bytes per sample of the encoding.
    pub const fn bytes_per_sample(self) -> usize {
        self.encoding.bytes_per_sample()
    }

    /// Bytes per second of audio.
    pub const fn bytes_per_second(self) -> usize {
        self.sample_rate as usize * self.bytes_per_sample()
    }

    /// Bytes per millisecond; fractional for rates such as 22.05 kHz.
    pub fn bytes_per_ms(self) -> f64 {
        self.bytes_per_second() as f64 / 1000.0
    }

    /// Whole samples in `duration`, rounded down.
    pub fn samples_in(self, duration: Duration) -> usize {
        (duration.as_nanos() * u128::from(self.sample_rate) / 1_000_000_000) as usize
    }

    /// Bytes holding `duration` of audio, rounded down to whole samples.
    pub fn bytes_in(self, duration: Duration) -> usize {
        self.samples_in(duration) * self.bytes_per_sample()
    }

    /// Bytes in one frame of `frame_ms` milliseconds: 160 for 20 ms of 8 kHz mu-law,
    /// 320 for 20 ms of 8 kHz PCM16.
    pub fn frame_bytes(self, frame_ms: u32) -> usize {
        self.bytes_in(Duration::from_millis(u64::from(frame_ms)))
    }

    /// The duration of `bytes` of audio (a trailing partial sample counts for nothing).
    pub fn duration_of(self, bytes: usize) -> Duration {
        self.duration_of_samples(bytes / self.bytes_per_sample())
    }

    /// The duration of `samples` samples.
    pub fn duration_of_samples(self, samples: usize) -> Duration {
        if self.sample_rate == 0 {
            return Duration::ZERO;
        }
        let nanos = samples as u128 * 1_000_000_000 / u128::from(self.sample_rate);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl fmt::Display for AudioFormat {
    /// `mulaw_8000`, `pcm16_16000`: the same form [`FromStr`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.encoding, self.sample_rate)
    }
}

impl FromStr for AudioFormat {
    type Err = ParseFormatError;

    /// Reads `<encoding>_<rate>` or `<encoding>/<rate>`, as in ElevenLabs' `ulaw_8000`
    /// and `pcm_16000`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseFormatError {
            input: s.to_owned(),
        };
        let (encoding, rate) = s.rsplit_once(['_', '/']).ok_or_else(err)?;
        let sample_rate: u32 = rate.parse().map_err(|_| err())?;
        if sample_rate == 0 {
            return Err(err());
        }
        Ok(AudioFormat::new(
            encoding.parse().map_err(|_| err())?,
            sample_rate,
        ))
    }
}

#[cfg(feature = "serde")]
mod serde_impls {
    use super::{AudioFormat, Encoding};

    macro_rules! via_string {
        ($ty:ty) => {
            impl serde::Serialize for $ty {
                fn serialize<S: serde::Serializer>(
                    &self,
                    serializer: S,
                ) -> Result<S::Ok, S::Error> {
                    serializer.collect_str(self)
                }
            }

            impl<'de> serde::Deserialize<'de> for $ty {
                fn deserialize<D: serde::Deserializer<'de>>(
                    deserializer: D,
                ) -> Result<Self, D::Error> {
                    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                    text.parse().map_err(serde::de::Error::custom)
                }
            }
        };
    }

    via_string!(Encoding);
    via_string!(AudioFormat);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_encoding_round_trips_and_pcm_drops_a_half_sample() {
        let samples = [0i16, 1000, -1000, i16::MAX, i16::MIN];
        for encoding in [Encoding::Pcm16, Encoding::Mulaw, Encoding::Alaw] {
            let mut bytes = Vec::new();
            encoding.encode(&samples, &mut bytes);
            assert_eq!(bytes.len(), samples.len() * encoding.bytes_per_sample());
            let mut back = Vec::new();
            encoding.decode(&bytes, &mut back);
            assert_eq!(back.len(), samples.len(), "{encoding:?}");
            if encoding == Encoding::Pcm16 {
                assert_eq!(back, samples);
            }
        }
        let mut out = Vec::new();
        Encoding::Pcm16.decode(&[0x01, 0x02, 0x03], &mut out);
        assert_eq!(out, [0x0201]);
    }

    #[test]
    fn frame_sizes_match_the_carriers() {
        assert_eq!(AudioFormat::MULAW_8K.frame_bytes(20), 160);
        assert_eq!(AudioFormat::PCM16_8K.frame_bytes(20), 320);
        assert_eq!(AudioFormat::PCM16_8K.frame_bytes(100), 1600);
        assert_eq!(AudioFormat::PCM16_16K.frame_bytes(20), 640);
        assert_eq!(AudioFormat::PCM16_24K.bytes_per_ms(), 48.0);
        assert_eq!(
            AudioFormat::new(Encoding::Pcm16, 22050).bytes_per_ms(),
            44.1
        );
    }

    #[test]
    fn durations_round_trip() {
        let f = AudioFormat::PCM16_8K;
        assert_eq!(f.duration_of(320), Duration::from_millis(20));
        assert_eq!(f.duration_of(321), Duration::from_millis(20));
        assert_eq!(f.bytes_in(Duration::from_millis(20)), 320);
        let cd = AudioFormat::new(Encoding::Pcm16, 44100);
        assert_eq!(cd.samples_in(Duration::from_secs(1)), 44100);
        assert_eq!(
            AudioFormat::new(Encoding::Mulaw, 0).duration_of(10),
            Duration::ZERO
        );
    }

    #[test]
    fn parses_provider_names() {
        assert_eq!("ulaw_8000".parse(), Ok(AudioFormat::MULAW_8K));
        assert_eq!("pcm_16000".parse(), Ok(AudioFormat::PCM16_16K));
        assert_eq!("PCM16/24000".parse(), Ok(AudioFormat::PCM16_24K));
        assert_eq!("alaw_8000".parse(), Ok(AudioFormat::ALAW_8K));
        assert_eq!(AudioFormat::MULAW_8K.to_string(), "mulaw_8000");
        assert!("opus_48000".parse::<AudioFormat>().is_err());
        assert!("ulaw".parse::<AudioFormat>().is_err());
        assert!("ulaw_0".parse::<AudioFormat>().is_err());
    }
}
