//! One Socket.IO connection to the server over rust_socketio (async), kept
//! up across reconnects: [`SocketClient`]. The CLI's `watch`, the terminal
//! client and the tests' watchers use it through the
//! [`follower`](crate::follower), which owns the catch-up rules.
//!
//! [`SocketClient::start`] returns a handle and a channel of typed [`Incoming`]
//! items. Behind them one task owns the rust_socketio client:
//!
//! - it connects with `auth: {token}` over the websocket transport, with
//!   rust_socketio's reconnection on (also after a server-initiated
//!   disconnect, 100–500 ms apart). rust_socketio does not retry a first
//!   connection that fails (server down): the task does, with back-off
//!   (250 ms doubling up to 3 s), reporting [`Incoming::ConnectFailed`];
//! - it emits nothing before the `open` callback (emitting right away kills
//!   the connection), and on every open, the first and after each
//!   reconnect, it joins every vault joined through [`SocketClient::join`] again,
//!   with `since` = the last seq the application reported as applied
//!   ([`SocketClient::applied`]), so the server replays exactly what was missed;
//!   it also joins again that way when a `vault:head` signal announces a
//!   seq beyond the last applied one (an event it missed);
//! - commands ([`SocketClient::command`]) wait for their ack at most
//!   [`ACK_TIMEOUT`]: rust_socketio's acks never time out on their own, and
//!   their payload arrives one array level deeper than an event's;
//! - the source commands ([`SocketClient::create_source`],
//!   [`SocketClient::update_source`], [`SocketClient::delete_source`]) carry an
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

mod parse;
mod task;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use syncscript_protocol::{
    CreateSourceCommand, DeleteAck, DeleteSourceCommand, ErrorCode, ErrorDetail, Head, JoinRequest,
    Joined, Left, Presence, Removed, Resync, Source, SourceAck, UpdateSourceCommand, commands,
    parse_ack,
};
use tokio::sync::{mpsc, oneshot};

use crate::error::ClientError;
use crate::mutation::{IdempotencyKey, RetryPolicy};
use crate::sequencer::Sequenced;
use task::Task;

/// How long a command waits for its ack.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);

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
pub struct SocketClient {
    requests: mpsc::UnboundedSender<Request>,
    /// How the source commands are sent again when no ack came.
    retry: RetryPolicy,
}

/// What a handle asks the task to do, in order.
#[derive(Debug)]
pub(crate) enum Request {
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

impl SocketClient {
    /// Starts connecting to `server_url` with `token` (on the current tokio
    /// runtime) and returns the handle and the channel of what happens.
    pub fn start(
        server_url: &str,
        token: &str,
    ) -> (SocketClient, mpsc::UnboundedReceiver<Incoming>) {
        let (requests, requests_rx) = mpsc::unbounded_channel();
        let (incoming, incoming_rx) = mpsc::unbounded_channel();
        let task = Task::new(server_url, token, requests_rx, incoming);
        tokio::spawn(task.run());
        let session = SocketClient {
            requests,
            retry: RetryPolicy::DEFAULT,
        };
        (session, incoming_rx)
    }

    /// This handle, sending source commands again as `policy` says
    /// ([`RetryPolicy::DEFAULT`] unless told otherwise).
    pub fn with_retry(self, policy: RetryPolicy) -> SocketClient {
        SocketClient {
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
    /// no ack comes (see [`SocketClient::create_source`]).
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
    /// [`SocketClient::create_source`]).
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

/// A new `opId` for a command that came without one.
fn new_op_id() -> String {
    IdempotencyKey::generate().into_string()
}
