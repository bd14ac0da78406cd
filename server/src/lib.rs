//! The SyncScript server: REST API and Socket.IO rooms on one port, over
//! SQLite (embedded default) or PostgreSQL.
//!
//! [`run`] serves a bound listener until a shutdown future resolves; [`app`]
//! builds the whole router with its Socket.IO layer. Both are what `main`
//! and the integration tests call.

pub mod auth;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod fanout;
pub mod health;
pub mod idempotency;
pub mod limits;
pub mod members;
pub mod metrics;
pub mod openapi;
pub mod permissions;
pub mod socket;
pub mod sources;
pub mod state;
pub mod testpage;
pub mod vaults;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tower::ServiceExt;
use tower_http::trace::TraceLayer;

use crate::fanout::Fanout;

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
    let core = state::Core::new(pools, config);
    let realtime = socket::start(&core).await?;
    let (fanout, presence_requests) = Fanout::new(
        realtime.rooms,
        realtime.link,
        core.db.clone(),
        core.metrics.clone(),
    );
    let state = AppState { core, fanout };
    realtime.shared.set(state.clone());
    let mut tasks = vec![
        socket::presence::spawn(
            state.db.clone(),
            state.fanout.rooms.clone(),
            presence_requests,
        ),
        socket::head_sweep::spawn(state.clone()),
    ];
    tasks.extend(realtime.monitor);
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            socket::session_guard::guard,
        ))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |request: &Request<_>| {
                tracing::info_span!("request", %node, method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state.clone());
    // The test page's `/socket.io/*.js` routes must answer before the
    // Socket.IO layer, which claims every `/socket.io/` path.
    let router = testpage::wrap(router);
    let router = match cors(&state.config.cors_origins)? {
        Some(cors) => router.layer(cors),
        None => router,
    };
    let router = router.layer(axum::middleware::from_fn(error::limit_uri));
    Ok((router, state, Background(tasks)))
}

/// CORS for the allowed origins (none: no CORS headers at all, so that no
/// other origin's page can read an answer). Bearer tokens only: cookies are
/// never sent cross-origin, so credentials are not allowed.
fn cors(
    origins: &[axum::http::HeaderValue],
) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use axum::http::Method;
    use axum::http::header::{self, HeaderName};
    use syncscript_protocol::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER};
    if origins.is_empty() {
        return Ok(None);
    }
    let key = HeaderName::from_bytes(IDEMPOTENCY_KEY_HEADER.as_bytes())?;
    let replayed = HeaderName::from_bytes(IDEMPOTENCY_REPLAYED_HEADER.as_bytes())?;
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins.to_vec())
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, key])
            .expose_headers([header::RETRY_AFTER, replayed])
            .max_age(std::time::Duration::from_secs(600)),
    ))
}

/// How long a client may take to send a request's headers; a client that
/// trickles them (or never finishes) is disconnected instead of holding a
/// connection and its task forever. hyper counts an idle keep-alive
/// connection's wait for its next request in this time too.
pub const HEADER_READ_TIMEOUT: Duration = syncscript_protocol::IDLE_CONNECTION_LIMIT;

/// Connects to the database (and Redis), runs the migrations and serves
/// `listener` until `shutdown` resolves, then closes the port, every
/// socket, the open HTTP connections (once their requests are answered)
/// and the pool.
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
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                // Per-connection failures (a reset before accept, no file
                // descriptors left): log, breathe, keep accepting.
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        serve_connection(tcp, remote, router.clone(), &connections);
    }
    tracing::info!("shutting down: closing the port, then every socket");
    // Close the port before the sockets: a client that reconnects at once
    // must be refused at TCP level (and retry until the next server is
    // up), not accepted by a server that is going away.
    drop(listener);
    state.fanout.rooms.close_all().await;
    connections.shutdown().await;
    background.stop();
    pools.close().await;
    Ok(())
}

/// Serves one accepted connection (HTTP/1 with upgrades to WebSocket, or
/// HTTP/2) on a task of its own, with the peer's address as
/// `ConnectInfo`.
fn serve_connection(
    tcp: TcpStream,
    remote: SocketAddr,
    router: Router,
    connections: &GracefulShutdown,
) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::warn!(%error, "could not disable Nagle on an accepted socket");
    }
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(remote));
        request
    });
    let watcher = connections.watcher();
    tokio::spawn(async move {
        let mut http = auto::Builder::new(TokioExecutor::new());
        http.http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = http
            .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service));
        if let Err(error) = watcher.watch(connection).await {
            tracing::debug!(%error, %remote, "connection ended with an error");
        }
    });
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
