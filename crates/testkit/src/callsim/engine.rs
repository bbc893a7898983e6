//! The call engine shared by [`call`](super::call) and
//! [`run_scenario`](super::run_scenario): one task, one socket, one monotonic clock.
//!
//! The loop sends caller frame `n` at `t0 + n * frame` (never "sleep a frame after each
//! send", so scheduling jitter does not accumulate), plays bot audio into the carrier's
//! playout buffer on the same clock, echoes marks when their audio has played, and
//! evaluates the scenario's steps after every event.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use voxline_audio::g711::mulaw;
use voxline_audio::{AudioFormat, Encoding};
use voxline_vad::{EnergyVadConfig, TurnConfig, TurnDetector, TurnEvent, VadKind, WebRtcMode};

use crate::callsim::connect::{self, Socket};
use crate::callsim::dialect::Dialect;
use crate::callsim::error::CallsimError;
use crate::callsim::ids::IdGen;
use crate::callsim::inbound::{BotAction, Finding, Inbound};
use crate::callsim::options::{CallOptions, TurnVad, samples_in};
use crate::callsim::playout::Playout;
use crate::callsim::report::{
    CallEnd, CallReport, ClearRecord, FrameCounts, MarkOutcome, MarkRecord, ModesRecord,
    PlaybackGap, TextRecord, TurnLatency, Violation, ViolationKind,
};
use crate::callsim::scenario::{Step, StepOutcome, StepReport, is_dtmf_digit, is_text_role};
use crate::callsim::wire::{self, Wire};

/// WebSocket buffers for a single call.
const CALL_BUFFER: usize = 8 * 1024;

/// The most unplayed bot audio the carrier-side buffer holds.
const MAX_QUEUED: Duration = Duration::from_secs(300);

/// A step with its audio loaded and converted to the line rate.
#[derive(Debug)]
enum Action {
    Play { samples: Vec<i16>, blocking: bool },
    Other(Step),
}

/// Runs `steps` as one call; returns the call's report and one report per step.
pub(crate) async fn run(
    options: CallOptions,
    steps: Vec<Step>,
    stop_on_failure: bool,
) -> Result<(CallReport, Vec<StepReport>), CallsimError> {
    let target = connect::prepare(&options.url, options.dialect, options.sample_rate)?;
    let format = options
        .dialect
        .line_format(options.encoding, target.sample_rate)?;
    let rate = format.sample_rate;
    wire::check_params(options.dialect, &options.params)?;

    // Load and convert all audio before dialling.
    let mut actions = Vec::with_capacity(steps.len() + 1);
    let mut descriptions = Vec::with_capacity(steps.len() + 1);
    if let Some(audio) = &options.audio {
        actions.push(Action::Play {
            samples: audio.at_rate(rate)?,
            blocking: true,
        });
        descriptions.push((
            "play",
            format!(
                "play the call's {} ms of audio",
                audio.duration().as_millis()
            ),
        ));
    }
    for step in steps {
        descriptions.push((step.name(), step.describe()));
        actions.push(match step {
            Step::Play { source, blocking } => Action::Play {
                samples: source.load()?.at_rate(rate)?,
                blocking,
            },
            Step::Dtmf { digit, .. } if !is_dtmf_digit(digit) => {
                return Err(CallsimError::InvalidOptions {
                    field: "dtmf",
                    reason: format!("{digit:?} is not one of 0-9 * # A-D"),
                });
            }
            Step::WaitForText {
                role: Some(role), ..
            } if !is_text_role(&role) => {
                return Err(CallsimError::InvalidOptions {
                    field: "wait_for_text",
                    reason: format!("role {role:?} is not \"user\" or \"bot\""),
                });
            }
            other => Action::Other(other),
        });
    }
    // Build the turn detector now, so a bad configuration fails before the call.
    let detector = turn_detector(&options, rate)?;

    let (mut ws, connect_time) =
        connect::connect(&target, options.connect_timeout, CALL_BUFFER).await?;
    tracing::debug!(url = %target.url, ?connect_time, dialect = %options.dialect, "connected");

    let mut ids = IdGen::new();
    let wire = Wire::new(options.dialect, format, options.params.clone(), &mut ids);
    let stream_id = wire.ids().stream_id.clone();
    let inbound = Inbound::new(options.dialect, format, stream_id);
    let mut call = Call::new(
        options,
        format,
        wire,
        inbound,
        actions,
        descriptions,
        stop_on_failure,
    );
    call.url = target.url.clone();
    call.connect_ms = connect_time.as_secs_f64() * 1000.0;

    let opening = call.wire.opening();
    for frame in opening {
        call.frames.other_sent += 1;
        if let Err(e) = ws.feed(Message::text(frame)).await {
            return Err(CallsimError::Open {
                url: target.url,
                source: Box::new(e),
            });
        }
    }
    if let Err(e) = ws.flush().await {
        return Err(CallsimError::Open {
            url: target.url,
            source: Box::new(e),
        });
    }
    call.t0 = Instant::now();
    call.run(&mut ws).await;
    Ok(call.finish(detector))
}

fn turn_detector(options: &CallOptions, rate: u32) -> Result<TurnDetector, CallsimError> {
    let kind = match options.turn_vad {
        TurnVad::WebRtc => VadKind::WebRtc(WebRtcMode::Aggressive),
        TurnVad::Energy => VadKind::Energy(EnergyVadConfig::default()),
    };
    let config = TurnConfig {
        stop_secs: options.turn_stop.as_secs_f32(),
        ..TurnConfig::default()
    };
    Ok(TurnDetector::new(kind.build(rate)?, rate, config)?)
}

#[derive(Debug)]
struct PendingMark {
    due: u64,
    index: usize,
    payload: Option<Value>,
}

/// The state of one running step.
#[derive(Debug, Clone, Copy)]
struct Running {
    started: Instant,
    start_pos: u64,
    /// For blocking plays and silences: the caller-queue count to reach.
    until_consumed: u64,
}

struct Call {
    options: CallOptions,
    dialect: Dialect,
    format: AudioFormat,
    rate: u32,
    url: String,
    connect_ms: f64,
    frame: Duration,
    frame_samples: usize,
    wire: Wire,
    inbound: Inbound,
    playout: Playout,
    t0: Instant,
    next_frame: u64,
    caller: VecDeque<i16>,
    queued_total: u64,
    consumed_total: u64,
    sent: Vec<i16>,
    /// Every bot audio payload, decoded, in arrival order.
    received: Vec<i16>,
    frame_buf: Vec<i16>,
    encode_buf: Vec<u8>,
    b64_buf: String,
    marks: Vec<MarkRecord>,
    /// Marks already matched by a `wait_for_mark` step.
    claimed: Vec<bool>,
    pending: VecDeque<PendingMark>,
    clears: Vec<ClearRecord>,
    texts: Vec<TextRecord>,
    /// Transcripts already matched by a `wait_for_text` step.
    claimed_texts: Vec<bool>,
    modes: Vec<ModesRecord>,
    cleared_samples: u64,
    violations: Vec<Violation>,
    warnings: Vec<Violation>,
    frames: FrameCounts,
    actions: Vec<Action>,
    steps: Vec<StepReport>,
    current: usize,
    running: Option<Running>,
    stop_on_failure: bool,
    hangup_at: Option<Instant>,
    overflowed: bool,
    end: Option<CallEnd>,
    end_pos: u64,
}

impl Call {
    fn new(
        options: CallOptions,
        format: AudioFormat,
        wire: Wire,
        inbound: Inbound,
        actions: Vec<Action>,
        descriptions: Vec<(&'static str, String)>,
        stop_on_failure: bool,
    ) -> Self {
        let dialect = options.dialect;
        let rate = format.sample_rate;
        let frame = dialect.frame();
        let frame_samples = samples_in(frame, rate);
        let steps = descriptions
            .into_iter()
            .enumerate()
            .map(|(i, (step, description))| StepReport {
                index: i + 1,
                step,
                description,
                outcome: StepOutcome::Skipped,
                started_ms: None,
                ended_ms: None,
                detail: String::new(),
            })
            .collect();
        Self {
            dialect,
            format,
            rate,
            url: options.url.clone(),
            connect_ms: 0.0,
            frame,
            frame_samples,
            wire,
            inbound,
            playout: Playout::new(),
            t0: Instant::now(),
            next_frame: 0,
            caller: VecDeque::new(),
            queued_total: 0,
            consumed_total: 0,
            sent: Vec::new(),
            received: Vec::new(),
            frame_buf: Vec::with_capacity(frame_samples),
            encode_buf: Vec::with_capacity(frame_samples * 2),
            b64_buf: String::new(),
            marks: Vec::new(),
            claimed: Vec::new(),
            pending: VecDeque::new(),
            clears: Vec::new(),
            texts: Vec::new(),
            claimed_texts: Vec::new(),
            modes: Vec::new(),
            cleared_samples: 0,
            violations: Vec::new(),
            warnings: Vec::new(),
            frames: FrameCounts::default(),
            actions,
            steps,
            current: 0,
            running: None,
            stop_on_failure,
            hangup_at: None,
            overflowed: false,
            end: None,
            end_pos: 0,
            options,
        }
    }

    /// Timeline position (samples) of an instant.
    fn pos(&self, t: Instant) -> u64 {
        (t.saturating_duration_since(self.t0).as_nanos() * u128::from(self.rate) / 1_000_000_000)
            as u64
    }

    /// The first instant at which `pos(instant) >= pos`.
    fn instant_of(&self, pos: u64) -> Instant {
        let rate = u128::from(self.rate.max(1));
        let nanos = (u128::from(pos) * 1_000_000_000).div_ceil(rate);
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        self.t0
            .checked_add(offset)
            .unwrap_or_else(|| self.t0 + Duration::from_secs(365 * 86_400))
    }

    fn ms(&self, pos: u64) -> f64 {
        pos as f64 * 1000.0 / f64::from(self.rate)
    }

    fn ms_at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64() * 1000.0
    }

    fn frame_due(&self, n: u64) -> Instant {
        self.t0 + self.frame * u32::try_from(n).unwrap_or(u32::MAX)
    }

    async fn run(&mut self, ws: &mut Socket) {
        loop {
            let now = Instant::now();
            // Steps first, so audio queued by a step that starts now goes out in the
            // frame due now; then again below, to see what the frames and marks did.
            if let Err(e) = self.run_steps(ws, now).await {
                self.fail_connection(now, &e);
            }
            if let Err(e) = self.send_due_frames(ws, now).await {
                self.fail_connection(now, &e);
            }
            let pos = self.pos(now);
            self.playout.advance(pos);
            if self.end.is_none()
                && let Err(e) = self.echo_due_marks(ws, pos).await
            {
                self.fail_connection(now, &e);
            }
            if let Err(e) = self.run_steps(ws, now).await {
                self.fail_connection(now, &e);
            }
            if self.end.is_some() {
                self.end_pos = pos;
                self.after_server_end(ws).await;
                return;
            }
            if self.hangup_at.is_some_and(|h| now >= h) {
                self.end_pos = pos;
                self.hang_up(ws, now).await;
                return;
            }
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                message = ws.next() => {
                    let now = Instant::now();
                    match message {
                        Some(Ok(message)) => {
                            if let Err(e) = self.on_message(ws, message, now).await {
                                self.fail_connection(now, &e);
                            }
                        }
                        Some(Err(e)) => self.fail_connection(now, &e),
                        None => {
                            self.end = Some(CallEnd::Server {
                                at_ms: self.ms_at(now),
                                code: None,
                                reason: "connection closed without a close frame".into(),
                            });
                        }
                    }
                }
                () = tokio::time::sleep_until(deadline.into()) => {}
            }
        }
    }

    fn fail_connection(&mut self, now: Instant, error: &dyn std::fmt::Display) {
        if self.end.is_none() {
            tracing::debug!(%error, "call failed");
            self.end = Some(CallEnd::Error {
                at_ms: self.ms_at(now),
                error: error.to_string(),
            });
        }
    }

    fn next_deadline(&self) -> Instant {
        let mut deadline = self.frame_due(self.next_frame);
        if let Some(mark) = self.pending.front() {
            deadline = deadline.min(self.instant_of(mark.due));
        }
        if let Some(h) = self.hangup_at {
            deadline = deadline.min(h);
        }
        if let (Some(run), Some(Action::Other(step))) =
            (self.running, self.actions.get(self.current))
        {
            let limit = match step {
                Step::Wait { duration } | Step::ExpectNoAudio { duration } => Some(*duration),
                Step::WaitForAudio { within }
                | Step::WaitForMark { within, .. }
                | Step::ExpectClear { within }
                | Step::ExpectHangup { within }
                | Step::WaitForText { within, .. }
                | Step::WaitUntilQuiet { within, .. } => Some(*within),
                _ => None,
            };
            if let Some(limit) = limit {
                deadline = deadline.min(run.started + limit);
            }
            if let Step::WaitUntilQuiet { quiet, .. } = step {
                let quiet_pos = self.playout.play_end() + samples_in(*quiet, self.rate) as u64;
                deadline = deadline.min(self.instant_of(quiet_pos));
            }
        }
        deadline
    }

    /// Sends every caller frame that is due at `now`.
    async fn send_due_frames(&mut self, ws: &mut Socket, now: Instant) -> Result<(), String> {
        if self.end.is_some() {
            return Ok(());
        }
        let mut fed = false;
        while self.frame_due(self.next_frame) <= now {
            let due = self.frame_due(self.next_frame);
            if now.saturating_duration_since(due) > self.frame {
                self.frames.media_late += 1;
            }
            let message = self.next_media_frame();
            connect::timed(ws.feed(message)).await?;
            fed = true;
            self.frames.media_sent += 1;
            self.next_frame += 1;
        }
        if fed {
            connect::timed(ws.flush()).await?;
        }
        Ok(())
    }

    /// Takes one frame of caller audio (silence when the queue is short) and wraps it
    /// as the dialect does.
    fn next_media_frame(&mut self) -> Message {
        self.frame_buf.clear();
        let take = self.frame_samples.min(self.caller.len());
        self.frame_buf.extend(self.caller.drain(..take));
        self.consumed_total += take as u64;
        self.frame_buf.resize(self.frame_samples, 0);
        self.encode_buf.clear();
        match self.format.encoding {
            Encoding::Mulaw => {
                mulaw::encode(&self.frame_buf, &mut self.encode_buf);
                self.sent
                    .extend(self.encode_buf.iter().map(|&c| mulaw::decode_sample(c)));
            }
            _ => {
                for s in &self.frame_buf {
                    self.encode_buf.extend_from_slice(&s.to_le_bytes());
                }
                self.sent.extend_from_slice(&self.frame_buf);
            }
        }
        if self.dialect == Dialect::Vonage {
            Message::binary(self.encode_buf.clone())
        } else {
            self.b64_buf.clear();
            base64::engine::general_purpose::STANDARD
                .encode_string(&self.encode_buf, &mut self.b64_buf);
            Message::text(self.wire.media(&self.b64_buf))
        }
    }

    async fn send_text(&mut self, ws: &mut Socket, text: String) -> Result<(), String> {
        self.frames.other_sent += 1;
        connect::timed(ws.send(Message::text(text))).await
    }

    async fn echo_due_marks(&mut self, ws: &mut Socket, pos: u64) -> Result<(), String> {
        while self.pending.front().is_some_and(|m| m.due <= pos) {
            let Some(mark) = self.pending.pop_front() else {
                break;
            };
            let name = self.marks[mark.index].name.clone();
            let echo = self.wire.mark_echo(&name, mark.payload.as_ref());
            self.marks[mark.index].echoed_at_ms = Some(self.ms(pos));
            self.marks[mark.index].outcome = MarkOutcome::Played;
            self.send_text(ws, echo).await?;
        }
        Ok(())
    }

    async fn on_message(
        &mut self,
        ws: &mut Socket,
        message: Message,
        now: Instant,
    ) -> Result<(), String> {
        let parsed = match &message {
            Message::Text(text) => {
                self.frames.received += 1;
                let parsed = self.inbound.text(text.as_str());
                self.record(&parsed.violations, &parsed.warnings, now, || {
                    excerpt_text(text.as_str())
                });
                parsed
            }
            Message::Binary(data) => {
                self.frames.received += 1;
                let parsed = self.inbound.binary(data);
                self.record(&parsed.violations, &parsed.warnings, now, || {
                    excerpt_binary(data)
                });
                parsed
            }
            Message::Close(frame) => {
                self.end = Some(CallEnd::Server {
                    at_ms: self.ms_at(now),
                    code: frame.as_ref().map(|f| u16::from(f.code)),
                    reason: frame
                        .as_ref()
                        .map(|f| f.reason.as_str().to_owned())
                        .unwrap_or_default(),
                });
                return Ok(());
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => return Ok(()),
        };
        let pos = self.pos(now);
        match parsed.action {
            None => {}
            Some(BotAction::Audio(samples)) => {
                self.frames.media_received += 1;
                self.received.extend_from_slice(&samples);
                let queued = self.playout.play_end().saturating_sub(pos);
                let limit = samples_in(MAX_QUEUED, self.rate) as u64;
                if queued + samples.len() as u64 > limit {
                    if !self.overflowed {
                        self.overflowed = true;
                        self.warnings.push(Violation {
                            at_ms: self.ms(pos),
                            kind: ViolationKind::BufferOverflow,
                            message: format!(
                                "over {} s of bot audio queued; the excess is dropped (reported once)",
                                MAX_QUEUED.as_secs()
                            ),
                            excerpt: String::new(),
                        });
                    }
                } else {
                    self.playout.enqueue(pos, samples);
                }
            }
            Some(BotAction::Mark { name, payload }) => {
                self.frames.marks_received += 1;
                self.playout.advance(pos);
                let due = self.playout.play_end().max(pos);
                let index = self.marks.len();
                self.claimed.push(false);
                self.marks.push(MarkRecord {
                    name,
                    sent_at_ms: self.ms(pos),
                    due_at_ms: self.ms(due),
                    echoed_at_ms: None,
                    outcome: MarkOutcome::Pending,
                });
                self.pending.push_back(PendingMark {
                    due,
                    index,
                    payload,
                });
                self.echo_due_marks(ws, pos).await?;
            }
            Some(BotAction::Clear) => {
                self.frames.clears_received += 1;
                let dropped = self.playout.clear(pos);
                self.cleared_samples += dropped;
                let echo = self.dialect.echoes_marks_on_clear();
                let mut record = ClearRecord {
                    at_ms: self.ms(pos),
                    dropped_ms: self.ms(dropped),
                    marks_echoed: 0,
                    marks_dropped: 0,
                };
                while let Some(mark) = self.pending.pop_front() {
                    if echo {
                        let name = self.marks[mark.index].name.clone();
                        let text = self.wire.mark_echo(&name, mark.payload.as_ref());
                        self.marks[mark.index].echoed_at_ms = Some(self.ms(pos));
                        self.marks[mark.index].outcome = MarkOutcome::EchoedOnClear;
                        record.marks_echoed += 1;
                        self.send_text(ws, text).await?;
                    } else {
                        self.marks[mark.index].outcome = MarkOutcome::DroppedOnClear;
                        record.marks_dropped += 1;
                    }
                }
                self.clears.push(record);
                if let Some(ack) = self.wire.clear_ack() {
                    self.send_text(ws, ack).await?;
                }
            }
            Some(BotAction::Text {
                role,
                text,
                is_final,
            }) => {
                self.texts.push(TextRecord {
                    at_ms: self.ms_at(now),
                    role,
                    text,
                    is_final,
                });
                self.claimed_texts.push(false);
            }
            Some(BotAction::Modes([voice_input, text_input, voice_output, text_output])) => {
                self.modes.push(ModesRecord {
                    at_ms: self.ms_at(now),
                    voice_input,
                    text_input,
                    voice_output,
                    text_output,
                });
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        violations: &[Finding],
        warnings: &[Finding],
        now: Instant,
        excerpt: impl Fn() -> String,
    ) {
        let at_ms = self.ms_at(now);
        for (list, findings) in [
            (&mut self.violations, violations),
            (&mut self.warnings, warnings),
        ] {
            for f in findings {
                tracing::debug!(kind = ?f.kind, message = %f.message, "protocol finding");
                list.push(Violation {
                    at_ms,
                    kind: f.kind,
                    message: f.message.clone(),
                    excerpt: excerpt(),
                });
            }
        }
    }

    /// Starts and checks steps until one is still waiting.
    async fn run_steps(&mut self, ws: &mut Socket, now: Instant) -> Result<(), String> {
        loop {
            if self.current >= self.actions.len() {
                if self.hangup_at.is_none() {
                    self.hangup_at = Some(now + self.options.tail);
                }
                return Ok(());
            }
            let pos = self.pos(now);
            let run = match self.running {
                Some(run) => run,
                None => {
                    if self.end.is_some() {
                        // The call is over: this step and the rest cannot run.
                        let detail = self.ended_detail();
                        self.finish_step(now, StepOutcome::Failed, detail);
                        continue;
                    }
                    let run = self.start_step(ws, now, pos).await?;
                    self.running = Some(run);
                    run
                }
            };
            let verdict = self.check_step(now, pos, run);
            match verdict {
                None => {
                    if self.end.is_some() {
                        let detail = self.ended_detail();
                        self.finish_step(now, StepOutcome::Failed, detail);
                        continue;
                    }
                    return Ok(());
                }
                Some((outcome, detail)) => {
                    if outcome == StepOutcome::Passed
                        && let Some(Action::Other(Step::WaitForMark { name, .. })) =
                            self.actions.get(self.current)
                        && let Some(i) = self.unclaimed_mark(name.as_deref())
                    {
                        self.claimed[i] = true;
                    }
                    if outcome == StepOutcome::Passed
                        && let Some(Action::Other(Step::WaitForText { role, contains, .. })) =
                            self.actions.get(self.current)
                        && let Some(i) = self.unclaimed_text(role.as_deref(), contains.as_deref())
                    {
                        self.claimed_texts[i] = true;
                    }
                    self.finish_step(now, outcome, detail);
                    if outcome == StepOutcome::Failed && self.stop_on_failure {
                        // Skip the rest and hang up now.
                        self.current = self.actions.len();
                        self.hangup_at = Some(now);
                        return Ok(());
                    }
                }
            }
        }
    }

    /// The first echoed mark (named `name`, if given) that no earlier `wait_for_mark`
    /// step has claimed.
    fn unclaimed_mark(&self, name: Option<&str>) -> Option<usize> {
        self.marks.iter().enumerate().position(|(i, m)| {
            !self.claimed.get(i).copied().unwrap_or(false)
                && m.echoed_at_ms.is_some()
                && name.is_none_or(|n| n == m.name)
        })
    }

    /// The first transcript from `role` containing `contains` (ignoring case) that no
    /// earlier `wait_for_text` step has claimed.
    fn unclaimed_text(&self, role: Option<&str>, contains: Option<&str>) -> Option<usize> {
        let needle = contains.map(str::to_lowercase);
        self.texts.iter().enumerate().position(|(i, t)| {
            !self.claimed_texts.get(i).copied().unwrap_or(false)
                && role.is_none_or(|r| r == t.role)
                && needle
                    .as_deref()
                    .is_none_or(|n| t.text.to_lowercase().contains(n))
        })
    }

    fn ended_detail(&self) -> String {
        match &self.end {
            Some(CallEnd::Server { at_ms, code, .. }) => format!(
                "the server closed the call at {at_ms:.0} ms (close code {}) before the step completed",
                code.map_or_else(|| "none".to_owned(), |c| c.to_string())
            ),
            Some(CallEnd::Error { at_ms, error }) => {
                format!("the connection failed at {at_ms:.0} ms: {error}")
            }
            _ => "the call ended before the step completed".to_owned(),
        }
    }

    fn finish_step(&mut self, now: Instant, outcome: StepOutcome, detail: String) {
        let started = self.running.map(|r| self.ms_at(r.started));
        let ended = self.ms_at(now);
        if let Some(report) = self.steps.get_mut(self.current) {
            report.outcome = outcome;
            report.started_ms = Some(started.unwrap_or(ended));
            report.ended_ms = Some(ended);
            report.detail = detail;
            if outcome == StepOutcome::Failed {
                tracing::info!(step = report.index, detail = %report.detail, "step failed");
            }
        }
        self.running = None;
        self.current += 1;
    }

    async fn start_step(
        &mut self,
        ws: &mut Socket,
        now: Instant,
        pos: u64,
    ) -> Result<Running, String> {
        let mut run = Running {
            started: now,
            start_pos: pos,
            until_consumed: 0,
        };
        let mut to_send = None;
        match self.actions.get_mut(self.current) {
            Some(Action::Play { samples, .. }) => {
                let samples = std::mem::take(samples);
                self.queued_total += samples.len() as u64;
                self.caller.extend(samples);
                run.until_consumed = self.queued_total;
            }
            Some(Action::Other(Step::Silence { duration })) => {
                let n = samples_in(*duration, self.rate);
                self.queued_total += n as u64;
                self.caller.extend(std::iter::repeat_n(0i16, n));
                run.until_consumed = self.queued_total;
            }
            Some(Action::Other(Step::Dtmf { digit, duration })) => {
                let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
                to_send = Some(self.wire.dtmf(*digit, ms));
            }
            Some(Action::Other(Step::Hangup)) => self.hangup_at = Some(now),
            Some(Action::Other(Step::SendText { text })) => to_send = self.wire.text_message(text),
            Some(Action::Other(Step::ModeChange {
                voice_input,
                text_input,
                voice_output,
                text_output,
            })) => {
                to_send =
                    self.wire
                        .mode_change([*voice_input, *text_input, *voice_output, *text_output]);
            }
            _ => {}
        }
        if let Some(text) = to_send {
            self.send_text(ws, text).await?;
        }
        Ok(run)
    }

    /// `None` while the step is still waiting.
    fn check_step(&self, now: Instant, pos: u64, run: Running) -> Option<(StepOutcome, String)> {
        let elapsed = now.saturating_duration_since(run.started);
        let start_ms = self.ms(run.start_pos);
        let pass = |detail: String| Some((StepOutcome::Passed, detail));
        let fail = |detail: String| Some((StepOutcome::Failed, detail));
        match self.actions.get(self.current)? {
            Action::Play {
                blocking: false, ..
            } => pass("playing on in the background".into()),
            Action::Play { blocking: true, .. } | Action::Other(Step::Silence { .. }) => {
                if self.consumed_total >= run.until_consumed {
                    pass(String::new())
                } else {
                    None
                }
            }
            Action::Other(step) => match step {
                Step::Wait { duration } => (elapsed >= *duration).then(String::new).and_then(pass),
                Step::WaitForAudio { within } => {
                    let heard = self
                        .playout
                        .runs()
                        .iter()
                        .find(|r| r.end > run.start_pos)
                        .map(|r| r.start.max(run.start_pos));
                    match heard {
                        Some(at) => pass(format!(
                            "bot audio heard at {:.0} ms, {:.0} ms after the step started",
                            self.ms(at),
                            self.ms(at) - start_ms
                        )),
                        None if elapsed >= *within => {
                            fail(format!("no bot audio within {} ms", within.as_millis()))
                        }
                        None => None,
                    }
                }
                Step::WaitForMark { within, name } => match self.unclaimed_mark(name.as_deref()) {
                    Some(m) => {
                        let m = &self.marks[m];
                        let at = m.echoed_at_ms.unwrap_or_default();
                        pass(format!(
                            "mark {:?} echoed at {at:.0} ms ({:?}){}",
                            m.name,
                            m.outcome,
                            if at < start_ms {
                                ", before the step started"
                            } else {
                                ""
                            }
                        ))
                    }
                    None if elapsed >= *within => fail(format!(
                        "no mark{} echoed within {} ms",
                        name.as_ref().map(|n| format!(" {n:?}")).unwrap_or_default(),
                        within.as_millis()
                    )),
                    None => None,
                },
                Step::WaitUntilQuiet { within, quiet } => {
                    let quiet_pos = self.playout.play_end() + samples_in(*quiet, self.rate) as u64;
                    if !self.playout.is_playing(pos) && pos >= quiet_pos {
                        pass(format!(
                            "bot quiet since {:.0} ms",
                            self.ms(self.playout.play_end())
                        ))
                    } else if elapsed >= *within {
                        fail(format!(
                            "the bot was still playing (or not quiet for {} ms) after {} ms",
                            quiet.as_millis(),
                            within.as_millis()
                        ))
                    } else {
                        None
                    }
                }
                Step::ExpectClear { within } => {
                    match self.clears.iter().find(|c| c.at_ms >= start_ms) {
                        Some(c) => pass(format!(
                            "clear at {:.0} ms, {:.0} ms after the step started, dropped {:.0} ms of audio",
                            c.at_ms,
                            c.at_ms - start_ms,
                            c.dropped_ms
                        )),
                        None if elapsed >= *within => {
                            fail(format!("no clear within {} ms", within.as_millis()))
                        }
                        None => None,
                    }
                }
                Step::ExpectNoAudio { duration } => {
                    let heard = self
                        .playout
                        .runs()
                        .iter()
                        .find(|r| r.end > run.start_pos)
                        .map(|r| r.start.max(run.start_pos));
                    match heard {
                        Some(at) => fail(format!(
                            "bot audio heard at {:.0} ms, {:.0} ms after the step started",
                            self.ms(at),
                            self.ms(at) - start_ms
                        )),
                        None if elapsed >= *duration => pass(String::new()),
                        None => None,
                    }
                }
                Step::ExpectHangup { within } => match &self.end {
                    Some(CallEnd::Server { at_ms, code, .. }) => pass(format!(
                        "the server closed the call at {at_ms:.0} ms (close code {})",
                        code.map_or_else(|| "none".to_owned(), |c| c.to_string())
                    )),
                    _ if elapsed >= *within => fail(format!(
                        "the server did not hang up within {} ms",
                        within.as_millis()
                    )),
                    _ => None,
                },
                Step::Dtmf { digit, .. } => pass(format!("sent {digit}")),
                Step::Hangup => pass(String::new()),
                Step::SendText { .. } | Step::ModeChange { .. } | Step::WaitForText { .. }
                    if !self.dialect.has_text_channel() =>
                {
                    fail(format!("dialect {} has no text channel", self.dialect))
                }
                Step::SendText { text } => pass(format!("sent {text:?}")),
                Step::ModeChange { .. } => pass(String::new()),
                Step::WaitForText {
                    role,
                    contains,
                    within,
                } => match self.unclaimed_text(role.as_deref(), contains.as_deref()) {
                    Some(i) => {
                        let t = &self.texts[i];
                        pass(format!(
                            "{} transcript {:?} ({}) at {:.0} ms{}",
                            t.role,
                            t.text,
                            if t.is_final { "final" } else { "interim" },
                            t.at_ms,
                            if t.at_ms < start_ms {
                                ", before the step started"
                            } else {
                                ""
                            }
                        ))
                    }
                    None if elapsed >= *within => fail(format!(
                        "no matching transcript within {} ms ({} received)",
                        within.as_millis(),
                        self.texts.len()
                    )),
                    None => None,
                },
                // Handled as actions.
                Step::Play { .. } | Step::Silence { .. } => pass(String::new()),
            },
        }
    }

    /// Ends the call from our side: `stop` where the dialect has it, then close.
    async fn hang_up(&mut self, ws: &mut Socket, now: Instant) {
        if let Some(stop) = self.wire.stop()
            && let Err(e) = self.send_text(ws, stop).await
        {
            self.fail_connection(now, &e);
            return;
        }
        self.end = Some(CallEnd::Callsim {
            at_ms: self.ms_at(now),
        });
        let _ = connect::timed(ws.close(None)).await;
        self.drain(ws).await;
    }

    /// After the server closed or the connection failed: finish the close handshake.
    async fn after_server_end(&mut self, ws: &mut Socket) {
        if matches!(self.end, Some(CallEnd::Server { .. })) {
            let _ = connect::timed(ws.close(None)).await;
            self.drain(ws).await;
        }
    }

    /// Reads until the socket closes (or the close timeout), counting what arrives.
    async fn drain(&mut self, ws: &mut Socket) {
        let deadline = tokio::time::Instant::now() + self.options.close_timeout;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
            match message {
                Message::Text(_) | Message::Binary(_) => self.frames.after_hangup += 1,
                Message::Close(_) => break,
                _ => {}
            }
        }
    }

    fn finish(mut self, mut detector: TurnDetector) -> (CallReport, Vec<StepReport>) {
        // The timeline runs to the end of the last caller frame sent; nothing plays
        // after the hang-up.
        let sent_len = self.sent.len() as u64;
        let end = self.end_pos.max(sent_len);
        let mut heard = self.playout.finish(self.end_pos.min(end));
        heard.resize(end as usize, 0);
        let mut sent = std::mem::take(&mut self.sent);
        sent.resize(end as usize, 0);

        let turns = find_turns(&mut detector, &sent, self.rate, self.options.turn_stop);
        let runs = self.playout.runs().to_vec();
        let turns: Vec<TurnLatency> = turns
            .iter()
            .enumerate()
            .map(|(i, &(start, stop))| {
                let next = turns.get(i + 1).map_or(u64::MAX, |t| t.0);
                let response = runs
                    .iter()
                    .find(|r| r.start >= stop && r.start < next)
                    .map(|r| r.start);
                TurnLatency {
                    speech_start_ms: self.ms(start),
                    speech_end_ms: self.ms(stop),
                    response_ms: response.map(|r| self.ms(r)),
                    latency_ms: response.map(|r| self.ms(r - stop)),
                }
            })
            .collect();

        let one_frame = samples_in(Duration::from_millis(20), self.rate) as u64;
        let limit = samples_in(self.options.gap_limit, self.rate) as u64;
        let playback_gaps = runs
            .windows(2)
            .filter_map(|w| {
                let (a, b) = (w[0], w[1]);
                let gap = b.start - a.end;
                let turn_between = turns.iter().any(|t| {
                    let (s, e) = (t.speech_start_ms, t.speech_end_ms);
                    let (ga, gb) = (self.ms(a.end), self.ms(b.start));
                    (ga..=gb).contains(&s) || (ga..=gb).contains(&e)
                });
                (!b.after_clear && gap > one_frame && gap <= limit && !turn_between).then(|| {
                    PlaybackGap {
                        at_ms: self.ms(a.end),
                        duration_ms: self.ms(gap),
                    }
                })
            })
            .collect();

        let end_reason = self.end.clone().unwrap_or(CallEnd::Callsim {
            at_ms: self.ms(end),
        });
        let report = CallReport {
            dialect: self.dialect,
            url: self.url.clone(),
            line_format: self.format.to_string(),
            sample_rate: self.rate,
            frame_ms: self.frame.as_millis() as u64,
            ids: self.wire.ids().clone(),
            connect_ms: self.connect_ms,
            duration_ms: self.ms(end),
            first_bot_audio_ms: runs.first().map(|r| self.ms(r.start)),
            bot_audio_ms: self.ms(runs.iter().map(|r| r.end - r.start).sum()),
            cleared_audio_ms: self.ms(self.cleared_samples),
            turns,
            playback_gaps,
            marks: std::mem::take(&mut self.marks),
            clears: std::mem::take(&mut self.clears),
            texts: std::mem::take(&mut self.texts),
            modes: std::mem::take(&mut self.modes),
            violations: std::mem::take(&mut self.violations),
            warnings: std::mem::take(&mut self.warnings),
            frames: self.frames.clone(),
            end: end_reason,
            heard,
            sent,
            received: std::mem::take(&mut self.received),
        };
        (report, self.steps)
    }
}

/// Caller turns in `sent` as `(start, end)` sample positions: the first voiced frame
/// to the end of the last voiced frame.
fn find_turns(
    detector: &mut TurnDetector,
    sent: &[i16],
    rate: u32,
    stop: Duration,
) -> Vec<(u64, u64)> {
    let mut turns = Vec::new();
    let mut open: Option<u64> = None;
    let chunk = samples_in(Duration::from_millis(20), rate).max(1);
    // Trailing silence closes a turn still open at the end of the call.
    let pad = vec![0i16; samples_in(stop + Duration::from_millis(300), rate)];
    for piece in sent.chunks(chunk).chain(pad.chunks(chunk)) {
        for event in detector.push(piece) {
            match event {
                TurnEvent::SpeechStarted { at, .. } => open = Some(at.sample()),
                TurnEvent::SpeechStopped {
                    speech_duration, ..
                } => {
                    if let Some(start) = open.take() {
                        let end = start + samples_in(speech_duration, rate) as u64;
                        turns.push((start, end.min(sent.len() as u64)));
                    }
                }
            }
        }
    }
    turns
}

fn excerpt_text(text: &str) -> String {
    const MAX: usize = 200;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

fn excerpt_binary(data: &[u8]) -> String {
    let hex: Vec<String> = data.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("binary, {} bytes: {}", data.len(), hex.join(" "))
}
