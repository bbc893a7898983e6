//! Azure AI Speech emulator: the TTS REST endpoint, the STT REST endpoint for short
//! audio and the token exchange, on one loopback port, written from
//! `../shared/specs/providers.md` §3 (and the service's REST documentation).
//!
//! Endpoints:
//! - `POST /cognitiveservices/v1` (TTS). Requires `Ocp-Apim-Subscription-Key` equal to
//!   [`Config::key`] or `Authorization: Bearer <token>` with a token this emulator
//!   issued (else 401, empty body); `Content-Type: application/ssml+xml` (else 415);
//!   `X-Microsoft-OutputFormat` from the service's list (else 400); a `User-Agent` of
//!   1 to 254 characters (else 400); an SSML body that is well-formed XML (a raw `&`
//!   or `<` in text is a 400 with an empty body, as the service answers), whose root
//!   is `speak` with `version`, `xmlns="http://www.w3.org/2001/10/synthesis"` and
//!   `xml:lang`, with 1 to 50 `voice` elements each with a `name`, and no text outside
//!   them. Answers 200 with deterministic audio in the requested format:
//!   [`Config::ms_per_char`] of a 440 Hz tone per character of spoken text, streamed in
//!   chunks of [`Config::chunk_ms`] with [`Config::chunk_interval`] between them. The
//!   `raw-*` PCM, mu-law and A-law formats are real audio, `riff-*` the same with a
//!   WAV header; compressed formats (mp3, opus, silk, amr) get filler bytes.
//! - `POST /speech/recognition/{conversation|interactive|dictation}/cognitiveservices/v1`
//!   (STT). Key or token (missing: 403, wrong: 401, as the documentation's status
//!   table says); `language` query parameter required and well-formed (else 400);
//!   `format` `simple`|`detailed` and `profanity` `masked`|`removed`|`raw` when given
//!   (else 400); `Content-Type: audio/wav; codecs=audio/pcm; samplerate=16000` (or
//!   `audio/ogg; codecs=opus`, accepted without decoding), else 415; `Accept`, when
//!   given, must allow `application/json` (else 406); the WAV must be PCM, 16-bit,
//!   mono, 16 kHz (else 400) and at most 60 s long (else 400). Answers with the next
//!   of [`Config::recognitions`] (then `NoMatch`, or `InitialSilenceTimeout` for
//!   silent audio) in the simple or detailed JSON shape; `Offset`/`Duration` are the
//!   scripted ones or measured from where the WAV's audio is not silent.
//! - `POST /sts/v1.0/issueToken`: the key header gives a token as text (401 without).
//!
//! Faults ([`Faults`]): `latency` before every TTS/STT answer; `fail_first` TTS/STT
//! requests answered with `status` (429 carries `Retry-After: 1`, 401 the service's
//! access-denied body); `disconnect_after: Some(n)` cuts the first TTS response after
//! `n` audio chunks, and the first STT response right after its headers.
//!
//! Everything received is recorded: [`Emulator::tts`], [`Emulator::stt`],
//! [`Emulator::tokens`], and how each TTS audio stream ended ([`Emulator::streams`]).

pub mod xml;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::stream;
use voxline_audio::{AudioFormat, Encoding, Transcoder};

use super::{Faults, Recorded, Running};

/// The key the emulator accepts unless configured otherwise.
pub const DEFAULT_KEY: &str = "azure-emulator-key";
/// The SSML namespace `speak` must declare.
pub const SSML_NAMESPACE: &str = "http://www.w3.org/2001/10/synthesis";
/// The longest audio the STT endpoint takes.
pub const MAX_STT_AUDIO: Duration = Duration::from_secs(60);

/// The service's output formats, streaming and RIFF (`X-Microsoft-OutputFormat`).
pub const OUTPUT_FORMATS: &[&str] = &[
    "amr-wb-16000hz",
    "audio-16khz-16bit-32kbps-mono-opus",
    "audio-16khz-32kbitrate-mono-mp3",
    "audio-16khz-64kbitrate-mono-mp3",
    "audio-16khz-128kbitrate-mono-mp3",
    "audio-24khz-16bit-24kbps-mono-opus",
    "audio-24khz-16bit-48kbps-mono-opus",
    "audio-24khz-48kbitrate-mono-mp3",
    "audio-24khz-96kbitrate-mono-mp3",
    "audio-24khz-160kbitrate-mono-mp3",
    "audio-48khz-96kbitrate-mono-mp3",
    "audio-48khz-192kbitrate-mono-mp3",
    "ogg-16khz-16bit-mono-opus",
    "ogg-24khz-16bit-mono-opus",
    "ogg-48khz-16bit-mono-opus",
    "raw-8khz-8bit-mono-alaw",
    "raw-8khz-8bit-mono-mulaw",
    "raw-8khz-16bit-mono-pcm",
    "raw-16khz-16bit-mono-pcm",
    "raw-16khz-16bit-mono-truesilk",
    "raw-22050hz-16bit-mono-pcm",
    "raw-24khz-16bit-mono-pcm",
    "raw-24khz-16bit-mono-truesilk",
    "raw-44100hz-16bit-mono-pcm",
    "raw-48khz-16bit-mono-pcm",
    "webm-16khz-16bit-mono-opus",
    "webm-24khz-16bit-24kbps-mono-opus",
    "webm-24khz-16bit-mono-opus",
    "riff-8khz-8bit-mono-alaw",
    "riff-8khz-8bit-mono-mulaw",
    "riff-8khz-16bit-mono-pcm",
    "riff-22050hz-16bit-mono-pcm",
    "riff-24khz-16bit-mono-pcm",
    "riff-44100hz-16bit-mono-pcm",
    "riff-48khz-16bit-mono-pcm",
];

/// The 401 body of the service's gateway.
const ACCESS_DENIED: &str = r#"{"error":{"code":"401","message":"Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}}"#;

/// A scripted recognition result.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// `RecognitionStatus`: `Success`, `NoMatch`, `InitialSilenceTimeout`,
    /// `BabbleTimeout` or `Error`.
    pub status: String,
    /// The display text (for `Success`).
    pub text: String,
    /// `Offset`; `None` measures it from the audio.
    pub offset: Option<Duration>,
    /// `Duration`; `None` measures it from the audio.
    pub duration: Option<Duration>,
    /// The first `NBest` entry's confidence.
    pub confidence: f64,
}

impl Recognition {
    /// A successful recognition of `text`.
    pub fn success(text: impl Into<String>) -> Self {
        Self {
            status: "Success".into(),
            text: text.into(),
            offset: None,
            duration: None,
            confidence: 0.93,
        }
    }

    /// A result with another status and no text.
    pub fn status(status: impl Into<String>) -> Self {
        Self {
            status: status.into(),
            text: String::new(),
            offset: None,
            duration: None,
            confidence: 0.0,
        }
    }

    /// The same result at a fixed offset and duration.
    pub fn at(mut self, offset: Duration, duration: Duration) -> Self {
        self.offset = Some(offset);
        self.duration = Some(duration);
        self
    }
}

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The accepted resource key.
    pub key: String,
    /// Injected latency, errors and disconnects.
    pub faults: Faults,
    /// Milliseconds of synthesised audio per character of spoken text.
    pub ms_per_char: u32,
    /// Milliseconds of audio per response chunk.
    pub chunk_ms: u32,
    /// Pause between audio chunks (real or paused tokio time).
    pub chunk_interval: Duration,
    /// Recognition results, used in order by successive STT requests.
    pub recognitions: Vec<Recognition>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            key: DEFAULT_KEY.into(),
            faults: Faults::none(),
            ms_per_char: 50,
            chunk_ms: 100,
            chunk_interval: Duration::ZERO,
            recognitions: Vec::new(),
        }
    }
}

impl Config {
    /// The same config with `faults`.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The same config with scripted recognition results.
    pub fn recognitions(mut self, results: Vec<Recognition>) -> Self {
        self.recognitions = results;
        self
    }
}

/// How a request authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Neither header.
    None,
    /// `Ocp-Apim-Subscription-Key` with this value.
    Key(String),
    /// `Authorization: Bearer` with this token.
    Bearer(String),
    /// An `Authorization` header of another form.
    Other(String),
}

/// The parts of an accepted SSML document the tests look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ssml {
    /// `speak/@version`.
    pub version: String,
    /// `speak/@xml:lang`.
    pub language: String,
    /// `voice/@name` of each voice element.
    pub voices: Vec<String>,
    /// The text to be spoken, references decoded.
    pub text: String,
    /// Attributes of the first `prosody` element.
    pub prosody: Vec<(String, String)>,
    /// Attributes of the first `mstts:express-as` element.
    pub express_as: Vec<(String, String)>,
    /// Every element's qualified name, depth first.
    pub elements: Vec<String>,
}

/// One TTS request as received, and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtsRequest {
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// How it authenticated.
    pub auth: Auth,
    /// `X-Microsoft-OutputFormat`.
    pub output_format: Option<String>,
    /// The raw body.
    pub body: String,
    /// The SSML, when it was valid.
    pub ssml: Option<Ssml>,
    /// The status answered.
    pub status: u16,
    /// Why it was refused, when it was.
    pub rejection: Option<String>,
}

/// The WAV an STT request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavInfo {
    /// WAV format tag (1 = PCM).
    pub format_tag: u16,
    /// Channels.
    pub channels: u16,
    /// Sample rate.
    pub sample_rate: u32,
    /// Bits per sample.
    pub bits_per_sample: u16,
    /// The samples (PCM16 only).
    pub samples: Vec<i16>,
    /// Audio length.
    pub duration: Duration,
}

/// One STT request as received, and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SttRequest {
    /// The recognition mode of the path (`conversation`...).
    pub mode: String,
    /// Query parameters in order.
    pub query: Vec<(String, String)>,
    /// Every header, names lowercase.
    pub headers: Vec<(String, String)>,
    /// How it authenticated.
    pub auth: Auth,
    /// The WAV, when it parsed.
    pub wav: Option<WavInfo>,
    /// The status answered.
    pub status: u16,
    /// Why it was refused, when it was.
    pub rejection: Option<String>,
    /// The JSON answered (200 only).
    pub response: Option<serde_json::Value>,
}

/// One token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// How it authenticated.
    pub auth: Auth,
    /// The token issued, if any.
    pub token: Option<String>,
}

/// How a TTS audio stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamEnd {
    /// The TTS request's index in [`Emulator::tts`].
    pub request: usize,
    /// Chunks handed to the connection.
    pub chunks_sent: u32,
    /// Chunks the response would have had.
    pub chunks_total: u32,
    /// `true` if every chunk went; `false` if the client went away or the emulator
    /// cut the stream.
    pub completed: bool,
}

struct Shared {
    config: Config,
    failures: AtomicU32,
    disconnected_tts: AtomicBool,
    disconnected_stt: AtomicBool,
    tokens_issued: Mutex<HashSet<String>>,
    recognitions: Mutex<std::collections::VecDeque<Recognition>>,
    tts: Recorded<TtsRequest>,
    stt: Recorded<SttRequest>,
    tokens: Recorded<TokenRequest>,
    streams: Recorded<StreamEnd>,
}

/// A running Azure Speech emulator.
pub struct Emulator {
    running: Running,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.running.addr())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator on a random loopback port.
    pub async fn start(config: Config) -> Self {
        let shared = Arc::new(Shared {
            recognitions: Mutex::new(config.recognitions.iter().cloned().collect()),
            config,
            failures: AtomicU32::new(0),
            disconnected_tts: AtomicBool::new(false),
            disconnected_stt: AtomicBool::new(false),
            tokens_issued: Mutex::new(HashSet::new()),
            tts: Recorded::default(),
            stt: Recorded::default(),
            tokens: Recorded::default(),
            streams: Recorded::default(),
        });
        let router = Router::new()
            .route("/cognitiveservices/v1", post(tts))
            .route("/speech/recognition/{mode}/cognitiveservices/v1", post(stt))
            .route("/sts/v1.0/issueToken", post(issue_token))
            .with_state(Arc::clone(&shared));
        Self {
            running: Running::serve(router).await,
            shared,
        }
    }

    /// `http://127.0.0.1:PORT`: the base URL for TTS, STT and tokens alike.
    pub fn url(&self) -> String {
        self.running.http_url()
    }

    /// The key it accepts.
    pub fn key(&self) -> &str {
        &self.shared.config.key
    }

    /// TTS requests received.
    pub fn tts(&self) -> &Recorded<TtsRequest> {
        &self.shared.tts
    }

    /// STT requests received.
    pub fn stt(&self) -> &Recorded<SttRequest> {
        &self.shared.stt
    }

    /// Token requests received.
    pub fn tokens(&self) -> &Recorded<TokenRequest> {
        &self.shared.tokens
    }

    /// How each TTS audio stream ended (recorded when it ends).
    pub fn streams(&self) -> &Recorded<StreamEnd> {
        &self.shared.streams
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn header_list(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn auth_of(headers: &HeaderMap) -> Auth {
    if let Some(key) = header_str(headers, "ocp-apim-subscription-key") {
        return Auth::Key(key.to_owned());
    }
    match header_str(headers, "authorization") {
        Some(value) => match value.strip_prefix("Bearer ") {
            Some(token) => Auth::Bearer(token.trim().to_owned()),
            None => Auth::Other(value.to_owned()),
        },
        None => Auth::None,
    }
}

impl Shared {
    fn authorized(&self, auth: &Auth) -> bool {
        match auth {
            Auth::Key(key) => *key == self.config.key,
            Auth::Bearer(token) => lock(&self.tokens_issued).contains(token),
            Auth::None | Auth::Other(_) => false,
        }
    }

    /// The injected failure for this request, if any.
    fn injected_failure(&self) -> Option<Response> {
        let faults = &self.config.faults;
        if faults.fail_first == 0 {
            return None;
        }
        let n = self.failures.fetch_add(1, Ordering::SeqCst);
        if n >= faults.fail_first {
            return None;
        }
        let status =
            StatusCode::from_u16(faults.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Some(match status.as_u16() {
            429 => (
                status,
                [(header::RETRY_AFTER, "1")],
                r#"{"error":{"code":"429","message":"Too many requests. Please retry after 1 second."}}"#,
            )
                .into_response(),
            401 => (status, ACCESS_DENIED).into_response(),
            _ => (status, format!("emulated failure {}", status.as_u16())).into_response(),
        })
    }
}

async fn pause(faults: &Faults) {
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
}

// ------------------------------------------------------------------------------------
// Tokens

async fn issue_token(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let auth = match header_str(&headers, "ocp-apim-subscription-key") {
        Some(key) => Auth::Key(key.to_owned()),
        None => Auth::None,
    };
    if !shared.authorized(&auth) || !matches!(auth, Auth::Key(_)) {
        shared.tokens.push(TokenRequest { auth, token: None });
        return (StatusCode::UNAUTHORIZED, ACCESS_DENIED).into_response();
    }
    let token = {
        let mut issued = lock(&shared.tokens_issued);
        let token = format!("emulated-token-{}", issued.len() + 1);
        issued.insert(token.clone());
        token
    };
    shared.tokens.push(TokenRequest {
        auth,
        token: Some(token.clone()),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        token,
    )
        .into_response()
}

// ------------------------------------------------------------------------------------
// Text-to-speech

/// Validates an SSML document as the service does.
///
/// # Errors
/// Why the service would answer 400.
pub fn check_ssml(body: &str) -> Result<Ssml, String> {
    let root = xml::parse(body)?;
    if root.name != "speak" {
        return Err(format!("root element is <{}>, not <speak>", root.name));
    }
    let version = root
        .attribute("version")
        .ok_or("speak has no version attribute")?
        .to_owned();
    if version != "1.0" {
        return Err(format!("speak version {version:?} is not 1.0"));
    }
    match root.attribute("xmlns") {
        Some(SSML_NAMESPACE) => {}
        Some(other) => return Err(format!("speak xmlns {other:?} is not {SSML_NAMESPACE}")),
        None => return Err("speak has no xmlns attribute".into()),
    }
    let language = root
        .attribute("xml:lang")
        .filter(|l| !l.trim().is_empty())
        .ok_or("speak has no xml:lang attribute")?
        .to_owned();
    for child in &root.children {
        if let xml::Node::Text(t) = child
            && !t.trim().is_empty()
        {
            return Err(format!("text {t:?} outside a voice element"));
        }
    }
    let voices: Vec<&xml::Element> = root.elements().filter(|e| e.name == "voice").collect();
    if voices.is_empty() {
        return Err("no voice element".into());
    }
    if voices.len() > 50 {
        return Err("more than 50 voice elements".into());
    }
    let mut names = Vec::new();
    for voice in &voices {
        let name = voice
            .attribute("name")
            .filter(|n| !n.trim().is_empty())
            .ok_or("voice element without a name")?;
        names.push(name.to_owned());
    }
    let all = root.descendants();
    let first_attrs = |local: &str, ns: &str| {
        all.iter()
            .find(|e| e.local_name() == local && e.namespace.as_deref() == Some(ns))
            .map(|e| e.attributes.clone())
            .unwrap_or_default()
    };
    Ok(Ssml {
        version,
        language,
        voices: names,
        text: voices.iter().map(|v| v.text()).collect(),
        prosody: first_attrs("prosody", SSML_NAMESPACE),
        express_as: first_attrs("express-as", "http://www.w3.org/2001/mstts"),
        elements: all.iter().map(|e| e.name.clone()).collect(),
    })
}

/// What a format name means for audio generation.
#[derive(Debug, Clone, Copy)]
enum Produce {
    Raw(AudioFormat),
    Riff(AudioFormat),
    Filler,
}

fn produce(name: &str) -> Produce {
    let format = match name {
        "raw-8khz-8bit-mono-mulaw" | "riff-8khz-8bit-mono-mulaw" => AudioFormat::MULAW_8K,
        "raw-8khz-8bit-mono-alaw" | "riff-8khz-8bit-mono-alaw" => AudioFormat::ALAW_8K,
        "raw-8khz-16bit-mono-pcm" | "riff-8khz-16bit-mono-pcm" => AudioFormat::PCM16_8K,
        "raw-16khz-16bit-mono-pcm" => AudioFormat::PCM16_16K,
        "raw-22050hz-16bit-mono-pcm" | "riff-22050hz-16bit-mono-pcm" => {
            AudioFormat::new(Encoding::Pcm16, 22050)
        }
        "raw-24khz-16bit-mono-pcm" | "riff-24khz-16bit-mono-pcm" => AudioFormat::PCM16_24K,
        "raw-44100hz-16bit-mono-pcm" | "riff-44100hz-16bit-mono-pcm" => {
            AudioFormat::new(Encoding::Pcm16, 44100)
        }
        "raw-48khz-16bit-mono-pcm" | "riff-48khz-16bit-mono-pcm" => {
            AudioFormat::new(Encoding::Pcm16, 48000)
        }
        _ => return Produce::Filler,
    };
    if name.starts_with("riff-") {
        Produce::Riff(format)
    } else {
        Produce::Raw(format)
    }
}

/// `duration` of a 440 Hz tone at a quarter of full scale in `format`.
fn tone(format: AudioFormat, duration: Duration) -> Vec<u8> {
    let samples = format.samples_in(duration);
    let rate = f64::from(format.sample_rate);
    let pcm: Vec<i16> = (0..samples)
        .map(|n| (8192.0 * (2.0 * std::f64::consts::PI * 440.0 * n as f64 / rate).sin()) as i16)
        .collect();
    let mut bytes = Vec::with_capacity(pcm.len() * 2);
    voxline_audio::pcm::encode_le(&pcm, &mut bytes);
    if format.encoding == Encoding::Pcm16 {
        return bytes;
    }
    let pcm_format = AudioFormat::new(Encoding::Pcm16, format.sample_rate);
    match Transcoder::new(pcm_format, format) {
        Ok(mut t) => t.convert(&bytes),
        Err(_) => Vec::new(),
    }
}

struct StreamGuard {
    shared: Arc<Shared>,
    request: usize,
    sent: u32,
    total: u32,
    completed: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.shared.streams.push(StreamEnd {
            request: self.request,
            chunks_sent: self.sent,
            chunks_total: self.total,
            completed: self.completed,
        });
    }
}

async fn tts(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = auth_of(&headers);
    let output_format = header_str(&headers, "x-microsoft-outputformat").map(str::to_owned);
    let mut record = TtsRequest {
        headers: header_list(&headers),
        auth: auth.clone(),
        output_format: output_format.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        ssml: None,
        status: 200,
        rejection: None,
    };
    let reject = |mut record: TtsRequest, status: StatusCode, why: &str, body: &'static str| {
        record.status = status.as_u16();
        record.rejection = Some(why.to_owned());
        shared.tts.push(record);
        (status, body).into_response()
    };
    if let Some(response) = shared.injected_failure() {
        record.status = response.status().as_u16();
        record.rejection = Some("injected failure".into());
        shared.tts.push(record);
        return response;
    }
    if !shared.authorized(&auth) {
        return reject(record, StatusCode::UNAUTHORIZED, "not authorised", "");
    }
    let media_type = header_str(&headers, "content-type").map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if media_type.as_deref() != Some("application/ssml+xml") {
        return reject(
            record,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/ssml+xml",
            "",
        );
    }
    let Some(format_name) = output_format.filter(|f| OUTPUT_FORMATS.contains(&f.as_str())) else {
        return reject(
            record,
            StatusCode::BAD_REQUEST,
            "missing or unknown X-Microsoft-OutputFormat",
            "",
        );
    };
    let agent_len = header_str(&headers, "user-agent").map_or(0, |a| a.chars().count());
    if agent_len == 0 || agent_len >= 255 {
        return reject(
            record,
            StatusCode::BAD_REQUEST,
            "User-Agent missing or 255 characters or more",
            "",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return reject(record, StatusCode::BAD_REQUEST, "body is not UTF-8", "");
    };
    let ssml = match check_ssml(text) {
        Ok(ssml) => ssml,
        Err(why) => {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                &format!("invalid SSML: {why}"),
                "",
            );
        }
    };
    let characters = ssml.text.trim().chars().count() as u64;
    record.ssml = Some(ssml);
    let request = {
        shared.tts.push(record);
        shared.tts.len() - 1
    };
    pause(&shared.config.faults).await;

    let duration = Duration::from_millis(characters * u64::from(shared.config.ms_per_char));
    let chunk_ms = Duration::from_millis(u64::from(shared.config.chunk_ms.max(1)));
    let (audio, chunk_bytes, content_type) = match produce(&format_name) {
        Produce::Raw(f) => (
            tone(f, duration),
            f.bytes_in(chunk_ms).max(1),
            "audio/basic",
        ),
        Produce::Riff(f) => {
            let data = tone(f, duration);
            let wav = voxline_audio::wav::to_bytes(f, &data).unwrap_or_default();
            (wav, f.bytes_in(chunk_ms).max(1), "audio/x-wav")
        }
        Produce::Filler => (
            vec![0x55; (characters * 40) as usize],
            400,
            "application/octet-stream",
        ),
    };
    let chunks: Vec<Bytes> = audio
        .chunks(chunk_bytes)
        .map(Bytes::copy_from_slice)
        .collect();
    let cut_after = match shared.config.faults.disconnect_after {
        Some(n) if !shared.disconnected_tts.swap(true, Ordering::SeqCst) => Some(n),
        _ => None,
    };
    let interval = shared.config.chunk_interval;
    let guard = StreamGuard {
        shared: Arc::clone(&shared),
        request,
        sent: 0,
        total: chunks.len() as u32,
        completed: false,
    };
    let body = stream::unfold(
        (chunks.into_iter(), guard),
        move |(mut chunks, mut guard)| async move {
            if guard.sent > 0 && !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
            if cut_after.is_some_and(|n| guard.sent >= n) {
                return Some((
                    Err(std::io::Error::other("emulated disconnect")),
                    (chunks, guard),
                ));
            }
            let Some(chunk) = chunks.next() else {
                guard.completed = true;
                drop(guard);
                return None;
            };
            guard.sent += 1;
            Some((Ok::<Bytes, std::io::Error>(chunk), (chunks, guard)))
        },
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(body),
    )
        .into_response()
}

// ------------------------------------------------------------------------------------
// Speech-to-text

fn is_language_tag(tag: &str) -> bool {
    let mut parts = tag.split('-');
    let primary = parts.next().unwrap_or("");
    (2..=3).contains(&primary.len())
        && primary.chars().all(|c| c.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    let Some(raw) = raw else {
        return Vec::new();
    };
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(media type, parameters)` of a Content-Type, lowercased.
fn media_type(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_ascii_lowercase(),
            ))
        })
        .collect();
    (media, params)
}

/// Reads a RIFF/WAVE body: the `fmt ` chunk and the `data` chunk (a data size larger
/// than the body, as streaming writers leave it, means "to the end").
fn read_wav(body: &[u8]) -> Result<WavInfo, String> {
    if body.len() < 12 || &body[0..4] != b"RIFF" || &body[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= body.len() {
        let id = &body[pos..pos + 4];
        let size = u32::from_le_bytes([body[pos + 4], body[pos + 5], body[pos + 6], body[pos + 7]])
            as usize;
        let start = pos + 8;
        let end = start.saturating_add(size).min(body.len());
        let chunk = &body[start..end];
        match id {
            b"fmt " => {
                if chunk.len() < 16 {
                    return Err("fmt chunk too short".into());
                }
                let u16_at = |i: usize| u16::from_le_bytes([chunk[i], chunk[i + 1]]);
                let mut tag = u16_at(0);
                if tag == 0xFFFE && chunk.len() >= 26 {
                    tag = u16_at(24);
                }
                fmt = Some((
                    tag,
                    u16_at(2),
                    u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]),
                    u16_at(14),
                ));
            }
            b"data" => {
                let (format_tag, channels, sample_rate, bits_per_sample) =
                    fmt.ok_or("data chunk before the fmt chunk")?;
                let samples: Vec<i16> = if format_tag == 1 && bits_per_sample == 16 {
                    chunk
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect()
                } else {
                    Vec::new()
                };
                let frames = if bits_per_sample == 0 || channels == 0 {
                    0
                } else {
                    chunk.len() / (usize::from(bits_per_sample / 8).max(1) * usize::from(channels))
                };
                let duration = if sample_rate == 0 {
                    Duration::ZERO
                } else {
                    Duration::from_nanos((frames as u64 * 1_000_000_000) / u64::from(sample_rate))
                };
                return Ok(WavInfo {
                    format_tag,
                    channels,
                    sample_rate,
                    bits_per_sample,
                    samples,
                    duration,
                });
            }
            _ => {}
        }
        pos = start.saturating_add(size + size % 2);
    }
    Err("no data chunk".into())
}

/// Where the audio is not silent, as 100-ns ticks: (offset, duration).
fn speech_span(wav: &WavInfo) -> Option<(u64, u64)> {
    const THRESHOLD: i16 = 500;
    let first = wav
        .samples
        .iter()
        .position(|s| s.unsigned_abs() > THRESHOLD as u16)?;
    let last = wav
        .samples
        .iter()
        .rposition(|s| s.unsigned_abs() > THRESHOLD as u16)?;
    let ticks = |n: usize| n as u64 * 10_000_000 / u64::from(wav.sample_rate.max(1));
    Some((ticks(first), ticks(last + 1 - first)))
}

fn ticks(d: Duration) -> u64 {
    (d.as_nanos() / 100) as u64
}

fn lexical(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace() || *c == '\'')
        .collect::<String>()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn recognition_json(
    result: &Recognition,
    detailed: bool,
    span: Option<(u64, u64)>,
) -> serde_json::Value {
    let (measured_offset, measured_duration) = span.unwrap_or((0, 0));
    let offset = result.offset.map_or(measured_offset, ticks);
    let duration = result.duration.map_or(measured_duration, ticks);
    let mut body = serde_json::json!({
        "RecognitionStatus": result.status,
        "Offset": offset,
        "Duration": duration,
    });
    if result.status == "Success" {
        if detailed {
            let lex = lexical(&result.text);
            body["NBest"] = serde_json::json!([{
                "Confidence": result.confidence,
                "Lexical": lex,
                "ITN": lex,
                "MaskedITN": lex,
                "Display": result.text,
            }]);
        } else {
            body["DisplayText"] = serde_json::Value::String(result.text.clone());
        }
    }
    body
}

async fn stt(
    State(shared): State<Arc<Shared>>,
    Path(mode): Path<String>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let auth = auth_of(&headers);
    let query = parse_query(raw_query.as_deref());
    let mut record = SttRequest {
        mode: mode.clone(),
        query: query.clone(),
        headers: header_list(&headers),
        auth: auth.clone(),
        wav: None,
        status: 200,
        rejection: None,
        response: None,
    };
    let reject = |mut record: SttRequest, status: StatusCode, why: String| {
        record.status = status.as_u16();
        record.rejection = Some(why.clone());
        shared.stt.push(record);
        (status, why).into_response()
    };
    if !matches!(mode.as_str(), "conversation" | "interactive" | "dictation") {
        return reject(
            record,
            StatusCode::NOT_FOUND,
            format!("unknown recognition mode {mode:?}"),
        );
    }
    if let Some(response) = shared.injected_failure() {
        record.status = response.status().as_u16();
        record.rejection = Some("injected failure".into());
        shared.stt.push(record);
        return response;
    }
    if auth == Auth::None {
        return reject(
            record,
            StatusCode::FORBIDDEN,
            "missing subscription key or token".into(),
        );
    }
    if !shared.authorized(&auth) {
        record.status = 401;
        record.rejection = Some("not authorised".into());
        shared.stt.push(record);
        return (StatusCode::UNAUTHORIZED, ACCESS_DENIED).into_response();
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    match param("language") {
        Some(l) if is_language_tag(l) => {}
        Some(l) => {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                format!("unsupported language {l:?}"),
            );
        }
        None => {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                "the language query parameter is required".into(),
            );
        }
    }
    let detailed = match param("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("simple") => false,
        Some("detailed") => true,
        Some(other) => {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                format!("format {other:?} is not simple or detailed"),
            );
        }
    };
    if let Some(p) = param("profanity")
        && !matches!(p, "masked" | "removed" | "raw")
    {
        return reject(
            record,
            StatusCode::BAD_REQUEST,
            format!("profanity {p:?} is not masked, removed or raw"),
        );
    }
    if let Some(accept) = header_str(&headers, "accept")
        && !(accept.contains("application/json") || accept.contains("*/*"))
    {
        return reject(
            record,
            StatusCode::NOT_ACCEPTABLE,
            format!("Accept {accept:?} does not allow application/json"),
        );
    }
    let (media, params) = media_type(header_str(&headers, "content-type").unwrap_or(""));
    let param_of = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let wav = match media.as_str() {
        "audio/wav"
            if param_of("codecs") == Some("audio/pcm")
                && param_of("samplerate") == Some("16000") =>
        {
            match read_wav(&body) {
                Ok(wav) => Some(wav),
                Err(why) => {
                    return reject(
                        record,
                        StatusCode::BAD_REQUEST,
                        format!("invalid audio: {why}"),
                    );
                }
            }
        }
        "audio/ogg" if param_of("codecs") == Some("opus") => None,
        _ => {
            return reject(
                record,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be audio/wav; codecs=audio/pcm; samplerate=16000 or audio/ogg; codecs=opus".into(),
            );
        }
    };
    if let Some(wav) = &wav {
        record.wav = Some(wav.clone());
        if wav.format_tag != 1
            || wav.bits_per_sample != 16
            || wav.channels != 1
            || wav.sample_rate != 16000
        {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid audio: need 16 kHz 16-bit mono PCM, got tag {} {} Hz {}-bit {} channels",
                    wav.format_tag, wav.sample_rate, wav.bits_per_sample, wav.channels
                ),
            );
        }
        if wav.duration > MAX_STT_AUDIO {
            return reject(
                record,
                StatusCode::BAD_REQUEST,
                format!("audio is {:?}, more than 60 s", wav.duration),
            );
        }
    }
    pause(&shared.config.faults).await;
    if shared.config.faults.disconnect_after.is_some()
        && !shared.disconnected_stt.swap(true, Ordering::SeqCst)
    {
        // Headers, then the connection drops; the scripted result stays for the retry.
        record.rejection = Some("emulated disconnect".into());
        shared.stt.push(record);
        let broken = stream::once(async {
            Err::<Bytes, std::io::Error>(std::io::Error::other("emulated disconnect"))
        });
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from_stream(broken),
        )
            .into_response();
    }
    let span = wav.as_ref().and_then(speech_span);
    let result = lock(&shared.recognitions).pop_front().unwrap_or_else(|| {
        if wav.is_some() && span.is_none() {
            Recognition::status("InitialSilenceTimeout")
        } else {
            Recognition::status("NoMatch")
        }
    });
    let json = recognition_json(&result, detailed, span);
    record.response = Some(json.clone());
    shared.stt.push(record);
    let text = json.to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssml(inner: &str) -> String {
        format!(
            "<speak version=\"1.0\" xmlns=\"{SSML_NAMESPACE}\" xmlns:mstts=\"http://www.w3.org/2001/mstts\" xml:lang=\"en-US\">{inner}</speak>"
        )
    }

    #[test]
    fn accepts_the_spec_example() {
        let doc = "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis'\n       xmlns:mstts='http://www.w3.org/2001/mstts' xml:lang='en-US'>\n  <voice name='en-US-JennyNeural'>\n    <mstts:express-as style='customerservice' styledegree='1.0'>\n      <prosody rate='+5%' pitch='default' volume='default'>Your order has shipped.</prosody>\n    </mstts:express-as>\n  </voice>\n</speak>";
        let s = check_ssml(doc).expect("valid");
        assert_eq!(s.voices, vec!["en-US-JennyNeural"]);
        assert_eq!(s.text.trim(), "Your order has shipped.");
        assert!(s.prosody.contains(&("rate".into(), "+5%".into())));
        assert!(
            s.express_as
                .contains(&("style".into(), "customerservice".into()))
        );
    }

    #[test]
    fn rejects_ssml_the_service_rejects() {
        for bad in [
            ssml("<voice name='v'>Tom & Jerry</voice>"),
            ssml("<voice name='v'>a < b</voice>"),
            ssml("<voice>no name</voice>"),
            ssml("text outside<voice name='v'>x</voice>"),
            ssml(""),
            "<speak xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'><voice name='v'>x</voice></speak>".into(),
            "<speak version='1.0' xml:lang='en-US'><voice name='v'>x</voice></speak>".into(),
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis'><voice name='v'>x</voice></speak>".into(),
            "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' xml:lang='en-US'><voice name='v'><mstts:express-as style='x'>y</mstts:express-as></voice></speak>".into(),
        ] {
            assert!(check_ssml(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wav_reader_reads_what_voxline_audio_writes() {
        let data = vec![0u8; 3200];
        let bytes = voxline_audio::wav::to_bytes(AudioFormat::PCM16_16K, &data).expect("wav");
        let wav = read_wav(&bytes).expect("parses");
        assert_eq!(
            (
                wav.format_tag,
                wav.channels,
                wav.sample_rate,
                wav.bits_per_sample
            ),
            (1, 1, 16000, 16)
        );
        assert_eq!(wav.duration, Duration::from_millis(100));
        assert!(read_wav(b"RIFF....WAVX").is_err());
    }

    #[test]
    fn query_and_language_tags() {
        assert_eq!(
            parse_query(Some("language=en-US&format=detailed&x=a%20b")),
            vec![
                ("language".into(), "en-US".into()),
                ("format".into(), "detailed".into()),
                ("x".into(), "a b".into())
            ]
        );
        assert!(is_language_tag("en-US") && is_language_tag("zh-Hans-CN"));
        assert!(!is_language_tag("english") && !is_language_tag("") && !is_language_tag("en_US"));
    }
}
