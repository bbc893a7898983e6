//! Usage records for cost metering and time-to-first-byte marks.

use std::time::Duration;

/// What was used, in the unit the provider bills.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum UsageKind {
    /// Seconds of audio recognised (speech-to-text).
    AudioSeconds(f64),
    /// Characters synthesised (text-to-speech).
    Characters(u64),
    /// Language-model tokens.
    Tokens {
        /// Tokens in the prompt.
        prompt: u64,
        /// Tokens generated.
        completion: u64,
    },
}

/// One usage record from one provider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Which provider (`"deepgram"`, ...).
    pub provider: &'static str,
    /// How much of what.
    pub kind: UsageKind,
    /// Whether the provider reported the figure (`true`) or the adapter counted what it
    /// sent (`false`, e.g. characters on a socket that reports none).
    pub reported: bool,
}

/// Time from a request to the provider's first useful byte (first transcript, first
/// token, first audio).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttfb {
    /// Which provider.
    pub provider: &'static str,
    /// From sending the request (or the end of input) to the first result.
    pub latency: Duration,
}
