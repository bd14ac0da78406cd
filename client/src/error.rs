//! The one error type of the client crate: REST calls, the sessions file and
//! the Socket.IO session all fail with a [`ClientError`], which keeps the
//! server's [`ErrorCode`] whenever the server sent one.
//!
//! It is `Clone` (causes are shared behind `Arc`) so that applications can
//! pass a failure around as a message, e.g. the terminal client's actions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use syncscript_protocol::{ErrorCode, ErrorDetail};

/// Why a client call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server answered a REST call with the contract's error body.
    #[error("{code}: {message}")]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server refused a Socket.IO command: its ack said `ok: false`.
    #[error("{}: {}", .0.code, .0.message)]
    Rejected(ErrorDetail),
    /// The server answered with an error status but not the contract's body.
    #[error("HTTP {status}: {body}")]
    UnexpectedResponse { status: u16, body: String },
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The request could not be sent or its answer not read.
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// A success answer whose body is not what the contract says.
    #[error("unexpected answer from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// Neither the environment (the variable `env`) nor the platform names
    /// a config folder.
    #[error("cannot locate a config folder: set {env}")]
    NoConfigDir { env: &'static str },
    /// The sessions file cannot be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    /// The sessions file is not valid JSON of the expected shape.
    #[error("{path} is not a valid sessions file: {source}")]
    Format {
        path: PathBuf,
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The Socket.IO connection could not be made.
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: Arc<rust_socketio::Error>,
    },
    /// An event could not be sent on the Socket.IO connection.
    #[error("could not send {event}: {source}")]
    Send {
        event: &'static str,
        #[source]
        source: Arc<rust_socketio::Error>,
    },
    /// A command's payload could not be encoded as JSON.
    #[error("cannot encode {event}: {source}")]
    Encode {
        event: &'static str,
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A command was asked for while the socket is not connected (rust_socketio
    /// does not buffer while disconnected).
    #[error("not connected to the server")]
    NotConnected,
    /// A command's ack did not arrive in time.
    #[error("no answer to {event} from the server within {}s", .after.as_secs())]
    AckTimeout {
        event: &'static str,
        after: Duration,
    },
    /// The Socket.IO session has stopped (its session was refused or it was
    /// closed).
    #[error("the Socket.IO session has stopped")]
    Stopped,
}

impl ClientError {
    /// The contract's error code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            ClientError::Rejected(detail) => Some(detail.code),
            _ => None,
        }
    }

    /// The server's `{code, message}`, when the server sent one.
    pub fn detail(&self) -> Option<ErrorDetail> {
        match self {
            ClientError::Server { code, message, .. } => Some(ErrorDetail {
                code: *code,
                message: message.clone(),
            }),
            ClientError::Rejected(detail) => Some(detail.clone()),
            _ => None,
        }
    }

    /// Whether the request failed without an answer from the server: it
    /// may or may not have been carried out (connection refused or reset,
    /// a timeout, a closed socket, a lost ack). These are the failures a
    /// mutation retries with the same idempotency key; an answer, even an
    /// error, is final.
    pub fn is_unanswered(&self) -> bool {
        match self {
            ClientError::Transport { source, .. } => !source.is_builder() && !source.is_redirect(),
            ClientError::NotConnected
            | ClientError::Send { .. }
            | ClientError::AckTimeout { .. } => true,
            _ => false,
        }
    }

    /// The HTTP status of a REST answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Server { status, .. } | ClientError::UnexpectedResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

impl From<ErrorDetail> for ClientError {
    fn from(detail: ErrorDetail) -> ClientError {
        ClientError::Rejected(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_display_as_code_and_message_and_keep_the_code() {
        let error = ClientError::Server {
            status: 403,
            code: ErrorCode::Forbidden,
            message: "Insufficient permissions".into(),
        };
        assert_eq!(error.to_string(), "FORBIDDEN: Insufficient permissions");
        assert_eq!(error.code(), Some(ErrorCode::Forbidden));
        assert_eq!(error.status(), Some(403));

        let rejected = ClientError::from(ErrorDetail {
            code: ErrorCode::Validation,
            message: "title is required".into(),
        });
        assert_eq!(rejected.to_string(), "VALIDATION: title is required");
        assert_eq!(rejected.code(), Some(ErrorCode::Validation));
        assert_eq!(rejected.status(), None);
        assert_eq!(
            rejected.detail().map(|d| d.message),
            Some("title is required".into())
        );
    }

    #[test]
    fn client_side_failures_have_no_code() {
        assert_eq!(ClientError::NotConnected.code(), None);
        let timeout = ClientError::AckTimeout {
            event: syncscript_protocol::commands::SOURCE_CREATE,
            after: Duration::from_secs(5),
        };
        assert_eq!(
            timeout.to_string(),
            "no answer to source:create from the server within 5s"
        );
        assert_eq!(timeout.detail(), None);
        assert!(timeout.is_unanswered());
        assert!(ClientError::NotConnected.is_unanswered());
        assert!(!ClientError::Stopped.is_unanswered());
    }

    #[test]
    fn answers_are_never_retried() {
        let refused = ClientError::Server {
            status: 503,
            code: ErrorCode::Unavailable,
            message: "Database unavailable, try again later".into(),
        };
        assert!(!refused.is_unanswered());
        assert!(
            !ClientError::from(ErrorDetail {
                code: ErrorCode::Validation,
                message: "title: must be 1-500 characters".into(),
            })
            .is_unanswered()
        );
    }
}
