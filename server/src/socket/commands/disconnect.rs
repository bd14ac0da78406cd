//! A socket's disconnect.

use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, State};

use crate::fanout::identity::SocketState;
use crate::fanout::names::vault_of_room;
use crate::socket::Shared;

/// A disconnect leaves the socket's rooms and updates presence.
pub async fn disconnect<A: Adapter>(socket: SocketRef<A>, State(shared): State<Shared>) {
    let me = SocketState::of(&socket);
    if let Some(me) = &me {
        me.release_seat();
    }
    // The rooms may be gone already (see `Watched`); a join still under
    // way may have entered rooms it has not recorded yet: both count.
    let mut vaults = me.map(|me| me.watched.take()).unwrap_or_default();
    vaults.extend(
        socket
            .rooms()
            .iter()
            .filter_map(|room| vault_of_room(room))
            .map(str::to_owned),
    );
    // Leave now, so that a presence signal already scheduled cannot count
    // this socket after its disconnect was reported.
    socket.leave_all();
    let Some(state) = shared.get() else {
        return;
    };
    state.session_owners.release(&socket.id.to_string());
    for vault_id in vaults {
        state.fanout.request_presence(vault_id);
    }
}
