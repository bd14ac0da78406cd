//! `watch`: follows a vault over Socket.IO and prints each sequenced event
//! exactly once, in seq order, across reconnects and server restarts.
//!
//! The connection, its rejoins from the last printed seq and its refusal
//! rule are `syncscript_client::socket`'s; this module orders what arrives
//! (with `syncscript_client::sequencer`), fills gaps over REST and prints.

use std::process::ExitCode;

use anyhow::{anyhow, bail};
use serde::Serialize;
use serde_json::Value;
use syncscript_client::api::ApiClient;
use syncscript_client::sequencer::{Offered, Sequenced, Sequencer};
use syncscript_client::socket::{Incoming, Session};
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
    let (session, mut incoming) = Session::start(&api.server_url(), token);
    session.join(&options.vault_id, since);
    let mut watcher = Watcher {
        api,
        options,
        sequencer: Sequencer::new(since),
        joined: false,
        opened: false,
        session: &session,
    };
    let outcome = loop {
        let item = tokio::select! {
            item = incoming.recv() => item,
            _ = tokio::signal::ctrl_c() => break Ok(ExitCode::SUCCESS),
        };
        let Some(item) = item else {
            break Err(anyhow!("the Socket.IO session stopped"));
        };
        match watcher.handle(item).await {
            Ok(Some(code)) => break Ok(code),
            Ok(None) => {}
            Err(error) => break Err(error),
        }
    };
    session.close().await;
    outcome
}

struct Watcher<'a> {
    api: &'a ApiClient,
    options: WatchOptions,
    sequencer: Sequencer,
    /// Whether the current connection has completed its join (the replay,
    /// if any, is then complete).
    joined: bool,
    /// Whether any connection was accepted (before that, failing to connect
    /// ends the watch).
    opened: bool,
    session: &'a Session,
}

impl Watcher<'_> {
    /// Handles one report of the session; `Some(code)` ends the watch.
    async fn handle(&mut self, item: Incoming) -> anyhow::Result<Option<ExitCode>> {
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
            Incoming::Refused(code) => {
                bail!("{code}: {} refused the connection", self.api.server_url())
            }
            Incoming::TransportError(text) => eprintln!("watch: connection problem: {text}"),
            Incoming::Event { event, .. } => {
                let seq = event.seq;
                if let Offered::Ready(ready) = self.sequencer.offer(seq, event)
                    && let Some(code) = self.print_all(ready)?
                {
                    return Ok(Some(code));
                }
                if self.joined && self.sequencer.has_gap() {
                    return self.fill_gap().await;
                }
            }
            Incoming::Joined(joined) => return self.on_joined(joined).await,
            Incoming::Resync(resync) => {
                eprintln!(
                    "watch: events before seq {} are no longer retained: refetch the sources",
                    resync.seq
                );
                self.print_line(
                    signals::VAULT_RESYNC,
                    resync.seq,
                    &serde_json::to_value(&resync)?,
                )?;
                let ready = self.sequencer.reset(resync.seq);
                self.session.applied(&self.options.vault_id, resync.seq);
                return self.print_all(ready);
            }
            Incoming::Removed(removed) => {
                let payload = serde_json::to_value(&removed)?;
                self.print_line(signals::VAULT_REMOVED, self.sequencer.last(), &payload)?;
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
            // The session rejoins by itself when the head is ahead.
            Incoming::Head(head) if head.seq > self.sequencer.last() => {
                eprintln!(
                    "watch: the vault is at seq {}, beyond seq {}: catching up",
                    head.seq,
                    self.sequencer.last()
                );
            }
            Incoming::Head(_) => {}
            // The only command sent is the join: its failure ends the watch.
            Incoming::Error(error) if !self.joined => bail!("{}: {}", error.code, error.message),
            Incoming::Error(error) => {
                eprintln!("watch: server error: {}: {}", error.code, error.message);
            }
            Incoming::Unknown { name, payload } => {
                eprintln!("watch: ignoring {name}: {payload}");
            }
        }
        Ok(None)
    }

    async fn on_joined(&mut self, joined: Joined) -> anyhow::Result<Option<ExitCode>> {
        self.joined = true;
        eprintln!(
            "watch: joined vault {} as {}; head seq {}, last printed {}",
            joined.vault_id,
            joined.role,
            joined.seq,
            self.sequencer.last()
        );
        // The replay is complete: anything still missing was lost on the
        // way and is fetched from the log.
        if self.sequencer.has_gap() || joined.seq > self.sequencer.last() {
            return self.fill_gap().await;
        }
        Ok(None)
    }

    /// Fetches the missing events from the log. A failure is only reported:
    /// the next (re)join replays them anyway.
    async fn fill_gap(&mut self) -> anyhow::Result<Option<ExitCode>> {
        loop {
            let since = self.sequencer.last();
            let page = match self
                .api
                .list_events(&self.options.vault_id, Some(since), None)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    eprintln!("watch: cannot fetch missed events: {error}");
                    return Ok(None);
                }
            };
            for event in page.events {
                let seq = event.seq;
                let event = Sequenced {
                    name: event.name,
                    seq,
                    payload: event.payload,
                };
                if let Offered::Ready(ready) = self.sequencer.offer(seq, event)
                    && let Some(code) = self.print_all(ready)?
                {
                    return Ok(Some(code));
                }
            }
            if self.sequencer.last() == since || self.sequencer.last() >= page.seq {
                return Ok(None);
            }
        }
    }

    /// Prints released events and reports them applied (the next rejoin
    /// starts after them); `vault:deleted` ends the watch.
    fn print_all(&self, ready: Vec<Sequenced>) -> anyhow::Result<Option<ExitCode>> {
        let Some(last) = ready.last().map(|event| event.seq) else {
            return Ok(None);
        };
        for event in ready {
            self.print_line(&event.name, event.seq, &event.payload)?;
            if event.name == names::VAULT_DELETED {
                eprintln!("watch: vault {} was deleted", self.options.vault_id);
                return Ok(Some(ExitCode::SUCCESS));
            }
        }
        self.session.applied(&self.options.vault_id, last);
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
