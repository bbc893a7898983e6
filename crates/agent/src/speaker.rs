//! Speaking one reply: the brain's streamed text into text-to-speech, segment by
//! segment, and the audio back in order.
//!
//! Each segment (a [`SentenceSplitter`] piece) is one TTS request, started as soon as
//! the piece is complete, so the first audio comes while the model is still writing.
//! Providers may generate several requests at once (ElevenLabs' contexts run in
//! parallel); audio of a later segment is held until the segments before it are done,
//! so the caller always hears the reply in order. [`Speaker::cancel`] (barge-in)
//! cancels every pending request; `TtsSession` guarantees none of their audio is
//! delivered afterwards.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::mpsc;
use voxline_core::{
    LlmEvent, LlmStream, ProviderError, RequestId, ToolCall, Ttfb, TtsEvent, TtsSession, Usage,
};

use crate::text::{SentenceSplitter, SplitConfig};

/// What speaking a reply produces, in the order the caller must get it.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakerEvent {
    /// A segment's text, before any of its audio.
    Segment {
        /// The segment's number within the reply, from 0.
        index: usize,
        /// Its text.
        text: String,
    },
    /// Audio of segment `index`, in the session's format.
    Audio {
        /// The segment.
        index: usize,
        /// The audio.
        audio: Bytes,
    },
    /// Segment `index` has no more audio (queue its mark now).
    SegmentDone {
        /// The segment.
        index: usize,
    },
    /// The model called a tool.
    ToolCall(ToolCall),
    /// The model's time to first token, from its request.
    ModelTtfb(Ttfb),
    /// The speech's time to first audio, from the first segment's request.
    SpeechTtfb(Ttfb),
    /// Tokens or characters used.
    Usage(Usage),
}

/// How a reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoken {
    /// Everything the model wrote (what the caller heard is decided by playout).
    pub text: String,
    /// Segments spoken.
    pub segments: usize,
}

#[derive(Debug)]
struct Pending {
    request: RequestId,
    index: usize,
    /// Audio that came before the segments ahead of it were done.
    held: Vec<Bytes>,
    done: bool,
}

/// Speaks replies through one TTS session.
#[derive(Debug)]
pub struct Speaker {
    tts: TtsSession,
    split: SplitConfig,
    pending: VecDeque<Pending>,
}

impl Speaker {
    /// A speaker over `tts`, cutting replies with `split`.
    pub fn new(tts: TtsSession, split: SplitConfig) -> Self {
        Self {
            tts,
            split,
            pending: VecDeque::new(),
        }
    }

    /// Speaks the reply `stream` carries, sending events to `events` as they become
    /// due. Resolves when every segment's audio has been sent. Cancel by dropping the
    /// future and calling [`cancel`](Self::cancel).
    ///
    /// # Errors
    /// The model's or the speech provider's failure; segments already sent stand, and
    /// [`cancel`](Self::cancel) drops the rest.
    pub async fn speak<E: From<SpeakerEvent> + Send>(
        &mut self,
        mut stream: LlmStream,
        events: &mpsc::Sender<E>,
    ) -> Result<Spoken, ProviderError> {
        let mut splitter = SentenceSplitter::new(self.split);
        let mut pieces = Vec::new();
        let mut written = String::new();
        let mut segments = 0;
        let mut model_done = false;
        loop {
            if model_done && self.pending.is_empty() {
                return Ok(Spoken {
                    text: written,
                    segments,
                });
            }
            tokio::select! {
                event = stream.recv(), if !model_done => {
                    match event {
                        Some(LlmEvent::TextDelta(delta)) => {
                            written.push_str(&delta);
                            splitter.push(&delta, &mut pieces);
                        }
                        Some(LlmEvent::ToolCall(call)) => send(events, SpeakerEvent::ToolCall(call)).await,
                        Some(LlmEvent::Ttfb(ttfb)) => send(events, SpeakerEvent::ModelTtfb(ttfb)).await,
                        Some(LlmEvent::Usage(usage)) => send(events, SpeakerEvent::Usage(usage)).await,
                        Some(LlmEvent::Error(e)) => return Err(e),
                        Some(LlmEvent::Finished(_)) | None => {
                            model_done = true;
                            pieces.extend(splitter.finish());
                        }
                        Some(_) => {}
                    }
                    for piece in pieces.drain(..) {
                        self.start_segment(segments, piece, events).await?;
                        segments += 1;
                    }
                }
                event = self.tts.recv(), if !self.pending.is_empty() => {
                    let Some(event) = event else {
                        return Err(ProviderError::closed(self.tts.provider()));
                    };
                    self.on_tts(event, events).await?;
                }
            }
        }
    }

    /// Synthesises `text` whole, outside any reply (a fallback line kept ready for when
    /// the model fails). Call it only while no reply is being spoken.
    ///
    /// # Errors
    /// The speech provider's failure, or its session ending.
    /// If the future is dropped before it resolves, [`cancel`](Self::cancel) cancels
    /// the request.
    pub async fn synthesize(&mut self, text: &str) -> Result<Bytes, ProviderError> {
        let request = self.tts.new_request();
        // Pending first: if this future is dropped mid-way, `cancel` still finds it.
        self.pending.push_back(Pending {
            request,
            index: 0,
            held: Vec::new(),
            done: false,
        });
        let result = self.collect(request, text).await;
        self.pending.retain(|p| p.request != request);
        result
    }

    /// Sends `text` as `request` and gathers its audio until it is done.
    async fn collect(&mut self, request: RequestId, text: &str) -> Result<Bytes, ProviderError> {
        self.tts.send_text(request, text).await?;
        self.tts.finish(request).await?;
        let mut audio = Vec::new();
        loop {
            match self.tts.recv().await {
                Some(TtsEvent::Audio {
                    request: r,
                    audio: a,
                }) if r == request => {
                    audio.extend_from_slice(&a);
                }
                Some(TtsEvent::Done { request: r }) if r == request => return Ok(audio.into()),
                Some(TtsEvent::Error { error, .. }) => return Err(error),
                Some(_) => {}
                None => return Err(ProviderError::closed(self.tts.provider())),
            }
        }
    }

    /// The speech provider's name.
    pub fn provider(&self) -> &'static str {
        self.tts.provider()
    }

    /// Barge-in: cancels every segment not yet fully delivered.
    pub async fn cancel(&mut self) {
        while let Some(pending) = self.pending.pop_front() {
            if let Err(e) = self.tts.cancel(pending.request).await {
                tracing::debug!(error = %e, "speech session gone while cancelling");
            }
        }
    }

    async fn start_segment<E: From<SpeakerEvent> + Send>(
        &mut self,
        index: usize,
        text: String,
        events: &mpsc::Sender<E>,
    ) -> Result<(), ProviderError> {
        let request = self.tts.new_request();
        // Pending first: if this future is dropped mid-way, `cancel` still finds it.
        self.pending.push_back(Pending {
            request,
            index,
            held: Vec::new(),
            done: false,
        });
        send(
            events,
            SpeakerEvent::Segment {
                index,
                text: text.clone(),
            },
        )
        .await;
        self.tts.send_text(request, text).await?;
        self.tts.finish(request).await?;
        Ok(())
    }

    async fn on_tts<E: From<SpeakerEvent> + Send>(
        &mut self,
        event: TtsEvent,
        events: &mpsc::Sender<E>,
    ) -> Result<(), ProviderError> {
        let Some(position) = event
            .request()
            .and_then(|r| self.pending.iter().position(|p| p.request == r))
        else {
            if let TtsEvent::Usage(usage) = event {
                send(events, SpeakerEvent::Usage(usage)).await;
            }
            return Ok(());
        };
        match event {
            TtsEvent::Audio { audio, .. } if position == 0 => {
                let index = self.pending[0].index;
                send(events, SpeakerEvent::Audio { index, audio }).await;
            }
            TtsEvent::Audio { audio, .. } => self.pending[position].held.push(audio),
            TtsEvent::Done { .. } => {
                self.pending[position].done = true;
                self.release(events).await;
            }
            TtsEvent::Ttfb { ttfb, .. } if position == 0 => {
                send(events, SpeakerEvent::SpeechTtfb(ttfb)).await;
            }
            TtsEvent::Error { error, .. } => return Err(error),
            _ => {}
        }
        Ok(())
    }

    /// Sends the head segments that are done, and the held audio of the next.
    async fn release<E: From<SpeakerEvent> + Send>(&mut self, events: &mpsc::Sender<E>) {
        while let Some(head) = self.pending.front_mut() {
            let index = head.index;
            for audio in std::mem::take(&mut head.held) {
                send(events, SpeakerEvent::Audio { index, audio }).await;
            }
            if !head.done {
                break;
            }
            self.pending.pop_front();
            send(events, SpeakerEvent::SegmentDone { index }).await;
        }
    }
}

async fn send<E: From<SpeakerEvent> + Send>(events: &mpsc::Sender<E>, event: SpeakerEvent) {
    // The receiver gone means the call ended; the caller drops this future soon.
    let _ = events.send(E::from(event)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxline_core::{FinishReason, TtsInput, TtsPeer};

    /// A speech provider that answers each finished request with its text as "audio",
    /// in two chunks. With `reverse` > 1 it holds requests until that many are
    /// finished and answers them last first (as a provider generating in parallel may);
    /// `usize::MAX` never answers.
    async fn fake_tts(mut peer: TtsPeer, reverse: usize) {
        let mut texts: std::collections::HashMap<RequestId, String> = Default::default();
        let mut held = Vec::new();
        while let Some(input) = peer.recv().await {
            match input {
                TtsInput::Text { request, text } => {
                    texts.entry(request).or_default().push_str(&text)
                }
                TtsInput::Finish { request } => {
                    held.push(request);
                    if held.len() < reverse {
                        continue;
                    }
                    let mut order = std::mem::take(&mut held);
                    if reverse > 1 {
                        order.reverse();
                    }
                    for request in order {
                        let text = texts.remove(&request).unwrap_or_default();
                        let (a, b) = text.split_at(text.len() / 2);
                        for part in [a, b] {
                            let audio = Bytes::copy_from_slice(part.as_bytes());
                            peer.send(TtsEvent::Audio { request, audio }).await;
                        }
                        peer.send(TtsEvent::Done { request }).await;
                    }
                }
                TtsInput::Cancel { request } => {
                    held.retain(|r| *r != request);
                    peer.send(TtsEvent::Done { request }).await;
                }
                _ => {}
            }
        }
    }

    fn reply(deltas: &[&str]) -> LlmStream {
        let (stream, tx) = LlmStream::channel(64);
        let deltas: Vec<String> = deltas.iter().map(|d| (*d).to_owned()).collect();
        tokio::spawn(async move {
            for d in deltas {
                let _ = tx.send(LlmEvent::TextDelta(d)).await;
            }
            let _ = tx.send(LlmEvent::Finished(FinishReason::Stop)).await;
        });
        stream
    }

    async fn speak_all(reverse: usize) -> (Spoken, Vec<SpeakerEvent>) {
        let (tts, peer) = TtsSession::channel("fake", 32);
        tokio::spawn(fake_tts(peer, reverse));
        let mut speaker = Speaker::new(tts, SplitConfig::default());
        let (tx, mut rx) = mpsc::channel(256);
        let spoken = speaker
            .speak(
                reply(&[
                    "Sure, I can help with that, ",
                    "one moment. It is ",
                    "done.",
                ]),
                &tx,
            )
            .await
            .expect("spoken");
        drop(tx);
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        (spoken, events)
    }

    /// The audio as the caller would hear it, with a `|` at each segment end.
    fn heard(events: &[SpeakerEvent]) -> String {
        let mut out = String::new();
        for e in events {
            match e {
                SpeakerEvent::Audio { audio, .. } => out.push_str(&String::from_utf8_lossy(audio)),
                SpeakerEvent::SegmentDone { .. } => out.push('|'),
                _ => {}
            }
        }
        out
    }

    #[tokio::test]
    async fn segments_are_spoken_in_order_with_a_done_after_each() {
        let (spoken, events) = speak_all(1).await;
        assert_eq!(spoken.segments, 3);
        assert_eq!(
            spoken.text,
            "Sure, I can help with that, one moment. It is done."
        );
        assert_eq!(
            heard(&events),
            "Sure, I can help with that,|one moment.|It is done.|"
        );
        let segments: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                SpeakerEvent::Segment { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            segments,
            ["Sure, I can help with that,", "one moment.", "It is done."]
        );
    }

    #[tokio::test]
    async fn audio_generated_out_of_order_is_delivered_in_order() {
        let (_, events) = speak_all(3).await;
        assert_eq!(
            heard(&events),
            "Sure, I can help with that,|one moment.|It is done.|"
        );
        // Each segment's audio comes after its Segment event and before its done.
        let mut current = None;
        for e in &events {
            match e {
                SpeakerEvent::Segment { .. } => {}
                SpeakerEvent::Audio { index, .. } => {
                    assert!(current.is_none_or(|c| c <= *index), "{events:?}");
                    current = Some(*index);
                }
                _ => {}
            }
        }
    }

    #[tokio::test]
    async fn cancel_stops_every_pending_segment() {
        let (tts, peer) = TtsSession::channel("fake", 32);
        // A provider that never finishes: nothing comes back until cancelled.
        tokio::spawn(fake_tts(peer, usize::MAX));
        let mut speaker = Speaker::new(tts, SplitConfig::default());
        let (tx, mut rx) = mpsc::channel(256);
        let stream = reply(&["First sentence here. ", "Second one. ", "Third."]);
        let speaking = speaker.speak(stream, &tx);
        // The reply cannot finish; stop waiting once its segments were started.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), speaking).await;
        assert_eq!(speaker.pending.len(), 3);
        speaker.cancel().await;
        assert!(speaker.pending.is_empty());
        drop(tx);
        let mut audio = 0;
        while let Some(e) = rx.recv().await {
            if matches!(e, SpeakerEvent::Audio { .. }) {
                audio += 1;
            }
        }
        assert_eq!(audio, 0);
    }
}
