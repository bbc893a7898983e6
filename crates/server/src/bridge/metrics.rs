//! The bridge's Prometheus metrics, registered beside the server's.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use voxline_core::ErrorKind;

/// A realtime error's kind, as a label (`auth`, `connection`, ...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorKindLabel {
    /// The kind, snake_case.
    pub kind: String,
}

/// Which side of the conversation a token count is for.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabel {
    /// `prompt` (caller audio and context) or `completion` (the model's reply).
    pub direction: String,
}

/// How a session start ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `connected` or `failed`.
    pub outcome: String,
}

/// The bridge's metrics. Cloning shares them (every field is an `Arc` inside), so one
/// set serves every call.
#[derive(Debug, Clone)]
pub struct BridgeMetrics {
    /// End of the caller's speech (local VAD) to the first model audio sent to the
    /// carrier, in seconds.
    pub response_latency: Histogram,
    /// Carrier media frame handed to the handler to the session's input channel
    /// accepting it, in seconds.
    pub uplink_forward: Histogram,
    /// Model audio taken from the session to the call's playout accepting it, in
    /// seconds.
    pub downlink_forward: Histogram,
    /// The provider's time to first audio after the caller's speech (as the adapter
    /// measures it), in seconds.
    pub provider_ttfb: Histogram,
    /// Errors the sessions reported, by kind.
    pub errors: Family<ErrorKindLabel, Counter>,
    /// Connections replaced without ending the call (resumption, expiry).
    pub reconnects: Counter,
    /// Tokens the provider reported, by direction.
    pub tokens: Family<TokenLabel, Counter>,
    /// Session starts, by outcome.
    pub sessions: Family<OutcomeLabel, Counter>,
    /// Sessions open now.
    pub sessions_active: Gauge,
    /// Caller audio frames not forwarded: the session's input was full or closed, or
    /// the start-up buffer overflowed.
    pub frames_dropped: Counter,
}

impl BridgeMetrics {
    /// Creates the metrics and registers them in `registry` under `voxline_bridge`.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::unregistered();
        let r = registry.sub_registry_with_prefix("voxline_bridge");
        r.register(
            "response_latency_seconds",
            "End of the caller's speech (local VAD) to the first model audio sent to the carrier",
            metrics.response_latency.clone(),
        );
        r.register(
            "uplink_forward_seconds",
            "Carrier media frame in to the realtime session's input accepting it",
            metrics.uplink_forward.clone(),
        );
        r.register(
            "downlink_forward_seconds",
            "Model audio out of the realtime session to the call's playout accepting it",
            metrics.downlink_forward.clone(),
        );
        r.register(
            "provider_ttfb_seconds",
            "The provider's time to first audio after the caller's speech, as the adapter measures it",
            metrics.provider_ttfb.clone(),
        );
        r.register(
            "errors",
            "Errors reported by realtime sessions, by kind",
            metrics.errors.clone(),
        );
        r.register(
            "reconnects",
            "Realtime connections replaced without ending the call",
            metrics.reconnects.clone(),
        );
        r.register(
            "tokens",
            "Tokens reported by the provider, by direction",
            metrics.tokens.clone(),
        );
        r.register(
            "sessions",
            "Realtime session starts, by outcome",
            metrics.sessions.clone(),
        );
        r.register(
            "sessions_active",
            "Realtime sessions open now",
            metrics.sessions_active.clone(),
        );
        r.register(
            "frames_dropped",
            "Caller audio frames not forwarded to the model",
            metrics.frames_dropped.clone(),
        );
        metrics
    }

    /// Metrics registered nowhere (tests, or a host that does not export them).
    pub fn unregistered() -> Self {
        Self {
            response_latency: Histogram::new(exponential_buckets(0.025, 1.5, 16)),
            // 2 us to 0.25 s in steps of 1.5x: fine enough to read percentiles from.
            uplink_forward: Histogram::new(exponential_buckets(0.000_002, 1.5, 30)),
            downlink_forward: Histogram::new(exponential_buckets(0.000_002, 1.5, 30)),
            provider_ttfb: Histogram::new(exponential_buckets(0.025, 1.5, 16)),
            errors: Family::default(),
            reconnects: Counter::default(),
            tokens: Family::default(),
            sessions: Family::default(),
            sessions_active: Gauge::default(),
            frames_dropped: Counter::default(),
        }
    }

    pub(crate) fn error(&self, kind: ErrorKind) {
        self.errors
            .get_or_create(&ErrorKindLabel {
                kind: kind_name(kind).to_owned(),
            })
            .inc();
    }

    pub(crate) fn tokens(&self, direction: &str, count: u64) {
        self.tokens
            .get_or_create(&TokenLabel {
                direction: direction.to_owned(),
            })
            .inc_by(count);
    }

    pub(crate) fn session(&self, outcome: &str) {
        self.sessions
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

impl Default for BridgeMetrics {
    fn default() -> Self {
        Self::unregistered()
    }
}

/// A stable label for an error kind.
pub(crate) fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Auth => "auth",
        ErrorKind::BadRequest => "bad_request",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Server => "server",
        ErrorKind::Connection => "connection",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Closed => "closed",
        _ => "other",
    }
}
