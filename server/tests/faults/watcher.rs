//! A watcher of one vault over the workspace's own client session
//! (`syncscript_client::socket::Session`, rust_socketio underneath: it
//! rejoins with `since` on every reconnect and on `vault:head`), following
//! the catch-up rules of docs/protocol.md: events go through a
//! `Sequencer`, a gap that stays open (or a `vault:joined` whose head is
//! beyond what was applied) asks for a replay. It records every sequenced
//! event it was sent, as sent, besides what it applied, so that a test can
//! check both "exactly once, in order" and "nothing uncommitted".

use std::time::Duration;

use serde_json::Value;
use syncscript_client::sequencer::{Offered, Sequencer};
use syncscript_client::socket::{Incoming, Session};
use tokio::sync::watch;

use crate::PATIENCE;

/// How long a gap may stay open before the watcher asks for a replay.
const GAP_GRACE: Duration = Duration::from_millis(300);

/// What a watcher has seen so far.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Seqs applied, in the order applied.
    pub applied: Vec<i64>,
    /// Every sequenced event of the vault received (live or replayed,
    /// duplicates included): seq, name, payload.
    pub received: Vec<(i64, String, Value)>,
    /// `vault:joined` received.
    pub joins: usize,
    /// Connections closed or lost.
    pub disconnects: usize,
    /// `vault:resync` received.
    pub resyncs: usize,
    /// `error` events and other surprises.
    pub errors: Vec<String>,
}

/// A watcher of one vault, joined from seq 0.
pub struct Watcher {
    pub name: String,
    view: watch::Receiver<View>,
    session: Session,
}

impl Watcher {
    /// Connects to `url` with `token` and joins `vault_id` from seq 0.
    pub fn start(name: &str, url: &str, token: &str, vault_id: &str) -> Watcher {
        let (session, mut incoming) = Session::start(url, token);
        session.join(vault_id, 0);
        let (view_tx, view) = watch::channel(View::default());
        let vault = vault_id.to_owned();
        let handle = session.clone();
        tokio::spawn(async move {
            let mut sequencer: Sequencer<i64> = Sequencer::new(0);
            // Since when the watcher has known it misses events.
            let mut behind_since: Option<tokio::time::Instant> = None;
            let mut ticks = tokio::time::interval(GAP_GRACE / 3);
            loop {
                let item = tokio::select! {
                    item = incoming.recv() => match item {
                        Some(item) => item,
                        None => return,
                    },
                    _ = ticks.tick() => {
                        if behind_since.is_some_and(|since| since.elapsed() >= GAP_GRACE) {
                            behind_since = Some(tokio::time::Instant::now());
                            handle.join(&vault, sequencer.last());
                        }
                        continue;
                    }
                };
                view_tx.send_modify(|view| match item {
                    Incoming::Event { vault_id, event } if vault_id == vault => {
                        view.received
                            .push((event.seq, event.name.clone(), event.payload.clone()));
                        if let Offered::Ready(seqs) = sequencer.offer(event.seq, event.seq) {
                            view.applied.extend(&seqs);
                            handle.applied(&vault, sequencer.last());
                        }
                        behind_since = sequencer
                            .has_gap()
                            .then(|| behind_since.unwrap_or_else(tokio::time::Instant::now));
                    }
                    Incoming::Event { vault_id, event } => {
                        view.errors
                            .push(format!("foreign {} {vault_id} {}", event.name, event.seq));
                    }
                    Incoming::Joined(joined) => {
                        view.joins += 1;
                        // The replay is complete: a head beyond what was
                        // applied, with nothing buffered, is a gap too.
                        if joined.seq > sequencer.last() && behind_since.is_none() {
                            behind_since = Some(tokio::time::Instant::now());
                        }
                    }
                    Incoming::Resync(_) => view.resyncs += 1,
                    Incoming::Error(detail) => {
                        view.errors
                            .push(format!("{}: {}", detail.code, detail.message));
                    }
                    Incoming::Refused(code) => view.errors.push(format!("refused {code}")),
                    Incoming::Closed | Incoming::Reconnecting => view.disconnects += 1,
                    _ => {}
                });
            }
        });
        Watcher {
            name: name.to_owned(),
            view,
            session,
        }
    }

    /// Waits until the view satisfies `done`; panics with `what` after
    /// [`PATIENCE`].
    pub async fn until(&self, what: &str, done: impl Fn(&View) -> bool) -> View {
        let mut view = self.view.clone();
        match tokio::time::timeout(PATIENCE, view.wait_for(|v| done(v))).await {
            Ok(Ok(view)) => view.clone(),
            _ => {
                let view = self.view.borrow().clone();
                panic!(
                    "{}: never {what}; applied {} events (last {:?}), received {}, \
                     joins {}, disconnects {}, resyncs {}, errors {:?}",
                    self.name,
                    view.applied.len(),
                    view.applied.last(),
                    view.received.len(),
                    view.joins,
                    view.disconnects,
                    view.resyncs,
                    view.errors
                )
            }
        }
    }

    /// Waits until it has applied exactly `seqs`, each once and in order.
    pub async fn until_applied(&self, seqs: &[i64]) -> View {
        let view = self
            .until(
                &format!("applied the {} committed events", seqs.len()),
                |v| v.applied.len() >= seqs.len(),
            )
            .await;
        assert_eq!(
            view.applied, seqs,
            "{}: every committed event exactly once, in seq order",
            self.name
        );
        view
    }

    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    pub async fn stop(self) {
        self.session.close().await;
    }
}
