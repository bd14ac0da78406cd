//! The SyncScript server: REST API and Socket.IO rooms on one port, over
//! SQLite (embedded default) or PostgreSQL.
//!
//! [`run`] serves a bound listener until a shutdown future resolves; [`app`]
//! builds the whole router with its Socket.IO layer. Both are what `main`
//! and the integration tests call.

pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod health;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod permissions;
pub mod realtime;
pub mod sources;
pub mod state;
pub mod testpage;
pub mod vaults;

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::serve::ListenerExt;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tower_http::trace::TraceLayer;

pub use config::{Config, MAX_BODY_BYTES};
pub use state::AppState;

/// Builds the router (REST, OpenAPI, health) with the Socket.IO layer on
/// the same service, and returns it with the state its handlers share and
/// the handle of the presence task (to stop before the pools close).
pub fn app(pools: db::Pools, config: Config) -> (Router, AppState, AbortHandle) {
    let (core, presence_requests) = state::Core::new(pools, config);
    let (layer, io) = realtime::layer(core.clone());
    let rooms = realtime::rooms::Rooms::new(io);
    let presence = realtime::presence::spawn(core.db.clone(), rooms.clone(), presence_requests);
    let state = AppState { core, rooms };
    let (api, _) = openapi::router().split_for_parts();
    let router = api
        .route(
            "/api/openapi.json",
            axum::routing::get(openapi::serve_document),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .layer(layer)
        .layer(TraceLayer::new_for_http())
        .with_state(state.clone());
    // The test page's `/socket.io/*.js` routes must answer before the
    // Socket.IO layer, which claims every `/socket.io/` path.
    (testpage::wrap(router), state, presence)
}

/// Connects to the database, runs the migrations and serves `listener`
/// until `shutdown` resolves, then closes every socket and the pool.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pools = db::connect(&config.database_url).await?;
    db::migrate(&config.database_url).await?;
    let (router, state, presence) = app(pools.clone(), config);
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "syncscript listening on http://{addr}");
    let (stop_accepting, stop) = tokio::sync::oneshot::channel();
    let (port_closed, closed) = tokio::sync::oneshot::channel();
    let listener = ClosingListener::new(listener, stop, port_closed).tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::warn!(%error, "could not disable Nagle on an accepted socket");
        }
    });
    let rooms = state.rooms.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: closing the port, then every socket");
            // Close the port before the sockets: a client that reconnects at
            // once must be refused at TCP level (and retry until the next
            // server is up), not accepted by a server that is going away.
            if stop_accepting.send(()).is_ok() {
                closed.await.ok();
            }
            rooms.close_all().await;
        })
        .await?;
    presence.abort();
    pools.close().await;
    Ok(())
}

/// A TCP listener that closes its port as soon as shutdown begins, so that
/// no connection is accepted while the open sockets are being closed.
struct ClosingListener {
    listener: Option<TcpListener>,
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Receiver<()>,
    port_closed: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ClosingListener {
    fn new(
        listener: TcpListener,
        stop: tokio::sync::oneshot::Receiver<()>,
        port_closed: tokio::sync::oneshot::Sender<()>,
    ) -> ClosingListener {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        ClosingListener {
            listener: Some(listener),
            addr,
            stop,
            port_closed: Some(port_closed),
        }
    }
}

impl axum::serve::Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        while let Some(listener) = &self.listener {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(connection) => return connection,
                    // Per-connection failures (a reset before accept, no
                    // file descriptors left): log, breathe, keep accepting.
                    Err(error) => {
                        tracing::warn!(%error, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = &mut self.stop => {
                    self.listener = None;
                    if let Some(port_closed) = self.port_closed.take() {
                        port_closed.send(()).ok();
                    }
                }
            }
        }
        std::future::pending().await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
