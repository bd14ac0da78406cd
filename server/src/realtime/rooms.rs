//! Room operations that REST handlers, the publish path and the node's
//! background tasks call: broadcast to a vault, disconnect a session, evict
//! a removed member, close a deleted vault's rooms, count who watches a
//! vault, and announce a vault's head to this node's watchers.
//!
//! [`Rooms`] hides the Socket.IO adapter behind one object-safe trait, so
//! that the rest of the server is written once whichever adapter carries
//! the rooms (the in-process one, or the Redis one that spreads rooms over
//! several nodes). Everything goes through rooms, never through a
//! per-process map of sockets, so each operation reaches the sockets of
//! every node.
//!
//! With Redis, an operation that must reach other nodes is bounded by
//! [`ADAPTER_TIMEOUT`]; when Redis does not carry it, the operation is
//! applied to this node's sockets (local rooms keep working) and reported.
//! A broadcast that only reached this node is *guarded*: removals and
//! logouts made on other nodes meanwhile could not reach this node's rooms,
//! so each local socket's session is checked against the database before it
//! receives a vault's event, and a socket that may no longer watch the vault
//! is disconnected (it reconnects, and its rejoin is checked again).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::{BroadcastError, SocketIo};
use syncscript_protocol::{Removed, signals, user_room, vault_room};

use crate::error::AppError;
use crate::metrics::RoomCounts;
use crate::realtime::identity;

/// How long an operation that crosses nodes may take before this node
/// gives up on the other nodes and applies it locally.
pub const ADAPTER_TIMEOUT: Duration = Duration::from_millis(500);

/// A boxed future of a room operation.
type RoomFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room operation the adapter could not carry to every node.
#[derive(Debug, thiserror::Error)]
#[error("adapter: {0}")]
pub struct RoomError(String);

impl RoomError {
    fn from_display(error: impl Display) -> RoomError {
        RoomError(error.to_string())
    }

    fn timeout() -> RoomError {
        RoomError(format!("no answer within {ADAPTER_TIMEOUT:?}"))
    }
}

/// The room in which one socket watches one vault: its name carries the
/// user, so that one adapter request (the rooms of a vault room's sockets)
/// counts every user's watchers on every node.
pub fn watcher_room(vault_id: &str, user_id: &str, socket_id: &str) -> String {
    format!("vault:{vault_id}:watcher:{user_id}:{socket_id}")
}

/// A socket's gate for replayed events: a catch-up checks that the socket
/// may still receive the vault and sends under it, an eviction takes the
/// socket out of the vault's rooms under it, so that no replayed event can
/// follow `vault:removed`.
#[derive(Debug, Clone, Default)]
pub struct SendGate(Arc<tokio::sync::Mutex<()>>);

impl SendGate {
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// The vaults a socket joined and has not left, kept in its extensions
/// beside its rooms. A disconnect may find the rooms already emptied:
/// when a client's disconnect packet is followed at once by the close of
/// its transport, socketioxide clears the socket's rooms on the close
/// while the handler of the disconnect packet has yet to run. Presence
/// must still be signalled for every vault the socket watched.
#[derive(Debug, Clone, Default)]
pub struct Watched(Arc<std::sync::Mutex<BTreeSet<String>>>);

impl Watched {
    pub fn add(&self, vault_id: &str) {
        self.vaults().insert(vault_id.to_owned());
    }

    pub fn remove(&self, vault_id: &str) {
        self.vaults().remove(vault_id);
    }

    /// Every vault recorded, leaving the record empty.
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.vaults())
    }

    fn vaults(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        // The set stays whole whatever a panicking holder did.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The room a socket is in while its `vault:join` runs: a catch-up
/// replays only while the socket is still in it, and an eviction takes the
/// member's sockets out of it.
pub fn joining_room(vault_id: &str) -> String {
    format!("vault:{vault_id}:joining")
}

/// The vault id of a `vault:{vaultId}` room (not of its sub-rooms).
pub fn vault_of_room(room: &str) -> Option<&str> {
    room.strip_prefix("vault:")
        .filter(|rest| !rest.contains(':'))
}

/// How far a broadcast went.
enum Reach {
    /// Every node's sockets had it.
    Everywhere,
    /// The other nodes had it; some local socket could not take it.
    LocalIncomplete,
    /// The other nodes did not have it, nor (maybe) this node's sockets.
    NotCarried(RoomError),
}

/// What the server asks of the Socket.IO adapter, whatever it is.
trait RoomOps: Send + Sync + 'static {
    /// Emits to every socket of `room` on every node.
    fn broadcast<'a>(
        &'a self,
        room: String,
        event: &'a str,
        payload: &'a Value,
    ) -> RoomFuture<'a, Reach>;
    /// Emits `message` to every socket of `room` on this node whose session
    /// is in `allowed` (all of them without it); the others leave the room
    /// and are disconnected. A
    /// socket whose buffer is full is lagging: it is disconnected too, so
    /// that it reconnects and catches up by seq instead of silently missing
    /// the event.
    fn emit_local(
        &self,
        room: String,
        message: Option<(&str, &Value)>,
        allowed: Option<&HashSet<String>>,
    );
    /// Disconnects every socket of `room`.
    fn disconnect(&self, room: String) -> RoomFuture<'_, Result<(), RoomError>>;
    /// Makes every socket of `room` leave `rooms`.
    fn leave(&self, room: String, rooms: Vec<String>) -> RoomFuture<'_, Result<(), RoomError>>;
    /// Every room of the sockets of `room`, on every node (this node's only,
    /// with the error, when the others do not answer).
    fn rooms_of(&self, room: String) -> RoomFuture<'_, (Vec<String>, Option<RoomError>)>;
    /// The rooms of this node's sockets.
    fn local_rooms(&self) -> RoomFuture<'_, Vec<String>>;
    /// Sockets connected to this node.
    fn local_sockets(&self) -> usize;
    /// This node's sockets in `room`.
    fn local_members(&self, room: String) -> usize;
    /// The send gates of this node's sockets in `room`.
    fn local_gates(&self, room: String) -> Vec<SendGate>;
    /// Closes every socket of this node (shutdown).
    fn close(&self) -> RoomFuture<'_, ()>;
}

/// Runs a cross-node operation within [`ADAPTER_TIMEOUT`].
async fn bounded<T, E: Display>(
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, RoomError> {
    match tokio::time::timeout(ADAPTER_TIMEOUT, operation).await {
        Ok(result) => result.map_err(RoomError::from_display),
        Err(_) => Err(RoomError::timeout()),
    }
}

fn owned(rooms: Vec<Cow<'static, str>>) -> Vec<String> {
    rooms.into_iter().map(Cow::into_owned).collect()
}

impl<A: Adapter> RoomOps for SocketIo<A> {
    fn broadcast<'a>(
        &'a self,
        room: String,
        event: &'a str,
        payload: &'a Value,
    ) -> RoomFuture<'a, Reach> {
        Box::pin(async move {
            let emit = self.to(room).emit(event, payload);
            match tokio::time::timeout(ADAPTER_TIMEOUT, emit).await {
                Ok(Ok(())) => Reach::Everywhere,
                // The adapter reached the other nodes before it emitted to
                // this node's sockets, and only those failed.
                Ok(Err(BroadcastError::Socket(_))) => Reach::LocalIncomplete,
                Ok(Err(error)) => Reach::NotCarried(RoomError::from_display(error)),
                Err(_) => Reach::NotCarried(RoomError::timeout()),
            }
        })
    }

    fn emit_local(
        &self,
        room: String,
        message: Option<(&str, &Value)>,
        allowed: Option<&HashSet<String>>,
    ) {
        for socket in self.local().to(room.clone()).sockets() {
            let may_watch = allowed.is_none_or(|allowed| {
                identity::of(&socket).is_ok_and(|identity| allowed.contains(&identity.session_id))
            });
            if !may_watch {
                tracing::info!(sid = %socket.id, %room, "socket may no longer watch: disconnected");
                socket.leave(room.clone());
                if let Err(error) = socket.disconnect() {
                    tracing::debug!(%error, "socket was already gone");
                }
                continue;
            }
            let Some((event, payload)) = message else {
                continue;
            };
            if let Err(error) = socket.emit(event, payload) {
                tracing::warn!(%error, sid = %socket.id, event,
                    "lagging socket disconnected; it will catch up by seq");
                if let Err(error) = socket.disconnect() {
                    tracing::debug!(%error, "lagging socket was already gone");
                }
            }
        }
    }

    fn disconnect(&self, room: String) -> RoomFuture<'_, Result<(), RoomError>> {
        Box::pin(async move {
            let remote = bounded(self.to(room.clone()).disconnect()).await;
            if remote.is_err() {
                bounded(self.local().to(room).disconnect()).await?;
            }
            remote
        })
    }

    fn leave(&self, room: String, rooms: Vec<String>) -> RoomFuture<'_, Result<(), RoomError>> {
        Box::pin(async move {
            let remote = bounded(self.to(room.clone()).leave(rooms.clone())).await;
            if remote.is_err() {
                bounded(self.local().to(room).leave(rooms)).await?;
            }
            remote
        })
    }

    fn rooms_of(&self, room: String) -> RoomFuture<'_, (Vec<String>, Option<RoomError>)> {
        Box::pin(async move {
            match bounded(self.to(room.clone()).rooms()).await {
                Ok(rooms) => (owned(rooms), None),
                Err(error) => {
                    let local = bounded(self.local().to(room).rooms()).await;
                    (owned(local.unwrap_or_default()), Some(error))
                }
            }
        })
    }

    fn local_rooms(&self) -> RoomFuture<'_, Vec<String>> {
        Box::pin(async move {
            match bounded(self.local().rooms()).await {
                Ok(rooms) => owned(rooms),
                Err(error) => {
                    tracing::warn!(%error, "could not list this node's rooms");
                    Vec::new()
                }
            }
        })
    }

    fn local_sockets(&self) -> usize {
        self.sockets().len()
    }

    fn local_members(&self, room: String) -> usize {
        self.local().to(room).sockets().len()
    }

    fn local_gates(&self, room: String) -> Vec<SendGate> {
        self.local()
            .to(room)
            .sockets()
            .into_iter()
            .filter_map(|socket| socket.extensions.get::<SendGate>())
            .collect()
    }

    fn close(&self) -> RoomFuture<'_, ()> {
        Box::pin(SocketIo::close(self))
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
        // send to them (see [`SendGate`]).
        let gates = self.ops.local_gates(user_room(user_id));
        let mut held = Vec::with_capacity(gates.len());
        for gate in &gates {
            held.push(gate.0.lock().await);
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
        let prefix = format!("vault:{vault_id}:watcher:");
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
        let joined = rooms
            .iter()
            .filter(|room| room.starts_with("vault:") && room.contains(":watcher:"))
            .count();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_vault_rooms_name_a_vault() {
        assert_eq!(vault_of_room("vault:abc"), Some("abc"));
        assert_eq!(vault_of_room("vault:abc:watcher:u:s"), None);
        assert_eq!(vault_of_room("user:abc"), None);
    }
}
