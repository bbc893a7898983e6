//! The per-call worker task: owns the provider sessions and the history, speaks
//! replies, and reports back over one bounded channel.
//!
//! The call's own task ([`crate::Agent`]) decides *when* (turns, barge-in, timers);
//! the worker does the waiting (connecting, streaming from the brain, synthesis).
//! Commands arrive in order on one channel, so a barge-in's `Heard` always reaches the
//! history before the next turn's request.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::mpsc;
use voxline_audio::AudioFormat;
use voxline_core::{
    ErrorKind, LlmEvent, LlmStream, ProviderError, SttConfig, SttEvent, SttEvents, SttSender,
    TtsConfig,
};

use crate::brain::Brain;
use crate::config::{AgentConfig, Modes, Providers};
use crate::history::History;
use crate::speaker::{Speaker, SpeakerEvent};

/// Capacity of the command channel (call task -> worker).
pub(crate) const COMMANDS: usize = 64;
/// Capacity of the report channel (worker -> call task); audio chunks dominate.
pub(crate) const REPORTS: usize = 256;

/// What starts a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReplyKind {
    /// The brain answers the conversation.
    Answer,
    /// A fixed line (greeting, idle prompt, goodbye).
    Line(String),
}

/// What the call task asks of the worker.
#[derive(Debug)]
pub(crate) enum Command {
    /// The caller said this (voice or text): add it and answer.
    UserTurn(String),
    /// Say a fixed line.
    Say(String),
    /// Stop the reply being spoken (barge-in).
    Cancel,
    /// The last reply as the caller heard it, for the history.
    Heard(String),
    /// The modes changed.
    Modes(Modes),
}

/// What the worker reports.
#[derive(Debug)]
pub(crate) enum Report {
    /// The recogniser is connected: send audio here.
    SttReady(SttSender),
    /// The recogniser could not be connected (or ended for good).
    SttFailed(ProviderError),
    /// An event from the recogniser.
    Stt(SttEvent),
    /// A reply started; what follows until the next `ReplyStarted` belongs to it.
    ReplyStarted {
        /// Its number.
        id: u64,
        /// Spoken (audio follows) or written (text follows).
        spoken: bool,
    },
    /// The brain's first text of the current reply.
    FirstToken(Instant),
    /// Speech of the current reply (segments, audio, tool calls, usage).
    Speech(SpeakerEvent),
    /// Text of the current reply, when it is written rather than spoken.
    Text(String),
    /// The current reply ended.
    ReplyEnded {
        /// Its number.
        id: u64,
        /// `Some` when it failed (the fallback line follows as a new reply).
        error: Option<ProviderError>,
    },
    /// A provider failed outside a reply.
    Error(ProviderError),
}

impl From<SpeakerEvent> for Report {
    fn from(event: SpeakerEvent) -> Self {
        Self::Speech(event)
    }
}

/// How a reply attempt ended.
enum Outcome {
    Done,
    Cancelled,
    /// `retryable`: the stream broke before any text, after the adapter had
    /// connected (a failure to connect was already retried by the adapter).
    Failed {
        error: ProviderError,
        retryable: bool,
    },
}

/// How far a reply got.
#[derive(Debug, Default)]
struct Progress {
    /// The brain's stream was open.
    streaming: AtomicBool,
    /// Its first text arrived.
    spoke: AtomicBool,
}

pub(crate) struct Worker {
    config: Arc<AgentConfig>,
    providers: Providers,
    format: AudioFormat,
    modes: Modes,
    history: History,
    commands: mpsc::Receiver<Command>,
    reports: mpsc::Sender<Report>,
    stt: Option<SttEvents>,
    speaker: Option<Speaker>,
    fallback_audio: Option<Bytes>,
    next_reply: u64,
    deferred: VecDeque<Command>,
    fallback_tried: bool,
}

impl Worker {
    pub(crate) fn new(
        config: Arc<AgentConfig>,
        providers: Providers,
        format: AudioFormat,
        modes: Modes,
        commands: mpsc::Receiver<Command>,
        reports: mpsc::Sender<Report>,
    ) -> Self {
        let history = History::new(config.system_prompt.clone(), config.max_history);
        Self {
            config,
            providers,
            format,
            modes,
            history,
            commands,
            reports,
            stt: None,
            speaker: None,
            fallback_audio: None,
            next_reply: 0,
            deferred: VecDeque::new(),
            fallback_tried: false,
        }
    }

    /// Runs until the call task drops its command sender.
    pub(crate) async fn run(mut self) {
        self.connect().await;
        loop {
            let command = match self.deferred.pop_front() {
                Some(command) => command,
                None => tokio::select! {
                    command = self.commands.recv() => match command {
                        Some(command) => command,
                        None => break,
                    },
                    event = recv_stt(&mut self.stt) => {
                        self.forward_stt(event).await;
                        continue;
                    }
                },
            };
            match command {
                Command::UserTurn(text) => {
                    self.history.push_user(text);
                    self.reply(ReplyKind::Answer).await;
                }
                Command::Say(line) => self.reply(ReplyKind::Line(line)).await,
                Command::Heard(text) => self.heard(text),
                Command::Modes(modes) => self.set_modes(modes).await,
                Command::Cancel => {}
            }
            if self.deferred.is_empty() && !self.fallback_tried && self.speaker.is_some() {
                self.fallback_tried = true;
                if !self.prepare_fallback().await {
                    break;
                }
            }
        }
        if let Some(stt) = self.stt.take() {
            drop(stt);
        }
        tracing::debug!("agent worker finished");
    }

    async fn report(&self, report: Report) {
        // The call task gone means the call ended; `run` ends at the next command.
        let _ = self.reports.send(report).await;
    }

    /// Connects what the modes need, recogniser and synthesiser at once.
    async fn connect(&mut self) {
        let stt = async {
            match (&self.providers.stt, self.modes.voice_input) {
                (Some(stt), true) => {
                    let mut config = SttConfig::new(self.format);
                    if let Some(language) = &self.config.language {
                        config = config.language(language.clone());
                    }
                    Some(self.config.retry.run(|| stt.connect(config.clone())).await)
                }
                _ => None,
            }
        };
        let tts = async {
            match (&self.providers.tts, self.modes.voice_output) {
                (Some(tts), true) => Some(self.connect_tts(tts.as_ref()).await),
                _ => None,
            }
        };
        let (stt, tts) = tokio::join!(stt, tts);
        match stt {
            Some(Ok(session)) => {
                let (sender, events) = session.split();
                self.stt = Some(events);
                self.report(Report::SttReady(sender)).await;
            }
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot connect speech-to-text");
                self.report(Report::SttFailed(e)).await;
            }
            None => {}
        }
        match tts {
            Some(Ok(speaker)) => self.speaker = Some(speaker),
            Some(Err(e)) => {
                tracing::error!(error = %e, "cannot connect text-to-speech");
                self.report(Report::Error(e)).await;
            }
            None => {}
        }
    }

    async fn connect_tts(
        &self,
        tts: &dyn voxline_core::TextToSpeech,
    ) -> Result<Speaker, ProviderError> {
        let mut config = TtsConfig::new(self.format);
        if let Some(voice) = &self.config.voice {
            config = config.voice(voice.clone());
        }
        let session = self
            .config
            .retry
            .run(|| tts.connect(config.clone()))
            .await?;
        Ok(Speaker::new(session, self.config.split))
    }

    async fn set_modes(&mut self, modes: Modes) {
        let before = self.modes;
        self.modes = modes;
        if modes.voice_input
            && !before.voice_input
            && self.stt.is_none()
            && let Some(stt) = self.providers.stt.clone()
        {
            let config = SttConfig::new(self.format);
            match self.config.retry.run(|| stt.connect(config.clone())).await {
                Ok(session) => {
                    let (sender, events) = session.split();
                    self.stt = Some(events);
                    self.report(Report::SttReady(sender)).await;
                }
                Err(e) => self.report(Report::SttFailed(e)).await,
            }
        }
        if modes.voice_output
            && self.speaker.is_none()
            && let Some(tts) = self.providers.tts.clone()
        {
            match self.connect_tts(tts.as_ref()).await {
                Ok(speaker) => self.speaker = Some(speaker),
                Err(e) => self.report(Report::Error(e)).await,
            }
        }
    }

    fn heard(&mut self, text: String) {
        if !text.trim().is_empty() {
            self.history
                .push(voxline_core::ChatMessage::assistant(text));
        }
    }

    async fn forward_stt(&mut self, event: Option<SttEvent>) {
        match event {
            Some(event) => self.report(Report::Stt(event)).await,
            None => {
                self.stt = None;
                self.report(Report::SttFailed(ProviderError::closed(
                    self.providers.stt.as_ref().map_or("stt", |s| s.name()),
                )))
                .await;
            }
        }
    }

    /// Speaks (or writes) one reply, retrying a retryable failure that came before any
    /// word was out, and saying the fallback line when all else failed.
    async fn reply(&mut self, kind: ReplyKind) {
        let spoken = self.modes.voice_output && self.speaker.is_some();
        let mut attempt = 0;
        loop {
            let id = self.next_reply;
            self.next_reply += 1;
            self.report(Report::ReplyStarted { id, spoken }).await;
            let outcome = self.attempt(&kind, spoken).await;
            match outcome {
                Outcome::Done | Outcome::Cancelled => {
                    self.report(Report::ReplyEnded { id, error: None }).await;
                    return;
                }
                Outcome::Failed { error, retryable } => {
                    tracing::warn!(error = %error, attempt, "reply failed");
                    self.report(Report::ReplyEnded {
                        id,
                        error: Some(error.clone()),
                    })
                    .await;
                    let tts_name = self.providers.tts.as_ref().map(|t| t.name());
                    if spoken
                        && tts_name == Some(error.provider)
                        && matches!(error.kind, ErrorKind::Closed | ErrorKind::Connection)
                    {
                        // The synthesiser's session is gone: reconnect for what follows.
                        self.speaker = None;
                        if let Some(tts) = self.providers.tts.clone() {
                            self.speaker = self.connect_tts(tts.as_ref()).await.ok();
                        }
                    }
                    attempt += 1;
                    if retryable && error.is_retryable() && attempt < self.config.retry.attempts {
                        tokio::time::sleep(self.config.retry.delay(attempt - 1, &error)).await;
                        continue;
                    }
                    self.fallback().await;
                    return;
                }
            }
        }
    }

    /// One try at a reply, cancellable by a `Cancel` command.
    async fn attempt(&mut self, kind: &ReplyKind, spoken: bool) -> Outcome {
        let brain = self.providers.brain.clone();
        let messages = self.history.messages();
        let reports = self.reports.clone();
        let mut speaker = if spoken { self.speaker.take() } else { None };
        let progress = Arc::new(Progress::default());
        let result = {
            let run = run_reply(
                kind,
                brain.as_deref(),
                messages,
                speaker.as_mut(),
                &reports,
                Arc::clone(&progress),
            );
            tokio::pin!(run);
            loop {
                tokio::select! {
                    result = &mut run => break Some(result),
                    command = self.commands.recv() => match command {
                        Some(Command::Cancel) => break None,
                        Some(Command::Heard(text)) => self.heard(text),
                        Some(Command::Modes(modes)) => self.modes = modes,
                        // A new turn while speaking: the call task cancels first; keep
                        // it for after this reply either way.
                        Some(other) => {
                            if self.deferred.len() < COMMANDS {
                                self.deferred.push_back(other);
                            }
                        }
                        None => break None,
                    },
                    event = recv_stt(&mut self.stt) => self.forward_stt(event).await,
                }
            }
        };
        let outcome = match result {
            None => {
                if let Some(speaker) = speaker.as_mut() {
                    speaker.cancel().await;
                }
                Outcome::Cancelled
            }
            Some(Ok(text)) => {
                if !spoken {
                    // Written replies are read whole.
                    self.heard(text);
                }
                Outcome::Done
            }
            Some(Err(error)) => {
                if let Some(speaker) = speaker.as_mut() {
                    speaker.cancel().await;
                }
                Outcome::Failed {
                    error,
                    retryable: progress.streaming.load(Ordering::Relaxed)
                        && !progress.spoke.load(Ordering::Relaxed),
                }
            }
        };
        if speaker.is_some() {
            self.speaker = speaker;
        }
        outcome
    }

    /// Says the fallback line: from the audio kept ready, else synthesised now, else
    /// written.
    async fn fallback(&mut self) {
        let id = self.next_reply;
        self.next_reply += 1;
        let line = self.config.fallback_line.clone();
        if self.fallback_audio.is_none()
            && self.modes.voice_output
            && let Some(speaker) = self.speaker.as_mut()
        {
            self.fallback_audio = speaker.synthesize(&line).await.ok();
        }
        let audio = self
            .fallback_audio
            .clone()
            .filter(|_| self.modes.voice_output);
        self.report(Report::ReplyStarted {
            id,
            spoken: audio.is_some(),
        })
        .await;
        match audio {
            Some(audio) => {
                for event in [
                    SpeakerEvent::Segment {
                        index: 0,
                        text: line,
                    },
                    SpeakerEvent::Audio { index: 0, audio },
                    SpeakerEvent::SegmentDone { index: 0 },
                ] {
                    self.report(Report::Speech(event)).await;
                }
            }
            None => {
                self.report(Report::Text(line.clone())).await;
                self.heard(line);
            }
        }
        self.report(Report::ReplyEnded { id, error: None }).await;
    }

    /// Synthesises the fallback line while nothing else is being said, so it plays even
    /// when synthesis fails later. A command arriving meanwhile wins: the synthesis is
    /// cancelled and tried again once the worker is idle. Returns `false` when the call
    /// task is gone.
    async fn prepare_fallback(&mut self) -> bool {
        if self.fallback_audio.is_some() {
            return true;
        }
        let line = self.config.fallback_line.clone();
        let Some(speaker) = self.speaker.as_mut() else {
            return true;
        };
        let interrupted = {
            let synth = speaker.synthesize(&line);
            tokio::pin!(synth);
            loop {
                tokio::select! {
                    result = &mut synth => {
                        match result {
                            Ok(audio) => self.fallback_audio = Some(audio),
                            Err(e) => tracing::warn!(error = %e, "cannot synthesise the fallback line yet"),
                        }
                        break None;
                    }
                    command = self.commands.recv() => break Some(command),
                    event = recv_stt(&mut self.stt) => match event {
                        Some(event) => {
                            let _ = self.reports.send(Report::Stt(event)).await;
                        }
                        None => {
                            self.stt = None;
                            let provider = self.providers.stt.as_ref().map_or("stt", |s| s.name());
                            let _ = self.reports.send(Report::SttFailed(ProviderError::closed(provider))).await;
                        }
                    },
                }
            }
        };
        let Some(command) = interrupted else {
            return true;
        };
        if let Some(speaker) = self.speaker.as_mut() {
            speaker.cancel().await;
        }
        self.fallback_tried = false;
        match command {
            Some(command) => {
                self.deferred.push_back(command);
                true
            }
            None => false,
        }
    }
}

/// The reply itself: the brain's stream (or a fixed line) into speech or text. Returns
/// what was written.
async fn run_reply(
    kind: &ReplyKind,
    brain: Option<&dyn Brain>,
    messages: Vec<voxline_core::ChatMessage>,
    speaker: Option<&mut Speaker>,
    reports: &mpsc::Sender<Report>,
    progress: Arc<Progress>,
) -> Result<String, ProviderError> {
    let stream = match kind {
        ReplyKind::Line(line) => fixed(line),
        ReplyKind::Answer => {
            let brain = brain.ok_or_else(|| {
                ProviderError::new(
                    "agent",
                    ErrorKind::BadRequest,
                    "no language model configured",
                )
            })?;
            let stream = brain.reply(messages).await?;
            // The adapter retried the request itself; from here a failure is the
            // stream's, which only this layer can retry.
            progress.streaming.store(true, Ordering::Relaxed);
            stream
        }
    };
    let stream = first_token_marked(stream, reports.clone(), progress);
    match speaker {
        Some(speaker) => speaker.speak(stream, reports).await.map(|s| s.text),
        None => {
            let mut stream = stream;
            let mut text = String::new();
            while let Some(event) = stream.recv().await {
                match event {
                    LlmEvent::TextDelta(delta) => text.push_str(&delta),
                    LlmEvent::ToolCall(call) => {
                        let _ = reports
                            .send(Report::Speech(SpeakerEvent::ToolCall(call)))
                            .await;
                    }
                    LlmEvent::Usage(usage) => {
                        let _ = reports
                            .send(Report::Speech(SpeakerEvent::Usage(usage)))
                            .await;
                    }
                    LlmEvent::Error(e) => return Err(e),
                    _ => {}
                }
            }
            let _ = reports.send(Report::Text(text.clone())).await;
            Ok(text)
        }
    }
}

/// A stream that carries one fixed line.
fn fixed(line: &str) -> LlmStream {
    let (stream, tx) = LlmStream::channel(2);
    let _ = tx.try_send(LlmEvent::TextDelta(line.to_owned()));
    let _ = tx.try_send(LlmEvent::Finished(voxline_core::FinishReason::Stop));
    stream
}

/// Passes `stream` through, reporting when its first text arrives and noting that the
/// reply has begun (so a failure after it is not retried: the caller heard words).
fn first_token_marked(
    mut stream: LlmStream,
    reports: mpsc::Sender<Report>,
    progress: Arc<Progress>,
) -> LlmStream {
    // Dropping the returned stream (barge-in) ends the relay at once, which drops the
    // original and so cancels the request.
    let (out, tx) = LlmStream::channel(32);
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                event = stream.recv() => event,
                () = tx.closed() => break,
            };
            let Some(event) = event else { break };
            if matches!(event, LlmEvent::TextDelta(_))
                && !progress.spoke.swap(true, Ordering::Relaxed)
            {
                let _ = reports.send(Report::FirstToken(Instant::now())).await;
            }
            if tx.send(event).await.is_err() {
                break;
            }
        }
    });
    out
}

async fn recv_stt(stt: &mut Option<SttEvents>) -> Option<SttEvent> {
    match stt {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}
