//! One call's agent, on the call's own task: listens (VAD, recogniser, turn-taking),
//! decides when to answer and when to stop (barge-in), and plays what the worker
//! produces.
//!
//! ```text
//! call task (Agent, never blocks)                  worker task (provider I/O)
//!   on_audio -> TurnDetector -> TurnTaker            STT session --Stt(..)--------+
//!            \-> SttSender (try_send, bounded)                                     |
//!   end of turn --UserTurn--------------------------> Brain -> Speaker -> TTS      |
//!   barge-in: clear now, --Cancel, Heard(text)-----> drop LLM stream, cancel TTS  |
//!   poll_wake / on_wake <--ReplyStarted / Speech(audio, segment done) / Text -----+
//!   play(audio), mark per segment; marks and the playout clock -> what was heard
//! ```
//!
//! Everything the worker reports for a reply carries on until the next
//! `ReplyStarted`, so after a barge-in the call task simply drops reports until the
//! next reply begins: no audio of a cancelled reply can reach the caller.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Sleep;
use voxline_audio::AudioFormat;
use voxline_core::{Role, SttEvent, SttSender};
use voxline_vad::{AllOf, Decision, Evidence, InterruptionRule, TurnDetector, TurnEvent};

use crate::config::{AgentConfig, END_CALL_TOOL, ModeChange, Modes, Providers, render_template};
use crate::history::{Reply, SegmentId};
use crate::output::{AgentEvent, CallOutput, TurnMarks, UsageTotals};
use crate::speaker::SpeakerEvent;
use crate::turn::{EndOfTurn, TurnInput, TurnTaker};
use crate::worker::{COMMANDS, Command, REPORTS, Report, Worker};

/// Why an agent cannot take a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The call's modes need providers that are not configured.
    #[error("cannot serve the call: no {} configured", .0.join(", no "))]
    MissingProviders(Vec<&'static str>),
    /// The voice activity detector could not be built for the call's audio.
    #[error("cannot build the turn detector: {0}")]
    Vad(String),
}

/// What an agent needs that is shared by every call: settings and providers.
#[derive(Debug, Clone)]
pub struct AgentSetup {
    /// Settings.
    pub config: Arc<AgentConfig>,
    /// Providers.
    pub providers: Providers,
}

/// What the agent knows of a call when it starts.
#[derive(Debug, Clone)]
pub struct CallStart {
    /// The call's audio format (what the caller sends and hears).
    pub format: AudioFormat,
    /// The call's custom parameters (a lead's name, the modes, ...).
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// A reply as the call task sees it.
#[derive(Debug)]
struct ActiveReply {
    id: u64,
    spoken: bool,
    reply: Reply,
    /// Segment ids by the speaker's segment index.
    segments: Vec<SegmentId>,
    /// Audio queued so far.
    queued: Duration,
    /// Audio of this reply that had played when the playout last ran dry.
    played_before: Duration,
    /// The worker finished it.
    ended: bool,
    /// The turn it answers, for latency marks.
    marks: Option<TurnMarks>,
    /// Some audio of it was queued.
    audible: bool,
    /// A fixed line rather than the brain's answer.
    hangup_after: bool,
}

/// One call's agent. Feed it the call's events; poll it beside the socket.
pub struct Agent {
    config: Arc<AgentConfig>,
    format: AudioFormat,
    modes: Modes,
    commands: mpsc::Sender<Command>,
    reports: mpsc::Receiver<Report>,
    /// Reports taken by `poll_wake`, acted on in `on_wake`.
    ready: VecDeque<Report>,
    detector: Option<TurnDetector>,
    turns: TurnTaker,
    barge_rule: AllOf,
    samples: Vec<i16>,
    stt: SttState,
    reply: Option<ActiveReply>,
    /// Reports belong to a cancelled reply until the next `ReplyStarted`.
    discarding: bool,
    /// The caller is speaking over the bot; the decision is pending.
    barge: Option<String>,
    /// The caller's current speech was judged a backchannel: its turn answers nothing.
    backchannel: bool,
    /// Marks of the turn being answered.
    pending_marks: Option<TurnMarks>,
    stt_final_at: Option<Instant>,
    idle_since: Option<Instant>,
    idle_prompts: u32,
    dtmf: String,
    dtmf_at: Option<Instant>,
    hangup_pending: bool,
    hung_up: bool,
    usage: UsageTotals,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
    /// The worker's channel closed.
    worker_gone: bool,
    /// The modes in force are still to be acknowledged to the client.
    ack_modes: bool,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("format", &self.format)
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum SttState {
    /// Not wanted (voice input off) or not available.
    Off,
    /// Connecting: audio waits here (bounded).
    Connecting {
        queued: VecDeque<Bytes>,
        bytes: usize,
    },
    Ready(SttSender),
}

impl Agent {
    /// Starts the agent for a call: spawns its worker (needs a tokio runtime), which
    /// connects the providers, and says the greeting if there is one.
    ///
    /// # Errors
    /// When the call's modes need a provider that is not configured, or the VAD cannot
    /// be built for the call's audio: the host should log it and close the call.
    pub fn start(setup: &AgentSetup, call: CallStart) -> Result<Self, AgentError> {
        let config = Arc::clone(&setup.config);
        let modes = config.modes.from_params(&call.params);
        let missing = setup.providers.missing_for(modes);
        if !missing.is_empty() {
            return Err(AgentError::MissingProviders(missing));
        }
        let detector = Self::detector(&config, call.format)?;
        let (command_tx, command_rx) = mpsc::channel(COMMANDS);
        let (report_tx, report_rx) = mpsc::channel(REPORTS);
        let worker = Worker::new(
            Arc::clone(&config),
            setup.providers.clone(),
            call.format,
            modes,
            command_rx,
            report_tx,
        );
        tokio::spawn(tracing::Instrument::in_current_span(worker.run()));
        let barge_rule = AllOf::new()
            .with(config.interruption)
            .with(config.transcript_rule.clone());
        let mut agent = Self {
            turns: TurnTaker::new(config.final_wait),
            format: call.format,
            modes,
            commands: command_tx,
            reports: report_rx,
            ready: VecDeque::new(),
            detector: modes.voice_input.then_some(detector).flatten(),
            barge_rule,
            samples: Vec::new(),
            stt: if modes.voice_input && setup.providers.stt.is_some() {
                SttState::Connecting {
                    queued: VecDeque::new(),
                    bytes: 0,
                }
            } else {
                SttState::Off
            },
            reply: None,
            discarding: false,
            barge: None,
            backchannel: false,
            pending_marks: None,
            stt_final_at: None,
            idle_since: Some(Instant::now()),
            idle_prompts: 0,
            dtmf: String::new(),
            dtmf_at: None,
            hangup_pending: false,
            hung_up: false,
            usage: UsageTotals::default(),
            timer: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            timer_at: None,
            worker_gone: false,
            ack_modes: true,
            config,
        };
        if let Some(greeting) = &agent.config.greeting {
            let line = render_template(greeting, &call.params);
            if !line.is_empty() {
                agent.idle_since = None;
                agent.command(Command::Say(line));
            }
        }
        Ok(agent)
    }

    fn detector(
        config: &AgentConfig,
        format: AudioFormat,
    ) -> Result<Option<TurnDetector>, AgentError> {
        let vad = config
            .vad
            .build(format.sample_rate)
            .map_err(|e| AgentError::Vad(e.to_string()))?;
        TurnDetector::new(vad, format.sample_rate, config.turn)
            .map(Some)
            .map_err(|e| AgentError::Vad(e.to_string()))
    }

    /// The modes in force.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// What the call has used so far.
    pub fn usage(&self) -> UsageTotals {
        self.usage
    }

    fn command(&mut self, command: Command) {
        if let Err(e) = self.commands.try_send(command) {
            // 64 commands queued means the worker is stuck; the call cannot be served
            // properly, but the call task must not block.
            tracing::error!(error = %e, "agent worker not keeping up; command dropped");
        }
    }

    // ---- caller input ----------------------------------------------------------

    /// Caller audio in the call's format.
    pub fn on_audio(&mut self, payload: &Bytes, out: &mut dyn CallOutput) {
        if !self.modes.voice_input || self.hung_up {
            return;
        }
        self.forward_to_stt(payload);
        let Some(detector) = self.detector.as_mut() else {
            return;
        };
        self.samples.clear();
        self.format.encoding.decode(payload, &mut self.samples);
        let events = detector.push(&self.samples);
        let now = Instant::now();
        for event in events {
            match event {
                TurnEvent::SpeechStarted { .. } => {
                    self.idle_since = None;
                    self.backchannel = false;
                    if self.bot_speaking(out) {
                        self.barge = Some(String::new());
                    }
                    self.turn_input(TurnInput::SpeechStarted, now, out);
                }
                TurnEvent::SpeechStopped { .. } => {
                    if let SttState::Ready(stt) = &self.stt
                        && let Err(e) = stt.try_finalize()
                    {
                        tracing::debug!(error = %e, "cannot ask for the final transcript");
                    }
                    self.turn_input(TurnInput::SpeechStopped, now, out);
                    if self.barge.take().is_some() {
                        // Speech over the bot ended without becoming an interruption.
                        tracing::debug!("caller speech over the bot did not interrupt");
                    }
                }
            }
        }
        if self.barge.is_some() {
            self.judge_barge_in(out);
        }
        // The recogniser may have ended the utterance a little before the pause was
        // long enough: end the turn as soon as it is.
        self.end_on_pause(now, out);
        if let Some(detector) = self.detector.as_mut()
            && let Some(e) = detector.take_error()
        {
            tracing::warn!(error = %e, "voice activity detector failed on a frame");
        }
    }

    fn forward_to_stt(&mut self, payload: &Bytes) {
        match &mut self.stt {
            SttState::Off => {}
            SttState::Connecting { queued, bytes } => {
                let limit = self.format.bytes_in(self.config.connect_buffer);
                queued.push_back(payload.clone());
                *bytes += payload.len();
                while *bytes > limit {
                    match queued.pop_front() {
                        Some(old) => *bytes -= old.len(),
                        None => break,
                    }
                }
            }
            SttState::Ready(stt) => {
                if let Err(e) = stt.try_send_audio(payload.clone()) {
                    tracing::warn!(error = %e, "speech-to-text not keeping up; audio dropped");
                }
            }
        }
    }

    /// A text message from the client (text input).
    pub fn on_text(&mut self, text: &str, out: &mut dyn CallOutput) {
        let text = text.trim();
        if text.is_empty() || self.hung_up {
            return;
        }
        if !self.modes.text_input {
            tracing::info!("text message ignored: text input is off");
            return;
        }
        out.report(AgentEvent::Transcript {
            role: Role::User,
            text: text.to_owned(),
            is_final: true,
        });
        self.user_turn(text.to_owned(), TurnMarks::new(Instant::now()), out);
    }

    /// A key press: digits are collected and go to the brain as text after a pause
    /// (or at `#`).
    pub fn on_dtmf(&mut self, digit: char, out: &mut dyn CallOutput) {
        self.idle_since = None;
        if digit == '#' {
            self.flush_dtmf(out);
            return;
        }
        self.dtmf.push(digit);
        self.dtmf_at = Some(Instant::now() + self.config.dtmf_wait);
    }

    fn flush_dtmf(&mut self, out: &mut dyn CallOutput) {
        self.dtmf_at = None;
        if self.dtmf.is_empty() {
            return;
        }
        let digits = std::mem::take(&mut self.dtmf);
        let text = format!("[The caller pressed the keys: {digits}]");
        out.report(AgentEvent::Transcript {
            role: Role::User,
            text: text.clone(),
            is_final: true,
        });
        self.user_turn(text, TurnMarks::new(Instant::now()), out);
    }

    /// Changes some of the modes.
    pub fn change_modes(&mut self, change: ModeChange, out: &mut dyn CallOutput) {
        let modes = self.modes.apply(change);
        if modes == self.modes {
            out.report(AgentEvent::Modes(modes));
            return;
        }
        if !modes.voice_output && self.bot_speaking(out) {
            // Switching to text while speaking: stop the voice now.
            self.barge_in("mode_change", out);
        }
        if modes.voice_input && !self.modes.voice_input {
            if self.detector.is_none() {
                match Self::detector(&self.config, self.format) {
                    Ok(detector) => self.detector = detector,
                    Err(e) => tracing::warn!(error = %e, "cannot start listening"),
                }
            }
            if matches!(self.stt, SttState::Off) {
                self.stt = SttState::Connecting {
                    queued: VecDeque::new(),
                    bytes: 0,
                };
            }
        }
        if !modes.voice_input {
            self.turns.reset();
            self.barge = None;
        }
        tracing::info!(?modes, "modes changed");
        self.modes = modes;
        self.command(Command::Modes(modes));
        out.report(AgentEvent::Modes(modes));
    }

    /// The carrier echoed a mark: the audio before it has played.
    pub fn on_mark(&mut self, name: &str) {
        let Some((id, index)) = parse_mark(name) else {
            return;
        };
        if let Some(reply) = self.reply.as_mut().filter(|r| r.id == id)
            && let Some(segment) = reply.segments.get(index)
        {
            reply.reply.confirm(*segment);
        }
    }

    /// The playout started sending audio after being idle.
    pub fn on_playout_started(&mut self, out: &mut dyn CallOutput) {
        let now = Instant::now();
        if let Some(reply) = self.reply.as_mut()
            && let Some(mut marks) = reply.marks.take()
        {
            marks.first_frame = Some(now);
            out.report(AgentEvent::Turn(marks));
        }
    }

    /// Everything queued has played.
    pub fn on_playout_finished(&mut self, out: &mut dyn CallOutput) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        reply.played_before = reply.queued;
        if reply.ended {
            self.finish_reply(out);
        }
    }

    /// The call is ending: reports the usage totals.
    pub fn on_stop(&mut self, out: &mut dyn CallOutput) {
        if let Some(reply) = self.reply.take()
            && reply.spoken
        {
            let heard = reply.reply.heard_text(reply.played_before + out.played());
            self.command(Command::Heard(heard));
        }
        out.report(AgentEvent::Usage(self.usage));
        tracing::info!(
            stt_seconds = self.usage.stt_seconds,
            tts_characters = self.usage.tts_characters,
            llm_prompt_tokens = self.usage.llm_prompt_tokens,
            llm_completion_tokens = self.usage.llm_completion_tokens,
            "call usage"
        );
    }

    // ---- turns and barge-in -----------------------------------------------------

    fn bot_speaking(&self, out: &dyn CallOutput) -> bool {
        self.reply.as_ref().is_some_and(|r| r.spoken) || out.is_playing()
    }

    fn turn_input(&mut self, input: TurnInput, now: Instant, out: &mut dyn CallOutput) {
        let speech_end = matches!(input, TurnInput::SpeechStopped).then_some(now);
        if let Some(end) = self.turns.on_input(input, now) {
            self.end_of_turn(end, out);
        } else if speech_end.is_some() {
            self.stt_final_at = None;
        }
    }

    /// The recogniser heard the utterance end and the caller has been silent since:
    /// ends the turn now rather than at the VAD's stop, dated at the caller's last
    /// voiced frame. The detector starts afresh, so speech that follows is a new turn
    /// (and a barge-in if the bot is already answering).
    fn end_on_pause(&mut self, now: Instant, out: &mut dyn CallOutput) {
        if !self.turns.recogniser_ended() {
            return;
        }
        let Some(detector) = self.detector.as_mut() else {
            return;
        };
        let activity = detector.activity();
        if !activity.speaking || activity.silence < self.config.recogniser_pause {
            return;
        }
        detector.reset();
        let stopped = now.checked_sub(activity.silence).unwrap_or(now);
        self.turn_input(TurnInput::SpeechStopped, stopped, out);
    }

    fn end_of_turn(&mut self, end: EndOfTurn, out: &mut dyn CallOutput) {
        if std::mem::take(&mut self.backchannel)
            || self.config.transcript_rule.is_backchannel(&end.text) && self.bot_speaking(out)
        {
            tracing::debug!(text = %end.text, "backchannel: the bot goes on");
            return;
        }
        let now = Instant::now();
        let mut marks = TurnMarks::new(now);
        marks.speech_end = end.speech_ended;
        marks.stt_final = self.stt_final_at.take();
        out.report(AgentEvent::Transcript {
            role: Role::User,
            text: end.text.clone(),
            is_final: true,
        });
        if out.has_text_channel() && self.modes.text_output {
            out.text(Role::User, &end.text, true);
        }
        tracing::info!(text = %end.text, reason = ?end.reason, "caller turn");
        self.user_turn(end.text, marks, out);
    }

    fn user_turn(&mut self, text: String, marks: TurnMarks, out: &mut dyn CallOutput) {
        self.barge = None;
        if self.reply.is_some() || out.is_playing() {
            self.barge_in("caller_turn", out);
        }
        self.idle_since = None;
        self.idle_prompts = 0;
        self.pending_marks = Some(marks);
        self.command(Command::UserTurn(text));
    }

    fn judge_barge_in(&mut self, out: &mut dyn CallOutput) {
        let Some(detector) = self.detector.as_ref() else {
            return;
        };
        if !self.bot_speaking(out) {
            self.barge = None;
            return;
        }
        let transcript = self.barge.clone().unwrap_or_default();
        let activity = detector.activity();
        let evidence = Evidence::new(&activity, Some(&transcript));
        match self.barge_rule.decide(&evidence) {
            Decision::Interrupt => {
                self.barge = None;
                self.barge_in("barge_in", out);
            }
            Decision::Ignore => {
                self.barge = None;
                self.backchannel = true;
            }
            Decision::Wait => {}
        }
    }

    /// Stops the bot now: the carrier drops queued audio, the worker cancels the reply,
    /// and the history keeps what the caller heard.
    fn barge_in(&mut self, reason: &str, out: &mut dyn CallOutput) {
        let played = out.played();
        out.clear(reason);
        if let Some(reply) = self.reply.take() {
            let heard = if reply.spoken {
                reply.reply.heard_text(reply.played_before + played)
            } else {
                reply.reply.full_text()
            };
            tracing::info!(heard = %heard, reason, "bot stopped");
            if !reply.ended {
                self.command(Command::Cancel);
                self.discarding = true;
            }
            if reply.spoken {
                self.command(Command::Heard(heard.clone()));
            }
            out.report(AgentEvent::BargeIn { heard });
        }
        self.hangup_pending = false;
    }

    fn finish_reply(&mut self, out: &mut dyn CallOutput) {
        let Some(reply) = self.reply.take() else {
            return;
        };
        if reply.spoken {
            let heard = reply.reply.full_text();
            if out.has_text_channel() && self.modes.text_output {
                out.text(Role::Assistant, &heard, true);
            }
            out.report(AgentEvent::Transcript {
                role: Role::Assistant,
                text: heard.clone(),
                is_final: true,
            });
            self.command(Command::Heard(heard));
        }
        self.idle_since = Some(Instant::now());
        if self.hangup_pending || reply.hangup_after {
            self.hang_up(out);
        }
    }

    fn hang_up(&mut self, out: &mut dyn CallOutput) {
        if !self.hung_up {
            tracing::info!("agent hangs up");
            self.hung_up = true;
            out.hangup();
        }
    }

    // ---- the worker's reports -------------------------------------------------------

    /// Ready when the worker reported or a timer is due; keep polling until `Pending`.
    pub fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut woke = self.ack_modes;
        while self.ready.len() < REPORTS {
            match self.reports.poll_recv(cx) {
                Poll::Ready(Some(report)) => {
                    self.ready.push_back(report);
                    woke = true;
                }
                Poll::Ready(None) => {
                    if !self.worker_gone {
                        self.worker_gone = true;
                        woke = true;
                    }
                    break;
                }
                Poll::Pending => break,
            }
        }
        let deadline = self.next_deadline();
        if deadline != self.timer_at {
            self.timer_at = deadline;
            if let Some(at) = deadline {
                self.timer.as_mut().reset(at.into());
            }
        }
        if self.timer_at.is_some() && self.timer.as_mut().poll(cx).is_ready() {
            self.timer_at = None;
            woke = true;
        }
        if woke { Poll::Ready(()) } else { Poll::Pending }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let idle = self.idle_deadline();
        [self.turns.deadline(), idle, self.dtmf_at]
            .into_iter()
            .flatten()
            .min()
    }

    fn idle_deadline(&self) -> Option<Instant> {
        if self.hung_up || self.reply.is_some() || !self.modes.voice_input {
            return None;
        }
        let since = self.idle_since?;
        let prompts = self.config.idle_prompt.is_some() as u32 * self.config.idle_prompts;
        (self.idle_prompts <= prompts).then(|| since + self.config.idle_after)
    }

    /// Acts on what `poll_wake` found.
    pub fn on_wake(&mut self, out: &mut dyn CallOutput) {
        if std::mem::take(&mut self.ack_modes) {
            out.report(AgentEvent::Modes(self.modes));
        }
        while let Some(report) = self.ready.pop_front() {
            self.on_report(report, out);
        }
        let now = Instant::now();
        if self.turns.deadline().is_some_and(|d| d <= now)
            && let Some(end) = self.turns.on_timeout(now)
        {
            self.end_of_turn(end, out);
        }
        if self.dtmf_at.is_some_and(|d| d <= now) {
            self.flush_dtmf(out);
        }
        if self.idle_deadline().is_some_and(|d| d <= now) {
            if out.is_playing() {
                // Something is still playing: the silence starts when it ends.
                self.idle_since = Some(now);
            } else {
                self.on_idle(out);
            }
        }
        if self.worker_gone && !self.hung_up {
            tracing::error!("agent worker ended; closing the call");
            self.hang_up(out);
        }
    }

    fn on_idle(&mut self, out: &mut dyn CallOutput) {
        self.idle_since = None;
        let max = self.config.idle_prompts;
        match &self.config.idle_prompt {
            Some(prompt) if self.idle_prompts < max => {
                self.idle_prompts += 1;
                tracing::info!(prompt = self.idle_prompts, "caller silent: idle prompt");
                self.command(Command::Say(prompt.clone()));
            }
            _ => {
                tracing::info!("caller silent after the idle prompts: ending the call");
                match self.config.goodbye.clone() {
                    Some(goodbye) if self.modes.voice_output => {
                        self.hangup_pending = true;
                        self.command(Command::Say(goodbye));
                    }
                    _ => self.hang_up(out),
                }
            }
        }
    }

    fn on_report(&mut self, report: Report, out: &mut dyn CallOutput) {
        match report {
            Report::SttReady(sender) => {
                if let SttState::Connecting { queued, .. } = &mut self.stt {
                    for audio in queued.drain(..) {
                        if sender.try_send_audio(audio).is_err() {
                            break;
                        }
                    }
                }
                tracing::debug!("speech-to-text connected");
                self.stt = SttState::Ready(sender);
            }
            Report::SttFailed(error) => {
                tracing::error!(error = %error, "speech-to-text unavailable; the caller's voice cannot be heard");
                self.stt = SttState::Off;
                out.report(AgentEvent::ProviderError {
                    error,
                    recovered: false,
                });
            }
            Report::Stt(event) => self.on_stt(event, out),
            Report::ReplyStarted { id, spoken } => {
                self.discarding = false;
                let marks = self.pending_marks.take();
                let hangup_after = self.hangup_pending;
                self.reply = Some(ActiveReply {
                    id,
                    spoken,
                    reply: Reply::new(),
                    segments: Vec::new(),
                    queued: Duration::ZERO,
                    played_before: Duration::ZERO,
                    ended: false,
                    marks,
                    audible: false,
                    hangup_after,
                });
            }
            _ if self.discarding => {}
            Report::FirstToken(at) => {
                if let Some(marks) = self.reply.as_mut().and_then(|r| r.marks.as_mut()) {
                    marks.llm_first_token = Some(at);
                }
            }
            Report::Speech(event) => self.on_speech(event, out),
            Report::Text(text) => {
                if out.has_text_channel() && self.modes.text_output {
                    out.text(Role::Assistant, &text, true);
                }
                out.report(AgentEvent::Transcript {
                    role: Role::Assistant,
                    text,
                    is_final: true,
                });
                if let Some(reply) = self.reply.as_mut()
                    && let Some(mut marks) = reply.marks.take()
                {
                    marks.first_frame = Some(Instant::now());
                    out.report(AgentEvent::Turn(marks));
                }
            }
            Report::ReplyEnded { id, error } => {
                if let Some(error) = error {
                    tracing::warn!(error = %error, "reply failed");
                    out.report(AgentEvent::ProviderError {
                        error,
                        recovered: true,
                    });
                }
                let Some(reply) = self.reply.as_mut().filter(|r| r.id == id) else {
                    return;
                };
                reply.ended = true;
                if !reply.audible || !out.is_playing() {
                    self.finish_reply(out);
                }
            }
            Report::Error(error) => {
                tracing::warn!(error = %error, "provider error");
                out.report(AgentEvent::ProviderError {
                    error,
                    recovered: false,
                });
            }
        }
    }

    fn on_speech(&mut self, event: SpeakerEvent, out: &mut dyn CallOutput) {
        let Some(reply) = self.reply.as_mut() else {
            return;
        };
        match event {
            SpeakerEvent::Segment { index, text } => {
                let id = reply.reply.push_segment(text);
                if reply.segments.len() == index {
                    reply.segments.push(id);
                }
            }
            SpeakerEvent::Audio { index, audio } => {
                if !self.modes.voice_output {
                    return;
                }
                if let Some(marks) = reply.marks.as_mut()
                    && marks.tts_first_audio.is_none()
                {
                    marks.tts_first_audio = Some(Instant::now());
                }
                let duration = self.format.duration_of(audio.len());
                if let Some(segment) = reply.segments.get(index) {
                    reply.reply.add_audio(*segment, duration);
                }
                reply.queued += duration;
                reply.audible = true;
                out.play(&audio);
            }
            SpeakerEvent::SegmentDone { index } => {
                if self.modes.voice_output {
                    out.mark(mark_name(reply.id, index));
                }
            }
            SpeakerEvent::ToolCall(call) if call.name == END_CALL_TOOL => {
                tracing::info!(arguments = %call.arguments, "the model ends the call");
                self.hangup_pending = true;
                reply.hangup_after = true;
            }
            SpeakerEvent::ToolCall(call) => {
                tracing::warn!(tool = %call.name, "the model called a tool the agent does not have");
            }
            SpeakerEvent::ModelTtfb(ttfb) => {
                if let Some(marks) = reply.marks.as_mut() {
                    marks.llm_ttfb.get_or_insert(ttfb.latency);
                }
                out.report(AgentEvent::Ttfb {
                    provider: ttfb.provider,
                    latency: ttfb.latency,
                });
            }
            SpeakerEvent::SpeechTtfb(ttfb) => {
                if let Some(marks) = reply.marks.as_mut() {
                    marks.tts_ttfb.get_or_insert(ttfb.latency);
                }
                out.report(AgentEvent::Ttfb {
                    provider: ttfb.provider,
                    latency: ttfb.latency,
                });
            }
            SpeakerEvent::Usage(usage) => self.usage.add(&usage),
        }
    }

    fn on_stt(&mut self, event: SttEvent, out: &mut dyn CallOutput) {
        let now = Instant::now();
        match event {
            SttEvent::Transcript(t) => {
                if t.text.trim().is_empty() {
                    return;
                }
                if let Some(barge) = self.barge.as_mut() {
                    barge.clone_from(&t.text);
                }
                if t.is_final {
                    self.stt_final_at = Some(now);
                }
                out.report(AgentEvent::Transcript {
                    role: Role::User,
                    text: t.text.clone(),
                    is_final: t.is_final,
                });
                if !t.is_final && out.has_text_channel() && self.modes.text_output {
                    out.text(Role::User, &t.text, false);
                }
                let input = TurnInput::Transcript {
                    text: t.text,
                    is_final: t.is_final,
                    end_of_utterance: t.end_of_utterance,
                };
                if self.barge.is_some() {
                    self.judge_barge_in(out);
                }
                self.turn_input(input, now, out);
                self.end_on_pause(now, out);
            }
            SttEvent::UtteranceEnd { .. } => {
                self.turn_input(TurnInput::UtteranceEnd, now, out);
                self.end_on_pause(now, out);
            }
            SttEvent::SpeechStarted { .. } => {}
            SttEvent::Ttfb(ttfb) => out.report(AgentEvent::Ttfb {
                provider: ttfb.provider,
                latency: ttfb.latency,
            }),
            SttEvent::Usage(usage) => self.usage.add(&usage),
            SttEvent::Reconnected => tracing::info!("speech-to-text reconnected"),
            SttEvent::Error(error) => {
                tracing::warn!(error = %error, "speech-to-text error");
                out.report(AgentEvent::ProviderError {
                    error,
                    recovered: false,
                });
            }
            _ => {}
        }
    }
}

/// The mark queued after segment `index` of reply `id`.
fn mark_name(id: u64, index: usize) -> String {
    format!("vx-{id}-{index}")
}

fn parse_mark(name: &str) -> Option<(u64, usize)> {
    let rest = name.strip_prefix("vx-")?;
    let (id, index) = rest.split_once('-')?;
    Some((id.parse().ok()?, index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_round_trip() {
        assert_eq!(parse_mark(&mark_name(7, 3)), Some((7, 3)));
        assert_eq!(parse_mark("echo-1"), None);
        assert_eq!(parse_mark("vx-a-1"), None);
    }
}
