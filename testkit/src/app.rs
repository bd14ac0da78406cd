//! `TestApp`: the real server on `127.0.0.1:0` over a fresh database, with
//! a client and helpers named after the routes they call.
//!
//! The server runs on a tokio runtime of its own, on a thread of its own,
//! and that runtime is dropped when the server stops: like a process exit,
//! that also ends the connections the server leaves behind (upgraded
//! websockets outlive axum's graceful shutdown), so a restart looks to
//! clients exactly like a real one.

use std::net::SocketAddr;
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use syncscript::Config;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::api::{Api, http_client};
use crate::database::{Backend, TestDatabase};
use crate::eventually::eventually;

/// How long the server may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(15);

/// A running server, a client for it and a pool on its database.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The server's API (`api.base` is `http://127.0.0.1:{port}`); its
    /// helpers are callable on the `TestApp` itself.
    pub api: Api,
    /// A pool on the server's database, for assertions and for setting up
    /// states the API cannot reach (an expired session).
    pub db: AnyPool,
    pub config: Config,
    server: Option<RunningServer>,
    database: TestDatabase,
}

/// One run of the server: how to stop it, and how it ended.
struct RunningServer {
    shutdown: oneshot::Sender<()>,
    stopped: oneshot::Receiver<anyhow::Result<()>>,
}

impl TestApp {
    /// The server with default configuration on a fresh database.
    pub async fn spawn(backend: Backend) -> TestApp {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// The server with a configuration adjusted by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
        let database = TestDatabase::create(backend).await;
        let mut config = Config::new(database.url.clone());
        // Suites sign many users up from one address, and load tests open
        // many sockets as one user sending as fast as they can: the
        // budgets are off unless a test (of the limits) sets them.
        config.limits.auth_rate_per_minute = None;
        config.limits.socket_command_rate = None;
        config.limits.member_additions_per_minute = None;
        config.limits.max_sockets_per_user = usize::MAX;
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        let http = http_client();
        let server = serve(listener, config.clone());
        wait_until_ready(&http, &base).await;
        let db = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&database.existing_url())
            .await
            .expect("test pool");
        TestApp {
            addr,
            api: Api { base, http },
            db,
            config,
            server: Some(server),
            database,
        }
    }

    /// The database the server runs on.
    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// Stops the server gracefully and waits until it has stopped and
    /// every connection it left is gone.
    pub async fn stop(&mut self) {
        let Some(server) = self.server.take() else {
            return;
        };
        server.shutdown.send(()).ok();
        tokio::time::timeout(PATIENCE, server.stopped)
            .await
            .expect("the server stops in time")
            .expect("the server thread reports")
            .expect("the server ran without error");
    }

    /// Stops the server and starts it again on the same port and database,
    /// as a process restart would.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Starts a stopped server again on the same port and database.
    pub async fn start_again(&mut self) {
        let listener = bind_again(self.addr).await;
        self.server = Some(serve(listener, self.config.clone()));
        wait_until_ready(&self.http, &self.base).await;
    }

    /// Rows of a table, for "nothing was written" assertions.
    pub async fn count(&self, table: &str) -> i64 {
        let (count,): (i64,) =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&self.db)
                .await
                .expect("count rows");
        count
    }

    /// The seqs logged for a vault, in order.
    pub async fn logged_seqs(&self, vault_id: &str) -> Vec<i64> {
        let rows: Vec<(i64,)> =
            sqlx::query_as("SELECT seq FROM vault_events WHERE vault_id = $1 ORDER BY seq")
                .bind(vault_id)
                .fetch_all(&self.db)
                .await
                .expect("seqs");
        rows.into_iter().map(|(seq,)| seq).collect()
    }
}

impl std::ops::Deref for TestApp {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown.send(()).ok();
        }
    }
}

/// Runs the server on `listener` on a runtime and thread of its own.
fn serve(listener: TcpListener, config: Config) -> RunningServer {
    let (shutdown, stop) = oneshot::channel::<()>();
    let (report, stopped) = oneshot::channel();
    let listener = listener.into_std().expect("listener leaves the runtime");
    std::thread::spawn(move || {
        let result = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| {
                let result = runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    syncscript::run(listener, config, async {
                        stop.await.ok();
                    })
                    .await
                });
                runtime.shutdown_timeout(PATIENCE);
                result
            });
        report.send(result).ok();
    });
    RunningServer { shutdown, stopped }
}

async fn wait_until_ready(http: &reqwest::Client, base: &str) {
    let what = format!("server at {base} becomes healthy");
    eventually(&what, PATIENCE, async || healthy(http, base).await).await;
}

/// Whether `GET {base}/healthz` answers a success; what it answered if not.
pub(crate) async fn healthy(http: &reqwest::Client, base: &str) -> Result<(), String> {
    match http.get(format!("{base}/healthz")).send().await {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(response.status().to_string()),
        Err(error) => Err(error.to_string()),
    }
}

async fn bind_again(addr: SocketAddr) -> TcpListener {
    let what = format!("{addr} can be bound again");
    eventually(&what, PATIENCE, async || {
        TcpListener::bind(addr).await.inspect_err(|error| {
            eprintln!("rebinding {addr}: {error}");
        })
    })
    .await
}
