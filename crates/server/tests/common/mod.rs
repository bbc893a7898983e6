//! A server on 127.0.0.1:0 for tests, and a minimal hand-written Twilio client.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use voxline_server::{HandlerFactory, Server, ServerConfig};

pub mod agent;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub server: Server,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl TestServer {
    pub async fn start(config: ServerConfig, factory: impl HandlerFactory) -> Self {
        Self::start_with(config, |config| Server::new(config, factory)).await
    }

    /// A server built by `build` from `config`, serving on 127.0.0.1:0.
    pub async fn start_with(
        config: ServerConfig,
        build: impl FnOnce(ServerConfig) -> Server,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = build(config);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.clone().serve(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            server,
            stop: Some(stop),
            task,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Starts the graceful shutdown; returns the serve task to await.
    pub fn shutdown(&mut self) -> &mut tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        &mut self.task
    }
}

#[allow(unused_imports)]
pub use voxline_testkit::http::get;

/// Connects as Twilio and sends `connected` and `start`.
pub async fn twilio_call(url: &str, call_sid: &str) -> Socket {
    let (mut socket, _) = connect_async(url).await.expect("upgrade");
    let connected =
        serde_json::json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
    let start = serde_json::json!({
        "event": "start", "sequenceNumber": "1", "streamSid": "MZ00000000000000000000000000000001",
        "start": {
            "accountSid": "AC00000000000000000000000000000001", "streamSid": "MZ00000000000000000000000000000001",
            "callSid": call_sid, "tracks": ["inbound"], "customParameters": {},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    });
    socket
        .send(Message::text(connected.to_string()))
        .await
        .expect("send");
    socket
        .send(Message::text(start.to_string()))
        .await
        .expect("send");
    socket
}

/// A Twilio media frame carrying `payload` (mu-law).
pub fn twilio_media(sequence: u64, payload: &[u8]) -> Message {
    use base64::Engine;
    let json = serde_json::json!({
        "event": "media", "sequenceNumber": sequence.to_string(), "streamSid": "MZ00000000000000000000000000000001",
        "media": {"track": "inbound", "chunk": (sequence - 1).to_string(), "timestamp": ((sequence - 2) * 20).to_string(),
                  "payload": base64::engine::general_purpose::STANDARD.encode(payload)}
    });
    Message::text(json.to_string())
}

/// The next text frame as JSON, within `within`.
pub async fn next_json(socket: &mut Socket, within: Duration) -> Option<serde_json::Value> {
    loop {
        match tokio::time::timeout(within, socket.next()).await.ok()?? {
            Ok(Message::Text(text)) => return serde_json::from_str(text.as_str()).ok(),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// A metric's value from the Prometheus text.
pub fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|line| {
            line.starts_with(name_and_labels) && line[name_and_labels.len()..].starts_with(' ')
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}
