//! The state every REST handler and Socket.IO handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::AnyPool;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::db::Pools;
use crate::limits::{AuthLimiter, UserSockets};
use crate::metrics::Metrics;
use crate::realtime::announced::Heads;
use crate::realtime::cluster::Link;
use crate::realtime::publisher::Publisher;
use crate::realtime::rooms::Rooms;

/// Everything but the Socket.IO handle: what exists before the Socket.IO
/// layer does, and what its handlers receive as `State`.
#[derive(Clone)]
pub struct Core {
    /// Reads (and, on PostgreSQL, writes).
    pub db: AnyPool,
    /// Every write goes through this pool: on SQLite it has one connection,
    /// so writers queue here in order instead of in SQLite's sleeping busy
    /// handler; on PostgreSQL it is the same pool as `db`.
    pub writer: AnyPool,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// The heads this node published or announced (`vault:head`).
    pub heads: Arc<Heads>,
    /// Each vault's committed events, broadcast from this node in seq order.
    pub publisher: Arc<Publisher>,
    /// Login and signup attempts per client address.
    pub auth_limiter: Arc<AuthLimiter>,
    /// Open sockets per user on this node.
    pub user_sockets: Arc<UserSockets>,
    /// Vaults whose watchers changed: the presence task coalesces them into
    /// one `presence` signal per vault.
    presence: mpsc::UnboundedSender<String>,
}

impl Core {
    /// The core state, and the receiving end of its presence requests (for
    /// `realtime::presence::spawn`).
    pub fn new(pools: Pools, config: Config) -> (Core, mpsc::UnboundedReceiver<String>) {
        let (presence, requests) = mpsc::unbounded_channel();
        let core = Core {
            db: pools.read,
            writer: pools.write,
            metrics: Arc::new(Metrics::new(&config.node_id)),
            auth_limiter: Arc::new(AuthLimiter::new(&config.limits)),
            user_sockets: Arc::default(),
            config: Arc::new(config),
            heads: Arc::default(),
            publisher: Arc::default(),
            presence,
        };
        (core, requests)
    }

    /// Asks for a `presence` signal to the vault's room soon (coalesced).
    pub fn request_presence(&self, vault_id: String) {
        if self.presence.send(vault_id).is_err() {
            tracing::debug!("presence task has stopped");
        }
    }
}

/// What a REST handler needs: the core, the rooms through which committed
/// events are published, and with Redis the link's health.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub rooms: Rooms,
    pub link: Option<Link>,
}

impl std::ops::Deref for AppState {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Arc<Metrics> {
        state.metrics.clone()
    }
}

impl FromRef<AppState> for Rooms {
    fn from_ref(state: &AppState) -> Rooms {
        state.rooms.clone()
    }
}
