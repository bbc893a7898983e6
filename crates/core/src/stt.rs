//! Speech-to-text: a streaming session, audio in and transcripts out.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use voxline_audio::AudioFormat;

use crate::{BoxFuture, ProviderError, Ttfb, Usage};

/// A speech-to-text provider. Object-safe: binaries hold a `Box<dyn SpeechToText>`.
pub trait SpeechToText: Send + Sync {
    /// The provider's name, for logs and metrics (`"deepgram"`).
    fn name(&self) -> &'static str;

    /// Opens a session for audio in `config.format`. Streaming providers connect now;
    /// batch providers (one request per utterance) connect when a turn is finalised.
    fn connect(&self, config: SttConfig) -> BoxFuture<'_, Result<SttSession, ProviderError>>;
}

/// What a session is for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SttConfig {
    /// The audio that will be sent (phone audio: 8 kHz mu-law or PCM16).
    pub format: AudioFormat,
    /// BCP-47 language (`"en-US"`); `None` for the provider's default.
    pub language: Option<String>,
    /// Interim (partial) transcripts wanted.
    pub interim_results: bool,
}

impl SttConfig {
    /// A session for `format` with interim results and the provider's default language.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            format,
            language: None,
            interim_results: true,
        }
    }

    /// The same config for `language`.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }

    /// The same config with or without interim results.
    pub fn interim_results(mut self, on: bool) -> Self {
        self.interim_results = on;
        self
    }
}

/// One recognised word with its timing in the session's audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    /// The word as recognised (punctuated when the provider punctuates).
    pub text: String,
    /// Start, from the beginning of the session's audio.
    pub start: Duration,
    /// End, from the beginning of the session's audio.
    pub end: Duration,
    /// The provider's confidence, 0 to 1, when given.
    pub confidence: Option<f32>,
}

/// A transcript of part of the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The text.
    pub text: String,
    /// `false` for an interim result that later results replace; `true` when this span
    /// of audio will not be transcribed again.
    pub is_final: bool,
    /// The provider judged the speaker finished (Deepgram's `speech_final`, endpointing);
    /// implies `is_final`.
    pub end_of_utterance: bool,
    /// Confidence, 0 to 1, when given.
    pub confidence: Option<f32>,
    /// Start of the transcribed span in the session's audio.
    pub start: Duration,
    /// Length of the transcribed span.
    pub duration: Duration,
    /// Word timings, when given.
    pub words: Vec<Word>,
    /// BCP-47 language detected or used, when given.
    pub language: Option<String>,
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SttEvent {
    /// An interim or final transcript.
    Transcript(Transcript),
    /// The provider heard speech start (at this offset in the audio, when given).
    SpeechStarted {
        /// Offset in the session's audio.
        at: Option<Duration>,
    },
    /// The provider decided the utterance ended (Deepgram's `UtteranceEnd`).
    UtteranceEnd {
        /// End of the last word, when given.
        last_word_end: Option<Duration>,
    },
    /// Time from the end of a turn (`finalize`) or the first audio to the first result.
    Ttfb(Ttfb),
    /// Audio seconds used (at close, or per request for batch providers).
    Usage(Usage),
    /// The connection dropped and was re-established; audio sent meanwhile was kept.
    Reconnected,
    /// A failure. A retryable one may be followed by [`SttEvent::Reconnected`]; after a
    /// permanent one the session ends.
    Error(ProviderError),
}

/// What the caller of a session asks of the adapter's task.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SttInput {
    /// Audio in the session's format.
    Audio(Bytes),
    /// The turn ended (our VAD said so): transcribe everything sent so far now.
    Finalize,
}

/// The handle a caller holds: audio in, events out. Dropping it closes the session
/// cleanly; [`close`](Self::close) also waits for the provider's last results.
#[derive(Debug)]
pub struct SttSession {
    sender: SttSender,
    events: mpsc::Receiver<SttEvent>,
}

/// The adapter's side of a session: it receives input and sends events. When every
/// [`SttSession`] handle is gone, [`recv`](Self::recv) returns `None`: close cleanly.
#[derive(Debug)]
pub struct SttPeer {
    /// What the caller sends.
    pub input: mpsc::Receiver<SttInput>,
    /// Where the adapter reports.
    pub events: mpsc::Sender<SttEvent>,
}

impl SttPeer {
    /// The next input, or `None` once the caller dropped or closed the session.
    pub async fn recv(&mut self) -> Option<SttInput> {
        self.input.recv().await
    }

    /// Reports an event; `false` if the caller is gone.
    pub async fn send(&self, event: SttEvent) -> bool {
        self.events.send(event).await.is_ok()
    }
}

impl SttSession {
    /// A session handle and the adapter's peer, over channels of `capacity` messages
    /// each way (a 20 ms frame is one message).
    pub fn channel(provider: &'static str, capacity: usize) -> (Self, SttPeer) {
        let (input_tx, input_rx) = mpsc::channel(capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                sender: SttSender {
                    provider,
                    input: input_tx,
                },
                events: events_rx,
            },
            SttPeer {
                input: input_rx,
                events: events_tx,
            },
        )
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.sender.provider
    }

    /// Sends audio; waits if the adapter is behind (the channel is bounded).
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.sender.send_audio(audio).await
    }

    /// Sends audio without waiting; gives it back if the channel is full, so a real-time
    /// caller can count the drop instead of stalling the call.
    ///
    /// # Errors
    /// When the channel is full or the session has ended.
    pub fn try_send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.sender.try_send_audio(audio)
    }

    /// The caller's turn ended: ask for the final transcript of what was sent.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn finalize(&self) -> Result<(), ProviderError> {
        self.sender.finalize().await
    }

    /// The next event, or `None` when the session has ended.
    pub async fn recv(&mut self) -> Option<SttEvent> {
        self.events.recv().await
    }

    /// Splits the handle so one task can feed audio while another reads events.
    /// Dropping the [`SttSender`] closes the session as dropping the handle does.
    pub fn split(self) -> (SttSender, SttEvents) {
        (
            self.sender,
            SttEvents {
                events: self.events,
            },
        )
    }

    /// Ends the input and collects the events that follow (final transcripts, usage)
    /// until the adapter finishes.
    pub async fn close(self) -> Vec<SttEvent> {
        let (sender, mut events) = self.split();
        drop(sender);
        let mut rest = Vec::new();
        while let Some(event) = events.recv().await {
            rest.push(event);
        }
        rest
    }
}

/// The sending half of a split [`SttSession`].
#[derive(Debug, Clone)]
pub struct SttSender {
    provider: &'static str,
    input: mpsc::Sender<SttInput>,
}

impl SttSender {
    /// Sends audio; waits if the adapter is behind.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.input
            .send(SttInput::Audio(audio))
            .await
            .map_err(|_| ProviderError::closed(self.provider))
    }

    /// Sends audio without waiting; a full channel is an error the caller counts.
    ///
    /// # Errors
    /// When the channel is full or the session has ended.
    pub fn try_send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.input
            .try_send(SttInput::Audio(audio))
            .map_err(|e| ProviderError::from_try_send(self.provider, &e, "speech-to-text"))
    }

    /// The caller's turn ended: ask for the final transcript of what was sent.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn finalize(&self) -> Result<(), ProviderError> {
        self.input
            .send(SttInput::Finalize)
            .await
            .map_err(|_| ProviderError::closed(self.provider))
    }

    /// As [`finalize`](Self::finalize) without waiting, for a caller that must not
    /// block (a call's own task).
    ///
    /// # Errors
    /// When the channel is full or the session has ended.
    pub fn try_finalize(&self) -> Result<(), ProviderError> {
        self.input
            .try_send(SttInput::Finalize)
            .map_err(|e| ProviderError::from_try_send(self.provider, &e, "speech-to-text"))
    }
}

/// The receiving half of a split [`SttSession`].
#[derive(Debug)]
pub struct SttEvents {
    events: mpsc::Receiver<SttEvent>,
}

impl SttEvents {
    /// The next event, or `None` when the session has ended.
    pub async fn recv(&mut self) -> Option<SttEvent> {
        self.events.recv().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn split_halves_feed_and_read_one_session() {
        let (session, mut peer) = SttSession::channel("test", 4);
        let (sender, mut events) = session.split();
        sender
            .send_audio(Bytes::from_static(b"abc"))
            .await
            .expect("open");
        sender.finalize().await.expect("open");
        assert_eq!(
            peer.recv().await,
            Some(SttInput::Audio(Bytes::from_static(b"abc")))
        );
        assert_eq!(peer.recv().await, Some(SttInput::Finalize));
        assert!(peer.send(SttEvent::Reconnected).await);
        assert_eq!(events.recv().await, Some(SttEvent::Reconnected));
        drop(sender);
        assert_eq!(
            peer.recv().await,
            None,
            "dropping the sender closes the input"
        );
    }
}
