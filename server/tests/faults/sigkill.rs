//! The server process killed with SIGKILL while a REST writer and a
//! Socket.IO writer mutate a vault as fast as they can and three watchers
//! follow it; restarted on the same port and database while the writers
//! keep going. Afterwards the committed log (read through REST after the
//! restart) is seq 1..=N, every mutation a writer was told succeeded is in
//! it exactly once, every watcher has applied all of it exactly once in seq
//! order, and no watcher was ever sent an event that is not in it with the
//! very same payload (nothing uncommitted was broadcast, no seq was handed
//! out twice). Once in CI; ten kills in the long version.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use syncscript_client::socket::SocketClient;
use syncscript_testkit::{Backend, Team, TestDatabase, on_both_backends};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::Server;
use crate::watcher::Watcher;
use crate::{
    PATIENCE, assert_acknowledged_are_logged, assert_contiguous, assert_watchers_got_exactly,
    long_tests, seed, stop_all, try_create_source,
};

/// Events the watchers must have applied between two kills, and mutations
/// acknowledged after each restart.
const EVENTS_PER_ROUND: usize = 40;

on_both_backends!(killed_mid_stream);

async fn killed_mid_stream(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut server = Server::start(&database.url).await;
    let api = server.api.clone();
    let team = api.team().await;
    let vault = team.vault.id.clone();
    let watchers = vec![
        Watcher::start("owner", &api.base, &team.owner.token, &vault),
        Watcher::start("contributor", &api.base, &team.contributor.token, &vault),
        Watcher::start("viewer", &api.base, &team.viewer.token, &vault),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    let writers = Writers::start(&api.base, &team);

    let mut rng = StdRng::seed_from_u64(seed(&format!("SIGKILL ({backend:?})")));
    let kills = if long_tests() { 10 } else { 1 };
    for round in 1..=kills {
        let applied = watchers[0].view().applied.len();
        watchers[0]
            .until("applied events mid-stream", |v| {
                v.applied.len() >= applied + EVENTS_PER_ROUND
            })
            .await;
        // Anywhere in a commit/publish cycle.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..250))).await;
        let acknowledged = writers.progress().acknowledged.len();
        server.kill().await;
        eprintln!("kill {round}/{kills}: SIGKILL after {acknowledged} acknowledged mutations");
        server.start_again().await;
        writers
            .until("acknowledged after the restart", |p| {
                p.acknowledged.len() >= acknowledged + EVENTS_PER_ROUND
            })
            .await;
    }
    let progress = writers.stop().await;
    eprintln!(
        "writers: {} acknowledged, {} failed while the server was down",
        progress.acknowledged.len(),
        progress.failed
    );
    assert!(
        progress.unexpected.is_empty(),
        "every answer the server gave was a success: {:?}",
        progress.unexpected
    );

    let log = api.event_log(&team.owner.token, &vault).await;
    assert_contiguous(&log);
    assert_acknowledged_are_logged(&progress.acknowledged, &log);
    assert_watchers_got_exactly(&watchers, &log).await;
    for watcher in &watchers {
        assert!(
            watcher.view().disconnects >= kills,
            "{} lost its connection at each kill",
            watcher.name
        );
    }
    stop_all(watchers).await;
    server.assert_no_panic();
}

/// What the writers have done so far.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Ids of the sources whose creation was acknowledged (201 or ack ok).
    acknowledged: Vec<String>,
    /// Mutations that got no answer (connection refused or reset, timeout).
    failed: usize,
    /// Answers other than a success: none expected.
    unexpected: Vec<String>,
}

/// A REST writer (the owner) and a Socket.IO writer (the contributor)
/// creating sources one after the other until stopped.
struct Writers {
    progress: watch::Receiver<Progress>,
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    session: SocketClient,
}

impl Writers {
    fn start(base: &str, team: &Team) -> Writers {
        let (progress_tx, progress) = watch::channel(Progress::default());
        let progress_tx = Arc::new(progress_tx);
        let stop = Arc::new(AtomicBool::new(false));
        let rest = {
            let api = syncscript_testkit::Api::new(base);
            let (owner, vault) = (team.owner.clone(), team.vault.id.clone());
            let (progress, stop) = (progress_tx.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let title = format!("rest {n}");
                    match try_create_source(&api, &owner, &vault, &title).await {
                        Ok((StatusCode::CREATED, body)) => {
                            let id = body["source"]["id"].as_str().unwrap_or_default();
                            progress.send_modify(|p| p.acknowledged.push(id.to_owned()));
                        }
                        Ok((status, body)) => {
                            progress.send_modify(|p| p.unexpected.push(format!("{status} {body}")));
                        }
                        Err(_) => {
                            progress.send_modify(|p| p.failed += 1);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            })
        };
        let (session, incoming) = SocketClient::start(base, &team.contributor.token);
        let socket = {
            let session = session.clone();
            let vault = team.vault.id.clone();
            let (progress, stop) = (progress_tx, stop.clone());
            tokio::spawn(async move {
                // What the session reports is not needed: keep the channel
                // open and drained.
                let mut incoming = incoming;
                let drain = tokio::spawn(async move { while incoming.recv().await.is_some() {} });
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let command = json!({
                        "vaultId": vault,
                        "title": format!("socket {n}"),
                        "fileUrl": "https://example.org/paper.pdf",
                    });
                    match session.command::<Value>("source:create", &command).await {
                        Ok(ack) => {
                            let id = ack["source"]["id"].as_str().unwrap_or_default();
                            progress.send_modify(|p| p.acknowledged.push(id.to_owned()));
                        }
                        Err(error) if error.code().is_some() => {
                            progress.send_modify(|p| p.unexpected.push(error.to_string()));
                        }
                        // Not connected, sent on a dying connection, or
                        // its ack lost with the server.
                        Err(_) => {
                            progress.send_modify(|p| p.failed += 1);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
                drain.abort();
            })
        };
        Writers {
            progress,
            stop,
            tasks: vec![rest, socket],
            session,
        }
    }

    fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    async fn until(&self, what: &str, done: impl Fn(&Progress) -> bool) {
        let mut progress = self.progress.clone();
        if tokio::time::timeout(PATIENCE, progress.wait_for(|p| done(p)))
            .await
            .is_err()
        {
            panic!("writers: never {what}: {:?}", self.progress());
        }
    }

    /// Stops both writers, waits for their last mutation, and says what
    /// they did.
    async fn stop(self) -> Progress {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("writer task");
        }
        self.session.close().await;
        self.progress.borrow().clone()
    }
}
