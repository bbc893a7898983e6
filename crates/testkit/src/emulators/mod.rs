//! Provider emulators on 127.0.0.1: each speaks one provider's real wire protocol
//! (paths, auth headers, query parameters, message shapes, frame kinds, keepalive and
//! close rules, error bodies and close codes) from `../shared/specs/providers.md`,
//! written independently of the adapters so that a field the adapter spells wrongly
//! fails a test. They are strict the way the real services are, and have knobs for
//! latency, scripted results, errors and disconnects ([`Faults`]).
//!
//! Every emulator runs on a random loopback port and stops when its handle is
//! dropped. Each records what it received ([`Recorded`]) so tests can check the wire.

pub mod azure;
pub mod deepgram;
pub mod elevenlabs;
pub mod gemini;
pub mod openai;
pub mod openai_realtime;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;

/// A running emulator's address; the server stops when this is dropped.
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    task: JoinHandle<()>,
    connections: Arc<AtomicUsize>,
}

impl Running {
    /// Serves `router` on a random port of 127.0.0.1.
    ///
    /// # Panics
    /// If no loopback port can be bound (a test environment problem).
    pub async fn serve(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind an emulator port on 127.0.0.1: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("emulator listener has no address: {e}"));
        // No Nagle: a small write right after another (a final flag after audio) must
        // not wait for an ACK; under a paused test clock that wait hangs the test.
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::clone(&connections);
        let listener = axum::serve::ListenerExt::tap_io(listener, move |tcp| {
            accepted.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "emulator cannot set TCP_NODELAY");
            }
        });
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "emulator server failed");
            }
        });
        Self {
            addr,
            task,
            connections,
        }
    }

    /// TCP connections accepted so far: a client that keeps its connections alive
    /// opens one for many requests.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, the base URL to give an adapter.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `ws://127.0.0.1:PORT`, the base URL to give a WebSocket adapter.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Failures and delays an emulator injects. Each emulator documents which knobs it
/// honours and where.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Delay before the first response byte (HTTP) or first result (WebSocket).
    pub latency: Duration,
    /// Answer this many requests or connections with `status` (and the provider's
    /// error body) before serving normally.
    pub fail_first: u32,
    /// The HTTP status (or WebSocket handshake status) for `fail_first`: 401, 429, 500...
    pub status: u16,
    /// Drop the connection abruptly (no close frame, response cut) after this many
    /// results of the first connection or request.
    pub disconnect_after: Option<u32>,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Fail the first `count` requests with `status`.
    pub fn fail(status: u16, count: u32) -> Self {
        Self {
            fail_first: count,
            status,
            ..Self::default()
        }
    }

    /// Delay results by `latency`.
    pub fn latency(latency: Duration) -> Self {
        Self {
            latency,
            ..Self::default()
        }
    }

    /// Cut the first connection after `results` results.
    pub fn disconnect_after(results: u32) -> Self {
        Self {
            disconnect_after: Some(results),
            ..Self::default()
        }
    }
}

/// What an emulator saw, shared between its handlers and the test.
#[derive(Debug)]
pub struct Recorded<T>(Arc<Mutex<Vec<T>>>);

impl<T> Clone for Recorded<T> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<T> Default for Recorded<T> {
    fn default() -> Self {
        Self(Arc::new(Mutex::new(Vec::new())))
    }
}

impl<T: Clone> Recorded<T> {
    /// Appends an item.
    pub fn push(&self, item: T) {
        self.lock().push(item);
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<T> {
        self.lock().clone()
    }

    /// How many items were recorded.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<T>> {
        // A panicking handler poisons the lock; the data is still what was recorded.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
