//! Voxline's voice agent server.
//!
//! Carriers connect on `/media` (Exotel), `/smartflo/audio` (Smartflo), `/twilio`,
//! `/ws/stream/{call_sid}`, or `/ws` (the dialect found from the first frames);
//! `/ws/auth` takes the same with a token. Each call gets an agent: speech-to-text,
//! a language model and text-to-speech, with turn-taking and barge-in. Beside the
//! calls: `GET /`, `POST /connect`, `GET /health`, `/ready`, `/live`, `/metrics`,
//! `/events`, `POST /chat/text` and `POST /webhook` (carriers' call callbacks onto the
//! event bus).
//!
//! With no API keys it still starts, says which providers are missing, and closes the
//! calls it cannot serve with a clear log line.

mod registry;
mod settings;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use prometheus_client::registry::Registry;
use voxline_agent::{AgentConfig, AgentSetup};
use voxline_server::{ServerConfig, logging, shutdown_signal};
use voxline_vad::TurnConfig;

use crate::settings::{Args, Settings};

#[tokio::main]
async fn main() -> Result<()> {
    let settings = Settings::resolve(Args::parse())?;
    logging::init(settings.log_format, &settings.log_level);
    voxline_core::install_tls();

    let (providers, statuses) = registry::build(&settings);
    for s in &statuses {
        match &s.missing {
            None => tracing::info!(kind = s.kind, provider = %s.provider, "provider active"),
            Some(why) => {
                tracing::warn!(kind = s.kind, provider = %s.provider, missing = %why, "provider missing")
            }
        }
    }
    if statuses.iter().any(|s| !s.active) {
        tracing::warn!(
            "some providers are missing: calls that need them will be closed (set the keys above)"
        );
    }

    let defaults = AgentConfig::default();
    let config = AgentConfig {
        system_prompt: settings.system_prompt.clone(),
        greeting: settings.greeting.clone(),
        fallback_line: settings
            .fallback_line
            .clone()
            .unwrap_or(defaults.fallback_line.clone()),
        idle_after: Duration::from_secs(settings.idle_secs),
        turn: TurnConfig {
            stop_secs: settings.vad_stop_secs,
            start_secs: settings.vad_start_secs,
            ..defaults.turn
        },
        language: settings.language.clone(),
        ..defaults
    };
    let setup = AgentSetup {
        config: Arc::new(config),
        providers,
    };
    let server_config = ServerConfig {
        max_calls: settings.max_connections,
        idle_timeout: settings.connection_timeout,
        auth_token: settings.auth_token.clone(),
        ..ServerConfig::default()
    };
    let server =
        voxline_server::agent::agent_server(server_config, setup.clone(), Registry::default());
    let about = serde_json::json!({
        "name": "voxline agent-server",
        "carrier_endpoints": ["/media", "/smartflo/audio", "/twilio", "/ws/stream/{call_sid}", "/ws", "/ws/flexible", "/ws/auth"],
        "http_endpoints": ["/", "/connect", "/health", "/ready", "/live", "/metrics", "/events", "/chat/text", "/webhook"],
        "providers": statuses,
    });
    let routes = voxline_server::agent::routes(&server, setup, about)
        .merge(voxline_server::webhook_router("/webhook", server.bus()));
    let server = server.routes(routes);

    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        max_connections = settings.max_connections,
        "agent server listening; health at /health, metrics at /metrics"
    );
    tracing::info!(
        "call it with: cargo run -p callsim -- call ws://127.0.0.1:{}/media --dialect exotel --audio ../shared/fixtures/speech/caller_en_us_8k.wav --out reply.wav",
        address.port()
    );
    server.serve(listener, shutdown_signal()).await?;
    tracing::info!("agent server stopped");
    Ok(())
}
