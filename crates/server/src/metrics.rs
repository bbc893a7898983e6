//! Prometheus metrics for calls, frames and latencies.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use voxline_telephony::Dialect;

/// A dialect label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DialectLabel {
    /// The dialect's name.
    pub dialect: String,
}

/// A rejection reason label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why the call was refused.
    pub reason: String,
}

/// The server's metrics. Cloning shares them (every field is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Calls connected now.
    pub calls_active: Gauge,
    /// Calls accepted, by dialect.
    pub calls_total: Family<DialectLabel, Counter>,
    /// Calls refused before upgrade, by reason (`capacity`, `draining`).
    pub calls_rejected: Family<ReasonLabel, Counter>,
    /// WebSocket frames received from carriers.
    pub frames_in: Counter,
    /// WebSocket frames sent to carriers.
    pub frames_out: Counter,
    /// Frames that failed to decode, by dialect.
    pub decode_errors: Family<DialectLabel, Counter>,
    /// Call durations in seconds.
    pub call_duration: Histogram,
    /// Time from a carrier frame's arrival to the frame sent in reply, where a handler
    /// replies at once (immediate echo), in seconds.
    pub frame_turnaround: Histogram,
    /// Time from the end of the caller's turn to the first reply frame sent, seconds.
    pub turn_latency: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry` under the `voxline` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self {
            calls_active: Gauge::default(),
            calls_total: Family::default(),
            calls_rejected: Family::default(),
            frames_in: Counter::default(),
            frames_out: Counter::default(),
            decode_errors: Family::default(),
            call_duration: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            frame_turnaround: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            turn_latency: Histogram::new(exponential_buckets(0.01, 1.6, 16)),
        };
        let r = registry.sub_registry_with_prefix("voxline");
        r.register(
            "calls_active",
            "Calls connected now",
            metrics.calls_active.clone(),
        );
        r.register(
            "calls",
            "Calls accepted, by dialect",
            metrics.calls_total.clone(),
        );
        r.register(
            "calls_rejected",
            "Calls refused before the WebSocket upgrade, by reason",
            metrics.calls_rejected.clone(),
        );
        r.register(
            "frames_in",
            "WebSocket frames received from carriers",
            metrics.frames_in.clone(),
        );
        r.register(
            "frames_out",
            "WebSocket frames sent to carriers",
            metrics.frames_out.clone(),
        );
        r.register(
            "decode_errors",
            "Carrier frames that failed to decode, by dialect",
            metrics.decode_errors.clone(),
        );
        r.register(
            "call_duration_seconds",
            "Call durations",
            metrics.call_duration.clone(),
        );
        r.register(
            "frame_turnaround_seconds",
            "Carrier frame in to reply frame out, for handlers that reply at once",
            metrics.frame_turnaround.clone(),
        );
        r.register(
            "turn_latency_seconds",
            "End of the caller's turn to the first reply frame sent",
            metrics.turn_latency.clone(),
        );
        metrics
    }

    /// The per-dialect counters a call touches, resolved once per call.
    pub fn for_dialect(&self, dialect: Dialect) -> CallMetrics {
        let label = DialectLabel {
            dialect: dialect.name().to_owned(),
        };
        CallMetrics {
            decode_errors: self.decode_errors.get_or_create(&label).clone(),
            frames_in: self.frames_in.clone(),
            frames_out: self.frames_out.clone(),
            frame_turnaround: self.frame_turnaround.clone(),
            turn_latency: self.turn_latency.clone(),
        }
    }
}

/// Metric handles for one call, so the hot path increments atomics only.
#[derive(Debug, Clone)]
pub struct CallMetrics {
    /// See [`Metrics::decode_errors`].
    pub decode_errors: Counter,
    /// See [`Metrics::frames_in`].
    pub frames_in: Counter,
    /// See [`Metrics::frames_out`].
    pub frames_out: Counter,
    /// See [`Metrics::frame_turnaround`].
    pub frame_turnaround: Histogram,
    /// See [`Metrics::turn_latency`].
    pub turn_latency: Histogram,
}
