//! Text-to-speech: a session that takes text per request and gives audio back.

use bytes::Bytes;
use tokio::sync::mpsc;
use voxline_audio::AudioFormat;

use crate::{BoxFuture, ProviderError, Ttfb, Usage};

/// A text-to-speech provider. Object-safe: binaries hold a `Box<dyn TextToSpeech>`.
pub trait TextToSpeech: Send + Sync {
    /// The provider's name, for logs and metrics (`"elevenlabs"`).
    fn name(&self) -> &'static str;

    /// Opens a session that delivers audio in `config.format`, transcoding when the
    /// provider cannot produce that format itself.
    fn connect(&self, config: TtsConfig) -> BoxFuture<'_, Result<TtsSession, ProviderError>>;
}

/// What a session produces.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TtsConfig {
    /// The audio format wanted (phone calls: 8 kHz mu-law, so no transcoding is needed
    /// where the provider offers it).
    pub format: AudioFormat,
    /// The provider's voice id or name; `None` for the adapter's default.
    pub voice: Option<String>,
    /// BCP-47 language, where the provider takes one.
    pub language: Option<String>,
}

impl TtsConfig {
    /// Audio in `format` from the default voice.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            format,
            voice: None,
            language: None,
        }
    }

    /// The same config with `voice`.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }

    /// The same config with `language`.
    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = Some(language.into());
        self
    }
}

/// One utterance within a session (a bot turn, or part of one). Cancelling it stops
/// its audio without touching later requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "req-{}", self.0)
    }
}

/// What the caller asks of the adapter's task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TtsInput {
    /// More text for `request` (the first text starts the request).
    Text {
        /// Which request.
        request: RequestId,
        /// The text, in order; may end mid-sentence.
        text: String,
    },
    /// Synthesise what `request` has buffered now (end of a sentence).
    Flush {
        /// Which request.
        request: RequestId,
    },
    /// No more text for `request`: synthesise the rest and report `Done`.
    Finish {
        /// Which request.
        request: RequestId,
    },
    /// Drop `request`: stop generating, discard its audio, report `Done`.
    Cancel {
        /// Which request.
        request: RequestId,
    },
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TtsEvent {
    /// Audio for `request`, in the session's format, in order.
    Audio {
        /// Which request.
        request: RequestId,
        /// The audio (whole samples; any length).
        audio: Bytes,
    },
    /// Time from the request's first flush (or finish) to its first audio.
    Ttfb {
        /// Which request.
        request: RequestId,
        /// The mark.
        ttfb: Ttfb,
    },
    /// `request` is over: all its audio was delivered, it was cancelled, or it failed
    /// (an `Error` for it comes first). Every request that got text ends with one.
    Done {
        /// Which request.
        request: RequestId,
    },
    /// Characters synthesised.
    Usage(Usage),
    /// A failure, for one request or (`request: None`) the whole session.
    Error {
        /// The failed request, if the failure was one request's.
        request: Option<RequestId>,
        /// What failed.
        error: ProviderError,
    },
}

impl TtsEvent {
    /// The request the event belongs to, if any.
    pub fn request(&self) -> Option<RequestId> {
        match self {
            Self::Audio { request, .. } | Self::Ttfb { request, .. } | Self::Done { request } => {
                Some(*request)
            }
            Self::Error { request, .. } => *request,
            Self::Usage(_) => None,
        }
    }
}

/// The handle a caller holds. Cancelling a request takes effect in the handle at once:
/// no event of that request is returned afterwards, whatever the provider still sends.
/// Dropping the handle closes the session cleanly.
#[derive(Debug)]
pub struct TtsSession {
    provider: &'static str,
    input: mpsc::Sender<TtsInput>,
    events: mpsc::Receiver<TtsEvent>,
    next: u64,
    /// Requests given text whose `Done` has not been returned yet.
    open: Vec<RequestId>,
    /// Cancelled requests whose `Done` has not come back yet (a subset of what was open,
    /// so both lists stay as short as the requests in flight).
    cancelled: Vec<RequestId>,
}

/// The adapter's side of a session.
#[derive(Debug)]
pub struct TtsPeer {
    /// What the caller sends; `None` from `recv` once the caller dropped the session.
    pub input: mpsc::Receiver<TtsInput>,
    /// Where the adapter reports.
    pub events: mpsc::Sender<TtsEvent>,
}

impl TtsPeer {
    /// The next input, or `None` once the caller is gone.
    pub async fn recv(&mut self) -> Option<TtsInput> {
        self.input.recv().await
    }

    /// Reports an event; `false` if the caller is gone.
    pub async fn send(&self, event: TtsEvent) -> bool {
        self.events.send(event).await.is_ok()
    }
}

impl TtsSession {
    /// A session handle and the adapter's peer, over channels of `capacity` messages.
    pub fn channel(provider: &'static str, capacity: usize) -> (Self, TtsPeer) {
        let (input_tx, input_rx) = mpsc::channel(capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                provider,
                input: input_tx,
                events: events_rx,
                next: 1,
                open: Vec::new(),
                cancelled: Vec::new(),
            },
            TtsPeer {
                input: input_rx,
                events: events_tx,
            },
        )
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// A new request id; nothing is sent until its first text.
    pub fn new_request(&mut self) -> RequestId {
        let id = RequestId(self.next);
        self.next += 1;
        id
    }

    /// Marks `request` open: the caller has sent something for it.
    fn touch(&mut self, request: RequestId) {
        if !self.open.contains(&request) && !self.cancelled.contains(&request) {
            self.open.push(request);
        }
    }

    async fn send(&self, input: TtsInput) -> Result<(), ProviderError> {
        self.input
            .send(input)
            .await
            .map_err(|_| ProviderError::closed(self.provider))
    }

    /// Streams more text into `request`.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_text(
        &mut self,
        request: RequestId,
        text: impl Into<String>,
    ) -> Result<(), ProviderError> {
        self.touch(request);
        self.send(TtsInput::Text {
            request,
            text: text.into(),
        })
        .await
    }

    /// Asks for what `request` has buffered to be spoken now (end of a sentence).
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn flush(&mut self, request: RequestId) -> Result<(), ProviderError> {
        self.touch(request);
        self.send(TtsInput::Flush { request }).await
    }

    /// Ends `request`'s text.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn finish(&mut self, request: RequestId) -> Result<(), ProviderError> {
        self.touch(request);
        self.send(TtsInput::Finish { request }).await
    }

    /// A whole utterance in one call: a new request with `text`, finished.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn say(&mut self, text: impl Into<String>) -> Result<RequestId, ProviderError> {
        let request = self.new_request();
        self.send_text(request, text).await?;
        self.finish(request).await?;
        Ok(request)
    }

    /// Cancels `request` (barge-in). From now on no event of it is returned; the
    /// adapter is told to stop generating it. A request that is already over (its
    /// `Done` was returned) or never got text has nothing to cancel.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn cancel(&mut self, request: RequestId) -> Result<(), ProviderError> {
        let Some(at) = self.open.iter().position(|r| *r == request) else {
            return Ok(());
        };
        self.open.swap_remove(at);
        self.cancelled.push(request);
        self.send(TtsInput::Cancel { request }).await
    }

    /// Requests that got text and are not over yet.
    pub fn in_flight(&self) -> usize {
        self.open.len() + self.cancelled.len()
    }

    /// The next event of a request that is open (not cancelled, not over), or `None`
    /// when the session has ended. Events of a request after its `Done`, or of one the
    /// caller never started, are dropped: a slow provider cannot replay old audio.
    pub async fn recv(&mut self) -> Option<TtsEvent> {
        loop {
            let event = self.events.recv().await?;
            match event.request() {
                Some(request) if self.cancelled.contains(&request) => {
                    if matches!(event, TtsEvent::Done { .. }) {
                        self.cancelled.retain(|r| *r != request);
                    }
                }
                Some(request) if !self.open.contains(&request) => {
                    tracing::debug!(%request, "event of a request that is over dropped");
                }
                Some(request) if matches!(event, TtsEvent::Done { .. }) => {
                    self.open.retain(|r| *r != request);
                    return Some(event);
                }
                _ => return Some(event),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_of_a_cancelled_request_is_returned() {
        let (mut session, mut peer) = TtsSession::channel("test", 16);
        let first = session.say("hello").await.expect("open");
        let second = session.say("world").await.expect("open");
        // The provider keeps sending the first request's audio after the cancel.
        assert!(
            peer.send(TtsEvent::Audio {
                request: first,
                audio: Bytes::from_static(b"a"),
            })
            .await
        );
        assert_eq!(session.recv().await.and_then(|e| e.request()), Some(first));
        session.cancel(first).await.expect("open");
        for event in [
            TtsEvent::Audio {
                request: first,
                audio: Bytes::from_static(b"late"),
            },
            TtsEvent::Done { request: first },
            TtsEvent::Audio {
                request: second,
                audio: Bytes::from_static(b"b"),
            },
        ] {
            assert!(peer.send(event).await);
        }
        let next = session.recv().await.expect("an event");
        assert_eq!(
            next,
            TtsEvent::Audio {
                request: second,
                audio: Bytes::from_static(b"b")
            }
        );
        // The adapter saw the input in order, the cancel last.
        let mut inputs = Vec::new();
        while let Ok(input) = peer.input.try_recv() {
            inputs.push(input);
        }
        assert_eq!(inputs.last(), Some(&TtsInput::Cancel { request: first }));
    }

    #[tokio::test]
    async fn finished_requests_are_forgotten_and_cannot_be_cancelled() {
        let (mut session, mut peer) = TtsSession::channel("test", 16);
        let request = session.say("hi").await.expect("open");
        assert_eq!(session.in_flight(), 1);
        assert!(peer.send(TtsEvent::Done { request }).await);
        assert_eq!(session.recv().await, Some(TtsEvent::Done { request }));
        assert_eq!(session.in_flight(), 0);
        session.cancel(request).await.expect("open");
        assert_eq!(session.in_flight(), 0, "nothing left behind");
        let mut inputs = Vec::new();
        while let Ok(input) = peer.input.try_recv() {
            inputs.push(input);
        }
        assert!(
            !inputs.contains(&TtsInput::Cancel { request }),
            "{inputs:?}"
        );
    }

    #[tokio::test]
    async fn events_after_done_are_dropped() {
        let (mut session, peer) = TtsSession::channel("test", 16);
        let first = session.say("one").await.expect("open");
        let second = session.say("two").await.expect("open");
        for event in [
            TtsEvent::Done { request: first },
            TtsEvent::Audio {
                request: first,
                audio: Bytes::from_static(b"stale"),
            },
            TtsEvent::Audio {
                request: RequestId(99),
                audio: Bytes::from_static(b"never asked"),
            },
            TtsEvent::Done { request: second },
        ] {
            assert!(peer.send(event).await);
        }
        assert_eq!(
            session.recv().await,
            Some(TtsEvent::Done { request: first })
        );
        assert_eq!(
            session.recv().await,
            Some(TtsEvent::Done { request: second })
        );
    }

    #[tokio::test]
    async fn dropping_the_handle_ends_the_peer_input() {
        let (session, mut peer) = TtsSession::channel("test", 4);
        drop(session);
        assert_eq!(peer.recv().await, None);
    }
}
