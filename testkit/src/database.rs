//! Fresh databases for tests: a temporary SQLite file, or a PostgreSQL
//! database created for the test and dropped after it.

use sqlx::{Connection, Executor};

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
                super::$name($crate::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await
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

    /// The URL for a second pool on the server's database, which must exist
    /// already (the server created it).
    pub fn existing_url(&self) -> String {
        if self.url.starts_with("sqlite:") {
            format!("{}?mode=rw", self.url)
        } else {
            self.url.clone()
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
