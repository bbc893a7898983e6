//! Barge-in: when the caller's speech over the bot counts as an interruption.
//!
//! Deciding to interrupt takes two kinds of evidence: the voice half (has the caller
//! been speaking long enough, loudly enough?) and the transcript half (is it words, or
//! a backchannel like "mm-hmm" that should not stop the bot?). This module holds the
//! voice half, [`InterruptionPolicy`], and the seam both halves share: an
//! [`InterruptionRule`] judges [`Evidence`], and [`AllOf`] combines rules, so the
//! agent layer adds its transcript rules without this crate knowing about text.

use std::fmt;
use std::time::Duration;

use crate::turn::VoiceActivity;

/// What is known about the caller's speech since it started over the bot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence<'a> {
    /// Voiced speech since its onset.
    pub speech: Duration,
    /// Mean level of that speech, in dBFS.
    pub speech_dbfs: f32,
    /// What the recogniser has heard of it so far, when a transcript rule needs it.
    pub transcript: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    /// Evidence from a [`crate::TurnDetector`]'s activity and, if any, a transcript.
    pub fn new(activity: &VoiceActivity, transcript: Option<&'a str>) -> Self {
        Self {
            speech: activity.speech,
            speech_dbfs: activity.speech_dbfs,
            transcript,
        }
    }
}

/// A rule's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Stop the bot now.
    Interrupt,
    /// Not yet: keep listening (more speech or transcript may come).
    Wait,
    /// This speech is not an interruption at all (a backchannel, say).
    Ignore,
}

/// One rule about interruptions. Object-safe so rule sets can be built from
/// configuration.
pub trait InterruptionRule: Send + Sync + fmt::Debug {
    /// Judges the evidence so far.
    fn decide(&self, evidence: &Evidence<'_>) -> Decision;
}

/// The voice half of barge-in: the caller interrupts after `min_speech` of voiced
/// speech whose mean level reaches `min_dbfs` (frames below the turn detector's own
/// gate never count as speech at all).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InterruptionPolicy {
    /// Least voiced speech that interrupts.
    pub min_speech: Duration,
    /// Least mean level of that speech, in dBFS; raise it to ignore distant talkers.
    pub min_dbfs: f32,
}

impl Default for InterruptionPolicy {
    /// 0.3 s of speech at -50 dBFS or louder.
    fn default() -> Self {
        Self {
            min_speech: Duration::from_millis(300),
            min_dbfs: -50.0,
        }
    }
}

impl InterruptionRule for InterruptionPolicy {
    fn decide(&self, evidence: &Evidence<'_>) -> Decision {
        if evidence.speech >= self.min_speech && evidence.speech_dbfs >= self.min_dbfs {
            Decision::Interrupt
        } else {
            Decision::Wait
        }
    }
}

/// Interrupts only when every rule says so; any `Ignore` wins over everything.
#[derive(Debug, Default)]
pub struct AllOf {
    rules: Vec<Box<dyn InterruptionRule>>,
}

impl AllOf {
    /// An empty set (which interrupts on any evidence).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule.
    #[must_use]
    pub fn with(mut self, rule: impl InterruptionRule + 'static) -> Self {
        self.rules.push(Box::new(rule));
        self
    }
}

impl InterruptionRule for AllOf {
    fn decide(&self, evidence: &Evidence<'_>) -> Decision {
        let mut decision = Decision::Interrupt;
        for rule in &self.rules {
            match rule.decide(evidence) {
                Decision::Ignore => return Decision::Ignore,
                Decision::Wait => decision = Decision::Wait,
                Decision::Interrupt => {}
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(ms: u64, dbfs: f32) -> Evidence<'static> {
        Evidence {
            speech: Duration::from_millis(ms),
            speech_dbfs: dbfs,
            transcript: None,
        }
    }

    #[test]
    fn policy_needs_enough_loud_speech() {
        let policy = InterruptionPolicy::default();
        assert_eq!(policy.decide(&evidence(290, -20.0)), Decision::Wait);
        assert_eq!(policy.decide(&evidence(300, -20.0)), Decision::Interrupt);
        let strict = InterruptionPolicy {
            min_dbfs: -30.0,
            ..policy
        };
        assert_eq!(strict.decide(&evidence(1000, -35.0)), Decision::Wait);
    }

    /// What the agent layer will add: a transcript rule.
    #[derive(Debug)]
    struct NotBackchannel;

    impl InterruptionRule for NotBackchannel {
        fn decide(&self, evidence: &Evidence<'_>) -> Decision {
            match evidence.transcript.map(str::trim) {
                None | Some("") => Decision::Wait,
                Some("mm-hmm" | "yeah" | "okay") => Decision::Ignore,
                Some(_) => Decision::Interrupt,
            }
        }
    }

    #[test]
    fn rules_combine_through_the_seam() {
        let rules = AllOf::new()
            .with(InterruptionPolicy::default())
            .with(NotBackchannel);
        let mut e = evidence(500, -20.0);
        assert_eq!(rules.decide(&e), Decision::Wait, "no transcript yet");
        e.transcript = Some("mm-hmm");
        assert_eq!(rules.decide(&e), Decision::Ignore);
        e.transcript = Some("wait, that's wrong");
        assert_eq!(rules.decide(&e), Decision::Interrupt);
        e.speech = Duration::from_millis(100);
        assert_eq!(
            rules.decide(&e),
            Decision::Wait,
            "too short for the voice half"
        );
        assert_eq!(AllOf::new().decide(&e), Decision::Interrupt);
    }
}
