//! What an agent is made of: its settings, its providers, and the modes of a call.

use std::sync::Arc;
use std::time::Duration;

use voxline_core::{RetryPolicy, SpeechToText, TextToSpeech, ToolDefinition};
use voxline_vad::{InterruptionPolicy, TurnConfig, VadKind};

use crate::brain::Brain;
use crate::interruption::TranscriptRule;
use crate::text::SplitConfig;

/// The name of the tool that lets the model end the call.
pub const END_CALL_TOOL: &str = "end_call";

/// The `end_call` tool offered to the model: calling it hangs up once the reply has
/// played.
pub fn end_call_tool() -> ToolDefinition {
    ToolDefinition {
        name: END_CALL_TOOL.to_owned(),
        description: "End the phone call. Call it after saying goodbye, when the caller \
                      has what they need or asks to hang up."
            .to_owned(),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {
                "reason": { "type": "string", "description": "Why the call ends" }
            }
        }),
    }
}

pub use voxline_telephony::{ModeChange, Modes};

/// How an agent behaves on a call. [`AgentConfig::default`] suits a phone call.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Instructions for the model.
    pub system_prompt: Option<String>,
    /// Said when the call starts. `{{name}}` is replaced by the call's custom parameter
    /// `name` (any parameter works; a missing one leaves the text around it).
    pub greeting: Option<String>,
    /// Said after `idle_after` of silence from both sides.
    pub idle_prompt: Option<String>,
    /// Silence before the idle prompt.
    pub idle_after: Duration,
    /// Idle prompts before hanging up (the next silence ends the call).
    pub idle_prompts: u32,
    /// Said before hanging up after the last idle prompt.
    pub goodbye: Option<String>,
    /// Said when a provider fails and retrying did not help; synthesised at the start
    /// of the call where possible, so it plays even when speech synthesis is down.
    pub fallback_line: String,
    /// Modes a call starts in (a call's custom parameters may change them).
    pub modes: Modes,
    /// The turn detector's settings (`stop_secs`: silence that ends the caller's turn
    /// for the VAD; `start_secs`: speech that starts one).
    pub turn: TurnConfig,
    /// The voice activity detector.
    pub vad: VadKind,
    /// How long after the VAD's stop to wait for the recogniser's final transcript.
    pub final_wait: Duration,
    /// When the recogniser says the utterance ended and the VAD has heard this much
    /// silence since the caller's last voiced frame, the turn ends at once instead of
    /// at the VAD's own stop (`turn.stop_secs`).
    pub recogniser_pause: Duration,
    /// The voice half of barge-in.
    pub interruption: InterruptionPolicy,
    /// The transcript half of barge-in.
    pub transcript_rule: TranscriptRule,
    /// How replies are cut for speech synthesis.
    pub split: SplitConfig,
    /// Turns kept in the history (the system prompt aside).
    pub max_history: usize,
    /// How provider failures are retried.
    pub retry: RetryPolicy,
    /// The recogniser's language (BCP-47), or its default.
    pub language: Option<String>,
    /// The synthesiser's voice, or its default.
    pub voice: Option<String>,
    /// Pause after the last key press before the digits go to the model.
    pub dtmf_wait: Duration,
    /// Caller audio kept while the recogniser connects; older audio is dropped.
    pub connect_buffer: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            system_prompt: None,
            greeting: None,
            idle_prompt: Some("Are you still there?".to_owned()),
            idle_after: Duration::from_secs(10),
            idle_prompts: 2,
            goodbye: Some("Goodbye.".to_owned()),
            fallback_line: "Sorry, I'm having trouble right now. Could you say that again?"
                .to_owned(),
            modes: Modes::default(),
            turn: TurnConfig {
                stop_secs: 0.5,
                ..TurnConfig::default()
            },
            vad: VadKind::default(),
            final_wait: Duration::from_millis(600),
            recogniser_pause: Duration::from_millis(200),
            interruption: InterruptionPolicy::default(),
            transcript_rule: TranscriptRule::default(),
            split: SplitConfig::default(),
            max_history: 64,
            retry: RetryPolicy::default(),
            language: None,
            voice: None,
            dtmf_wait: Duration::from_millis(1500),
            connect_buffer: Duration::from_secs(5),
        }
    }
}

/// The providers an agent uses. Any may be missing: a call that needs a missing one
/// is refused with a clear reason ([`Providers::missing_for`]).
#[derive(Clone, Default)]
pub struct Providers {
    /// Speech-to-text, for voice input.
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// What decides the replies.
    pub brain: Option<Arc<dyn Brain>>,
    /// Text-to-speech, for voice output.
    pub tts: Option<Arc<dyn TextToSpeech>>,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("stt", &self.stt.as_ref().map(|p| p.name()))
            .field("brain", &self.brain.as_ref().map(|b| b.name().to_owned()))
            .field("tts", &self.tts.as_ref().map(|p| p.name()))
            .finish()
    }
}

impl Providers {
    /// What `modes` need that is not configured (empty when the call can be served).
    pub fn missing_for(&self, modes: Modes) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.brain.is_none() {
            missing.push("language model");
        }
        if modes.voice_input && self.stt.is_none() {
            missing.push("speech-to-text");
        }
        if modes.voice_output && self.tts.is_none() {
            missing.push("text-to-speech");
        }
        missing
    }
}

/// Fills `{{key}}` placeholders from `params` (strings as they are, other values as
/// JSON); unknown keys become empty, and the spaces around them are tidied.
pub fn render_template(
    template: &str,
    params: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let key = after[..end].trim();
        match params.get(key) {
            Some(serde_json::Value::String(s)) => out.push_str(s),
            Some(serde_json::Value::Null) | None => {}
            Some(other) => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    // "Hello {{name}}, ..." with no name: "Hello , ..." -> "Hello, ...".
    let mut tidy = out.split_whitespace().collect::<Vec<_>>().join(" ");
    for p in [",", ".", "!", "?"] {
        tidy = tidy.replace(&format!(" {p}"), p);
    }
    tidy
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(json: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        json.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn templates_fill_parameters_and_tidy_missing_ones() {
        let p = params(serde_json::json!({"name": "Asha", "count": 3}));
        assert_eq!(
            render_template("Hello {{ name }}, you have {{count}} offers.", &p),
            "Hello Asha, you have 3 offers."
        );
        assert_eq!(
            render_template("Hello {{name}}, welcome!", &params(serde_json::json!({}))),
            "Hello, welcome!"
        );
        assert_eq!(render_template("Broken {{name", &p), "Broken {{name");
    }

    #[test]
    fn modes_come_from_parameters_and_changes() {
        let p = params(serde_json::json!({"voice_output": "false", "text_input": true}));
        let modes = Modes::PHONE.from_params(&p);
        assert_eq!(
            modes,
            Modes {
                voice_input: true,
                text_input: true,
                voice_output: false,
                text_output: false
            }
        );
        let changed = modes.apply(ModeChange {
            voice_output: Some(true),
            ..ModeChange::default()
        });
        assert!(changed.voice_output && changed.text_input);
    }

    #[test]
    fn missing_providers_are_named_for_the_modes_that_need_them() {
        let none = Providers::default();
        assert_eq!(
            none.missing_for(Modes::PHONE),
            ["language model", "speech-to-text", "text-to-speech"]
        );
        let text_only = Modes {
            voice_input: false,
            text_input: true,
            voice_output: false,
            text_output: true,
        };
        assert_eq!(none.missing_for(text_only), ["language model"]);
    }
}
