//! Outbound audio: rechunked to the dialect's frames, paced in real time, cleared at
//! once on barge-in, with marks kept in order behind the audio they follow.

use std::time::{Duration, Instant};

use bytes::Bytes;
use voxline_audio::pacer::{Clock, MonotonicClock, PacedFrame, Pacer, PacerConfig, Poll};
use voxline_audio::{AudioFormat, FrameSize, Rechunker};

/// Something queued for the carrier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outgoing {
    /// One frame of audio in the call's format and the dialect's frame size.
    Audio(Bytes),
    /// A mark: sent when every frame queued before it has been sent.
    Mark(String),
}

/// What the playout did that a handler may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlayoutEvent {
    /// Audio started going out after the playout was idle.
    Started,
    /// Everything queued has been sent and its playout time has passed.
    Finished,
}

/// Audio was refused because the queue holds [`crate::ServerConfig::max_queued_audio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("playout queue full: {queued:?} of audio already queued")]
pub struct QueueFull {
    /// How much audio was queued.
    pub queued: Duration,
}

/// One call's outbound audio schedule.
#[derive(Debug)]
pub(crate) struct Playout<C = MonotonicClock> {
    format: AudioFormat,
    rechunker: Rechunker,
    pacer: Pacer<Outgoing, C>,
    playing: bool,
}

impl Playout {
    pub(crate) fn new(
        format: AudioFormat,
        frames: FrameSize,
        lead: Duration,
        max_queued: Duration,
    ) -> Result<Self, voxline_audio::AudioError> {
        Self::with_clock(format, frames, lead, max_queued, MonotonicClock)
    }
}

impl<C: Clock> Playout<C> {
    pub(crate) fn with_clock(
        format: AudioFormat,
        frames: FrameSize,
        lead: Duration,
        max_queued: Duration,
        clock: C,
    ) -> Result<Self, voxline_audio::AudioError> {
        let frame_duration = format
            .duration_of(frames.frame())
            .max(Duration::from_millis(1));
        let capacity = (max_queued.as_millis() / frame_duration.as_millis().max(1)) as usize + 64;
        let rechunker = Rechunker::new(frames, format.encoding)?;
        Ok(Self {
            format,
            rechunker,
            pacer: Pacer::with_clock(
                PacerConfig {
                    lead,
                    late_after: frame_duration,
                    capacity,
                },
                clock,
            ),
            playing: false,
        })
    }

    /// Queues audio (any length) for paced playout.
    pub(crate) fn play(&mut self, audio: &[u8]) -> Result<(), QueueFull> {
        let format = self.format;
        for frame in self.rechunker.push(audio) {
            let duration = format.duration_of(frame.len());
            if self.pacer.push(Outgoing::Audio(frame), duration).is_err() {
                return Err(QueueFull {
                    queued: self.pacer.queued(),
                });
            }
        }
        Ok(())
    }

    /// Queues a mark behind all audio queued so far (a partial frame is padded with
    /// silence and queued first).
    pub(crate) fn mark(&mut self, name: String) -> Result<(), QueueFull> {
        if let Some(tail) = self.rechunker.flush() {
            let duration = self.format.duration_of(tail.len());
            let _ = self.pacer.push(Outgoing::Audio(tail), duration);
        }
        let queued = self.pacer.queued();
        self.pacer
            .push(Outgoing::Mark(name), Duration::ZERO)
            .map_err(|_| QueueFull { queued })?;
        // A mark ends a segment: running dry after it is not an underrun.
        self.pacer.finish();
        Ok(())
    }

    /// Audio frames ready to go at once, unpaced (immediate echo): whole frames of
    /// `audio` plus whatever was held; the remainder stays for the next call.
    pub(crate) fn frames_now(&mut self, audio: Bytes) -> impl Iterator<Item = Bytes> + '_ {
        self.rechunker.push_bytes(audio)
    }

    /// Drops everything queued. Returns how many frames were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        self.rechunker.clear();
        self.pacer.clear()
    }

    /// Whether audio is queued or still playing out.
    pub(crate) fn is_playing(&self) -> bool {
        // Audio queued counts from the moment it is queued, not from its first frame:
        // a handler that queued a reply must not think the line is quiet.
        self.playing || !self.pacer.queued().is_zero()
    }

    /// How much of the current playback the caller has heard by the playout clock.
    pub(crate) fn played(&self) -> Duration {
        self.pacer.played()
    }

    /// Hands out what is due now. Returns when to ask again.
    pub(crate) fn poll(
        &mut self,
        due: &mut Vec<Outgoing>,
        events: &mut Vec<PlayoutEvent>,
    ) -> Option<Instant> {
        loop {
            match self.pacer.poll() {
                Poll::Send(PacedFrame { frame, .. }) => {
                    if !self.playing {
                        self.playing = true;
                        events.push(PlayoutEvent::Started);
                    }
                    due.push(frame);
                }
                Poll::Wait(at) => return Some(at),
                Poll::Idle => {
                    if self.playing {
                        self.playing = false;
                        events.push(PlayoutEvent::Finished);
                    }
                    return None;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use voxline_audio::pacer::ManualClock;

    use super::*;

    const FRAME: Duration = Duration::from_millis(20);

    fn playout(clock: &ManualClock) -> Playout<ManualClock> {
        Playout::with_clock(
            AudioFormat::MULAW_8K,
            FrameSize::exact(160),
            Duration::ZERO,
            Duration::from_secs(10),
            clock.clone(),
        )
        .expect("valid frames")
    }

    fn drain(p: &mut Playout<ManualClock>) -> (Vec<Outgoing>, Vec<PlayoutEvent>, Option<Instant>) {
        let (mut due, mut events) = (Vec::new(), Vec::new());
        let wake = p.poll(&mut due, &mut events);
        (due, events, wake)
    }

    #[test]
    fn audio_is_framed_paced_and_followed_by_its_mark() {
        let clock = ManualClock::new();
        let mut p = playout(&clock);
        p.play(&[1u8; 400]).expect("room");
        p.mark("end".into()).expect("room");
        // 400 bytes = two whole frames, then the 80-byte tail padded with mu-law silence.
        let (due, events, wake) = drain(&mut p);
        assert_eq!(events, [PlayoutEvent::Started]);
        assert_eq!(due.len(), 1, "only the first frame is due at once");
        assert_eq!(wake.map(|w| w - clock.now()), Some(FRAME));
        clock.advance(FRAME);
        assert_eq!(drain(&mut p).0.len(), 1);
        clock.advance(FRAME);
        let (due, _, _) = drain(&mut p);
        let Outgoing::Audio(tail) = &due[0] else {
            panic!("audio first")
        };
        assert_eq!(tail.len(), 160);
        assert!(tail[..80].iter().all(|&b| b == 1) && tail[80..].iter().all(|&b| b == 0xFF));
        assert_eq!(due.len(), 1, "the mark waits for its audio's slot to pass");
        assert!(p.is_playing());
        clock.advance(FRAME);
        let (due, events, wake) = drain(&mut p);
        assert_eq!(
            due,
            [Outgoing::Mark("end".into())],
            "the mark follows its audio"
        );
        assert_eq!(events, [PlayoutEvent::Finished]);
        assert_eq!(wake, None);
        assert!(!p.is_playing());
    }

    #[test]
    fn clear_drops_everything_queued() {
        let clock = ManualClock::new();
        let mut p = playout(&clock);
        p.play(&[1u8; 1600]).expect("room");
        p.mark("m".into()).expect("room");
        assert_eq!(drain(&mut p).0.len(), 1);
        assert_eq!(p.clear(), 10, "nine audio frames and the mark");
        let (due, events, _) = drain(&mut p);
        assert!(due.is_empty());
        assert_eq!(events, [PlayoutEvent::Finished]);
    }

    #[test]
    fn frames_now_keeps_the_remainder() {
        let clock = ManualClock::new();
        let mut p = playout(&clock);
        assert_eq!(p.frames_now(Bytes::from(vec![0u8; 200])).count(), 1);
        assert_eq!(
            p.frames_now(Bytes::from(vec![0u8; 120])).count(),
            1,
            "40 held + 120 = one frame"
        );
    }

    #[test]
    fn the_queue_is_bounded() {
        let clock = ManualClock::new();
        let mut p = Playout::with_clock(
            AudioFormat::MULAW_8K,
            FrameSize::exact(160),
            Duration::ZERO,
            Duration::from_millis(100),
            clock.clone(),
        )
        .expect("valid frames");
        let err = p
            .play(&vec![0u8; 8000 * 60])
            .expect_err("a minute does not fit");
        assert!(err.queued > Duration::from_millis(100));
    }
}
