//! Who a request or socket belongs to: the user of a session, and the one
//! typed state every accepted socket carries from its handshake on.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use socketioxide::adapter::Adapter;
use socketioxide::socket::Socket;

use crate::limits::{CommandBudget, Seat};

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

/// Everything the server keeps for one socket, inserted once by the
/// handshake (as an `Arc` in the socket's extensions). A socket without it
/// was never accepted: it is refused, never served with defaults.
pub struct SocketState {
    pub identity: Identity,
    /// Its commands' rate limit.
    pub budget: CommandBudget,
    /// Its gate for replayed events (see [`SendGate`]).
    pub gate: SendGate,
    /// The vaults it joined and has not left (see [`Watched`]).
    pub watched: Watched,
    /// Its place in its user's socket limit, given up at its disconnect.
    seat: Mutex<Option<Seat>>,
}

impl SocketState {
    pub fn new(identity: Identity, budget: CommandBudget, seat: Seat) -> SocketState {
        SocketState {
            identity,
            budget,
            gate: SendGate::default(),
            watched: Watched::default(),
            seat: Mutex::new(Some(seat)),
        }
    }

    /// The state the handshake gave `socket`; `None` for a socket it never
    /// accepted.
    pub fn of<A: Adapter>(socket: &Socket<A>) -> Option<Arc<SocketState>> {
        socket.extensions.get::<Arc<SocketState>>()
    }

    /// The socket stops counting against its user's limit now, not when
    /// its last reference goes.
    pub fn release_seat(&self) {
        self.seat
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// A socket's gate for replayed events: a catch-up checks that the socket
/// may still receive the vault and sends under it, an eviction takes the
/// socket out of the vault's rooms under it, so that no replayed event can
/// follow `vault:removed`.
#[derive(Debug, Default)]
pub struct SendGate(tokio::sync::Mutex<()>);

impl SendGate {
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

/// The vaults a socket joined and has not left, kept beside its rooms. A
/// disconnect may find the rooms already emptied: when a client's
/// disconnect packet is followed at once by the close of its transport,
/// socketioxide clears the socket's rooms on the close while the handler of
/// the disconnect packet has yet to run. Presence must still be signalled
/// for every vault the socket watched.
#[derive(Debug, Default)]
pub struct Watched(Mutex<BTreeSet<String>>);

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

    fn vaults(&self) -> MutexGuard<'_, BTreeSet<String>> {
        // The set stays whole whatever a panicking holder did.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
