//! What the agent asks of the call it runs on, and what it reports.
//!
//! The agent does not know about sockets or carriers: the host (voxline-server's
//! handler, or a test) implements [`CallOutput`] over its call, and the agent plays
//! audio, queues marks, clears and hangs up through it.

use std::time::{Duration, Instant};

use voxline_core::{ProviderError, Role};

/// The call, as the agent drives it.
pub trait CallOutput {
    /// Queues audio (the call's format, any length) for paced playout.
    fn play(&mut self, audio: &[u8]);
    /// Queues a mark behind the audio queued so far; the carrier echoes it when played.
    fn mark(&mut self, name: String);
    /// Drops queued audio now and tells the carrier to drop what it buffered.
    fn clear(&mut self, reason: &str);
    /// Ends the call.
    fn hangup(&mut self);
    /// How much of the current playback the caller has heard.
    fn played(&self) -> Duration;
    /// Whether audio is queued or playing.
    fn is_playing(&self) -> bool;
    /// Whether the call has a text channel (a browser or app client); when it has
    /// none, [`text`](Self::text) is not called.
    fn has_text_channel(&self) -> bool {
        false
    }
    /// Sends text to the client: the caller's transcript (`Role::User`) or the bot's
    /// words (`Role::Assistant`).
    fn text(&mut self, role: Role, text: &str, is_final: bool) {
        let _ = (role, text, is_final);
    }
    /// Reports something for logs, metrics and the event bus.
    fn report(&mut self, event: AgentEvent);
}

/// What the agent reports to its host.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AgentEvent {
    /// A transcript: the caller's (final or interim) or the bot's (what was heard).
    Transcript {
        /// `User` or `Assistant`.
        role: Role,
        /// The words.
        text: String,
        /// Not an interim guess.
        is_final: bool,
    },
    /// A turn's latency marks, once its first audio frame went out (or its text).
    Turn(TurnMarks),
    /// A provider's time to first byte.
    Ttfb {
        /// The provider.
        provider: &'static str,
        /// The latency.
        latency: Duration,
    },
    /// The caller talked over the bot and it stopped.
    BargeIn {
        /// What the caller had heard of the reply.
        heard: String,
    },
    /// The modes changed.
    Modes(crate::config::Modes),
    /// A provider failed; `recovered` says whether the call was answered anyway
    /// (retry or fallback line).
    ProviderError {
        /// The failure.
        error: ProviderError,
        /// The fallback line was said (or the retry worked).
        recovered: bool,
    },
    /// The call's usage so far (reported when the call ends).
    Usage(UsageTotals),
}

/// Monotonic marks of one turn, from the end of the caller's speech to the first audio
/// frame sent. Differences between them are the stage latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TurnMarks {
    /// The VAD heard the caller stop (voice input only).
    pub speech_end: Option<Instant>,
    /// The recogniser's final transcript of the turn arrived.
    pub stt_final: Option<Instant>,
    /// The turn was judged over and the reply was asked for.
    pub end_of_turn: Instant,
    /// The brain's first text arrived.
    pub llm_first_token: Option<Instant>,
    /// The reply's first audio arrived from text-to-speech.
    pub tts_first_audio: Option<Instant>,
    /// The reply's first audio frame was sent to the caller.
    pub first_frame: Option<Instant>,
    /// The model's own time to first token, as its adapter measured it from sending
    /// the request (network and the service's work, none of Voxline's).
    pub llm_ttfb: Option<Duration>,
    /// The synthesiser's own time to first audio for the reply's first segment,
    /// measured the same way.
    pub tts_ttfb: Option<Duration>,
}

impl TurnMarks {
    /// Marks for a turn that ended now.
    pub fn new(end_of_turn: Instant) -> Self {
        Self {
            speech_end: None,
            stt_final: None,
            end_of_turn,
            llm_first_token: None,
            tts_first_audio: None,
            first_frame: None,
            llm_ttfb: None,
            tts_ttfb: None,
        }
    }

    /// From the caller's last speech (or the end of the turn) to the first frame sent.
    pub fn turn_latency(&self) -> Option<Duration> {
        let from = self.speech_end.unwrap_or(self.end_of_turn);
        Some(self.first_frame?.saturating_duration_since(from))
    }

    /// End of turn to the first frame, less the providers' own times to first byte
    /// (the model's, and the synthesiser's when the reply was spoken): what Voxline
    /// itself added. Building the request, reading the stream, cutting the first
    /// clause, decoding audio, every task hop and the playout all count here.
    pub fn framework_latency(&self) -> Option<Duration> {
        let total = self
            .first_frame?
            .saturating_duration_since(self.end_of_turn);
        let tts = match self.tts_first_audio {
            Some(_) => self.tts_ttfb?,
            None => Duration::ZERO,
        };
        Some(total.saturating_sub(self.llm_ttfb?).saturating_sub(tts))
    }
}

/// Usage totals of one call.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UsageTotals {
    /// Seconds of audio recognised.
    pub stt_seconds: f64,
    /// Characters synthesised.
    pub tts_characters: u64,
    /// Prompt tokens.
    pub llm_prompt_tokens: u64,
    /// Generated tokens.
    pub llm_completion_tokens: u64,
}

impl UsageTotals {
    /// Adds one usage record.
    pub fn add(&mut self, usage: &voxline_core::Usage) {
        match usage.kind {
            voxline_core::UsageKind::AudioSeconds(s) => self.stt_seconds += s,
            voxline_core::UsageKind::Characters(c) => self.tts_characters += c,
            voxline_core::UsageKind::Tokens { prompt, completion } => {
                self.llm_prompt_tokens += prompt;
                self.llm_completion_tokens += completion;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_framework_share_is_the_whole_less_the_providers_own_times() {
        let eot = Instant::now();
        let ms = Duration::from_millis;
        let mut marks = TurnMarks::new(eot);
        marks.llm_first_token = Some(eot + ms(30));
        marks.tts_first_audio = Some(eot + ms(80));
        marks.first_frame = Some(eot + ms(81));
        assert_eq!(marks.framework_latency(), None, "no provider times yet");
        marks.llm_ttfb = Some(ms(25));
        assert_eq!(
            marks.framework_latency(),
            None,
            "a spoken reply needs the synthesiser's time too"
        );
        marks.tts_ttfb = Some(ms(40));
        assert_eq!(marks.framework_latency(), Some(ms(81 - 25 - 40)));

        // A text reply has no synthesis to take off.
        let mut text = TurnMarks::new(eot);
        text.llm_first_token = Some(eot + ms(30));
        text.first_frame = Some(eot + ms(31));
        text.llm_ttfb = Some(ms(25));
        assert_eq!(text.framework_latency(), Some(ms(6)));
    }
}
