//! The handshake: a connect middleware that accepts a socket only with a
//! live session, and sets it up before the client hears it is connected.

use std::sync::Arc;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State, TryData};
use syncscript_protocol::{ErrorCode, session_room, user_room};

use crate::auth;
use crate::error::AppError;
use crate::fanout::identity::{Identity, SocketState};
use crate::limits::{CommandBudget, request_client};
use crate::socket::{Shared, commands};

/// The handshake's refusal; its `Display` is what the client's
/// `connect_error` carries.
#[derive(Debug)]
pub struct Refused(ErrorCode);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::error::Error for Refused {}

/// Connect middleware: a live session from `auth.token` or from the session
/// cookie (Origin-checked, like cookie-authenticated REST mutations).
pub async fn authenticate<A: Adapter>(
    socket: SocketRef<A>,
    TryData(auth): TryData<Value>,
    State(shared): State<Shared>,
) -> Result<(), Refused> {
    let core = shared.get().ok_or(Refused(ErrorCode::Unavailable))?;
    let unauthorized = || Refused(ErrorCode::Unauthorized);
    let headers = &socket.req_parts().headers;
    let from_auth = auth
        .ok()
        .and_then(|auth| auth.get("token")?.as_str().map(str::to_owned));
    let peer = auth::peer(&socket.req_parts().extensions);
    let https = auth::over_https(headers, peer, &core.config);
    let (token, via_cookie) = match from_auth {
        Some(token) => (token, false),
        None => match auth::token_from_headers(headers, https) {
            Ok(Some(found)) => found,
            Ok(None) => return Err(unauthorized()),
            Err(error) => {
                tracing::info!(%error, "handshake refused");
                return Err(unauthorized());
            }
        },
    };
    if via_cookie && auth::check_origin(headers, https, core.config.public_url.as_ref()).is_err() {
        return Err(unauthorized());
    }
    let internal = |error: AppError| {
        tracing::error!(%error, "handshake: session lookup failed");
        Refused(error.code())
    };
    let Some((session_id, user)) = auth::lookup_session(&core.db, &token)
        .await
        .map_err(internal)?
    else {
        return Err(unauthorized());
    };
    let limits = &core.config.limits;
    let seat = core
        .user_sockets
        .seat(&user.id, limits.max_sockets_per_user)
        .ok_or(Refused(ErrorCode::RateLimited))?;
    let identity = Identity { session_id, user };
    let state = SocketState::new(identity, CommandBudget::new(limits), seat);
    accept(&socket, Arc::new(state));
    // A logout that committed between the lookup and `accept` joining the
    // session's room has missed this socket: look again now that it is in.
    match auth::lookup_session(&core.db, &token).await {
        Ok(Some(_)) => {}
        Ok(None) => return Err(unauthorized()),
        Err(error) => return Err(internal(error)),
    }
    // From here on the session's polling and upgrade requests are served
    // only from this client address (before the client hears its CONNECT
    // answer, so before it can show anyone the socket's id).
    let client = request_client(
        &socket.req_parts().extensions,
        headers,
        &limits.trusted_proxies,
    );
    core.session_owners.bind(socket.id.to_string(), client);
    Ok(())
}

/// Sets an accepted socket up: its state (the only place it is inserted),
/// its rooms, then its handlers.
/// This runs in the middleware, before the CONNECT packet goes out:
/// socketioxide spawns the connect handler only after sending it, so a
/// client that emits as soon as it is connected could otherwise reach a
/// socket without handlers (its command silently dropped) or not yet in its
/// session room (missed by a logout).
fn accept<A: Adapter>(socket: &SocketRef<A>, state: Arc<SocketState>) {
    socket.join([
        user_room(&state.identity.user.id),
        session_room(&state.identity.session_id),
    ]);
    socket.extensions.insert(state);
    commands::register(socket);
}

/// Everything was set up by [`accept`] in the middleware.
pub async fn on_connect<A: Adapter>(_socket: SocketRef<A>) {
    tracing::debug!("socket connected");
}
