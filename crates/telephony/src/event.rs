//! The one event model every dialect translates to and from.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use voxline_audio::AudioFormat;

/// A carrier's WebSocket media protocol, or Voxline's own protocol for browser and
/// app clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
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
    /// Voxline's own JSON protocol for browser and app clients (`/ws/flexible`):
    /// audio, text messages and mode changes in; audio, transcripts and modes out.
    Voxline,
}

impl Dialect {
    /// Every dialect.
    pub const ALL: [Dialect; 7] = [
        Dialect::Exotel,
        Dialect::Smartflo,
        Dialect::Twilio,
        Dialect::Plivo,
        Dialect::Telnyx,
        Dialect::Vonage,
        Dialect::Voxline,
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
            Dialect::Voxline => "voxline",
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
#[error(
    "unknown dialect {0:?}: expected one of exotel, smartflo, twilio, plivo, telnyx, vonage, voxline"
)]
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
    /// A binary frame (Vonage audio; Voxline client audio).
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
    /// Vonage, which puts no id on the socket, and a Voxline client that gives none,
    /// the id given in the session config.
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
    /// `custom_parameters`, Vonage NCCO headers; Voxline: the URL query's pairs, then
    /// the start's `custom`, then its `modes` as booleans.
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

/// Which input and output channels a Voxline client wants changed: `None` leaves a
/// channel as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ModeChange {
    /// The client will (or will no longer) send audio.
    pub voice_input: Option<bool>,
    /// The client will (or will no longer) send text messages.
    pub text_input: Option<bool>,
    /// The client wants (or no longer wants) the bot's audio.
    pub voice_output: Option<bool>,
    /// The client wants (or no longer wants) transcripts and the bot's text.
    pub text_output: Option<bool>,
}

/// The input and output channels in force on a Voxline connection, as the server
/// acknowledges them. The default is every channel on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Modes {
    /// The server listens to the client's audio.
    pub voice_input: bool,
    /// The server reads the client's text messages.
    pub text_input: bool,
    /// The server sends the bot's audio.
    pub voice_output: bool,
    /// The server sends transcripts and the bot's text.
    pub text_output: bool,
}

impl Default for Modes {
    fn default() -> Self {
        Self {
            voice_input: true,
            text_input: true,
            voice_output: true,
            text_output: true,
        }
    }
}

impl Modes {
    /// Voice only, as on a phone line.
    pub const PHONE: Self = Self {
        voice_input: true,
        text_input: false,
        voice_output: true,
        text_output: false,
    };

    /// Modes from a call's custom parameters (`voice_input`, `text_input`,
    /// `voice_output`, `text_output`, as booleans or `"true"`/`"false"`/`"1"`/`"0"`),
    /// over `self` for the fields not given.
    pub fn from_params(self, params: &serde_json::Map<String, serde_json::Value>) -> Self {
        let get = |key: &str| match params.get(key)? {
            serde_json::Value::Bool(b) => Some(*b),
            serde_json::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            },
            serde_json::Value::Number(n) => n.as_u64().map(|n| n != 0),
            _ => None,
        };
        self.apply(ModeChange {
            voice_input: get("voice_input"),
            text_input: get("text_input"),
            voice_output: get("voice_output"),
            text_output: get("text_output"),
        })
    }

    /// These modes with the fields `change` sets replaced.
    pub fn apply(self, change: ModeChange) -> Self {
        Self {
            voice_input: change.voice_input.unwrap_or(self.voice_input),
            text_input: change.text_input.unwrap_or(self.text_input),
            voice_output: change.voice_output.unwrap_or(self.voice_output),
            text_output: change.text_output.unwrap_or(self.text_output),
        }
    }
}

/// Who said the words of a [`BotCommand::Text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum TextRole {
    /// The caller (a transcript of their speech); `"user"` on the wire.
    Caller,
    /// The bot (the words it speaks or writes); `"bot"` on the wire.
    Bot,
}

/// Something the carrier told us.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
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
    /// A text message typed by the caller (Voxline `text_message`).
    Text {
        /// What they wrote.
        text: String,
    },
    /// The caller switched input or output channels (Voxline `mode_change`).
    ModeChange(ModeChange),
}

/// Something the bot tells the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
    /// Words for a client that shows text (Voxline `transcript`): the caller's
    /// transcripts and the bot's replies. Only [`crate::Session::supports_text`]
    /// dialects carry it.
    Text {
        /// Whose words.
        role: TextRole,
        /// The words.
        text: String,
        /// Whether this is the final version (`false` for an interim transcript).
        is_final: bool,
    },
    /// Acknowledges the input and output channels in force (Voxline `modes`). Only
    /// [`crate::Session::supports_text`] dialects carry it.
    Modes(Modes),
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
