//! Prometheus metrics at `GET /metrics` (text exposition format): HTTP
//! requests by method and status, events published, connected sockets.

use axum::extract::{Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::AppError;
use crate::state::AppState;

/// The metrics route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Labels of `syncscript_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    method: String,
    status: u16,
}

/// One server's metrics (a registry of its own, so several servers in one
/// process — the tests — do not mix their numbers).
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    /// Events broadcast after their transaction committed.
    pub events_published: Counter,
    sockets: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("syncscript");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let events_published = Counter::default();
        let sockets = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "events_published",
            "Vault events broadcast after commit",
            events_published.clone(),
        );
        registry.register(
            "sockets",
            "Socket.IO connections on this node",
            sockets.clone(),
        );
        Metrics {
            registry,
            http_requests,
            events_published,
            sockets,
        }
    }
}

/// Middleware counting every answered HTTP request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state
        .metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Prometheus text exposition of this node's metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let sockets = i64::try_from(state.io.sockets().len()).unwrap_or(i64::MAX);
    state.metrics.sockets.set(sockets);
    let mut body = String::new();
    encode(&mut body, &state.metrics.registry)
        .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    ))
}
