//! Batch transcription (`POST {base}/audio/transcriptions`), one request per utterance.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use serde::Deserialize;
use tokio::time::Instant;
use voxline_audio::{AudioFormat, Encoding, Transcoder, wav};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, SpeechToText, SttConfig, SttEvent, SttInput, SttPeer,
    SttSession, Transcript, Ttfb, Usage, UsageKind,
};

use crate::http::{Api, ApiConfig, PROVIDER};

/// Configuration of [`OpenAiTranscription`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TranscriptionConfig {
    /// Server, key and retries.
    pub api: ApiConfig,
    /// The model: `gpt-4o-mini-transcribe`, `gpt-4o-transcribe`, `whisper-1`, ...
    pub model: String,
    /// Text to guide the model (names, spellings), sent as `prompt`.
    pub prompt: Option<String>,
    /// Resample to this rate before sending; `None` sends the session's own rate
    /// (8 kHz phone audio is accepted as is).
    pub sample_rate: Option<u32>,
    /// The longest utterance kept; audio beyond it is dropped with a warning.
    pub max_utterance: Duration,
    /// Utterances shorter than this are not sent (the API refuses audio under
    /// 0.1 s); they yield an empty final transcript.
    pub min_utterance: Duration,
    /// Transcriptions in flight at once; further input waits.
    pub max_in_flight: usize,
    /// Messages buffered each way between the session handle and its task.
    pub channel_capacity: usize,
}

impl TranscriptionConfig {
    /// `model` on OpenAI's API, key from `OPENAI_API_KEY`.
    pub fn new(model: impl Into<String>) -> Self {
        Self::with_api(ApiConfig::openai(), model)
    }

    /// `model` on the server `api` describes.
    pub fn with_api(api: ApiConfig, model: impl Into<String>) -> Self {
        Self {
            api,
            model: model.into(),
            prompt: None,
            sample_rate: None,
            max_utterance: Duration::from_secs(60),
            min_utterance: Duration::from_millis(100),
            max_in_flight: 2,
            channel_capacity: 256,
        }
    }
}

/// [`SpeechToText`] over OpenAI's batch transcription endpoint.
///
/// The session buffers the caller's audio (decoded to PCM16, resampled if
/// configured) until [`SttSession::finalize`], then sends it as a WAV file in a
/// `multipart/form-data` request (`file`, `model`, `response_format=json`, `language`,
/// `prompt`). Every finalize yields exactly one final transcript
/// (`end_of_utterance: true`) or an error, in order, preceded by the time from the
/// finalize to the response ([`SttEvent::Ttfb`]) and followed by usage. There are no
/// interim results. Closing the session transcribes what is still buffered; dropping
/// it abandons the requests in flight.
#[derive(Debug, Clone)]
pub struct OpenAiTranscription {
    api: Api,
    config: TranscriptionConfig,
}

impl OpenAiTranscription {
    /// A client for `config`.
    ///
    /// # Errors
    /// When the key is not a valid header value or the HTTP client cannot be built.
    pub fn new(config: TranscriptionConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            api: Api::new(&config.api)?,
            config,
        })
    }

    fn open(&self, session: SttConfig) -> Result<SttSession, ProviderError> {
        let wire = AudioFormat::new(
            Encoding::Pcm16,
            self.config
                .sample_rate
                .unwrap_or(session.format.sample_rate),
        );
        let transcoder = Transcoder::new(session.format, wire).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::BadRequest,
                format!("cannot convert {} to {wire}: {e}", session.format),
            )
        })?;
        // The API takes ISO-639-1 codes: "en-US" -> "en".
        let language = session
            .language
            .as_deref()
            .and_then(|l| l.split(['-', '_']).next())
            .filter(|l| !l.is_empty())
            .map(str::to_ascii_lowercase);
        let (handle, peer) = SttSession::channel(PROVIDER, self.config.channel_capacity);
        let task = Session {
            request: Request {
                api: self.api.clone(),
                model: self.config.model.clone(),
                prompt: self.config.prompt.clone(),
                language,
                wire,
            },
            input: session.format,
            transcoder,
            pcm: Vec::new(),
            cap: wire.bytes_in(self.config.max_utterance),
            min: wire.bytes_in(self.config.min_utterance),
            dropped: 0,
            input_bytes: 0,
            utterance_start: Duration::ZERO,
            max_in_flight: self.config.max_in_flight.max(1),
        };
        tracing::debug!(model = %self.config.model, input = %session.format, %wire, "transcription session");
        tokio::spawn(task.run(peer));
        Ok(handle)
    }
}

impl SpeechToText for OpenAiTranscription {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, config: SttConfig) -> BoxFuture<'_, Result<SttSession, ProviderError>> {
        Box::pin(async move { self.open(config) })
    }
}

/// What every request of a session shares.
#[derive(Debug, Clone)]
struct Request {
    api: Api,
    model: String,
    prompt: Option<String>,
    language: Option<String>,
    wire: AudioFormat,
}

/// One utterance ready to send.
#[derive(Debug)]
struct Utterance {
    wav: Bytes,
    seconds: f64,
    start: Duration,
    duration: Duration,
    finalized: Instant,
}

/// What one utterance came to.
#[derive(Debug)]
struct Outcome {
    start: Duration,
    duration: Duration,
    result: Result<Option<Transcribed>, ProviderError>,
}

#[derive(Debug)]
struct Transcribed {
    text: String,
    latency: Duration,
    usage: Vec<Usage>,
}

#[derive(Debug, Deserialize)]
struct Response {
    text: String,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    seconds: Option<f64>,
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

struct Session {
    request: Request,
    input: AudioFormat,
    transcoder: Transcoder,
    pcm: Vec<u8>,
    cap: usize,
    min: usize,
    /// Bytes dropped from the current utterance for being over the cap.
    dropped: usize,
    input_bytes: u64,
    utterance_start: Duration,
    max_in_flight: usize,
}

impl Session {
    async fn run(mut self, mut peer: SttPeer) {
        let mut in_flight: FuturesOrdered<BoxFuture<'static, Outcome>> = FuturesOrdered::new();
        loop {
            tokio::select! {
                input = peer.recv(), if in_flight.len() < self.max_in_flight => match input {
                    Some(SttInput::Audio(audio)) => self.push(&audio),
                    Some(SttInput::Finalize) => in_flight.push_back(self.finalize()),
                    Some(_) => {}
                    None => break,
                },
                Some(outcome) = in_flight.next(), if !in_flight.is_empty() => {
                    if !report(&peer, outcome).await {
                        return;
                    }
                }
            }
        }
        if peer.events.is_closed() {
            tracing::debug!("transcription session dropped: abandoning requests in flight");
            return;
        }
        // Closed: transcribe what is left, then deliver everything in order.
        if !self.pcm.is_empty() {
            in_flight.push_back(self.finalize());
        }
        while let Some(outcome) = in_flight.next().await {
            if !report(&peer, outcome).await {
                return;
            }
        }
    }

    fn push(&mut self, audio: &[u8]) {
        self.input_bytes += audio.len() as u64;
        self.transcoder.process(audio, &mut self.pcm);
        self.enforce_cap();
    }

    fn enforce_cap(&mut self) {
        if self.pcm.len() > self.cap {
            let over = self.pcm.len() - self.cap;
            if self.dropped == 0 {
                tracing::warn!(
                    max_seconds = self.request.wire.duration_of(self.cap).as_secs_f64(),
                    "utterance longer than the cap: dropping the audio beyond it"
                );
            }
            self.dropped += over;
            self.pcm.truncate(self.cap);
        }
    }

    fn finalize(&mut self) -> BoxFuture<'static, Outcome> {
        if self.transcoder.flush(&mut self.pcm) != 0 {
            tracing::warn!("odd PCM16 byte count: a trailing half sample was dropped");
        }
        self.enforce_cap();
        let now = self
            .input
            .duration_of(usize::try_from(self.input_bytes).unwrap_or(usize::MAX));
        let start = self.utterance_start;
        let duration = now.saturating_sub(start);
        self.utterance_start = now;
        if self.dropped > 0 {
            tracing::warn!(
                dropped_seconds = self.request.wire.duration_of(self.dropped).as_secs_f64(),
                "utterance was cut to the cap"
            );
            self.dropped = 0;
        }
        let pcm = std::mem::take(&mut self.pcm);
        if pcm.len() < self.min.max(1) {
            tracing::debug!(bytes = pcm.len(), "utterance too short to transcribe");
            return Box::pin(std::future::ready(Outcome {
                start,
                duration,
                result: Ok(None),
            }));
        }
        let seconds = self.request.wire.duration_of(pcm.len()).as_secs_f64();
        let wav = match wav::to_bytes(self.request.wire, &pcm) {
            Ok(wav) => Bytes::from(wav),
            Err(e) => {
                let error = ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string());
                return Box::pin(std::future::ready(Outcome {
                    start,
                    duration,
                    result: Err(error),
                }));
            }
        };
        let utterance = Utterance {
            wav,
            seconds,
            start,
            duration,
            finalized: Instant::now(),
        };
        Box::pin(transcribe(self.request.clone(), utterance))
    }
}

/// Sends one utterance, with retries.
async fn transcribe(request: Request, utterance: Utterance) -> Outcome {
    let Utterance {
        wav,
        seconds,
        start,
        duration,
        finalized,
    } = utterance;
    let result = async {
        let form = || -> Result<reqwest::multipart::Form, ProviderError> {
            let file = reqwest::multipart::Part::stream_with_length(
                reqwest::Body::from(wav.clone()),
                wav.len() as u64,
            )
            .file_name("audio.wav")
            .mime_str("audio/wav")
            .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
            let mut form = reqwest::multipart::Form::new()
                .part("file", file)
                .text("model", request.model.clone())
                .text("response_format", "json");
            if let Some(language) = &request.language {
                form = form.text("language", language.clone());
            }
            if let Some(prompt) = &request.prompt {
                form = form.text("prompt", prompt.clone());
            }
            Ok(form)
        };
        form()?; // Fail early if the part cannot be built at all.
        tracing::debug!(seconds, bytes = wav.len(), "transcribing utterance");
        let (response, _) = request
            .api
            .send("audio/transcriptions", || {
                let builder = request.api.post("/audio/transcriptions");
                match form() {
                    Ok(form) => builder.multipart(form),
                    Err(_) => builder,
                }
            })
            .await?;
        let body = response.bytes().await.map_err(crate::http::from_reqwest)?;
        let latency = finalized.elapsed();
        let parsed: Response = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Protocol,
                format!(
                    "unexpected transcription response ({e}): {}",
                    crate::http::error_message(&String::from_utf8_lossy(&body))
                ),
            )
        })?;
        Ok(Some(Transcribed {
            text: parsed.text.trim().to_owned(),
            latency,
            usage: usage(parsed.usage.as_ref(), seconds),
        }))
    }
    .await;
    Outcome {
        start,
        duration,
        result,
    }
}

/// The usage records for one transcription: audio seconds always (reported when the
/// response gives a duration, else the seconds sent), plus tokens when it gives them.
fn usage(wire: Option<&WireUsage>, seconds_sent: f64) -> Vec<Usage> {
    let reported_seconds = wire
        .filter(|u| u.kind == "duration")
        .and_then(|u| u.seconds);
    let mut out = vec![Usage {
        provider: PROVIDER,
        kind: UsageKind::AudioSeconds(reported_seconds.unwrap_or(seconds_sent)),
        reported: reported_seconds.is_some(),
    }];
    if let Some(u) = wire.filter(|u| u.kind == "tokens") {
        out.push(Usage {
            provider: PROVIDER,
            kind: UsageKind::Tokens {
                prompt: u.input_tokens.unwrap_or(0),
                completion: u.output_tokens.unwrap_or(0),
            },
            reported: true,
        });
    }
    out
}

/// Reports one outcome; `false` when the session must end (caller gone, or a
/// permanent error).
async fn report(peer: &SttPeer, outcome: Outcome) -> bool {
    let transcript = |text: String| {
        SttEvent::Transcript(Transcript {
            text,
            is_final: true,
            end_of_utterance: true,
            confidence: None,
            start: outcome.start,
            duration: outcome.duration,
            words: Vec::new(),
            language: None,
        })
    };
    match outcome.result {
        Ok(None) => peer.send(transcript(String::new())).await,
        Ok(Some(done)) => {
            tracing::debug!(latency = ?done.latency, chars = done.text.len(), "transcribed");
            let mut events = vec![
                SttEvent::Ttfb(Ttfb {
                    provider: PROVIDER,
                    latency: done.latency,
                }),
                transcript(done.text),
            ];
            events.extend(done.usage.into_iter().map(SttEvent::Usage));
            for event in events {
                if !peer.send(event).await {
                    return false;
                }
            }
            true
        }
        Err(e) => {
            let retryable = e.is_retryable();
            tracing::warn!(error = %e, "transcription failed");
            peer.send(SttEvent::Error(e)).await && retryable
        }
    }
}
