//! Who a request or socket belongs to: the user of a session, and the
//! identity a socket carries in its extensions from the handshake on.

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;

use crate::error::AppError;

/// The user behind an authenticated request or socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub id: String,
    pub email: String,
    pub name: String,
}

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
