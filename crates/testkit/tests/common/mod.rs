//! A tiny fake bot server for the callsim tests: accepts WebSocket calls on
//! 127.0.0.1:0, logs every frame it receives with its arrival time, and answers through
//! a per-test behaviour. The bot-side frames are written here from the spec,
//! independently of callsim's own code.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use voxline_testkit::callsim::Dialect;

pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One frame the bot received.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub message: Message,
}

impl Received {
    pub fn json(&self) -> Option<Value> {
        match &self.message {
            Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
pub struct Log {
    pub frames: Vec<Received>,
    pub request_uri: Option<String>,
    pub authorization: Option<String>,
}

pub type SharedLog = Arc<Mutex<Log>>;

pub struct Bot {
    pub url: String,
    pub log: SharedLog,
}

impl Bot {
    pub fn frames(&self) -> Vec<Received> {
        self.log.lock().expect("log lock").frames.clone()
    }

    pub fn json_frames(&self) -> Vec<Value> {
        self.frames().iter().filter_map(Received::json).collect()
    }

    pub fn events(&self, event: &str) -> Vec<Value> {
        self.json_frames()
            .into_iter()
            .filter(|v| v["event"] == event)
            .collect()
    }

    pub fn request_uri(&self) -> Option<String> {
        self.log.lock().expect("log lock").request_uri.clone()
    }
}

/// The bot's end of one call.
pub struct Conn {
    pub ws: WebSocketStream<TcpStream>,
    pub log: SharedLog,
    pub dialect: Dialect,
    /// From the carrier's start frame (empty for Vonage).
    pub stream_id: String,
    pub started: Instant,
}

impl Conn {
    /// The next frame (logged), or `None` when the call is over.
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let message = self.ws.next().await?.ok()?;
            let at = Instant::now();
            self.log.lock().expect("log lock").frames.push(Received {
                at,
                message: message.clone(),
            });
            match message {
                Message::Close(_) => return None,
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                other => return Some(other),
            }
        }
    }

    /// Reads frames until the carrier has announced the stream; remembers its id.
    pub async fn open(&mut self) {
        while let Some(message) = self.recv().await {
            let Message::Text(text) = message else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                continue;
            };
            match self.dialect {
                Dialect::Vonage if v["event"] == "websocket:connected" => return,
                Dialect::Voxline if v["event"] == "start" => return,
                Dialect::Exotel if v["event"] == "start" => {
                    self.stream_id = v["start"]["stream_sid"].as_str().unwrap_or_default().into();
                    return;
                }
                Dialect::Smartflo | Dialect::Twilio if v["event"] == "start" => {
                    self.stream_id = v["start"]["streamSid"].as_str().unwrap_or_default().into();
                    return;
                }
                Dialect::Plivo if v["event"] == "start" => {
                    self.stream_id = v["start"]["streamId"].as_str().unwrap_or_default().into();
                    return;
                }
                Dialect::Telnyx if v["event"] == "start" => {
                    self.stream_id = v["stream_id"].as_str().unwrap_or_default().into();
                    return;
                }
                _ => {}
            }
        }
    }

    /// Reads (and logs) everything until the call ends.
    pub async fn drain(&mut self) {
        while self.recv().await.is_some() {}
    }

    pub async fn send(&mut self, message: Message) {
        let _ = self.ws.send(message).await;
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send(Message::text(v.to_string())).await;
    }

    /// Plays line-format audio bytes as this dialect's bot would, in chunks of `chunk`
    /// bytes (Vonage: 20 ms binary frames regardless).
    pub async fn play(&mut self, audio: &[u8], chunk: usize, rate: u32) {
        let chunk = if self.dialect == Dialect::Vonage {
            (rate / 50 * 2) as usize
        } else {
            chunk
        };
        for piece in audio.chunks(chunk) {
            let message = media(self.dialect, &self.stream_id, piece, rate);
            self.send(message).await;
        }
    }

    pub async fn mark(&mut self, name: &str) {
        let m = mark(self.dialect, &self.stream_id, name);
        self.send(m).await;
    }

    pub async fn clear(&mut self) {
        let m = clear(self.dialect, &self.stream_id);
        self.send(m).await;
    }
}

/// A bot's media frame carrying `payload` (line-format bytes).
pub fn media(dialect: Dialect, sid: &str, payload: &[u8], rate: u32) -> Message {
    let p = B64.encode(payload);
    match dialect {
        Dialect::Exotel => Message::text(
            json!({"event":"media","stream_sid":sid,"media":{"payload":p}}).to_string(),
        ),
        Dialect::Smartflo | Dialect::Twilio => Message::text(
            json!({"event":"media","streamSid":sid,"media":{"payload":p}}).to_string(),
        ),
        Dialect::Plivo => {
            // Tests use Plivo's default mu-law line at 8 kHz and L16 at 16 kHz.
            let ct = if rate == 8000 {
                "audio/x-mulaw"
            } else {
                "audio/x-l16"
            };
            Message::text(
                json!({"event":"playAudio","media":{"contentType":ct,"sampleRate":rate,"payload":p}})
                    .to_string(),
            )
        }
        Dialect::Telnyx => {
            Message::text(json!({"event":"media","media":{"payload":p}}).to_string())
        }
        Dialect::Vonage => Message::binary(payload.to_vec()),
        Dialect::Voxline => Message::text(json!({"event":"media","audio":p}).to_string()),
    }
}

pub fn mark(dialect: Dialect, sid: &str, name: &str) -> Message {
    let v = match dialect {
        Dialect::Exotel => json!({"event":"mark","stream_sid":sid,"mark":{"name":name}}),
        Dialect::Smartflo | Dialect::Twilio => {
            json!({"event":"mark","streamSid":sid,"mark":{"name":name}})
        }
        Dialect::Plivo => json!({"event":"checkpoint","streamId":sid,"name":name}),
        Dialect::Telnyx => json!({"event":"mark","mark":{"name":name}}),
        Dialect::Vonage => json!({"action":"notify","payload":{"name":name}}),
        Dialect::Voxline => json!({"event":"mark","name":name}),
    };
    Message::text(v.to_string())
}

pub fn clear(dialect: Dialect, sid: &str) -> Message {
    let v = match dialect {
        Dialect::Exotel => json!({"event":"clear","stream_sid":sid}),
        Dialect::Smartflo | Dialect::Twilio => json!({"event":"clear","streamSid":sid}),
        Dialect::Plivo => json!({"event":"clearAudio","streamId":sid}),
        Dialect::Telnyx | Dialect::Voxline => json!({"event":"clear"}),
        Dialect::Vonage => json!({"action":"clear"}),
    };
    Message::text(v.to_string())
}

/// The line-format payload of a carrier media frame (`None` for other frames).
pub fn carrier_payload(dialect: Dialect, message: &Message) -> Option<Vec<u8>> {
    match (dialect, message) {
        (Dialect::Vonage, Message::Binary(b)) => Some(b.to_vec()),
        (Dialect::Vonage, _) => None,
        (_, Message::Text(t)) => {
            let v: Value = serde_json::from_str(t.as_str()).ok()?;
            if v["event"] != "media" {
                return None;
            }
            let payload = match dialect {
                Dialect::Voxline => &v["audio"],
                _ => &v["media"]["payload"],
            };
            B64.decode(payload.as_str()?).ok()
        }
        _ => None,
    }
}

/// Starts a bot on 127.0.0.1:0 running `behaviour` for every call.
pub async fn serve<F, Fut>(dialect: Dialect, path: &str, behaviour: F) -> Bot
where
    F: Fn(Conn) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let log: SharedLog = Arc::default();
    let behaviour = Arc::new(behaviour);
    let accept_log = Arc::clone(&log);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&accept_log);
            let behaviour = Arc::clone(&behaviour);
            tokio::spawn(async move {
                let header_log = Arc::clone(&log);
                // tungstenite's callback type returns its large error response.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &Request, response: Response| {
                    let mut l = header_log.lock().expect("log lock");
                    l.request_uri = Some(request.uri().to_string());
                    l.authorization = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    Ok(response)
                };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
                    return;
                };
                let conn = Conn {
                    ws,
                    log,
                    dialect,
                    stream_id: String::new(),
                    started: Instant::now(),
                };
                behaviour(conn).await;
            });
        }
    });
    Bot {
        url: format!("ws://{addr}{path}"),
        log,
    }
}

/// A bot that only listens.
pub async fn recorder(dialect: Dialect) -> Bot {
    serve(dialect, "/media", |mut conn: Conn| async move {
        conn.drain().await
    })
    .await
}

/// A bot that echoes every media frame straight back in its dialect's outbound format.
pub async fn echo_bot(dialect: Dialect, rate: u32) -> Bot {
    serve(dialect, "/echo", move |mut conn: Conn| async move {
        conn.open().await;
        while let Some(message) = conn.recv().await {
            if let Some(payload) = carrier_payload(dialect, &message) {
                let reply = media(dialect, &conn.stream_id, &payload, rate);
                conn.send(reply).await;
            }
        }
    })
    .await
}

/// Line-format bytes of `samples`.
pub fn encode(dialect: Dialect, samples: &[i16], pcm: bool) -> Vec<u8> {
    if pcm
        || matches!(
            dialect,
            Dialect::Exotel | Dialect::Vonage | Dialect::Voxline
        )
    {
        samples.iter().flat_map(|s| s.to_le_bytes()).collect()
    } else {
        let mut out = Vec::new();
        voxline_audio::g711::mulaw::encode(samples, &mut out);
        out
    }
}

pub fn tone(freq: f64, ms: u64, rate: u32) -> Vec<i16> {
    voxline_testkit::callsim::Audio::tone(freq, Duration::from_millis(ms), rate, -6.0)
        .samples()
        .to_vec()
}

pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

pub fn sleep(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}
