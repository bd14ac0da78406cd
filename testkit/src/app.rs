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

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use syncscript::Config;
use syncscript_protocol::{LoginResponse, Role, Source, Vault};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::database::{Backend, TestDatabase};

/// How long the server may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(15);

/// The password of every user made by [`TestApp::register`].
pub const PASSWORD: &str = "correct horse battery";

/// A running server, a client for it and a pool on its database.
pub struct TestApp {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    /// A pool on the server's database, for assertions and for setting up
    /// states the API cannot reach (an expired session).
    pub db: AnyPool,
    pub http: reqwest::Client,
    pub config: Config,
    server: Option<RunningServer>,
    database: TestDatabase,
}

/// One run of the server: how to stop it, and how it ended.
struct RunningServer {
    shutdown: oneshot::Sender<()>,
    stopped: oneshot::Receiver<anyhow::Result<()>>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub token: String,
}

/// The users and the vault of [`TestApp::team`].
pub struct Team {
    pub owner: TestUser,
    pub contributor: TestUser,
    pub viewer: TestUser,
    pub outsider: TestUser,
    pub vault: Vault,
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
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        let server = serve(listener, config.clone());
        wait_until_ready(&http, &base).await;
        let db = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&database.existing_url())
            .await
            .expect("test pool");
        TestApp {
            addr,
            base,
            db,
            http,
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

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer token of `user` (none for `None`).
    pub fn request(&self, method: Method, path: &str, user: Option<&TestUser>) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match user {
            Some(user) => request.bearer_auth(&user.token),
            None => request,
        }
    }

    /// Sends a request and returns the status and the JSON body (or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, user);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json)
    }

    /// `POST /api/auth/signup` for `{name}@test.dev`, then
    /// `POST /api/auth/login`.
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@test.dev");
        self.signup(&email, name).await;
        let login = self.login(&email, PASSWORD).await;
        TestUser {
            id: login.user.id,
            email,
            name: name.to_owned(),
            token: login.token,
        }
    }

    /// `POST /api/auth/signup` with [`PASSWORD`].
    pub async fn signup(&self, email: &str, name: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/signup",
                None,
                Some(json!({"email": email, "name": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {email}: {body}");
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> LoginResponse {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        serde_json::from_value(body).expect("login response")
    }

    /// `POST /api/vaults`.
    pub async fn create_vault(&self, owner: &TestUser, name: &str) -> Vault {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/vaults",
                Some(owner),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create vault: {body}");
        serde_json::from_value(body["vault"].clone()).expect("vault")
    }

    /// `DELETE /api/vaults/{id}`.
    pub async fn delete_vault(&self, owner: &TestUser, vault_id: &str) {
        let (status, body) = self
            .call(
                Method::DELETE,
                &format!("/api/vaults/{vault_id}"),
                Some(owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "delete vault: {body}");
    }

    /// `POST /api/vaults/{id}/members`.
    pub async fn add_member(&self, owner: &TestUser, vault_id: &str, user: &TestUser, role: Role) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/vaults/{vault_id}/members"),
                Some(owner),
                Some(json!({"email": user.email, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "add member: {body}");
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`.
    pub async fn remove_member(&self, owner: &TestUser, vault_id: &str, user: &TestUser) {
        let (status, body) = self
            .call(
                Method::DELETE,
                &format!("/api/vaults/{vault_id}/members/{}", user.id),
                Some(owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "remove member: {body}");
    }

    /// `POST /api/vaults/{id}/sources`.
    pub async fn create_source(&self, user: &TestUser, vault_id: &str, title: &str) -> Source {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/vaults/{vault_id}/sources"),
                Some(user),
                Some(json!({"title": title, "fileUrl": "https://example.org/paper.pdf"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create source: {body}");
        serde_json::from_value(body["source"].clone()).expect("source")
    }

    /// A vault with an owner, a contributor, a viewer and an outsider.
    pub async fn team(&self) -> Team {
        let owner = self.register("owner").await;
        let contributor = self.register("contributor").await;
        let viewer = self.register("viewer").await;
        let outsider = self.register("outsider").await;
        let vault = self.create_vault(&owner, "Team Vault").await;
        self.add_member(&owner, &vault.id, &contributor, Role::Contributor)
            .await;
        self.add_member(&owner, &vault.id, &viewer, Role::Viewer)
            .await;
        Team {
            owner,
            contributor,
            viewer,
            outsider,
            vault,
        }
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
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tokio::time::Instant::now() < deadline {
        let response = http.get(format!("{base}/healthz")).send().await;
        if response.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("server at {base} never became healthy");
}

async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("rebinding {addr}: {error}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("could not bind {addr} again: {error}"),
        }
    }
}
