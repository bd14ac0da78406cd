//! What a socket may send, one file per command, and its disconnect. Each
//! command opens the same way ([`Command::open`](crate::socket::command::Command::open))
//! and calls the same service functions and permission checks as REST.

mod disconnect;
mod forged;
mod join;
mod leave;
mod source_create;
mod source_delete;
mod source_update;

use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use syncscript_protocol::commands;

/// Gives an accepted socket its command handlers.
pub fn register<A: Adapter>(socket: &SocketRef<A>) {
    socket.on(commands::VAULT_JOIN, join::join::<A>);
    socket.on(commands::VAULT_LEAVE, leave::leave::<A>);
    socket.on(commands::SOURCE_CREATE, source_create::source_create::<A>);
    socket.on(commands::SOURCE_UPDATE, source_update::source_update::<A>);
    socket.on(commands::SOURCE_DELETE, source_delete::source_delete::<A>);
    socket.on_fallback(forged::other_event::<A>);
    socket.on_disconnect(disconnect::disconnect::<A>);
}
