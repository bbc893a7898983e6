//! The carrier's playout buffer: bot audio played on the carrier's own clock.
//!
//! Pure logic in timeline samples (samples of the line rate since the stream's
//! origin), so it is tested without a clock. A piece of audio that arrives while the
//! buffer is idle starts playing at its arrival; one that arrives while audio is
//! queued plays right after it. What has played is committed to the heard recording;
//! a clear drops what has not.

use std::collections::VecDeque;

/// A stretch of bot audio that was heard without interruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Run {
    /// First sample.
    pub(crate) start: u64,
    /// One past the last sample.
    pub(crate) end: u64,
    /// A clear came between the previous run and this one.
    pub(crate) after_clear: bool,
}

#[derive(Debug)]
struct Piece {
    start: u64,
    samples: Vec<i16>,
    played: usize,
}

impl Piece {
    fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }
}

#[derive(Debug, Default)]
pub(crate) struct Playout {
    queue: VecDeque<Piece>,
    /// Where the queued audio ends; at or before "now" when the buffer is idle.
    play_end: u64,
    heard: Vec<i16>,
    runs: Vec<Run>,
    cleared_since_last_run: bool,
}

impl Playout {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues `samples` arriving at `now`; returns where they will start playing.
    pub(crate) fn enqueue(&mut self, now: u64, samples: Vec<i16>) -> u64 {
        self.advance(now);
        let start = self.play_end.max(now);
        if samples.is_empty() {
            return start;
        }
        self.play_end = start + samples.len() as u64;
        self.queue.push_back(Piece {
            start,
            samples,
            played: 0,
        });
        start
    }

    /// Plays everything due before `now` into the heard recording.
    pub(crate) fn advance(&mut self, now: u64) {
        while let Some(piece) = self.queue.front_mut() {
            let from = piece.start + piece.played as u64;
            let upto = piece.end().min(now);
            if upto <= from {
                break;
            }
            let a = piece.played;
            let b = (upto - piece.start) as usize;
            let (from_us, to_us) = (from as usize, upto as usize);
            if self.heard.len() < to_us {
                self.heard.resize(to_us, 0);
            }
            self.heard[from_us..to_us].copy_from_slice(&piece.samples[a..b]);
            piece.played = b;
            match self.runs.last_mut() {
                Some(run) if run.end == from => run.end = upto,
                _ => {
                    self.runs.push(Run {
                        start: from,
                        end: upto,
                        after_clear: self.cleared_since_last_run,
                    });
                    self.cleared_since_last_run = false;
                }
            }
            if piece.played == piece.samples.len() {
                self.queue.pop_front();
            } else {
                break;
            }
        }
    }

    /// Drops everything queued and not yet played at `now`; returns how many samples
    /// were dropped.
    pub(crate) fn clear(&mut self, now: u64) -> u64 {
        self.advance(now);
        let dropped: u64 = self
            .queue
            .drain(..)
            .map(|p| (p.samples.len() - p.played) as u64)
            .sum();
        self.play_end = self.play_end.min(now);
        self.cleared_since_last_run = true;
        dropped
    }

    /// Where the audio queued so far ends: a mark sent now is due there.
    pub(crate) fn play_end(&self) -> u64 {
        self.play_end
    }

    /// Whether bot audio is being heard at `now`.
    pub(crate) fn is_playing(&self, now: u64) -> bool {
        self.play_end > now && !self.queue.is_empty()
    }

    /// The end of the last audio heard so far.
    #[cfg(test)]
    pub(crate) fn heard_until(&self) -> Option<u64> {
        self.runs.last().map(|r| r.end)
    }

    pub(crate) fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// Plays up to `end` and returns the heard recording, `end` samples long.
    pub(crate) fn finish(&mut self, end: u64) -> Vec<i16> {
        self.advance(end);
        let mut heard = std::mem::take(&mut self.heard);
        heard.resize(end as usize, 0);
        heard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_plays_at_arrival_or_after_the_queue() {
        let mut p = Playout::new();
        assert_eq!(p.enqueue(10, vec![1; 5]), 10);
        assert_eq!(p.enqueue(12, vec![2; 5]), 15);
        assert!(p.is_playing(12));
        assert_eq!(p.play_end(), 20);
        p.advance(17);
        assert_eq!(p.heard_until(), Some(17));
        let heard = p.finish(25);
        let mut want = vec![0; 10];
        want.extend([1; 5]);
        want.extend([2; 5]);
        want.extend([0; 5]);
        assert_eq!(heard, want);
        assert_eq!(
            p.runs(),
            &[Run {
                start: 10,
                end: 20,
                after_clear: false
            }]
        );
    }

    #[test]
    fn clear_drops_the_unplayed_part() {
        let mut p = Playout::new();
        p.enqueue(0, vec![7; 100]);
        p.enqueue(0, vec![8; 100]);
        assert_eq!(p.clear(30), 170);
        assert!(!p.is_playing(30));
        assert_eq!(p.play_end(), 30);
        // New audio after the clear starts at its arrival.
        assert_eq!(p.enqueue(50, vec![9; 10]), 50);
        let heard = p.finish(70);
        assert_eq!(&heard[..30], &[7; 30]);
        assert_eq!(&heard[30..50], &[0; 20]);
        assert_eq!(&heard[50..60], &[9; 10]);
        assert_eq!(p.runs().len(), 2);
        assert!(p.runs()[1].after_clear);
    }

    #[test]
    fn late_audio_leaves_a_gap() {
        let mut p = Playout::new();
        p.enqueue(0, vec![1; 10]);
        p.enqueue(15, vec![1; 10]);
        p.finish(40);
        assert_eq!(
            p.runs(),
            &[
                Run {
                    start: 0,
                    end: 10,
                    after_clear: false
                },
                Run {
                    start: 15,
                    end: 25,
                    after_clear: false
                }
            ]
        );
    }
}
