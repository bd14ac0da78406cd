//! `TestApp`: the real server on `127.0.0.1:0` over a fresh database (a
//! temporary SQLite file, or a PostgreSQL database created for the test and
//! dropped after it), with helpers to register users and build vaults.

use std::net::SocketAddr;

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Executor};
use syncscript::Config;
use syncscript_protocol::{LoginResponse, Role, Source, Vault};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an `async fn(Backend)` test once per backend, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )+};
}

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("SYNCSCRIPT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database made for one test; a PostgreSQL one is dropped with it.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => TestDatabase {
                url: format!("sqlite://{}", dir.path().join("syncscript.db").display()),
                postgres_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                let name = format!("syncscript_test_{}", uuid_simple());
                let admin = format!("{}/postgres", postgres_admin_url());
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("PostgreSQL must be reachable at {admin} for the tests: {e}")
                    });
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                TestDatabase {
                    url: format!("{}/{name}", postgres_admin_url()),
                    postgres_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some(name) = self.postgres_name.take() else {
            return;
        };
        let admin = format!("{}/postgres", postgres_admin_url());
        // Drop runs inside the test's runtime: do the async cleanup on a
        // thread of its own.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::AnyConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    conn.execute(sqlx::AssertSqlSafe(sql)).await.ok();
                    conn.close().await.ok();
                }
            });
        });
        cleanup.join().ok();
    }
}

fn uuid_simple() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// A running server and a client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    /// A pool on the server's database, for assertions and for setting up
    /// states the API cannot reach (an expired session).
    pub db: AnyPool,
    pub http: reqwest::Client,
    pub config: Config,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    database: TestDatabase,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub token: String,
}

pub const PASSWORD: &str = "correct horse battery";

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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        TestApp::serve(listener, config, database).await
    }

    async fn serve(
        listener: tokio::net::TcpListener,
        config: Config,
        database: TestDatabase,
    ) -> TestApp {
        let addr = listener.local_addr().expect("local addr");
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(syncscript::run(listener, config.clone(), async {
            stop.await.ok();
        }));
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        wait_until_ready(&http, &base).await;
        let db = AnyPoolOptions::new()
            .max_connections(2)
            .connect(&sqlite_rwc(&database.url))
            .await
            .expect("test pool");
        TestApp {
            addr,
            base,
            db,
            http,
            config,
            shutdown: Some(shutdown),
            task: Some(task),
            database,
        }
    }

    /// Stops the server (gracefully) and starts it again on the same port
    /// and the same database, as a process restart would.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let listener = bind_again(self.addr).await;
        let config = self.config.clone();
        let database = std::mem::replace(&mut self.database, placeholder_database());
        TestApp::serve(listener, config, database).await
    }

    /// Stops the server and waits until it has closed everything.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server ran");
        }
        self.db.close().await;
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

    /// Signs up and logs in a user named `name` (email `{name}@test.dev`).
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@test.dev");
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/signup",
                None,
                Some(json!({"email": email, "name": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {name}: {body}");
        let login = self.login(&email, PASSWORD).await;
        TestUser {
            id: login.user.id,
            email,
            name: name.to_owned(),
            token: login.token,
        }
    }

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
        if let Some(shutdown) = self.shutdown.take() {
            shutdown.send(()).ok();
        }
    }
}

/// The users and the vault of [`TestApp::team`].
pub struct Team {
    pub owner: TestUser,
    pub contributor: TestUser,
    pub viewer: TestUser,
    pub outsider: TestUser,
    pub vault: Vault,
}

async fn wait_until_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        let response = http.get(format!("{base}/healthz")).send().await;
        if response.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("server at {base} never became healthy");
}

async fn bind_again(addr: SocketAddr) -> tokio::net::TcpListener {
    let mut last_error = None;
    for _ in 0..100 {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(error) => {
                last_error = Some(error);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    panic!("could not bind {addr} again: {last_error:?}");
}

fn placeholder_database() -> TestDatabase {
    TestDatabase {
        url: String::new(),
        postgres_name: None,
        _dir: tempfile::tempdir().expect("temp dir"),
    }
}

fn sqlite_rwc(url: &str) -> String {
    if url.starts_with("sqlite:") {
        format!("{url}?mode=rw")
    } else {
        url.to_owned()
    }
}
