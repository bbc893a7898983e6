//! Speech-to-text over the REST API for short audio: the audio of each utterance is
//! buffered until `finalize`, converted to a 16 kHz PCM16 mono WAV and sent in one
//! `POST`; the one final result comes back as one [`Transcript`].
//!
//! This API gives no interim results and at most 60 s of audio per request. Azure's
//! streaming recognition is the Speech SDK's WebSocket protocol, which this adapter
//! does not speak.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Client;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use std::collections::VecDeque;
use tokio::time::Instant;
use voxline_audio::{AudioFormat, Transcoder, wav};
use voxline_core::{
    BoxFuture, ErrorKind, ProviderError, RetryPolicy, SpeechToText, SttConfig, SttEvent, SttPeer,
    SttSession, Transcript, Ttfb, Usage, UsageKind, Word,
};

use crate::config::AzureConfig;
use crate::http::{Credential, send_authorized, transport_error};
use crate::recognition::{self, Recognition, RecognitionStatus};
use crate::{PROVIDER, http_client};

/// The `Content-Type` of the WAV body.
pub const WAV_CONTENT_TYPE: &str = "audio/wav; codecs=audio/pcm; samplerate=16000";
/// The most audio the service takes in one request.
pub const MAX_UTTERANCE: Duration = Duration::from_secs(60);
/// The language used when the session names none.
pub const DEFAULT_LANGUAGE: &str = "en-US";
/// Capacity of a session's channels (a 20 ms frame is one message).
const SESSION_CAPACITY: usize = 256;
/// Utterances finalised and not yet answered; input waits beyond this.
const MAX_IN_FLIGHT: usize = 4;

/// Finalised utterances, recognised one at a time in order (each future is lazy, so
/// only the front one has a request on the wire).
#[derive(Default)]
struct Pending(VecDeque<BoxFuture<'static, Outcome>>);

impl Pending {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn push_back(&mut self, future: BoxFuture<'static, Outcome>) {
        self.0.push_back(future);
    }

    /// The front utterance's outcome. Cancel-safe: the future stays queued until it
    /// completes.
    async fn next(&mut self) -> Option<Outcome> {
        let front = self.0.front_mut()?;
        let outcome = front.await;
        self.0.pop_front();
        Some(outcome)
    }
}

/// The recognition mode: the path segment of the endpoint. Each is tuned for a kind of
/// speech; `conversation` is the one documented for short audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecognitionMode {
    /// `/speech/recognition/conversation/cognitiveservices/v1`.
    #[default]
    Conversation,
    /// `/speech/recognition/interactive/cognitiveservices/v1`.
    Interactive,
    /// `/speech/recognition/dictation/cognitiveservices/v1`.
    Dictation,
}

impl RecognitionMode {
    /// The endpoint path for this mode.
    pub fn path(self) -> &'static str {
        match self {
            Self::Conversation => "/speech/recognition/conversation/cognitiveservices/v1",
            Self::Interactive => "/speech/recognition/interactive/cognitiveservices/v1",
            Self::Dictation => "/speech/recognition/dictation/cognitiveservices/v1",
        }
    }
}

/// The `format` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ResultFormat {
    /// `simple`: status, display text, offset, duration.
    Simple,
    /// `detailed`: adds the `NBest` list with confidences.
    #[default]
    Detailed,
}

impl ResultFormat {
    fn as_str(self) -> &'static str {
        match self {
            Self::Simple => "simple",
            Self::Detailed => "detailed",
        }
    }
}

/// The `profanity` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Profanity {
    /// Replace profanity with asterisks (the service's default).
    Masked,
    /// Remove it.
    Removed,
    /// Keep it.
    Raw,
}

impl Profanity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Masked => "masked",
            Self::Removed => "removed",
            Self::Raw => "raw",
        }
    }
}

/// Recognition options beyond the session's [`SttConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct SttOptions {
    /// The endpoint's mode.
    pub mode: RecognitionMode,
    /// Simple or detailed results (detailed gives confidences).
    pub format: ResultFormat,
    /// Profanity handling; `None` leaves the service's default.
    pub profanity: Option<Profanity>,
    /// A custom speech endpoint id (`cid`).
    pub endpoint_id: Option<String>,
}

impl SttOptions {
    /// Conversation mode, detailed results.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same options in `mode`.
    pub fn mode(mut self, mode: RecognitionMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same options with another result format.
    pub fn format(mut self, format: ResultFormat) -> Self {
        self.format = format;
        self
    }

    /// The same options with profanity handling.
    pub fn profanity(mut self, profanity: Profanity) -> Self {
        self.profanity = Some(profanity);
        self
    }
}

/// Azure speech-to-text over the REST API for short audio. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AzureStt {
    config: AzureConfig,
    options: SttOptions,
    client: Client,
}

impl AzureStt {
    /// An adapter for `config` (conversation mode, detailed results).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(config: AzureConfig) -> Result<Self, ProviderError> {
        Ok(Self {
            client: http_client()?,
            config,
            options: SttOptions::default(),
        })
    }

    /// The same adapter with `options`.
    pub fn with_options(mut self, options: SttOptions) -> Self {
        self.options = options;
        self
    }

    fn open(&self, config: &SttConfig) -> Result<SttSession, ProviderError> {
        let credential = Credential::from_config(&self.config)?;
        let language = config
            .language
            .as_deref()
            .filter(|l| !l.trim().is_empty())
            .unwrap_or(DEFAULT_LANGUAGE)
            .to_owned();
        let mut query = vec![
            ("language", language.clone()),
            ("format", self.options.format.as_str().to_owned()),
        ];
        if let Some(p) = self.options.profanity {
            query.push(("profanity", p.as_str().to_owned()));
        }
        if let Some(cid) = &self.options.endpoint_id {
            query.push(("cid", cid.clone()));
        }
        let url = reqwest::Url::parse_with_params(
            &format!("{}{}", self.config.stt_base()?, self.options.mode.path()),
            &query,
        )
        .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
        let transcoder = Transcoder::new(config.format, AudioFormat::PCM16_16K)
            .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string()))?;
        if config.interim_results {
            tracing::debug!("interim results asked for; the REST API gives finals only");
        }
        let context = Arc::new(Context {
            client: self.client.clone(),
            credential,
            url,
            user_agent: self.config.user_agent.clone(),
            retry: self.config.retry,
            language,
        });
        tracing::debug!(url = %context.url, format = %config.format, "Azure STT session opened");
        let (session, peer) = SttSession::channel(PROVIDER, SESSION_CAPACITY);
        tokio::spawn(run(peer, context, config.format, transcoder));
        Ok(session)
    }
}

impl SpeechToText for AzureStt {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn connect(&self, config: SttConfig) -> BoxFuture<'_, Result<SttSession, ProviderError>> {
        Box::pin(async move { self.open(&config) })
    }
}

#[derive(Debug)]
struct Context {
    client: Client,
    credential: Credential,
    url: reqwest::Url,
    user_agent: String,
    retry: RetryPolicy,
    language: String,
}

/// One utterance sent for recognition.
struct Utterance {
    wav: Bytes,
    /// Length of the audio sent.
    audio: Duration,
    /// Where the utterance starts in the session's audio.
    start: Duration,
    finalized: Instant,
}

/// The events for one utterance, and whether the session must end after them.
struct Outcome {
    events: Vec<SttEvent>,
    fatal: bool,
}

impl Context {
    async fn recognize(self: Arc<Self>, utterance: Utterance) -> Outcome {
        let result = self
            .retry
            .run(|| {
                let this = Arc::clone(&self);
                let wav = utterance.wav.clone();
                async move { this.attempt(wav).await }
            })
            .await;
        let latency = utterance.finalized.elapsed();
        match result {
            Ok(recognition) => {
                tracing::debug!(
                    status = recognition.status.as_str(),
                    ?latency,
                    audio = ?utterance.audio,
                    "recognised"
                );
                let transcript = transcript(&recognition, utterance.start, &self.language);
                Outcome {
                    events: vec![
                        SttEvent::Ttfb(Ttfb {
                            provider: PROVIDER,
                            latency,
                        }),
                        SttEvent::Transcript(transcript),
                        SttEvent::Usage(Usage {
                            provider: PROVIDER,
                            kind: UsageKind::AudioSeconds(utterance.audio.as_secs_f64()),
                            reported: false,
                        }),
                    ],
                    fatal: false,
                }
            }
            Err(error) => {
                tracing::warn!(%error, "recognition failed");
                Outcome {
                    fatal: !error.is_retryable(),
                    events: vec![SttEvent::Error(error)],
                }
            }
        }
    }

    /// One request: the WAV in, the parsed result out. `RecognitionStatus: Error` is a
    /// server error (retryable), as the service asks to try again.
    async fn attempt(&self, wav: Bytes) -> Result<Recognition, ProviderError> {
        let response = send_authorized(&self.client, &self.credential, || {
            self.client
                .post(self.url.clone())
                .header(CONTENT_TYPE, WAV_CONTENT_TYPE)
                .header(ACCEPT, "application/json")
                .header(reqwest::header::USER_AGENT, &self.user_agent)
                .body(wav.clone())
        })
        .await?;
        let body = response.text().await.map_err(transport_error)?;
        let recognition = recognition::parse(&body)
            .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::Protocol, e.to_string()))?;
        match &recognition.status {
            RecognitionStatus::Error => Err(ProviderError::new(
                PROVIDER,
                ErrorKind::Server,
                "RecognitionStatus Error: the service could not recognise the audio",
            )),
            RecognitionStatus::Other(other) => {
                tracing::warn!(status = %other, "unknown RecognitionStatus: no transcript");
                Ok(recognition)
            }
            _ => Ok(recognition),
        }
    }
}

/// The final transcript of one utterance: the recognised text (empty for `NoMatch`
/// and the timeouts), placed in the session's audio.
pub(crate) fn transcript(recognition: &Recognition, start: Duration, language: &str) -> Transcript {
    let best = recognition.alternatives.first();
    let words = best
        .map(|b| {
            b.words
                .iter()
                .map(|w| Word {
                    text: w.word.clone(),
                    start: start + w.offset,
                    end: start + w.offset + w.duration,
                    confidence: w.confidence,
                })
                .collect()
        })
        .unwrap_or_default();
    let success = recognition.status == RecognitionStatus::Success;
    Transcript {
        text: recognition.text.clone(),
        is_final: true,
        end_of_utterance: true,
        confidence: if success {
            recognition.confidence()
        } else {
            None
        },
        start: start + recognition.offset,
        duration: recognition.duration,
        words,
        language: Some(language.to_owned()),
    }
}

/// The session's audio bookkeeping.
struct Buffer {
    format: AudioFormat,
    /// Audio of the current utterance, in the session's format.
    audio: Vec<u8>,
    /// The most bytes one utterance keeps.
    cap: usize,
    /// Bytes of this utterance beyond the cap, not sent.
    dropped: usize,
    /// Session audio received before the current utterance started.
    before: Duration,
    /// Bytes of the current utterance received (kept and dropped).
    received: usize,
    transcoder: Transcoder,
}

impl Buffer {
    fn push(&mut self, audio: &[u8]) {
        self.received += audio.len();
        let room = self.cap.saturating_sub(self.audio.len());
        let keep = audio.len().min(room);
        self.audio.extend_from_slice(&audio[..keep]);
        if keep < audio.len() {
            if self.dropped == 0 {
                tracing::warn!(
                    cap = ?MAX_UTTERANCE,
                    "utterance longer than the REST API's 60 s: the rest is not sent"
                );
            }
            self.dropped += audio.len() - keep;
        }
    }

    /// Ends the utterance: its WAV (16 kHz PCM16 mono), or `None` if it had no audio.
    fn take(&mut self) -> Option<Result<Utterance, ProviderError>> {
        let start = self.before;
        self.before += self.format.duration_of(self.received);
        self.received = 0;
        if self.dropped > 0 {
            tracing::warn!(
                dropped = ?self.format.duration_of(self.dropped),
                "audio beyond 60 s was not sent"
            );
            self.dropped = 0;
        }
        let audio = std::mem::take(&mut self.audio);
        if audio.len() < self.format.bytes_per_sample() {
            return None;
        }
        self.transcoder.reset();
        let mut pcm = Vec::with_capacity(self.transcoder.max_output_len(audio.len()) + 64);
        self.transcoder.process(&audio, &mut pcm);
        if self.transcoder.flush(&mut pcm) != 0 {
            tracing::debug!("utterance ended mid-sample; the odd byte was dropped");
        }
        // The resampler's tail can round up by a sample; never exceed the cap.
        pcm.truncate(AudioFormat::PCM16_16K.bytes_in(MAX_UTTERANCE));
        let duration = AudioFormat::PCM16_16K.duration_of(pcm.len());
        Some(
            wav::to_bytes(AudioFormat::PCM16_16K, &pcm)
                .map(|wav| Utterance {
                    wav: Bytes::from(wav),
                    audio: duration,
                    start,
                    finalized: Instant::now(),
                })
                .map_err(|e| ProviderError::new(PROVIDER, ErrorKind::BadRequest, e.to_string())),
        )
    }
}

async fn run(
    mut peer: SttPeer,
    context: Arc<Context>,
    format: AudioFormat,
    transcoder: Transcoder,
) {
    let mut buffer = Buffer {
        format,
        audio: Vec::new(),
        cap: format.bytes_in(MAX_UTTERANCE),
        dropped: 0,
        before: Duration::ZERO,
        received: 0,
        transcoder,
    };
    let mut in_flight = Pending::default();
    let mut input_open = true;
    loop {
        if !input_open && in_flight.is_empty() {
            break;
        }
        let room = input_open && in_flight.len() < MAX_IN_FLIGHT;
        let busy = !in_flight.is_empty();
        tokio::select! {
            input = peer.input.recv(), if room => match input {
                Some(voxline_core::SttInput::Audio(audio)) => buffer.push(&audio),
                Some(voxline_core::SttInput::Finalize) => {
                    if !finalize(&mut buffer, &context, &mut in_flight, &peer).await {
                        return;
                    }
                }
                Some(other) => tracing::debug!(?other, "unknown STT input ignored"),
                None => {
                    // Input closed: recognise what is buffered, deliver, then end.
                    input_open = false;
                    if !finalize(&mut buffer, &context, &mut in_flight, &peer).await {
                        return;
                    }
                }
            },
            Some(outcome) = in_flight.next(), if busy => {
                for event in outcome.events {
                    if !peer.send(event).await {
                        return;
                    }
                }
                if outcome.fatal {
                    tracing::debug!("permanent error: session ends");
                    return;
                }
            }
            else => break,
        }
    }
    tracing::debug!("Azure STT session ended");
}

/// Sends the buffered utterance for recognition; `false` if the caller left.
async fn finalize(
    buffer: &mut Buffer,
    context: &Arc<Context>,
    in_flight: &mut Pending,
    peer: &SttPeer,
) -> bool {
    match buffer.take() {
        None => {
            tracing::debug!("finalize with no audio: nothing to recognise");
            true
        }
        Some(Ok(utterance)) => {
            in_flight.push_back(Box::pin(Arc::clone(context).recognize(utterance)));
            true
        }
        Some(Err(error)) => peer.send(SttEvent::Error(error)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_paths() {
        assert_eq!(
            RecognitionMode::default().path(),
            "/speech/recognition/conversation/cognitiveservices/v1"
        );
        assert_eq!(
            RecognitionMode::Interactive.path(),
            "/speech/recognition/interactive/cognitiveservices/v1"
        );
    }

    #[test]
    fn no_match_gives_an_empty_final_transcript_in_place() {
        let r = recognition::parse(
            r#"{"RecognitionStatus":"NoMatch","Offset":5000000,"Duration":10000000}"#,
        )
        .expect("parses");
        let t = transcript(&r, Duration::from_secs(2), "en-US");
        assert_eq!(t.text, "");
        assert!(t.is_final && t.end_of_utterance);
        assert_eq!(t.start, Duration::from_millis(2500));
        assert_eq!(t.duration, Duration::from_secs(1));
        assert_eq!(t.confidence, None);
    }
}
