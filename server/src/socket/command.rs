//! What every command shares: [`Command`], extracted once per received
//! packet (the socket, its state, how to answer, the server's state), the
//! opening every command goes through ([`Command::open`]: connected, then
//! one command of the budget spent), and the answer.
//!
//! Every command is answered, whatever its payload: through the ack when
//! the client asked for one, otherwise through an `error` event on failure.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, SocketRef, State};
use socketioxide::handler::{FromMessageParts, Value as Packet};
use socketioxide::socket::Socket;
use syncscript_protocol::{ack_err, ack_ok, signals};

use crate::error::AppError;
use crate::fanout::identity::{SessionUser, SocketState};
use crate::socket::Shared;
use crate::socket::payload::parse_command;
use crate::state::AppState;

/// How long a command waits for its socket to be marked connected
/// ([`Command::open`]); a socket still not connected is closing.
const CONNECT_LIMIT: Duration = Duration::from_secs(1);
/// How often a command looks at that again.
const CONNECT_POLL: Duration = Duration::from_millis(1);

/// One received command: the socket and its state, how to answer it, and
/// the server's state.
pub struct Command<A: Adapter> {
    pub socket: SocketRef<A>,
    /// What the handshake set up for this socket.
    pub me: Arc<SocketState>,
    ack: AckSender<A>,
    /// Whether the client asked for an ack (socketioxide's `AckSender`
    /// silently does nothing without one, and the contract then wants an
    /// `error` event).
    ack_wanted: bool,
    pub state: AppState,
}

/// A packet from a socket the handshake did not set up (it cannot happen
/// to a socket the server accepted): the socket is disconnected and the
/// packet is not served.
#[derive(Debug, thiserror::Error)]
#[error("command from a socket without its state: disconnected")]
pub struct NotAccepted;

impl<A: Adapter> FromMessageParts<A> for Command<A> {
    type Error = NotAccepted;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        packet: &mut Packet,
        ack_id: &Option<i64>,
    ) -> Result<Command<A>, NotAccepted> {
        let shared = State::<Shared>::from_message_parts(socket, packet, ack_id).ok();
        let state = shared.and_then(|State(shared)| shared.get().cloned());
        let (Some(me), Some(state)) = (SocketState::of(socket), state) else {
            if let Err(error) = SocketRef::from(socket.clone()).disconnect() {
                tracing::debug!(%error, "socket without its state was already gone");
            }
            return Err(NotAccepted);
        };
        let Ok(ack) = AckSender::<A>::from_message_parts(socket, packet, ack_id);
        Ok(Command {
            socket: SocketRef::from(socket.clone()),
            me,
            ack,
            ack_wanted: ack_id.is_some(),
            state,
        })
    }
}

/// How a command's failure is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Told {
    /// Through the ack when there is one, else the `error` event.
    AckOrEvent,
    /// Through the `error` event always, and the ack too (join and leave).
    EventAlways,
}

impl<A: Adapter> Command<A> {
    /// The opening of every command: waits for the socket to be marked
    /// connected, then spends one command of its budget. `None` when the
    /// command is not to run: the socket closed (nobody is left to answer),
    /// or the budget is empty (answered with `RATE_LIMITED`).
    pub async fn open(self, told: Told) -> Option<Command<A>> {
        if !self.connected().await {
            return None;
        }
        match self.me.budget.spend() {
            Ok(()) => Some(self),
            Err(error) => {
                self.fail(&error, told);
                None
            }
        }
    }

    /// Whether the socket is connected, waiting for it if need be:
    /// socketioxide sends the CONNECT packet before it marks the socket
    /// connected, so a command sent as soon as the client heard it can
    /// arrive in between, when every emit to the socket still fails (and a
    /// join would take it for one that disconnected). `false` when the
    /// socket was closed instead.
    async fn connected(&self) -> bool {
        let deadline = tokio::time::Instant::now() + CONNECT_LIMIT;
        while !self.socket.connected() {
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!("command from a socket that is not connected");
                return false;
            }
            tokio::time::sleep(CONNECT_POLL).await;
        }
        true
    }

    /// The user of the socket.
    pub fn user(&self) -> &SessionUser {
        &self.me.identity.user
    }

    pub fn ok<T: Serialize>(self, body: &T) {
        if self.ack_wanted {
            send_ack(self.ack, &ack_ok(body));
        }
    }

    /// Fails the command, told as `told` says.
    pub fn fail(self, error: &AppError, told: Told) {
        let detail = error.detail();
        if told == Told::EventAlways || !self.ack_wanted {
            emit(&self.socket, signals::ERROR, &detail);
        }
        if self.ack_wanted {
            send_ack(self.ack, &ack_err(&detail));
        }
    }

    /// Answers with `result`: the ack on success, [`Told::AckOrEvent`] on
    /// failure.
    pub fn finish<T: Serialize>(self, result: Result<T, AppError>) {
        match result {
            Ok(body) => self.ok(&body),
            Err(error) => self.fail(&error, Told::AckOrEvent),
        }
    }

    /// Runs a source command: opened, its payload read as `C` (a wrong
    /// shape is a `BAD_REQUEST` naming `expected`), then `run` as the
    /// socket's user.
    pub async fn source_command<C, T, F>(
        self,
        name: &str,
        expected: &str,
        payload: Result<Value, impl std::fmt::Display>,
        run: impl FnOnce(AppState, SessionUser, C) -> F,
    ) where
        C: DeserializeOwned,
        T: Serialize,
        F: Future<Output = Result<T, AppError>>,
    {
        let Some(command) = self.open(Told::AckOrEvent).await else {
            return;
        };
        let result = match parse_command::<C>(name, expected, payload) {
            Ok(input) => run(command.state.clone(), command.user().clone(), input).await,
            Err(error) => Err(error),
        };
        command.finish(result);
    }
}

fn send_ack<A: Adapter>(ack: AckSender<A>, body: &Value) {
    if let Err(error) = ack.send(body) {
        tracing::debug!(%error, "could not send an ack");
    }
}

/// Emits to one socket; a failure only means the socket is going.
pub fn emit<A: Adapter, T: Serialize + ?Sized>(socket: &SocketRef<A>, event: &str, data: &T) {
    if let Err(error) = socket.emit(event, data) {
        tracing::debug!(%error, event, "could not emit to a socket");
    }
}
