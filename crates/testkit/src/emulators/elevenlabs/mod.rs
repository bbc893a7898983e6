//! The ElevenLabs text-to-speech emulator: the WebSocket `multi-stream-input` and
//! `stream-input` endpoints and HTTP `POST .../stream` (plus the non-streaming
//! `POST /v1/text-to-speech/{voice_id}`), written from `../shared/specs/providers.md`
//! section 2 and strict the way the service is.
//!
//! Audio is generated deterministically from the text: [`ElevenLabsOptions::ms_per_char`]
//! milliseconds of a 440 Hz tone per non-whitespace character, in the requested
//! `output_format` (mu-law, A-law or PCM16 at its rate; MP3 and Opus formats get filler
//! bytes at their bit rate), sent in pieces of [`ElevenLabsOptions::message_ms`]. Tests
//! can therefore count bytes: 8 kHz mu-law is 8 bytes per millisecond.
//!
//! # What it enforces
//!
//! - Auth: the `xi-api-key` header. A wrong key is refused at the handshake (or the
//!   HTTP request) with 401 and `{"detail":{"status":"invalid_api_key",...}}`. On the
//!   WebSocket the key may instead come in the connection's first message
//!   (`xi_api_key`, or `authorization: "Bearer <key>"`); if neither the header nor the
//!   first message carries it, the socket is closed 1008.
//! - Query parameters: only the documented ones, with valid values (`output_format`
//!   from the endpoint's list, `inactivity_timeout` 1 to 180, booleans as
//!   `true`/`false`); anything else is a 422 at the handshake. `language_code` with a
//!   model that takes none is a 400.
//! - Messages: text frames of JSON objects with the documented fields only; a binary
//!   frame closes 1003, bad JSON or an unknown field closes 1008 with an error message
//!   first.
//! - `voice_settings` and `generation_config` are fixed by a context's first message
//!   (or the connection's, on `stream-input`): a later message that carries them
//!   changed, or carries them when the first did not, closes the socket 1008 with the
//!   service's reason ("voice_settings field must be provided in the first message and
//!   then either be not provided or not change.").
//! - At most [`ElevenLabsOptions::max_contexts`] (5) contexts per connection: any
//!   message naming a new `context_id` (a flush or keepalive included) opens one; the
//!   sixth gets `max_active_conversations` and close 1008. A context holds its slot
//!   until its `isFinal` has been sent.
//! - Inactivity: `inactivity_timeout` seconds (default 20) without a message for an
//!   open context, or without any message at all, sends `input_timeout_exceeded` and
//!   closes 1008 (the reason truncated to the 123 bytes a close frame holds). Timers
//!   use tokio's clock, so paused-time tests control them.
//! - Generation follows the context's `chunk_length_schedule` (default
//!   `[120,160,250,290]`): buffered text is synthesised once it reaches the next
//!   threshold, or on `flush`. `close_context` drops unflushed text but audio already
//!   generated is still sent (the late audio a client must discard), then
//!   `{"isFinal":true,"contextId":...}`. `close_socket` finishes every context the
//!   same way and closes 1000. On `stream-input`, `{"text":""}` synthesises the rest,
//!   sends `isFinal` and closes 1000.
//! - Every response on `multi-stream-input` carries `contextId`.
//!
//! # Knobs
//!
//! [`Faults`]: `latency` before the first audio of each generation (WebSocket) or the
//! first body byte (HTTP); `fail_first`/`status` refuse the first requests and
//! handshakes (counted together) with that status and the service's error body;
//! `disconnect_after` cuts the first connection (no close frame) or the first HTTP body
//! after that many audio messages or chunks. [`ElevenLabsOptions::chunk_interval`]
//! paces audio messages; the other options set the audio arithmetic, the default
//! inactivity timeout and the context limit.
//!
//! Everything received is recorded: handshakes ([`ElevenLabsEmulator::connections`]),
//! WebSocket messages with their arrival time ([`ElevenLabsEmulator::messages`]),
//! close frames sent ([`ElevenLabsEmulator::closes`]) and HTTP requests
//! ([`ElevenLabsEmulator::http_requests`]).

mod http;
mod ws;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use voxline_audio::tone::ToneGenerator;

use super::{Faults, Recorded, Running};

/// The key the emulator accepts unless told otherwise.
pub const DEFAULT_API_KEY: &str = "test-elevenlabs-key";

/// The most contexts one `multi-stream-input` connection may hold.
pub const MAX_CONTEXTS: usize = 5;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct ElevenLabsOptions {
    /// The only key accepted.
    pub api_key: String,
    /// Latency, refusals and disconnects (see the module docs).
    pub faults: Faults,
    /// Milliseconds of audio per non-whitespace character of text.
    pub ms_per_char: u32,
    /// Milliseconds of audio per WebSocket audio message or HTTP body chunk.
    pub message_ms: u32,
    /// Pause between consecutive audio messages (or body chunks).
    pub chunk_interval: Duration,
    /// The inactivity timeout when the client sends no `inactivity_timeout` (20 s).
    pub default_inactivity_timeout: Duration,
    /// Contexts per connection (5, like the service).
    pub max_contexts: usize,
}

impl Default for ElevenLabsOptions {
    fn default() -> Self {
        Self {
            api_key: DEFAULT_API_KEY.to_owned(),
            faults: Faults::none(),
            ms_per_char: 10,
            message_ms: 50,
            chunk_interval: Duration::ZERO,
            default_inactivity_timeout: Duration::from_secs(20),
            max_contexts: MAX_CONTEXTS,
        }
    }
}

impl ElevenLabsOptions {
    /// The same options with `faults`.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The same options with a pause between audio messages.
    pub fn chunk_interval(mut self, interval: Duration) -> Self {
        self.chunk_interval = interval;
        self
    }
}

/// Which WebSocket endpoint a connection used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/text-to-speech/{voice_id}/stream-input` (one context).
    StreamInput,
    /// `/v1/text-to-speech/{voice_id}/multi-stream-input`.
    MultiStreamInput,
}

/// A WebSocket handshake the emulator saw, accepted or not.
#[derive(Debug, Clone, PartialEq)]
pub struct WsConnection {
    /// Numbered from 0 in arrival order.
    pub id: usize,
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// The voice id from the path.
    pub voice_id: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The `xi-api-key` header, if sent.
    pub api_key: Option<String>,
    /// 101 if upgraded, else the refusal status.
    pub status: u16,
}

/// A WebSocket message the emulator received.
#[derive(Debug, Clone, PartialEq)]
pub struct WsReceived {
    /// The connection's id.
    pub connection: usize,
    /// When it arrived, from the emulator's start (tokio time).
    pub at: Duration,
    /// The parsed JSON (`Value::Null` for a binary frame or unparsable text).
    pub message: Value,
}

/// A close frame the emulator sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsClose {
    /// The connection's id.
    pub connection: usize,
    /// The close code.
    pub code: u16,
    /// The reason.
    pub reason: String,
}

/// An HTTP request the emulator answered.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    /// The path.
    pub path: String,
    /// The query parameters.
    pub query: BTreeMap<String, String>,
    /// The `xi-api-key` header, if sent.
    pub api_key: Option<String>,
    /// The JSON body (`Value::Null` if it was not JSON).
    pub body: Value,
    /// The status answered.
    pub status: u16,
}

/// A running ElevenLabs emulator; stops when dropped.
#[derive(Debug)]
pub struct ElevenLabsEmulator {
    server: Running,
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    options: ElevenLabsOptions,
    started: tokio::time::Instant,
    /// Requests and handshakes seen, for `fail_first`.
    attempts: AtomicU32,
    /// Whether `disconnect_after` has been used up.
    disconnected: AtomicBool,
    next_connection: AtomicUsize,
    connections: Recorded<WsConnection>,
    messages: Recorded<WsReceived>,
    closes: Recorded<WsClose>,
    http: Recorded<HttpRequest>,
}

impl Shared {
    /// Whether this request or handshake is one of the first `fail_first`.
    fn should_fail(&self) -> bool {
        let faults = &self.options.faults;
        faults.fail_first > 0 && self.attempts.fetch_add(1, Ordering::SeqCst) < faults.fail_first
    }

    /// Whether the stream that just sent its `sent`-th audio piece must be cut (only
    /// the first stream to get there is).
    fn cut_after(&self, sent: u32) -> bool {
        self.options
            .faults
            .disconnect_after
            .is_some_and(|n| sent >= n && !self.disconnected.swap(true, Ordering::SeqCst))
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

impl ElevenLabsEmulator {
    /// Starts an emulator on a random loopback port.
    pub async fn start(options: ElevenLabsOptions) -> Self {
        let shared = Arc::new(Shared {
            options,
            started: tokio::time::Instant::now(),
            attempts: AtomicU32::new(0),
            disconnected: AtomicBool::new(false),
            next_connection: AtomicUsize::new(0),
            connections: Recorded::default(),
            messages: Recorded::default(),
            closes: Recorded::default(),
            http: Recorded::default(),
        });
        let router = Router::new()
            .route(
                "/v1/text-to-speech/{voice_id}/multi-stream-input",
                get(ws::multi_stream_input),
            )
            .route(
                "/v1/text-to-speech/{voice_id}/stream-input",
                get(ws::stream_input),
            )
            .route("/v1/text-to-speech/{voice_id}/stream", post(http::stream))
            .route("/v1/text-to-speech/{voice_id}", post(http::convert))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let server = Running::serve(router).await;
        Self { server, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_url(&self) -> String {
        self.server.http_url()
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_url(&self) -> String {
        self.server.ws_url()
    }

    /// The options it runs with.
    pub fn options(&self) -> &ElevenLabsOptions {
        &self.shared.options
    }

    /// Every WebSocket handshake, in order.
    pub fn connections(&self) -> Vec<WsConnection> {
        self.shared.connections.snapshot()
    }

    /// Every WebSocket message received, in order.
    pub fn messages(&self) -> Vec<WsReceived> {
        self.shared.messages.snapshot()
    }

    /// The messages of one connection.
    pub fn messages_of(&self, connection: usize) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m.connection == connection)
            .map(|m| m.message)
            .collect()
    }

    /// Every close frame sent, in order.
    pub fn closes(&self) -> Vec<WsClose> {
        self.shared.closes.snapshot()
    }

    /// Every HTTP request answered, in order.
    pub fn http_requests(&self) -> Vec<HttpRequest> {
        self.shared.http.snapshot()
    }

    /// How many bytes of audio `text` becomes in `output_format` (what tests expect).
    pub fn audio_bytes_for(&self, text: &str, output_format: &str) -> usize {
        OutputFormat::parse(output_format).map_or(0, |f| {
            f.bytes_for(speech_ms(text, self.shared.options.ms_per_char))
        })
    }
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "Not Found")
}

/// The service's error body: `{"detail":{"status":...,"message":...}}`.
fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"detail": {"status": code, "message": message}})),
    )
        .into_response()
}

/// The error for an injected failure status.
fn fault_response(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match status.as_u16() {
        401 => invalid_key(),
        429 => error_response(
            status,
            "too_many_concurrent_requests",
            "Too many concurrent requests. Your current subscription is associated with a \
             maximum of 2 concurrent requests",
        ),
        _ => error_response(status, "internal_server_error", "Internal server error"),
    }
}

fn invalid_key() -> Response {
    error_response(
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
        "Invalid API key",
    )
}

/// A FastAPI-style validation error (422).
fn validation_error(location: &[&str], message: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        axum::Json(json!({"detail": [{"loc": location, "msg": message, "type": "value_error"}]})),
    )
        .into_response()
}

/// Models that take no `language_code`.
fn model_rejects_language(model: &str) -> bool {
    matches!(
        model,
        "eleven_multilingual_v2" | "eleven_flash_v2" | "eleven_turbo_v2" | "eleven_monolingual_v1"
    )
}

/// Milliseconds of speech for `text`.
fn speech_ms(text: &str, ms_per_char: u32) -> u64 {
    text.chars().filter(|c| !c.is_whitespace()).count() as u64 * u64::from(ms_per_char)
}

/// An `output_format` value the emulator can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutputFormat {
    Pcm(u32),
    Ulaw,
    Alaw,
    /// Compressed (MP3, Opus): filler bytes at this many bytes per millisecond.
    Compressed(u32),
}

impl OutputFormat {
    /// Formats the HTTP endpoints accept.
    const HTTP: &'static [&'static str] = &[
        "mp3_22050_32",
        "mp3_24000_48",
        "mp3_44100_32",
        "mp3_44100_64",
        "mp3_44100_96",
        "mp3_44100_128",
        "mp3_44100_192",
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_32000",
        "pcm_44100",
        "pcm_48000",
        "ulaw_8000",
        "alaw_8000",
        "opus_48000_32",
        "opus_48000_64",
        "opus_48000_96",
        "opus_48000_128",
        "opus_48000_192",
    ];

    /// Formats the WebSocket endpoints accept (the asyncapi list plus `pcm_8000`, which
    /// pipecat uses in production).
    const WS: &'static [&'static str] = &[
        "mp3_44100",
        "mp3_44100_128",
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_44100",
        "ulaw_8000",
    ];

    fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('_');
        let kind = parts.next()?;
        let rate: u32 = parts.next()?.parse().ok()?;
        let kbps: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
        match (kind, kbps) {
            ("pcm", None) => Some(Self::Pcm(rate)),
            ("ulaw", None) if rate == 8000 => Some(Self::Ulaw),
            ("alaw", None) if rate == 8000 => Some(Self::Alaw),
            ("mp3" | "opus", kbps) => Some(Self::Compressed(kbps.unwrap_or(128) / 8)),
            _ => None,
        }
    }

    fn sample_rate(self) -> u32 {
        match self {
            Self::Pcm(rate) => rate,
            Self::Ulaw | Self::Alaw => 8000,
            Self::Compressed(_) => 8000,
        }
    }

    fn bytes_for(self, ms: u64) -> usize {
        match self {
            Self::Compressed(per_ms) => (ms * u64::from(per_ms)) as usize,
            Self::Pcm(_) => self.samples_for(ms) * 2,
            Self::Ulaw | Self::Alaw => self.samples_for(ms),
        }
    }

    fn samples_for(self, ms: u64) -> usize {
        (ms * u64::from(self.sample_rate()) / 1000) as usize
    }
}

/// Turns text into audio pieces in one output format, continuing the tone's phase.
#[derive(Debug)]
struct Synth {
    format: OutputFormat,
    tone: ToneGenerator,
    ms_per_char: u32,
    message_ms: u32,
}

impl Synth {
    fn new(format: OutputFormat, options: &ElevenLabsOptions) -> Self {
        Self {
            format,
            tone: ToneGenerator::sine(format.sample_rate(), 440.0, 0.25),
            ms_per_char: options.ms_per_char,
            message_ms: options.message_ms.max(1),
        }
    }

    /// The audio for `text`, cut into pieces of `message_ms`.
    fn pieces(&mut self, text: &str) -> Vec<Vec<u8>> {
        let mut left = speech_ms(text, self.ms_per_char);
        let mut pieces = Vec::new();
        while left > 0 {
            let ms = left.min(u64::from(self.message_ms));
            left -= ms;
            pieces.push(self.audio(ms));
        }
        pieces
    }

    fn audio(&mut self, ms: u64) -> Vec<u8> {
        let samples = self.tone.generate(self.format.samples_for(ms));
        let mut out = Vec::with_capacity(self.format.bytes_for(ms));
        match self.format {
            OutputFormat::Pcm(_) => voxline_audio::pcm::encode_le(&samples, &mut out),
            OutputFormat::Ulaw => voxline_audio::g711::mulaw::encode(&samples, &mut out),
            OutputFormat::Alaw => voxline_audio::g711::alaw::encode(&samples, &mut out),
            OutputFormat::Compressed(_) => out.resize(self.format.bytes_for(ms), 0),
        }
        out
    }
}

/// Character alignment for a generation, in the WebSocket's shape.
fn alignment(text: &str, ms_per_char: u32) -> Value {
    let chars: Vec<String> = text.chars().map(String::from).collect();
    let mut starts = Vec::with_capacity(chars.len());
    let mut durations = Vec::with_capacity(chars.len());
    let mut at = 0u64;
    for c in text.chars() {
        let d = if c.is_whitespace() {
            0
        } else {
            u64::from(ms_per_char)
        };
        starts.push(at);
        durations.push(d);
        at += d;
    }
    json!({"chars": chars, "charStartTimesMs": starts, "charDurationsMs": durations})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_size() {
        assert_eq!(OutputFormat::parse("ulaw_8000"), Some(OutputFormat::Ulaw));
        assert_eq!(
            OutputFormat::parse("pcm_16000"),
            Some(OutputFormat::Pcm(16000))
        );
        assert_eq!(
            OutputFormat::parse("mp3_44100_128"),
            Some(OutputFormat::Compressed(16))
        );
        assert_eq!(OutputFormat::parse("ulaw_16000"), None);
        assert_eq!(OutputFormat::Ulaw.bytes_for(130), 1040);
        assert_eq!(OutputFormat::Pcm(16000).bytes_for(10), 320);
    }

    #[test]
    fn synth_cuts_pieces_of_message_ms() {
        let options = ElevenLabsOptions::default();
        let mut synth = Synth::new(OutputFormat::Ulaw, &options);
        // 11 non-space characters: 110 ms = 50 + 50 + 10.
        let pieces = synth.pieces("Hello there. ");
        let sizes: Vec<usize> = pieces.iter().map(Vec::len).collect();
        assert_eq!(sizes, [400, 400, 80]);
        assert!(pieces[0].iter().any(|&b| b != 0xFF), "a tone, not silence");
    }
}
