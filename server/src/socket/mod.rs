//! The socket edge: Socket.IO on the REST port, above the feature
//! modules (it calls the same service functions as REST) and the fan-out
//! core. Split by job:
//! - [`handshake`]: the connect middleware that authenticates a socket and
//!   sets it up (its one [`SocketState`](crate::fanout::identity::SocketState),
//!   its `user:` and `session:` rooms, its handlers);
//! - [`command`]: what every command shares (its extractor with the
//!   connected check and the budget, its answer), and [`payload`], how a
//!   command's payload is read;
//! - [`commands`]: one file per command, and the disconnect;
//! - [`catch_up`]: the replay of what a joining socket missed;
//! - [`presence`]: the coalesced `presence` signal;
//! - [`head_sweep`]: the `vault:head` signal.

pub mod catch_up;
pub mod command;
pub mod commands;
pub mod handshake;
pub mod head_sweep;
pub mod payload;
pub mod presence;
pub mod session_guard;

use std::sync::{Arc, OnceLock};

use axum::Router;
use socketioxide::SocketIo;
use socketioxide::adapter::{Emitter, LocalAdapter};
use socketioxide::handler::ConnectHandler;
use socketioxide_redis::{CustomRedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

use crate::fanout::adapter::ADAPTER_TIMEOUT;
use crate::fanout::cluster::{self, Link, RedisDriver};
use crate::fanout::rooms::Rooms;
use crate::state::{AppState, Core};

/// The state Socket.IO hands its handlers: the server's whole
/// [`AppState`], set once the layer exists (the rooms are made from the
/// layer's handle, so the state cannot be given to the builder whole).
#[derive(Clone, Default)]
pub struct Shared(Arc<OnceLock<AppState>>);

impl Shared {
    /// The server's state; `None` only before [`Shared::set`], when no
    /// socket can have connected yet.
    pub fn get(&self) -> Option<&AppState> {
        self.0.get()
    }

    /// Gives the handlers the server's state (once).
    pub fn set(&self, state: AppState) {
        if self.0.set(state).is_err() {
            tracing::error!("the Socket.IO handlers' state was set twice");
        }
    }
}

/// The Socket.IO adapter of a node in a cluster.
type RedisAdapter = CustomRedisAdapter<Emitter, RedisDriver>;

/// Packets a socket may have queued; catch-up waits for room beyond it.
const SOCKET_BUFFER: usize = 1024;

/// Bytes each WebSocket reads at a time, allocated per socket for its whole
/// life. Clients send small commands, so 1 KiB (instead of engineioxide's
/// 4 KiB) costs a larger command a few more reads and saves 3 KiB per
/// socket.
const WS_READ_BUFFER: usize = 1024;

/// Socket.IO for one node: the layer to put on the router, the rooms, the
/// handlers' state to fill, and with Redis the link's health and the task
/// that watches it.
pub struct Realtime {
    /// Puts the Socket.IO layer on the router.
    pub attach: Box<dyn FnOnce(Router<AppState>) -> Router<AppState> + Send>,
    pub rooms: Rooms,
    pub shared: Shared,
    pub link: Option<Link>,
    pub monitor: Option<tokio::task::AbortHandle>,
}

/// Builds Socket.IO on the in-process adapter, or on the Redis adapter when
/// `core.config.redis_url` is set, with the `/` namespace's handlers.
pub async fn start(core: &Core) -> anyhow::Result<Realtime> {
    // The same bound on both transports: a polling request body, or a
    // WebSocket message (or frame).
    let max_message =
        usize::try_from(core.config.limits.max_socketio_payload).unwrap_or(usize::MAX);
    let shared = Shared::default();
    let builder = SocketIo::builder()
        .with_state(shared.clone())
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
            shared,
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
        shared,
        link: Some(link),
        monitor: Some(monitor),
    })
}
