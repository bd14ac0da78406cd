//! The state every REST handler and Socket.IO handler shares.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::AnyPool;

use crate::config::Config;
use crate::db::{Opened, Pools};
use crate::fanout::Fanout;
use crate::limits::{AuthLimiter, MemberAdditions, SessionOwners, UserSockets};
use crate::metrics::Metrics;

/// What exists before the Socket.IO layer does: the pools, the
/// configuration, the metrics and the per-node limits.
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
    /// Login and signup attempts per client address.
    pub auth_limiter: Arc<AuthLimiter>,
    /// Member additions per user.
    pub member_additions: Arc<MemberAdditions>,
    /// Open sockets per user on this node.
    pub user_sockets: Arc<UserSockets>,
    /// The client address of each Socket.IO session of this node.
    pub session_owners: Arc<SessionOwners>,
    /// Connections each pool opened.
    pub opened: Opened,
}

impl Core {
    pub fn new(pools: Pools, config: Config) -> Core {
        Core {
            db: pools.read,
            writer: pools.write,
            metrics: Arc::new(Metrics::new(&config.node_id)),
            auth_limiter: Arc::new(AuthLimiter::new(&config.limits)),
            member_additions: Arc::new(MemberAdditions::new(&config.limits)),
            user_sockets: Arc::default(),
            session_owners: Arc::default(),
            opened: pools.opened,
            config: Arc::new(config),
        }
    }
}

/// What every handler, REST or Socket.IO, is given: the core and the
/// node's fan-out.
#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub fanout: Fanout,
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

impl FromRef<AppState> for Arc<AuthLimiter> {
    fn from_ref(state: &AppState) -> Arc<AuthLimiter> {
        state.auth_limiter.clone()
    }
}
