//! What the server asks of the Socket.IO adapter, behind one object-safe
//! trait ([`RoomOps`]), so that [`Rooms`](super::rooms::Rooms) is written
//! once whichever adapter carries the rooms: the in-process one, or the
//! Redis one that spreads rooms over several nodes.
//!
//! With Redis, an operation that must reach other nodes is bounded by
//! [`ADAPTER_TIMEOUT`]; when Redis does not carry it, the operation is
//! applied to this node's sockets and the error is returned.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::{BroadcastError, SocketIo};

use crate::fanout::identity::SocketState;

/// How long an operation that crosses nodes may take before this node
/// gives up on the other nodes and applies it locally.
pub const ADAPTER_TIMEOUT: Duration = Duration::from_millis(500);

/// A boxed future of a room operation.
pub type RoomFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A room operation the adapter could not carry to every node.
#[derive(Debug, thiserror::Error)]
#[error("adapter: {0}")]
pub struct RoomError(String);

impl RoomError {
    pub fn from_display(error: impl Display) -> RoomError {
        RoomError(error.to_string())
    }

    pub fn timeout() -> RoomError {
        RoomError(format!("no answer within {ADAPTER_TIMEOUT:?}"))
    }
}

/// How far a broadcast went.
pub enum Reach {
    /// Every node's sockets had it.
    Everywhere,
    /// The other nodes had it; some local socket could not take it.
    LocalIncomplete,
    /// The other nodes did not have it, nor (maybe) this node's sockets.
    NotCarried(RoomError),
}

/// What the server asks of the Socket.IO adapter, whatever it is.
pub trait RoomOps: Send + Sync + 'static {
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
    /// The states of this node's sockets in `room`.
    fn local_states(&self, room: String) -> Vec<Arc<SocketState>>;
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
                SocketState::of(&socket)
                    .is_some_and(|state| allowed.contains(&state.identity.session_id))
            });
            if !may_watch {
                tracing::info!(%room, "socket may no longer watch: disconnected");
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
                tracing::warn!(%error, event,
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

    fn local_states(&self, room: String) -> Vec<Arc<SocketState>> {
        self.local()
            .to(room)
            .sockets()
            .iter()
            .filter_map(|socket| SocketState::of(socket))
            .collect()
    }

    fn close(&self) -> RoomFuture<'_, ()> {
        Box::pin(SocketIo::close(self))
    }
}
