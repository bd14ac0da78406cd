//! Catch-up: the events a joining socket missed, replayed before any live
//! one. The bulk is replayed before the socket joins the vault's room (with
//! backpressure: a large catch-up waits for the client rather than drop
//! events), the tail under a hold of the vault's publishing line (see
//! [`line`](crate::fanout::line)); a socket evicted meanwhile gets nothing
//! more (see [`SendGate`](crate::fanout::identity::SendGate)).

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};
use syncscript_protocol::{Resync, signals};

use crate::error::AppError;
use crate::events;
use crate::fanout::identity::SocketState;
use crate::fanout::names::joining_room;
use crate::socket::command::emit;
use crate::state::AppState;

/// Events replayed per database page during catch-up.
const REPLAY_PAGE: i64 = 500;
/// How long a catch-up waits for a client that stopped reading.
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// How often a full socket buffer is looked at again.
const STALL_POLL: Duration = Duration::from_millis(10);

/// Why a join did not complete.
pub enum JoinFailure {
    /// Answered to the client with the contract's error.
    Refused(AppError),
    /// The socket went away, or stopped reading, during the join: there is
    /// nobody to answer.
    Gone(SendFailure),
}

impl From<AppError> for JoinFailure {
    fn from(error: AppError) -> JoinFailure {
        JoinFailure::Refused(error)
    }
}

impl From<SendFailure> for JoinFailure {
    fn from(failure: SendFailure) -> JoinFailure {
        JoinFailure::Gone(failure)
    }
}

/// A join refused: not a member, or no longer one.
pub fn access_denied() -> AppError {
    AppError::Forbidden("Access denied to vault".into())
}

/// How far the bulk of a catch-up went.
#[derive(Debug, Clone, Copy)]
pub struct Replayed {
    /// The last seq replayed (or `since` when none was).
    pub cursor: i64,
    pub events: u64,
}

/// Replays every event after `since` up to `head` that this node no longer
/// has to broadcast (the rest is for the tail), or sends `vault:resync` (and
/// `None`) when they are no longer all retained or `since` is ahead of the
/// head.
pub async fn catch_up<A: Adapter>(
    socket: &SocketRef<A>,
    me: &SocketState,
    state: &AppState,
    vault_id: &str,
    since: i64,
    head: i64,
) -> Result<Option<Replayed>, JoinFailure> {
    if since > head || !events::replayable(&state.db, vault_id, since, head, state).await? {
        let resync = Resync {
            vault_id: vault_id.to_owned(),
            seq: head,
        };
        emit(socket, signals::VAULT_RESYNC, &resync);
        state.metrics.replayed(0);
        return Ok(None);
    }
    let sent = state.fanout.lines.sent_through(vault_id, head);
    let events = replay(socket, me, state, vault_id, since, sent, Pace::Backpressure).await?;
    Ok(Some(Replayed {
        cursor: sent.max(since),
        events,
    }))
}

/// How a replay sends to a socket whose buffer is full.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Wait for room (the bulk of a catch-up, nothing else is held).
    Backpressure,
    /// Give up at once: the vault's line is held (the tail).
    Immediate,
}

/// Sends every event with `from < seq <= to`, page by page; returns how
/// many.
pub async fn replay<A: Adapter>(
    socket: &SocketRef<A>,
    me: &SocketState,
    state: &AppState,
    vault_id: &str,
    from: i64,
    to: i64,
    pace: Pace,
) -> Result<u64, JoinFailure> {
    let mut cursor = from;
    let mut sent = 0;
    while cursor < to {
        let page = events::page(&state.db, vault_id, cursor, REPLAY_PAGE.min(to - cursor)).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for event in page {
            send_replayed(socket, me, vault_id, &event.name, &event.payload, pace).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends one replayed event, only while the socket is still in the vault's
/// joining room: an eviction empties it before it sends `vault:removed`,
/// after which nothing of the vault may reach the socket. The room is
/// looked at again after every wait for buffer space.
async fn send_replayed<A: Adapter>(
    socket: &SocketRef<A>,
    me: &SocketState,
    vault_id: &str,
    event: &str,
    payload: &Value,
    pace: Pace,
) -> Result<(), JoinFailure> {
    let joining = joining_room(vault_id);
    let deadline = tokio::time::Instant::now() + STALL_LIMIT;
    loop {
        let sent = {
            let _held = me.gate.lock().await;
            if !socket.rooms().iter().any(|room| *room == joining) {
                return Err(JoinFailure::Refused(access_denied()));
            }
            socket.emit(event, payload)
        };
        match sent {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if matches!(pace, Pace::Backpressure) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(STALL_POLL).await;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                return stalled(socket).map_err(JoinFailure::from);
            }
            Err(_) => return Err(SendFailure::Closed.into()),
        }
    }
}

/// Why a socket could not be sent to.
#[derive(Debug)]
pub enum SendFailure {
    /// The client disconnected: normal life for a server.
    Closed,
    /// The client stopped reading (its buffer stayed full past
    /// [`STALL_LIMIT`], or was full while the vault's line was held): it is
    /// disconnected, and will catch up by seq when it reconnects.
    Stalled,
}

impl SendFailure {
    pub fn log(&self) {
        match self {
            SendFailure::Closed => {
                tracing::debug!("join not completed: the client disconnected");
            }
            SendFailure::Stalled => {
                tracing::info!("join not completed: the client stopped reading");
            }
        }
    }
}

/// Emits, waiting while the socket's buffer is full (a large catch-up must
/// not drop events); gives up only when the client stops reading.
pub async fn send_with_backpressure<A: Adapter, T: Serialize + ?Sized>(
    socket: &SocketRef<A>,
    event: &str,
    payload: &T,
) -> Result<(), SendFailure> {
    let deadline = tokio::time::Instant::now() + STALL_LIMIT;
    while tokio::time::Instant::now() < deadline {
        match socket.emit(event, payload) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tokio::time::sleep(STALL_POLL).await;
            }
            Err(_) => return Err(SendFailure::Closed),
        }
    }
    stalled(socket)
}

/// Disconnects a client that stopped reading; it will catch up by seq.
fn stalled<A: Adapter>(socket: &SocketRef<A>) -> Result<(), SendFailure> {
    if let Err(error) = socket.clone().disconnect() {
        tracing::debug!(%error, "stalled socket was already gone");
    }
    Err(SendFailure::Stalled)
}
