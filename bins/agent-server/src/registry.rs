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

/// Builds the providers the settings name; the statuses say what is missing.
pub(crate) fn build(settings: &Settings) -> (Providers, Vec<Status>) {
    let mut statuses = Vec::new();
    let mut status = |kind, provider: &str, missing: Option<String>| {
        statuses.push(Status {
            kind,
            provider: provider.to_owned(),
            active: missing.is_none(),
            missing,
        });
    };

    let stt: Option<Arc<dyn SpeechToText>> = match settings.stt_provider.as_str() {
        "deepgram" if env_set(&[voxline_deepgram::API_KEY_ENV]) => {
            let mut config = voxline_deepgram::DeepgramConfig::default();
            if let Some(model) = &settings.deepgram_model {
                config = config.model(model.clone());
            }
            if let Some(url) = &settings.deepgram_base_url {
                config = config.base_url(url.clone());
            }
            status("stt", "deepgram", None);
            Some(Arc::new(voxline_deepgram::Deepgram::new(config)))
        }
        "openai" if env_set(&[voxline_openai::API_KEY_ENV]) => {
            match voxline_openai::OpenAiTranscription::new(
                voxline_openai::TranscriptionConfig::new("gpt-4o-mini-transcribe"),
            ) {
                Ok(stt) => {
                    status("stt", "openai", None);
                    Some(Arc::new(stt))
                }
                Err(e) => {
                    status("stt", "openai", Some(e.to_string()));
                    None
                }
            }
        }
        "azure" if env_set(&[voxline_azure::KEY_ENV]) && env_set(&[voxline_azure::REGION_ENV]) => {
            match voxline_azure::AzureStt::new(voxline_azure::AzureConfig::new()) {
                Ok(stt) => {
                    status("stt", "azure", None);
                    Some(Arc::new(stt))
                }
                Err(e) => {
                    status("stt", "azure", Some(e.to_string()));
                    None
                }
            }
        }
        name @ ("deepgram" | "openai" | "azure") => {
            let env = match name {
                "deepgram" => voxline_deepgram::API_KEY_ENV.to_owned(),
                "openai" => voxline_openai::API_KEY_ENV.to_owned(),
                _ => format!(
                    "{} and {}",
                    voxline_azure::KEY_ENV,
                    voxline_azure::REGION_ENV
                ),
            };
            status("stt", name, Some(format!("{env} not set")));
            None
        }
        other => {
            status(
                "stt",
                other,
                Some("unknown provider (deepgram, openai, azure)".into()),
            );
            None
        }
    };

    let brain = {
        let mut api = match &settings.llm_base_url {
            Some(url) => voxline_openai::ApiConfig::new(url.clone()),
            None => voxline_openai::ApiConfig::openai(),
        };
        let key = std::env::var(voxline_openai::API_KEY_ENV)
            .ok()
            .filter(|k| !k.trim().is_empty());
        if let Some(key) = &key {
            api = api.api_key(key.clone());
        }
        let name = format!("openai-compatible ({})", settings.llm_model);
        if key.is_none() && settings.llm_base_url.is_none() {
            status(
                "llm",
                &name,
                Some(format!("{} not set", voxline_openai::API_KEY_ENV)),
            );
            None
        } else {
            match voxline_openai::OpenAiChat::new(voxline_openai::ChatConfig::with_api(
                api,
                settings.llm_model.clone(),
            )) {
                Ok(chat) => {
                    status("llm", &name, None);
                    let brain = LlmBrain::new(Box::new(chat))
                        .tools(vec![voxline_agent::config::end_call_tool()])
                        .max_tokens(300);
                    Some(Arc::new(brain) as Arc<dyn voxline_agent::brain::Brain>)
                }
                Err(e) => {
                    status("llm", &name, Some(e.to_string()));
                    None
                }
            }
        }
    };

    let tts: Option<Arc<dyn TextToSpeech>> = match settings.tts_provider.as_str() {
        "elevenlabs" if env_set(&[voxline_elevenlabs::API_KEY_ENV]) => {
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
            status("tts", "elevenlabs", None);
            Some(Arc::new(voxline_elevenlabs::ElevenLabs::new(config)))
        }
        "openai" if env_set(&[voxline_openai::API_KEY_ENV]) => {
            match voxline_openai::OpenAiSpeech::new(voxline_openai::SpeechConfig::new(
                "gpt-4o-mini-tts",
            )) {
                Ok(tts) => {
                    status("tts", "openai", None);
                    Some(Arc::new(tts))
                }
                Err(e) => {
                    status("tts", "openai", Some(e.to_string()));
                    None
                }
            }
        }
        "azure" if env_set(&[voxline_azure::KEY_ENV]) && env_set(&[voxline_azure::REGION_ENV]) => {
            match voxline_azure::AzureTts::new(voxline_azure::AzureConfig::new()) {
                Ok(tts) => {
                    status("tts", "azure", None);
                    Some(Arc::new(tts))
                }
                Err(e) => {
                    status("tts", "azure", Some(e.to_string()));
                    None
                }
            }
        }
        name @ ("elevenlabs" | "openai" | "azure") => {
            let env = match name {
                "elevenlabs" => voxline_elevenlabs::API_KEY_ENV.to_owned(),
                "openai" => voxline_openai::API_KEY_ENV.to_owned(),
                _ => format!(
                    "{} and {}",
                    voxline_azure::KEY_ENV,
                    voxline_azure::REGION_ENV
                ),
            };
            status("tts", name, Some(format!("{env} not set")));
            None
        }
        other => {
            status(
                "tts",
                other,
                Some("unknown provider (elevenlabs, openai, azure)".into()),
            );
            None
        }
    };

    (Providers { stt, brain, tts }, statuses)
}
