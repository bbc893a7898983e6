//! The transcript half of barge-in.
//!
//! `voxline-vad` decides from the voice whether the caller is talking over the bot
//! ([`voxline_vad::InterruptionPolicy`]); this rule adds what the words say: a
//! backchannel ("mm-hmm", "right") lets the bot go on, and a caller who has said fewer
//! than `min_words` may still be clearing their throat. Combine both with
//! [`voxline_vad::AllOf`].

use std::collections::HashSet;
use std::time::Duration;

use voxline_vad::{Decision, Evidence, InterruptionRule};

/// Backchannels that do not interrupt, in English (single words and phrases).
pub const ENGLISH_BACKCHANNELS: [&str; 22] = [
    "yeah", "yes", "yep", "yup", "ok", "okay", "right", "sure", "mhm", "mm-hmm", "mm", "hmm",
    "uh-huh", "uh huh", "aha", "ah", "oh", "i see", "got it", "alright", "cool", "great",
];

/// Interrupts on words, not on backchannels.
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptRule {
    /// Words the caller must have said before the bot stops (backchannel words do
    /// not count).
    pub min_words: usize,
    /// Phrases that never interrupt on their own (compared lower-case, without
    /// punctuation).
    backchannels: HashSet<String>,
    /// How much speech may go without any transcript before the rule stops waiting for
    /// one and lets the voice decide (a slow recogniser must not make the bot talk on).
    pub max_wait: Duration,
}

impl Default for TranscriptRule {
    /// One word, English backchannels, 0.8 s.
    fn default() -> Self {
        Self::new(1, ENGLISH_BACKCHANNELS, Duration::from_millis(800))
    }
}

impl TranscriptRule {
    /// A rule with its own backchannel list.
    pub fn new<I, S>(min_words: usize, backchannels: I, max_wait: Duration) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            min_words,
            backchannels: backchannels
                .into_iter()
                .map(|b| normalize(b.as_ref()).join(" "))
                .collect(),
            max_wait,
        }
    }

    /// Whether `text` is only backchannel.
    pub fn is_backchannel(&self, text: &str) -> bool {
        let words = normalize(text);
        !words.is_empty()
            && (self.backchannels.contains(&words.join(" "))
                || words.iter().all(|w| self.backchannels.contains(w.as_str())))
    }
}

impl InterruptionRule for TranscriptRule {
    fn decide(&self, evidence: &Evidence<'_>) -> Decision {
        let text = evidence.transcript.unwrap_or("");
        let words = normalize(text);
        if words.is_empty() {
            return if evidence.speech >= self.max_wait {
                Decision::Interrupt
            } else {
                Decision::Wait
            };
        }
        if self.is_backchannel(text) {
            return Decision::Ignore;
        }
        let meaningful = words
            .iter()
            .filter(|w| !self.backchannels.contains(w.as_str()))
            .count();
        if meaningful >= self.min_words.max(1) {
            Decision::Interrupt
        } else {
            Decision::Wait
        }
    }
}

/// Lower-case words without surrounding punctuation ("Mm-hmm." -> "mm-hmm").
fn normalize(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use voxline_vad::{AllOf, InterruptionPolicy};

    fn evidence(speech_ms: u64, transcript: Option<&str>) -> Evidence<'_> {
        Evidence {
            speech: Duration::from_millis(speech_ms),
            speech_dbfs: -20.0,
            transcript,
        }
    }

    #[test]
    fn backchannels_let_the_bot_go_on() {
        let rule = TranscriptRule::default();
        for text in [
            "Mm-hmm.",
            "yeah",
            "Okay, okay!",
            "uh huh",
            "I see",
            "Right. Yeah.",
        ] {
            assert_eq!(
                rule.decide(&evidence(600, Some(text))),
                Decision::Ignore,
                "{text}"
            );
        }
    }

    #[test]
    fn words_interrupt() {
        let rule = TranscriptRule::default();
        assert_eq!(
            rule.decide(&evidence(400, Some("Wait, that's wrong"))),
            Decision::Interrupt
        );
        assert_eq!(
            rule.decide(&evidence(400, Some("yeah but no"))),
            Decision::Interrupt,
            "a backchannel word followed by words"
        );
    }

    #[test]
    fn min_words_counts_only_meaningful_words() {
        let rule = TranscriptRule::new(2, ENGLISH_BACKCHANNELS, Duration::from_secs(1));
        assert_eq!(
            rule.decide(&evidence(400, Some("yeah stop"))),
            Decision::Wait
        );
        assert_eq!(
            rule.decide(&evidence(400, Some("yeah stop please"))),
            Decision::Interrupt
        );
    }

    #[test]
    fn no_transcript_waits_then_lets_the_voice_decide() {
        let rule = TranscriptRule::default();
        assert_eq!(rule.decide(&evidence(500, None)), Decision::Wait);
        assert_eq!(rule.decide(&evidence(500, Some("  "))), Decision::Wait);
        assert_eq!(rule.decide(&evidence(800, None)), Decision::Interrupt);
    }

    #[test]
    fn combined_with_the_voice_policy() {
        let rules = AllOf::new()
            .with(InterruptionPolicy::default())
            .with(TranscriptRule::default());
        assert_eq!(
            rules.decide(&evidence(100, Some("stop"))),
            Decision::Wait,
            "too short"
        );
        assert_eq!(
            rules.decide(&evidence(400, Some("stop"))),
            Decision::Interrupt
        );
        assert_eq!(rules.decide(&evidence(400, Some("mhm"))), Decision::Ignore);
    }
}
