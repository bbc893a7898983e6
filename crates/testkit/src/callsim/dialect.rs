//! The six carrier dialects, Voxline's own browser/app protocol, and the facts about
//! each that shape a call.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use voxline_audio::{AudioFormat, Encoding};

use crate::callsim::error::CallsimError;

/// A telephony carrier whose WebSocket media protocol `callsim` speaks, or Voxline's
/// own protocol for browser and app clients.
///
/// Parsed from (and displayed as) its lowercase name: `exotel`, `smartflo`, `twilio`,
/// `plivo`, `telnyx`, `vonage`, `voxline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Exotel AgentStream (Voicebot applet): snake_case JSON, PCM16 at 8, 16 or 24 kHz
    /// (chosen by `?sample-rate=` on the URL), 100 ms frames.
    Exotel,
    /// Tata Tele Smartflo bi-directional streaming: camelCase JSON, 8 kHz mu-law, 100 ms
    /// frames.
    Smartflo,
    /// Twilio Media Streams: camelCase JSON, 8 kHz mu-law, 20 ms frames, strings for
    /// counters.
    Twilio,
    /// Plivo AudioStream: `start` first (no `connected`), numbers for counters,
    /// `playAudio`/`checkpoint`/`clearAudio` back; mu-law 8 kHz or L16 8/16 kHz.
    Plivo,
    /// Telnyx media streaming: snake_case JSON, top-level `stream_id`, PCMU, 20 ms frames.
    Telnyx,
    /// Vonage Voice API WebSockets: binary L16 frames of exactly 20 ms (16 or 8 kHz) and
    /// `websocket:*` text events.
    Vonage,
    /// Voxline's own JSON protocol for browser and app clients (`/ws/flexible`): a flat
    /// `start` with modes and custom data, PCM16 16 kHz (or 8/24/48 kHz, or mu-law)
    /// base64 audio in 20 ms frames, text messages and mode changes; transcripts and
    /// mode acknowledgements back.
    Voxline,
}

impl Dialect {
    /// Every dialect: the carriers in the order of the spec, then Voxline.
    pub const ALL: [Dialect; 7] = [
        Dialect::Exotel,
        Dialect::Smartflo,
        Dialect::Twilio,
        Dialect::Plivo,
        Dialect::Telnyx,
        Dialect::Vonage,
        Dialect::Voxline,
    ];

    /// The lowercase name, as [`FromStr`] reads it.
    pub const fn name(self) -> &'static str {
        match self {
            Dialect::Exotel => "exotel",
            Dialect::Smartflo => "smartflo",
            Dialect::Twilio => "twilio",
            Dialect::Plivo => "plivo",
            Dialect::Telnyx => "telnyx",
            Dialect::Vonage => "vonage",
            Dialect::Voxline => "voxline",
        }
    }

    /// Whether the dialect carries text both ways (Voxline's `text_message` and
    /// `mode_change` from the caller, `transcript` and `modes` from the bot).
    pub const fn has_text_channel(self) -> bool {
        matches!(self, Dialect::Voxline)
    }

    /// How much caller audio one media frame carries: 100 ms for Exotel and Smartflo,
    /// 20 ms for the others.
    pub const fn frame(self) -> Duration {
        match self {
            Dialect::Exotel | Dialect::Smartflo => Duration::from_millis(100),
            _ => Duration::from_millis(20),
        }
    }

    /// The line format when the options name none: PCM16 8 kHz for Exotel, PCM16
    /// 16 kHz for Vonage and Voxline, 8 kHz mu-law for the others.
    pub const fn default_format(self) -> AudioFormat {
        match self {
            Dialect::Exotel => AudioFormat::PCM16_8K,
            Dialect::Vonage | Dialect::Voxline => AudioFormat::PCM16_16K,
            _ => AudioFormat::MULAW_8K,
        }
    }

    /// Whether the carrier ends its side of the stream with a `stop` event before
    /// closing (Plivo and Vonage just close the socket).
    pub const fn sends_stop(self) -> bool {
        !matches!(self, Dialect::Plivo | Dialect::Vonage)
    }

    /// Whether a `clear` makes the carrier echo every mark still waiting for its audio
    /// to play. Twilio documents it and Smartflo reportedly copies it; Exotel and Telnyx
    /// are modelled on Twilio and are assumed to do the same, and Voxline's protocol
    /// asks its clients to. Plivo emits
    /// `playedStream` only when the audio before the checkpoint played, so cleared
    /// checkpoints are dropped, and Vonage's `notify` is treated alike.
    pub const fn echoes_marks_on_clear(self) -> bool {
        !matches!(self, Dialect::Plivo | Dialect::Vonage)
    }

    /// The format the call's audio travels in, from the options' encoding and rate.
    ///
    /// # Errors
    /// [`CallsimError::InvalidOptions`] for a combination the carrier does not offer:
    /// Exotel PCM16 at 8, 16 or 24 kHz; Smartflo, Twilio and Telnyx 8 kHz mu-law;
    /// Plivo 8 kHz mu-law or L16 at 8 or 16 kHz; Vonage L16 at 8 or 16 kHz; Voxline
    /// PCM16 at 8, 16, 24 or 48 kHz or 8 kHz mu-law.
    pub fn line_format(
        self,
        encoding: Option<Encoding>,
        sample_rate: Option<u32>,
    ) -> Result<AudioFormat, CallsimError> {
        let default = self.default_format();
        let encoding = encoding.unwrap_or(match (self, sample_rate) {
            // Plivo's L16 is the only way to get a rate other than 8 kHz.
            (Dialect::Plivo, Some(rate)) if rate != 8000 => Encoding::Pcm16,
            _ => default.encoding,
        });
        let rate = sample_rate.unwrap_or(match encoding {
            Encoding::Pcm16 if self == Dialect::Plivo => 8000,
            Encoding::Mulaw | Encoding::Alaw => 8000,
            _ => default.sample_rate,
        });
        let allowed: &[(Encoding, u32)] = match self {
            Dialect::Exotel => &[
                (Encoding::Pcm16, 8000),
                (Encoding::Pcm16, 16000),
                (Encoding::Pcm16, 24000),
            ],
            Dialect::Smartflo | Dialect::Twilio | Dialect::Telnyx => &[(Encoding::Mulaw, 8000)],
            Dialect::Plivo => &[
                (Encoding::Mulaw, 8000),
                (Encoding::Pcm16, 8000),
                (Encoding::Pcm16, 16000),
            ],
            Dialect::Vonage => &[(Encoding::Pcm16, 16000), (Encoding::Pcm16, 8000)],
            Dialect::Voxline => &[
                (Encoding::Pcm16, 16000),
                (Encoding::Pcm16, 8000),
                (Encoding::Pcm16, 24000),
                (Encoding::Pcm16, 48000),
                (Encoding::Mulaw, 8000),
            ],
        };
        if allowed.contains(&(encoding, rate)) {
            Ok(AudioFormat::new(encoding, rate))
        } else {
            let list: Vec<String> = allowed
                .iter()
                .map(|(e, r)| AudioFormat::new(*e, *r).to_string())
                .collect();
            Err(CallsimError::InvalidOptions {
                field: "encoding/sample_rate",
                reason: format!(
                    "{self} streams {}, not {}",
                    list.join(" or "),
                    AudioFormat::new(encoding, rate)
                ),
            })
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not one of the dialects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown dialect {input:?}: expected exotel, smartflo, twilio, plivo, telnyx, vonage or voxline"
)]
pub struct ParseDialectError {
    /// The text that failed to parse.
    pub input: String,
}

impl FromStr for Dialect {
    type Err = ParseDialectError;

    /// Reads the lowercase name (case is ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Dialect::ALL
            .into_iter()
            .find(|d| d.name() == lower)
            .ok_or_else(|| ParseDialectError {
                input: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Dialect::ALL {
            assert_eq!(d.name().parse::<Dialect>(), Ok(d));
            assert_eq!(d.to_string(), d.name());
        }
        assert_eq!("Twilio".parse::<Dialect>(), Ok(Dialect::Twilio));
        assert!("tata".parse::<Dialect>().is_err());
    }

    #[test]
    fn line_formats_follow_the_carriers() {
        assert_eq!(
            Dialect::Exotel.line_format(None, Some(16000)).ok(),
            Some(AudioFormat::PCM16_16K)
        );
        assert!(Dialect::Exotel.line_format(None, Some(11025)).is_err());
        assert!(
            Dialect::Twilio
                .line_format(Some(Encoding::Pcm16), None)
                .is_err()
        );
        assert_eq!(
            Dialect::Plivo.line_format(None, Some(16000)).ok(),
            Some(AudioFormat::PCM16_16K)
        );
        assert_eq!(
            Dialect::Plivo.line_format(Some(Encoding::Pcm16), None).ok(),
            Some(AudioFormat::PCM16_8K)
        );
        assert_eq!(
            Dialect::Vonage.line_format(None, None).ok(),
            Some(AudioFormat::PCM16_16K)
        );
        assert_eq!(
            Dialect::Vonage.line_format(None, Some(8000)).ok(),
            Some(AudioFormat::PCM16_8K)
        );
        assert_eq!(
            Dialect::Voxline.line_format(None, None).ok(),
            Some(AudioFormat::PCM16_16K)
        );
        assert_eq!(
            Dialect::Voxline.line_format(None, Some(48000)).ok(),
            Some(AudioFormat::new(Encoding::Pcm16, 48000))
        );
        assert_eq!(
            Dialect::Voxline
                .line_format(Some(Encoding::Mulaw), None)
                .ok(),
            Some(AudioFormat::MULAW_8K)
        );
        assert!(Dialect::Voxline.line_format(None, Some(11025)).is_err());
        assert!(
            Dialect::Voxline
                .line_format(Some(Encoding::Alaw), None)
                .is_err()
        );
    }
}
