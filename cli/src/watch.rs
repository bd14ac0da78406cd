//! `watch`: follows a vault over Socket.IO and prints each sequenced event
//! exactly once, in seq order, across reconnects and server restarts.
//!
//! rust_socketio runs callbacks one at a time under a lock, so every callback
//! only forwards what it got into a channel; this module's loop does the
//! rest (joins, ordering, gap fills over REST, printing).

use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Event, Payload, TransportType};
use serde::Serialize;
use serde_json::{Value, json};
use syncscript_protocol::{
    ErrorCode, ErrorDetail, JoinRequest, Joined, Presence, Removed, Resync, commands, names,
    signals,
};
use tokio::sync::mpsc;

use crate::api::ApiClient;
use crate::output::pretty_event;
use crate::sequencer::{Sequenced, Sequencer};

/// Exit status after `vault:removed`: the watcher lost access.
pub const EXIT_REMOVED: u8 = 3;

/// Reconnect back-off of the Socket.IO client, in milliseconds.
const RECONNECT_DELAY_MS: (u64, u64) = (100, 500);

/// Prefix rust_socketio puts before the server's refusal of a connection.
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// What the callbacks forward to the loop.
#[derive(Debug)]
enum Incoming {
    /// The namespace is connected (first time or after a reconnect).
    Open,
    /// The connection closed; rust_socketio reconnects by itself.
    Close,
    /// A refusal, a server `error` event or a transport problem.
    Error(Payload),
    /// Any other event.
    Event(String, Payload),
}

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
/// us, or Ctrl-C.
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
    let (tx, mut rx) = mpsc::unbounded_channel();
    let client = connect(&api.server_url(), token, tx).await?;
    let mut watcher = Watcher {
        api,
        options,
        sequencer: Sequencer::new(since),
        joined: false,
        ever_joined: false,
        client: &client,
    };
    let outcome = loop {
        let incoming = tokio::select! {
            incoming = rx.recv() => incoming,
            _ = tokio::signal::ctrl_c() => break Ok(ExitCode::SUCCESS),
        };
        let Some(incoming) = incoming else {
            break Err(anyhow!("the Socket.IO client stopped"));
        };
        match watcher.handle(incoming).await {
            Ok(Some(code)) => break Ok(code),
            Ok(None) => {}
            Err(error) => break Err(error),
        }
    };
    // Dropping the client is what stops its reconnect task for good; the
    // disconnect is a courtesy that fails when no connection is up.
    let _ = client.disconnect().await;
    drop(client);
    outcome
}

async fn connect(
    server: &str,
    token: &str,
    tx: mpsc::UnboundedSender<Incoming>,
) -> anyhow::Result<Client> {
    let on_open = tx.clone();
    let on_close = tx.clone();
    let on_error = tx.clone();
    let on_any = tx;
    ClientBuilder::new(server)
        .namespace("/")
        .auth(json!({ "token": token }))
        .transport_type(TransportType::Websocket)
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(RECONNECT_DELAY_MS.0, RECONNECT_DELAY_MS.1)
        .on(Event::Connect, move |_, _| {
            let _ = on_open.send(Incoming::Open);
            async {}.boxed()
        })
        .on(Event::Close, move |_, _| {
            let _ = on_close.send(Incoming::Close);
            async {}.boxed()
        })
        .on(Event::Error, move |payload, _| {
            let _ = on_error.send(Incoming::Error(payload));
            async {}.boxed()
        })
        .on_any(move |event, payload, _| {
            let _ = on_any.send(Incoming::Event(event.as_str().to_owned(), payload));
            async {}.boxed()
        })
        .connect()
        .await
        .with_context(|| format!("cannot connect to {server}"))
}

struct Watcher<'a> {
    api: &'a ApiClient,
    options: WatchOptions,
    sequencer: Sequencer,
    /// Whether the current connection has completed its join (the replay,
    /// if any, is then complete).
    joined: bool,
    /// Whether any connection has completed a join.
    ever_joined: bool,
    client: &'a Client,
}

impl Watcher<'_> {
    /// Handles one callback; `Some(code)` ends the watch.
    async fn handle(&mut self, incoming: Incoming) -> anyhow::Result<Option<ExitCode>> {
        match incoming {
            Incoming::Open => {
                self.joined = false;
                let join = JoinRequest {
                    vault_id: self.options.vault_id.clone(),
                    since: Some(self.sequencer.last()),
                };
                eprintln!(
                    "watch: connected; joining vault {} since seq {}",
                    join.vault_id,
                    self.sequencer.last()
                );
                // A failed emit means the connection just dropped: the next
                // `open` joins again.
                if let Err(error) = self.client.emit(commands::VAULT_JOIN, json!(join)).await {
                    eprintln!("watch: cannot send {}: {error}", commands::VAULT_JOIN);
                }
                Ok(None)
            }
            Incoming::Close => {
                self.joined = false;
                eprintln!("watch: disconnected; reconnecting");
                Ok(None)
            }
            Incoming::Error(payload) => self.on_error(first_value(payload)),
            Incoming::Event(name, payload) => self.on_event(&name, first_value(payload)).await,
        }
    }

    fn on_error(&mut self, value: Value) -> anyhow::Result<Option<ExitCode>> {
        if let Some(text) = value.as_str() {
            if let Some(frame) = text.strip_prefix(CONNECT_ERROR_PREFIX) {
                let message = serde_json::from_str::<Value>(frame)
                    .ok()
                    .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                    .unwrap_or_else(|| frame.to_owned());
                let server = self.api.server_url();
                // The contract's refusal is an error code (`UNAUTHORIZED`):
                // final. Anything else after a successful join comes from a
                // server on its way down (e.g. "Invalid namespace" while it
                // closes): the reconnect goes on.
                if let Ok(code) =
                    serde_json::from_value::<ErrorCode>(Value::String(message.clone()))
                {
                    bail!("{code}: {server} refused the connection");
                }
                if !self.ever_joined {
                    bail!("{server} refused the connection: {message}");
                }
                eprintln!("watch: connection refused for now ({message}); retrying");
                return Ok(None);
            }
            // Transport trouble: rust_socketio reconnects on its own.
            eprintln!("watch: connection problem: {text}");
            return Ok(None);
        }
        match serde_json::from_value::<ErrorDetail>(value.clone()) {
            // The only command sent is the join: its failure ends the watch.
            Ok(error) if !self.joined => bail!("{}: {}", error.code, error.message),
            Ok(error) => {
                eprintln!("watch: server error: {}: {}", error.code, error.message);
                Ok(None)
            }
            Err(_) => {
                eprintln!("watch: error: {value}");
                Ok(None)
            }
        }
    }

    async fn on_event(&mut self, name: &str, payload: Value) -> anyhow::Result<Option<ExitCode>> {
        if names::ALL.contains(&name) {
            let Some(seq) = payload.get("seq").and_then(Value::as_i64) else {
                eprintln!("watch: ignoring {name} without a seq: {payload}");
                return Ok(None);
            };
            let ready = self.sequencer.offer(Sequenced {
                name: name.to_owned(),
                seq,
                payload,
            });
            if let Some(code) = self.print_all(ready)? {
                return Ok(Some(code));
            }
            if self.joined && self.sequencer.has_gap() {
                return self.fill_gap().await;
            }
            return Ok(None);
        }
        match name {
            signals::VAULT_JOINED => {
                let joined: Joined = parse_signal(name, payload)?;
                self.joined = true;
                self.ever_joined = true;
                eprintln!(
                    "watch: joined vault {} as {}; head seq {}, last printed {}",
                    joined.vault_id,
                    joined.role,
                    joined.seq,
                    self.sequencer.last()
                );
                // The replay is complete: anything still missing was lost
                // on the way and is fetched from the log.
                if self.sequencer.has_gap() || joined.seq > self.sequencer.last() {
                    return self.fill_gap().await;
                }
                Ok(None)
            }
            signals::VAULT_RESYNC => {
                let resync: Resync = parse_signal(name, payload.clone())?;
                eprintln!(
                    "watch: events before seq {} are no longer retained: refetch the sources",
                    resync.seq
                );
                self.print_line(name, resync.seq, &payload)?;
                let ready = self.sequencer.reset(resync.seq);
                self.print_all(ready)
            }
            signals::VAULT_REMOVED => {
                let removed: Removed = parse_signal(name, payload.clone())?;
                self.print_line(name, self.sequencer.last(), &payload)?;
                eprintln!(
                    "watch: removed from vault {}: {}",
                    removed.vault_id, removed.reason
                );
                Ok(Some(ExitCode::from(EXIT_REMOVED)))
            }
            signals::PRESENCE => {
                if let Ok(presence) = serde_json::from_value::<Presence>(payload) {
                    let who: Vec<String> = presence
                        .present
                        .iter()
                        .map(|p| format!("{} ({}, {}×)", p.user_name, p.role, p.connections))
                        .collect();
                    eprintln!("watch: present: {}", who.join(", "));
                }
                Ok(None)
            }
            signals::VAULT_LEFT => {
                eprintln!("watch: left vault {}", self.options.vault_id);
                Ok(None)
            }
            other => {
                eprintln!("watch: ignoring unknown event {other}: {payload}");
                Ok(None)
            }
        }
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
                let ready = self.sequencer.offer(Sequenced {
                    name: event.name,
                    seq: event.seq,
                    payload: event.payload,
                });
                if let Some(code) = self.print_all(ready)? {
                    return Ok(Some(code));
                }
            }
            if self.sequencer.last() == since || self.sequencer.last() >= page.seq {
                return Ok(None);
            }
        }
    }

    /// Prints released events; `vault:deleted` ends the watch.
    fn print_all(&self, ready: Vec<Sequenced>) -> anyhow::Result<Option<ExitCode>> {
        for event in ready {
            self.print_line(&event.name, event.seq, &event.payload)?;
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

/// The first argument of an event (`null` when there is none or it is
/// binary).
fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(mut values) if !values.is_empty() => values.swap_remove(0),
        #[allow(deprecated)]
        Payload::String(text) => Value::String(text),
        _ => Value::Null,
    }
}

fn parse_signal<T: serde::de::DeserializeOwned>(name: &str, payload: Value) -> anyhow::Result<T> {
    serde_json::from_value(payload.clone())
        .with_context(|| format!("malformed {name} from the server: {payload}"))
}
