//! Text-to-speech over REST: one `POST /cognitiveservices/v1` with an SSML body per
//! flushed sentence, the raw audio body streamed to the caller as it arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use reqwest::Client;
use reqwest::header::CONTENT_TYPE;
use tokio::time::Instant;
use voxline_audio::{AudioFormat, Encoding, Transcoder};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RequestId, RetryPolicy, TextToSpeech, Ttfb, TtsConfig,
    TtsEvent, TtsInput, TtsPeer, TtsSession, Usage, UsageKind,
};

use crate::config::AzureConfig;
use crate::http::{Credential, send_authorized};
use crate::ssml::{self, VoiceOptions};
use crate::{PROVIDER, http_client};

/// The path of the synthesis endpoint.
pub const TTS_PATH: &str = "/cognitiveservices/v1";
/// The header naming the audio format.
pub const OUTPUT_FORMAT_HEADER: &str = "X-Microsoft-OutputFormat";
/// Capacity of a session's channels.
const SESSION_CAPACITY: usize = 64;
/// Sentences queued for synthesis before the task stops reading input.
const MAX_QUEUED: usize = 64;

/// The headerless (streamable) output format Azure produces for `format`, if any:
/// `raw-8khz-8bit-mono-mulaw` for phone audio, `raw-*-16bit-mono-pcm` for PCM16.
pub fn native_output_format(format: AudioFormat) -> Option<&'static str> {
    Some(match (format.encoding, format.sample_rate) {
        (Encoding::Mulaw, 8000) => "raw-8khz-8bit-mono-mulaw",
        (Encoding::Alaw, 8000) => "raw-8khz-8bit-mono-alaw",
        (Encoding::Pcm16, 8000) => "raw-8khz-16bit-mono-pcm",
        (Encoding::Pcm16, 16000) => "raw-16khz-16bit-mono-pcm",
        (Encoding::Pcm16, 22050) => "raw-22050hz-16bit-mono-pcm",
        (Encoding::Pcm16, 24000) => "raw-24khz-16bit-mono-pcm",
        (Encoding::Pcm16, 44100) => "raw-44100hz-16bit-mono-pcm",
        (Encoding::Pcm16, 48000) => "raw-48khz-16bit-mono-pcm",
        _ => return None,
    })
}

/// What to ask Azure for to deliver `format`: the format's own raw output when one
/// exists, else PCM16 at the same rate if Azure has it, else 24 kHz PCM16 (the voices'
/// native rate), to be transcoded locally.
pub fn requested_output(format: AudioFormat) -> (&'static str, AudioFormat) {
    if let Some(name) = native_output_format(format) {
        return (name, format);
    }
    let same_rate = AudioFormat::new(Encoding::Pcm16, format.sample_rate);
    match native_output_format(same_rate) {
        Some(name) => (name, same_rate),
        None => ("raw-24khz-16bit-mono-pcm", AudioFormat::PCM16_24K),
    }
}

/// Azure text-to-speech over REST. Cheap to clone; sessions share one HTTP client.
#[derive(Debug, Clone)]
pub struct AzureTts {
    config: AzureConfig,
    voice: VoiceOptions,
    client: Client,
}

impl AzureTts {
    /// An adapter for `config` with the default voice.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(config: AzureConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: http_client()?,
            config,
            voice: VoiceOptions::default(),
        })
    }

    /// The same adapter with `voice` (style, prosody; a session's `TtsConfig::voice`
    /// and `language` still win over the voice name and language here).
    pub fn with_voice(mut self, voice: VoiceOptions) -> Self {
        self.voice = voice;
        self
    }

    fn open(&self, config: &TtsConfig) -> Result<TtsSession, ProviderError> {
        self.config.check_user_agent()?;
        let credential = Credential::from_config(&self.config)?;
        let url = format!("{}{TTS_PATH}", self.config.tts_base()?);
        let mut voice = self.voice.clone();
        if let Some(name) = config.voice.as_deref().filter(|v| !v.trim().is_empty()) {
            voice.voice = name.to_owned();
        }
        if let Some(language) = config.language.as_deref().filter(|l| !l.trim().is_empty()) {
            voice.language = language.to_owned();
        }
        let (output_format, produced) = requested_output(config.format);
        if produced != config.format {
            // Fail now, not on the first sentence, if the rates are unsupported.
            Transcoder::new(produced, config.format)
                .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
        }
        let context = Arc::new(Context {
            client: self.client.clone(),
            credential,
            url,
            user_agent: self.config.user_agent.clone(),
            retry: self.config.retry,
            voice,
            output_format,
            produced,
            wanted: config.format,
        });
        tracing::debug!(
            url = %context.url,
            voice = %context.voice.voice,
            output_format,
            wanted = %config.format,
            "Azure TTS session opened"
        );
        let (session, peer) = TtsSession::channel(PROVIDER, SESSION_CAPACITY);
        tokio::spawn(run(peer, context));
        Ok(session)
    }
}

impl TextToSpeech for AzureTts {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, config: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>> {
        Box::pin(async move { self.open(&config) })
    }
}

/// What every request of a session shares.
#[derive(Debug)]
struct Context {
    client: Client,
    credential: Credential,
    url: String,
    user_agent: String,
    retry: RetryPolicy,
    voice: VoiceOptions,
    output_format: &'static str,
    /// The format Azure sends.
    produced: AudioFormat,
    /// The format the caller wants.
    wanted: AudioFormat,
}

impl Context {
    /// Sends one synthesis request (with retries) and gives the response whose body
    /// is the audio.
    async fn synthesize(self: Arc<Self>, text: String) -> Result<reqwest::Response, ProviderError> {
        let body = Bytes::from(ssml::build(&self.voice, &text));
        self.retry
            .run(|| {
                let body = body.clone();
                let this = Arc::clone(&self);
                async move {
                    send_authorized(&this.client, &this.credential, || {
                        this.client
                            .post(&this.url)
                            .header(CONTENT_TYPE, "application/ssml+xml")
                            .header(OUTPUT_FORMAT_HEADER, this.output_format)
                            .header(reqwest::header::USER_AGENT, &this.user_agent)
                            .body(body.clone())
                    })
                    .await
                }
            })
            .await
    }

    fn decoder(&self) -> Decoder {
        if self.produced == self.wanted {
            return Decoder::Passthrough {
                sample: self.wanted.bytes_per_sample(),
                carry: Vec::new(),
            };
        }
        match Transcoder::new(self.produced, self.wanted) {
            Ok(t) => Decoder::Transcode(Box::new(t)),
            // Checked when the session opened; unreachable in practice.
            Err(_) => Decoder::Passthrough {
                sample: self.produced.bytes_per_sample(),
                carry: Vec::new(),
            },
        }
    }
}

/// Turns response chunks into whole samples of the wanted format.
enum Decoder {
    /// Azure's format is the wanted one: only re-align PCM16 samples split across
    /// chunks.
    Passthrough { sample: usize, carry: Vec<u8> },
    /// Azure's PCM16 to the wanted format.
    Transcode(Box<Transcoder>),
}

impl Decoder {
    fn push(&mut self, chunk: &[u8]) -> Bytes {
        match self {
            Decoder::Passthrough { sample, carry } => {
                if *sample <= 1 {
                    return Bytes::copy_from_slice(chunk);
                }
                carry.extend_from_slice(chunk);
                let whole = carry.len() - carry.len() % *sample;
                let rest = carry.split_off(whole);
                Bytes::from(std::mem::replace(carry, rest))
            }
            Decoder::Transcode(t) => Bytes::from(t.convert(chunk)),
        }
    }

    fn finish(&mut self) -> Bytes {
        match self {
            Decoder::Passthrough { carry, .. } => {
                if !carry.is_empty() {
                    tracing::warn!(bytes = carry.len(), "audio ended mid-sample; dropped");
                    carry.clear();
                }
                Bytes::new()
            }
            Decoder::Transcode(t) => {
                let mut out = Vec::new();
                if t.flush(&mut out) != 0 {
                    tracing::warn!("audio ended mid-sample; dropped");
                }
                Bytes::from(out)
            }
        }
    }
}

/// One sentence to synthesise.
#[derive(Debug)]
struct Job {
    request: RequestId,
    text: String,
    /// The request's last sentence: report `Done` after it.
    last: bool,
}

enum Phase {
    Connecting(BoxFuture<'static, Result<reqwest::Response, ProviderError>>),
    Streaming(BoxStream<'static, reqwest::Result<Bytes>>),
}

/// The sentence being synthesised and its response.
struct Active {
    job: Job,
    phase: Phase,
    decoder: Decoder,
}

enum Step {
    Connected(Result<reqwest::Response, ProviderError>),
    Chunk(Bytes),
    Cut(reqwest::Error),
    End,
}

async fn step(active: Option<&mut Active>) -> Step {
    let Some(active) = active else {
        return std::future::pending().await;
    };
    match &mut active.phase {
        Phase::Connecting(fut) => Step::Connected(fut.await),
        Phase::Streaming(body) => match body.next().await {
            Some(Ok(chunk)) => Step::Chunk(chunk),
            Some(Err(e)) => Step::Cut(e),
            None => Step::End,
        },
    }
}

/// Per-request state.
#[derive(Debug, Default)]
struct RequestState {
    /// Text received since the last flush.
    buffer: String,
    /// When the first flush (or finish) came: the TTFB clock's start.
    first_flush: Option<Instant>,
    ttfb_sent: bool,
}

/// The session task.
struct Task {
    peer: TtsPeer,
    context: Arc<Context>,
    requests: HashMap<RequestId, RequestState>,
    queue: VecDeque<Job>,
    active: Option<Active>,
    /// Recently cancelled requests, whose later input is ignored.
    cancelled: VecDeque<RequestId>,
}

const REMEMBER_CANCELLED: usize = 64;

async fn run(peer: TtsPeer, context: Arc<Context>) {
    let mut task = Task {
        peer,
        context,
        requests: HashMap::new(),
        queue: VecDeque::new(),
        active: None,
        cancelled: VecDeque::new(),
    };
    task.run().await;
    tracing::debug!("Azure TTS session ended");
}

impl Task {
    async fn run(&mut self) {
        loop {
            if !self.start_next().await {
                return;
            }
            let room = self.queue.len() < MAX_QUEUED;
            let busy = self.active.is_some();
            tokio::select! {
                input = self.peer.input.recv(), if room => {
                    let Some(input) = input else {
                        // The caller is gone: dropping the response aborts it.
                        return;
                    };
                    if !self.input(input).await {
                        return;
                    }
                }
                step = step(self.active.as_mut()), if busy => {
                    if !self.step(step).await {
                        return;
                    }
                }
                else => return,
            }
        }
    }

    /// Starts the next queued sentence if none is active; `false` if the caller left.
    async fn start_next(&mut self) -> bool {
        while self.active.is_none() {
            let Some(job) = self.queue.pop_front() else {
                return true;
            };
            if job.text.trim().is_empty() {
                if job.last && !self.done(job.request).await {
                    return false;
                }
                continue;
            }
            tracing::debug!(request = %job.request, chars = job.text.chars().count(), "synthesising");
            let fut = Box::pin(Arc::clone(&self.context).synthesize(job.text.clone()));
            self.active = Some(Active {
                job,
                phase: Phase::Connecting(fut),
                decoder: self.context.decoder(),
            });
        }
        true
    }

    async fn input(&mut self, input: TtsInput) -> bool {
        match input {
            TtsInput::Text { request, text } => {
                if !self.cancelled.contains(&request) {
                    self.requests
                        .entry(request)
                        .or_default()
                        .buffer
                        .push_str(&text);
                }
                true
            }
            TtsInput::Flush { request } => {
                self.enqueue(request, false);
                true
            }
            TtsInput::Finish { request } => {
                self.enqueue(request, true);
                true
            }
            TtsInput::Cancel { request } => self.cancel(request).await,
            other => {
                tracing::debug!(?other, "unknown TTS input ignored");
                true
            }
        }
    }

    fn enqueue(&mut self, request: RequestId, last: bool) {
        if self.cancelled.contains(&request) {
            return;
        }
        let state = self.requests.entry(request).or_default();
        let text = std::mem::take(&mut state.buffer);
        if text.trim().is_empty() && !last {
            return;
        }
        state.first_flush.get_or_insert_with(Instant::now);
        self.queue.push_back(Job {
            request,
            text,
            last,
        });
    }

    async fn cancel(&mut self, request: RequestId) -> bool {
        if self.cancelled.contains(&request) {
            return true;
        }
        if self.cancelled.len() == REMEMBER_CANCELLED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(request);
        if self
            .active
            .as_ref()
            .is_some_and(|a| a.job.request == request)
        {
            // Dropping the response closes the connection: no more of its audio.
            self.active = None;
            tracing::debug!(%request, "synthesis aborted (cancelled)");
        }
        self.queue.retain(|job| job.request != request);
        self.done(request).await
    }

    async fn step(&mut self, step: Step) -> bool {
        let Some(active) = self.active.as_mut() else {
            return true;
        };
        let request = active.job.request;
        match step {
            Step::Connected(Ok(response)) => {
                let characters = ssml::spoken_text(&active.job.text).chars().count() as u64;
                active.phase = Phase::Streaming(response.bytes_stream().boxed());
                self.peer
                    .send(TtsEvent::Usage(Usage {
                        provider: PROVIDER,
                        kind: UsageKind::Characters(characters),
                        reported: false,
                    }))
                    .await
            }
            Step::Connected(Err(error)) => {
                tracing::warn!(%request, %error, "synthesis request failed");
                self.fail(request, error).await
            }
            Step::Chunk(chunk) => {
                let audio = active.decoder.push(&chunk);
                self.audio(request, audio).await
            }
            Step::Cut(e) => {
                let error = ProviderError::new(
                    PROVIDER,
                    ErrorKind::Connection,
                    format!("audio stream cut: {e}"),
                );
                tracing::warn!(%request, %error, "synthesis response cut");
                self.fail(request, error).await
            }
            Step::End => {
                let tail = active.decoder.finish();
                let last = active.job.last;
                self.active = None;
                if !self.audio(request, tail).await {
                    return false;
                }
                if last { self.done(request).await } else { true }
            }
        }
    }

    async fn audio(&mut self, request: RequestId, audio: Bytes) -> bool {
        if audio.is_empty() {
            return true;
        }
        if let Some(state) = self.requests.get_mut(&request)
            && !state.ttfb_sent
        {
            state.ttfb_sent = true;
            let latency = state.first_flush.map(|t| t.elapsed()).unwrap_or_default();
            tracing::debug!(%request, ?latency, "first audio");
            if !self
                .peer
                .send(TtsEvent::Ttfb {
                    request,
                    ttfb: Ttfb {
                        provider: PROVIDER,
                        latency,
                    },
                })
                .await
            {
                return false;
            }
        }
        self.peer.send(TtsEvent::Audio { request, audio }).await
    }

    /// Reports a request's failure and ends it (its other sentences are dropped).
    async fn fail(&mut self, request: RequestId, error: ProviderError) -> bool {
        self.active = None;
        self.queue.retain(|job| job.request != request);
        if !self
            .peer
            .send(TtsEvent::Error {
                request: Some(request),
                error,
            })
            .await
        {
            return false;
        }
        self.done(request).await
    }

    async fn done(&mut self, request: RequestId) -> bool {
        self.requests.remove(&request);
        self.peer.send(TtsEvent::Done { request }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_formats_are_native() {
        assert_eq!(
            requested_output(AudioFormat::MULAW_8K),
            ("raw-8khz-8bit-mono-mulaw", AudioFormat::MULAW_8K)
        );
        assert_eq!(
            requested_output(AudioFormat::PCM16_8K),
            ("raw-8khz-16bit-mono-pcm", AudioFormat::PCM16_8K)
        );
        assert_eq!(
            requested_output(AudioFormat::PCM16_16K).0,
            "raw-16khz-16bit-mono-pcm"
        );
        assert_eq!(
            requested_output(AudioFormat::PCM16_24K).0,
            "raw-24khz-16bit-mono-pcm"
        );
    }

    #[test]
    fn other_formats_fall_back_to_pcm() {
        let mulaw16 = AudioFormat::new(Encoding::Mulaw, 16000);
        assert_eq!(
            requested_output(mulaw16),
            ("raw-16khz-16bit-mono-pcm", AudioFormat::PCM16_16K)
        );
        let pcm12 = AudioFormat::new(Encoding::Pcm16, 12000);
        assert_eq!(
            requested_output(pcm12),
            ("raw-24khz-16bit-mono-pcm", AudioFormat::PCM16_24K)
        );
    }

    #[test]
    fn passthrough_keeps_pcm_samples_whole() {
        let mut d = Decoder::Passthrough {
            sample: 2,
            carry: Vec::new(),
        };
        assert_eq!(d.push(&[1, 2, 3]).as_ref(), &[1, 2]);
        assert_eq!(d.push(&[4, 5]).as_ref(), &[3, 4]);
        assert_eq!(d.push(&[6]).as_ref(), &[5, 6]);
        assert!(d.finish().is_empty());
    }
}
