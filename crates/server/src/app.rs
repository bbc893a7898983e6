//! The HTTP side: routes, limits, health, metrics, the event stream, shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{OriginalUri, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures_util::stream::{self, Stream};
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use voxline_telephony::detect;

use crate::bus::EventBus;
use crate::config::ServerConfig;
use crate::connection::{self, ConnectionHint, Shared};
use crate::handler::HandlerFactory;
use crate::metrics::{Metrics, ReasonLabel};

/// A Voxline telephony server: carriers connect over WebSocket on any path that is not
/// one of the service routes (`/health`, `/ready`, `/live`, `/metrics`, `/events`).
///
/// ```no_run
/// # async fn run() -> std::io::Result<()> {
/// use voxline_server::{Server, ServerConfig, shutdown_signal};
///
/// let server = Server::new(ServerConfig::default(), voxline_server::echo::EchoFactory::immediate());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8007").await?;
/// server.serve(listener, shutdown_signal()).await
/// # }
/// ```
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    /// A binary's own routes, served before the carrier fallback.
    extra: Option<Router>,
    limiter: Arc<Semaphore>,
    draining: Arc<AtomicBool>,
    tracker: TaskTracker,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A server running `factory`'s handler on every call.
    pub fn new(config: ServerConfig, factory: impl HandlerFactory) -> Self {
        Self::with_registry(config, factory, Registry::default())
    }

    /// As [`new`](Self::new), serving `registry` on `/metrics` beside the server's own
    /// metrics: a binary registers its handlers' metrics there first.
    pub fn with_registry(
        config: ServerConfig,
        factory: impl HandlerFactory,
        mut registry: Registry,
    ) -> Self {
        let metrics = Metrics::new(&mut registry);
        let shared = Arc::new(Shared {
            bus: EventBus::new(config.event_bus_capacity),
            limiter_size: config.max_calls,
            config,
            factory: Arc::new(factory),
            metrics,
            shutdown: CancellationToken::new(),
            connections: AtomicU64::new(0),
        });
        Self {
            limiter: Arc::new(Semaphore::new(shared.limiter_size)),
            shared,
            registry: Arc::new(registry),
            extra: None,
            draining: Arc::new(AtomicBool::new(false)),
            tracker: TaskTracker::new(),
        }
    }

    /// The event bus (to subscribe in-process).
    pub fn bus(&self) -> EventBus {
        self.shared.bus.clone()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Calls connected now.
    pub fn active_calls(&self) -> usize {
        self.shared.limiter_size - self.limiter.available_permits()
    }

    /// Adds a binary's own routes (with their state applied), served before the
    /// carrier WebSocket fallback; they must not reuse the service routes' paths.
    pub fn routes(mut self, extra: Router) -> Self {
        self.extra = Some(match self.extra.take() {
            Some(routes) => routes.merge(extra),
            None => extra,
        });
        self
    }

    /// Whether the server is draining (shutting down, refusing calls).
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The most calls connected at once.
    pub fn max_calls(&self) -> usize {
        self.shared.limiter_size
    }

    /// The axum router: service routes, the binary's own routes, and the carrier
    /// WebSocket on every other path.
    pub fn router(&self) -> Router {
        let base = Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .route("/live", get(|| async { "ok" }))
            .route("/metrics", get(metrics))
            .route("/events", get(events))
            .fallback(carrier_socket)
            .with_state(self.clone());
        match &self.extra {
            Some(extra) => extra.clone().merge(base),
            None => base,
        }
    }

    /// Serves until `shutdown` completes, then drains: new calls are refused (503),
    /// `/ready` turns 503, live calls get up to [`ServerConfig::shutdown_grace`] to
    /// finish, and the rest are closed with code 1001.
    ///
    /// # Errors
    /// When accepting connections fails.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let drain = self.clone();
        let app = self.router();
        // Media frames are small and latency-bound: no Nagle delay behind an unacked one.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                drain.drain().await;
            })
            .await
    }

    /// Stops taking calls and waits for live ones (up to the grace period).
    pub async fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        let active = self.active_calls();
        tracing::info!(active, grace = ?self.shared.config.shutdown_grace, "draining: refusing new calls");
        self.tracker.close();
        if tokio::time::timeout(self.shared.config.shutdown_grace, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = self.active_calls(),
                "grace period over: closing the remaining calls"
            );
            self.shared.shutdown.cancel();
            let _ =
                tokio::time::timeout(std::time::Duration::from_secs(5), self.tracker.wait()).await;
        }
        tracing::info!("drained");
    }

    fn reject(&self, reason: &str) -> Response {
        self.shared
            .metrics
            .calls_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
        tracing::warn!(reason, "call refused");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("call refused: {reason}\n"),
        )
            .into_response()
    }
}

/// Paths whose connections must present [`ServerConfig::auth_token`].
const AUTH_PATH: &str = "/ws/auth";

/// Whether a request to an authenticated path carries the configured token.
fn authorized(config: &ServerConfig, query: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = config.auth_token.as_deref().filter(|t| !t.is_empty()) else {
        return false;
    };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let from_query = query.and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v)
    });
    [bearer, from_query]
        .into_iter()
        .flatten()
        .any(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
}

/// Compares without an early exit, so timing does not reveal the token's prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn carrier_socket(
    State(server): State<Server>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if (uri.path() == AUTH_PATH || uri.path().starts_with("/ws/auth/"))
        && !authorized(&server.shared.config, uri.query(), &headers)
    {
        server
            .shared
            .metrics
            .calls_rejected
            .get_or_create(&ReasonLabel {
                reason: "unauthorized".to_owned(),
            })
            .inc();
        tracing::warn!(
            path = uri.path(),
            "connection refused: missing or wrong token"
        );
        return (
            StatusCode::UNAUTHORIZED,
            "this path needs a valid token (?token= or Authorization: Bearer)\n",
        )
            .into_response();
    }
    let Ok(upgrade) = upgrade else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "this path takes a carrier WebSocket\n",
        )
            .into_response();
    };
    if server.draining.load(Ordering::SeqCst) {
        return server.reject("draining");
    }
    let Ok(permit) = Arc::clone(&server.limiter).try_acquire_owned() else {
        return server.reject("capacity");
    };
    let hint = ConnectionHint {
        dialect: detect::from_url(uri.path(), uri.query()),
        url_sample_rate: uri.query().and_then(detect::url_sample_rate),
        url_query: uri.query().map(str::to_owned),
    };
    let config = &server.shared.config;
    let shared = Arc::clone(&server.shared);
    let tracker = server.tracker.clone();
    upgrade
        .max_frame_size(config.max_frame_bytes)
        .max_message_size(config.max_frame_bytes)
        .read_buffer_size(config.ws_read_buffer_bytes)
        .write_buffer_size(config.ws_write_buffer_bytes)
        .max_write_buffer_size(config.ws_write_buffer_bytes.max(config.max_frame_bytes) * 4)
        .on_failed_upgrade(|e| tracing::warn!(error = %e, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            tracker.track_future(connection::run(socket, shared, hint, permit))
        })
}

async fn health(State(server): State<Server>) -> impl IntoResponse {
    let active = server.active_calls();
    let max = server.shared.config.max_calls;
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "active_calls": active,
        "max_calls": max,
        "capacity_usage": if max == 0 { 1.0 } else { active as f64 / max as f64 },
        "draining": server.draining.load(Ordering::SeqCst),
    }))
}

async fn ready(State(server): State<Server>) -> Response {
    if server.draining.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else if server.limiter.available_permits() == 0 {
        (StatusCode::SERVICE_UNAVAILABLE, "at capacity\n").into_response()
    } else {
        (StatusCode::OK, "ready\n").into_response()
    }
}

async fn metrics(State(server): State<Server>) -> Response {
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &server.registry) {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct EventsQuery {
    call_id: Option<String>,
}

/// Server-sent events, one JSON object per call event; `?call_id=` filters one call.
async fn events(
    State(server): State<Server>,
    Query(query): Query<EventsQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = server.shared.bus.subscribe();
    let filter = query.call_id;
    let stream = stream::unfold((receiver, filter), |(mut receiver, filter)| async move {
        loop {
            match receiver.recv().await {
                Ok(event) => {
                    if filter.as_deref().is_some_and(|id| id != &*event.call_id) {
                        continue;
                    }
                    let data = serde_json::to_string(&*event).unwrap_or_default();
                    return Some((
                        Ok(Event::default().event("call").data(data)),
                        (receiver, filter),
                    ));
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let data =
                        serde_json::json!({ "type": "lagged", "missed": missed }).to_string();
                    return Some((
                        Ok(Event::default().event("lagged").data(data)),
                        (receiver, filter),
                    ));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("ctrl-c received"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}
