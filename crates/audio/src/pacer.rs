//! The real-time playout schedule for frames sent to a caller.
//!
//! A carrier plays what it receives at real time and buffers the rest, so a bot that
//! sends a whole reply at once can no longer take it back: a barge-in would have to
//! wait for the carrier's buffer to drain, and marks would fire long before the
//! caller hears them. The [`Pacer`] holds frames until they are due instead, so
//! [`Pacer::clear`] takes effect within one frame.
//!
//! Deadlines come from one monotonic origin per stream (`t0 + audio sent so far`),
//! never from sleeping a frame's length after each send, so scheduling jitter does not
//! accumulate into drift. The pacer does no waiting itself: [`Pacer::poll`] says what
//! is due and when to ask again, and the clock is injected, so the logic is tested
//! with a [`ManualClock`] and driven by any runtime.
//!
//! ```
//! use std::time::Duration;
//! use voxline_audio::pacer::{ManualClock, Pacer, PacerConfig, Poll};
//!
//! let clock = ManualClock::new();
//! let config = PacerConfig { lead: Duration::ZERO, ..PacerConfig::default() };
//! let mut pacer = Pacer::with_clock(config, clock.clone());
//! let frame = Duration::from_millis(20);
//! pacer.push("a", frame).unwrap();
//! pacer.push("b", frame).unwrap();
//!
//! assert!(matches!(pacer.poll(), Poll::Send(f) if f.frame == "a"));
//! assert!(matches!(pacer.poll(), Poll::Wait(_)));
//! clock.advance(frame);
//! assert!(matches!(pacer.poll(), Poll::Send(f) if f.frame == "b"));
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A source of monotonic time.
pub trait Clock {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct MonotonicClock;

impl Clock for MonotonicClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for deterministic tests. Clones share time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A clock stopped at the current instant.
    pub fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves time forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How the pacer schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacerConfig {
    /// How far ahead of its playout time a frame is sent, to keep the carrier's jitter
    /// buffer from running dry on a late wake-up. Also how much audio `clear` cannot
    /// take back on our side (the carrier's own clear covers it).
    pub lead: Duration,
    /// A frame sent more than this after its deadline is counted late.
    pub late_after: Duration,
    /// Most frames held; [`Pacer::push`] refuses more.
    pub capacity: usize,
}

impl Default for PacerConfig {
    /// 40 ms lead, late after 20 ms, up to 1,000 frames (20 s of 20 ms frames).
    fn default() -> Self {
        Self {
            lead: Duration::from_millis(40),
            late_after: Duration::from_millis(20),
            capacity: 1000,
        }
    }
}

/// A frame refused because the pacer holds [`PacerConfig::capacity`] frames already;
/// it is handed back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pacer full: {capacity} frames queued")]
pub struct QueueFull<T> {
    /// The refused frame.
    pub frame: T,
    /// The capacity that was reached.
    pub capacity: usize,
}

/// What to do now.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll<T> {
    /// Send this frame now.
    Send(PacedFrame<T>),
    /// Nothing is due before this instant.
    Wait(Instant),
    /// Nothing is queued.
    Idle,
}

/// A frame that is due, with where it sits in the schedule.
#[derive(Debug, PartialEq, Eq)]
pub struct PacedFrame<T> {
    /// The frame.
    pub frame: T,
    /// Its index in the current stream (from 0 after the pacer was idle or cleared).
    pub index: u64,
    /// Where it starts in the stream's audio time.
    pub position: Duration,
    /// How long after its deadline it is being sent (zero when on time).
    pub lateness: Duration,
    /// Set when the stream had run dry before this frame: how long the caller heard
    /// nothing. The schedule restarts from this frame.
    pub after_underrun: Option<Duration>,
}

/// Running totals, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacerStats {
    /// Frames handed out by [`Pacer::poll`].
    pub frames_sent: u64,
    /// Frames sent later than [`PacerConfig::late_after`] past their deadline.
    pub late_frames: u64,
    /// Times the queue ran dry before [`Pacer::finish`] was called.
    pub underruns: u64,
    /// Frames dropped by [`Pacer::clear`].
    pub frames_cleared: u64,
    /// The largest lateness seen.
    pub max_lateness: Duration,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// No stream: the next frame starts one at `now`.
    Idle,
    /// Playing: `sent` of audio has been handed out since `origin`, and `before` was
    /// played in earlier segments of the same stream (before an underrun).
    Playing {
        origin: Instant,
        sent: Duration,
        before: Duration,
        index: u64,
    },
    /// The queue ran dry at `since` before the stream was finished.
    Starved {
        since: Instant,
        played: Duration,
        index: u64,
    },
}

/// A playout schedule over frames of any type `T` (typically `bytes::Bytes`).
#[derive(Debug)]
pub struct Pacer<T, C = MonotonicClock> {
    config: PacerConfig,
    clock: C,
    queue: VecDeque<(T, Duration)>,
    queued: Duration,
    state: State,
    finished: bool,
    stats: PacerStats,
}

impl<T> Pacer<T, MonotonicClock> {
    /// A pacer on the system clock.
    pub fn new(config: PacerConfig) -> Self {
        Self::with_clock(config, MonotonicClock)
    }
}

impl<T, C: Clock> Pacer<T, C> {
    /// A pacer on the given clock.
    pub fn with_clock(config: PacerConfig, clock: C) -> Self {
        Self {
            config,
            clock,
            queue: VecDeque::new(),
            queued: Duration::ZERO,
            state: State::Idle,
            finished: false,
            stats: PacerStats::default(),
        }
    }

    /// Queues a frame that plays for `duration`.
    ///
    /// # Errors
    /// [`QueueFull`], with the frame, when [`PacerConfig::capacity`] frames are queued.
    pub fn push(&mut self, frame: T, duration: Duration) -> Result<(), QueueFull<T>> {
        if self.queue.len() >= self.config.capacity {
            return Err(QueueFull {
                frame,
                capacity: self.config.capacity,
            });
        }
        self.queue.push_back((frame, duration));
        self.queued += duration;
        self.finished = false;
        Ok(())
    }

    /// Marks the end of what was queued (an utterance): running dry after these frames
    /// is the stream ending, not an underrun. Pushing again starts a new utterance.
    pub fn finish(&mut self) {
        self.finished = true;
    }

    /// What is due now. Call again after sending, or at the instant in
    /// [`Poll::Wait`], or after a push when [`Poll::Idle`].
    pub fn poll(&mut self) -> Poll<T> {
        let now = self.clock.now();
        self.settle(now);
        let (origin, sent, before, index, after_underrun) = match self.state {
            State::Playing {
                origin,
                sent,
                before,
                index,
            } => (origin, sent, before, index, None),
            State::Idle if !self.queue.is_empty() => (now, Duration::ZERO, Duration::ZERO, 0, None),
            State::Starved {
                since,
                played,
                index,
            } if !self.queue.is_empty() => (now, Duration::ZERO, played, index, Some(now - since)),
            State::Idle | State::Starved { .. } => return Poll::Idle,
        };
        let Some(&(_, duration)) = self.queue.front() else {
            // Playing, but everything sent is still playing out.
            return Poll::Wait(origin + sent);
        };
        let deadline = (origin + sent)
            .checked_sub(self.config.lead)
            .unwrap_or(origin)
            .max(origin);
        if now < deadline {
            return Poll::Wait(deadline);
        }
        let Some((frame, _)) = self.queue.pop_front() else {
            return Poll::Idle;
        };
        self.queued = self.queued.saturating_sub(duration);
        let lateness = now - deadline;
        self.stats.frames_sent += 1;
        if lateness > self.config.late_after {
            self.stats.late_frames += 1;
        }
        self.stats.max_lateness = self.stats.max_lateness.max(lateness);
        self.state = State::Playing {
            origin,
            sent: sent + duration,
            before,
            index: index + 1,
        };
        Poll::Send(PacedFrame {
            frame,
            index,
            position: before + sent,
            lateness,
            after_underrun,
        })
    }

    /// Drops every queued frame and ends the stream (barge-in). Returns how many
    /// frames were dropped.
    pub fn clear(&mut self) -> usize {
        let dropped = self.queue.len();
        self.queue.clear();
        self.queued = Duration::ZERO;
        self.state = State::Idle;
        self.finished = false;
        self.stats.frames_cleared += dropped as u64;
        dropped
    }

    /// How much of the current stream the caller has heard by now, by the playout
    /// clock: audio handed out, less what is still in flight. Zero when idle. Read it
    /// before [`Pacer::clear`] to know where an interrupted reply was cut.
    pub fn played(&self) -> Duration {
        match self.state {
            State::Idle => Duration::ZERO,
            State::Starved { played, .. } => played,
            State::Playing {
                origin,
                sent,
                before,
                ..
            } => before + sent.min(self.clock.now().saturating_duration_since(origin)),
        }
    }

    /// Audio queued and not yet handed out.
    pub fn queued(&self) -> Duration {
        self.queued
    }

    /// Frames queued and not yet handed out.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether a stream is playing (frames were sent and have not finished playing).
    pub fn is_playing(&mut self) -> bool {
        self.settle(self.clock.now());
        matches!(self.state, State::Playing { .. })
    }

    /// Running totals.
    pub fn stats(&self) -> PacerStats {
        self.stats
    }

    /// Ends a stream whose audio has all played out: finished streams go idle, others
    /// are starved (an underrun).
    fn settle(&mut self, now: Instant) {
        if let State::Playing {
            origin,
            sent,
            before,
            index,
        } = self.state
            && self.queue.is_empty()
            && now >= origin + sent
        {
            self.state = if self.finished {
                self.finished = false;
                State::Idle
            } else {
                self.stats.underruns += 1;
                State::Starved {
                    since: origin + sent,
                    played: before + sent,
                    index,
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn pacer(lead_ms: u64) -> (Pacer<u32, ManualClock>, ManualClock) {
        pacer_with_capacity(lead_ms, 100)
    }

    fn pacer_with_capacity(
        lead_ms: u64,
        capacity: usize,
    ) -> (Pacer<u32, ManualClock>, ManualClock) {
        let clock = ManualClock::new();
        let config = PacerConfig {
            lead: Duration::from_millis(lead_ms),
            late_after: Duration::from_millis(5),
            capacity,
        };
        (Pacer::with_clock(config, clock.clone()), clock)
    }

    fn sent(poll: Poll<u32>) -> PacedFrame<u32> {
        match poll {
            Poll::Send(f) => f,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn deadlines_follow_the_origin_without_drift() {
        let (mut p, clock) = pacer_with_capacity(0, 1000);
        let start = clock.now();
        for i in 0..1000 {
            p.push(i, FRAME).expect("room");
        }
        for i in 0..1000u32 {
            // Wake up 3 ms late every time: a sleep-per-frame pacer would drift 3 s.
            let f = loop {
                match p.poll() {
                    Poll::Send(f) => break f,
                    Poll::Wait(at) => clock.advance(at - clock.now() + Duration::from_millis(3)),
                    Poll::Idle => panic!("idle with frames queued"),
                }
            };
            assert_eq!(f.frame, i);
            assert_eq!(f.position, FRAME * i);
            if i > 0 {
                assert_eq!(f.lateness, Duration::from_millis(3));
            }
        }
        // The last frame went out 3 ms after its slot at 999 frames, not 3 s later.
        assert_eq!(clock.now() - start, FRAME * 999 + Duration::from_millis(3));
        assert_eq!(p.stats().late_frames, 0);
    }

    #[test]
    fn lead_sends_ahead_of_the_playout_clock() {
        let (mut p, clock) = pacer(40);
        for i in 0..5 {
            p.push(i, FRAME).expect("room");
        }
        // 0 ms, 20 ms and 40 ms of audio are due at once with a 40 ms lead.
        for i in 0..3 {
            assert_eq!(sent(p.poll()).frame, i);
        }
        let Poll::Wait(at) = p.poll() else {
            panic!("should wait")
        };
        assert_eq!(at - clock.now(), FRAME);
    }

    #[test]
    fn late_frames_are_reported() {
        let (mut p, clock) = pacer(0);
        p.push(0, FRAME).expect("room");
        p.push(1, FRAME).expect("room");
        sent(p.poll());
        clock.advance(FRAME + Duration::from_millis(15));
        let f = sent(p.poll());
        assert_eq!(f.lateness, Duration::from_millis(15));
        assert_eq!(p.stats().late_frames, 1);
        assert_eq!(p.stats().max_lateness, Duration::from_millis(15));
    }

    #[test]
    fn running_dry_is_an_underrun_unless_finished() {
        let (mut p, clock) = pacer(0);
        p.push(0, FRAME).expect("room");
        sent(p.poll());
        clock.advance(FRAME * 3);
        assert_eq!(p.poll(), Poll::Idle);
        assert_eq!(p.stats().underruns, 1);
        assert_eq!(p.played(), FRAME);

        p.push(1, FRAME).expect("room");
        let f = sent(p.poll());
        assert_eq!(f.after_underrun, Some(FRAME * 2));
        assert_eq!(f.index, 1);
        assert_eq!(f.position, FRAME);
        assert_eq!(
            f.lateness,
            Duration::ZERO,
            "the schedule restarts at the new frame"
        );

        p.finish();
        clock.advance(FRAME * 2);
        assert_eq!(p.poll(), Poll::Idle);
        assert_eq!(p.stats().underruns, 1);
        assert!(!p.is_playing());
        p.push(2, FRAME).expect("room");
        let f = sent(p.poll());
        assert_eq!(
            (f.index, f.after_underrun),
            (0, None),
            "a new stream after finish"
        );
    }

    #[test]
    fn clear_drops_everything_at_once() {
        let (mut p, clock) = pacer(0);
        for i in 0..50 {
            p.push(i, FRAME).expect("room");
        }
        sent(p.poll());
        clock.advance(FRAME);
        sent(p.poll());
        clock.advance(FRAME / 2);
        assert_eq!(p.played(), FRAME + FRAME / 2);
        assert_eq!(p.clear(), 48);
        assert_eq!(p.poll(), Poll::Idle);
        assert_eq!(p.queued(), Duration::ZERO);
        assert_eq!(p.stats().frames_cleared, 48);
        assert_eq!(p.played(), Duration::ZERO);
    }

    #[test]
    fn capacity_is_enforced_and_the_frame_returned() {
        let (mut p, _clock) = pacer(0);
        for i in 0..100 {
            p.push(i, FRAME).expect("room");
        }
        let err = p.push(100, FRAME).expect_err("full");
        assert_eq!(err.frame, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(p.queued(), FRAME * 100);
    }

    #[test]
    fn waits_for_playout_to_end_before_settling() {
        let (mut p, clock) = pacer(0);
        p.push(0, FRAME).expect("room");
        sent(p.poll());
        let Poll::Wait(at) = p.poll() else {
            panic!("still playing")
        };
        assert_eq!(at - clock.now(), FRAME);
        assert!(p.is_playing());
    }
}
