//! Faults, with real processes and real sockets: the real `syncscript serve`
//! binary killed with SIGKILL mid-stream and restarted (SQLite and
//! PostgreSQL), clients whose TCP connections are cut at random, a
//! PostgreSQL server of the test's own stopped and started again, and a
//! SQLite file made read-only or its disk full. Every watcher must end with
//! every committed event exactly once, in seq order, and must never have
//! been sent an event the log does not hold (docs/protocol.md, "Catch-up");
//! a database that cannot be used answers `503 UNAVAILABLE` and recovers
//! without a restart (docs/protocol.md, Errors: `UNAVAILABLE`).
//!
//! Every child process is behind a guard that kills it when dropped, so a
//! failing test leaks nothing. Seeds are printed; set
//! `SYNCSCRIPT_FAULT_SEED` to replay one. `SYNCSCRIPT_LONG_TESTS=1` runs
//! the long versions (a minute of cuts, several kills).

mod commander;
mod cuts;
mod postgres;
mod postgres_down;
mod probe;
mod proxy;
mod server;
mod sigkill;
mod sqlite_faults;
mod watcher;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_protocol::LoggedEvent;
use syncscript_testkit::{Api, TestUser};

use crate::watcher::Watcher;

/// The server binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_syncscript");

/// How long a test waits for what must happen.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Whether the long versions run (`SYNCSCRIPT_LONG_TESTS=1`).
pub fn long_tests() -> bool {
    std::env::var("SYNCSCRIPT_LONG_TESTS").is_ok_and(|v| v == "1")
}

/// Panics with a clear message unless the tests run as root: `why` needs
/// it (`runuser`, `chattr +i`, `unshare --mount`).
pub fn require_root(why: &str) {
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    assert_eq!(uid, "0", "this test must run as root: {why}");
}

/// The seed of a randomised test: `SYNCSCRIPT_FAULT_SEED`, else the clock;
/// printed so that a failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SYNCSCRIPT_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        });
    eprintln!("{test}: seed {seed} (replay with SYNCSCRIPT_FAULT_SEED={seed})");
    seed
}

/// The log holds seq 1..=N, each once: no seq lost or reused by a crash.
pub fn assert_contiguous(log: &[LoggedEvent]) {
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "the committed log is seq 1..=N");
}

/// The ids of the sources the log says were created, with how many times.
pub fn created_ids(log: &[LoggedEvent]) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for event in log.iter().filter(|e| e.name == "source:created") {
        let id = event.payload["source"]["id"].as_str().unwrap_or_default();
        *ids.entry(id.to_owned()).or_insert(0) += 1;
    }
    ids
}

/// Every source a writer was told was created is in the log exactly once.
pub fn assert_acknowledged_are_logged(acknowledged: &[String], log: &[LoggedEvent]) {
    let logged = created_ids(log);
    for id in acknowledged {
        assert_eq!(
            logged.get(id),
            Some(&1),
            "the acknowledged source {id} is in the committed log exactly once; the log \
             (head {}) created {:?}",
            log.len(),
            log.iter()
                .filter(|e| e.name == "source:created")
                .map(|e| format!(
                    "{} {} {}",
                    e.seq, e.payload["source"]["id"], e.payload["source"]["title"]
                ))
                .collect::<Vec<_>>()
        );
    }
}

/// Waits until every watcher has applied exactly the log's seqs (each once,
/// in order), then checks that every event it was ever sent, live or
/// replayed, is in the log with the very same payload: nothing that was
/// not committed was broadcast.
pub async fn assert_watchers_got_exactly(watchers: &[Watcher], log: &[LoggedEvent]) {
    let seqs: Vec<i64> = log.iter().map(|e| e.seq).collect();
    let by_seq: BTreeMap<i64, &LoggedEvent> = log.iter().map(|e| (e.seq, e)).collect();
    for watcher in watchers {
        let view = watcher.until_applied(&seqs).await;
        for (seq, name, payload) in &view.received {
            let Some(logged) = by_seq.get(seq) else {
                panic!(
                    "{}: was sent {name} seq {seq}, which is not in the committed log \
                     (head {}): an uncommitted event was broadcast",
                    watcher.name,
                    seqs.len()
                );
            };
            assert!(
                logged.name == *name && logged.payload == *payload,
                "{}: was sent seq {seq} as {name} {payload}, but the log holds {} {}",
                watcher.name,
                logged.name,
                logged.payload
            );
        }
        assert_eq!(view.resyncs, 0, "{}: no resync expected", watcher.name);
        eprintln!(
            "{}: applied {} events, received {} ({} duplicates ignored), {} disconnects",
            watcher.name,
            view.applied.len(),
            view.received.len(),
            view.received.len() - view.applied.len(),
            view.disconnects
        );
    }
}

/// `POST /api/vaults/{id}/sources` that reports instead of panicking: the
/// status and body, or the transport error.
pub async fn try_create_source(
    api: &Api,
    user: &TestUser,
    vault_id: &str,
    title: &str,
) -> Result<(StatusCode, Value), reqwest::Error> {
    let response = api
        .request(
            Method::POST,
            &format!("/api/vaults/{vault_id}/sources"),
            Some(user),
        )
        .json(&json!({"title": title, "fileUrl": "https://example.org/paper.pdf"}))
        .timeout(Duration::from_secs(40))
        .send()
        .await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// Stops every watcher.
pub async fn stop_all(watchers: Vec<Watcher>) {
    for watcher in watchers {
        watcher.stop().await;
    }
}
