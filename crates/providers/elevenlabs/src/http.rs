//! [`ElevenLabsHttp`]: text-to-speech over `POST /v1/text-to-speech/{voice_id}/stream`,
//! one request per flushed sentence.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::Url;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RequestId, TextToSpeech, Ttfb, TtsConfig, TtsEvent,
    TtsInput, TtsPeer, TtsSession, Usage, UsageKind,
};

use crate::PROVIDER;
use crate::audio::{Converter, FormatPlan, Transport};
use crate::config::{ElevenLabsConfig, path_segment};
use crate::wire::{HttpBody, http_error_message};
use crate::ws::bool_str;

/// Sentences queued before input is no longer read.
const MAX_QUEUE: usize = 64;
/// The longest pause allowed between two pieces of a response body.
const STALL_TIMEOUT: Duration = Duration::from_secs(20);
/// How much of a request's earlier text is sent as `previous_text`.
const MAX_PREVIOUS_CHARS: usize = 1000;

/// ElevenLabs text-to-speech over HTTP streaming: the fallback when WebSockets are not
/// wanted. Each flushed sentence is one `POST .../stream` (retried per the config's
/// policy until the response starts); a cancel drops the response in flight.
/// Sentences of one session are synthesised one after another, in order.
#[derive(Debug, Clone)]
pub struct ElevenLabsHttp {
    config: Arc<ElevenLabsConfig>,
}

impl ElevenLabsHttp {
    /// An adapter with `config`.
    pub fn new(config: ElevenLabsConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The config.
    pub fn config(&self) -> &ElevenLabsConfig {
        &self.config
    }
}

impl TextToSpeech for ElevenLabsHttp {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, tts: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>> {
        Box::pin(async move {
            let config = Arc::clone(&self.config);
            let key = config.key()?;
            let plan = FormatPlan::new(tts.format, Transport::Http)?;
            let voice = tts.voice.as_deref().unwrap_or(&config.voice_id);
            let mut url = config.url(
                &format!("/v1/text-to-speech/{}/stream", path_segment(voice)),
                false,
            )?;
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("output_format", &plan.output_format());
                if let Some(level) = config.optimize_streaming_latency {
                    q.append_pair("optimize_streaming_latency", &level.min(4).to_string());
                }
                if let Some(logging) = config.enable_logging {
                    q.append_pair("enable_logging", bool_str(logging));
                }
            }
            voxline_core::install_tls();
            let client = reqwest::Client::builder()
                .connect_timeout(config.connect_timeout)
                .build()
                .map_err(|e| {
                    ProviderError::new(PROVIDER, ErrorKind::Connection, format!("HTTP client: {e}"))
                })?;
            info!(
                provider = PROVIDER,
                output_format = %plan.output_format(),
                transcoding = !plan.is_native(),
                "HTTP session ready"
            );
            let language = config.language_code(tts.language.as_deref());
            let (session, peer) = TtsSession::channel(PROVIDER, config.channel_capacity);
            let TtsPeer { input, events } = peer;
            let task = Task {
                ctx: Arc::new(Ctx {
                    config,
                    client,
                    url,
                    key,
                    language,
                }),
                plan,
                requests: HashMap::new(),
                queue: VecDeque::new(),
                current: None,
                events,
            };
            tokio::spawn(task.run(input));
            Ok(session)
        })
    }
}

/// What every sentence request needs.
struct Ctx {
    config: Arc<ElevenLabsConfig>,
    client: reqwest::Client,
    url: Url,
    key: String,
    language: Option<String>,
}

/// A request's state between sentences.
struct Request {
    buffer: String,
    /// Its text already sent, for `previous_text`.
    previous: String,
    /// `None` while a sentence of it is being synthesised (the job holds it).
    converter: Option<Converter>,
    started: Option<Instant>,
    audio_seen: bool,
    finishing: bool,
}

/// Work in order.
enum Job {
    Speak {
        request: RequestId,
        text: String,
        previous: Option<String>,
    },
    End {
        request: RequestId,
    },
}

impl Job {
    fn request(&self) -> RequestId {
        match self {
            Self::Speak { request, .. } | Self::End { request } => *request,
        }
    }
}

type SpeakResult = Result<(Converter, bool), ProviderError>;
type Running = Pin<Box<dyn Future<Output = SpeakResult> + Send>>;

struct Task {
    ctx: Arc<Ctx>,
    plan: FormatPlan,
    requests: HashMap<RequestId, Request>,
    queue: VecDeque<Job>,
    current: Option<(RequestId, Running)>,
    events: mpsc::Sender<TtsEvent>,
}

async fn run_current(current: &mut Option<(RequestId, Running)>) -> (RequestId, SpeakResult) {
    match current {
        Some((request, job)) => (*request, job.await),
        None => std::future::pending().await,
    }
}

impl Task {
    async fn run(mut self, mut input: mpsc::Receiver<TtsInput>) {
        loop {
            if self.current.is_none() {
                self.start_next().await;
            }
            tokio::select! {
                biased;
                next = input.recv(), if self.queue.len() < MAX_QUEUE => match next {
                    Some(next) => self.on_input(next).await,
                    None => break,
                },
                (request, result) = run_current(&mut self.current) => {
                    self.current = None;
                    self.on_spoken(request, result).await;
                }
            }
        }
        // Dropping a response in flight aborts it.
        debug!("HTTP session closed");
    }

    async fn emit(&mut self, event: TtsEvent) {
        let _ = self.events.send(event).await;
    }

    async fn on_input(&mut self, input: TtsInput) {
        let now = Instant::now();
        match input {
            TtsInput::Text { request, text } => {
                if !self.requests.contains_key(&request) {
                    match self.plan.converter() {
                        Ok(converter) => {
                            self.requests.insert(
                                request,
                                Request {
                                    buffer: String::new(),
                                    previous: String::new(),
                                    converter: Some(converter),
                                    started: None,
                                    audio_seen: false,
                                    finishing: false,
                                },
                            );
                        }
                        Err(error) => {
                            self.fail(request, error).await;
                            return;
                        }
                    }
                }
                if let Some(r) = self.requests.get_mut(&request) {
                    if r.finishing {
                        warn!(%request, "text after finish ignored");
                    } else {
                        r.buffer.push_str(&text);
                    }
                }
            }
            TtsInput::Flush { request } => {
                if self.requests.get(&request).is_some_and(|r| !r.finishing) {
                    self.enqueue_sentence(request, now);
                }
            }
            TtsInput::Finish { request } => {
                if self.requests.get(&request).is_some_and(|r| !r.finishing) {
                    self.enqueue_sentence(request, now);
                    if let Some(r) = self.requests.get_mut(&request) {
                        r.finishing = true;
                        r.started.get_or_insert(now);
                    }
                    self.queue.push_back(Job::End { request });
                } else if !self.requests.contains_key(&request) {
                    self.emit(TtsEvent::Done { request }).await;
                }
            }
            TtsInput::Cancel { request } => {
                self.queue.retain(|job| job.request() != request);
                if self.current.as_ref().is_some_and(|(r, _)| *r == request) {
                    debug!(%request, "cancelled; response in flight dropped");
                    self.current = None;
                }
                self.requests.remove(&request);
                self.emit(TtsEvent::Done { request }).await;
            }
            _ => warn!("unknown input ignored"),
        }
    }

    /// Queues what `request` has buffered as one sentence request.
    fn enqueue_sentence(&mut self, request: RequestId, now: Instant) {
        let Some(r) = self.requests.get_mut(&request) else {
            return;
        };
        let text = std::mem::take(&mut r.buffer);
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        r.started.get_or_insert(now);
        let takes_previous = !self.ctx.config.model_id.starts_with("eleven_v3");
        let previous = (takes_previous && !r.previous.is_empty()).then(|| r.previous.clone());
        if !r.previous.is_empty() {
            r.previous.push(' ');
        }
        r.previous.push_str(text);
        let excess = r
            .previous
            .chars()
            .count()
            .saturating_sub(MAX_PREVIOUS_CHARS);
        if excess > 0 {
            r.previous = r.previous.chars().skip(excess).collect();
        }
        self.queue.push_back(Job::Speak {
            request,
            text: text.to_owned(),
            previous,
        });
    }

    /// Runs `End` jobs at the head of the queue and starts the next sentence.
    async fn start_next(&mut self) {
        while let Some(job) = self.queue.pop_front() {
            match job {
                Job::End { request } => {
                    if let Some(mut r) = self.requests.remove(&request) {
                        let tail = r
                            .converter
                            .as_mut()
                            .map(Converter::finish)
                            .unwrap_or_default();
                        if !tail.is_empty() {
                            self.emit(TtsEvent::Audio {
                                request,
                                audio: tail,
                            })
                            .await;
                        }
                        debug!(%request, "done");
                        self.emit(TtsEvent::Done { request }).await;
                    }
                }
                Job::Speak {
                    request,
                    text,
                    previous,
                } => {
                    let Some(r) = self.requests.get_mut(&request) else {
                        continue;
                    };
                    let Some(converter) = r.converter.take() else {
                        continue;
                    };
                    let started = r.started.unwrap_or_else(Instant::now);
                    let job = speak(
                        Arc::clone(&self.ctx),
                        request,
                        text,
                        previous,
                        converter,
                        started,
                        r.audio_seen,
                        self.events.clone(),
                    );
                    self.current = Some((request, Box::pin(job)));
                    return;
                }
            }
        }
    }

    async fn on_spoken(&mut self, request: RequestId, result: SpeakResult) {
        match result {
            Ok((converter, audio_seen)) => {
                if let Some(r) = self.requests.get_mut(&request) {
                    r.converter = Some(converter);
                    r.audio_seen = audio_seen;
                }
            }
            Err(error) => {
                self.queue.retain(|job| job.request() != request);
                if self.requests.remove(&request).is_some() {
                    self.fail(request, error).await;
                }
            }
        }
    }

    async fn fail(&mut self, request: RequestId, error: ProviderError) {
        warn!(%request, %error, "request failed");
        self.emit(TtsEvent::Error {
            request: Some(request),
            error,
        })
        .await;
        self.emit(TtsEvent::Done { request }).await;
    }
}

/// One sentence: POST (retried until the response starts), stream the body out as
/// audio events, report the `character-cost`.
#[allow(clippy::too_many_arguments)]
async fn speak(
    ctx: Arc<Ctx>,
    request: RequestId,
    text: String,
    previous: Option<String>,
    mut converter: Converter,
    started: Instant,
    mut audio_seen: bool,
    events: mpsc::Sender<TtsEvent>,
) -> SpeakResult {
    let config = &ctx.config;
    let body = HttpBody {
        text: &text,
        model_id: &config.model_id,
        language_code: ctx.language.as_deref(),
        voice_settings: config.voice_settings.as_ref(),
        pronunciation_dictionary_locators: &config.pronunciation_dictionaries,
        previous_text: previous.as_deref(),
        apply_text_normalization: config.apply_text_normalization.as_deref(),
    };
    debug!(%request, chars = text.chars().count(), "sentence request");
    let response = config.retry.run(|| post_once(&ctx, &body)).await?;
    let cost = response
        .headers()
        .get("character-cost")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut body = response.bytes_stream();
    loop {
        let chunk = match tokio::time::timeout(STALL_TIMEOUT, body.next()).await {
            Err(_) => {
                return Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Timeout,
                    "response stalled",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(ProviderError::new(
                    PROVIDER,
                    ErrorKind::Connection,
                    format!("response cut: {e}"),
                ));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        let audio = converter.push(&chunk);
        if !audio_seen {
            audio_seen = true;
            let latency = started.elapsed();
            debug!(%request, ?latency, "first audio");
            let ttfb = Ttfb {
                provider: PROVIDER,
                latency,
            };
            let _ = events.send(TtsEvent::Ttfb { request, ttfb }).await;
        }
        if !audio.is_empty() {
            let _ = events.send(TtsEvent::Audio { request, audio }).await;
        }
    }
    let usage = match cost {
        Some(chars) => Usage {
            provider: PROVIDER,
            kind: UsageKind::Characters(chars),
            reported: true,
        },
        None => Usage {
            provider: PROVIDER,
            kind: UsageKind::Characters(text.chars().count() as u64),
            reported: false,
        },
    };
    let _ = events.send(TtsEvent::Usage(usage)).await;
    Ok((converter, audio_seen))
}

async fn post_once(ctx: &Ctx, body: &HttpBody<'_>) -> Result<reqwest::Response, ProviderError> {
    let sending = ctx
        .client
        .post(ctx.url.clone())
        .header("xi-api-key", &ctx.key)
        .json(body)
        .send();
    let response = tokio::time::timeout(ctx.config.connect_timeout, sending)
        .await
        .map_err(|_| ProviderError::new(PROVIDER, ErrorKind::Timeout, "no response in time"))?
        .map_err(|e| {
            ProviderError::new(
                PROVIDER,
                ErrorKind::Connection,
                format!("request failed: {e}"),
            )
        })?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| voxline_core::parse_retry_after(v, std::time::SystemTime::now()));
    let text = response.text().await.unwrap_or_default();
    let mut error = ProviderError::from_http(PROVIDER, status.as_u16(), http_error_message(&text));
    if let Some(after) = retry_after {
        error = error.with_retry_after(after);
    }
    Err(error)
}
