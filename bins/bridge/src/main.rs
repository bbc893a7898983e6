//! Voxline bridge: phone calls joined to a realtime speech model.
//!
//! A carrier (or `callsim`) connects on any path (`/media`, `/smartflo/audio`,
//! `/ws`, `/twilio`, ...); each call gets its own Gemini Live or OpenAI Realtime
//! session in the call's audio format (`voxline_server::bridge`). `/health`,
//! `/ready`, `/live`, `/metrics` (server and bridge metrics) and `/events` come from
//! the server; `/webhook` takes carriers' status callbacks (JSON or form-encoded) onto
//! the event bus.
//!
//! Without an API key the bridge still starts (so health checks pass) and says so;
//! calls are then closed with a log line saying why.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use prometheus_client::registry::Registry;
use voxline_audio::AudioFormat;
use voxline_core::{RealtimeConfig, RealtimeModel};
use voxline_gemini::{API_KEY_ENVS, Gemini, GeminiConfig};
use voxline_openai::realtime::DEFAULT_REALTIME_MODEL;
use voxline_openai::{API_KEY_ENV, ApiConfig, OpenAiRealtime, OpenAiRealtimeConfig};
use voxline_server::bridge::{BridgeConfig, BridgeFactory, BridgeMetrics, UnavailableModel};
use voxline_server::logging::{self, LogFormat};
use voxline_server::{Server, ServerConfig, shutdown_signal, webhook_router};
use voxline_telephony::Dialect;

/// Voxline bridge: phone calls joined to a realtime speech model.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The realtime model provider.
    #[arg(long, env = "BRIDGE_MODEL", value_enum, default_value_t = Provider::Gemini)]
    model: Provider,
    /// The provider's model id (default: the adapter's, e.g.
    /// gemini-2.5-flash-native-audio-preview-12-2025 or gpt-realtime).
    #[arg(long, env = "BRIDGE_MODEL_NAME")]
    model_name: Option<String>,
    /// The API key; by default the provider's variable (GOOGLE_API_KEY or
    /// GEMINI_API_KEY, OPENAI_API_KEY).
    #[arg(long, env = "BRIDGE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The provider's base URL (a proxy, a region, or an emulator on loopback).
    #[arg(long, env = "BRIDGE_BASE_URL")]
    base_url: Option<String>,
    /// The system prompt.
    #[arg(
        long,
        env = "BRIDGE_INSTRUCTIONS",
        conflicts_with = "instructions_file"
    )]
    instructions: Option<String>,
    /// A file holding the system prompt.
    #[arg(long, env = "BRIDGE_INSTRUCTIONS_FILE")]
    instructions_file: Option<PathBuf>,
    /// The provider's voice name (Gemini: Charon, Puck, ...; OpenAI: marin, cedar, ...).
    #[arg(long, env = "BRIDGE_VOICE")]
    voice: Option<String>,
    /// Sampling temperature (Gemini; the OpenAI Realtime GA session has none).
    #[arg(long, env = "BRIDGE_TEMPERATURE")]
    temperature: Option<f32>,
    /// Address to listen on (default 0.0.0.0 on PORT, else 0.0.0.0:8080).
    #[arg(long, env = "BRIDGE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Port to listen on when --listen is not given.
    #[arg(long, env = "PORT")]
    port: Option<u16>,
    /// Most concurrent calls; more are refused with HTTP 503.
    #[arg(long, env = "BRIDGE_MAX_CALLS", default_value_t = 500)]
    max_calls: usize,
    /// Use this dialect for every call instead of detecting it.
    #[arg(long, env = "BRIDGE_DIALECT")]
    dialect: Option<Dialect>,
    /// Caller audio buffered (ms) while a call's session connects.
    #[arg(long, env = "BRIDGE_CONNECT_BUFFER_MS", default_value_t = 2000)]
    connect_buffer_ms: u64,
    /// Silence (ms) that ends a caller's turn for the response latency metric.
    #[arg(long, default_value_t = 500)]
    turn_stop_ms: u64,
    /// Close a call after this many seconds without a frame from the carrier.
    #[arg(long, default_value_t = 15)]
    idle_timeout_secs: u64,
    /// On SIGTERM or ctrl-c, how long live calls may take to finish.
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Log format: pretty or json.
    #[arg(long, env = "BRIDGE_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Provider {
    /// Gemini Live (BidiGenerateContent).
    Gemini,
    /// OpenAI Realtime (GA protocol).
    Openai,
}

/// The model adapter, and whether a key was found for it.
fn model(args: &Args) -> (Arc<dyn RealtimeModel>, bool) {
    let explicit = args.api_key.clone().filter(|k| !k.trim().is_empty());
    match args.model {
        Provider::Gemini => {
            let mut config = GeminiConfig::default();
            if let Some(key) = &explicit {
                config = config.api_key(key);
            }
            if let Some(url) = &args.base_url {
                config = config.base_url(url);
            }
            if let Some(name) = &args.model_name {
                config = config.model(name);
            }
            let has_key = explicit.is_some()
                || API_KEY_ENVS
                    .iter()
                    .any(|v| voxline_core::key_from(None, v).is_some());
            (Arc::new(Gemini::new(config)), has_key)
        }
        Provider::Openai => {
            let mut api = match &args.base_url {
                Some(url) => ApiConfig::new(url),
                None => ApiConfig::openai(),
            };
            if let Some(key) = &explicit {
                api = api.api_key(key);
            }
            let name = args
                .model_name
                .clone()
                .unwrap_or_else(|| DEFAULT_REALTIME_MODEL.to_owned());
            let has_key = explicit.is_some() || voxline_core::key_from(None, API_KEY_ENV).is_some();
            let config = OpenAiRealtimeConfig::with_api(api, name);
            (Arc::new(OpenAiRealtime::new(config)), has_key)
        }
    }
}

fn session(args: &Args) -> Result<RealtimeConfig> {
    // The formats are the call's own; this one is replaced per call.
    let mut session = RealtimeConfig::new(AudioFormat::MULAW_8K);
    let instructions = match (&args.instructions, &args.instructions_file) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(path)) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the prompt file {}", path.display()))?,
        ),
        (None, None) => None,
    };
    if let Some(text) = instructions.filter(|t| !t.trim().is_empty()) {
        session = session.instructions(text.trim());
    }
    if let Some(voice) = &args.voice {
        session = session.voice(voice);
    }
    session.temperature = args.temperature;
    Ok(session)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    logging::init(args.log_format, "info");

    let (mut model, has_key) = model(&args);
    let provider = model.name();
    if !has_key {
        let hint = match args.model {
            Provider::Gemini => "set --api-key, GOOGLE_API_KEY or GEMINI_API_KEY",
            Provider::Openai => "set --api-key or OPENAI_API_KEY",
        };
        tracing::warn!(
            provider,
            "no API key for the model ({hint}): the bridge runs, but calls will be closed"
        );
        model = Arc::new(UnavailableModel::new(
            provider,
            format!("no API key ({hint})"),
        ));
    }
    let mut bridge = BridgeConfig::new(session(&args)?);
    bridge.connect_buffer = Duration::from_millis(args.connect_buffer_ms);
    bridge.turn_stop = Duration::from_millis(args.turn_stop_ms);

    let mut registry = Registry::default();
    let metrics = BridgeMetrics::new(&mut registry);
    let config = ServerConfig {
        max_calls: args.max_calls,
        dialect: args.dialect,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        ..ServerConfig::default()
    };
    let server =
        Server::with_registry(config, BridgeFactory::new(model, bridge, metrics), registry);
    let server = server
        .clone()
        .routes(webhook_router("/webhook", server.bus()));

    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], args.port.unwrap_or(8080))));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        provider,
        "bridge listening: carriers on any path (/media, /smartflo/audio, /ws, /twilio), /webhook for callbacks, /health, /metrics, /events"
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("bridge stopped");
    Ok(())
}
