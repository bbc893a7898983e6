//! What the caller actually heard of a reply.
//!
//! A reply goes out as segments (the splitter's pieces), each followed by a mark. When
//! the caller talks over the bot, the reply is cut: the conversation history must hold
//! what the caller heard, not what the model wrote, or the model will believe it said
//! things the caller never heard. A segment counts as heard when the carrier confirmed
//! its mark, or when the playout clock passed its end (for carriers whose marks lag).

use std::collections::VecDeque;
use std::time::Duration;

use voxline_core::{ChatMessage, Role};

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

/// The conversation as the model sees it: the system prompt, then the turns, bounded.
///
/// Assistant turns enter as the caller heard them ([`History::push_reply`]). When the
/// history grows past its bound the oldest turns go first, and it always restarts at a
/// caller's message, so a tool result is never left without the call it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    system: Option<String>,
    messages: VecDeque<ChatMessage>,
    max_messages: usize,
}

impl History {
    /// A history with an optional system prompt, keeping at most `max_messages` turns
    /// (the system prompt aside).
    pub fn new(system: Option<String>, max_messages: usize) -> Self {
        Self {
            system,
            messages: VecDeque::new(),
            max_messages: max_messages.max(2),
        }
    }

    /// Adds a message.
    pub fn push(&mut self, message: ChatMessage) {
        self.messages.push_back(message);
        self.trim();
    }

    /// Adds what the caller said.
    pub fn push_user(&mut self, text: impl Into<String>) {
        self.push(ChatMessage::user(text));
    }

    /// Adds a reply as far as the caller heard it at `played`; a reply the caller heard
    /// none of adds nothing. Returns the text added.
    pub fn push_reply(&mut self, reply: &Reply, played: Duration) -> Option<String> {
        let heard = reply.heard_text(played);
        if heard.is_empty() {
            return None;
        }
        self.push(ChatMessage::assistant(heard.clone()));
        Some(heard)
    }

    /// The messages to send to a model: the system prompt first.
    pub fn messages(&self) -> Vec<ChatMessage> {
        self.system
            .iter()
            .map(|s| ChatMessage::system(s.clone()))
            .chain(self.messages.iter().cloned())
            .collect()
    }

    /// The turns, without the system prompt.
    pub fn turns(&self) -> impl Iterator<Item = &ChatMessage> {
        self.messages.iter()
    }

    fn trim(&mut self) {
        if self.messages.len() <= self.max_messages {
            return;
        }
        while self.messages.len() > self.max_messages {
            self.messages.pop_front();
        }
        // Restart at a caller's message: never a dangling reply or tool result.
        while self.messages.front().is_some_and(|m| m.role != Role::User) {
            self.messages.pop_front();
        }
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn a_cut_reply_enters_as_heard() {
        let mut history = History::new(Some("Be brief.".into()), 20);
        history.push_user("Where is my order?");
        let mut reply = Reply::new();
        let first = reply.push_segment("It shipped on Monday.");
        reply.add_audio(first, Duration::from_millis(1500));
        let second = reply.push_segment("It should arrive tomorrow.");
        reply.add_audio(second, Duration::from_millis(1500));
        assert_eq!(
            history
                .push_reply(&reply, Duration::from_millis(2000))
                .as_deref(),
            Some("It shipped on Monday.")
        );
        let messages = history.messages();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[0].role, Role::System);
        assert_eq!(messages[2].content, "It shipped on Monday.");
        assert_eq!(
            history.push_reply(&Reply::new(), Duration::from_secs(9)),
            None
        );
        assert_eq!(history.turns().count(), 2);
    }

    #[test]
    fn trimming_restarts_at_a_callers_message() {
        let mut history = History::new(None, 4);
        history.push_user("one");
        history.push(ChatMessage::assistant("a"));
        history.push_user("two");
        history.push(ChatMessage::assistant("b"));
        history.push(ChatMessage::tool_result("call_1", "{}"));
        let turns: Vec<&str> = history.turns().map(|m| m.content.as_str()).collect();
        assert_eq!(turns, ["two", "b", "{}"]);
        assert_eq!(history.turns().next().map(|m| m.role), Some(Role::User));
    }
}
