//! Room operations that REST handlers, the publish path and the node's
//! background tasks call: broadcast to a vault, disconnect a session, evict
//! a removed member, close a deleted vault's rooms, count who watches a
//! vault, and announce a vault's head to this node's watchers.
//!
//! [`Rooms`] is written once for every adapter (see [`adapter`](super::adapter)).
//! Everything that crosses sockets goes through rooms, so each operation
//! reaches the sockets of every node; the only per-node maps are this
//! node's publishing lines, its announced heads and its per-user socket
//! counts, which are about this node's own work.
//!
//! With Redis, an operation that must reach other nodes is bounded by
//! [`ADAPTER_TIMEOUT`](super::adapter::ADAPTER_TIMEOUT); when Redis does not carry it, the operation is
//! applied to this node's sockets (local rooms keep working) and reported.
//! A broadcast that only reached this node is *guarded*: removals and
//! logouts made on other nodes meanwhile could not reach this node's rooms,
//! so each local socket's session is checked against the database before it
//! receives a vault's event, and a socket that may no longer watch the vault
//! is disconnected (it reconnects, and its rejoin is checked again).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use syncscript_protocol::{Removed, signals, user_room, vault_room};

use crate::error::AppError;
use crate::fanout::adapter::{Reach, RoomError, RoomOps};
use crate::fanout::names::{is_watcher_room, joining_room, vault_of_room, watcher_prefix};
use crate::metrics::RoomCounts;

/// The rooms of every node, whatever adapter carries them.
#[derive(Clone)]
pub struct Rooms {
    ops: Arc<dyn RoomOps>,
}

impl Rooms {
    /// Rooms carried by `io`'s adapter.
    pub fn new<A: Adapter>(io: SocketIo<A>) -> Rooms {
        Rooms { ops: Arc::new(io) }
    }

    /// Emits an event or signal to every socket in `room`, on every node
    /// when the adapter carries it, otherwise on this node.
    pub async fn broadcast(&self, room: String, event: &str, payload: &Value) {
        match self.ops.broadcast(room.clone(), event, payload).await {
            Reach::Everywhere => {}
            Reach::LocalIncomplete => self.ops.emit_local(room, Some((event, payload)), None),
            Reach::NotCarried(error) => {
                tracing::warn!(%error, event, "broadcast delivered on this node only");
                self.ops.emit_local(room, Some((event, payload)), None);
            }
        }
    }

    /// Emits a vault's event or signal to its room on every node. When the
    /// other nodes cannot be reached, this node's watchers get it only
    /// after their sessions are checked against `allowed` (the vault's
    /// members' live sessions, read only then). Returns how many of this
    /// node's sockets are in the room afterwards (the deliveries it made).
    pub async fn broadcast_to_vault<F>(
        &self,
        vault_id: &str,
        event: &str,
        payload: &Value,
        allowed: F,
    ) -> usize
    where
        F: Future<Output = Result<HashSet<String>, AppError>>,
    {
        let room = vault_room(vault_id);
        self.deliver_to_vault(room.clone(), vault_id, event, payload, allowed)
            .await;
        self.ops.local_members(room)
    }

    async fn deliver_to_vault<F>(
        &self,
        room: String,
        vault_id: &str,
        event: &str,
        payload: &Value,
        allowed: F,
    ) where
        F: Future<Output = Result<HashSet<String>, AppError>>,
    {
        match self.ops.broadcast(room.clone(), event, payload).await {
            Reach::Everywhere => {}
            Reach::LocalIncomplete => self.ops.emit_local(room, Some((event, payload)), None),
            Reach::NotCarried(error) => {
                tracing::warn!(%error, %vault_id, event,
                    "other nodes unreachable: delivering to this node's checked watchers");
                match allowed.await {
                    Ok(allowed) => {
                        self.ops
                            .emit_local(room, Some((event, payload)), Some(&allowed))
                    }
                    // Unknown members: nobody here may be sent the event;
                    // they reconnect and catch up by seq.
                    Err(error) => {
                        tracing::warn!(%error, %vault_id, "members unreadable: disconnecting the vault's local watchers");
                        self.ops.emit_local(room, None, Some(&HashSet::new()));
                    }
                }
            }
        }
    }

    /// Emits to `room`'s sockets on this node only.
    pub fn emit_local(&self, room: String, event: &str, payload: &Value) {
        self.ops.emit_local(room, Some((event, payload)), None);
    }

    /// Disconnects this node's sockets of a vault's room whose session is
    /// not in `allowed`.
    pub fn enforce_local(&self, vault_id: &str, allowed: &HashSet<String>) {
        self.ops
            .emit_local(vault_room(vault_id), None, Some(allowed));
    }

    /// Disconnects every socket in `room` (logout: the session's room).
    pub async fn disconnect(&self, room: String) {
        if let Err(error) = self.ops.disconnect(room).await {
            tracing::warn!(%error, "disconnect applied on this node only");
        }
    }

    /// After `member:removed` was published: the member's sockets leave
    /// the vault's room (and a join's catch-up in progress stops, see
    /// [`joining_room`]), then get `vault:removed`, after which nothing of
    /// the vault reaches them. (Their watcher rooms go with their next
    /// leave or disconnect: a watcher room outside the vault's room counts
    /// for nothing.)
    pub async fn evict_member(&self, vault_id: &str, user_id: &str) {
        // This node's sockets of the member leave while no catch-up can
        // send to them (see [`SendGate`](super::identity::SendGate)).
        let sockets = self.ops.local_states(user_room(user_id));
        let mut held = Vec::with_capacity(sockets.len());
        for socket in &sockets {
            held.push(socket.gate.lock().await);
        }
        if let Err(error) = self
            .ops
            .leave(
                user_room(user_id),
                vec![vault_room(vault_id), joining_room(vault_id)],
            )
            .await
        {
            tracing::warn!(%error, %vault_id, "eviction applied on this node only");
        }
        drop(held);
        let removed = Removed {
            vault_id: vault_id.to_owned(),
            reason: "You were removed from this vault".into(),
        };
        match serde_json::to_value(&removed) {
            Ok(payload) => {
                self.broadcast(user_room(user_id), signals::VAULT_REMOVED, &payload)
                    .await;
            }
            Err(error) => tracing::error!(%error, "vault:removed unserializable"),
        }
    }

    /// After `vault:deleted` was published: every socket leaves the vault's
    /// room.
    pub async fn close_vault(&self, vault_id: &str) {
        let room = vault_room(vault_id);
        if let Err(error) = self.ops.leave(room.clone(), vec![room]).await {
            tracing::warn!(%error, %vault_id, "deleted vault's room emptied on this node only");
        }
    }

    /// How many sockets each user has watching `vault_id`, on every node,
    /// from one adapter request; an error when the other nodes did not
    /// answer (the counts are then this node's).
    pub async fn watchers(&self, vault_id: &str) -> (BTreeMap<String, u32>, Option<RoomError>) {
        let (rooms, error) = self.ops.rooms_of(vault_room(vault_id)).await;
        let prefix = watcher_prefix(vault_id);
        let mut counts = BTreeMap::new();
        for room in &rooms {
            if let Some((user_id, _socket)) = room
                .strip_prefix(&prefix)
                .and_then(|rest| rest.split_once(':'))
            {
                *counts.entry(user_id.to_owned()).or_insert(0) += 1;
            }
        }
        (counts, error)
    }

    /// The vaults this node's sockets watch.
    pub async fn local_vaults(&self) -> Vec<String> {
        let mut vaults: Vec<String> = self
            .ops
            .local_rooms()
            .await
            .iter()
            .filter_map(|room| vault_of_room(room).map(str::to_owned))
            .collect();
        vaults.sort_unstable();
        vaults.dedup();
        vaults
    }

    /// Sockets connected to this node.
    pub fn local_sockets(&self) -> usize {
        self.ops.local_sockets()
    }

    /// This node's sockets, the vaults they watch and their joins.
    pub async fn counts(&self) -> RoomCounts {
        let rooms = self.ops.local_rooms().await;
        let vaults = rooms
            .iter()
            .filter(|room| vault_of_room(room).is_some())
            .count();
        let joined = rooms.iter().filter(|room| is_watcher_room(room)).count();
        RoomCounts {
            sockets: self.ops.local_sockets(),
            vaults,
            joined,
        }
    }

    /// Closes every socket of this node, telling each client why (shutdown).
    pub async fn close_all(&self) {
        self.ops.close().await;
    }
}
