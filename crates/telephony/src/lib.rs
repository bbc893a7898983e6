//! Carrier WebSocket media dialects: frames in, [`CallEvent`]s out; [`BotCommand`]s
//! in, frames out. No sockets: the server moves the frames.
//!
//! Dialects: Exotel (Voicebot applet), Tata Smartflo, Twilio Media Streams, Plivo
//! AudioStream, Telnyx and Vonage, plus Voxline's own JSON protocol for browser and
//! app clients (audio, text and mode changes). Each call gets a [`Session`], which
//! knows the call's ids and format once `start` arrives and encodes commands with them.
//! [`detect`] finds the dialect from the URL and the first frames.
//!
//! `docs/protocols.md` describes each dialect as implemented.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

pub mod detect;
mod dialect;
mod encode;
mod error;
mod event;
mod session;
mod wire;

pub use error::{DecodeError, EncodeError};
pub use event::{
    AudioChunk, BotCommand, CallEvent, CallInfo, Decoded, Dialect, Dtmf, ModeChange, Modes, Stop,
    TextRole, UnknownDialect, WsFrame,
};
pub use session::{Session, SessionConfig};
