//! Voxline's per-call voice-agent runtime.
//!
//! [`Agent`] runs one call: it is fed the call's audio, text, key presses and marks on
//! the call's own task, decides when the caller's turn is over and when they interrupt,
//! and drives a worker task that owns the provider sessions; the host (voxline-server's
//! handler, or a test) implements [`CallOutput`] over its call. The pieces:
//! - [`brain::Brain`] is the seam that decides what to say next; [`brain::LlmBrain`]
//!   asks a language model.
//! - [`text::SentenceSplitter`] cuts a model's streamed reply into the pieces sent to
//!   text-to-speech: the first at a clause, so the caller hears the bot sooner, the rest
//!   at sentence ends.
//! - [`history::Reply`] records what the caller actually heard of a reply, so a reply
//!   cut off by barge-in enters the [`history::History`] only as far as it was played.
//! - [`interruption::TranscriptRule`] is the transcript half of barge-in: backchannels
//!   ("mm-hmm") let the bot go on, words stop it.
//! - [`speaker::Speaker`] speaks one reply: the brain's streamed text into
//!   text-to-speech segment by segment, audio back in order, cancellable at once.
//! - [`turn::TurnTaker`] ends the caller's turn from the VAD and the recogniser
//!   together, at the first reliable sign rather than after a fixed timer.

#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

pub mod brain;
pub mod config;
pub mod history;
pub mod interruption;
pub mod output;
mod runtime;
pub mod speaker;
pub mod text;
pub mod turn;
mod worker;

pub use config::{AgentConfig, ModeChange, Modes, Providers};
pub use output::{AgentEvent, CallOutput, TurnMarks, UsageTotals};
pub use runtime::{Agent, AgentError, AgentSetup, CallStart};
