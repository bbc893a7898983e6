//! An agent server on loopback wired to the provider emulators: Deepgram (speech to
//! text), the OpenAI chat emulator (the brain) and ElevenLabs (speech), each scripted by
//! the test.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::registry::Registry;
use voxline_agent::brain::LlmBrain;
use voxline_agent::{AgentConfig, AgentSetup, Providers};
use voxline_deepgram::{Deepgram, DeepgramConfig};
use voxline_elevenlabs::{ElevenLabs, ElevenLabsConfig};
use voxline_openai::{ApiConfig, ChatConfig, OpenAiChat};
use voxline_server::ServerConfig;
use voxline_testkit::emulators::deepgram::{self, DeepgramEmulator, Line};
use voxline_testkit::emulators::elevenlabs::{ElevenLabsEmulator, ElevenLabsOptions};
use voxline_testkit::emulators::openai::{self, ChatScript, OpenAiEmulator};

use super::TestServer;

/// Everything a test call talks to.
pub struct Stack {
    pub server: TestServer,
    pub stt: DeepgramEmulator,
    pub llm: OpenAiEmulator,
    pub tts: ElevenLabsEmulator,
}

/// What to script.
pub struct Script {
    /// What the recogniser hears, in seconds of the call's audio.
    pub lines: Vec<Line>,
    /// The brain's replies, in order (the last repeats).
    pub replies: Vec<ChatScript>,
    /// The agent's settings.
    pub config: AgentConfig,
    /// Chat emulator settings on top of the replies (faults).
    pub llm: openai::Config,
    /// ElevenLabs emulator options.
    pub tts: ElevenLabsOptions,
    /// Server settings.
    pub server: ServerConfig,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            lines: Vec::new(),
            replies: vec![ChatScript::text([
                "Sure, ",
                "I can help with that. ",
                "What is your budget?",
            ])],
            config: AgentConfig::default(),
            llm: openai::Config::default(),
            tts: ElevenLabsOptions::default(),
            server: ServerConfig::default(),
        }
    }
}

impl Stack {
    pub async fn start(script: Script) -> Self {
        voxline_core::install_tls();
        let stt = DeepgramEmulator::start(deepgram::Options::with_script(script.lines)).await;
        let llm = OpenAiEmulator::start(openai::Config {
            chat: script.replies,
            ..script.llm
        })
        .await;
        let tts_key = script.tts.api_key.clone();
        let tts = ElevenLabsEmulator::start(script.tts).await;
        let providers = Providers {
            stt: Some(Arc::new(Deepgram::new(
                DeepgramConfig::default()
                    .api_key(deepgram::Options::default().api_key)
                    .base_url(stt.ws_url()),
            ))),
            brain: Some(Arc::new(
                LlmBrain::new(Box::new(
                    OpenAiChat::new(ChatConfig::with_api(
                        ApiConfig::new(llm.base_url()).api_key(openai::API_KEY),
                        "gpt-4.1-mini",
                    ))
                    .expect("chat"),
                ))
                .tools(vec![voxline_agent::config::end_call_tool()]),
            )),
            tts: Some(Arc::new(ElevenLabs::new(
                ElevenLabsConfig::default()
                    .api_key(tts_key)
                    .base_url(tts.http_url()),
            ))),
        };
        let setup = AgentSetup {
            config: Arc::new(script.config),
            providers,
        };
        let server = TestServer::start_with(script.server, |config| {
            voxline_server::agent::agent_server(config, setup, Registry::default())
        })
        .await;
        Self {
            server,
            stt,
            llm,
            tts,
        }
    }

    /// The chat requests' message lists, as JSON.
    pub fn chat_messages(&self) -> Vec<Vec<serde_json::Value>> {
        self.llm
            .requests_to("/v1/chat/completions")
            .iter()
            .map(|r| {
                r.body
                    .get("messages")
                    .and_then(|m| m.as_array())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect()
    }
}

/// A generous limit for waits that only guard against hangs.
pub const LONG: Duration = Duration::from_secs(15);
