//! The fan-out core: how a committed event reaches every socket that may
//! see it, on every node. It sits on a low floor: it imports only the
//! ground (`config`, `db`, `error`, `limits`, `metrics`) and the protocol
//! crate, and the feature modules and the socket edge import it, never
//! the other way round.
//!
//! - [`identity`]: the user of a session, and the one typed state of an
//!   accepted socket;
//! - [`names`]: the rooms only the server uses;
//! - [`adapter`] and [`rooms`]: room operations on every node, whichever
//!   Socket.IO adapter carries them;
//! - [`line`]: each vault's committed events, broadcast from this node in
//!   seq order;
//! - [`publish`]: the one publish step, where each event kind's effect on
//!   rooms (eviction, closing, presence) is decided;
//! - [`announced`]: what this node last told each vault room (`vault:head`);
//! - [`members`]: who may receive a vault's events, when rooms cannot be
//!   trusted;
//! - [`cluster`]: the Redis driver of the adapter, and the link's health.
//!
//! Rooms carry all the cross-socket state: `user:{userId}` and
//! `session:{sessionId}` (every socket of a user or a session),
//! `vault:{vaultId}` (the watchers of a vault, where events are
//! published), `vault:{vaultId}:joining` (a socket whose join is under
//! way) and `vault:{vaultId}:watcher:{userId}:{socketId}` (one socket
//! watching one vault, for presence counts).

pub mod adapter;
pub mod announced;
pub mod cluster;
pub mod identity;
pub mod line;
pub mod members;
pub mod names;
pub mod publish;
pub mod rooms;

use std::sync::Arc;

use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::fanout::announced::Announced;
use crate::fanout::cluster::Link;
use crate::fanout::line::{Lines, Ticket};
use crate::fanout::publish::Committed;
use crate::fanout::rooms::Rooms;
use crate::metrics::Metrics;

/// A node's fan-out: its rooms, its publishing lines, the heads it
/// announced, and with Redis the link's health.
#[derive(Clone)]
pub struct Fanout {
    pub rooms: Rooms,
    /// Each vault's committed events, broadcast from this node in seq order.
    pub lines: Arc<Lines>,
    /// The heads this node published or announced (`vault:head`).
    pub announced: Arc<Announced>,
    pub link: Option<Link>,
    /// Vaults whose watchers changed: the presence task coalesces them into
    /// one `presence` signal per vault.
    presence: mpsc::UnboundedSender<String>,
    /// Reads the members' live sessions when rooms cannot be trusted.
    db: AnyPool,
    metrics: Arc<Metrics>,
}

impl Fanout {
    /// The fan-out over `rooms`, and the receiving end of its presence
    /// requests (for the presence task).
    pub fn new(
        rooms: Rooms,
        link: Option<Link>,
        db: AnyPool,
        metrics: Arc<Metrics>,
    ) -> (Fanout, mpsc::UnboundedReceiver<String>) {
        let (presence, requests) = mpsc::unbounded_channel();
        let fanout = Fanout {
            rooms,
            lines: Arc::default(),
            announced: Arc::default(),
            link,
            presence,
            db,
            metrics,
        };
        (fanout, requests)
    }

    /// Asks for a `presence` signal to the vault's room soon (coalesced).
    pub fn request_presence(&self, vault_id: String) {
        if self.presence.send(vault_id).is_err() {
            tracing::debug!("presence task has stopped");
        }
    }

    /// Publishes a committed event in its ticket's turn (see
    /// [`Ticket::publish`]), with its effect on rooms.
    pub async fn publish(&self, ticket: Ticket, event: Committed) {
        let vault_id = ticket.vault_id().to_owned();
        ticket
            .publish(event, |event| self.deliver(&vault_id, event))
            .await;
    }
}
