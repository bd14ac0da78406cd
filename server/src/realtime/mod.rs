//! Socket.IO on the REST port, split by job:
//! - [`handshake`]: the connect middleware that authenticates a socket and
//!   sets it up (identity, its `user:` and `session:` rooms, handlers);
//! - [`commands`]: what a socket may send (join with catch-up, leave, the
//!   source commands, forged server events) and its disconnect;
//! - [`rooms`]: room operations that REST handlers and the publish path
//!   call (broadcast, eviction, logout, closing a deleted vault);
//! - [`presence`]: the coalesced `presence` signal.
//!
//! Rooms carry all the cross-socket state, so that the same code keeps
//! working when an adapter spreads rooms over several nodes:
//! `user:{userId}` and `session:{sessionId}` (every socket of a user or a
//! session), `vault:{vaultId}` (the watchers of a vault, where events are
//! published) and `vault:{vaultId}:user:{userId}` (one user's watchers of one
//! vault, for eviction and presence counts). Handlers are generic over the
//! adapter.

pub mod commands;
pub mod handshake;
pub mod presence;
pub mod rooms;

use socketioxide::SocketIo;
use socketioxide::adapter::LocalAdapter;
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;

use crate::state::Core;

/// Packets a socket may have queued; catch-up waits for room beyond it.
const SOCKET_BUFFER: usize = 1024;

/// Builds the Socket.IO layer and handle on the in-process adapter, with
/// the `/` namespace's handlers.
pub fn layer(core: Core) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder()
        .with_state(core)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    io.ns(
        "/",
        handshake::on_connect::<LocalAdapter>.with(handshake::authenticate::<LocalAdapter>),
    );
    (layer, io)
}
