//! Deepgram live streaming speech-to-text (`GET /v1/listen`, WebSocket), from the spec
//! (`providers.md` §1, §6, §8), independent of the adapter.
//!
//! # What it checks, like the real service
//! - **Handshake**: `Authorization: Token <key>` must match [`Options::api_key`], else
//!   HTTP 401 with `dg-error` and a JSON body (`err_code`, `err_msg`, `request_id`).
//!   Query parameters are checked: `model` required; `encoding` must be one Deepgram
//!   knows, and a raw encoding needs `sample_rate`; booleans must be `true`/`false`;
//!   `endpointing` a number of ms or `false`; `utterance_end_ms` a number and only with
//!   `interim_results=true`; `channels` and `sample_rate` positive integers. A mistake is
//!   HTTP 400 with the reason. *Stricter than the real service*: unknown query
//!   parameters are refused (so a misspelt option fails a test instead of being ignored).
//! - **Frames**: audio in binary frames; control JSON in text frames. `KeepAlive` gets
//!   no answer; `Finalize` answers with a final `Results` with `from_finalize: true` (an
//!   empty one when nothing is pending); `CloseStream` flushes the pending words, sends
//!   `Metadata` (`duration` = seconds of audio received on this connection) and closes
//!   with 1000. A text message that is not one of those three gets an
//!   `{"type":"Error","variant":"SchemaError",...}` message. An **empty binary frame** is
//!   Deepgram's old "close the stream" signal: it is recorded as [`Frame::EmptyBinary`]
//!   and the stream is flushed and closed as for `CloseStream` (an unexpected close for
//!   a client that did not mean it).
//! - **Idle timeout**: nothing received (no audio, no text) for [`Options::idle_timeout`]
//!   (10 s, as Deepgram) closes the socket with 1011 and the NET-0001 reason. It runs
//!   on tokio's clock, so `tokio::time::pause` drives it.
//!
//! # What it answers
//! A script of utterances ([`Line`]: text, start and end in seconds of audio) is
//! "recognised" as the audio arrives, on the audio clock (bytes received / bytes per
//! second), never the wall clock, so audio may be streamed faster than real time:
//! - `SpeechStarted` (with `vad_events=true`) once the audio reaches a line's start;
//! - interim `Results` (with `interim_results=true`) each time another word's end has
//!   arrived;
//! - a final `Results` once the audio reaches the line's end plus the endpointing
//!   silence (`speech_final: true`; with `endpointing=false` the final comes 0.5 s after
//!   the line with `speech_final: false`);
//! - `UtteranceEnd` (with `utterance_end_ms`) once that much audio after the last word
//!   has arrived with no new line started.
//!
//! Words are spread evenly over their line. With `punctuate` or `smart_format` the
//! transcript keeps the script's punctuation and case (and words carry
//! `punctuated_word`); otherwise it is lowercase without punctuation.
//!
//! A reconnecting client resends audio it already sent; when [`Options::reference_audio`]
//! holds the audio the test streams, each connection finds where its first bytes sit in
//! it and reports times relative to its own start, as the real service does (the
//! reference must be distinguishable there: use noisy audio rather than digital
//! silence). Without a reference every connection starts at script time 0.
//!
//! # Faults ([`Faults`])
//! - `latency`: a pause before each `Results` message;
//! - `fail_first` + `status`: the first handshakes answered with that status (429,
//!   500, 503...) and the error body;
//! - `disconnect_after`: the first connection is dropped abruptly (no close frame)
//!   right after that many `Results` messages.
//!
//! Everything received is recorded: handshakes ([`Handshake`]: query, headers, status),
//! frames ([`Received`]) and what was sent back ([`Outgoing`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::time::{Instant, sleep, sleep_until};

use super::{Faults, Recorded, Running};

/// The close reason Deepgram gives for NET-0001 (idle timeout), with code 1011.
pub const NET0001_REASON: &str = "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001";

/// The query parameters the SDK's `listen.v1.connect` accepts, plus `filler_words` and
/// `no_delay` (documented, sent by other clients).
const KNOWN_PARAMS: [&str; 31] = [
    "callback",
    "callback_method",
    "channels",
    "detect_entities",
    "diarize",
    "diarize_model",
    "dictation",
    "encoding",
    "endpointing",
    "extra",
    "interim_results",
    "keyterm",
    "keywords",
    "language",
    "mip_opt_out",
    "model",
    "multichannel",
    "numerals",
    "profanity_filter",
    "punctuate",
    "redact",
    "replace",
    "sample_rate",
    "search",
    "smart_format",
    "tag",
    "utterance_end_ms",
    "vad_events",
    "version",
    "filler_words",
    "no_delay",
];

const BOOLEAN_PARAMS: [&str; 13] = [
    "detect_entities",
    "diarize",
    "dictation",
    "interim_results",
    "mip_opt_out",
    "multichannel",
    "numerals",
    "profanity_filter",
    "punctuate",
    "smart_format",
    "vad_events",
    "filler_words",
    "no_delay",
];

/// Encodings Deepgram accepts (SDK enum).
const ENCODINGS: [&str; 11] = [
    "linear16", "linear32", "flac", "alaw", "mulaw", "amr-nb", "amr-wb", "opus", "ogg-opus",
    "speex", "g729",
];

/// Headerless encodings: they need `sample_rate`.
const RAW_ENCODINGS: [&str; 8] = [
    "linear16", "linear32", "alaw", "mulaw", "amr-nb", "amr-wb", "speex", "g729",
];

/// Bytes of a reconnecting stream matched against [`Options::reference_audio`].
const MATCH_BYTES: usize = 320;

/// One scripted utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// What is said, with punctuation and case.
    pub text: String,
    /// Speech start, seconds of audio.
    pub start: f64,
    /// Speech end, seconds of audio.
    pub end: f64,
}

impl Line {
    /// A line from its parts.
    pub fn new(text: impl Into<String>, start: f64, end: f64) -> Self {
        Self {
            text: text.into(),
            start,
            end,
        }
    }
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key `Authorization: Token <key>` must carry.
    pub api_key: String,
    /// What is "said" in the audio.
    pub script: Vec<Line>,
    /// The audio the test streams, to place a reconnecting stream (see the module docs).
    pub reference_audio: Option<Bytes>,
    /// Close 1011 NET-0001 after this long with nothing received (10 s).
    pub idle_timeout: Duration,
    /// Injected failures.
    pub faults: Faults,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            api_key: "test-deepgram-key".to_owned(),
            script: Vec::new(),
            reference_audio: None,
            idle_timeout: Duration::from_secs(10),
            faults: Faults::none(),
        }
    }
}

impl Options {
    /// Default options with `script`.
    pub fn with_script(script: Vec<Line>) -> Self {
        Self {
            script,
            ..Self::default()
        }
    }

    /// The same options with `faults`.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The same options with a reference for reconnecting streams.
    pub fn reference_audio(mut self, audio: impl Into<Bytes>) -> Self {
        self.reference_audio = Some(audio.into());
        self
    }

    /// The same options with another idle timeout.
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }
}

/// One handshake, accepted or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Handshake {
    /// The query pairs, decoded, in order (repeated keys kept).
    pub query: Vec<(String, String)>,
    /// The request headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// 101 when upgraded, else the refusal status.
    pub status: u16,
    /// The connection number when upgraded (0, 1, ...).
    pub connection: Option<usize>,
}

impl Handshake {
    /// The first value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of query parameter `key`.
    pub fn params<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A frame the emulator received.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// Audio.
    Audio(Bytes),
    /// A zero-length binary frame (a close request to Deepgram).
    EmptyBinary,
    /// A text frame.
    Text(String),
    /// A close frame, with its code.
    Close(Option<u16>),
}

/// A received frame and where it arrived.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The connection number.
    pub connection: usize,
    /// The frame.
    pub frame: Frame,
    /// Seconds of audio received on the connection before this frame.
    pub audio_seconds: f64,
    /// When it arrived (tokio's clock, so paused-time tests can check intervals).
    pub at: Instant,
}

/// What the emulator sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    /// A JSON text frame.
    Json(Value),
    /// A close frame.
    Close {
        /// The close code.
        code: u16,
        /// The reason.
        reason: String,
    },
    /// The connection was dropped without a close frame.
    Dropped,
}

/// A sent message and its connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The connection number.
    pub connection: usize,
    /// What was sent.
    pub sent: Sent,
}

struct Shared {
    options: Options,
    script: Vec<ScriptedLine>,
    handshakes_seen: AtomicU32,
    connections: AtomicUsize,
    handshakes: Recorded<Handshake>,
    received: Recorded<Received>,
    sent: Recorded<Outgoing>,
}

/// A running Deepgram emulator; stops when dropped.
#[derive(Debug)]
pub struct DeepgramEmulator {
    running: Running,
    handshakes: Recorded<Handshake>,
    received: Recorded<Received>,
    sent: Recorded<Outgoing>,
}

impl DeepgramEmulator {
    /// Starts an emulator on a random loopback port.
    pub async fn start(options: Options) -> Self {
        let script = options.script.iter().map(ScriptedLine::new).collect();
        let shared = Arc::new(Shared {
            options,
            script,
            handshakes_seen: AtomicU32::new(0),
            connections: AtomicUsize::new(0),
            handshakes: Recorded::default(),
            received: Recorded::default(),
            sent: Recorded::default(),
        });
        let router = Router::new()
            .route("/v1/listen", get(listen))
            .with_state(Arc::clone(&shared));
        Self {
            running: Running::serve(router).await,
            handshakes: shared.handshakes.clone(),
            received: shared.received.clone(),
            sent: shared.sent.clone(),
        }
    }

    /// `ws://127.0.0.1:PORT`, the base URL for the adapter.
    pub fn ws_url(&self) -> String {
        self.running.ws_url()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        self.running.http_url()
    }

    /// Every handshake so far.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.handshakes.snapshot()
    }

    /// Every frame received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.snapshot()
    }

    /// Everything sent so far.
    pub fn sent(&self) -> Vec<Outgoing> {
        self.sent.snapshot()
    }

    /// The audio received on `connection`, concatenated.
    pub fn audio(&self, connection: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for r in self.received.snapshot() {
            if let (true, Frame::Audio(a)) = (r.connection == connection, &r.frame) {
                out.extend_from_slice(a);
            }
        }
        out
    }

    /// The `type` of every control (text) message received, with its connection; a
    /// text frame that is not JSON with a `type` shows as `"?"`.
    pub fn control_messages(&self) -> Vec<(usize, String)> {
        self.received
            .snapshot()
            .into_iter()
            .filter_map(|r| match r.frame {
                Frame::Text(t) => Some((r.connection, message_type(&t))),
                _ => None,
            })
            .collect()
    }

    /// The JSON messages sent of `kind` (`"Results"`, `"Metadata"`, ...).
    pub fn sent_of_type(&self, kind: &str) -> Vec<(usize, Value)> {
        self.sent
            .snapshot()
            .into_iter()
            .filter_map(|o| match o.sent {
                Sent::Json(v) if v["type"] == kind => Some((o.connection, v)),
                _ => None,
            })
            .collect()
    }
}

fn message_type(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

fn request_id(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn refuse(status: u16, err_code: &str, message: &str, id: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [("content-type", "application/json")],
        json!({"err_code": err_code, "err_msg": message, "request_id": id}).to_string(),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(message) {
        headers.insert("dg-error", v);
    }
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert("dg-request-id", v);
    }
    response
}

async fn listen(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let attempt = shared.handshakes_seen.fetch_add(1, Ordering::SeqCst);
    let id = request_id(u64::from(attempt) + 1);
    let query = decode_query(query.as_deref().unwrap_or_default());
    let mut record = Handshake {
        query: query.clone(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: 101,
        connection: None,
    };
    let faults = &shared.options.faults;
    let refusal = if attempt < faults.fail_first {
        let code = match faults.status {
            429 => "TOO_MANY_REQUESTS",
            401 => "INVALID_AUTH",
            s if s >= 500 => "INTERNAL_SERVER_ERROR",
            _ => "Bad Request",
        };
        Some((
            faults.status,
            code,
            format!("injected failure {}", attempt + 1),
        ))
    } else if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(format!("Token {}", shared.options.api_key).as_str())
    {
        Some((401, "INVALID_AUTH", "Invalid credentials.".to_owned()))
    } else {
        match Params::parse(&query) {
            Ok(params) => match upgrade {
                Ok(upgrade) => {
                    let connection = shared.connections.fetch_add(1, Ordering::SeqCst);
                    record.connection = Some(connection);
                    shared.handshakes.push(record);
                    let mut response = upgrade.on_upgrade(move |socket| {
                        serve(
                            socket,
                            shared,
                            connection,
                            params,
                            request_id(1000 + connection as u64),
                        )
                    });
                    if let Ok(v) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert("dg-request-id", v);
                    }
                    return response;
                }
                Err(rejection) => {
                    record.status = rejection.status().as_u16();
                    shared.handshakes.push(record);
                    return rejection.into_response();
                }
            },
            Err(reason) => Some((400, "Bad Request", reason)),
        }
    };
    let (status, code, message) = refusal.unwrap_or((500, "INTERNAL_SERVER_ERROR", String::new()));
    record.status = status;
    shared.handshakes.push(record);
    refuse(status, code, &message, &id)
}

/// `a=b&c=d` with `+` and `%XX` decoded.
fn decode_query(query: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The options of one stream, checked.
#[derive(Debug, Clone)]
struct Params {
    model: String,
    bytes_per_second: f64,
    channels: u32,
    interim: bool,
    punctuate: bool,
    vad_events: bool,
    /// Seconds of silence before a `speech_final`; `None` when disabled.
    endpointing: Option<f64>,
    utterance_end: Option<f64>,
}

impl Params {
    fn parse(query: &[(String, String)]) -> Result<Self, String> {
        let one = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        for (k, v) in query {
            if !KNOWN_PARAMS.contains(&k.as_str()) {
                return Err(format!("unknown query parameter {k:?}"));
            }
            if BOOLEAN_PARAMS.contains(&k.as_str()) && v != "true" && v != "false" {
                return Err(format!("{k} must be true or false, got {v:?}"));
            }
        }
        let flag = |key: &str| one(key) == Some("true");
        let model = one("model")
            .filter(|m| !m.is_empty())
            .ok_or("model is required")?
            .to_owned();
        let positive = |key: &str| -> Result<Option<u32>, String> {
            match one(key) {
                None => Ok(None),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) if n > 0 => Ok(Some(n)),
                    _ => Err(format!("{key} must be a positive integer, got {v:?}")),
                },
            }
        };
        let channels = positive("channels")?.unwrap_or(1);
        let sample_rate = positive("sample_rate")?;
        let encoding = one("encoding");
        let bytes_per_sample = match encoding {
            Some(e) if !ENCODINGS.contains(&e) => {
                return Err(format!("unsupported encoding {e:?}"));
            }
            Some(e) if RAW_ENCODINGS.contains(&e) && sample_rate.is_none() => {
                return Err(format!("sample_rate is required with encoding={e}"));
            }
            Some("linear16") => 2,
            Some("linear32") => 4,
            Some("mulaw" | "alaw") => 1,
            Some(e) => {
                return Err(format!(
                    "the emulator cannot time encoding={e}: use linear16, linear32, mulaw or alaw"
                ));
            }
            None => {
                return Err("the emulator needs raw audio: set encoding and sample_rate".to_owned());
            }
        };
        let endpointing = match one("endpointing") {
            None | Some("true") => Some(0.010),
            Some("false") => None,
            Some(ms) => Some(
                ms.parse::<u32>()
                    .map_err(|_| format!("endpointing must be ms or false, got {ms:?}"))?
                    as f64
                    / 1000.0,
            ),
        };
        let utterance_end = match one("utterance_end_ms") {
            None => None,
            Some(ms) => Some(
                ms.parse::<u32>()
                    .map_err(|_| format!("utterance_end_ms must be ms, got {ms:?}"))?
                    as f64
                    / 1000.0,
            ),
        };
        if utterance_end.is_some() && !flag("interim_results") {
            return Err("utterance_end_ms requires interim_results=true".to_owned());
        }
        let rate = f64::from(sample_rate.unwrap_or(8000));
        Ok(Self {
            model,
            bytes_per_second: rate * f64::from(bytes_per_sample) * f64::from(channels),
            channels,
            interim: flag("interim_results"),
            punctuate: flag("punctuate") || flag("smart_format"),
            vad_events: flag("vad_events"),
            endpointing,
            utterance_end,
        })
    }
}

/// A script line split into timed words.
#[derive(Debug, Clone)]
struct ScriptedLine {
    start: f64,
    end: f64,
    /// (punctuated, plain, start, end)
    words: Vec<(String, String, f64, f64)>,
}

impl ScriptedLine {
    fn new(line: &Line) -> Self {
        let tokens: Vec<&str> = line.text.split_whitespace().collect();
        let n = tokens.len().max(1) as f64;
        let step = (line.end - line.start).max(0.0) / n;
        let words = tokens
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let plain: String = w
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .collect::<String>()
                    .to_lowercase();
                let start = line.start + step * i as f64;
                ((*w).to_owned(), plain, start, start + step)
            })
            .collect();
        Self {
            start: line.start,
            end: line.end,
            words,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct LineState {
    /// Words already in a final result.
    finalized: usize,
    /// Words shown in the last interim.
    shown: usize,
    speech_started: bool,
    final_sent: bool,
    utterance_end_sent: bool,
}

/// One connection's recognition state.
struct Stream {
    params: Params,
    request_id: String,
    bytes: u64,
    /// Script time of this connection's audio start, once known.
    offset: Option<f64>,
    prefix: Vec<u8>,
    /// End of the last final, connection time.
    cursor: f64,
    lines: Vec<LineState>,
}

fn round_ms(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Stream {
    fn seconds(&self) -> f64 {
        self.bytes as f64 / self.params.bytes_per_second
    }

    fn audio(&mut self, audio: &[u8], reference: Option<&Bytes>) {
        self.bytes += audio.len() as u64;
        if self.offset.is_some() {
            return;
        }
        let Some(reference) = reference else {
            self.offset = Some(0.0);
            return;
        };
        self.prefix.extend_from_slice(audio);
        if self.prefix.len() < MATCH_BYTES {
            return;
        }
        let needle = &self.prefix[..MATCH_BYTES];
        let found = reference.windows(MATCH_BYTES).position(|w| w == needle);
        if found.is_none() {
            tracing::warn!("deepgram emulator: stream start not found in the reference audio");
        }
        self.offset = Some(found.unwrap_or(0) as f64 / self.params.bytes_per_second);
        self.prefix = Vec::new();
    }

    /// Once the offset is known: words that start before this connection's audio were
    /// not heard on it (a word cut in two is not recognised either).
    fn place(&mut self, script: &[ScriptedLine]) {
        let Some(offset) = self.offset else {
            return;
        };
        for (line, state) in script.iter().zip(&mut self.lines) {
            let cut = line
                .words
                .iter()
                .filter(|(_, _, s, _)| *s < offset - 1e-9)
                .count();
            if cut == 0 {
                continue;
            }
            state.finalized = cut;
            state.shown = cut;
            state.speech_started = true;
            if cut == line.words.len() {
                state.final_sent = true;
                state.utterance_end_sent = true;
            }
        }
    }

    fn results(
        &self,
        words: &[(String, String, f64, f64)],
        span: (f64, f64),
        is_final: bool,
        speech_final: bool,
        from_finalize: bool,
    ) -> Value {
        let offset = self.offset.unwrap_or(0.0);
        let punctuate = self.params.punctuate;
        let transcript = words
            .iter()
            .map(|(p, w, _, _)| if punctuate { p.as_str() } else { w.as_str() })
            .collect::<Vec<_>>()
            .join(" ");
        let words: Vec<Value> = words
            .iter()
            .map(|(p, w, s, e)| {
                let mut word = json!({
                    "word": w, "start": round_ms(s - offset), "end": round_ms(e - offset),
                    "confidence": 0.98,
                });
                if punctuate {
                    word["punctuated_word"] = json!(p);
                }
                word
            })
            .collect();
        json!({
            "type": "Results",
            "channel_index": [0, self.params.channels],
            "duration": round_ms((span.1 - span.0).max(0.0)),
            "start": round_ms(span.0),
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": from_finalize,
            "channel": {"alternatives": [{
                "transcript": transcript,
                "confidence": if words.is_empty() { 0.0 } else { 0.98 },
                "words": words,
            }]},
            "metadata": {
                "request_id": self.request_id,
                "model_uuid": "00000000-0000-4000-8000-0000000000ee",
                "model_info": {"name": self.params.model, "version": "emulator", "arch": "emulator"},
            },
        })
    }

    /// What the audio received so far makes the service say.
    fn advance(&mut self, script: &[ScriptedLine]) -> Vec<Value> {
        let mut out = Vec::new();
        let Some(offset) = self.offset else {
            return out;
        };
        let pos = self.seconds();
        for (i, line) in script.iter().enumerate() {
            let start = line.start - offset;
            let end = line.end - offset;
            let state = &mut self.lines[i];
            if pos < start {
                break;
            }
            if self.params.vad_events && !state.speech_started {
                state.speech_started = true;
                out.push(json!({"type": "SpeechStarted", "channel": [0, self.params.channels], "timestamp": round_ms(start.max(0.0))}));
            }
            let heard = line
                .words
                .iter()
                .filter(|(_, _, _, e)| e - offset <= pos + 1e-6)
                .count();
            if !state.final_sent {
                let final_at = end + self.params.endpointing.unwrap_or(0.5);
                if pos + 1e-6 >= final_at {
                    let (finalized, cursor) = (state.finalized, self.cursor);
                    state.finalized = line.words.len();
                    state.final_sent = true;
                    let speech_final = self.params.endpointing.is_some();
                    self.cursor = end.max(cursor);
                    out.push(self.results(
                        &line.words[finalized..],
                        (cursor, end.max(cursor)),
                        true,
                        speech_final,
                        false,
                    ));
                    continue_utterance_end(self, script, i, pos, &mut out);
                    continue;
                }
                if self.params.interim && heard > state.finalized.max(state.shown) {
                    state.shown = heard;
                    let finalized = state.finalized;
                    out.push(self.results(
                        &line.words[finalized..heard],
                        (self.cursor, pos),
                        false,
                        false,
                        false,
                    ));
                }
            } else {
                continue_utterance_end(self, script, i, pos, &mut out);
            }
        }
        out
    }

    /// `Finalize` (or the flush before close): a final for every word heard and not
    /// yet final; with `finalize`, an empty final when there is none.
    fn flush(&mut self, script: &[ScriptedLine], finalize: bool) -> Vec<Value> {
        let mut out = Vec::new();
        let pos = self.seconds();
        let offset = self.offset.unwrap_or(0.0);
        for (i, line) in script.iter().enumerate() {
            let state = &self.lines[i];
            if state.final_sent || line.start - offset > pos {
                continue;
            }
            let heard = line
                .words
                .iter()
                .filter(|(_, _, _, e)| e - offset <= pos + 1e-6)
                .count();
            if heard <= state.finalized {
                continue;
            }
            let finalized = state.finalized;
            let cursor = self.cursor;
            out.push(self.results(
                &line.words[finalized..heard],
                (cursor, pos),
                true,
                false,
                finalize,
            ));
            self.cursor = pos;
            let state = &mut self.lines[i];
            state.finalized = heard;
            state.shown = heard;
            if heard == line.words.len() {
                state.final_sent = true;
            }
        }
        if out.is_empty() && finalize {
            let cursor = self.cursor;
            out.push(self.results(&[], (cursor, pos.max(cursor)), true, false, true));
            self.cursor = pos.max(cursor);
        }
        out
    }

    fn metadata(&self) -> Value {
        json!({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            "created": "2026-01-01T00:00:00.000Z",
            "duration": round_ms(self.seconds()),
            "channels": self.params.channels,
        })
    }
}

/// `UtteranceEnd` for line `i` once its gap has passed with no new speech.
fn continue_utterance_end(
    stream: &mut Stream,
    script: &[ScriptedLine],
    i: usize,
    pos: f64,
    out: &mut Vec<Value>,
) {
    let Some(gap) = stream.params.utterance_end else {
        return;
    };
    let offset = stream.offset.unwrap_or(0.0);
    let end = script[i].end - offset;
    let state = &mut stream.lines[i];
    if state.utterance_end_sent || pos + 1e-6 < end + gap {
        return;
    }
    state.utterance_end_sent = true;
    let resumed = script
        .get(i + 1)
        .is_some_and(|next| next.start - offset < end + gap);
    if !resumed {
        out.push(json!({"type": "UtteranceEnd", "channel": [0, stream.params.channels], "last_word_end": round_ms(end)}));
    }
}

/// How a connection ends.
enum End {
    /// Send this close frame, then wait for the client's.
    Close(u16, &'static str),
    /// Drop the TCP connection with no close frame.
    Drop,
    /// The client closed or went away.
    Gone,
}

async fn serve(
    mut socket: WebSocket,
    shared: Arc<Shared>,
    connection: usize,
    params: Params,
    request_id: String,
) {
    let mut stream = Stream {
        lines: vec![LineState::default(); shared.script.len()],
        params,
        request_id,
        bytes: 0,
        offset: None,
        prefix: Vec::new(),
        cursor: 0.0,
    };
    let mut results_sent = 0u32;
    let mut last_received = Instant::now();
    let record = |frame: Frame, seconds: f64| {
        shared.received.push(Received {
            connection,
            frame,
            audio_seconds: seconds,
            at: Instant::now(),
        });
    };
    let end = loop {
        let idle_at = last_received + shared.options.idle_timeout;
        let message = tokio::select! {
            m = socket.recv() => m,
            () = sleep_until(idle_at) => break End::Close(1011, NET0001_REASON),
        };
        let mut replies = Vec::new();
        let mut then = None;
        match message {
            None | Some(Err(_)) => break End::Gone,
            Some(Ok(Message::Binary(audio))) => {
                last_received = Instant::now();
                if audio.is_empty() {
                    record(Frame::EmptyBinary, stream.seconds());
                    replies = stream.flush(&shared.script, false);
                    replies.push(stream.metadata());
                    then = Some(End::Close(1000, ""));
                } else {
                    record(Frame::Audio(audio.clone()), stream.seconds());
                    let placed = stream.offset.is_some();
                    stream.audio(&audio, shared.options.reference_audio.as_ref());
                    if !placed {
                        stream.place(&shared.script);
                    }
                    replies = stream.advance(&shared.script);
                }
            }
            Some(Ok(Message::Text(text))) => {
                last_received = Instant::now();
                record(Frame::Text(text.to_string()), stream.seconds());
                match message_type(&text).as_str() {
                    "KeepAlive" => {}
                    "Finalize" => replies = stream.flush(&shared.script, true),
                    "CloseStream" => {
                        replies = stream.flush(&shared.script, false);
                        replies.push(stream.metadata());
                        then = Some(End::Close(1000, ""));
                    }
                    _ => replies.push(json!({
                        "type": "Error",
                        "variant": "SchemaError",
                        "description": "Received a text message that is not a known control message (KeepAlive, Finalize, CloseStream).",
                        "message": text.to_string(),
                    })),
                }
            }
            Some(Ok(Message::Close(frame))) => {
                record(Frame::Close(frame.map(|f| f.code)), stream.seconds());
                break End::Gone;
            }
            Some(Ok(_)) => continue,
        }
        let mut dropped = false;
        for reply in replies {
            let is_results = reply["type"] == "Results";
            if is_results && !shared.options.faults.latency.is_zero() {
                sleep(shared.options.faults.latency).await;
            }
            if socket
                .send(Message::Text(reply.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
            shared.sent.push(Outgoing {
                connection,
                sent: Sent::Json(reply),
            });
            if is_results {
                results_sent += 1;
                if connection == 0 && shared.options.faults.disconnect_after == Some(results_sent) {
                    dropped = true;
                    break;
                }
            }
        }
        if dropped {
            break End::Drop;
        }
        if let Some(end) = then {
            break end;
        }
    };
    match end {
        End::Close(code, reason) => {
            shared.sent.push(Outgoing {
                connection,
                sent: Sent::Close {
                    code,
                    reason: reason.to_owned(),
                },
            });
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            if socket.send(Message::Close(Some(frame))).await.is_ok() {
                // Wait for the client's close so the handshake completes. No timer
                // here: under a paused clock it could fire before the reply is read.
                while let Some(Ok(m)) = socket.recv().await {
                    if let Message::Close(frame) = m {
                        record(Frame::Close(frame.map(|f| f.code)), stream.seconds());
                        break;
                    }
                }
            }
        }
        End::Drop => {
            shared.sent.push(Outgoing {
                connection,
                sent: Sent::Dropped,
            });
            // Dropping the socket closes TCP with no close frame.
            drop(socket);
        }
        End::Gone => {
            let _ = socket.flush().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        decode_query(s)
    }

    #[test]
    fn query_decoding_and_validation() {
        assert_eq!(
            q("keyterm=eighty+lakhs&x=%41%zz"),
            vec![
                ("keyterm".to_owned(), "eighty lakhs".to_owned()),
                ("x".to_owned(), "A%zz".to_owned())
            ]
        );
        assert!(Params::parse(&q("model=nova-3&encoding=mulaw&sample_rate=8000")).is_ok());
        for bad in [
            "encoding=mulaw&sample_rate=8000",
            "model=nova-3&encoding=mulaw",
            "model=nova-3&encoding=mp3&sample_rate=8000",
            "model=nova-3&encoding=mulaw&sample_rate=8000&interim_results=yes",
            "model=nova-3&encoding=mulaw&sample_rate=8000&utterance_end_ms=1000",
            "model=nova-3&encoding=mulaw&sample_rate=8000&endpointing=soon",
            "model=nova-3&encoding=mulaw&sample_rate=8000&interimresults=true",
            "model=nova-3&encoding=mulaw&sample_rate=0",
        ] {
            assert!(Params::parse(&q(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_script_is_recognised_on_the_audio_clock() {
        let script = vec![ScriptedLine::new(&Line::new(
            "Hello there, friend.",
            0.5,
            1.5,
        ))];
        let params = Params::parse(&q(
            "model=m&encoding=mulaw&sample_rate=8000&interim_results=true&vad_events=true&utterance_end_ms=1000&endpointing=300&punctuate=true",
        ))
        .expect("params");
        let mut stream = Stream {
            params,
            request_id: "r".into(),
            bytes: 0,
            offset: None,
            prefix: Vec::new(),
            cursor: 0.0,
            lines: vec![LineState::default()],
        };
        let mut types = Vec::new();
        for _ in 0..150 {
            // 20 ms frames, 3 s.
            stream.audio(&[0xFF; 160], None);
            for v in stream.advance(&script) {
                types.push(format!(
                    "{}:{}",
                    v["type"].as_str().unwrap_or("?"),
                    v["is_final"]
                        .as_bool()
                        .map_or("", |f| if f { "final" } else { "interim" })
                ));
                if v["is_final"] == true {
                    assert_eq!(
                        v["channel"]["alternatives"][0]["transcript"],
                        "Hello there, friend."
                    );
                    assert_eq!(v["speech_final"], true);
                }
            }
        }
        assert_eq!(
            types,
            [
                "SpeechStarted:",
                "Results:interim",
                "Results:interim",
                "Results:interim",
                "Results:final",
                "UtteranceEnd:"
            ]
        );
    }
}
