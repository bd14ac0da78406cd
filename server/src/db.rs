//! Database access over sqlx's `Any` driver, so one code path serves SQLite
//! and PostgreSQL.
//!
//! Why `Any` with one migration folder per backend: the queries are plain SQL
//! that both backends accept (`$1` placeholders, `RETURNING`, text ids and
//! times, integer booleans), so a single set of functions covers both and the
//! integration tests run every one of them against both. Only the DDL
//! differs (column types), which is why `migrations/sqlite` and
//! `migrations/postgres` exist side by side with the same versions.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyTransactionManager};
use sqlx::migrate::Migrator;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor};
use sqlx_core::transaction::TransactionManager;

use crate::domain::fold_email;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend by URL scheme.
    pub fn of(url: &str) -> anyhow::Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://… or postgres://…")
        }
    }
}

/// A SQLite URL with its file's folder created and `mode=rwc`, so that a
/// missing file is created; other URLs unchanged.
fn prepare_url(url: &str) -> anyhow::Result<String> {
    if Backend::of(url)? != Backend::Sqlite {
        return Ok(url.to_owned());
    }
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let folder = Path::new(path)
        .parent()
        .filter(|d| path != ":memory:" && !d.as_os_str().is_empty());
    if let Some(dir) = folder {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the database folder {}", dir.display()))?;
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("sqlite://{path}?mode=rwc")
    } else {
        format!("sqlite://{path}?{query}&mode=rwc")
    })
}

/// The longest a request waits for a PostgreSQL connection.
const POSTGRES_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The connection pools of one server.
#[derive(Debug, Clone)]
pub struct Pools {
    /// For reads (and every write on PostgreSQL).
    pub read: AnyPool,
    /// For writes: on SQLite a single connection, so that writers wait
    /// their turn in an async queue rather than in SQLite's busy handler
    /// (which sleeps); on PostgreSQL the same pool as `read`.
    pub write: AnyPool,
    /// How many connections each pool opened.
    pub opened: Opened,
}

/// How many connections each pool has opened since the start: a pool opens
/// one again after it closed one (on SQLite, a writer whose transaction was
/// dropped instead of rolled back). On PostgreSQL both count the one pool.
#[derive(Debug, Clone, Default)]
pub struct Opened {
    read: Arc<AtomicU64>,
    write: Arc<AtomicU64>,
}

impl Opened {
    pub fn read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    pub fn write(&self) -> u64 {
        self.write.load(Ordering::Relaxed)
    }
}

impl Pools {
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

/// A write transaction on a pooled connection that is never reused in a
/// doubtful state: a connection whose COMMIT or ROLLBACK failed is closed,
/// not given back to the pool, and on SQLite so is one whose transaction
/// was dropped without [`Tx::rollback`] (its rollback cannot run in `Drop`).
/// An explicit [`Tx::rollback`] that succeeds keeps the connection: every
/// refusal inside a mutation ends that way (`events::Mutation::refuse`).
///
/// sqlx's own `Transaction` returns the connection to the pool whatever
/// happened; after a failed COMMIT (a full disk, a read-only file) the
/// SQLite driver's transaction depth stays raised, so the next `BEGIN`
/// becomes a SAVEPOINT inside a transaction that never commits: writes
/// would be acknowledged and broadcast but never stored.
pub struct Tx {
    conn: PoolConnection<Any>,
    open: bool,
    /// A COMMIT was sent and did not finish (the future was dropped).
    committing: bool,
}

impl Tx {
    /// Begins a transaction on a connection of `pool` that is not inside
    /// one already.
    pub async fn begin(pool: &AnyPool) -> Result<Tx, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        while AnyTransactionManager::get_transaction_depth(&conn) != 0 {
            conn.close_on_drop();
            drop(conn);
            conn = pool.acquire().await?;
        }
        if let Err(error) = AnyTransactionManager::begin(&mut conn, None).await {
            conn.close_on_drop();
            return Err(error);
        }
        Ok(Tx {
            conn,
            open: true,
            committing: false,
        })
    }

    /// Rolls back, keeping the connection for the pool when the rollback
    /// leaves it outside any transaction (closing it otherwise).
    pub async fn rollback(mut self) {
        let rolled_back = AnyTransactionManager::rollback(&mut self.conn).await;
        self.open = false;
        if let Err(error) = &rolled_back {
            tracing::warn!(%error, "rollback failed: closing the connection");
        }
        if rolled_back.is_err() || AnyTransactionManager::get_transaction_depth(&self.conn) != 0 {
            self.conn.close_on_drop();
        }
    }

    /// Commits; the connection is closed when the commit fails.
    pub async fn commit(mut self) -> Result<(), sqlx::Error> {
        self.committing = true;
        let committed = AnyTransactionManager::commit(&mut self.conn).await;
        self.committing = false;
        self.open = false;
        if committed.is_err() {
            self.conn.close_on_drop();
        }
        committed
    }
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Drop for Tx {
    /// Not committed: rolled back. SQLite rolls back when the connection
    /// closes, and a rollback that cannot run (the disk is full) must not
    /// leave it half-open in the pool; PostgreSQL's rollback is queued on
    /// the connection as sqlx does. A COMMIT interrupted midway leaves the
    /// connection in an unknown state: closed on either backend.
    fn drop(&mut self) {
        if self.open {
            if self.committing || self.conn.backend_name().eq_ignore_ascii_case("sqlite") {
                self.conn.close_on_drop();
            } else {
                AnyTransactionManager::start_rollback(&mut self.conn);
            }
        }
    }
}

/// Opens the pools; SQLite connections get WAL, foreign keys and a busy
/// timeout.
pub async fn connect(url: &str) -> anyhow::Result<Pools> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url)?;
    let url = prepare_url(url)?;
    let options: AnyConnectOptions = url.parse().context("invalid database URL")?;
    let pools = match backend {
        Backend::Sqlite => {
            let opened = Opened::default();
            let read = sqlite_pool(8, opened.read.clone())
                .connect_with(options.clone())
                .await;
            let write = sqlite_pool(1, opened.write.clone())
                .connect_with(options)
                .await;
            read.and_then(|read| {
                Ok(Pools {
                    read,
                    write: write?,
                    opened,
                })
            })
        }
        Backend::Postgres => {
            let count = Arc::new(AtomicU64::new(0));
            let counted = count.clone();
            AnyPoolOptions::new()
                .max_connections(16)
                // While PostgreSQL refuses connections sqlx keeps retrying
                // until this deadline: it bounds how long a request waits
                // before its 503 during an outage.
                .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
                .after_connect(move |_, _| {
                    counted.fetch_add(1, Ordering::Relaxed);
                    Box::pin(async { Ok(()) })
                })
                .connect_with(options)
                .await
                .map(|pool| Pools {
                    read: pool.clone(),
                    write: pool,
                    opened: Opened {
                        read: count.clone(),
                        write: count,
                    },
                })
        }
    };
    pools.with_context(|| format!("cannot connect to the database ({backend:?})"))
}

fn sqlite_pool(max_connections: u32, opened: Arc<AtomicU64>) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _| {
            opened.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                conn.execute("PRAGMA journal_mode = WAL").await?;
                conn.execute("PRAGMA synchronous = NORMAL").await?;
                conn.execute("PRAGMA foreign_keys = ON").await?;
                conn.execute("PRAGMA busy_timeout = 10000").await?;
                Ok(())
            })
        })
}

/// Runs the embedded migrations of the URL's backend on a connection of its
/// own, closed whatever happens (a failed run on PostgreSQL must not keep its
/// advisory lock).
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    sqlx::any::install_default_drivers();
    let migrator = match Backend::of(url)? {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    };
    let url = prepare_url(url)?;
    let mut conn = AnyConnection::connect(&url)
        .await
        .context("cannot connect to the database to migrate it")?;
    // `Migrator::run` through `Acquire` makes the caller's future fail the
    // `Send` check ("implementation of `Acquire` is not general enough");
    // `run_direct` is sqlx's own way around it, same locking and checks.
    let result = migrator.run_direct(None, &mut conn, false).await;
    let result = match result {
        Ok(()) => fold_emails(&mut conn).await,
        Err(error) => Err(anyhow::Error::from(error).context("migrations failed")),
    };
    let closed = conn.close().await;
    result?;
    closed.context("closing the migration connection")?;
    Ok(())
}

/// Fills `users.email_folded` for the accounts that lack it and makes it
/// unique. Two accounts whose e-mails differ only by case (possible on
/// SQLite before, where `lower()` folds ASCII only) are never merged: the
/// server refuses to start and names them, for an operator to decide.
async fn fold_emails(conn: &mut AnyConnection) -> anyhow::Result<()> {
    let (missing,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM users WHERE email_folded IS NULL")
            .fetch_one(&mut *conn)
            .await?;
    if missing > 0 {
        let users: Vec<(String, String)> = sqlx::query_as("SELECT id, email FROM users")
            .fetch_all(&mut *conn)
            .await?;
        let mut accounts: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for (id, email) in users {
            accounts
                .entry(fold_email(&email))
                .or_default()
                .push((id, email));
        }
        let collisions: Vec<String> = accounts
            .values()
            .filter(|same| same.len() > 1)
            .map(|same| {
                let named: Vec<String> = same
                    .iter()
                    .map(|(id, email)| format!("{email} ({id})"))
                    .collect();
                named.join(" and ")
            })
            .collect();
        if !collisions.is_empty() {
            anyhow::bail!(
                "accounts whose e-mails differ only by case: {}; rename or merge them, \
                 then start again",
                collisions.join("; ")
            );
        }
        for (folded, same) in &accounts {
            for (id, _) in same {
                sqlx::query("UPDATE users SET email_folded = $1 WHERE id = $2")
                    .bind(folded)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    conn.execute("CREATE UNIQUE INDEX IF NOT EXISTS users_email_folded ON users (email_folded)")
        .await?;
    Ok(())
}

/// A time as stored and sent: RFC 3339 UTC with milliseconds, so that text
/// order is time order.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The current time, formatted by [`timestamp`].
pub fn now() -> String {
    timestamp(Utc::now())
}

/// A fresh time-ordered id (UUIDv7).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_get_create_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/db.sqlite");
        let url = format!("sqlite://{}", path.display());
        let prepared = prepare_url(&url).unwrap();
        assert_eq!(prepared, format!("sqlite://{}?mode=rwc", path.display()));
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            prepare_url("postgres://u@h/db").unwrap(),
            "postgres://u@h/db"
        );
        assert!(Backend::of("mysql://x").is_err());
    }

    #[test]
    fn timestamps_have_fixed_width() {
        let at = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(timestamp(at), "2026-01-02T03:04:05.000Z");
    }
}
