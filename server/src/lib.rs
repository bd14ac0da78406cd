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
use axum::extract::{DefaultBodyLimit, Request};
use axum::serve::ListenerExt;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tower_http::trace::TraceLayer;

pub use config::{Config, MAX_BODY_BYTES};
pub use state::AppState;

/// The background tasks of a node, stopped before its pools close.
pub struct Background(Vec<AbortHandle>);

impl Background {
    /// Stops every task.
    pub fn stop(self) {
        for task in self.0 {
            task.abort();
        }
    }
}

/// Builds the router (REST, OpenAPI, health) with the Socket.IO layer on
/// the same service, and returns it with the state its handlers share and
/// the node's background tasks (presence, `vault:head`, the Redis link).
pub async fn app(
    pools: db::Pools,
    config: Config,
) -> anyhow::Result<(Router, AppState, Background)> {
    let (core, presence_requests) = state::Core::new(pools, config);
    let realtime = realtime::start(core.clone()).await?;
    let rooms = realtime.rooms;
    let mut tasks = vec![
        realtime::presence::spawn(core.db.clone(), rooms.clone(), presence_requests),
        realtime::heads::spawn(core.clone(), rooms.clone(), realtime.link.clone()),
    ];
    tasks.extend(realtime.monitor);
    let state = AppState {
        core,
        rooms,
        link: realtime.link,
    };
    let node = state.config.node_id.clone();
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
        ));
    let router = (realtime.attach)(router)
        .layer(
            TraceLayer::new_for_http().make_span_with(move |request: &Request<_>| {
                tracing::info_span!("request", %node, method = %request.method(), uri = %request.uri())
            }),
        )
        .with_state(state.clone());
    // The test page's `/socket.io/*.js` routes must answer before the
    // Socket.IO layer, which claims every `/socket.io/` path.
    Ok((testpage::wrap(router), state, Background(tasks)))
}

/// Connects to the database (and Redis), runs the migrations and serves
/// `listener` until `shutdown` resolves, then closes every socket and the
/// pool.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let pools = db::connect(&config.database_url).await?;
    db::migrate(&config.database_url).await?;
    let node = config.node_id.clone();
    let (router, state, background) = app(pools.clone(), config).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, %node, "syncscript listening on http://{addr}");
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
    background.stop();
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
