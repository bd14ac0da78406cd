//! Socket.IO on the REST port, split by job:
//! - [`identity`]: the user of a session, and who a socket belongs to;
//! - [`handshake`]: the connect middleware that authenticates a socket and
//!   sets it up (identity, its `user:` and `session:` rooms, handlers);
//! - [`commands`]: what a socket may send (join with catch-up, leave, the
//!   source commands, forged server events) and its disconnect;
//! - [`rooms`]: room operations that REST handlers, the publish path and
//!   the background tasks call (broadcast, eviction, logout, closing a
//!   deleted vault, watcher counts);
//! - [`presence`]: the coalesced `presence` signal;
//! - [`publisher`]: each vault's committed events, broadcast from this node
//!   in seq order;
//! - [`heads`]: the `vault:head` signal (and [`announced`], what this node
//!   last told each vault room);
//! - [`cluster`]: the Redis driver of the adapter that spreads rooms over
//!   several nodes, and the health of the link to Redis.
//!
//! Rooms carry all the cross-socket state, so that the same code works on
//! one node and on many: `user:{userId}` and `session:{sessionId}` (every
//! socket of a user or a session), `vault:{vaultId}` (the watchers of a
//! vault, where events are published) and
//! `vault:{vaultId}:watcher:{userId}:{socketId}` (one socket watching one
//! vault, for presence counts). Handlers are generic over the adapter.

pub mod announced;
pub mod cluster;
pub mod commands;
pub mod handshake;
pub mod heads;
pub mod identity;
pub mod presence;
pub mod publisher;
pub mod rooms;

use axum::Router;
use socketioxide::SocketIo;
use socketioxide::adapter::{Emitter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::realtime::cluster::{Link, RedisDriver};
use crate::realtime::rooms::{ADAPTER_TIMEOUT, Rooms};
use crate::state::{AppState, Core};

/// The Socket.IO adapter of a node in a cluster.
type RedisAdapter = CustomRedisAdapter<Emitter, RedisDriver>;

/// Packets a socket may have queued; catch-up waits for room beyond it.
const SOCKET_BUFFER: usize = 1024;

/// Bytes each WebSocket reads at a time, allocated per socket for its whole
/// life. Clients send small commands, so 1 KiB (instead of engineioxide's
/// 4 KiB) costs a larger command a few more reads and saves 3 KiB per
/// socket.
const WS_READ_BUFFER: usize = 1024;

/// Socket.IO for one node: the layer to put on the router, the rooms, and
/// with Redis the link's health and the task that watches it.
pub struct Realtime {
    /// Puts the Socket.IO layer on the router.
    pub attach: Box<dyn FnOnce(Router<AppState>) -> Router<AppState> + Send>,
    pub rooms: Rooms,
    pub link: Option<Link>,
    pub monitor: Option<tokio::task::AbortHandle>,
}

/// Builds Socket.IO on the in-process adapter, or on the Redis adapter when
/// `core.config.redis_url` is set, with the `/` namespace's handlers.
pub async fn start(core: Core) -> anyhow::Result<Realtime> {
    // The same bound on both transports: a polling request body, or a
    // WebSocket message (or frame).
    let max_message =
        usize::try_from(core.config.limits.max_socketio_payload).unwrap_or(usize::MAX);
    let builder = SocketIo::builder()
        .with_state(core.clone())
        .max_buffer_size(SOCKET_BUFFER)
        .ws_read_buffer_size(WS_READ_BUFFER)
        .max_payload(core.config.limits.max_socketio_payload)
        .ws_max_message_size(max_message)
        .ws_max_frame_size(max_message)
        .connect_timeout(core.config.limits.handshake_timeout);
    let Some(url) = core.config.redis_url.clone() else {
        let (layer, io) = builder.build_layer();
        io.ns(
            "/",
            handshake::on_connect::<LocalAdapter>.with(handshake::authenticate::<LocalAdapter>),
        );
        return Ok(Realtime {
            attach: Box::new(move |router| router.layer(layer)),
            rooms: Rooms::new(io),
            link: None,
            monitor: None,
        });
    };
    let (driver, link, monitor) = cluster::connect(&url).await?;
    // Remote requests (fetching rooms) wait for every node's answer no
    // longer than a room operation may take.
    let config = RedisAdapterConfig::new()
        .with_request_timeout(ADAPTER_TIMEOUT)
        .with_prefix("syncscript");
    let (layer, io) = builder
        .with_adapter::<RedisAdapter>(RedisAdapterCtr::new_with_driver(driver, config))
        .build_layer();
    let handler =
        handshake::on_connect::<RedisAdapter>.with(handshake::authenticate::<RedisAdapter>);
    io.ns("/", handler).await.map_err(|error| {
        monitor.abort();
        anyhow::anyhow!("cannot subscribe to the cluster's Redis channels: {error}")
    })?;
    tracing::info!(node = %core.config.node_id, %url, "rooms span every node through Redis");
    Ok(Realtime {
        attach: Box::new(move |router| router.layer(layer)),
        rooms: Rooms::new(io),
        link: Some(link),
        monitor: Some(monitor),
    })
}
