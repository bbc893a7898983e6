//! The one event model every dialect translates to and from.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use voxline_audio::AudioFormat;

/// A carrier's WebSocket media protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Exotel AgentStream Voicebot applet: PCM16 8/16/24 kHz, snake_case JSON.
    Exotel,
    /// Tata Tele Smartflo bi-directional streaming: mu-law 8 kHz, camelCase JSON.
    Smartflo,
    /// Twilio Media Streams: mu-law 8 kHz, camelCase JSON.
    Twilio,
    /// Plivo AudioStream: L16 8/16 kHz or mu-law 8 kHz, `playAudio`/`checkpoint`.
    Plivo,
    /// Telnyx media streaming: snake_case JSON, the call's codec.
    Telnyx,
    /// Vonage Voice API WebSockets: binary 20 ms L16 frames plus JSON text events.
    Vonage,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 6] = [
        Dialect::Exotel,
        Dialect::Smartflo,
        Dialect::Twilio,
        Dialect::Plivo,
        Dialect::Telnyx,
        Dialect::Vonage,
    ];

    /// The lowercase name used in configuration, URLs and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Dialect::Exotel => "exotel",
            Dialect::Smartflo => "smartflo",
            Dialect::Twilio => "twilio",
            Dialect::Plivo => "plivo",
            Dialect::Telnyx => "telnyx",
            Dialect::Vonage => "vonage",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dialect {0:?}: expected one of exotel, smartflo, twilio, plivo, telnyx, vonage")]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownDialect(s.to_owned()))
    }
}

/// One WebSocket message, as a dialect reads or writes it. The server maps these to
/// and from its WebSocket library's message type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsFrame {
    /// A text frame (JSON in every dialect).
    Text(String),
    /// A binary frame (Vonage audio).
    Binary(Bytes),
    /// Close the socket: how a dialect without a hang-up message ends the call.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// What the call is, from the carrier's `start` (or first) message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallInfo {
    /// The dialect the call speaks.
    pub dialect: Dialect,
    /// The carrier's call id (`call_sid`, `callSid`, `callId`, `call_control_id`); for
    /// Vonage, which puts no id on the socket, the id given in the session config.
    pub call_id: String,
    /// The media stream's id, which outbound messages must carry in most dialects.
    pub stream_id: Option<String>,
    /// Calling number, when the carrier says.
    pub from: Option<String>,
    /// Called number, when the carrier says.
    pub to: Option<String>,
    /// The carrier account (`account_sid`, `accountId`, ...).
    pub account: Option<String>,
    /// Call direction, when the carrier says (`inbound`, `outbound`, ...).
    pub direction: Option<String>,
    /// Custom parameters: Exotel `custom_parameters`, Twilio `customParameters`,
    /// Plivo `extra_headers` (split into pairs), Telnyx `client_state` and
    /// `custom_parameters`, Vonage NCCO headers.
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// The audio format of media in both directions.
    pub format: AudioFormat,
}

/// A piece of caller audio.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioChunk {
    /// Raw audio in the call's [`CallInfo::format`] (base64 already decoded).
    pub payload: Bytes,
    /// The message's sequence number, when the dialect numbers messages.
    pub sequence: Option<u64>,
    /// The media chunk index, when given.
    pub chunk: Option<u64>,
    /// The media timestamp in ms, when given.
    pub timestamp_ms: Option<u64>,
}

/// A key press reported by the carrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Dtmf {
    /// `0`-`9`, `*`, `#`, `A`-`D`.
    pub digit: char,
    /// How long it was held, when the carrier says.
    pub duration_ms: Option<u64>,
}

/// Why the stream ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Stop {
    /// The carrier's reason, when given (`callended`, `stopped`, ...).
    pub reason: Option<String>,
}

/// Something the carrier told us.
#[derive(Debug, Clone, PartialEq)]
pub enum CallEvent {
    /// The socket is up (`connected`, `websocket:connected` before its start data).
    Connected,
    /// The call's metadata; media follows.
    Start(CallInfo),
    /// Caller audio.
    Media(AudioChunk),
    /// A key press.
    Dtmf(Dtmf),
    /// A mark we sent has played (or was flushed by `clear`).
    Mark {
        /// The name we gave it.
        name: String,
    },
    /// The peer asked us to drop queued audio (sent by some test clients).
    Clear,
    /// The carrier confirms our `clear` (Plivo `clearedAudio`, Vonage
    /// `websocket:cleared`).
    Cleared,
    /// The stream ended.
    Stop(Stop),
    /// The carrier reported an error on the stream (Telnyx `error`).
    CarrierError {
        /// The carrier's code.
        code: Option<String>,
        /// What it said.
        message: String,
    },
}

/// Something the bot tells the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BotCommand {
    /// Play audio in the call's format. Must be a whole number of the dialect's
    /// outbound units ([`crate::Session::outbound_frame_size`]); the server's playout
    /// rechunks and paces before encoding.
    Play(Bytes),
    /// Ask to be told when the audio sent so far has played.
    Mark(String),
    /// Drop audio queued at the carrier (barge-in).
    Clear,
    /// End the call, where the dialect can do it on the socket.
    Hangup,
    /// Transfer the call, where the dialect can do it on the socket.
    Transfer {
        /// Where to.
        to: String,
    },
}

/// What decoding one frame gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A call event.
    Event(CallEvent),
    /// A well-formed message with nothing to act on: an unknown event type (named
    /// here so the caller can log it) or one that carries nothing new.
    Ignored {
        /// The message's event name.
        event: String,
    },
}
