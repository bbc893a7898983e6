//! Settings from flags, the environment and an optional TOML file, in that order of
//! precedence (a flag beats its environment variable, which beats the file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Deserialize;
use voxline_server::logging::LogFormat;

/// Voxline's voice agent server: phone calls in every carrier dialect answered by
/// speech-to-text, a language model and text-to-speech.
#[derive(Debug, Parser, Default)]
#[command(version, about)]
pub(crate) struct Args {
    /// A TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "AGENT_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address to bind (the port comes from `--port`).
    #[arg(long, env = "HOST")]
    pub(crate) host: Option<String>,
    /// Port to listen on (default 7860).
    #[arg(long, env = "PORT")]
    pub(crate) port: Option<u16>,
    /// Most concurrent calls; more are refused with HTTP 503 (default 25).
    #[arg(long, env = "MAX_CONNECTIONS")]
    pub(crate) max_connections: Option<usize>,
    /// Seconds without a frame from a client before its connection is closed as stale
    /// (default 300).
    #[arg(long, env = "CONNECTION_TIMEOUT")]
    pub(crate) connection_timeout: Option<u64>,
    /// Log filter, e.g. `info` or `voxline_agent=debug,info` (default info).
    #[arg(long, env = "LOG_LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Log format: pretty or json.
    #[arg(long, env = "LOG_FORMAT")]
    pub(crate) log_format: Option<LogFormat>,
    /// Silence (seconds) after which the VAD ends the caller's turn (default 0.5).
    #[arg(long, env = "VAD_STOP_SECS")]
    pub(crate) vad_stop_secs: Option<f32>,
    /// Speech (seconds) that starts a turn (default 0.2).
    #[arg(long, env = "VAD_START_SECS")]
    pub(crate) vad_start_secs: Option<f32>,
    /// A file holding the system prompt.
    #[arg(long, env = "SYSTEM_PROMPT_FILE")]
    pub(crate) system_prompt_file: Option<PathBuf>,
    /// The system prompt itself (when no file is given).
    #[arg(long, env = "SYSTEM_PROMPT")]
    pub(crate) system_prompt: Option<String>,
    /// Said when a call starts; `{{name}}` takes the call's custom parameter `name`.
    #[arg(long, env = "GREETING")]
    pub(crate) greeting: Option<String>,
    /// Said when a provider fails during a call.
    #[arg(long, env = "FALLBACK_LINE")]
    pub(crate) fallback_line: Option<String>,
    /// Seconds of silence before the idle prompt (default 10).
    #[arg(long, env = "IDLE_SECS")]
    pub(crate) idle_secs: Option<u64>,
    /// Token required on `/ws/auth`.
    #[arg(long, env = "AUTH_TOKEN")]
    pub(crate) auth_token: Option<String>,
    /// Speech-to-text provider: deepgram, openai or azure (default deepgram).
    #[arg(long, env = "STT_PROVIDER")]
    pub(crate) stt_provider: Option<String>,
    /// Text-to-speech provider: elevenlabs, openai or azure (default elevenlabs).
    #[arg(long, env = "TTS_PROVIDER")]
    pub(crate) tts_provider: Option<String>,
    /// Language model (default gpt-4.1-mini).
    #[arg(long, env = "OPENAI_MODEL")]
    pub(crate) llm_model: Option<String>,
    /// Base URL of the OpenAI-compatible chat API (any compatible backend).
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub(crate) llm_base_url: Option<String>,
    /// Deepgram's base URL (a proxy, a region, or an emulator).
    #[arg(long, env = "DEEPGRAM_BASE_URL")]
    pub(crate) deepgram_base_url: Option<String>,
    /// ElevenLabs' base URL (a proxy, a region, or an emulator).
    #[arg(long, env = "ELEVENLABS_BASE_URL")]
    pub(crate) elevenlabs_base_url: Option<String>,
    /// Deepgram model (default nova-3).
    #[arg(long, env = "DEEPGRAM_MODEL")]
    pub(crate) deepgram_model: Option<String>,
    /// ElevenLabs voice id.
    #[arg(long, env = "ELEVENLABS_VOICE_ID")]
    pub(crate) elevenlabs_voice: Option<String>,
    /// ElevenLabs model id.
    #[arg(long, env = "ELEVENLABS_MODEL")]
    pub(crate) elevenlabs_model: Option<String>,
    /// Recognition language (BCP-47), e.g. en-US.
    #[arg(long, env = "LANGUAGE")]
    pub(crate) language: Option<String>,
}

/// The TOML file: the same settings as the flags, by their snake_case names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    host: Option<String>,
    port: Option<u16>,
    max_connections: Option<usize>,
    connection_timeout: Option<u64>,
    log_level: Option<String>,
    log_format: Option<String>,
    vad_stop_secs: Option<f32>,
    vad_start_secs: Option<f32>,
    system_prompt_file: Option<PathBuf>,
    system_prompt: Option<String>,
    greeting: Option<String>,
    fallback_line: Option<String>,
    idle_secs: Option<u64>,
    auth_token: Option<String>,
    stt_provider: Option<String>,
    tts_provider: Option<String>,
    llm_model: Option<String>,
    llm_base_url: Option<String>,
    deepgram_model: Option<String>,
    deepgram_base_url: Option<String>,
    elevenlabs_base_url: Option<String>,
    elevenlabs_voice: Option<String>,
    elevenlabs_model: Option<String>,
    language: Option<String>,
}

/// Settings resolved from every source.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) max_connections: usize,
    pub(crate) connection_timeout: Duration,
    pub(crate) log_level: String,
    pub(crate) log_format: LogFormat,
    pub(crate) vad_stop_secs: f32,
    pub(crate) vad_start_secs: f32,
    pub(crate) system_prompt: Option<String>,
    pub(crate) greeting: Option<String>,
    pub(crate) fallback_line: Option<String>,
    pub(crate) idle_secs: u64,
    pub(crate) auth_token: Option<String>,
    pub(crate) stt_provider: String,
    pub(crate) tts_provider: String,
    pub(crate) llm_model: String,
    pub(crate) llm_base_url: Option<String>,
    pub(crate) deepgram_model: Option<String>,
    pub(crate) deepgram_base_url: Option<String>,
    pub(crate) elevenlabs_base_url: Option<String>,
    pub(crate) elevenlabs_voice: Option<String>,
    pub(crate) elevenlabs_model: Option<String>,
    pub(crate) language: Option<String>,
}

impl Settings {
    /// Resolves `args` over the file they name (if any) over the defaults.
    pub(crate) fn resolve(args: Args) -> Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read the config file {}", path.display()))?;
                toml::from_str::<File>(&text)
                    .with_context(|| format!("bad config file {}", path.display()))?
            }
            None => File::default(),
        };
        let host = args.host.or(file.host).unwrap_or_else(|| "0.0.0.0".into());
        let port = args.port.or(file.port).unwrap_or(7860);
        let listen = format!("{host}:{port}")
            .parse()
            .with_context(|| format!("bad listen address {host}:{port}"))?;
        let log_format = match (args.log_format, file.log_format) {
            (Some(f), _) => f,
            (None, Some(f)) => f
                .parse()
                .map_err(|e| anyhow::anyhow!("bad log_format {f:?}: {e}"))?,
            (None, None) => LogFormat::Pretty,
        };
        let prompt_file = args.system_prompt_file.or(file.system_prompt_file);
        let system_prompt = match prompt_file {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read the system prompt {}", path.display()))?
                    .trim()
                    .to_owned(),
            ),
            None => args.system_prompt.or(file.system_prompt),
        };
        Ok(Self {
            listen,
            max_connections: args.max_connections.or(file.max_connections).unwrap_or(25),
            connection_timeout: Duration::from_secs(
                args.connection_timeout
                    .or(file.connection_timeout)
                    .unwrap_or(300),
            ),
            log_level: args
                .log_level
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            log_format,
            vad_stop_secs: args.vad_stop_secs.or(file.vad_stop_secs).unwrap_or(0.5),
            vad_start_secs: args.vad_start_secs.or(file.vad_start_secs).unwrap_or(0.2),
            system_prompt,
            greeting: args.greeting.or(file.greeting),
            fallback_line: args.fallback_line.or(file.fallback_line),
            idle_secs: args.idle_secs.or(file.idle_secs).unwrap_or(10),
            auth_token: args.auth_token.or(file.auth_token),
            stt_provider: args
                .stt_provider
                .or(file.stt_provider)
                .unwrap_or_else(|| "deepgram".into()),
            tts_provider: args
                .tts_provider
                .or(file.tts_provider)
                .unwrap_or_else(|| "elevenlabs".into()),
            llm_model: args
                .llm_model
                .or(file.llm_model)
                .unwrap_or_else(|| "gpt-4.1-mini".into()),
            llm_base_url: args.llm_base_url.or(file.llm_base_url),
            deepgram_model: args.deepgram_model.or(file.deepgram_model),
            deepgram_base_url: args.deepgram_base_url.or(file.deepgram_base_url),
            elevenlabs_base_url: args.elevenlabs_base_url.or(file.elevenlabs_base_url),
            elevenlabs_voice: args.elevenlabs_voice.or(file.elevenlabs_voice),
            elevenlabs_model: args.elevenlabs_model.or(file.elevenlabs_model),
            language: args.language.or(file.language),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let dir = tempfile::tempdir().expect("dir");
        let prompt = dir.path().join("prompt.txt");
        std::fs::write(&prompt, "You sell flats.\n").expect("write");
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "port = 9000\nmax_connections = 3\nsystem_prompt_file = {:?}\ngreeting = \"Hi {{{{name}}}}\"\n",
                prompt.display().to_string()
            ),
        )
        .expect("write");
        let settings = Settings::resolve(Args {
            config: Some(config.clone()),
            max_connections: Some(7),
            ..Args::default()
        })
        .expect("settings");
        assert_eq!(settings.listen.port(), 9000, "from the file");
        assert_eq!(settings.max_connections, 7, "the flag wins");
        assert_eq!(
            settings.connection_timeout,
            Duration::from_secs(300),
            "default"
        );
        assert_eq!(settings.system_prompt.as_deref(), Some("You sell flats."));
        assert_eq!(settings.greeting.as_deref(), Some("Hi {{name}}"));

        std::fs::write(&config, "prot = 1\n").expect("write");
        let error = Settings::resolve(Args {
            config: Some(config),
            ..Args::default()
        })
        .expect_err("unknown key");
        assert!(format!("{error:#}").contains("prot"), "{error:#}");
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let settings = Settings::resolve(Args::default()).expect("settings");
        assert_eq!(settings.listen.port(), 7860);
        assert_eq!(settings.max_connections, 25);
        assert_eq!(settings.connection_timeout, Duration::from_secs(300));
    }
}
