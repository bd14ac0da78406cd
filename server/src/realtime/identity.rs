//! Who a socket belongs to, stored in its extensions at the handshake.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::auth::SessionUser;
use crate::error::AppError;

/// The session and user of an authenticated socket.
#[derive(Debug, Clone)]
pub struct Identity {
    pub session_id: String,
    pub user: SessionUser,
}

/// The identity the handshake stored on `socket`.
pub fn of<A: Adapter>(socket: &SocketRef<A>) -> Result<Identity, AppError> {
    socket
        .extensions
        .get::<Identity>()
        .ok_or_else(|| AppError::Unauthorized("Socket is not authenticated".into()))
}
