//! The call simulator: the carrier's side of a phone call.
//!
//! - [`call`]: one call streaming a recording, with a [`CallReport`] of what the caller
//!   heard, response latency per turn, marks, clears and protocol violations.
//! - [`run_scenario`]: a scripted call ([`Scenario`]: play, wait for audio, expect a
//!   clear, press keys, ...) with a pass/fail [`ScenarioReport`]; what integration tests
//!   call. Scenarios are built in code or read from TOML.
//! - [`load`]: many concurrent calls against a server in immediate-echo mode, measuring
//!   per-frame turnaround ([`LoadReport`]).
//!
//! # What each dialect sends
//!
//! | dialect | opening frames | caller media | end |
//! |---|---|---|---|
//! | Exotel | `connected`, `start` (snake_case, `custom_parameters`, `media_format` with string rate) | 100 ms PCM16 at the URL's `sample-rate` (default 8 kHz), string counters | `stop` |
//! | Smartflo | `connected`, camelCase `start` (`customParameters`, `mediaFormat`) | 100 ms mu-law 8 kHz (800 B) | `stop` |
//! | Twilio | `connected` (`protocol`, `version`), `start` (`tracks`, `customParameters`, numeric `sampleRate`) | 20 ms mu-law (160 B), `track`/`chunk`/`timestamp` strings | `stop` |
//! | Plivo | `start` only (`callId`, `streamId`, `accountId`, `extra_headers`) | 20 ms mu-law (or L16 8/16 kHz), numeric counters | close |
//! | Telnyx | `connected` (`version`), `start` with top-level `stream_id` and `call_control_id` | 20 ms PCMU | `stop` |
//! | Vonage | text `websocket:connected` (`content-type: audio/l16;rate=16000`, params flattened) | binary 20 ms L16 16 kHz (or 8 kHz) | close |
//! | Voxline | flat `start` (`call_id`, `sample_rate`, `encoding`, `modes` from the `voice_input`/`text_input`/`voice_output`/`text_output` params as booleans, the other params in `custom`) | 20 ms PCM16 16 kHz (or 8/24/48 kHz, or mu-law) as base64 `audio` | `stop` |
//!
//! The carrier streams continuously: without caller audio it sends silence frames
//! (`0xFF` mu-law, zero PCM). Bot audio is played on the carrier's clock; a mark is
//! echoed when the audio queued before it has played; a clear drops what has not
//! played (Twilio, Smartflo, Exotel, Telnyx and Voxline then echo pending marks; Plivo
//! answers `clearedAudio`, Vonage `websocket:cleared`).
//!
//! Voxline's own protocol for browser and app clients also carries text:
//! scenarios send typed messages ([`Step::SendText`]) and mode changes
//! ([`Step::ModeChange`]), and wait for the bot's transcripts ([`Step::WaitForText`]);
//! the report records every transcript ([`CallReport::texts`]) and mode
//! acknowledgement ([`CallReport::modes`]).

mod connect;
mod dialect;
mod engine;
mod error;
mod ids;
mod inbound;
mod load;
mod options;
mod playout;
mod report;
mod scenario;
mod wire;

pub use dialect::{Dialect, ParseDialectError};
pub use error::CallsimError;
pub use load::{LoadOptions, LoadReport, Percentiles, load};
pub use options::{Audio, CallOptions, TurnVad};
pub use report::{
    CallEnd, CallReport, ClearRecord, FrameCounts, MarkOutcome, MarkRecord, ModesRecord,
    PlaybackGap, TextRecord, TurnLatency, Violation, ViolationKind,
};
pub use scenario::{AudioSource, Scenario, ScenarioReport, Step, StepOutcome, StepReport};
pub use wire::CallIds;

/// Places one call: streams `options.audio` (if any) in real time, keeps the line open
/// for `options.tail`, hangs up as the carrier does, and reports.
///
/// # Errors
/// Only for what stops the call from happening: bad options or URL, unreadable audio,
/// a failed connection or upgrade. What the server does wrong afterwards is in the
/// report.
pub async fn call(options: CallOptions) -> Result<CallReport, CallsimError> {
    let (report, _) = engine::run(options, Vec::new(), false).await?;
    Ok(report)
}

/// Runs a scripted call. Steps run in order while the caller's audio keeps streaming;
/// after the last step the line stays open for the tail (unless the last step hung up).
///
/// # Errors
/// As [`call`], plus [`CallsimError::Audio`] for a `play` step's unreadable file.
/// Failed steps are not errors: see [`ScenarioReport::passed`].
pub async fn run_scenario(scenario: Scenario) -> Result<ScenarioReport, CallsimError> {
    let Scenario {
        name,
        options,
        steps,
        stop_on_failure,
    } = scenario;
    let (call, steps) = engine::run(options, steps, stop_on_failure).await?;
    Ok(ScenarioReport { name, steps, call })
}
