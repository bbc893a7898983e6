//! When the caller's turn is over: the local VAD and the recogniser combined.
//!
//! The VAD ([`voxline_vad::TurnDetector`]) hears silence quickly but cannot tell a
//! pause for thought from the end of a sentence; the recogniser knows the words but its
//! final transcript lags the audio. [`TurnTaker`] ends the turn at the first reliable
//! sign, and never later than it must:
//!
//! - the recogniser says the utterance ended (`end_of_utterance`, `UtteranceEnd`) and
//!   the caller is not speaking: end now;
//! - the VAD heard the caller stop and a final transcript arrives after that: end now;
//! - the VAD heard the caller stop but no final comes: end at `final_wait` after the
//!   stop with the best transcript there is (the finals so far plus the last interim).
//!
//! Speech resuming before the end cancels a pending end. A turn with no words at all
//! (a cough, line noise) ends nothing. All times are passed in, so tests need no clock.

use std::time::{Duration, Instant};

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The recogniser said the utterance ended.
    Recogniser,
    /// The VAD heard silence and a final transcript followed.
    SilenceAndFinal,
    /// The VAD heard silence and no final came in time.
    SilenceTimeout,
}

/// The caller's finished turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndOfTurn {
    /// What the caller said.
    pub text: String,
    /// Why the turn ended now.
    pub reason: EndReason,
    /// When the VAD heard the caller stop, if it did (for the turn-latency metric).
    pub speech_ended: Option<Instant>,
}

/// What the turn-taker is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TurnInput {
    /// The VAD heard speech start.
    SpeechStarted,
    /// The VAD heard the speech stop.
    SpeechStopped,
    /// A transcript from the recogniser.
    Transcript {
        /// Its text.
        text: String,
        /// Whether it is final.
        is_final: bool,
        /// Whether the recogniser judged the utterance finished.
        end_of_utterance: bool,
    },
    /// The recogniser said the utterance ended (after its last final).
    UtteranceEnd,
}

/// Combines VAD and recogniser events into end-of-turn decisions.
#[derive(Debug, Clone)]
pub struct TurnTaker {
    /// How long after the VAD's stop to wait for a final transcript.
    final_wait: Duration,
    finals: Vec<String>,
    interim: String,
    speaking: bool,
    stopped_at: Option<Instant>,
    /// The recogniser said the utterance ended while the VAD still heard the caller
    /// (its stop comes `stop_secs` after the voice): the VAD's stop ends the turn.
    recogniser_ended: bool,
}

impl TurnTaker {
    /// A turn-taker that waits at most `final_wait` for a final after the VAD's stop.
    pub fn new(final_wait: Duration) -> Self {
        Self {
            final_wait,
            finals: Vec::new(),
            interim: String::new(),
            speaking: false,
            stopped_at: None,
            recogniser_ended: false,
        }
    }

    /// Takes one input at `now`; returns the end of the turn if it is over.
    pub fn on_input(&mut self, input: TurnInput, now: Instant) -> Option<EndOfTurn> {
        match input {
            TurnInput::SpeechStarted => {
                self.speaking = true;
                self.stopped_at = None;
                self.recogniser_ended = false;
                None
            }
            TurnInput::SpeechStopped => {
                self.speaking = false;
                self.stopped_at = Some(now);
                if std::mem::take(&mut self.recogniser_ended) {
                    self.end(EndReason::Recogniser)
                } else {
                    None
                }
            }
            TurnInput::Transcript {
                text,
                is_final,
                end_of_utterance,
            } => {
                let text = text.trim();
                if is_final {
                    if !text.is_empty() {
                        self.finals.push(text.to_owned());
                    }
                    self.interim.clear();
                } else {
                    text.clone_into(&mut self.interim);
                }
                if self.speaking {
                    // Words after the recogniser's end: the caller went on.
                    self.recogniser_ended = end_of_utterance;
                    None
                } else if end_of_utterance {
                    self.end(EndReason::Recogniser)
                } else if is_final && self.stopped_at.is_some() {
                    self.end(EndReason::SilenceAndFinal)
                } else {
                    None
                }
            }
            TurnInput::UtteranceEnd if !self.speaking => self.end(EndReason::Recogniser),
            TurnInput::UtteranceEnd => {
                self.recogniser_ended = !self.text().is_empty();
                None
            }
        }
    }

    /// Whether the recogniser said the utterance ended while the VAD still heard the
    /// caller: the turn ends at the VAD's stop (or earlier, if the host sees the caller
    /// has paused and passes a `SpeechStopped` itself).
    pub fn recogniser_ended(&self) -> bool {
        self.recogniser_ended
    }

    /// When [`on_timeout`](Self::on_timeout) must be called, if a silence is pending.
    pub fn deadline(&self) -> Option<Instant> {
        self.stopped_at.map(|at| at + self.final_wait)
    }

    /// The deadline passed: end the turn with the best transcript there is, or drop a
    /// turn that had no words.
    pub fn on_timeout(&mut self, now: Instant) -> Option<EndOfTurn> {
        let deadline = self.deadline()?;
        if now < deadline {
            return None;
        }
        if self.text().is_empty() {
            self.reset();
            return None;
        }
        self.end(EndReason::SilenceTimeout)
    }

    /// Forgets the turn in progress (the call moved on: a greeting, a hang-up).
    pub fn reset(&mut self) {
        self.recogniser_ended = false;
        self.finals.clear();
        self.interim.clear();
        self.stopped_at = None;
    }

    /// What the caller has said so far this turn (finals, then the latest interim).
    pub fn text(&self) -> String {
        let mut parts: Vec<&str> = self.finals.iter().map(String::as_str).collect();
        if !self.interim.is_empty() {
            parts.push(&self.interim);
        }
        parts.join(" ")
    }

    fn end(&mut self, reason: EndReason) -> Option<EndOfTurn> {
        let text = self.text();
        if text.is_empty() {
            return None;
        }
        let speech_ended = self.stopped_at;
        self.reset();
        Some(EndOfTurn {
            text,
            reason,
            speech_ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript(text: &str, is_final: bool, end_of_utterance: bool) -> TurnInput {
        TurnInput::Transcript {
            text: text.to_owned(),
            is_final,
            end_of_utterance,
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn the_recognisers_end_of_utterance_ends_the_turn_at_once() {
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(1500));
        assert_eq!(turn.on_input(TurnInput::SpeechStarted, t0), None);
        assert_eq!(
            turn.on_input(transcript("I want", false, false), ms(t0, 300)),
            None
        );
        assert_eq!(turn.on_input(TurnInput::SpeechStopped, ms(t0, 900)), None);
        let end = turn
            .on_input(transcript("I want a refund.", true, true), ms(t0, 1100))
            .expect("ended");
        assert_eq!(end.text, "I want a refund.");
        assert_eq!(end.reason, EndReason::Recogniser);
        assert_eq!(end.speech_ended, Some(ms(t0, 900)));
        assert_eq!(turn.deadline(), None, "nothing pending after the end");
    }

    #[test]
    fn a_final_after_the_vad_stop_ends_the_turn_without_waiting() {
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(1500));
        turn.on_input(TurnInput::SpeechStarted, t0);
        assert_eq!(
            turn.on_input(transcript("Hello", true, false), ms(t0, 400)),
            None,
            "still speaking"
        );
        turn.on_input(TurnInput::SpeechStopped, ms(t0, 800));
        let end = turn
            .on_input(transcript("there.", true, false), ms(t0, 1000))
            .expect("ended");
        assert_eq!(end.text, "Hello there.");
        assert_eq!(end.reason, EndReason::SilenceAndFinal);
    }

    #[test]
    fn without_a_final_the_turn_ends_at_the_deadline_with_the_interim() {
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(1000));
        turn.on_input(TurnInput::SpeechStarted, t0);
        turn.on_input(transcript("call me tomor", false, false), ms(t0, 500));
        turn.on_input(TurnInput::SpeechStopped, ms(t0, 900));
        assert_eq!(turn.deadline(), Some(ms(t0, 1900)));
        assert_eq!(turn.on_timeout(ms(t0, 1899)), None, "not yet");
        let end = turn.on_timeout(ms(t0, 1900)).expect("ended");
        assert_eq!(end.text, "call me tomor");
        assert_eq!(end.reason, EndReason::SilenceTimeout);
    }

    #[test]
    fn speech_resuming_cancels_the_pending_end() {
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(1000));
        turn.on_input(TurnInput::SpeechStarted, t0);
        turn.on_input(transcript("My number is", true, false), ms(t0, 600));
        turn.on_input(TurnInput::SpeechStopped, ms(t0, 700));
        turn.on_input(TurnInput::SpeechStarted, ms(t0, 1200));
        assert_eq!(turn.deadline(), None);
        assert_eq!(turn.on_timeout(ms(t0, 5000)), None);
        assert_eq!(
            turn.on_input(TurnInput::UtteranceEnd, ms(t0, 1300)),
            None,
            "speaking"
        );
        turn.on_input(transcript("five five five.", true, false), ms(t0, 2000));
        turn.on_input(TurnInput::SpeechStopped, ms(t0, 2100));
        let end = turn
            .on_input(TurnInput::UtteranceEnd, ms(t0, 2300))
            .expect("ended");
        assert_eq!(end.text, "My number is five five five.");
    }

    #[test]
    fn the_recognisers_end_before_the_vads_stop_ends_the_turn_at_the_stop() {
        // The recogniser's endpointing (300 ms) is quicker than the VAD's stop (0.8 s):
        // the turn ends at the VAD's stop, with no timer on top.
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(1500));
        turn.on_input(TurnInput::SpeechStarted, t0);
        assert_eq!(
            turn.on_input(transcript("Two bedrooms.", true, true), ms(t0, 1300)),
            None,
            "the VAD still hears the caller"
        );
        let end = turn
            .on_input(TurnInput::SpeechStopped, ms(t0, 1800))
            .expect("ended at the stop");
        assert_eq!(end.text, "Two bedrooms.");
        assert_eq!(end.reason, EndReason::Recogniser);
        // But words after the recogniser's end mean the caller went on.
        turn.on_input(TurnInput::SpeechStarted, ms(t0, 3000));
        turn.on_input(transcript("And a", true, true), ms(t0, 3500));
        turn.on_input(transcript("and a garden", false, false), ms(t0, 3700));
        assert_eq!(turn.on_input(TurnInput::SpeechStopped, ms(t0, 4200)), None);
    }

    #[test]
    fn a_turn_without_words_ends_nothing() {
        let t0 = Instant::now();
        let mut turn = TurnTaker::new(Duration::from_millis(500));
        turn.on_input(TurnInput::SpeechStarted, t0);
        turn.on_input(TurnInput::SpeechStopped, ms(t0, 200));
        assert_eq!(turn.on_input(transcript("", true, true), ms(t0, 300)), None);
        assert_eq!(turn.on_timeout(ms(t0, 700)), None);
        assert_eq!(turn.deadline(), None, "the noise is forgotten");
    }
}
