//! What the caller actually heard of a reply.
//!
//! A reply goes out as segments (the splitter's pieces), each followed by a mark. When
//! the caller talks over the bot, the reply is cut: the conversation history must hold
//! what the caller heard, not what the model wrote, or the model will believe it said
//! things the caller never heard. A segment counts as heard when the carrier confirmed
//! its mark, or when the playout clock passed its end (for carriers whose marks lag).

use std::time::Duration;

/// Identifies a segment of a [`Reply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SegmentId(usize);

/// One reply as it was sent: its segments, their audio length and which the carrier
/// confirmed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
struct Segment {
    text: String,
    audio: Duration,
    confirmed: bool,
}

impl Reply {
    /// An empty reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a segment about to be spoken.
    pub fn push_segment(&mut self, text: impl Into<String>) -> SegmentId {
        self.segments.push(Segment {
            text: text.into(),
            audio: Duration::ZERO,
            confirmed: false,
        });
        SegmentId(self.segments.len() - 1)
    }

    /// Counts audio queued for playout for segment `id`.
    pub fn add_audio(&mut self, id: SegmentId, audio: Duration) {
        if let Some(segment) = self.segments.get_mut(id.0) {
            segment.audio += audio;
        }
    }

    /// The carrier confirmed (echoed the mark after) segment `id`: it was played, and
    /// so were the segments before it.
    pub fn confirm(&mut self, id: SegmentId) {
        for segment in self.segments.iter_mut().take(id.0 + 1) {
            segment.confirmed = true;
        }
    }

    /// The whole reply as written.
    pub fn full_text(&self) -> String {
        join(self.segments.iter())
    }

    /// What the caller heard when `played` of the reply's audio had played out: the
    /// segments confirmed by the carrier or wholly played by the clock, in order, up to
    /// the first that was not.
    pub fn heard_text(&self, played: Duration) -> String {
        join(self.segments.iter().take(self.heard_segments(played)))
    }

    /// Whether every segment was heard at `played`.
    pub fn fully_heard(&self, played: Duration) -> bool {
        self.heard_segments(played) == self.segments.len()
    }

    /// How many leading segments were heard at `played`.
    fn heard_segments(&self, played: Duration) -> usize {
        let mut end = Duration::ZERO;
        self.segments
            .iter()
            .take_while(|segment| {
                end += segment.audio;
                segment.confirmed || (!segment.audio.is_zero() && end <= played)
            })
            .count()
    }
}

fn join<'a>(segments: impl Iterator<Item = &'a Segment>) -> String {
    let mut text = String::new();
    for segment in segments {
        let piece = segment.text.trim();
        if piece.is_empty() {
            continue;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(piece);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> (Reply, [SegmentId; 3]) {
        let mut reply = Reply::new();
        let ids = [
            "Sure, I can help,",
            "your order shipped.",
            "It arrives Monday.",
        ]
        .map(|t| reply.push_segment(t));
        for (id, ms) in ids.iter().zip([900, 1200, 1000]) {
            reply.add_audio(*id, Duration::from_millis(ms));
        }
        (reply, ids)
    }

    #[test]
    fn the_playout_clock_decides_without_marks() {
        let (reply, _) = reply();
        assert_eq!(reply.heard_text(Duration::from_millis(500)), "");
        assert_eq!(
            reply.heard_text(Duration::from_millis(900)),
            "Sure, I can help,"
        );
        assert_eq!(
            reply.heard_text(Duration::from_millis(2500)),
            "Sure, I can help, your order shipped."
        );
        assert!(reply.fully_heard(Duration::from_millis(3100)));
        assert!(!reply.fully_heard(Duration::from_millis(3000) - Duration::from_millis(1)));
    }

    #[test]
    fn a_confirmed_mark_counts_even_if_the_clock_lags() {
        let (mut reply, ids) = reply();
        reply.confirm(ids[1]);
        assert_eq!(
            reply.heard_text(Duration::ZERO),
            "Sure, I can help, your order shipped."
        );
        assert_eq!(
            reply.full_text(),
            "Sure, I can help, your order shipped. It arrives Monday."
        );
    }

    #[test]
    fn a_segment_with_no_audio_yet_was_not_heard() {
        let mut reply = Reply::new();
        reply.push_segment("Hello there.");
        assert_eq!(reply.heard_text(Duration::from_secs(10)), "");
    }
}
