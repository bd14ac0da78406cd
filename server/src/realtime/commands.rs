//! What a socket may send, and its disconnect: `vault:join` (with catch-up
//! by seq), `vault:leave`, the source commands (the same service functions
//! and permission checks as REST), and the refusal of forged server events.
//!
//! Every command is answered, whatever its payload: through the ack when
//! the client asked for one, otherwise through an `error` event on failure.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, StateNotFound, TryData};
use socketioxide::handler::{FromMessageParts, Value as Packet};
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError, SocketIo};
use syncscript_protocol::{
    CreateSourceCommand, CreateSourceRequest, DeleteAck, DeleteSourceCommand, Joined, Left, Resync,
    Role, SourceAck, UpdateSourceCommand, UpdateSourceRequest, ack_err, ack_ok,
    command_for_server_event, commands, is_server_event, signals, vault_room,
};

use crate::error::{AppError, parse_id, reject_control_characters};
use crate::events;
use crate::idempotency::{self, Claim};
use crate::limits::{CommandBudget, Seat};
use crate::permissions;
use crate::realtime::identity::{self, Identity, SessionUser};
use crate::realtime::rooms::{Rooms, SendGate, Watched, joining_room, vault_of_room, watcher_room};
use crate::sources;
use crate::state::{AppState, Core};
use crate::vaults::SINCE_RULE;

/// Gives an authenticated socket its identity and its command handlers.
pub fn register<A: Adapter>(socket: &SocketRef<A>, identity: Identity) {
    socket.on(commands::VAULT_JOIN, join::<A>);
    socket.on(commands::VAULT_LEAVE, leave::<A>);
    socket.on(commands::SOURCE_CREATE, source_create::<A>);
    socket.on(commands::SOURCE_UPDATE, source_update::<A>);
    socket.on(commands::SOURCE_DELETE, source_delete::<A>);
    socket.on_fallback(other_event::<A>);
    socket.on_disconnect(disconnect::<A>);
    socket.extensions.insert(identity);
}

/// Events replayed per database page during catch-up.
const REPLAY_PAGE: i64 = 500;
/// How long a catch-up waits for a client that stopped reading.
const STALL_LIMIT: Duration = Duration::from_secs(5);
/// How often a full socket buffer is looked at again.
const STALL_POLL: Duration = Duration::from_millis(10);
/// How long a command waits for its socket to be marked connected
/// ([`Command::settled`]); a socket still not connected is closing.
const SETTLE_LIMIT: Duration = Duration::from_secs(1);
/// How often a command looks at that again.
const SETTLE_POLL: Duration = Duration::from_millis(1);

/// One received command: the socket, how to answer it, and the server's
/// state. Extracted once for every handler.
struct Command<A: Adapter> {
    socket: SocketRef<A>,
    ack: AckSender<A>,
    /// Whether the client asked for an ack (socketioxide's `AckSender`
    /// silently does nothing without one, and the contract then wants an
    /// `error` event).
    ack_wanted: bool,
    state: AppState,
}

impl<A: Adapter> FromMessageParts<A> for Command<A> {
    type Error = StateNotFound<Core>;

    fn from_message_parts(
        socket: &Arc<Socket<A>>,
        packet: &mut Packet,
        ack_id: &Option<i64>,
    ) -> Result<Command<A>, StateNotFound<Core>> {
        let State(core) = State::<Core>::from_message_parts(socket, packet, ack_id)?;
        let Ok(io) = SocketIo::<A>::from_message_parts(socket, packet, ack_id);
        let Ok(ack) = AckSender::<A>::from_message_parts(socket, packet, ack_id);
        Ok(Command {
            socket: SocketRef::from(socket.clone()),
            ack,
            ack_wanted: ack_id.is_some(),
            state: AppState {
                core,
                rooms: Rooms::new(io),
                link: None,
            },
        })
    }
}

impl<A: Adapter> Command<A> {
    /// Whether the socket is connected, waiting for it if need be:
    /// socketioxide sends the CONNECT packet before it marks the socket
    /// connected, so a command sent as soon as the client heard it can
    /// arrive in between, when every emit to the socket still fails (and a
    /// join would take it for one that disconnected). `false` when the
    /// socket was closed instead: nobody is left to answer.
    async fn settled(&self) -> bool {
        let deadline = tokio::time::Instant::now() + SETTLE_LIMIT;
        while !self.socket.connected() {
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(sid = %self.socket.id, "command from a socket that is not connected");
                return false;
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
        true
    }

    /// Spends one command of the socket's budget (`RATE_LIMITED` when it
    /// is empty).
    fn spend(&self) -> Result<(), AppError> {
        match self.socket.extensions.get::<CommandBudget>() {
            Some(budget) => budget.spend(),
            None => Ok(()),
        }
    }

    fn ok<T: Serialize>(self, body: &T) {
        if self.ack_wanted {
            send_ack(self.ack, &ack_ok(body));
        }
    }

    /// Fails the command; `always_event` also sends the `error` event when
    /// an ack was given (join and leave always answer with an event).
    fn fail(self, error: &AppError, always_event: bool) {
        let detail = error.detail();
        if always_event || !self.ack_wanted {
            emit(&self.socket, signals::ERROR, &detail);
        }
        if self.ack_wanted {
            send_ack(self.ack, &ack_err(&detail));
        }
    }

    fn finish<T: Serialize>(self, result: Result<T, AppError>) {
        match result {
            Ok(body) => self.ok(&body),
            Err(error) => self.fail(&error, false),
        }
    }

    /// Runs a source command: its payload read as `C` (a wrong shape is a
    /// `BAD_REQUEST` naming `expected`), then `run` as the socket's user.
    async fn source_command<C, T, F>(
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
        if !self.settled().await {
            return;
        }
        let result = match self
            .spend()
            .and_then(|()| parse_command::<C>(name, expected, payload))
            .and_then(|command| Ok((command, identity::of(&self.socket)?.user)))
        {
            Ok((command, user)) => run(self.state.clone(), user, command).await,
            Err(error) => Err(error),
        };
        self.finish(result);
    }
}

fn send_ack<A: Adapter>(ack: AckSender<A>, body: &Value) {
    if let Err(error) = ack.send(body) {
        tracing::debug!(%error, "could not send an ack");
    }
}

fn emit<A: Adapter, T: Serialize + ?Sized>(socket: &SocketRef<A>, event: &str, data: &T) {
    if let Err(error) = socket.emit(event, data) {
        tracing::debug!(%error, sid = %socket.id, event, "could not emit to a socket");
    }
}

fn bad_payload(command: &str, expected: &str) -> AppError {
    AppError::BadRequest(format!("{command} expects {expected}"))
}

/// Reads a command's payload leniently so that a wrong shape, or no
/// argument at all (socketioxide would skip a `Data` handler silently), is
/// answered with `BAD_REQUEST` instead of being dropped.
pub fn parse_command<T: DeserializeOwned>(
    command: &str,
    expected: &str,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<T, AppError> {
    let payload = payload.map_err(|_| bad_payload(command, expected))?;
    reject_control_characters(&payload)?;
    serde_json::from_value(payload).map_err(|_| bad_payload(command, expected))
}

const JOIN_EXPECTS: &str = "a vault id or {vaultId, since?}";

pub fn parse_join(
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<(String, Option<i64>), AppError> {
    let bad = || bad_payload(commands::VAULT_JOIN, JOIN_EXPECTS);
    let payload = payload.map_err(|_| bad())?;
    let (raw_id, since) = match &payload {
        Value::String(id) => (id.as_str(), None),
        Value::Object(map) => {
            let id = map.get("vaultId").and_then(Value::as_str).ok_or_else(bad)?;
            let since = match map.get("since") {
                None | Some(Value::Null) => None,
                Some(since) => match since.as_i64() {
                    Some(since) if since >= 0 => Some(since),
                    Some(_) => return Err(AppError::validation("since", SINCE_RULE)),
                    None => {
                        return Err(AppError::BadRequest("since must be a whole number".into()));
                    }
                },
            };
            (id, since)
        }
        _ => return Err(bad()),
    };
    Ok((parse_id(raw_id, "vault")?, since))
}

/// Why a join did not complete.
enum JoinFailure {
    /// Answered to the client with the contract's error.
    Refused(AppError),
    /// The socket went away, or stopped reading, during the join: there is
    /// nobody to answer.
    Gone(SendFailure),
}

impl From<AppError> for JoinFailure {
    fn from(error: AppError) -> JoinFailure {
        JoinFailure::Refused(error)
    }
}

impl From<SendFailure> for JoinFailure {
    fn from(failure: SendFailure) -> JoinFailure {
        JoinFailure::Gone(failure)
    }
}

/// `vault:join`: membership checked, the socket joins the vault's rooms,
/// every event after `since` is replayed, then `vault:joined` (and the ack).
async fn join<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    if !command.settled().await {
        return;
    }
    if let Err(error) = command.spend() {
        return command.fail(&error, true);
    }
    let joined = join_vault(&command.socket, &command.state, payload).await;
    match joined {
        Ok(joined) => {
            if let Some(watched) = command.socket.extensions.get::<Watched>() {
                watched.add(&joined.vault_id);
            }
            command.state.request_presence(joined.vault_id.clone());
            // After a large catch-up the socket's buffer may be full: wait
            // for room rather than lose the answer.
            match send_with_backpressure(&command.socket, signals::VAULT_JOINED, &joined).await {
                Ok(()) => command.ok(&joined),
                Err(failure) => failure.log(&command.socket),
            }
        }
        Err(JoinFailure::Refused(error)) => command.fail(&error, true),
        Err(JoinFailure::Gone(failure)) => failure.log(&command.socket),
    }
}

/// Check, join, check again. The first check keeps a non-member out of the
/// room altogether, so no event published meanwhile can reach it. The
/// second closes the race with a removal that commits between the first
/// check and the join: its eviction may have run before the socket was in
/// the room. A removal that commits after the join finds the socket in the
/// room and evicts it.
///
/// With `since`, the events the socket missed reach it before any live one:
/// the bulk of the catch-up is replayed before the socket joins the room,
/// and the tail (what was published meanwhile) under a hold of the vault's
/// publishing line, with the join, so that nothing is broadcast from this
/// node between the two (see [`publisher`](crate::realtime::publisher)).
async fn join_vault<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Joined, JoinFailure> {
    let (vault_id, since) = parse_join(payload)?;
    let user_id = identity::of(socket)?.user.id;
    let max = state.config.limits.max_vaults_per_socket;
    // Vaults watched, and those whose join is under way (so that joins
    // sent at once cannot all pass the check).
    let rooms = socket.rooms();
    let watched: HashSet<&str> = rooms
        .iter()
        .filter_map(|room| {
            let rest = room.strip_prefix("vault:")?;
            match rest.split_once(':') {
                None => Some(rest),
                Some((vault, "joining")) => Some(vault),
                Some(_) => None,
            }
        })
        .collect();
    if watched.len() >= max && !watched.contains(vault_id.as_str()) {
        return Err(AppError::RateLimited {
            message: format!("This socket already watches {max} vaults: leave one first"),
            retry_after: None,
        }
        .into());
    }
    // In the joining room before the first check: a removal that commits
    // from here on takes the socket out of it, and the catch-up stops.
    let joining = joining_room(&vault_id);
    socket.join(joining.clone());
    let joined = checked_join(socket, state, &vault_id, &user_id, since).await;
    socket.leave(joining);
    joined
}

async fn checked_join<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    vault_id: &str,
    user_id: &str,
    since: Option<i64>,
) -> Result<Joined, JoinFailure> {
    let (vault_id, user_id) = (vault_id.to_owned(), user_id.to_owned());
    let (_, head) = permissions::role_and_head(&state.db, &vault_id, &user_id)
        .await?
        .ok_or_else(access_denied)?;
    let replayed = match since {
        Some(since) => catch_up(socket, state, &vault_id, since, head).await?,
        None => None,
    };
    let hold = match replayed {
        Some(_) => Some(state.publisher.hold(&vault_id).await),
        None => None,
    };
    let rooms = [
        vault_room(&vault_id),
        watcher_room(&vault_id, &user_id, &socket.id.to_string()),
    ];
    // A failed rejoin leaves only the rooms this join entered: a socket
    // that already watched the vault stays until the removal that refused
    // the join evicts it, after its own `member:removed`.
    let entered: Vec<String> = {
        let already = socket.rooms();
        rooms
            .iter()
            .filter(|room| !already.iter().any(|joined| joined == *room))
            .cloned()
            .collect()
    };
    socket.join(rooms.clone());
    // A client that disconnected during the check has had its rooms
    // cleared already: joining now would leave entries for a gone socket.
    if !socket.connected() {
        socket.leave(rooms);
        return Err(JoinFailure::Gone(SendFailure::Closed));
    }
    let joined: Result<Joined, JoinFailure> = async {
        let (role, head) = permissions::role_and_head(&state.db, &vault_id, &user_id)
            .await?
            .ok_or_else(access_denied)?;
        if let (Some(hold), Some(replayed)) = (&hold, replayed) {
            let tail = replay(
                socket,
                state,
                &vault_id,
                replayed.cursor,
                hold.replay_bound(head),
                Pace::Immediate,
            )
            .await?;
            state.metrics.replayed(replayed.events + tail);
        }
        Ok(Joined {
            vault_id: vault_id.clone(),
            role,
            seq: head,
        })
    }
    .await;
    drop(hold);
    if joined.is_err() {
        socket.leave(entered);
    }
    joined
}

/// A join refused: not a member, or no longer one.
fn access_denied() -> AppError {
    AppError::Forbidden("Access denied to vault".into())
}

/// How far the bulk of a catch-up went.
#[derive(Debug, Clone, Copy)]
struct Replayed {
    /// The last seq replayed (or `since` when none was).
    cursor: i64,
    events: u64,
}

/// Replays every event after `since` up to `head` that this node no longer
/// has to broadcast (the rest is for the tail), or sends `vault:resync` (and
/// `None`) when they are no longer all retained or `since` is ahead of the
/// head.
async fn catch_up<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    vault_id: &str,
    since: i64,
    head: i64,
) -> Result<Option<Replayed>, JoinFailure> {
    if since > head || !events::replayable(&state.db, vault_id, since, head, state).await? {
        let resync = Resync {
            vault_id: vault_id.to_owned(),
            seq: head,
        };
        emit(socket, signals::VAULT_RESYNC, &resync);
        state.metrics.replayed(0);
        return Ok(None);
    }
    let settled = state.publisher.settled(vault_id, head);
    let events = replay(socket, state, vault_id, since, settled, Pace::Backpressure).await?;
    Ok(Some(Replayed {
        cursor: settled.max(since),
        events,
    }))
}

/// How a replay sends to a socket whose buffer is full.
#[derive(Debug, Clone, Copy)]
enum Pace {
    /// Wait for room (the bulk of a catch-up, nothing else is held).
    Backpressure,
    /// Give up at once: the vault's line is held (the tail).
    Immediate,
}

/// Sends every event with `from < seq <= to`, page by page; returns how
/// many.
async fn replay<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    vault_id: &str,
    from: i64,
    to: i64,
    pace: Pace,
) -> Result<u64, JoinFailure> {
    let mut cursor = from;
    let mut sent = 0;
    while cursor < to {
        let page = events::page(&state.db, vault_id, cursor, REPLAY_PAGE.min(to - cursor)).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for event in page {
            send_replayed(socket, vault_id, &event.name, &event.payload, pace).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

/// Sends one replayed event, only while the socket is still in the vault's
/// joining room: an eviction empties it before it sends `vault:removed`,
/// after which nothing of the vault may reach the socket. The room is
/// looked at again after every wait for buffer space.
async fn send_replayed<A: Adapter>(
    socket: &SocketRef<A>,
    vault_id: &str,
    event: &str,
    payload: &Value,
    pace: Pace,
) -> Result<(), JoinFailure> {
    let joining = joining_room(vault_id);
    let gate = socket.extensions.get::<SendGate>().unwrap_or_default();
    let deadline = tokio::time::Instant::now() + STALL_LIMIT;
    loop {
        let sent = {
            let _held = gate.lock().await;
            if !socket.rooms().iter().any(|room| *room == joining) {
                return Err(JoinFailure::Refused(access_denied()));
            }
            socket.emit(event, payload)
        };
        match sent {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if matches!(pace, Pace::Backpressure) && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(STALL_POLL).await;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                return stalled(socket).map_err(JoinFailure::from);
            }
            Err(_) => return Err(SendFailure::Closed.into()),
        }
    }
}

/// Why a socket could not be sent to.
#[derive(Debug)]
enum SendFailure {
    /// The client disconnected: normal life for a server.
    Closed,
    /// The client stopped reading (its buffer stayed full past
    /// [`STALL_LIMIT`], or was full while the vault's line was held): it is
    /// disconnected, and will catch up by seq when it reconnects.
    Stalled,
}

impl SendFailure {
    fn log<A: Adapter>(&self, socket: &SocketRef<A>) {
        match self {
            SendFailure::Closed => {
                tracing::debug!(sid = %socket.id, "join not completed: the client disconnected");
            }
            SendFailure::Stalled => {
                tracing::info!(sid = %socket.id, "join not completed: the client stopped reading");
            }
        }
    }
}

/// Emits, waiting while the socket's buffer is full (a large catch-up must
/// not drop events); gives up only when the client stops reading.
async fn send_with_backpressure<A: Adapter, T: Serialize + ?Sized>(
    socket: &SocketRef<A>,
    event: &str,
    payload: &T,
) -> Result<(), SendFailure> {
    let deadline = tokio::time::Instant::now() + STALL_LIMIT;
    while tokio::time::Instant::now() < deadline {
        match socket.emit(event, payload) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tokio::time::sleep(STALL_POLL).await;
            }
            Err(_) => return Err(SendFailure::Closed),
        }
    }
    stalled(socket)
}

/// Disconnects a client that stopped reading; it will catch up by seq.
fn stalled<A: Adapter>(socket: &SocketRef<A>) -> Result<(), SendFailure> {
    if let Err(error) = socket.clone().disconnect() {
        tracing::debug!(%error, "stalled socket was already gone");
    }
    Err(SendFailure::Stalled)
}

/// `vault:leave`: the socket leaves the vault's rooms; `vault:left`.
async fn leave<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    if !command.settled().await {
        return;
    }
    if let Err(error) = command.spend() {
        return command.fail(&error, true);
    }
    let raw_id = match &payload {
        Ok(Value::String(id)) => Some(id.as_str()),
        Ok(Value::Object(map)) => map.get("vaultId").and_then(Value::as_str),
        _ => None,
    };
    let parsed = raw_id
        .ok_or_else(|| bad_payload(commands::VAULT_LEAVE, "a vault id"))
        .and_then(|id| parse_id(id, "vault"))
        .and_then(|id| Ok((id, identity::of(&command.socket)?)));
    match parsed {
        Ok((vault_id, identity)) => {
            command.socket.leave([
                vault_room(&vault_id),
                watcher_room(&vault_id, &identity.user.id, &command.socket.id.to_string()),
            ]);
            if let Some(watched) = command.socket.extensions.get::<Watched>() {
                watched.remove(&vault_id);
            }
            let left = Left { vault_id };
            emit(&command.socket, signals::VAULT_LEFT, &left);
            command.state.request_presence(left.vault_id.clone());
            command.ok(&left);
        }
        Err(error) => command.fail(&error, true),
    }
}

/// `source:create`: as `POST /api/vaults/{id}/sources`.
async fn source_create<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_CREATE,
            "{vaultId, title, fileUrl}",
            payload,
            |state, user, command: CreateSourceCommand| async move {
                let input = CreateSourceRequest {
                    title: command.title,
                    file_url: command.file_url,
                };
                let vault_id = command.vault_id;
                let target = parse_id(&vault_id, "vault")?;
                let claim = op_claim(&command.op_id, &user, "source.create", &target, &input)?;
                let work = sources::create_source(&state, &user, &vault_id, &input, claim.as_ref());
                let answer = idempotency::once(&state, claim.as_ref(), work).await?;
                Ok(SourceAck {
                    source: answer.value,
                })
            },
        )
        .await;
}

/// `source:update`: as `PATCH /api/sources/{id}`.
async fn source_update<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_UPDATE,
            "{sourceId, title?, fileUrl?}",
            payload,
            |state, user, command: UpdateSourceCommand| async move {
                let input = UpdateSourceRequest {
                    title: command.title,
                    file_url: command.file_url,
                };
                let id = command.source_id;
                let target = parse_id(&id, "source")?;
                let claim = op_claim(&command.op_id, &user, "source.update", &target, &input)?;
                let work = sources::update_source(&state, &user, &id, &input, claim.as_ref());
                let answer = idempotency::once(&state, claim.as_ref(), work).await?;
                Ok(SourceAck {
                    source: answer.value,
                })
            },
        )
        .await;
}

/// `source:delete`: as `DELETE /api/sources/{id}`.
async fn source_delete<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_DELETE,
            "{sourceId}",
            payload,
            |state, user, command: DeleteSourceCommand| async move {
                let id = command.source_id;
                let target = parse_id(&id, "source")?;
                let claim = op_claim(&command.op_id, &user, "source.delete", &target, &())?;
                let work = sources::delete_source(&state, &user, &id, claim.as_ref());
                let answer = idempotency::once(&state, claim.as_ref(), work).await?;
                Ok(DeleteAck {
                    source_id: answer.value,
                })
            },
        )
        .await;
}

/// The claim of a command's `opId` (the same operation as over REST, so
/// one key covers both).
fn op_claim(
    op_id: &Option<String>,
    user: &SessionUser,
    operation: &str,
    target: &str,
    input: &impl Serialize,
) -> Result<Option<Claim>, AppError> {
    Claim::new(
        idempotency::OP_ID,
        op_id.as_deref(),
        user,
        operation,
        target,
        input,
    )
}

/// Any other event: a server event name is refused (never relayed), with
/// `FORBIDDEN` for a viewer of the payload's vault; an unknown one is a
/// `BAD_REQUEST`.
async fn other_event<A: Adapter>(
    command: Command<A>,
    Event(name): Event,
    TryData(payload): TryData<Value>,
) {
    if !command.settled().await {
        return;
    }
    if let Err(error) = command.spend() {
        return command.fail(&error, false);
    }
    let error = if is_server_event(&name) {
        let payload = payload.unwrap_or(Value::Null);
        match viewer_of_payload_vault(&command.socket, &command.state, &payload).await {
            Ok(true) => AppError::insufficient_permissions(),
            Ok(false) => match command_for_server_event(&name) {
                Some(replacement) => AppError::BadRequest(format!(
                    "{name} is sent by the server only: use {replacement}"
                )),
                None => AppError::BadRequest(format!("{name} is sent by the server only")),
            },
            Err(error) => error,
        }
    } else {
        AppError::BadRequest(format!("unknown event {name:?}"))
    };
    command.fail(&error, false);
}

/// Whether the sender is a viewer of the vault a (forged) payload names,
/// through `vaultId`, `source.vaultId` or `sourceId`.
async fn viewer_of_payload_vault<A: Adapter>(
    socket: &SocketRef<A>,
    state: &AppState,
    payload: &Value,
) -> Result<bool, AppError> {
    let user = identity::of(socket)?.user;
    let named = payload
        .get("vaultId")
        .or_else(|| payload.get("source").and_then(|s| s.get("vaultId")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let vault_id = match (named, payload.get("sourceId").and_then(Value::as_str)) {
        (Some(vault_id), _) => vault_id,
        (None, Some(source_id)) => match sources::vault_of(&state.db, source_id).await {
            Ok(vault_id) => vault_id,
            Err(AppError::NotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        },
        (None, None) => return Ok(false),
    };
    let role = permissions::member_role(&state.db, &vault_id, &user.id).await?;
    Ok(role == Some(Role::Viewer))
}

/// A disconnect leaves the socket's rooms and updates presence.
async fn disconnect<A: Adapter>(socket: SocketRef<A>, State(core): State<Core>) {
    // The socket stops counting against its user's limit now, not when
    // its last reference goes.
    socket.extensions.remove::<Arc<Seat>>();
    // The rooms may be gone already (see `Watched`); a join still under
    // way may have entered rooms it has not recorded yet: both count.
    let mut vaults = socket
        .extensions
        .get::<Watched>()
        .map(|watched| watched.take())
        .unwrap_or_default();
    vaults.extend(
        socket
            .rooms()
            .iter()
            .filter_map(|room| vault_of_room(room))
            .map(str::to_owned),
    );
    // Leave now, so that a presence signal already scheduled cannot count
    // this socket after its disconnect was reported.
    socket.leave_all();
    for vault_id in vaults {
        core.request_presence(vault_id);
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_payloads_are_parsed_leniently() {
        let id = "0190f000-0000-7000-8000-000000000001";
        let parse = |payload: Value| parse_join(Ok::<_, String>(payload));
        assert_eq!(parse(Value::String(id.into())).unwrap(), (id.into(), None));
        let object = serde_json::json!({"vaultId": id, "since": 4});
        assert_eq!(parse(object).unwrap(), (id.into(), Some(4)));
        for bad in [
            serde_json::json!(5),
            serde_json::json!({"since": 1}),
            serde_json::json!({"vaultId": id, "since": -1}),
            serde_json::json!({"vaultId": id, "since": "x"}),
            serde_json::json!("not-an-id"),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
