//! One Socket.IO session with the server over rust_socketio (async): the
//! CLI's `watch` and the terminal client both use it.
//!
//! [`Session::start`] returns a handle and a channel of typed [`Incoming`]
//! items. Behind them one task owns the rust_socketio client:
//!
//! - it connects with `auth: {token}` over the websocket transport, with
//!   rust_socketio's reconnection on (also after a server-initiated
//!   disconnect, 100–500 ms apart). rust_socketio does not retry a first
//!   connection that fails (server down): the task does, with back-off
//!   (250 ms doubling up to 3 s), reporting [`Incoming::ConnectFailed`];
//! - it emits nothing before the `open` callback (emitting right away kills
//!   the connection), and on every open, the first and after each
//!   reconnect, it joins every vault joined through [`Session::join`] again,
//!   with `since` = the last seq the application reported as applied
//!   ([`Session::applied`]), so the server replays exactly what was missed;
//!   it also joins again that way when a `vault:head` signal announces a
//!   seq beyond the last applied one (an event it missed);
//! - commands ([`Session::command`]) wait for their ack at most
//!   [`ACK_TIMEOUT`]: rust_socketio's acks never time out on their own, and
//!   their payload arrives one array level deeper than an event's;
//! - the source commands ([`Session::create_source`],
//!   [`Session::update_source`], [`Session::delete_source`]) carry an
//!   `opId` (the caller's, or a new one) and are sent again with that same
//!   `opId` when no ack came (not connected, the connection dropped, the
//!   ack timed out), as the session's [`RetryPolicy`] allows: the server
//!   commits the command once and answers a repeat with the first answer;
//! - rust_socketio runs callbacks one at a time under a lock, so callbacks
//!   only forward what they got into a channel; the task parses it, emits
//!   and reports, in order.
//!
//! # Refusals
//!
//! One rule decides what a refusal means:
//!
//! - a `connect_error` whose message is `UNAUTHORIZED` is **final**: the
//!   session (the token) is invalid. The task reports
//!   [`Incoming::Refused`], drops the connection and stops; the channel
//!   then closes and commands fail with [`ClientError::Stopped`];
//! - **any other refusal** (e.g. `INTERNAL`, or `Invalid namespace` from a
//!   server on its way down) is transient: the task reports
//!   [`Incoming::Rejected`], drops that connection and connects a new one
//!   after a back-off. **Transport errors** are transient too: they are
//!   reported as [`Incoming::TransportError`] while rust_socketio
//!   reconnects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder, ReconnectSettings};
use rust_socketio::{Event, Payload, TransportType};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use syncscript_protocol::{
    CreateSourceCommand, DeleteAck, DeleteSourceCommand, ErrorCode, ErrorDetail, Head, JoinRequest,
    Joined, Left, Presence, Removed, Resync, Source, SourceAck, UpdateSourceCommand, commands,
    names, parse_ack, signals,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::mutation::{IdempotencyKey, RetryPolicy};
use crate::sequencer::Sequenced;

/// How long a command waits for its ack.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// rust_socketio's own reconnect back-off, in milliseconds (100–500 ms was
/// measured to put a client back in its rooms in about 0.7 s).
const RECONNECT_DELAY_MS: (u64, u64) = (100, 500);
/// Back-off of the connections this task makes itself (after a failed
/// first connection or a transient refusal), doubled up to the maximum.
const RETRY_MIN: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(3);
/// What rust_socketio puts before the server's refusal of a connection.
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// What the session reports, in the order it happened.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// The server accepted the socket (first time or again); `joins` are the
    /// joins just sent for the vaults joined so far.
    Opened { joins: Vec<JoinRequest> },
    /// The server closed the socket; rust_socketio reconnects by itself.
    Closed,
    /// rust_socketio is trying to reconnect.
    Reconnecting,
    /// A connection could not be made (e.g. the server is down); retried
    /// after a back-off.
    ConnectFailed { attempt: u32, error: ClientError },
    /// The server turned the socket away for a passing reason; a new
    /// connection follows after a back-off.
    Rejected { message: String },
    /// The server refused the session itself (`UNAUTHORIZED`): final, the
    /// session has stopped.
    Refused(ErrorCode),
    /// A transport problem, or an event that could not be sent; the
    /// connection recovers by itself.
    TransportError(String),
    /// A sequenced vault event, live or replayed, in the order received
    /// (order it with a [`crate::sequencer::Sequencer`]).
    Event { vault_id: String, event: Sequenced },
    /// `vault:joined`: the join (and its replay) is complete.
    Joined(Joined),
    /// `vault:left`.
    Left(Left),
    /// `vault:removed`: access lost; the vault is no longer rejoined.
    Removed(Removed),
    /// `vault:resync`: `since` is too old, refetch the snapshot.
    Resync(Resync),
    /// `vault:head`: the vault's head on the server. When it is ahead of
    /// the last applied seq the session has already rejoined with `since`.
    Head(Head),
    /// `presence`.
    Presence(Presence),
    /// An `error` event: a failed join or leave, or a command sent without
    /// an ack.
    Error(ErrorDetail),
    /// An event that is not in the catalog, or whose payload does not match
    /// it.
    Unknown { name: String, payload: Value },
}

/// A handle on the session; clones share it, and the session stops when
/// the last one is dropped.
#[derive(Debug, Clone)]
pub struct Session {
    requests: mpsc::UnboundedSender<Request>,
    /// How the source commands are sent again when no ack came.
    retry: RetryPolicy,
}

/// What a handle asks the task to do, in order.
#[derive(Debug)]
enum Request {
    Join {
        vault_id: String,
        since: i64,
    },
    Leave {
        vault_id: String,
    },
    Applied {
        vault_id: String,
        seq: i64,
    },
    Command {
        event: &'static str,
        payload: Value,
        answer: mpsc::UnboundedSender<Result<Value, ClientError>>,
    },
    Close {
        done: oneshot::Sender<()>,
    },
}

/// What a callback forwards to the task.
#[derive(Debug)]
enum Raw {
    Open,
    Close,
    Reconnecting,
    Error(Payload),
    Event(String, Payload),
}

impl Session {
    /// Starts connecting to `server_url` with `token` (on the current tokio
    /// runtime) and returns the handle and the channel of what happens.
    pub fn start(server_url: &str, token: &str) -> (Session, mpsc::UnboundedReceiver<Incoming>) {
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (incoming, incoming_rx) = mpsc::unbounded_channel();
        let task = Task {
            server: server_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            requests: requests_rx,
            incoming,
            joins: BTreeMap::new(),
        };
        tokio::spawn(task.run());
        let session = Session {
            requests,
            retry: RetryPolicy::DEFAULT,
        };
        (session, incoming_rx)
    }

    /// This handle, sending source commands again as `policy` says
    /// ([`RetryPolicy::DEFAULT`] unless told otherwise).
    pub fn with_retry(self, policy: RetryPolicy) -> Session {
        Session {
            retry: policy,
            ..self
        }
    }

    /// Joins `vault_id`, replaying every event after `since`; it is joined
    /// again, from the last applied seq, on every reconnect. Joining a
    /// joined vault again asks for a new replay from `since`. The answer
    /// comes as [`Incoming::Joined`] or [`Incoming::Error`].
    pub fn join(&self, vault_id: &str, since: i64) {
        self.send(Request::Join {
            vault_id: vault_id.to_owned(),
            since,
        });
    }

    /// Leaves `vault_id`: no more events, no more rejoins.
    pub fn leave(&self, vault_id: &str) {
        self.send(Request::Leave {
            vault_id: vault_id.to_owned(),
        });
    }

    /// Records that the events of `vault_id` up to `seq` are applied: the
    /// next rejoin asks for what follows.
    pub fn applied(&self, vault_id: &str, seq: i64) {
        self.send(Request::Applied {
            vault_id: vault_id.to_owned(),
            seq,
        });
    }

    /// Sends the command `event` with `payload` and waits for its ack (at
    /// most [`ACK_TIMEOUT`]): the ack's body on `ok: true`, the server's
    /// error as [`ClientError::Rejected`] on `ok: false`.
    pub async fn command<T: DeserializeOwned>(
        &self,
        event: &'static str,
        payload: &impl Serialize,
    ) -> Result<T, ClientError> {
        let payload = serde_json::to_value(payload).map_err(|source| ClientError::Encode {
            event,
            source: Arc::new(source),
        })?;
        let (answer, mut answered) = mpsc::unbounded_channel();
        self.requests
            .send(Request::Command {
                event,
                payload,
                answer,
            })
            .map_err(|_| ClientError::Stopped)?;
        match tokio::time::timeout(ACK_TIMEOUT, answered.recv()).await {
            Ok(Some(Ok(ack))) => parse_ack(ack).map_err(ClientError::Rejected),
            Ok(Some(Err(error))) => Err(error),
            // The connection that carried the command is gone.
            Ok(None) => Err(ClientError::NotConnected),
            Err(_) => Err(ClientError::AckTimeout {
                event,
                after: ACK_TIMEOUT,
            }),
        }
    }

    /// `source:create` with its ack. The command's `opId` (a new one when
    /// it has none) is kept for every attempt: when no ack comes, the
    /// command is sent again as the retry policy allows.
    pub async fn create_source(
        &self,
        mut command: CreateSourceCommand,
    ) -> Result<Source, ClientError> {
        command.op_id.get_or_insert_with(new_op_id);
        let ack: SourceAck = self.mutation(commands::SOURCE_CREATE, &command).await?;
        Ok(ack.source)
    }

    /// `source:update` with its ack, sent again with the same `opId` when
    /// no ack comes (see [`Session::create_source`]).
    pub async fn update_source(
        &self,
        mut command: UpdateSourceCommand,
    ) -> Result<Source, ClientError> {
        command.op_id.get_or_insert_with(new_op_id);
        let ack: SourceAck = self.mutation(commands::SOURCE_UPDATE, &command).await?;
        Ok(ack.source)
    }

    /// `source:delete` with its ack; the answer is the deleted source's id.
    /// Sent again with the same `opId` when no ack comes (see
    /// [`Session::create_source`]).
    pub async fn delete_source(
        &self,
        mut command: DeleteSourceCommand,
    ) -> Result<String, ClientError> {
        command.op_id.get_or_insert_with(new_op_id);
        let ack: DeleteAck = self.mutation(commands::SOURCE_DELETE, &command).await?;
        Ok(ack.source_id)
    }

    /// A command sent, then sent again unchanged while no ack came and the
    /// retry policy allows; the payload carries the command's `opId`.
    async fn mutation<T: DeserializeOwned>(
        &self,
        event: &'static str,
        payload: &impl Serialize,
    ) -> Result<T, ClientError> {
        let mut attempt = 1;
        loop {
            match self.command(event, payload).await {
                Err(error) if error.is_unanswered() && self.retry.allows_another(attempt) => {
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// Disconnects and stops the session.
    pub async fn close(self) {
        let (done, closed) = oneshot::channel();
        if self.requests.send(Request::Close { done }).is_ok() {
            // An error only means the task has already stopped.
            let _ = closed.await;
        }
    }

    fn send(&self, request: Request) {
        // Fails only once the session has stopped, when nothing is to be
        // done any more.
        let _ = self.requests.send(request);
    }
}

/// How one connection ended.
enum End {
    /// Stop the session (final refusal, closed, or every handle dropped);
    /// `closed` is told once the connection is down, when
    /// [`Session::close`] asked.
    Stop { closed: Option<oneshot::Sender<()>> },
    /// Connect again with a new client after a back-off.
    Retry,
}

/// The task that owns the rust_socketio client.
struct Task {
    server: String,
    token: String,
    requests: mpsc::UnboundedReceiver<Request>,
    incoming: mpsc::UnboundedSender<Incoming>,
    /// The joined vaults and the `since` their next join asks for.
    joins: BTreeMap<String, i64>,
}

impl Task {
    async fn run(mut self) {
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

/// A new `opId` for a command that came without one.
fn new_op_id() -> String {
    IdempotencyKey::generate().into_string()
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

/// The first JSON value of a payload (events carry one argument).
fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(values) => values.into_iter().next().unwrap_or(Value::Null),
        #[allow(deprecated)]
        Payload::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Payload::Binary(_) => Value::Null,
    }
}

/// An ack's body: rust_socketio hands it over one array level deeper.
fn ack_value(payload: Payload) -> Value {
    match first_value(payload) {
        Value::Array(values) => values.into_iter().next().unwrap_or(Value::Null),
        other => other,
    }
}

/// What the `error` callback means: the server's `error` event, a refused
/// handshake (final or transient, see the module documentation), or a
/// transport problem.
fn error_report(payload: Payload) -> Incoming {
    let value = first_value(payload);
    if let Ok(detail) = serde_json::from_value::<ErrorDetail>(value.clone()) {
        return Incoming::Error(detail);
    }
    let text = match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let Some(frame) = text.strip_prefix(CONNECT_ERROR_PREFIX) else {
        return Incoming::TransportError(text);
    };
    let message = serde_json::from_str::<Value>(frame)
        .ok()
        .and_then(|frame| frame.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| frame.to_owned());
    if message == ErrorCode::Unauthorized.as_str() {
        Incoming::Refused(ErrorCode::Unauthorized)
    } else {
        Incoming::Rejected { message }
    }
}

/// Types a server event by name.
fn event_report(name: String, payload: Value) -> Incoming {
    fn parse<T: DeserializeOwned>(payload: &Value) -> Option<T> {
        T::deserialize(payload).ok()
    }
    let typed = match name.as_str() {
        signals::VAULT_JOINED => parse(&payload).map(Incoming::Joined),
        signals::VAULT_LEFT => parse(&payload).map(Incoming::Left),
        signals::VAULT_REMOVED => parse(&payload).map(Incoming::Removed),
        signals::VAULT_RESYNC => parse(&payload).map(Incoming::Resync),
        signals::VAULT_HEAD => parse(&payload).map(Incoming::Head),
        signals::PRESENCE => parse(&payload).map(Incoming::Presence),
        event if names::ALL.contains(&event) => {
            let vault_id = payload.get("vaultId").and_then(Value::as_str);
            let seq = payload.get("seq").and_then(Value::as_i64);
            match (vault_id, seq) {
                (Some(vault_id), Some(seq)) => Some(Incoming::Event {
                    vault_id: vault_id.to_owned(),
                    event: Sequenced {
                        name: name.clone(),
                        seq,
                        payload: payload.clone(),
                    },
                }),
                _ => None,
            }
        }
        _ => None,
    };
    typed.unwrap_or(Incoming::Unknown { name, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use syncscript_protocol::Role;

    fn refusal(message: &str) -> Payload {
        Payload::from(format!(
            "{CONNECT_ERROR_PREFIX}{}",
            json!({ "message": message })
        ))
    }

    #[test]
    fn only_an_unauthorized_refusal_is_final() {
        assert!(matches!(
            error_report(refusal("UNAUTHORIZED")),
            Incoming::Refused(ErrorCode::Unauthorized)
        ));
        for transient in ["INTERNAL", "Invalid namespace", "UNAUTHORIZED, maybe"] {
            assert!(
                matches!(
                    error_report(refusal(transient)),
                    Incoming::Rejected { message } if message == transient
                ),
                "{transient}"
            );
        }
    }

    #[test]
    fn error_events_and_transport_errors_are_told_apart_from_refusals() {
        let server =
            Payload::from(json!({"code": "FORBIDDEN", "message": "Access denied to vault"}));
        assert!(matches!(
            error_report(server),
            Incoming::Error(detail) if detail.code == ErrorCode::Forbidden
        ));
        assert!(matches!(
            error_report(Payload::from("connection reset".to_owned())),
            Incoming::TransportError(text) if text == "connection reset"
        ));
    }

    #[test]
    fn acks_are_unwrapped_one_level() {
        let ack = Payload::Text(vec![json!([{"ok": true, "sourceId": "s1"}])]);
        assert_eq!(ack_value(ack), json!({"ok": true, "sourceId": "s1"}));
        let event = Payload::Text(vec![json!({"vaultId": "v1"})]);
        assert_eq!(first_value(event), json!({"vaultId": "v1"}));
    }

    #[test]
    fn events_are_typed_by_name() {
        let created = json!({"vaultId": "v1", "seq": 4, "source": {}});
        assert!(matches!(
            event_report(names::SOURCE_CREATED.into(), created.clone()),
            Incoming::Event { vault_id, event }
                if vault_id == "v1" && event.seq == 4 && event.payload == created
        ));
        let joined = json!({"vaultId": "v1", "role": "viewer", "seq": 9});
        assert!(matches!(
            event_report(signals::VAULT_JOINED.into(), joined),
            Incoming::Joined(Joined {
                role: Role::Viewer,
                seq: 9,
                ..
            })
        ));
        let resync = json!({"vaultId": "v1", "seq": 40});
        assert!(matches!(
            event_report(signals::VAULT_RESYNC.into(), resync),
            Incoming::Resync(Resync { seq: 40, .. })
        ));
    }

    #[test]
    fn unknown_or_malformed_events_are_kept_raw() {
        assert!(matches!(
            event_report(names::SOURCE_CREATED.into(), json!({"nonsense": 1})),
            Incoming::Unknown { name, .. } if name == names::SOURCE_CREATED
        ));
        assert!(matches!(
            event_report("something:else".into(), Value::Null),
            Incoming::Unknown { .. }
        ));
    }
}
