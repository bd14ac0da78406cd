//! The server's one error type and its contract shape
//! `{"error": {code, message}}`; extractors that answer in that shape.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use syncscript_protocol::{ErrorBody, ErrorCode, ErrorDetail};

/// Every way a request or command can fail.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// A well-formed value that breaks a rule; names the field.
    #[error("{field}: {message}")]
    Validation {
        field: &'static str,
        message: String,
    },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

/// The message of a viewer's refused mutation (docs/protocol.md wording).
pub const INSUFFICIENT_PERMISSIONS: &str = "Insufficient permissions";

impl AppError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> AppError {
        AppError::Validation {
            field,
            message: message.into(),
        }
    }

    pub fn insufficient_permissions() -> AppError {
        AppError::Forbidden(INSUFFICIENT_PERMISSIONS.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::BadRequest(_) => ErrorCode::BadRequest,
            AppError::Unauthorized(_) => ErrorCode::Unauthorized,
            AppError::Forbidden(_) => ErrorCode::Forbidden,
            AppError::NotFound(_) => ErrorCode::NotFound,
            AppError::Conflict(_) => ErrorCode::Conflict,
            AppError::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            AppError::Validation { .. } => ErrorCode::Validation,
            AppError::Database(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the client sees: internal causes are logged here, never sent.
    pub fn detail(&self) -> ErrorDetail {
        let message = match self {
            AppError::Database(_) | AppError::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        ErrorDetail {
            code: self.code(),
            message,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let detail = self.detail();
        let status =
            StatusCode::from_u16(detail.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody { error: detail })).into_response()
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::PayloadTooLarge(format!(
                "request body is larger than {} bytes",
                crate::config::MAX_BODY_BYTES
            ))
        } else {
            AppError::BadRequest(rejection.body_text())
        }
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::BadRequest(rejection.body_text())
    }
}

/// A JSON request body (which must be an object) or response; rejections
/// answer in the contract's shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = AppError;

    async fn from_request(request: Request, state: &S) -> Result<Json<T>, AppError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(AppError::BadRequest(
                "the request body must be a JSON object".into(),
            ));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|e| AppError::BadRequest(format!("invalid request body: {e}")))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` whose rejections answer in the contract's shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> AppError {
        AppError::BadRequest(rejection.body_text())
    }
}

/// `axum::extract::Query` whose rejections answer in the contract's shape.
#[derive(Debug, Clone, Copy, Default, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct Query<T>(pub T);

/// Parses an id from a path or payload: a malformed one is a 400, never a
/// database lookup.
pub fn parse_id(raw: &str, what: &str) -> Result<String, AppError> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| AppError::BadRequest(format!("malformed {what} id {raw:?}")))
}

/// Fallback for unknown routes.
pub async fn not_found() -> AppError {
    AppError::NotFound("No such route".into())
}

/// Fallback for a known route asked with a method it does not serve.
pub async fn method_not_allowed() -> AppError {
    AppError::NotFound("This route does not serve that method".into())
}
