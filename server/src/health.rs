//! What an operator polls: liveness and readiness probes, and this node's
//! Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use syncscript_protocol::Health;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db::Backend;
use crate::error::{AppError, Json};
use crate::fanout::cluster::Link;
use crate::metrics::PoolName;
use crate::state::AppState;

/// The health routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        node: Some(state.config.node_id.clone()),
        database: None,
        redis: None,
    })
}

/// Readiness: the database answers a query and, in a cluster, Redis
/// answers this node's pings.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency is unreachable; the body names it", body = Health),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let database = match sqlx::query("SELECT 1").execute(&state.db).await {
        Ok(_) => true,
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            false
        }
    };
    let redis = state.fanout.link.as_ref().map(Link::is_up);
    let ready = database && redis != Some(false);
    let word = |up: bool| if up { "ok" } else { "unreachable" }.to_owned();
    let health = Health {
        status: if ready { "ok" } else { "unavailable" }.into(),
        node: Some(state.config.node_id.clone()),
        database: Some(word(database)),
        redis: redis.map(word),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

/// Prometheus text exposition of this node's metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let pools = match Backend::of(&state.config.database_url)? {
        Backend::Sqlite => vec![
            (PoolName::Read, &state.db, state.opened.read()),
            (PoolName::Write, &state.writer, state.opened.write()),
        ],
        Backend::Postgres => vec![(PoolName::Shared, &state.db, state.opened.read())],
    };
    let body = state
        .metrics
        .render(state.fanout.rooms.counts().await, &pools)
        .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    ))
}
