//! Which providers the settings name, and which of them can run (their keys are set).
//!
//! Each kind (speech-to-text, language model, text-to-speech) is looked up by name; a
//! provider whose key is missing is reported, not fatal: the server still starts and
//! refuses the calls it cannot serve. A fully offline provider set will register here
//! the same way.

use std::sync::Arc;

use voxline_agent::Providers;
use voxline_agent::brain::LlmBrain;
use voxline_core::{SpeechToText, TextToSpeech};

use crate::settings::Settings;

/// One provider's state at start-up, for the log and `GET /`.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Status {
    /// `stt`, `llm` or `tts`.
    pub(crate) kind: &'static str,
    /// The provider's name.
    pub(crate) provider: String,
    /// Ready to use.
    pub(crate) active: bool,
    /// Why not, when not.
    pub(crate) missing: Option<String>,
}

fn env_set(names: &[&str]) -> bool {
    names
        .iter()
        .any(|n| std::env::var(n).is_ok_and(|v| !v.trim().is_empty()))
}

/// The environment variables a provider's key (and region) come from; all must be set.
fn key_envs(provider: &str) -> &'static [&'static str] {
    match provider {
        "deepgram" => &[voxline_deepgram::API_KEY_ENV],
        "elevenlabs" => &[voxline_elevenlabs::API_KEY_ENV],
        "openai" => &[voxline_openai::API_KEY_ENV],
        "azure" => &[voxline_azure::KEY_ENV, voxline_azure::REGION_ENV],
        _ => &[],
    }
}

/// The statuses gathered while building.
#[derive(Default)]
struct Statuses(Vec<Status>);

impl Statuses {
    /// Records `provider` for `kind`: active with what `build` made, or missing with why
    /// (its key variables unset, an unknown name, or the constructor's error).
    fn provider<T>(
        &mut self,
        kind: &'static str,
        provider: &str,
        known: &[&str],
        build: impl FnOnce() -> Result<T, String>,
    ) -> Option<T> {
        let envs = key_envs(provider);
        let result = if !known.contains(&provider) {
            Err(format!("unknown provider ({})", known.join(", ")))
        } else if !envs.iter().all(|e| env_set(&[e])) {
            Err(format!("{} not set", envs.join(" and ")))
        } else {
            build()
        };
        let (value, missing) = match result {
            Ok(value) => (Some(value), None),
            Err(why) => (None, Some(why)),
        };
        self.0.push(Status {
            kind,
            provider: provider.to_owned(),
            active: missing.is_none(),
            missing,
        });
        value
    }
}

/// Builds the providers the settings name; the statuses say what is missing.
pub(crate) fn build(settings: &Settings) -> (Providers, Vec<Status>) {
    let mut statuses = Statuses::default();
    let stt_name = settings.stt_provider.as_str();
    let stt = statuses.provider("stt", stt_name, &["deepgram", "openai", "azure"], || {
        let stt: Arc<dyn SpeechToText> = match stt_name {
            "deepgram" => {
                let mut config = voxline_deepgram::DeepgramConfig::default();
                if let Some(model) = &settings.deepgram_model {
                    config = config.model(model.clone());
                }
                if let Some(url) = &settings.deepgram_base_url {
                    config = config.base_url(url.clone());
                }
                Arc::new(voxline_deepgram::Deepgram::new(config))
            }
            "openai" => Arc::new(
                voxline_openai::OpenAiTranscription::new(voxline_openai::TranscriptionConfig::new(
                    "gpt-4o-mini-transcribe",
                ))
                .map_err(|e| e.to_string())?,
            ),
            _ => Arc::new(
                voxline_azure::AzureStt::new(voxline_azure::AzureConfig::new())
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(stt)
    });

    // Any OpenAI-compatible backend: a base URL without a key is a local server.
    let llm_name = format!("openai-compatible ({})", settings.llm_model);
    let key = std::env::var(voxline_openai::API_KEY_ENV)
        .ok()
        .filter(|k| !k.trim().is_empty());
    let brain = if key.is_none() && settings.llm_base_url.is_none() {
        statuses.0.push(Status {
            kind: "llm",
            provider: llm_name,
            active: false,
            missing: Some(format!("{} not set", voxline_openai::API_KEY_ENV)),
        });
        None
    } else {
        let mut api = match &settings.llm_base_url {
            Some(url) => voxline_openai::ApiConfig::new(url.clone()),
            None => voxline_openai::ApiConfig::openai(),
        };
        if let Some(key) = key {
            api = api.api_key(key);
        }
        let built = voxline_openai::OpenAiChat::new(voxline_openai::ChatConfig::with_api(
            api,
            settings.llm_model.clone(),
        ));
        statuses.provider("llm", &llm_name, &[llm_name.as_str()], || {
            let chat = built.map_err(|e| e.to_string())?;
            let brain = LlmBrain::new(Box::new(chat))
                .tools(vec![voxline_agent::config::end_call_tool()])
                .max_tokens(300);
            Ok(Arc::new(brain) as Arc<dyn voxline_agent::brain::Brain>)
        })
    };

    let tts_name = settings.tts_provider.as_str();
    let tts = statuses.provider("tts", tts_name, &["elevenlabs", "openai", "azure"], || {
        let tts: Arc<dyn TextToSpeech> = match tts_name {
            "elevenlabs" => {
                let mut config = voxline_elevenlabs::ElevenLabsConfig::default();
                if let Some(voice) = &settings.elevenlabs_voice {
                    config = config.voice_id(voice.clone());
                }
                if let Some(model) = &settings.elevenlabs_model {
                    config = config.model_id(model.clone());
                }
                if let Some(url) = &settings.elevenlabs_base_url {
                    config = config.base_url(url.clone());
                }
                Arc::new(voxline_elevenlabs::ElevenLabs::new(config))
            }
            "openai" => Arc::new(
                voxline_openai::OpenAiSpeech::new(voxline_openai::SpeechConfig::new(
                    "gpt-4o-mini-tts",
                ))
                .map_err(|e| e.to_string())?,
            ),
            _ => Arc::new(
                voxline_azure::AzureTts::new(voxline_azure::AzureConfig::new())
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(tts)
    });

    (Providers { stt, brain, tts }, statuses.0)
}
