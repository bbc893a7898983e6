//! The error type of the call simulator.

use std::path::PathBuf;
use std::time::Duration;

/// What can stop `callsim` from running a call, a scenario or a load test.
///
/// Anything the *server* does wrong once the call is up is not an error: it is recorded
/// in the report (a protocol violation, a failed step, an early close), so a test can
/// assert on it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallsimError {
    /// An option that cannot work for the chosen dialect or at all.
    #[error("invalid option {field}: {reason}")]
    InvalidOptions {
        /// The option's name.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// The URL to call is not a usable `ws://` or `wss://` URL.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The TCP connection or the WebSocket upgrade failed.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        /// The URL that was called.
        url: String,
        /// The underlying WebSocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },

    /// The connection and upgrade took longer than the connect timeout.
    #[error("connecting to {url} timed out after {after:?}")]
    ConnectTimeout {
        /// The URL that was called.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },

    /// Sending the carrier's opening frames failed.
    #[error("the connection to {url} failed while opening the stream: {source}")]
    Open {
        /// The URL that was called.
        url: String,
        /// The underlying WebSocket error.
        #[source]
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },

    /// Audio could not be read, converted or written.
    #[error("audio: {0}")]
    Audio(#[from] voxline_audio::AudioError),

    /// The turn detector used to find the end of the caller's speech could not be built.
    #[error("turn detection: {0}")]
    Vad(#[from] voxline_vad::VadError),

    /// A scenario file that cannot be read or parsed.
    #[error("scenario {}: {reason}", path.as_ref().map_or_else(|| "(inline)".to_owned(), |p| p.display().to_string()))]
    Scenario {
        /// The file, when the scenario came from one.
        path: Option<PathBuf>,
        /// What is wrong with it.
        reason: String,
    },
}
