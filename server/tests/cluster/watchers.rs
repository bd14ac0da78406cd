//! Watchers of one vault for the cluster tests, over the two real clients:
//! rust_socketio (through `syncscript_client::follower::Follow`, the CLI's
//! follower, which owns the catch-up rules) and the official npm
//! `socket.io-client` (through `tests/node/watcher.mjs`). Both follow the
//! catch-up rules of docs/protocol.md; each publishes what it has applied on
//! a watch channel that the tests await.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use syncscript_client::follower::{Follow, Update};
use syncscript_client::socket::{Incoming, SocketClient};
use syncscript_protocol::Presence;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// How long a test waits for what must happen.
pub const PATIENCE: Duration = Duration::from_secs(30);
/// How long the watcher may stay behind before it rejoins.
const GAP_GRACE: Duration = Duration::from_millis(300);

/// What a watcher has seen so far.
#[derive(Debug, Clone, Default)]
pub struct View {
    /// Seqs applied, in the order applied.
    pub applied: Vec<i64>,
    /// Sequenced events received from outside the watched vault, or after
    /// access ended: must stay empty.
    pub foreign: Vec<String>,
    /// `vault:joined` received.
    pub joins: usize,
    /// Join refusals (`error` events / acks) received.
    pub refusals: Vec<String>,
    /// The last `presence` of the vault.
    pub presence: Option<Presence>,
    /// `vault:removed` received.
    pub removed: bool,
    /// The session was refused for good (`UNAUTHORIZED`).
    pub unauthorized: bool,
    /// Connections closed or lost.
    pub disconnects: usize,
}

/// A watcher of one vault, over one of the two clients.
pub struct Watcher {
    pub name: String,
    view: watch::Receiver<View>,
    stop: Stop,
}

enum Stop {
    Rust(SocketClient),
    Node(Child),
}

impl Watcher {
    /// Waits until the view satisfies `done`; panics with `what` after
    /// [`PATIENCE`].
    pub async fn until(&self, what: &str, done: impl Fn(&View) -> bool) -> View {
        let mut view = self.view.clone();
        match tokio::time::timeout(PATIENCE, view.wait_for(|v| done(v))).await {
            Ok(Ok(view)) => view.clone(),
            _ => panic!("{}: never {what}; saw {:?}", self.name, *self.view.borrow()),
        }
    }

    /// Waits until it has applied exactly `seqs`, each once and in order.
    pub async fn until_applied(&self, seqs: &[i64]) -> View {
        let view = self
            .until(&format!("applied {seqs:?}"), |v| {
                v.applied.len() >= seqs.len()
            })
            .await;
        assert_eq!(
            view.applied, seqs,
            "{}: every event exactly once, in order",
            self.name
        );
        view
    }

    pub fn view(&self) -> View {
        self.view.borrow().clone()
    }

    pub async fn stop(self) {
        match self.stop {
            Stop::Rust(socket) => socket.close().await,
            Stop::Node(mut child) => {
                child.kill().await.ok();
            }
        }
    }
}

/// A rust_socketio watcher of `vault_id` at `url`, joined from seq 0.
pub fn rust(name: &str, url: &str, token: &str, vault_id: &str) -> Watcher {
    let mut follow = Follow::start(url, token).with_gap_wait(GAP_GRACE);
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
        name: format!("{name} (rust_socketio)"),
        view,
        stop: Stop::Rust(socket),
    }
}

/// What one update of the follow adds to the view.
fn record(view: &mut View, vault: &str, update: Update) {
    match update {
        Update::Applied { events, .. } => view.applied.extend(events.iter().map(|e| e.seq)),
        // Not followed: another vault's, or the vault's after the removal.
        Update::Foreign { vault_id, event } => {
            view.foreign
                .push(format!("{} {vault_id} {}", event.name, event.seq));
        }
        Update::GaveUp(rejoin) => view.refusals.push(format!("gave up after {rejoin:?}")),
        Update::Socket(Incoming::Joined(_)) => view.joins += 1,
        Update::Socket(Incoming::Error(detail)) => {
            view.refusals.push(detail.code.as_str().to_owned());
        }
        Update::Socket(Incoming::Presence(presence)) if presence.vault_id == vault => {
            view.presence = Some(presence);
        }
        Update::Socket(Incoming::Presence(presence)) => {
            view.foreign.push(format!("presence {}", presence.vault_id));
        }
        Update::Socket(Incoming::Removed(_)) => view.removed = true,
        Update::Socket(Incoming::Refused(_)) => view.unauthorized = true,
        Update::Socket(Incoming::Closed | Incoming::Reconnecting) => view.disconnects += 1,
        _ => {}
    }
}

/// An npm `socket.io-client` watcher of `vault_id` at `url`, joined from
/// seq 0 (`tests/node/watcher.mjs`), over WebSocket only.
pub fn node(name: &str, url: &str, token: &str, vault_id: &str) -> Watcher {
    node_with(name, url, token, vault_id, &[])
}

/// The same, starting with HTTP long-polling and upgrading, as a browser
/// does (every request of the session must reach the same node).
pub fn node_polling(name: &str, url: &str, token: &str, vault_id: &str) -> Watcher {
    node_with(name, url, token, vault_id, &["polling"])
}

fn node_with(name: &str, url: &str, token: &str, vault_id: &str, extra: &[&str]) -> Watcher {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/node/watcher.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .args([url, token, vault_id])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/setup installs tests/node)");
    let stdout = child.stdout.take().expect("watcher's stdout");
    let (view_tx, view) = watch::channel(View::default());
    let vault = vault_id.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(line) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            view_tx.send_modify(|view| {
                if let Some(seq) = line["applied"].as_i64() {
                    if view.removed {
                        view.foreign.push(format!("{line}"));
                    } else {
                        view.applied.push(seq);
                    }
                    return;
                }
                match line["signal"].as_str() {
                    Some("vault:joined") => view.joins += 1,
                    Some("vault:removed") => view.removed = true,
                    Some("error") => {
                        view.refusals
                            .push(line["code"].as_str().unwrap_or("").to_owned());
                    }
                    Some("presence") if line["vaultId"] == vault.as_str() => {
                        view.presence = serde_json::from_value(line.clone()).ok();
                    }
                    _ => {}
                }
                match line["status"].as_str() {
                    Some("disconnected") => view.disconnects += 1,
                    Some("connect_error") if line["message"] == "UNAUTHORIZED" => {
                        view.unauthorized = true;
                    }
                    _ => {}
                }
            });
        }
    });
    Watcher {
        name: format!("{name} (socket.io-client{})", extra.join(" ")),
        view,
        stop: Stop::Node(child),
    }
}
