//! `watch`: follows a vault over Socket.IO and prints each sequenced event
//! exactly once, in seq order, across reconnects and server restarts.
//!
//! The connection, its rejoins and the catch-up rules are
//! `syncscript_client::follower`'s; this module prints what it applied and
//! tells what happens on standard error.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde::Serialize;
use serde_json::Value;
use syncscript_client::api::ApiClient;
use syncscript_client::follower::{Follow, Update};
use syncscript_client::sequencer::Sequenced;
use syncscript_client::socket::Incoming;
use syncscript_protocol::{Joined, names, signals};

use crate::output::pretty_event;

/// Exit status after `vault:removed`: the watcher lost access.
pub const EXIT_REMOVED: u8 = 3;

/// One line of `watch` output.
#[derive(Debug, Serialize)]
struct WatchLine<'a> {
    event: &'a str,
    seq: i64,
    payload: &'a Value,
}

/// What `watch` is told to do.
#[derive(Debug)]
pub struct WatchOptions {
    pub vault_id: String,
    pub since: Option<i64>,
    pub pretty: bool,
}

/// Watches until the vault is deleted, access is lost, the server refuses
/// the session, or Ctrl-C.
pub async fn watch(
    api: &ApiClient,
    token: &str,
    options: WatchOptions,
) -> anyhow::Result<ExitCode> {
    // Without `--since`, start from the head: the REST read also checks the
    // vault and the token before any socket is opened.
    let since = match options.since {
        Some(since) => since,
        None => api.get_vault(&options.vault_id).await?.seq,
    };
    let mut follow = Follow::start(&api.server_url(), token);
    follow.follow(&options.vault_id, since);
    let mut watcher = Watcher {
        server: api.server_url(),
        options,
        last: since,
        joined: false,
        opened: false,
    };
    let outcome = loop {
        let update = tokio::select! {
            update = follow.next() => update,
            _ = tokio::signal::ctrl_c() => break Ok(ExitCode::SUCCESS),
        };
        let Some(update) = update else {
            break Err(anyhow!("the Socket.IO session stopped"));
        };
        match watcher.handle(update) {
            Ok(Some(code)) => break Ok(code),
            Ok(None) => {}
            Err(error) => break Err(error),
        }
    };
    follow.close().await;
    outcome
}

struct Watcher {
    server: String,
    options: WatchOptions,
    /// The last seq printed.
    last: i64,
    /// Whether the current connection has completed its join (a failed
    /// join before that ends the watch).
    joined: bool,
    /// Whether any connection was accepted (before that, failing to connect
    /// ends the watch).
    opened: bool,
}

impl Watcher {
    /// Handles one update of the follow; `Some(code)` ends the watch.
    fn handle(&mut self, update: Update) -> anyhow::Result<Option<ExitCode>> {
        match update {
            Update::Applied { events, .. } => return self.print_all(events),
            Update::Resync(resync) => {
                eprintln!(
                    "watch: events before seq {} are no longer retained: refetch the sources",
                    resync.seq
                );
                self.print_line(
                    signals::VAULT_RESYNC,
                    resync.seq,
                    &serde_json::to_value(&resync)?,
                )?;
                self.last = resync.seq;
            }
            Update::CatchingUp { head, last, .. } => {
                eprintln!("watch: the vault is at seq {head}, beyond seq {last}: catching up");
            }
            Update::Rejoined(rejoin) => {
                eprintln!(
                    "watch: events are missing after seq {}: joining again",
                    rejoin.since
                );
            }
            Update::GaveUp(rejoin) => bail!(
                "events after seq {} could not be caught up in {} rejoins",
                rejoin.since,
                rejoin.attempt - 1
            ),
            Update::Received { .. } | Update::Foreign { .. } => {}
            Update::Socket(item) => return self.on_socket(item),
        }
        Ok(None)
    }

    fn on_socket(&mut self, item: Incoming) -> anyhow::Result<Option<ExitCode>> {
        match item {
            Incoming::Opened { joins } => {
                self.joined = false;
                self.opened = true;
                for join in joins {
                    eprintln!(
                        "watch: connected; joining vault {} since seq {}",
                        join.vault_id,
                        join.since.unwrap_or_default()
                    );
                }
            }
            Incoming::Closed => {
                self.joined = false;
                eprintln!("watch: disconnected; reconnecting");
            }
            Incoming::Reconnecting => self.joined = false,
            Incoming::ConnectFailed { attempt, error } => {
                if !self.opened {
                    return Err(error.into());
                }
                eprintln!("watch: {error}; retrying (attempt {attempt})");
            }
            Incoming::Rejected { message } => {
                self.joined = false;
                eprintln!("watch: connection refused for now ({message}); retrying");
            }
            Incoming::Refused(code) => bail!("{code}: {} refused the connection", self.server),
            Incoming::TransportError(text) => eprintln!("watch: connection problem: {text}"),
            Incoming::Joined(joined) => self.on_joined(&joined),
            Incoming::Removed(removed) => {
                let payload = serde_json::to_value(&removed)?;
                self.print_line(signals::VAULT_REMOVED, self.last, &payload)?;
                eprintln!(
                    "watch: removed from vault {}: {}",
                    removed.vault_id, removed.reason
                );
                return Ok(Some(ExitCode::from(EXIT_REMOVED)));
            }
            Incoming::Presence(presence) => {
                let who: Vec<String> = presence
                    .present
                    .iter()
                    .map(|p| format!("{} ({}, {}×)", p.user_name, p.role, p.connections))
                    .collect();
                eprintln!("watch: present: {}", who.join(", "));
            }
            Incoming::Left(left) => eprintln!("watch: left vault {}", left.vault_id),
            // The only command sent is the join: its failure ends the watch.
            Incoming::Error(error) if !self.joined => bail!("{}: {}", error.code, error.message),
            Incoming::Error(error) => {
                eprintln!("watch: server error: {}: {}", error.code, error.message);
            }
            Incoming::Unknown { name, payload } => {
                eprintln!("watch: ignoring {name}: {payload}");
            }
            // The follower handles these itself.
            Incoming::Event { .. } | Incoming::Head(_) | Incoming::Resync(_) => {}
        }
        Ok(None)
    }

    fn on_joined(&mut self, joined: &Joined) {
        self.joined = true;
        eprintln!(
            "watch: joined vault {} as {}; head seq {}, last printed {}",
            joined.vault_id, joined.role, joined.seq, self.last
        );
    }

    /// Prints applied events; `vault:deleted` ends the watch.
    fn print_all(&mut self, events: Vec<Sequenced>) -> anyhow::Result<Option<ExitCode>> {
        for event in events {
            self.print_line(&event.name, event.seq, &event.payload)?;
            self.last = event.seq;
            if event.name == names::VAULT_DELETED {
                eprintln!("watch: vault {} was deleted", self.options.vault_id);
                return Ok(Some(ExitCode::SUCCESS));
            }
        }
        Ok(None)
    }

    fn print_line(&self, event: &str, seq: i64, payload: &Value) -> anyhow::Result<()> {
        if self.options.pretty {
            println!("{}", pretty_event(event, seq, payload));
        } else {
            let line = WatchLine {
                event,
                seq,
                payload,
            };
            println!("{}", serde_json::to_string(&line)?);
        }
        Ok(())
    }
}
