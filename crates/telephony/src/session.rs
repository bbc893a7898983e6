//! The per-call codec: decodes the carrier's frames, encodes the bot's commands.

use voxline_audio::{AudioFormat, FrameSize};

use crate::error::{DecodeError, EncodeError};
use crate::event::{BotCommand, CallInfo, Decoded, Dialect, WsFrame};

/// What a [`Session`] needs to know before the first frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// The dialect (detected or configured).
    pub dialect: Dialect,
    /// The sample rate the connection URL asked for, if any (Exotel's
    /// `?sample-rate=16000`, also spelled `sample_rate`).
    pub url_sample_rate: Option<u32>,
    /// The call id to report when the dialect puts none on the socket (Vonage): the
    /// server's connection id.
    pub fallback_call_id: String,
}

/// One call's codec state: the dialect, the call's info once `start` arrived, and the
/// counters outbound messages carry.
///
/// Decoding is tolerant where carriers vary (numbers as strings or integers, Exotel's
/// snake_case or camelCase keys) and strict where a mistake would be silent (missing
/// stream id on outbound, wrong chunk size). Unknown event types decode to
/// [`Decoded::Ignored`] so the caller can log them and go on.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    info: Option<CallInfo>,
    /// Outbound media messages sent (Smartflo numbers them).
    chunks_sent: u64,
}

impl Session {
    /// A session for a new connection.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            info: None,
            chunks_sent: 0,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    /// The call's info, once its `start` has been decoded.
    pub fn info(&self) -> Option<&CallInfo> {
        self.info.as_ref()
    }

    /// The audio format of media in both directions: from `start` when it said, else
    /// the dialect's default (Exotel: PCM16 at the URL's rate or 8 kHz; Smartflo,
    /// Twilio, Plivo, Telnyx: mu-law 8 kHz; Vonage: L16 16 kHz).
    pub fn format(&self) -> AudioFormat {
        todo_format(self)
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
    pub fn outbound_frame_size(&self) -> FrameSize {
        todo_frame(self)
    }

    /// Decodes one frame from the carrier.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the dialect, the field and the problem. The session is
    /// unchanged by a frame it refuses.
    pub fn decode(&mut self, frame: &WsFrame) -> Result<Decoded, DecodeError> {
        let _ = frame;
        unimplemented!("dialect decoding")
    }

    /// Encodes one command into the frames the dialect expects, appending them to
    /// `out`.
    ///
    /// # Errors
    /// [`EncodeError::NoStreamId`] when the dialect needs a stream id and no `start`
    /// gave one; [`EncodeError::ChunkSize`] for audio that is not a whole number of
    /// units; [`EncodeError::Unsupported`] for commands the socket cannot carry.
    pub fn encode(
        &mut self,
        command: &BotCommand,
        out: &mut Vec<WsFrame>,
    ) -> Result<(), EncodeError> {
        let _ = (command, out, self.chunks_sent);
        unimplemented!("dialect encoding")
    }
}

fn todo_format(_s: &Session) -> AudioFormat {
    unimplemented!()
}

fn todo_frame(_s: &Session) -> FrameSize {
    unimplemented!()
}
