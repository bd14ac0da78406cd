//! The state every REST handler and Socket.IO handler shares.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use socketioxide::SocketIo;
use sqlx::AnyPool;

use crate::Config;
use crate::db::Pools;
use crate::metrics::Metrics;

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
    /// Vaults whose `presence` signal is already scheduled (a debounce, so a
    /// reconnect storm sends one signal, not one per socket).
    pub presence_pending: Arc<Mutex<HashSet<String>>>,
    pub metrics: Arc<Metrics>,
}

impl Core {
    pub fn new(pools: Pools, config: Config) -> Core {
        Core {
            db: pools.read,
            writer: pools.write,
            config: Arc::new(config),
            presence_pending: Arc::default(),
            metrics: Arc::default(),
        }
    }
}

/// What a REST handler needs: the core and the Socket.IO handle through
/// which committed events are published.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub io: SocketIo,
}

impl Deref for AppState {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}
