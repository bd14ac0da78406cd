//! The HTTP middleware in front of the Socket.IO layer that keeps a
//! session to the client address that opened it: a long-polling or
//! upgrade request naming a session (`sid=`) from another address is
//! refused before Engine.IO sees it. Knowing a socket's id (its Engine.IO
//! session id, shown to its own client) must not let anyone read its
//! events or send commands as its user.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::limits::request_client;
use crate::state::AppState;

/// Refuses, with `403 FORBIDDEN`, a Socket.IO request for a session opened
/// from another client address (proxy-aware, as the rate limits count).
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let sid = request
        .uri()
        .path()
        .starts_with("/socket.io")
        .then(|| request.uri().query())
        .flatten()
        .and_then(engine_sid)
        .map(str::to_owned);
    if let Some(sid) = sid {
        let client = request_client(
            request.extensions(),
            request.headers(),
            &state.config.limits.trusted_proxies,
        );
        if !state.session_owners.allows(&sid, client) {
            tracing::info!(%client, "Socket.IO request for another address's session refused");
            return AppError::Forbidden(
                "This Socket.IO session was opened from another address".into(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The session a query names, read exactly as engineioxide reads it (the
/// first raw `sid=` pair, undecoded), so that no other spelling of the
/// query (a bare `sid`, a percent-encoded name, a second `sid`) can make
/// this check look at another session than the one Engine.IO serves.
fn engine_sid(query: &str) -> Option<&str> {
    query.split('&').find_map(|pair| pair.strip_prefix("sid="))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sid_is_the_one_engineio_serves() {
        let query = |q| engine_sid(q);
        assert_eq!(query("EIO=4&transport=polling&sid=abc"), Some("abc"));
        assert_eq!(query("EIO=4&sid&sid=abc"), Some("abc"));
        assert_eq!(query("EIO=4&s%69d=x&sid=abc"), Some("abc"));
        assert_eq!(query("sid=abc&sid=other"), Some("abc"));
        assert_eq!(query("EIO=4&transport=polling"), None);
    }
}
