//! The task that owns the rust_socketio client of a [`SocketClient`]: it
//! connects (and connects again), serves the handle's requests in order,
//! rejoins on every open and turns what the callbacks forward into
//! [`Incoming`] reports.
//!
//! [`SocketClient`]: super::SocketClient

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder, ReconnectSettings};
use rust_socketio::{Event, Payload, TransportType};
use serde::Serialize;
use syncscript_protocol::{Head, JoinRequest, commands, names};
use tokio::sync::{mpsc, oneshot};

use super::parse::{ack_value, error_report, event_report, first_value};
use super::{ACK_TIMEOUT, Incoming, Request};
use crate::error::ClientError;

/// rust_socketio's own reconnect back-off, in milliseconds (100–500 ms was
/// measured to put a client back in its rooms in about 0.7 s).
const RECONNECT_DELAY_MS: (u64, u64) = (100, 500);
/// Back-off of the connections this task makes itself (after a failed
/// first connection or a transient refusal), doubled up to the maximum.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(3);

/// What a callback forwards to the task.
#[derive(Debug)]
enum Raw {
    Open,
    Close,
    Reconnecting,
    Error(Payload),
    Event(String, Payload),
}

/// How one connection ended.
enum End {
    /// Stop the session (final refusal, closed, or every handle dropped);
    /// `closed` is told once the connection is down, when
    /// [`SocketClient::close`](super::SocketClient::close) asked.
    Stop { closed: Option<oneshot::Sender<()>> },
    /// Connect again with a new client after a back-off.
    Retry,
}

/// The task that owns the rust_socketio client.
pub(super) struct Task {
    server: String,
    token: String,
    requests: mpsc::UnboundedReceiver<Request>,
    incoming: mpsc::UnboundedSender<Incoming>,
    /// The joined vaults and the `since` their next join asks for.
    joins: BTreeMap<String, i64>,
}

impl Task {
    pub(super) fn new(
        server_url: &str,
        token: &str,
        requests: mpsc::UnboundedReceiver<Request>,
        incoming: mpsc::UnboundedSender<Incoming>,
    ) -> Task {
        Task {
            server: server_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            requests,
            incoming,
            joins: BTreeMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        let mut attempt = 0;
        let mut delay = RETRY_MIN;
        loop {
            attempt += 1;
            let (raw, raw_rx) = mpsc::unbounded_channel();
            let end = match builder(&self.server, &self.token, raw).connect().await {
                Ok(client) => {
                    let (end, opened) = self.serve(&client, raw_rx).await;
                    // Dropping alone may leave rust_socketio's reconnect
                    // loop running: a manual disconnect ends it. It fails
                    // when no connection is up, which is fine.
                    let _ = client.disconnect().await;
                    if opened {
                        attempt = 0;
                        delay = RETRY_MIN;
                    }
                    end
                }
                Err(source) => {
                    let error = ClientError::Connect {
                        url: self.server.clone(),
                        source: Arc::new(source),
                    };
                    self.report(Incoming::ConnectFailed { attempt, error });
                    End::Retry
                }
            };
            match end {
                End::Stop { closed } => {
                    if let Some(closed) = closed {
                        let _ = closed.send(());
                    }
                    return;
                }
                End::Retry => {
                    if !self.back_off(delay).await {
                        return;
                    }
                    delay = (delay * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// Serves one connected client until it must be replaced or the session
    /// stops; also says whether it was ever opened.
    async fn serve(
        &mut self,
        client: &Client,
        mut raw: mpsc::UnboundedReceiver<Raw>,
    ) -> (End, bool) {
        let mut open = false;
        let mut opened = false;
        loop {
            tokio::select! {
                // Requests first: a join asked for before the socket opened
                // is then known when the open is handled, and is part of
                // the joins it reports.
                biased;
                request = self.requests.recv() => {
                    let Some(request) = request else {
                        return (End::Stop { closed: None }, opened);
                    };
                    if let Some(end) = self.handle(client, open, request).await {
                        return (end, opened);
                    }
                }
                item = raw.recv() => {
                    // The client holds the senders: the channel outlives it.
                    let Some(item) = item else { return (End::Retry, opened) };
                    match item {
                        Raw::Open => {
                            open = true;
                            opened = true;
                            self.rejoin(client).await;
                        }
                        Raw::Close => {
                            open = false;
                            self.report(Incoming::Closed);
                        }
                        Raw::Reconnecting => {
                            open = false;
                            self.report(Incoming::Reconnecting);
                        }
                        Raw::Error(payload) => {
                            let report = error_report(payload);
                            let end = match &report {
                                Incoming::Refused(_) => Some(End::Stop { closed: None }),
                                Incoming::Rejected { .. } => Some(End::Retry),
                                _ => None,
                            };
                            self.report(report);
                            if let Some(end) = end {
                                return (end, opened);
                            }
                        }
                        Raw::Event(name, payload) => {
                            let report = event_report(name, first_value(payload));
                            match &report {
                                Incoming::Removed(removed) => {
                                    self.joins.remove(&removed.vault_id);
                                }
                                Incoming::Event { vault_id, event }
                                    if event.name == names::VAULT_DELETED =>
                                {
                                    self.joins.remove(vault_id);
                                }
                                _ => {}
                            }
                            let behind = match &report {
                                Incoming::Head(head) => self.behind(head),
                                _ => None,
                            };
                            self.report(report);
                            if let Some(join) = behind {
                                self.emit(client, commands::VAULT_JOIN, &join).await;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Joins every joined vault again from its last applied seq.
    async fn rejoin(&mut self, client: &Client) {
        let joins: Vec<JoinRequest> = self
            .joins
            .iter()
            .map(|(vault_id, since)| JoinRequest {
                vault_id: vault_id.clone(),
                since: Some(*since),
            })
            .collect();
        // Reported first so that the application sees the open before the
        // replays it causes.
        self.report(Incoming::Opened {
            joins: joins.clone(),
        });
        for join in joins {
            self.emit(client, commands::VAULT_JOIN, &join).await;
        }
    }

    /// Handles one request on a connected client; `Some` ends the connection.
    async fn handle(&mut self, client: &Client, open: bool, request: Request) -> Option<End> {
        match request {
            Request::Join { vault_id, since } => {
                self.joins.insert(vault_id.clone(), since);
                if open {
                    let join = JoinRequest {
                        vault_id,
                        since: Some(since),
                    };
                    self.emit(client, commands::VAULT_JOIN, &join).await;
                }
            }
            Request::Leave { vault_id } => {
                self.joins.remove(&vault_id);
                if open {
                    self.emit(client, commands::VAULT_LEAVE, &vault_id).await;
                }
            }
            Request::Applied { vault_id, seq } => self.applied(&vault_id, seq),
            Request::Command {
                event,
                payload,
                answer,
            } => {
                if !open {
                    let _ = answer.send(Err(ClientError::NotConnected));
                    return None;
                }
                let on_ack = answer.clone();
                let sent = client
                    .emit_with_ack(event, payload, ACK_TIMEOUT, move |payload, _| {
                        let _ = on_ack.send(Ok(ack_value(payload)));
                        async {}.boxed()
                    })
                    .await;
                if let Err(source) = sent {
                    let _ = answer.send(Err(ClientError::Send {
                        event,
                        source: Arc::new(source),
                    }));
                }
            }
            Request::Close { done } => return Some(End::Stop { closed: Some(done) }),
        }
        None
    }

    /// Waits `delay` before the next connection while still taking
    /// requests; `false` when the session must stop instead.
    async fn back_off(&mut self, delay: Duration) -> bool {
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                () = &mut sleep => return true,
                request = self.requests.recv() => match request {
                    None => return false,
                    Some(Request::Join { vault_id, since }) => {
                        self.joins.insert(vault_id, since);
                    }
                    Some(Request::Leave { vault_id }) => {
                        self.joins.remove(&vault_id);
                    }
                    Some(Request::Applied { vault_id, seq }) => self.applied(&vault_id, seq),
                    Some(Request::Command { answer, .. }) => {
                        let _ = answer.send(Err(ClientError::NotConnected));
                    }
                    Some(Request::Close { done }) => {
                        let _ = done.send(());
                        return false;
                    }
                },
            }
        }
    }

    /// The join that catches up with an announced head this session has
    /// not applied yet (an event it missed).
    fn behind(&self, head: &Head) -> Option<JoinRequest> {
        let since = *self.joins.get(&head.vault_id)?;
        (since < head.seq).then(|| JoinRequest {
            vault_id: head.vault_id.clone(),
            since: Some(since),
        })
    }

    fn applied(&mut self, vault_id: &str, seq: i64) {
        // Only for joined vaults: a late report must not bring back a vault
        // that was left.
        if let Some(since) = self.joins.get_mut(vault_id) {
            *since = seq;
        }
    }

    async fn emit<T: Serialize>(&self, client: &Client, event: &'static str, body: &T) {
        let sent = match serde_json::to_value(body) {
            Ok(payload) => client
                .emit(event, payload)
                .await
                .map_err(|source| ClientError::Send {
                    event,
                    source: Arc::new(source),
                }),
            Err(source) => Err(ClientError::Encode {
                event,
                source: Arc::new(source),
            }),
        };
        // A failed emit means the connection just dropped: the next open
        // joins again.
        if let Err(error) = sent {
            self.report(Incoming::TransportError(error.to_string()));
        }
    }

    fn report(&self, item: Incoming) {
        // Nobody listening any more is no reason to stop serving commands.
        let _ = self.incoming.send(item);
    }
}

/// The client, with callbacks that only forward.
fn builder(server: &str, token: &str, raw: mpsc::UnboundedSender<Raw>) -> ClientBuilder {
    let on_open = raw.clone();
    let on_close = raw.clone();
    let on_error = raw.clone();
    let on_reconnect = raw.clone();
    let on_any = raw;
    ClientBuilder::new(server)
        .namespace("/")
        .auth(serde_json::json!({ "token": token }))
        .transport_type(TransportType::Websocket)
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(RECONNECT_DELAY_MS.0, RECONNECT_DELAY_MS.1)
        .on(Event::Connect, move |_, _| {
            let _ = on_open.send(Raw::Open);
            async {}.boxed()
        })
        .on(Event::Close, move |_, _| {
            let _ = on_close.send(Raw::Close);
            async {}.boxed()
        })
        .on(Event::Error, move |payload, _| {
            let _ = on_error.send(Raw::Error(payload));
            async {}.boxed()
        })
        .on_reconnect(move || {
            let _ = on_reconnect.send(Raw::Reconnecting);
            async { ReconnectSettings::new() }.boxed()
        })
        .on_any(move |event, payload, _| {
            let _ = on_any.send(Raw::Event(event.as_str().to_owned(), payload));
            async {}.boxed()
        })
}
