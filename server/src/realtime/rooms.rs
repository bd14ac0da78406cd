//! Room operations that REST handlers and the publish path call: broadcast
//! to a vault, disconnect a session, evict a removed member, close a
//! deleted vault's rooms, and count who watches a vault.
//!
//! [`Rooms`] hides the Socket.IO adapter behind one object-safe trait, so
//! that the REST side is written once whichever adapter carries the rooms
//! (the in-process one, or one that spreads rooms over several nodes).
//! Everything goes through rooms, never through a per-process map of
//! sockets, so each operation reaches the sockets of every node.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::adapter::Adapter;
use syncscript_protocol::{Removed, signals, user_room, vault_room};

/// A boxed future of a room operation.
type RoomFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RoomError>> + Send + 'a>>;

/// A room operation the adapter could not carry out everywhere.
#[derive(Debug, thiserror::Error)]
#[error("adapter: {0}")]
pub struct RoomError(String);

impl RoomError {
    fn from_display(error: impl Display) -> RoomError {
        RoomError(error.to_string())
    }
}

/// The room of one user's watchers of one vault (for eviction and presence
/// counts).
pub fn member_room(vault_id: &str, user_id: &str) -> String {
    format!("vault:{vault_id}:user:{user_id}")
}

/// What the server asks of the Socket.IO adapter, whatever it is.
trait RoomOps: Send + Sync + 'static {
    /// Emits to every socket in `room`. A local socket whose buffer is full
    /// is lagging: it is disconnected, so that it reconnects and catches up
    /// by seq instead of silently missing the event.
    fn broadcast<'a>(
        &'a self,
        room: String,
        event: &'a str,
        payload: &'a Value,
    ) -> RoomFuture<'a, ()>;
    /// Disconnects every socket in `room`.
    fn disconnect(&self, room: String) -> RoomFuture<'_, ()>;
    /// Makes every socket in `room` leave `rooms`.
    fn leave(&self, room: String, rooms: Vec<String>) -> RoomFuture<'_, ()>;
    /// How many sockets are in `room`.
    fn count(&self, room: String) -> RoomFuture<'_, usize>;
    /// Sockets connected to this node.
    fn local_sockets(&self) -> usize;
    /// Closes every socket of this node (shutdown).
    fn close(&self) -> RoomFuture<'_, ()>;
}

impl<A: Adapter> RoomOps for SocketIo<A> {
    fn broadcast<'a>(
        &'a self,
        room: String,
        event: &'a str,
        payload: &'a Value,
    ) -> RoomFuture<'a, ()> {
        Box::pin(async move {
            if self.to(room.clone()).emit(event, payload).await.is_ok() {
                return Ok(());
            }
            // Sockets that took the broadcast may get it twice here; clients
            // ignore a seq they already have.
            for socket in self.to(room).sockets() {
                if let Err(error) = socket.emit(event, payload) {
                    tracing::warn!(%error, sid = %socket.id, event,
                        "lagging socket disconnected; it will catch up by seq");
                    if let Err(error) = socket.disconnect() {
                        tracing::debug!(%error, "lagging socket was already gone");
                    }
                }
            }
            Ok(())
        })
    }

    fn disconnect(&self, room: String) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            self.to(room)
                .disconnect()
                .await
                .map_err(RoomError::from_display)
        })
    }

    fn leave(&self, room: String, rooms: Vec<String>) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            self.to(room)
                .leave(rooms)
                .await
                .map_err(RoomError::from_display)
        })
    }

    fn count(&self, room: String) -> RoomFuture<'_, usize> {
        Box::pin(async move {
            let sockets = self
                .to(room)
                .fetch_sockets()
                .await
                .map_err(RoomError::from_display)?;
            Ok(sockets.len())
        })
    }

    fn local_sockets(&self) -> usize {
        self.sockets().len()
    }

    fn close(&self) -> RoomFuture<'_, ()> {
        Box::pin(async move {
            SocketIo::close(self).await;
            Ok(())
        })
    }
}

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

    /// Emits an event or signal to every socket in `room`.
    pub async fn broadcast(&self, room: String, event: &str, payload: &Value) {
        if let Err(error) = self.ops.broadcast(room, event, payload).await {
            tracing::warn!(%error, event, "broadcast not delivered to every node");
        }
    }

    /// Disconnects every socket in `room` (logout: the session's room).
    pub async fn disconnect(&self, room: String) {
        if let Err(error) = self.ops.disconnect(room).await {
            tracing::warn!(%error, "could not disconnect every socket of a room");
        }
    }

    /// After `member:removed` was published: the member's sockets get
    /// `vault:removed` and leave the vault's rooms.
    pub async fn evict_member(&self, vault_id: &str, user_id: &str) {
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
        let room = member_room(vault_id, user_id);
        if let Err(error) = self
            .ops
            .leave(room.clone(), vec![vault_room(vault_id), room])
            .await
        {
            tracing::warn!(%error, %vault_id, "could not evict a removed member's sockets");
        }
    }

    /// After `vault:deleted` was published: every socket leaves the vault's
    /// room and the rooms of its members (`member_ids`) in that vault.
    pub async fn close_vault(&self, vault_id: &str, member_ids: impl IntoIterator<Item = String>) {
        let mut rooms = vec![vault_room(vault_id)];
        rooms.extend(member_ids.into_iter().map(|id| member_room(vault_id, &id)));
        if let Err(error) = self.ops.leave(vault_room(vault_id), rooms).await {
            tracing::warn!(%error, %vault_id, "could not empty a deleted vault's rooms");
        }
    }

    /// How many sockets `user_id` has watching `vault_id`, on every node.
    pub async fn watchers(&self, vault_id: &str, user_id: &str) -> Result<usize, RoomError> {
        self.ops.count(member_room(vault_id, user_id)).await
    }

    /// Sockets connected to this node.
    pub fn local_sockets(&self) -> usize {
        self.ops.local_sockets()
    }

    /// Closes every socket of this node, telling each client why (shutdown).
    pub async fn close_all(&self) {
        if let Err(error) = self.ops.close().await {
            tracing::warn!(%error, "could not close every socket");
        }
    }
}
