//! The server's one error type and its contract shape
//! `{"error": {code, message}}`; extractors that answer in that shape.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
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
    #[error("request URI is longer than {MAX_URI_BYTES} bytes")]
    UriTooLong,
    /// A well-formed value that breaks a rule; names the field.
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    /// A limit on what one client may do was reached; `retry_after` (whole
    /// seconds) is sent as `Retry-After` where it is known.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Option<u64>,
    },
    /// The idempotency key was claimed by a request that committed while
    /// this one ran: the caller answers with that request's result.
    #[error("this idempotency key was just used by a request that committed")]
    KeyClaimed,
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("internal error: {0}")]
    Internal(#[from] anyhow::Error),
}

/// The message of a viewer's refused mutation (docs/protocol.md wording).
pub const INSUFFICIENT_PERMISSIONS: &str = "Insufficient permissions";

impl AppError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Validation {
            field: field.into(),
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
            AppError::UriTooLong => ErrorCode::UriTooLong,
            AppError::Validation { .. } => ErrorCode::Validation,
            AppError::RateLimited { .. } => ErrorCode::RateLimited,
            AppError::KeyClaimed => ErrorCode::Conflict,
            AppError::Database(error) if unavailable(error) => ErrorCode::Unavailable,
            AppError::Database(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// What the client sees: internal causes are logged here, never sent.
    pub fn detail(&self) -> ErrorDetail {
        let code = self.code();
        let message = match self {
            AppError::Database(_) if code == ErrorCode::Unavailable => {
                tracing::warn!(error = %self, "database unavailable");
                DATABASE_UNAVAILABLE.to_owned()
            }
            AppError::Database(_) | AppError::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                "Internal server error".to_owned()
            }
            other => other.to_string(),
        };
        ErrorDetail { code, message }
    }

    /// Seconds a client should wait before retrying, when there is a known
    /// wait (`Retry-After`).
    fn retry_after(&self, code: ErrorCode) -> Option<u64> {
        match self {
            AppError::RateLimited { retry_after, .. } => *retry_after,
            _ if code == ErrorCode::Unavailable => Some(1),
            _ => None,
        }
    }
}

/// The message of every `UNAVAILABLE` answer.
pub const DATABASE_UNAVAILABLE: &str = "Database unavailable, try again later";

/// Whether a database error means the database cannot be used right now
/// (unreachable, restarting, read-only, out of space, locked too long)
/// rather than that the statement was wrong: such a request may succeed
/// when retried later.
pub fn unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            let code = code.as_ref();
            // PostgreSQL's SQLSTATE codes are five characters (often all
            // digits); SQLite's extended result codes are at most four
            // digits.
            if code.len() == 5 {
                // Connection exceptions (08), insufficient resources such
                // as a full disk (53), operator intervention such as a
                // shutdown (57P), system errors (58).
                ["08", "53", "57P", "58"]
                    .iter()
                    .any(|class| code.starts_with(class))
            } else {
                // BUSY, LOCKED, READONLY, IOERR, CORRUPT, FULL, CANTOPEN,
                // NOTADB (the primary code is the low byte).
                code.parse::<i32>()
                    .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6 | 8 | 10 | 11 | 13 | 14 | 26))
            }
        }),
        _ => false,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let detail = self.detail();
        let retry_after = self.retry_after(detail.code);
        let status =
            StatusCode::from_u16(detail.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(ErrorBody { error: detail })).into_response();
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<BytesRejection> for AppError {
    fn from(rejection: BytesRejection) -> AppError {
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
        let json = json_content_type(request.headers());
        let bytes = Bytes::from_request(request, state).await?;
        if !json {
            return Err(AppError::BadRequest(
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        parse_body(&bytes).map(Json)
    }
}

/// Whether the request says its body is JSON: `application/json` or
/// `application/<something>+json`, with any parameters.
pub fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let essence = essence.to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

/// Reads a request body: a JSON object (400 otherwise, or for a field the
/// route reads given twice), whose strings hold no control character (422
/// naming the field), deserialized as `T` (400 for a missing field or a
/// wrong JSON type).
pub fn parse_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON: {}", without_position(&e))))?;
    if !value.is_object() {
        return Err(AppError::BadRequest(
            "the request body must be a JSON object".into(),
        ));
    }
    reject_control_characters(&value)?;
    // Deserialized from the text, not from `value`: a JSON object keeps
    // only the last of repeated keys, the text still has them all.
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::BadRequest(format!("invalid request body: {}", without_position(&e)))
    })
}

/// serde_json's message without the position it appends (`… at line 1
/// column 20`): the contract's messages do not carry one.
fn without_position(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    match message.strip_suffix(&position) {
        Some(message) => message.to_owned(),
        None => message,
    }
}

/// Refuses an object (a body or a command payload) with a control
/// character (U+0000–U+001F, U+007F–U+009F) in any of its strings, at any
/// depth: 422 naming the top-level field.
pub fn reject_control_characters(object: &Value) -> Result<(), AppError> {
    let Value::Object(fields) = object else {
        return Ok(());
    };
    for (field, value) in fields {
        if field.chars().any(char::is_control) || holds_control_character(value) {
            let plain = !field.is_empty()
                && field.len() <= 64
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let field = if plain { field.as_str() } else { "body" };
            return Err(AppError::validation(
                field,
                "must not contain control characters",
            ));
        }
    }
    Ok(())
}

fn holds_control_character(value: &Value) -> bool {
    match value {
        Value::String(text) => text.chars().any(char::is_control),
        Value::Array(items) => items.iter().any(holds_control_character),
        Value::Object(fields) => fields.iter().any(|(key, value)| {
            key.chars().any(char::is_control) || holds_control_character(value)
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// Longest request target (path and query) the API reads.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Refuses a request whose path and query are longer than
/// [`MAX_URI_BYTES`], in the contract's shape (hyper itself answers a bare
/// 414 only beyond 64 KiB).
pub async fn limit_uri(request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |target| target.as_str().len());
    if length > MAX_URI_BYTES {
        return AppError::UriTooLong.into_response();
    }
    next.run(request).await
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

/// Fallback for unknown routes.
pub async fn not_found() -> AppError {
    AppError::NotFound("No such route".into())
}

/// Fallback for a known route asked with a method it does not serve.
pub async fn method_not_allowed() -> AppError {
    AppError::NotFound("This route does not serve that method".into())
}
