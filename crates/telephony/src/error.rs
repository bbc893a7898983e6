//! Decode and encode errors: each says which dialect, which field, and what was wrong.

use crate::event::Dialect;

/// A frame that could not be understood. The call goes on: this is an error for that
/// frame only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not valid JSON, or not a JSON object.
    #[error("{dialect}: frame is not a JSON object: {detail}")]
    Json {
        /// The dialect.
        dialect: Dialect,
        /// The parser's message.
        detail: String,
    },
    /// A required field is absent.
    #[error("{dialect}: `{event}` message has no `{field}`")]
    MissingField {
        /// The dialect.
        dialect: Dialect,
        /// The message's event name.
        event: String,
        /// The field's path, e.g. `start.stream_sid`.
        field: &'static str,
    },
    /// A field has the wrong type or an impossible value.
    #[error("{dialect}: `{event}` message has a bad `{field}`: {problem}")]
    InvalidField {
        /// The dialect.
        dialect: Dialect,
        /// The message's event name.
        event: String,
        /// The field's path.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A binary frame where the dialect sends only text, or the reverse.
    #[error("{dialect}: unexpected {kind} frame of {len} bytes")]
    UnexpectedFrame {
        /// The dialect.
        dialect: Dialect,
        /// `binary` or `text`.
        kind: &'static str,
        /// Its length.
        len: usize,
    },
    /// Media before the call's `start`, in a dialect that needs it first.
    #[error("{dialect}: `{event}` message before `start`")]
    BeforeStart {
        /// The dialect.
        dialect: Dialect,
        /// The message's event name.
        event: String,
    },
}

/// A command that cannot be encoded for this dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The dialect needs the stream id on outbound messages, and no `start` has given
    /// one yet.
    #[error("{dialect}: cannot send `{command}` before the call's start gave a stream id")]
    NoStreamId {
        /// The dialect.
        dialect: Dialect,
        /// The command.
        command: &'static str,
    },
    /// Audio whose length the dialect would play with gaps or reject.
    #[error("{dialect}: audio of {len} bytes is not a non-zero multiple of {unit} bytes")]
    ChunkSize {
        /// The dialect.
        dialect: Dialect,
        /// The length given.
        len: usize,
        /// The unit it must be a multiple of.
        unit: usize,
    },
    /// A mark needs a name (Twilio ignores nameless marks).
    #[error("{dialect}: a mark needs a non-empty name")]
    EmptyMarkName {
        /// The dialect.
        dialect: Dialect,
    },
    /// The dialect has no socket message for this command (use the carrier's REST API).
    #[error("{dialect}: `{command}` is not possible on this dialect's socket")]
    Unsupported {
        /// The dialect.
        dialect: Dialect,
        /// The command.
        command: &'static str,
    },
}
