//! The voice agent on a call: joins the carrier connection to a per-call
//! [`voxline_agent::Agent`], and records its latencies, usage and errors as
//! Prometheus metrics and bus events.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use voxline_agent::{Agent, AgentEvent, AgentSetup, CallOutput, CallStart};
use voxline_core::Role;
use voxline_telephony::{CallEvent, CallInfo, TextRole};

use crate::bus::EventKind;
use crate::handler::{Call, CallHandler, HandlerFactory};
use crate::playout::PlayoutEvent;

/// A stage label of the turn-latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// `llm_first_token`, `tts_first_audio`, `first_frame`.
    pub stage: &'static str,
}

/// A provider label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// The provider's name.
    pub provider: &'static str,
}

/// A provider-error label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderErrorLabel {
    /// The provider's name.
    pub provider: &'static str,
    /// Whether the call was answered anyway (retry or fallback line).
    pub recovered: bool,
}

/// A token-kind label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabel {
    /// `prompt` or `completion`.
    pub kind: &'static str,
}

/// The agent's metrics. Cloning shares them.
#[derive(Debug, Clone)]
pub struct AgentMetrics {
    /// End of the caller's speech to the reply's first frame, seconds.
    pub turn_latency: Histogram,
    /// End of turn to each stage of the reply, seconds.
    pub stage_latency: Family<StageLabel, Histogram>,
    /// The recogniser's final transcript to the reply's first frame, seconds.
    pub stt_final_to_first_frame: Histogram,
    /// End of turn to first frame less the providers' own times to first byte:
    /// Voxline's own share.
    pub framework_latency: Histogram,
    /// Providers' time to first byte, seconds.
    pub ttfb: Family<ProviderLabel, Histogram>,
    /// Provider failures.
    pub provider_errors: Family<ProviderErrorLabel, Counter>,
    /// Times the caller stopped the bot.
    pub barge_ins: Counter,
    /// Calls refused because a provider they need is not configured.
    pub calls_unserved: Counter,
    /// Seconds of audio recognised.
    pub stt_seconds: Counter<f64, std::sync::atomic::AtomicU64>,
    /// Characters synthesised.
    pub tts_characters: Counter,
    /// Language-model tokens.
    pub llm_tokens: Family<TokenLabel, Counter>,
}

impl AgentMetrics {
    /// Creates the metrics and registers them under `voxline_agent`.
    pub fn new(registry: &mut Registry) -> Self {
        let latency = || Histogram::new(exponential_buckets(0.000_1, 2.0, 18));
        let metrics = Self {
            turn_latency: Histogram::new(exponential_buckets(0.01, 1.5, 16)),
            stage_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_1, 2.0, 18))
            }),
            framework_latency: latency(),
            stt_final_to_first_frame: latency(),
            ttfb: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.005, 1.6, 16))
            }),
            provider_errors: Family::default(),
            barge_ins: Counter::default(),
            calls_unserved: Counter::default(),
            stt_seconds: Counter::default(),
            tts_characters: Counter::default(),
            llm_tokens: Family::default(),
        };
        let r = registry.sub_registry_with_prefix("voxline_agent");
        r.register(
            "turn_latency_seconds",
            "End of the caller's speech to the reply's first audio frame",
            metrics.turn_latency.clone(),
        );
        r.register(
            "stage_latency_seconds",
            "End of the caller's turn to each stage of the reply",
            metrics.stage_latency.clone(),
        );
        r.register(
            "stt_final_to_first_frame_seconds",
            "The recogniser's final transcript to the reply's first audio frame",
            metrics.stt_final_to_first_frame.clone(),
        );
        r.register(
            "framework_latency_seconds",
            "End of turn to first frame, less the model's and the synthesiser's own times to first byte",
            metrics.framework_latency.clone(),
        );
        r.register(
            "provider_ttfb_seconds",
            "Providers' time to first byte",
            metrics.ttfb.clone(),
        );
        r.register(
            "provider_errors",
            "Provider failures during calls",
            metrics.provider_errors.clone(),
        );
        r.register(
            "barge_ins",
            "Times the caller talked over the bot and it stopped",
            metrics.barge_ins.clone(),
        );
        r.register(
            "calls_unserved",
            "Calls closed because a provider they need is not configured",
            metrics.calls_unserved.clone(),
        );
        r.register(
            "stt_audio_seconds",
            "Seconds of caller audio recognised",
            metrics.stt_seconds.clone(),
        );
        r.register(
            "tts_characters",
            "Characters synthesised",
            metrics.tts_characters.clone(),
        );
        r.register(
            "llm_tokens",
            "Language-model tokens",
            metrics.llm_tokens.clone(),
        );
        metrics
    }
}

/// Makes an agent for each call.
#[derive(Debug, Clone)]
pub struct AgentFactory {
    setup: AgentSetup,
    metrics: AgentMetrics,
}

impl AgentFactory {
    /// Agents built from `setup`, reporting into `metrics`.
    pub fn new(setup: AgentSetup, metrics: AgentMetrics) -> Self {
        Self { setup, metrics }
    }
}

impl HandlerFactory for AgentFactory {
    fn create(&self, info: &CallInfo) -> Box<dyn CallHandler> {
        let start = CallStart {
            format: info.format,
            params: info.custom.clone(),
        };
        match Agent::start(&self.setup, start) {
            Ok(agent) => Box::new(AgentHandler {
                agent,
                metrics: self.metrics.clone(),
            }),
            Err(e) => {
                tracing::error!(error = %e, "call cannot be served; closing it");
                self.metrics.calls_unserved.inc();
                Box::new(Unserved {
                    reason: e.to_string(),
                })
            }
        }
    }
}

/// Closes a call the agent cannot serve, as soon as it starts.
struct Unserved {
    reason: String,
}

impl CallHandler for Unserved {
    fn on_event(&mut self, _event: CallEvent, call: &mut Call<'_>) {
        self.close(call);
    }

    fn poll_wake(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
        Poll::Ready(())
    }

    fn on_wake(&mut self, call: &mut Call<'_>) {
        self.close(call);
    }
}

impl Unserved {
    fn close(&mut self, call: &mut Call<'_>) {
        call.publish(EventKind::Error {
            message: std::mem::take(&mut self.reason),
        });
        call.hangup();
    }
}

struct AgentHandler {
    agent: Agent,
    metrics: AgentMetrics,
}

impl CallHandler for AgentHandler {
    fn on_event(&mut self, event: CallEvent, call: &mut Call<'_>) {
        let mut out = Output {
            call,
            metrics: &self.metrics,
        };
        match event {
            CallEvent::Media(chunk) => self.agent.on_audio(&chunk.payload, &mut out),
            CallEvent::Dtmf(dtmf) => self.agent.on_dtmf(dtmf.digit, &mut out),
            CallEvent::Mark { name } => self.agent.on_mark(&name),
            CallEvent::Stop(stop) => {
                tracing::info!(reason = ?stop.reason, "carrier stopped the call");
                self.agent.on_stop(&mut out);
            }
            CallEvent::Text { text } => self.agent.on_text(&text, &mut out),
            CallEvent::ModeChange(change) => self.agent.change_modes(change, &mut out),
            CallEvent::Clear => {
                // A peer asked for quiet (Vonage's and some clients' clear).
                out.call.clear("peer_clear");
            }
            _ => {}
        }
    }

    fn on_playout(&mut self, event: PlayoutEvent, call: &mut Call<'_>) {
        let mut out = Output {
            call,
            metrics: &self.metrics,
        };
        match event {
            PlayoutEvent::Started => self.agent.on_playout_started(&mut out),
            PlayoutEvent::Finished => self.agent.on_playout_finished(&mut out),
        }
    }

    fn poll_wake(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.agent.poll_wake(cx)
    }

    fn on_wake(&mut self, call: &mut Call<'_>) {
        let mut out = Output {
            call,
            metrics: &self.metrics,
        };
        self.agent.on_wake(&mut out);
    }
}

/// The call as the agent drives it.
struct Output<'a, 'b> {
    call: &'a mut Call<'b>,
    metrics: &'a AgentMetrics,
}

impl CallOutput for Output<'_, '_> {
    fn play(&mut self, audio: &[u8]) {
        self.call.play(audio);
    }

    fn mark(&mut self, name: String) {
        self.call.mark(name);
    }

    fn clear(&mut self, reason: &str) {
        self.call.clear(reason);
    }

    fn hangup(&mut self) {
        self.call.hangup();
    }

    fn played(&self) -> Duration {
        self.call.played()
    }

    fn is_playing(&self) -> bool {
        self.call.is_playing()
    }

    fn has_text_channel(&self) -> bool {
        self.call.supports_text()
    }

    fn text(&mut self, role: Role, text: &str, is_final: bool) {
        let role = if role == Role::User {
            TextRole::Caller
        } else {
            TextRole::Bot
        };
        self.call.send_text(role, text, is_final);
    }

    fn report(&mut self, event: AgentEvent) {
        let m = self.metrics;
        match event {
            AgentEvent::Transcript {
                role,
                text,
                is_final,
            } => {
                let speaker = if role == Role::User { "caller" } else { "bot" };
                if is_final {
                    tracing::info!(speaker, text = %text, "transcript");
                }
                self.call.publish(EventKind::Transcript {
                    speaker: speaker.to_owned(),
                    text,
                    is_final,
                });
            }
            AgentEvent::Turn(marks) => {
                let eot = marks.end_of_turn;
                let since =
                    |at: Option<std::time::Instant>| at.map(|at| at.saturating_duration_since(eot));
                let stages = [
                    ("llm_first_token", since(marks.llm_first_token)),
                    ("tts_first_audio", since(marks.tts_first_audio)),
                    ("first_frame", since(marks.first_frame)),
                ];
                for (stage, latency) in stages {
                    if let Some(latency) = latency {
                        m.stage_latency
                            .get_or_create(&StageLabel { stage })
                            .observe(latency.as_secs_f64());
                    }
                }
                let from_final = marks
                    .stt_final
                    .zip(marks.first_frame)
                    .map(|(f, first)| first.saturating_duration_since(f));
                if let Some(latency) = from_final {
                    m.stt_final_to_first_frame.observe(latency.as_secs_f64());
                }
                if let Some(total) = marks.turn_latency() {
                    m.turn_latency.observe(total.as_secs_f64());
                    self.call.observe_turn_latency(total);
                }
                if let Some(own) = marks.framework_latency() {
                    m.framework_latency.observe(own.as_secs_f64());
                }
                let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
                self.call.publish(EventKind::TurnLatency {
                    speech_end_to_first_frame_ms: ms(marks.turn_latency()),
                    end_of_turn_to_first_frame_ms: ms(since(marks.first_frame)),
                    llm_first_token_ms: ms(since(marks.llm_first_token)),
                    tts_first_audio_ms: ms(since(marks.tts_first_audio)),
                    stt_final_to_first_frame_ms: ms(from_final),
                    llm_ttfb_ms: ms(marks.llm_ttfb),
                    tts_ttfb_ms: ms(marks.tts_ttfb),
                    framework_ms: ms(marks.framework_latency()),
                });
            }
            AgentEvent::Ttfb { provider, latency } => {
                m.ttfb
                    .get_or_create(&ProviderLabel { provider })
                    .observe(latency.as_secs_f64());
            }
            AgentEvent::BargeIn { heard } => {
                m.barge_ins.inc();
                tracing::info!(heard = %heard, "barge-in");
            }
            AgentEvent::Modes(modes) => self.call.send_modes(modes),
            AgentEvent::ProviderError { error, recovered } => {
                m.provider_errors
                    .get_or_create(&ProviderErrorLabel {
                        provider: error.provider,
                        recovered,
                    })
                    .inc();
                self.call.publish(EventKind::Error {
                    message: error.to_string(),
                });
            }
            AgentEvent::Usage(usage) => {
                m.stt_seconds.inc_by(usage.stt_seconds);
                m.tts_characters.inc_by(usage.tts_characters);
                m.llm_tokens
                    .get_or_create(&TokenLabel { kind: "prompt" })
                    .inc_by(usage.llm_prompt_tokens);
                m.llm_tokens
                    .get_or_create(&TokenLabel { kind: "completion" })
                    .inc_by(usage.llm_completion_tokens);
                self.call.publish(EventKind::Usage {
                    stt_seconds: usage.stt_seconds,
                    tts_characters: usage.tts_characters,
                    llm_prompt_tokens: usage.llm_prompt_tokens,
                    llm_completion_tokens: usage.llm_completion_tokens,
                });
            }
            _ => {}
        }
    }
}

/// Shared for tests and binaries that build an agent server by hand.
pub fn agent_server(
    config: crate::ServerConfig,
    setup: AgentSetup,
    mut registry: Registry,
) -> crate::Server {
    let metrics = AgentMetrics::new(&mut registry);
    crate::Server::with_registry(config, AgentFactory::new(setup, metrics), registry)
}

/// A `POST /chat/text` request: one text turn, with the conversation so far if the
/// client keeps it (the server keeps no state between requests).
#[derive(Debug, serde::Deserialize)]
pub struct ChatTextRequest {
    /// What the user says.
    pub message: String,
    /// Earlier turns, oldest first (`role` `user` or `assistant`, `content`).
    #[serde(default)]
    pub history: Vec<ChatTurn>,
}

/// One turn of a text conversation.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct ChatTurn {
    /// `user` or `assistant`.
    pub role: String,
    /// What was said.
    pub content: String,
}

/// The answer to a `POST /chat/text`.
#[derive(Debug, serde::Serialize)]
pub struct ChatTextResponse {
    /// The agent's reply.
    pub reply: String,
    /// The conversation including this turn, to send back with the next request.
    pub history: Vec<ChatTurn>,
    /// Whether the model asked to end the conversation (`end_call`).
    pub end_call: bool,
}

/// The agent server's own routes beside the carrier endpoints: `GET /` (what this
/// server is and runs), `POST /connect` (is there room for a call?) and
/// `POST /chat/text` (one text turn).
pub fn routes(server: &crate::Server, setup: AgentSetup, about: serde_json::Value) -> axum::Router {
    use axum::routing::{get, post};
    let state = RouteState {
        server: server.clone(),
        setup,
        about: Arc::new(about),
    };
    axum::Router::new()
        .route("/", get(info))
        .route("/connect", post(connect))
        .route("/chat/text", post(chat_text))
        .with_state(state)
}

#[derive(Clone)]
struct RouteState {
    server: crate::Server,
    setup: AgentSetup,
    about: Arc<serde_json::Value>,
}

async fn info(
    axum::extract::State(state): axum::extract::State<RouteState>,
) -> axum::Json<serde_json::Value> {
    let mut about = (*state.about).clone();
    if let Some(object) = about.as_object_mut() {
        object.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        object.insert("active_calls".into(), state.server.active_calls().into());
        object.insert("max_calls".into(), state.server.max_calls().into());
    }
    axum::Json(about)
}

async fn connect(
    axum::extract::State(state): axum::extract::State<RouteState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let active = state.server.active_calls();
    let max = state.server.max_calls();
    let available = !state.server.is_draining() && active < max;
    let status = if available {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "available": available,
        "active_calls": active,
        "max_calls": max,
        "draining": state.server.is_draining(),
    });
    (status, axum::Json(body)).into_response()
}

async fn chat_text(
    axum::extract::State(state): axum::extract::State<RouteState>,
    body: Result<axum::Json<ChatTextRequest>, axum::extract::rejection::JsonRejection>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let error = |status: StatusCode, message: String| {
        (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
    };
    let axum::Json(request) = match body {
        Ok(body) => body,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if request.message.trim().is_empty() {
        return error(StatusCode::BAD_REQUEST, "`message` is empty".into());
    }
    let Some(brain) = state.setup.providers.brain.clone() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "no language model configured".into(),
        );
    };
    let config = &state.setup.config;
    let mut history =
        voxline_agent::history::History::new(config.system_prompt.clone(), config.max_history);
    for turn in &request.history {
        match turn.role.as_str() {
            "user" => history.push_user(turn.content.clone()),
            "assistant" => history.push(voxline_core::ChatMessage::assistant(turn.content.clone())),
            other => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("history role {other:?}: expected user or assistant"),
                );
            }
        }
    }
    history.push_user(request.message.clone());
    let completion = match brain.reply(history.messages()).await {
        Ok(stream) => stream.collect().await,
        Err(e) => Err(e),
    };
    let completion = match completion {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "text chat failed");
            return error(StatusCode::BAD_GATEWAY, e.to_string());
        }
    };
    let end_call = completion
        .tool_calls
        .iter()
        .any(|c| c.name == voxline_agent::config::END_CALL_TOOL);
    let mut turns = request.history;
    turns.push(ChatTurn {
        role: "user".into(),
        content: request.message,
    });
    turns.push(ChatTurn {
        role: "assistant".into(),
        content: completion.text.clone(),
    });
    axum::Json(ChatTextResponse {
        reply: completion.text,
        history: turns,
        end_call,
    })
    .into_response()
}
