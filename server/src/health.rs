//! What an operator polls: liveness and readiness probes, and this node's
//! Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use syncscript_protocol::Health;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{AppError, Json};
use crate::metrics::Metrics;
use crate::realtime::rooms::Rooms;
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
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        database: None,
    })
}

/// Readiness: the database answers a query.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency is unreachable", body = Health),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match sqlx::query("SELECT 1").execute(&state.db).await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ok".into(),
                database: Some("ok".into()),
            }),
        ),
        Err(error) => {
            tracing::warn!(%error, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable".into(),
                    database: Some("unreachable".into()),
                }),
            )
        }
    }
}

/// Prometheus text exposition of this node's metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(
    State(metrics): State<Arc<Metrics>>,
    State(rooms): State<Rooms>,
) -> Result<impl IntoResponse, AppError> {
    let body = metrics
        .render(rooms.local_sockets())
        .map_err(|e| anyhow::anyhow!("encoding metrics: {e}"))?;
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    ))
}
