//! Speech (`POST {base}/audio/speech`): one HTTP request per flushed sentence, raw
//! 24 kHz PCM16 streamed back and transcoded to the session's format.

use std::collections::{HashMap, HashSet, VecDeque};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use voxline_audio::{AudioFormat, Transcoder};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RequestId, TextToSpeech, Ttfb, TtsConfig, TtsEvent,
    TtsInput, TtsPeer, TtsSession, Usage, UsageKind,
};

use crate::http::{Api, ApiConfig, PROVIDER, from_reqwest};

/// The format `response_format: "pcm"` returns: 24 kHz 16-bit signed little-endian
/// mono, no header.
pub const SPEECH_PCM_FORMAT: AudioFormat = AudioFormat::PCM16_24K;

/// The longest `input` the API accepts, in characters.
pub const MAX_INPUT_CHARS: usize = 4096;

/// Requests (sentences) queued in a session before further text is refused.
const MAX_QUEUED: usize = 256;

/// Configuration of [`OpenAiSpeech`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpeechConfig {
    /// Server, key and retries.
    pub api: ApiConfig,
    /// The model: `gpt-4o-mini-tts`, `tts-1`, `tts-1-hd`, ...
    pub model: String,
    /// The voice when the session's [`TtsConfig::voice`] is `None` (`alloy`, `ash`,
    /// `coral`, `marin`, `cedar`, ...).
    pub voice: String,
    /// How to speak (tone, pace), sent as `instructions`; not for `tts-1`/`tts-1-hd`,
    /// so it is left out for those models.
    pub instructions: Option<String>,
    /// Speaking rate, 0.25 to 4.0; `None` for the default 1.0.
    pub speed: Option<f32>,
    /// Messages buffered each way between the session handle and its task.
    pub channel_capacity: usize,
}

impl SpeechConfig {
    /// `model` on OpenAI's API with voice `alloy`, key from `OPENAI_API_KEY`.
    pub fn new(model: impl Into<String>) -> Self {
        Self::with_api(ApiConfig::openai(), model)
    }

    /// `model` on the server `api` describes.
    pub fn with_api(api: ApiConfig, model: impl Into<String>) -> Self {
        Self {
            api,
            model: model.into(),
            voice: "alloy".to_owned(),
            instructions: None,
            speed: None,
            channel_capacity: 64,
        }
    }

    /// The same config with a default voice.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = voice.into();
        self
    }
}

/// [`TextToSpeech`] over OpenAI's speech endpoint.
///
/// Text accumulates per request; each [`TtsInput::Flush`] (end of a sentence) and the
/// final [`TtsInput::Finish`] send what has accumulated as one
/// `POST /audio/speech` with `response_format: "pcm"`. Requests are spoken one at a
/// time in order; the streamed body is transcoded chunk by chunk (24 kHz PCM16 to the
/// session's format, e.g. 8 kHz mu-law) and delivered as it arrives. Cancelling a
/// request aborts its HTTP response and drops its queued sentences. Usage is the
/// characters sent (the endpoint reports none), counted once each request is accepted.
#[derive(Debug, Clone)]
pub struct OpenAiSpeech {
    api: Api,
    config: SpeechConfig,
}

impl OpenAiSpeech {
    /// A client for `config`.
    ///
    /// # Errors
    /// When the key is not a valid header value or the HTTP client cannot be built.
    pub fn new(config: SpeechConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            api: Api::new(&config.api)?,
            config,
        })
    }

    /// The JSON body for speaking `input` with `voice`.
    pub fn request_body(&self, input: &str, voice: &str) -> Value {
        let mut body = json!({
            "model": self.config.model,
            "input": input,
            "voice": voice,
            "response_format": "pcm",
        });
        if let Some(map) = body.as_object_mut() {
            let legacy = self.config.model.starts_with("tts-1");
            if let Some(instructions) = self.config.instructions.as_ref().filter(|_| !legacy) {
                map.insert("instructions".into(), json!(instructions));
            }
            if let Some(speed) = self.config.speed {
                let speed: f64 = format!("{speed}").parse().unwrap_or(f64::from(speed));
                map.insert("speed".into(), json!(speed));
            }
        }
        body
    }

    fn open(&self, config: TtsConfig) -> Result<TtsSession, ProviderError> {
        // Checked now so a format the transcoder cannot make fails at connect.
        Transcoder::new(SPEECH_PCM_FORMAT, config.format).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("cannot produce {}: {e}", config.format),
            )
        })?;
        let voice = config
            .voice
            .clone()
            .unwrap_or_else(|| self.config.voice.clone());
        tracing::debug!(model = %self.config.model, %voice, format = %config.format, "speech session");
        let (handle, peer) = TtsSession::channel(PROVIDER, self.config.channel_capacity);
        let session = Session {
            speech: self.clone(),
            voice,
            format: config.format,
            pending: HashMap::new(),
            queue: VecDeque::new(),
            current: None,
            failed: HashSet::new(),
        };
        tokio::spawn(session.run(peer));
        Ok(handle)
    }
}

impl TextToSpeech for OpenAiSpeech {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, config: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>> {
        Box::pin(async move { self.open(config) })
    }
}

/// Text of a request not yet sent.
#[derive(Debug, Default)]
struct Pending {
    text: String,
    /// When the request was first flushed; taken by its first HTTP request for TTFB.
    first_flush: Option<Instant>,
    ttfb_taken: bool,
}

#[derive(Debug)]
enum Job {
    Speak {
        request: RequestId,
        text: String,
        ttfb_from: Option<Instant>,
    },
    Done {
        request: RequestId,
    },
}

impl Job {
    fn request(&self) -> RequestId {
        match self {
            Self::Speak { request, .. } | Self::Done { request } => *request,
        }
    }
}

type Speaking = (RequestId, JoinHandle<Result<(), ProviderError>>);

struct Session {
    speech: OpenAiSpeech,
    voice: String,
    format: AudioFormat,
    pending: HashMap<RequestId, Pending>,
    queue: VecDeque<Job>,
    current: Option<Speaking>,
    /// Requests whose speech failed: their remaining sentences are skipped.
    failed: HashSet<RequestId>,
}

impl Session {
    async fn run(mut self, mut peer: TtsPeer) {
        loop {
            if !self.pump(&peer).await {
                break;
            }
            let current = async {
                match &mut self.current {
                    Some((_, handle)) => handle.await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                input = peer.recv() => match input {
                    Some(input) => {
                        if !self.input(input, &peer).await {
                            break;
                        }
                    }
                    None => break,
                },
                joined = current => {
                    let Some((request, _)) = self.current.take() else { continue };
                    let error = match joined {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(e) => Some(ProviderError::new(PROVIDER, ErrorKind::Protocol, format!("speech task failed: {e}"))),
                    };
                    if let Some(error) = error {
                        tracing::warn!(%request, error = %error, "speech request failed");
                        self.failed.insert(request);
                        if !peer.send(TtsEvent::Error { request: Some(request), error }).await {
                            break;
                        }
                    }
                }
            }
        }
        if let Some((request, handle)) = self.current.take() {
            tracing::debug!(%request, "speech session closed: aborting the response in flight");
            handle.abort();
        }
    }

    /// Handles one input; `false` when the caller is gone.
    async fn input(&mut self, input: TtsInput, peer: &TtsPeer) -> bool {
        match input {
            TtsInput::Text { request, text } => {
                let pending = self.pending.entry(request).or_default();
                pending.text.push_str(&text);
                if pending.text.len() >= MAX_INPUT_CHARS * 4 {
                    // Bound the buffer: speak what is there as if flushed.
                    return self.flush(request, peer).await;
                }
                true
            }
            TtsInput::Flush { request } => self.flush(request, peer).await,
            TtsInput::Finish { request } => {
                if !self.flush(request, peer).await {
                    return false;
                }
                self.pending.remove(&request);
                self.queue.push_back(Job::Done { request });
                true
            }
            TtsInput::Cancel { request } => {
                let mut active = self.pending.remove(&request).is_some();
                let before = self.queue.len();
                self.queue.retain(|job| job.request() != request);
                active |= self.queue.len() != before;
                if self.current.as_ref().is_some_and(|(r, _)| *r == request) {
                    if let Some((_, handle)) = self.current.take() {
                        handle.abort();
                    }
                    tracing::debug!(%request, "speech cancelled: response aborted");
                    active = true;
                }
                self.failed.remove(&request);
                !active || peer.send(TtsEvent::Done { request }).await
            }
            _ => true,
        }
    }

    async fn flush(&mut self, request: RequestId, peer: &TtsPeer) -> bool {
        let pending = self.pending.entry(request).or_default();
        let first = *pending.first_flush.get_or_insert_with(Instant::now);
        let text = std::mem::take(&mut pending.text);
        if text.trim().is_empty() {
            return true;
        }
        for piece in split_input(&text, MAX_INPUT_CHARS) {
            if self.queue.len() >= MAX_QUEUED {
                let error = ProviderError::new(
                    PROVIDER,
                    ErrorKind::BadRequest,
                    "too many sentences queued: text dropped",
                );
                return peer
                    .send(TtsEvent::Error {
                        request: Some(request),
                        error,
                    })
                    .await;
            }
            let ttfb_from = (!pending.ttfb_taken).then_some(first);
            pending.ttfb_taken = true;
            self.queue.push_back(Job::Speak {
                request,
                text: piece,
                ttfb_from,
            });
        }
        true
    }

    /// Starts queued work while nothing is speaking; `false` when the caller is gone.
    async fn pump(&mut self, peer: &TtsPeer) -> bool {
        while self.current.is_none() {
            match self.queue.pop_front() {
                None => break,
                Some(Job::Done { request }) => {
                    self.failed.remove(&request);
                    if !peer.send(TtsEvent::Done { request }).await {
                        return false;
                    }
                }
                Some(Job::Speak { request, .. }) if self.failed.contains(&request) => {}
                Some(Job::Speak {
                    request,
                    text,
                    ttfb_from,
                }) => {
                    let body = self.speech.request_body(&text, &self.voice);
                    let chars = text.chars().count() as u64;
                    let task = speak(
                        self.speech.api.clone(),
                        body,
                        chars,
                        request,
                        self.format,
                        ttfb_from,
                        peer.events.clone(),
                    );
                    self.current = Some((request, tokio::spawn(task)));
                }
            }
        }
        true
    }
}

/// One HTTP request: send (with retries), count the characters, stream and transcode
/// the audio. Aborting the task drops the response.
async fn speak(
    api: Api,
    body: Value,
    chars: u64,
    request: RequestId,
    format: AudioFormat,
    ttfb_from: Option<Instant>,
    events: mpsc::Sender<TtsEvent>,
) -> Result<(), ProviderError> {
    let mut transcoder = Transcoder::new(SPEECH_PCM_FORMAT, format)
        .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
    tracing::debug!(%request, chars, "speech request");
    let (response, _) = api
        .send("audio/speech", || {
            api.post("/audio/speech")
                .header("accept", "application/octet-stream")
                .json(&body)
        })
        .await?;
    let usage = TtsEvent::Usage(Usage {
        provider: PROVIDER,
        kind: UsageKind::Characters(chars),
        reported: false,
    });
    if events.send(usage).await.is_err() {
        return Ok(());
    }
    let mut ttfb_from = ttfb_from;
    let mut body = response.bytes_stream();
    let mut audio = Vec::new();
    loop {
        let chunk = body.next().await;
        let last = chunk.is_none();
        match chunk {
            Some(Ok(bytes)) => transcoder.process(&bytes, &mut audio),
            Some(Err(e)) => {
                let mut e = from_reqwest(e);
                e.message = format!("speech stream interrupted: {}", e.message);
                return Err(e);
            }
            None => {
                if transcoder.flush(&mut audio) != 0 {
                    tracing::warn!(%request, "speech audio ended mid-sample");
                }
            }
        }
        if !audio.is_empty() {
            if let Some(from) = ttfb_from.take() {
                let ttfb = Ttfb {
                    provider: PROVIDER,
                    latency: from.elapsed(),
                };
                tracing::debug!(%request, latency = ?ttfb.latency, "speech first audio");
                if events.send(TtsEvent::Ttfb { request, ttfb }).await.is_err() {
                    return Ok(());
                }
            }
            let event = TtsEvent::Audio {
                request,
                audio: std::mem::take(&mut audio).into(),
            };
            if events.send(event).await.is_err() {
                return Ok(());
            }
        }
        if last {
            return Ok(());
        }
    }
}

/// Splits `text` into pieces of at most `max` characters, at whitespace where
/// possible.
fn split_input(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text.trim();
    while rest.chars().count() > max {
        let cut = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let at = rest[..cut]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .unwrap_or(cut);
        pieces.push(rest[..at].trim().to_owned());
        rest = rest[at..].trim_start();
    }
    if !rest.is_empty() {
        pieces.push(rest.to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_split_at_spaces_within_the_limit() {
        let text = "one two three four five";
        let pieces = split_input(text, 9);
        assert_eq!(pieces, ["one two", "three", "four five"]);
        assert!(
            split_input("abcdefghij", 4)
                .iter()
                .all(|p| p.chars().count() <= 4)
        );
        assert_eq!(split_input("  ", 4), Vec::<String>::new());
    }
}
