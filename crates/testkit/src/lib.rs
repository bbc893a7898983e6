//! Test infrastructure for Voxline.
//!
//! [`callsim`] is the carrier's side of a phone call: it opens the WebSocket a
//! telephony carrier (Exotel, Tata Smartflo, Twilio, Plivo, Telnyx, Vonage) opens to a
//! voice-agent server, or a browser client speaking Voxline's own protocol (with text
//! messages, mode changes and transcripts), speaks that dialect exactly, streams the caller's
//! audio in real time, plays what the bot sends on the carrier's own clock, and
//! reports what the caller would have heard, how long the bot took to answer and every
//! protocol mistake the bot made. It drives integration tests
//! ([`callsim::run_scenario`]), demos ([`callsim::call`]) and load tests
//! ([`callsim::load`]); the `callsim` binary is a thin command-line wrapper.
//!
//! [`emulators`] are the providers' side: Deepgram, ElevenLabs, OpenAI (HTTP and
//! Realtime), Azure and Gemini Live
//! speaking their real wire protocols on 127.0.0.1, so adapters are tested offline.
//!
//! [`process`] runs a server binary as its users do (free port, captured log,
//! SIGTERM), and [`http`] asks its HTTP routes, for the binaries' own tests.
//!
//! The dialect code here is written from the carriers' documentation
//! (`../shared/specs/telephony.md`), independently of `voxline-telephony`, so a field
//! the server spells wrongly fails a test instead of passing on both sides.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)
)]

pub mod callsim;
pub mod emulators;
pub mod http;
pub mod process;
