//! A watcher of one vault over the workspace's own follower
//! (`syncscript_client::follower::Follow`: rust_socketio underneath, which
//! rejoins with `since` on every reconnect and on `vault:head`; the catch-up
//! rules of docs/protocol.md, a gap that stays open or a `vault:joined`
//! whose head is beyond what was applied asking for a replay). It records
//! every sequenced event it was sent, as sent, besides what it applied, so
//! that a test can check both "exactly once, in order" and "nothing
//! uncommitted".

use std::time::Duration;

use serde_json::Value;
use syncscript_client::follower::{Follow, Update};
use syncscript_client::socket::{Incoming, SocketClient};
use tokio::sync::watch;

use crate::PATIENCE;

/// How long the watcher may stay behind before it asks for a replay.
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
    socket: SocketClient,
}

impl Watcher {
    /// Connects to `url` with `token` and joins `vault_id` from seq 0.
    pub fn start(name: &str, url: &str, token: &str, vault_id: &str) -> Watcher {
        let mut follow = Follow::start(url, token)
            .with_gap_wait(GAP_GRACE)
            .reporting_received();
        follow.follow(vault_id, 0);
        let socket = follow.socket().clone();
        let (view_tx, view) = watch::channel(View::default());
        let vault = vault_id.to_owned();
        tokio::spawn(async move {
            while let Some(update) = follow.next().await {
                view_tx.send_modify(|view| record(view, &vault, update));
            }
        });
        Watcher {
            name: name.to_owned(),
            view,
            socket,
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
        self.socket.close().await;
    }
}

/// What one update of the follow adds to the view.
fn record(view: &mut View, vault: &str, update: Update) {
    match update {
        Update::Received { vault_id, event } if vault_id == vault => {
            view.received.push((event.seq, event.name, event.payload));
        }
        Update::Applied { events, .. } => view.applied.extend(events.iter().map(|e| e.seq)),
        Update::Foreign { vault_id, event } => {
            view.errors
                .push(format!("foreign {} {vault_id} {}", event.name, event.seq));
        }
        Update::Resync(_) => view.resyncs += 1,
        Update::GaveUp(rejoin) => view.errors.push(format!("gave up after {rejoin:?}")),
        Update::Socket(Incoming::Joined(_)) => view.joins += 1,
        Update::Socket(Incoming::Error(detail)) => {
            view.errors
                .push(format!("{}: {}", detail.code, detail.message));
        }
        Update::Socket(Incoming::Refused(code)) => view.errors.push(format!("refused {code}")),
        Update::Socket(Incoming::Closed | Incoming::Reconnecting) => view.disconnects += 1,
        _ => {}
    }
}
