//! A SQLite database that cannot be written, under a running server:
//!
//! - **read-only**: the tests run as root, and root ignores file
//!   permissions (`chmod` changes nothing), so the database file and its
//!   `-wal` are made immutable with `chattr +i`, which root's writes do
//!   obey, even through descriptors opened before (ext4 checks it on every
//!   write; the test checks that on a canary file first). The `-shm` stays
//!   writable: SQLite maps it, and a write to an immutable mapping would be
//!   a SIGBUS rather than an error;
//! - **disk full**: the server runs in a mount namespace of its own
//!   (`unshare --mount`) where its database folder is a 16 MiB tmpfs; the
//!   test fills it through `/proc/<pid>/root/…` until `ENOSPC`. Nothing is
//!   mounted in the test's own namespace, so nothing outlives the server.
//!
//! Either way, writes (REST and socket) answer `503 UNAVAILABLE`, reads keep
//! working, the process neither dies nor panics, writes succeed again once
//! the fault is removed (no restart), `PRAGMA integrity_check` says `ok`,
//! and the watchers end with exactly the committed log.
//!
//! Not done: a database that root cannot *read*. Reads go through
//! descriptors SQLite opened at start, which neither permissions nor
//! `chattr` nor a mount over the path can take away; only an I/O-error
//! layer under the files could: device-mapper's `error`/`flakey` targets
//! (this kernel has no device-mapper: `dmsetup` finds no
//! `/dev/mapper/control`), or a FUSE passthrough killed under the server
//! (reads then fail with `ENOTCONN`; `/dev/fuse` exists but no FUSE
//! filesystem such as `bindfs` is installed). `RLIMIT_FSIZE`
//! (`prlimit --fsize`) is no "disk full" either:
//! exceeding it sends SIGXFSZ, whose default action kills the process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use syncscript_testkit::{Api, Backend, Team, TestDatabase, eventually};

use crate::commander::Commander;
use crate::postgres_down::create_by_socket;
use crate::probe::{self, Findings};
use crate::server::Server;
use crate::watcher::Watcher;
use crate::{
    PATIENCE, assert_acknowledged_are_logged, assert_contiguous, assert_watchers_got_exactly,
    require_root, stop_all,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_refuses_writes_keeps_reads_and_recovers() {
    require_root("chattr +i");
    let database = TestDatabase::create(Backend::Sqlite).await;
    let file = PathBuf::from(database.url.trim_start_matches("sqlite://"));
    let folder = file.parent().expect("database folder").to_path_buf();
    immutable_stops_root(&folder);
    let mut server = Server::start(&database.url).await;
    let mut scene = Scene::set(&server).await;
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    assert!(
        wal.exists(),
        "the database runs in WAL mode: {}",
        wal.display()
    );

    let immutable = Immutable::set(&[file.clone(), wal]);
    let mut faulty = Findings::default();
    scene.probe_fault("read-only", &mut faulty).await;
    server.assert_alive_without_panic();

    drop(immutable);
    let recovered = scene.until_writes_recover(&mut faulty).await;
    eprintln!(
        "writes succeeded again {:.2} s after the fault was removed",
        recovered.as_secs_f64()
    );
    faulty.print("SQLite database read-only (chattr +i), then writable again");
    scene.finish(&file).await;
    faulty.assert_none("SQLite read-only");
    server.assert_alive_without_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disk_full_refuses_writes_keeps_reads_and_recovers() {
    require_root("unshare --mount and mount -t tmpfs");
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("mount point");
    let file = disk.join("syncscript.db");
    let wrapper: Vec<String> = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        r#"mount -t tmpfs -o size=16m syncscript-faults "$0" && exec "$@""#,
        &disk.display().to_string(),
    ]
    .map(str::to_owned)
    .to_vec();
    let mut server = Server::start_wrapped(&format!("sqlite://{}", file.display()), &wrapper).await;
    // The server's view of the folder: its tmpfs, which the test's own
    // mount namespace does not have.
    let seen = PathBuf::from(format!("/proc/{}/root{}", server.pid(), disk.display()));
    let seen_file = seen.join("syncscript.db");
    assert!(seen_file.exists(), "the server's database is on its tmpfs");
    assert!(!file.exists(), "the tmpfs is private to the server");
    let mut scene = Scene::set(&server).await;

    let filler = seen.join("filler");
    let filled = fill(&filler);
    eprintln!("tmpfs filled with {} KiB", filled / 1024);
    let mut faulty = Findings::default();
    // Space already allocated to the WAL can still be written: write until
    // the database needs more.
    let mut accepted = 0;
    loop {
        let probe = scene.create_by_rest("until full").await;
        if probe.status == Some(StatusCode::CREATED) {
            scene.acknowledge(&probe);
            accepted += 1;
            assert!(accepted < 200, "the full disk never refused a write");
            continue;
        }
        faulty.unavailable(&probe);
        break;
    }
    eprintln!("{accepted} writes fitted in space already allocated");
    scene.probe_fault("disk full", &mut faulty).await;
    server.assert_alive_without_panic();

    std::fs::remove_file(&filler).expect("remove the filler");
    let recovered = scene.until_writes_recover(&mut faulty).await;
    eprintln!(
        "writes succeeded again {:.2} s after space was freed",
        recovered.as_secs_f64()
    );
    faulty.print("SQLite disk full (tmpfs), then space freed");
    scene.finish(&seen_file).await;
    faulty.assert_none("SQLite disk full");
    server.assert_alive_without_panic();
}

/// A vault with a source, a watcher and a socket for commands.
struct Scene {
    api: Api,
    team: Team,
    watcher: Watcher,
    commander: Commander,
    /// Ids of the sources whose creation was acknowledged.
    acknowledged: Vec<String>,
    /// The log's head before the fault.
    head: i64,
}

impl Scene {
    async fn set(server: &Server) -> Scene {
        let api = server.api.clone();
        let team = api.team().await;
        let vault = team.vault.id.clone();
        let first = api.create_source(&team.owner, &vault, "before").await;
        let watcher = Watcher::start("viewer", &api.base, &team.viewer.token, &vault);
        let commander = Commander::connect(&api.base, &team.owner.token).await;
        let mut scene = Scene {
            api,
            team,
            watcher,
            commander,
            acknowledged: vec![first.id],
            head: 0,
        };
        let command = create_by_socket(&scene.commander, &vault, "by socket, before").await;
        let mut before = Findings::default();
        before.acked(&command);
        before.assert_none("before the fault");
        scene.acknowledge(&command);
        scene.head = scene
            .api
            .event_log(&scene.team.owner.token, &vault)
            .await
            .len() as i64;
        let head = scene.head;
        scene
            .watcher
            .until("applied everything so far", |v| {
                v.applied.len() as i64 >= head
            })
            .await;
        scene
    }

    fn vault(&self) -> String {
        self.team.vault.id.clone()
    }

    async fn create_by_rest(&self, title: &str) -> probe::Probe {
        probe::rest(
            &self.api,
            Method::POST,
            &format!("/api/vaults/{}/sources", self.vault()),
            Some(&self.team.owner),
            Some(json!({"title": title, "fileUrl": "https://example.org/p.pdf"})),
        )
        .await
    }

    /// Records a successful creation (REST body or ack).
    fn acknowledge(&mut self, probe: &probe::Probe) {
        if let Some(id) = probe.body["source"]["id"].as_str() {
            eprintln!(
                "acknowledged: {} {id} {}",
                probe.what, probe.body["source"]["title"]
            );
            self.acknowledged.push(id.to_owned());
        }
    }

    /// While the fault lasts: writes refused with `UNAVAILABLE`, reads
    /// served.
    async fn probe_fault(&mut self, fault: &str, findings: &mut Findings) {
        let vault = self.vault();
        let write = self.create_by_rest(&format!("refused ({fault})")).await;
        findings.unavailable(&write);
        let command = create_by_socket(&self.commander, &vault, "refused by socket").await;
        findings.unavailable(&command);
        let sources = probe::rest(
            &self.api,
            Method::GET,
            &format!("/api/vaults/{vault}/sources"),
            Some(&self.team.viewer),
            None,
        )
        .await;
        findings.succeeds(&sources, StatusCode::OK);
        if sources.status == Some(StatusCode::OK) {
            let listed = sources.body["sources"].as_array().map_or(0, Vec::len);
            if listed != self.acknowledged.len() {
                findings.problems.push(format!(
                    "GET sources lists {listed} sources, {} were created",
                    self.acknowledged.len()
                ));
            }
        }
        let log = probe::rest(
            &self.api,
            Method::GET,
            &format!("/api/vaults/{vault}/events"),
            Some(&self.team.viewer),
            None,
        )
        .await;
        findings.succeeds(&log, StatusCode::OK);
        let join = probe::socket(
            &self.commander,
            "vault:join",
            json!({"vaultId": vault, "since": 0}),
        )
        .await;
        findings.acked(&join);
        // Whether a database that still answers reads is "ready" is not
        // settled by the contract: shown, not judged.
        findings.report(&probe::rest(&self.api, Method::GET, "/readyz", None, None).await);
        findings.succeeds(
            &probe::rest(&self.api, Method::GET, "/healthz", None, None).await,
            StatusCode::OK,
        );
    }

    /// Once the fault is gone, writes succeed again: polls a REST write
    /// (every refusal meanwhile must still be `UNAVAILABLE`), then a socket
    /// command must succeed. How long it took.
    async fn until_writes_recover(&mut self, findings: &mut Findings) -> Duration {
        let started = Instant::now();
        let write = eventually("writes succeed again", PATIENCE, async || {
            let write = self.create_by_rest("after").await;
            if write.status == Some(StatusCode::CREATED) {
                return Ok(write);
            }
            findings.unavailable(&write);
            Err(write.line())
        })
        .await;
        self.acknowledge(&write);
        let took = started.elapsed();
        let vault = self.vault();
        let command = create_by_socket(&self.commander, &vault, "by socket, after").await;
        findings.acked(&command);
        self.acknowledge(&command);
        took
    }

    /// The database is intact, every acknowledged write is in the log, the
    /// refused ones are not, and the watcher has exactly the log.
    async fn finish(self, file: &Path) {
        let integrity = integrity_check(file).await;
        assert_eq!(integrity, "ok", "PRAGMA integrity_check");
        let log = self
            .api
            .event_log(&self.team.owner.token, &self.vault())
            .await;
        assert_contiguous(&log);
        assert_acknowledged_are_logged(&self.acknowledged, &log);
        assert_eq!(
            log.len() as i64 - self.head,
            self.acknowledged.len() as i64 - 2,
            "only the acknowledged writes were committed"
        );
        assert_watchers_got_exactly(std::slice::from_ref(&self.watcher), &log).await;
        stop_all(vec![self.watcher]).await;
        self.commander.close().await;
    }
}

/// `chattr +i` on files, undone when dropped (else the temp dir could not
/// be removed).
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(paths: &[PathBuf]) -> Immutable {
        let mut guard = Immutable(Vec::new());
        for path in paths {
            chattr("+i", path);
            guard.0.push(path.clone());
        }
        guard
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(path).status();
        }
    }
}

fn chattr(flag: &str, path: &Path) {
    let status = Command::new("chattr")
        .arg(flag)
        .arg(path)
        .status()
        .expect("chattr runs");
    assert!(status.success(), "chattr {flag} {}", path.display());
}

/// The mechanism works here: an immutable file refuses root's writes, also
/// through a descriptor opened before.
fn immutable_stops_root(folder: &Path) {
    let canary = folder.join("canary");
    let mut open = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&canary)
        .expect("canary");
    let guard = Immutable::set(std::slice::from_ref(&canary));
    let through_open = open.write_all(b"x").and_then(|()| open.flush());
    let reopened = std::fs::OpenOptions::new().append(true).open(&canary);
    drop(guard);
    assert!(
        through_open.is_err() && reopened.is_err(),
        "chattr +i must stop root's writes on this filesystem \
         (open descriptor: {through_open:?}, new one: {reopened:?})"
    );
}

/// Writes zeros to `path` until the filesystem is full; the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 1 << 20];
    let mut written = 0;
    for size in [1 << 20, 4096, 1] {
        loop {
            match file.write(&chunk[..size]) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(error) if error.raw_os_error() == Some(28) => break,
                Err(error) => panic!("filling {}: {error}", path.display()),
            }
        }
    }
    written
}

/// `PRAGMA integrity_check` on the database as a restart would find it: its
/// file and its `-wal` copied aside (no write is under way) and opened
/// there. A copy, because SQLite resolves symbolic links in paths, so it
/// cannot open the file through `/proc/<pid>/root/…` (it would look in the
/// test's own mount namespace instead).
async fn integrity_check(file: &Path) -> String {
    let aside = tempfile::tempdir().expect("temp dir");
    let copy = aside.path().join("copy.db");
    std::fs::copy(file, &copy).expect("copy the database");
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    if wal.exists() {
        std::fs::copy(&wal, aside.path().join("copy.db-wal")).expect("copy its WAL");
    }
    let options = SqliteConnectOptions::new().filename(&copy);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .expect("open the copy");
    let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .expect("integrity_check");
    conn.close().await.ok();
    rows.into_iter()
        .map(|(row,)| row)
        .collect::<Vec<_>>()
        .join("; ")
}
