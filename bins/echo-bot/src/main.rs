//! Voxline's conversational echo test bot.
//!
//! A carrier (or `callsim`) connects on any path (`/`, `/media`, `/ws`,
//! `/smartflo/audio`, `/ws/stream/{call_sid}`, `/twilio`, ...); the dialect is found
//! from the URL or the first frames. By default the bot listens, waits for the caller
//! to stop talking (`--silence-ms`), and plays the turn back; talking over the replay
//! stops it at once. `--immediate-echo` sends every frame straight back instead.
//! Health, readiness and Prometheus metrics are served beside the calls, and `/events`
//! streams every call event as JSON.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use voxline_server::echo::{ConversationConfig, EchoFactory, EchoMode};
use voxline_server::logging::{self, LogFormat};
use voxline_server::{Server, ServerConfig, shutdown_signal};
use voxline_telephony::Dialect;
use voxline_vad::{VadKind, WebRtcMode};

/// Voxline's conversational echo test bot.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ECHO_BOT_LISTEN", default_value = "0.0.0.0:8007")]
    listen: SocketAddr,
    /// Silence (ms) that ends a caller's turn before it is played back.
    #[arg(long, env = "ECHO_BOT_SILENCE_MS", default_value_t = 2000)]
    silence_ms: u64,
    /// Echo every media frame back at once instead of waiting for turns.
    #[arg(long, env = "ECHO_BOT_IMMEDIATE_ECHO")]
    immediate_echo: bool,
    /// Longest turn buffered for playback, in seconds.
    #[arg(long, default_value_t = 30)]
    max_turn_secs: u64,
    /// Voice activity detector for turn detection.
    #[arg(long, value_enum, default_value_t = VadChoice::Webrtc)]
    vad: VadChoice,
    /// Silero model file (`cargo xtask models` fetches it), with `--vad silero`.
    #[arg(long)]
    vad_model: Option<std::path::PathBuf>,
    /// Most concurrent calls; more are refused with HTTP 503.
    #[arg(long, env = "ECHO_BOT_MAX_CALLS", default_value_t = 1000)]
    max_calls: usize,
    /// Use this dialect for every call instead of detecting it.
    #[arg(long)]
    dialect: Option<Dialect>,
    /// Close a call after this many seconds without a frame from the carrier.
    #[arg(long, default_value_t = 15)]
    idle_timeout_secs: u64,
    /// On SIGTERM or ctrl-c, how long live calls may take to finish.
    #[arg(long, default_value_t = 30)]
    shutdown_grace_secs: u64,
    /// Log format.
    #[arg(long, env = "ECHO_BOT_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VadChoice {
    /// WebRTC's GMM VAD (default; no model file).
    Webrtc,
    /// Signal level over the noise floor (cheapest; quiet lines only).
    Energy,
    /// Silero VAD v5 (build with `--features silero`; needs `--vad-model`).
    Silero,
}

fn vad(args: &Args) -> Result<VadKind> {
    match args.vad {
        VadChoice::Webrtc => Ok(VadKind::WebRtc(WebRtcMode::Aggressive)),
        VadChoice::Energy => Ok(VadKind::Energy(Default::default())),
        VadChoice::Silero => silero(args),
    }
}

#[cfg(feature = "silero")]
fn silero(args: &Args) -> Result<VadKind> {
    let path = args
        .vad_model
        .as_ref()
        .context("--vad silero needs --vad-model PATH (cargo xtask models fetches it)")?;
    Ok(VadKind::Silero(voxline_vad::SileroModel::load(path)?))
}

#[cfg(not(feature = "silero"))]
fn silero(_args: &Args) -> Result<VadKind> {
    anyhow::bail!("this echo-bot was built without Silero: rebuild with `--features silero`")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    logging::init(args.log_format, "info");

    let mode = if args.immediate_echo {
        EchoMode::Immediate
    } else {
        EchoMode::Conversational(ConversationConfig {
            silence: Duration::from_millis(args.silence_ms),
            max_turn: Duration::from_secs(args.max_turn_secs),
            vad: vad(&args)?,
            ..ConversationConfig::default()
        })
    };
    let config = ServerConfig {
        max_calls: args.max_calls,
        dialect: args.dialect,
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
        ..ServerConfig::default()
    };
    let server = Server::new(config, EchoFactory::new(mode.clone()));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        mode = if args.immediate_echo { "immediate echo" } else { "conversational echo" },
        "echo bot listening; health at /health, metrics at /metrics, live events at /events"
    );
    tracing::info!(
        "call it with: cargo run -p callsim -- call ws://127.0.0.1:{}/media --dialect exotel --audio ../shared/fixtures/speech/caller_en_us_8k.wav --out reply.wav",
        address.port()
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("echo bot stopped");
    Ok(())
}
