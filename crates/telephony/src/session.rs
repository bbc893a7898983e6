//! The per-call codec: decodes the carrier's frames, encodes the bot's commands.

use voxline_audio::{AudioFormat, FrameSize};

use crate::dialect::{self, plivo, streams, telnyx, vonage, voxline};
use crate::encode::Outbound;
use crate::error::{DecodeError, EncodeError};
use crate::event::{BotCommand, CallEvent, CallInfo, Decoded, Dialect, WsFrame};
use crate::wire::{self, Ctx, Envelope, Obj, View};

/// What a [`Session`] needs to know before the first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The dialect (detected or configured).
    pub dialect: Dialect,
    /// The sample rate the connection URL asked for, if any (Exotel's
    /// `?sample-rate=16000`, also spelled `sample_rate`; see
    /// [`crate::detect::url_sample_rate`]). Values other than 8000, 16000 and 24000
    /// are ignored.
    pub url_sample_rate: Option<u32>,
    /// The call id to report when the dialect puts none on the socket (Vonage, or a
    /// Voxline client whose `start` has no `call_id`): the server's connection id.
    pub fallback_call_id: String,
    /// The connection URL's query string, without the `?` (Voxline puts its
    /// percent-decoded pairs in [`CallInfo::custom`]; other dialects ignore it).
    pub url_query: Option<String>,
}

impl SessionConfig {
    /// A config for `dialect` with no URL sample rate or query: the way to build one
    /// that keeps compiling when fields are added.
    pub fn new(dialect: Dialect, fallback_call_id: impl Into<String>) -> Self {
        Self {
            dialect,
            url_sample_rate: None,
            fallback_call_id: fallback_call_id.into(),
            url_query: None,
        }
    }

    /// Sets the sample rate the connection URL asked for.
    pub fn with_url_sample_rate(mut self, rate: Option<u32>) -> Self {
        self.url_sample_rate = rate;
        self
    }

    /// Sets the connection URL's query string.
    pub fn with_url_query(mut self, query: Option<impl Into<String>>) -> Self {
        self.url_query = query.map(Into::into);
        self
    }
}

/// One call's codec state: the dialect, the call's info once `start` arrived, and the
/// counters outbound messages carry.
///
/// Decoding is tolerant where carriers vary (numbers as strings or integers, Exotel's
/// snake_case or camelCase keys) and strict where a mistake would be silent (missing
/// stream id on outbound, wrong chunk size). Unknown event types decode to
/// [`Decoded::Ignored`] so the caller can log them and go on.
///
/// ```
/// use voxline_telephony::{BotCommand, CallEvent, Decoded, Dialect, Session, SessionConfig, WsFrame};
///
/// let mut session = Session::new(SessionConfig::new(Dialect::Twilio, "conn-1"));
/// let start = r#"{"event":"start","sequenceNumber":"1","streamSid":"MZ1",
///     "start":{"streamSid":"MZ1","callSid":"CA1","accountSid":"AC1","tracks":["inbound"],
///              "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}}"#;
/// let Decoded::Event(CallEvent::Start(info)) = session.decode(&WsFrame::Text(start.into()))? else {
///     panic!("a start")
/// };
/// assert_eq!(info.call_id, "CA1");
///
/// let mut out = Vec::new();
/// session.encode(&BotCommand::Clear, &mut out)?;
/// assert_eq!(out, [WsFrame::Text(r#"{"event":"clear","streamSid":"MZ1"}"#.into())]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    info: Option<CallInfo>,
    /// Outbound media messages sent (Smartflo numbers them).
    chunks_sent: u64,
    /// Reused for byte-swapped outbound audio (Telnyx L16).
    scratch: Vec<u8>,
}

impl Session {
    /// A session for a new connection.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            info: None,
            chunks_sent: 0,
            scratch: Vec::new(),
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    /// The call's info, once its `start` has been decoded (for Vonage, its
    /// `websocket:connected`).
    pub fn info(&self) -> Option<&CallInfo> {
        self.info.as_ref()
    }

    /// The audio format of media in both directions: from `start` when it said, else
    /// the dialect's default (Exotel: PCM16 at the URL's rate or 8 kHz; Smartflo,
    /// Twilio, Plivo, Telnyx: mu-law 8 kHz; Vonage and Voxline: PCM16 16 kHz).
    pub fn format(&self) -> AudioFormat {
        if let Some(info) = &self.info {
            return info.format;
        }
        match self.config.dialect {
            Dialect::Exotel => streams::exotel_default_format(&self.config),
            Dialect::Vonage => vonage::DEFAULT_FORMAT,
            Dialect::Voxline => voxline::DEFAULT_FORMAT,
            Dialect::Smartflo | Dialect::Twilio | Dialect::Plivo | Dialect::Telnyx => {
                AudioFormat::MULAW_8K
            }
        }
    }

    /// Whether the dialect carries [`BotCommand::Text`] and [`BotCommand::Modes`]
    /// (Voxline only): a handler checks this to skip them on phone calls instead of
    /// getting [`EncodeError::Unsupported`].
    pub fn supports_text(&self) -> bool {
        self.config.dialect == Dialect::Voxline
    }

    /// Frames to send as soon as the socket is up, before anything arrives (none for
    /// every dialect today; Smartflo integrators report sending `connected` first helps).
    pub fn opening_frames(&self) -> Vec<WsFrame> {
        Vec::new()
    }

    /// The frames [`BotCommand::Play`] accepts: a unit every payload must be a multiple
    /// of, and the frame size playout should use (Exotel: multiples of 320 bytes,
    /// 100 ms frames; Smartflo: multiples of 160, 20 ms; Vonage: exactly 20 ms; others
    /// 20 ms of the call's format).
    ///
    /// In detail, for the call's format: Exotel 20 ms units in 100 ms frames; Smartflo
    /// exactly 160 bytes; Twilio any byte count, 160-byte frames; Plivo and Voxline
    /// whole samples, 20 ms frames; Telnyx and Vonage exactly 20 ms.
    pub fn outbound_frame_size(&self) -> FrameSize {
        let format = self.format();
        let ms20 = format.frame_bytes(20);
        match self.config.dialect {
            Dialect::Exotel => FrameSize::multiple(ms20, format.frame_bytes(100)),
            Dialect::Smartflo => FrameSize::exact(160),
            Dialect::Twilio => FrameSize::multiple(1, 160),
            Dialect::Plivo | Dialect::Voxline => {
                FrameSize::multiple(format.bytes_per_sample(), ms20)
            }
            Dialect::Telnyx | Dialect::Vonage => FrameSize::exact(ms20),
        }
    }

    /// Decodes one frame from the carrier.
    ///
    /// A `start` (Vonage: `websocket:connected`) sets [`Session::info`]; a later one
    /// replaces it. Media before `start` is decoded like any other (in the format
    /// [`Session::format`] gives until then), except in Voxline, where every known
    /// event but `start` is [`DecodeError::BeforeStart`] until then. A close frame decodes to
    /// [`Decoded::Ignored`] with event `close`: the server reports the end of the call.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the dialect, the field and the problem. The session is
    /// unchanged by a frame it refuses.
    pub fn decode(&mut self, frame: &WsFrame) -> Result<Decoded, DecodeError> {
        let dialect = self.config.dialect;
        let started = self.info.is_some();
        let decoded = match frame {
            WsFrame::Text(text) => match dialect {
                Dialect::Vonage => vonage::decode_text(&self.config, text)?,
                Dialect::Voxline => voxline::decode_text(&self.config, started, text)?,
                _ => self.decode_json(text)?,
            },
            WsFrame::Binary(bytes) => match dialect {
                Dialect::Vonage => vonage::decode_binary(bytes),
                Dialect::Voxline => voxline::decode_binary(started, bytes)?,
                _ => {
                    return Err(DecodeError::UnexpectedFrame {
                        dialect,
                        kind: "binary",
                        len: bytes.len(),
                    });
                }
            },
            WsFrame::Close { .. } => Decoded::Ignored {
                event: "close".to_owned(),
            },
        };
        if let Decoded::Event(CallEvent::Start(info)) = &decoded {
            self.info = Some(info.clone());
        }
        Ok(decoded)
    }

    /// A JSON dialect's text frame: `media` through the borrowed envelope, everything
    /// else through a parsed object.
    fn decode_json(&self, text: &str) -> Result<Decoded, DecodeError> {
        let dialect = self.config.dialect;
        if !text.trim_start().starts_with('{') {
            // Not an object: let the parser say what it is (or where it broke).
            return Err(wire::parse_object(dialect, text)
                .err()
                .unwrap_or_else(|| wire::json_error_text(dialect, "expected a JSON object")));
        }
        let envelope: Envelope<'_> =
            serde_json::from_str(text).map_err(|e| wire::json_error(dialect, &e))?;
        let event = wire::event_name(dialect, envelope.event.as_ref().map(View::of_scalar))?;
        let ctx = Ctx { dialect, event };
        if event == "media" {
            let keys = match dialect {
                Dialect::Plivo => plivo::MEDIA,
                Dialect::Telnyx => telnyx::MEDIA,
                _ => streams::media_keys(dialect),
            };
            return dialect::decode_media(&ctx, &envelope, &keys, self.format());
        }
        let map = wire::parse_object(dialect, text)?;
        let top = Obj { map: &map };
        match dialect {
            Dialect::Exotel | Dialect::Smartflo | Dialect::Twilio => {
                streams::decode(&self.config, &ctx, top)
            }
            Dialect::Plivo => plivo::decode(&ctx, top),
            Dialect::Telnyx => telnyx::decode(&ctx, top),
            Dialect::Vonage => vonage::decode_text(&self.config, text),
            Dialect::Voxline => voxline::decode_text(&self.config, self.info.is_some(), text),
        }
    }

    /// Encodes one command into the frames the dialect expects, appending them to
    /// `out`.
    ///
    /// # Errors
    /// [`EncodeError::NoStreamId`] when the dialect needs a stream id and no `start`
    /// gave one; [`EncodeError::ChunkSize`] for audio that is not a whole number of
    /// units; [`EncodeError::EmptyMarkName`] for a mark without a name;
    /// [`EncodeError::Unsupported`] for commands the socket cannot carry (every
    /// dialect but Voxline refuses [`BotCommand::Text`] and [`BotCommand::Modes`]; see
    /// [`Session::supports_text`]). Nothing is
    /// appended to `out` and the session is unchanged when it fails.
    pub fn encode(
        &mut self,
        command: &BotCommand,
        out: &mut Vec<WsFrame>,
    ) -> Result<(), EncodeError> {
        let format = self.format();
        let frame = self.outbound_frame_size();
        let mut outbound = Outbound {
            dialect: self.config.dialect,
            stream_id: self.info.as_ref().and_then(|i| i.stream_id.as_deref()),
            format,
            frame,
            chunks_sent: &mut self.chunks_sent,
            scratch: &mut self.scratch,
        };
        outbound.encode(command, out)
    }
}
