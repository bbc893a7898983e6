//! axum glue shared by Voxline's binaries.
//!
//! A carrier opens a WebSocket on any path; the server finds its dialect (from the
//! URL, else from the first frames), decodes frames into call events for a
//! [`CallHandler`] (one per call, made by a [`HandlerFactory`]), and plays the
//! handler's audio back paced in real time in the dialect's frame sizes, with marks
//! and barge-in clears. Around that: a limit on concurrent calls (HTTP 503 before the
//! upgrade), an idle timeout, `/health`, `/ready`, `/live`, Prometheus `/metrics`, a
//! live `/events` stream of call events, logs with the call id on every line, and a
//! graceful shutdown.
//!
//! [`echo`] holds the echo bot's logic, [`agent`] hosts the voice agent on a call,
//! [`bridge`] joins a call to a realtime speech model.

pub mod agent;
mod app;
pub mod bridge;
mod bus;
mod config;
mod connection;
pub mod echo;
mod handler;
pub mod logging;
mod metrics;
mod playout;
pub mod webhook;

pub use app::{Server, shutdown_signal};
pub use bus::{BusEvent, EventBus, EventKind};
pub use config::ServerConfig;
pub use handler::{Call, CallHandler, HandlerFactory};
pub use metrics::{CallMetrics, DialectLabel, Metrics, ReasonLabel};
pub use playout::{PlayoutEvent, QueueFull};
pub use webhook::webhook_router;
