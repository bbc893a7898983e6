//! Speech-to-speech models: one session per call, audio in and audio out.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use voxline_audio::AudioFormat;

use crate::{BoxFuture, ChatMessage, ProviderError, ToolCall, ToolDefinition, Ttfb, Usage};

/// A realtime speech-to-speech model (Gemini Live, OpenAI Realtime). Object-safe:
/// binaries hold a `Box<dyn RealtimeModel>`.
pub trait RealtimeModel: Send + Sync {
    /// The provider's name, for logs and metrics (`"gemini"`).
    fn name(&self) -> &'static str;

    /// Opens a session: connects, configures it (instructions, voice, tools, history)
    /// and resolves once the provider has accepted the configuration.
    fn connect(
        &self,
        config: RealtimeConfig,
    ) -> BoxFuture<'_, Result<RealtimeSession, ProviderError>>;
}

/// What a realtime session is for.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RealtimeConfig {
    /// The caller's audio as it will be sent (phone audio: 8 kHz mu-law or PCM16). The
    /// adapter transcodes to what the model takes unless the model takes it natively.
    pub input_format: AudioFormat,
    /// The audio the caller needs back; the adapter delivers exactly this format.
    pub output_format: AudioFormat,
    /// The system prompt.
    pub instructions: Option<String>,
    /// The provider's voice name; `None` for its default.
    pub voice: Option<String>,
    /// Tools the model may call.
    pub tools: Vec<ToolDefinition>,
    /// Sampling temperature; `None` for the provider's default.
    pub temperature: Option<f32>,
    /// Conversation to seed the session with (a new session after an expired one).
    pub history: Vec<ChatMessage>,
}

impl RealtimeConfig {
    /// A session taking and giving audio in `format` (the call's own), no prompt.
    pub fn new(format: AudioFormat) -> Self {
        Self {
            input_format: format,
            output_format: format,
            instructions: None,
            voice: None,
            tools: Vec::new(),
            temperature: None,
            history: Vec::new(),
        }
    }

    /// The same config with a system prompt.
    pub fn instructions(mut self, instructions: impl Into<String>) -> Self {
        self.instructions = Some(instructions.into());
        self
    }

    /// The same config with a voice.
    pub fn voice(mut self, voice: impl Into<String>) -> Self {
        self.voice = Some(voice.into());
        self
    }

    /// The same config with tools.
    pub fn tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }

    /// The same config with conversation history to seed.
    pub fn history(mut self, history: Vec<ChatMessage>) -> Self {
        self.history = history;
        self
    }
}

/// What the caller of a session asks of the adapter's task.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RealtimeInput {
    /// Caller audio in the session's input format, forwarded as it arrives.
    Audio(Bytes),
    /// A text message from the user (typed input, DTMF as text).
    Text(String),
    /// A tool's result for the call `call_id`.
    ToolResult {
        /// The provider's id of the call being answered.
        call_id: String,
        /// The result, usually JSON text.
        output: String,
    },
    /// The caller heard only this much of the reply now playing (barge-in): the model's
    /// record of what it said is cut there, where the provider supports it. The adapter
    /// caps it at the audio it received for that reply.
    Truncate {
        /// Audio of the current reply the caller actually heard.
        heard: Duration,
    },
    /// Stop the reply in progress (client-side barge-in, when the provider's own turn
    /// detection is off or too slow).
    Interrupt,
}

/// What a realtime session reports.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RealtimeEvent {
    /// Model audio in the session's output format, in order.
    Audio(Bytes),
    /// Transcript of the caller's speech (may come in pieces).
    InputTranscript {
        /// The text (a piece, or the whole utterance when `is_final`).
        text: String,
        /// Whether this completes the utterance's transcript.
        is_final: bool,
    },
    /// Transcript of the model's speech (may come in pieces).
    OutputTranscript {
        /// The text.
        text: String,
        /// Whether this completes the reply's transcript.
        is_final: bool,
    },
    /// The provider heard the caller start speaking.
    SpeechStarted,
    /// The model stopped its reply because the caller spoke over it: stop playback and
    /// drop queued audio now (send the carrier `clear`).
    Interrupted,
    /// The model finished its turn.
    TurnComplete,
    /// The model calls a tool; answer with [`RealtimeSender::send_tool_result`].
    ToolCall(ToolCall),
    /// The provider withdrew these tool calls (the caller interrupted them).
    ToolCallsCancelled(Vec<String>),
    /// Time from the end of the caller's speech to the model's first audio.
    Ttfb(Ttfb),
    /// Tokens or audio used.
    Usage(Usage),
    /// The connection was replaced (resumption, expiry) without ending the call; audio
    /// sent meanwhile was kept.
    Reconnected,
    /// A failure. A retryable one may be followed by `Reconnected`. Providers keep a
    /// session open after many errors (a refused request, a bad tool result), so the
    /// session ends only when [`RealtimeSession::recv`] returns `None`.
    Error(ProviderError),
}

/// The handle a caller holds: audio and requests in, events out. Dropping it closes
/// the session cleanly.
#[derive(Debug)]
pub struct RealtimeSession {
    sender: RealtimeSender,
    events: mpsc::Receiver<RealtimeEvent>,
}

/// The sending half of a [`RealtimeSession`]; clone it to feed the session from
/// several tasks.
#[derive(Debug, Clone)]
pub struct RealtimeSender {
    provider: &'static str,
    input: mpsc::Sender<RealtimeInput>,
}

/// The receiving half of a split [`RealtimeSession`].
#[derive(Debug)]
pub struct RealtimeEvents {
    events: mpsc::Receiver<RealtimeEvent>,
}

/// The adapter's side of a session.
#[derive(Debug)]
pub struct RealtimePeer {
    /// What the caller sends; `None` from `recv` once every sender is gone.
    pub input: mpsc::Receiver<RealtimeInput>,
    /// Where the adapter reports.
    pub events: mpsc::Sender<RealtimeEvent>,
}

impl RealtimePeer {
    /// The next input, or `None` once the caller is gone.
    pub async fn recv(&mut self) -> Option<RealtimeInput> {
        self.input.recv().await
    }

    /// Reports an event; `false` if the caller is gone.
    pub async fn send(&self, event: RealtimeEvent) -> bool {
        self.events.send(event).await.is_ok()
    }
}

impl RealtimeSession {
    /// A session handle and the adapter's peer, over channels of `capacity` messages
    /// each way (a 20 ms frame is one message).
    pub fn channel(provider: &'static str, capacity: usize) -> (Self, RealtimePeer) {
        let (input_tx, input_rx) = mpsc::channel(capacity.max(1));
        let (events_tx, events_rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                sender: RealtimeSender {
                    provider,
                    input: input_tx,
                },
                events: events_rx,
            },
            RealtimePeer {
                input: input_rx,
                events: events_tx,
            },
        )
    }

    /// The provider's name.
    pub fn provider(&self) -> &'static str {
        self.sender.provider
    }

    /// The sending half, for use beside [`recv`](Self::recv).
    pub fn sender(&self) -> &RealtimeSender {
        &self.sender
    }

    /// Splits the handle so one task can feed audio while another reads events.
    pub fn split(self) -> (RealtimeSender, RealtimeEvents) {
        (
            self.sender,
            RealtimeEvents {
                events: self.events,
            },
        )
    }

    /// The next event, or `None` when the session has ended.
    pub async fn recv(&mut self) -> Option<RealtimeEvent> {
        self.events.recv().await
    }
}

impl RealtimeEvents {
    /// The next event, or `None` when the session has ended.
    pub async fn recv(&mut self) -> Option<RealtimeEvent> {
        self.events.recv().await
    }
}

impl RealtimeSender {
    async fn send(&self, input: RealtimeInput) -> Result<(), ProviderError> {
        self.input
            .send(input)
            .await
            .map_err(|_| ProviderError::closed(self.provider))
    }

    /// Forwards caller audio; waits if the adapter is behind (the channel is bounded).
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.send(RealtimeInput::Audio(audio)).await
    }

    /// Forwards caller audio without waiting; a full channel is an error the caller
    /// counts, so a stalled provider never stalls the call.
    ///
    /// # Errors
    /// When the channel is full or the session has ended.
    pub fn try_send_audio(&self, audio: Bytes) -> Result<(), ProviderError> {
        self.input
            .try_send(RealtimeInput::Audio(audio))
            .map_err(|e| ProviderError::from_try_send(self.provider, &e, "realtime"))
    }

    /// Sends a user text message.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_text(&self, text: impl Into<String>) -> Result<(), ProviderError> {
        self.send(RealtimeInput::Text(text.into())).await
    }

    /// Answers a tool call.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn send_tool_result(
        &self,
        call_id: impl Into<String>,
        output: impl Into<String>,
    ) -> Result<(), ProviderError> {
        self.send(RealtimeInput::ToolResult {
            call_id: call_id.into(),
            output: output.into(),
        })
        .await
    }

    /// Tells the model how much of its current reply the caller heard.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn truncate(&self, heard: Duration) -> Result<(), ProviderError> {
        self.send(RealtimeInput::Truncate { heard }).await
    }

    /// Stops the reply in progress.
    ///
    /// # Errors
    /// When the session has ended.
    pub async fn interrupt(&self) -> Result<(), ProviderError> {
        self.send(RealtimeInput::Interrupt).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn inputs_arrive_in_order_and_dropping_both_halves_ends_the_input() {
        let (session, mut peer) = RealtimeSession::channel("test", 8);
        let (sender, mut events) = session.split();
        sender
            .send_audio(Bytes::from_static(b"x"))
            .await
            .expect("open");
        sender
            .truncate(Duration::from_millis(320))
            .await
            .expect("open");
        sender.send_tool_result("call_1", "{}").await.expect("open");
        assert_eq!(
            peer.recv().await,
            Some(RealtimeInput::Audio(Bytes::from_static(b"x")))
        );
        assert_eq!(
            peer.recv().await,
            Some(RealtimeInput::Truncate {
                heard: Duration::from_millis(320)
            })
        );
        assert!(matches!(
            peer.recv().await,
            Some(RealtimeInput::ToolResult { .. })
        ));
        assert!(peer.send(RealtimeEvent::Interrupted).await);
        assert_eq!(events.recv().await, Some(RealtimeEvent::Interrupted));
        drop(sender);
        assert_eq!(peer.recv().await, None);
    }
}
