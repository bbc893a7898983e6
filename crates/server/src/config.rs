//! Server settings.

use std::time::Duration;

use voxline_telephony::Dialect;

/// How the server treats connections. [`ServerConfig::default`] suits a
/// few hundred calls on a small machine.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Most calls connected at once; the next upgrade request gets HTTP 503.
    pub max_calls: usize,
    /// Largest WebSocket frame or message accepted from a carrier, in bytes.
    pub max_frame_bytes: usize,
    /// A call with no frame from the carrier for this long is closed (carriers stream
    /// continuously, silence included, so quiet means gone).
    pub idle_timeout: Duration,
    /// After SIGTERM or ctrl-c, how long live calls may take to finish before they are
    /// closed.
    pub shutdown_grace: Duration,
    /// Use this dialect for every connection instead of detecting it.
    pub dialect: Option<Dialect>,
    /// WebSocket read buffer per connection, in bytes. Telephony frames are small (a
    /// 100 ms Exotel frame is about 2.2 KB of JSON, a Twilio one about 0.3 KB); the
    /// library default (128 KiB) costs memory and CPU at thousands of calls. 6 KiB
    /// holds two Exotel frames and the next header, so the buffer never has to grow;
    /// with 4 KiB it grew to 8 KiB (measured: 12.4 against 14.3 KiB of RSS per call).
    pub ws_read_buffer_bytes: usize,
    /// WebSocket write buffer per connection, in bytes (frames are flushed explicitly).
    pub ws_write_buffer_bytes: usize,
    /// How far ahead of real time paced audio is sent.
    pub playout_lead: Duration,
    /// Most audio a call may have queued for playout.
    pub max_queued_audio: Duration,
    /// Events kept for slow `/events` subscribers.
    pub event_bus_capacity: usize,
    /// The token a client must present (`?token=` or `Authorization: Bearer`) on the
    /// paths under `/ws/auth`; with none set, those paths refuse everyone.
    pub auth_token: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_calls: 1000,
            max_frame_bytes: 64 * 1024,
            idle_timeout: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(30),
            dialect: None,
            ws_read_buffer_bytes: 6 * 1024,
            ws_write_buffer_bytes: 8 * 1024,
            playout_lead: Duration::from_millis(40),
            max_queued_audio: Duration::from_secs(120),
            event_bus_capacity: 4096,
            auth_token: None,
        }
    }
}
