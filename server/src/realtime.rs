//! Socket.IO on the REST port: handshake authentication, vault rooms,
//! catch-up by seq, source commands, presence and live revocation.
//!
//! Rooms carry all the cross-socket state, so that the same code keeps
//! working when an adapter spreads rooms over several nodes:
//! `user:{userId}` and `session:{sessionId}` (every socket of a user or a
//! session), `vault:{vaultId}` (the watchers of a vault, where events are
//! published) and `vault:{vaultId}:user:{userId}` (one user's watchers of one
//! vault, for eviction and presence counts).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, Event, SocketRef, State, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::layer::SocketIoLayer;
use socketioxide::socket::Socket;
use socketioxide::{SendError, SocketError, SocketIo};
use syncscript_protocol::{
    CreateSourceCommand, CreateSourceRequest, DeleteAck, DeleteSourceCommand, ErrorCode, Joined,
    Left, Presence, PresenceEntry, Removed, Resync, Role, SourceAck, UpdateSourceCommand,
    UpdateSourceRequest, ack_err, ack_ok, command_for_server_event, commands, is_server_event,
    session_room, signals, user_room, vault_room,
};

use crate::auth::{self, SessionUser};
use crate::error::{AppError, parse_id};
use crate::events;
use crate::permissions;
use crate::sources;
use crate::state::{AppState, Core};

/// Events replayed per database page during catch-up.
const REPLAY_PAGE: i64 = 500;
/// Delay that coalesces bursts of presence changes into one signal.
const PRESENCE_DEBOUNCE: Duration = Duration::from_millis(50);
/// Packets a socket may have queued; catch-up waits for room beyond it.
const SOCKET_BUFFER: usize = 1024;

/// Builds the Socket.IO layer and handle, with the `/` namespace's handlers.
pub fn layer(core: Core) -> (SocketIoLayer, SocketIo) {
    let (layer, io) = SocketIo::builder()
        .with_state(core)
        .max_buffer_size(SOCKET_BUFFER)
        .build_layer();
    io.ns("/", on_connect.with(authenticate));
    (layer, io)
}

/// Who a socket belongs to: stored in its extensions at the handshake.
#[derive(Debug, Clone)]
struct Identity {
    session_id: String,
    user: SessionUser,
}

/// The handshake's refusal; its `Display` is what the client's
/// `connect_error` carries.
#[derive(Debug)]
struct Refused(ErrorCode);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl std::error::Error for Refused {}

/// Connect middleware: a live session from `auth.token` or from the session
/// cookie (Origin-checked, like cookie-authenticated REST mutations).
async fn authenticate(
    socket: SocketRef,
    TryData(auth): TryData<Value>,
    State(core): State<Core>,
) -> Result<(), Refused> {
    let unauthorized = Refused(ErrorCode::Unauthorized);
    let headers = &socket.req_parts().headers;
    let from_auth = auth
        .ok()
        .and_then(|auth| auth.get("token")?.as_str().map(str::to_owned));
    let (token, via_cookie) = match from_auth {
        Some(token) => (token, false),
        None => auth::token_from_headers(headers).ok_or(Refused(ErrorCode::Unauthorized))?,
    };
    if via_cookie && auth::check_origin(headers, core.config.public_url.as_ref()).is_err() {
        return Err(unauthorized);
    }
    let internal = |error: AppError| {
        tracing::error!(%error, "handshake: session lookup failed");
        Refused(ErrorCode::Internal)
    };
    let Some((session_id, user)) = auth::lookup_session(&core.db, &token)
        .await
        .map_err(internal)?
    else {
        return Err(unauthorized);
    };
    accept(&socket, Identity { session_id, user });
    // A logout that committed between the lookup and `accept` joining the
    // session's room has missed this socket: look again now that it is in.
    match auth::lookup_session(&core.db, &token).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(unauthorized),
        Err(error) => Err(internal(error)),
    }
}

/// Sets an accepted socket up: identity, rooms and handlers. This runs in
/// the middleware, before the CONNECT packet goes out: socketioxide spawns
/// the connect handler only after sending it, so a client that emits as soon
/// as it is connected could otherwise reach a socket without handlers (its
/// command silently dropped) or not yet in its session room (missed by a
/// logout).
fn accept(socket: &SocketRef, identity: Identity) {
    socket.join([
        user_room(&identity.user.id),
        session_room(&identity.session_id),
    ]);
    socket.on(commands::VAULT_JOIN, on_join);
    socket.on(commands::VAULT_LEAVE, on_leave);
    socket.on(commands::SOURCE_CREATE, on_source_create);
    socket.on(commands::SOURCE_UPDATE, on_source_update);
    socket.on(commands::SOURCE_DELETE, on_source_delete);
    socket.on_fallback(on_other_event);
    socket.on_disconnect(on_disconnect);
    socket.extensions.insert(identity);
}

/// Everything was set up by [`accept`] in the middleware.
async fn on_connect(socket: SocketRef) {
    tracing::debug!(sid = %socket.id, "socket connected");
}

/// Whether the client asked for an ack (socketioxide's `AckSender` silently
/// does nothing without one, and DESIGN.md then wants an `error` event).
struct AckWanted(bool);

impl FromMessageParts<LocalAdapter> for AckWanted {
    type Error = Infallible;

    fn from_message_parts(
        _: &Arc<Socket>,
        _: &mut socketioxide::handler::Value,
        ack_id: &Option<i64>,
    ) -> Result<AckWanted, Infallible> {
        Ok(AckWanted(ack_id.is_some()))
    }
}

/// How one command answers: through the ack when asked, and through an
/// event (`error` on failure) when the command always answers with one or
/// when no ack was asked.
struct Reply {
    socket: SocketRef,
    ack: AckSender,
    ack_wanted: bool,
}

impl Reply {
    fn new(socket: &SocketRef, ack: AckSender, AckWanted(ack_wanted): AckWanted) -> Reply {
        Reply {
            socket: socket.clone(),
            ack,
            ack_wanted,
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
        if self.ack_wanted {
            send_ack(self.ack, &ack_err(&detail));
        }
        if always_event || !self.ack_wanted {
            emit(&self.socket, signals::ERROR, &detail);
        }
    }

    fn finish<T: Serialize>(self, result: Result<T, AppError>) {
        match result {
            Ok(body) => self.ok(&body),
            Err(error) => self.fail(&error, false),
        }
    }
}

fn send_ack(ack: AckSender, body: &Value) {
    if let Err(error) = ack.send(body) {
        tracing::debug!(%error, "could not send an ack");
    }
}

fn emit<T: Serialize + ?Sized>(socket: &SocketRef, event: &str, data: &T) {
    if let Err(error) = socket.emit(event, data) {
        tracing::debug!(%error, sid = %socket.id, event, "could not emit to a socket");
    }
}

fn identity(socket: &SocketRef) -> Result<Identity, AppError> {
    socket
        .extensions
        .get::<Identity>()
        .ok_or_else(|| AppError::Unauthorized("Socket is not authenticated".into()))
}

fn bad_payload(command: &str, expected: &str) -> AppError {
    AppError::BadRequest(format!("{command} expects {expected}"))
}

/// Reads a command's payload leniently so that a wrong shape is answered
/// with `BAD_REQUEST` instead of being dropped.
fn parse_command<T: serde::de::DeserializeOwned>(
    command: &str,
    expected: &str,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<T, AppError> {
    payload
        .ok()
        .and_then(|payload| serde_json::from_value(payload).ok())
        .ok_or_else(|| bad_payload(command, expected))
}

/// A command's argument; a command sent without one (socketioxide would
/// skip a `Data` handler silently) is answered with `BAD_REQUEST`.
fn argument(
    command: &str,
    expected: &str,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Value, AppError> {
    payload.map_err(|_| bad_payload(command, expected))
}

/// The room of one user's watchers of one vault.
fn member_room(vault_id: &str, user_id: &str) -> String {
    format!("vault:{vault_id}:user:{user_id}")
}

fn parse_join(payload: &Value) -> Result<(String, Option<i64>), AppError> {
    let bad = || bad_payload(commands::VAULT_JOIN, JOIN_EXPECTS);
    let (raw_id, since) = match payload {
        Value::String(id) => (id.as_str(), None),
        Value::Object(map) => {
            let id = map.get("vaultId").and_then(Value::as_str).ok_or_else(bad)?;
            let since = match map.get("since") {
                None | Some(Value::Null) => None,
                Some(since) => Some(since.as_i64().filter(|s| *s >= 0).ok_or_else(|| {
                    AppError::BadRequest("since must be a whole number, 0 or more".into())
                })?),
            };
            (id, since)
        }
        _ => return Err(bad()),
    };
    Ok((parse_id(raw_id, "vault")?, since))
}

async fn on_join(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
    io: SocketIo,
) {
    let reply = Reply::new(&socket, ack, ack_wanted);
    let state = AppState { core, io };
    let joined = match argument(commands::VAULT_JOIN, JOIN_EXPECTS, payload) {
        Ok(payload) => join(&socket, &state, &payload).await,
        Err(error) => Err(error),
    };
    match joined {
        Ok(joined) => {
            // After a large catch-up the socket's buffer may be full: wait
            // for room rather than lose the answer.
            match send_with_backpressure(&socket, signals::VAULT_JOINED, &joined).await {
                Ok(()) => reply.ok(&joined),
                Err(error) => reply.fail(&error, false),
            }
            schedule_presence(&state, joined.vault_id);
        }
        Err(error) => reply.fail(&error, true),
    }
}

const JOIN_EXPECTS: &str = "a vault id or {vaultId, since?}";

async fn join(socket: &SocketRef, state: &AppState, payload: &Value) -> Result<Joined, AppError> {
    let (vault_id, since) = parse_join(payload)?;
    let identity = identity(socket)?;
    // Join first, then check membership and read the log: a removal that
    // commits meanwhile finds the socket in the room and evicts it, an event
    // committed from now on reaches it live, and every earlier one is in the
    // replay (clients dedupe by seq).
    let rooms = [
        vault_room(&vault_id),
        member_room(&vault_id, &identity.user.id),
    ];
    socket.join(rooms.clone());
    let joined = async {
        let role = permissions::member_role(&state.db, &vault_id, &identity.user.id)
            .await?
            .ok_or_else(|| AppError::Forbidden("Access denied to vault".into()))?;
        let head = events::head(&state.db, &vault_id).await?;
        if let Some(since) = since {
            catch_up(socket, state, &vault_id, since, head).await?;
        }
        Ok(Joined {
            vault_id: vault_id.clone(),
            role,
            seq: head,
        })
    }
    .await;
    if joined.is_err() {
        socket.leave(rooms);
    }
    joined
}

/// Replays every event with `since < seq <= head`, page by page, or sends
/// `vault:resync` when they are no longer all retained (or `since` is ahead
/// of the head).
async fn catch_up(
    socket: &SocketRef,
    state: &AppState,
    vault_id: &str,
    since: i64,
    head: i64,
) -> Result<(), AppError> {
    if since > head || !events::replayable(&state.db, vault_id, since, head, state).await? {
        let resync = Resync {
            vault_id: vault_id.to_owned(),
            seq: head,
        };
        emit(socket, signals::VAULT_RESYNC, &resync);
        return Ok(());
    }
    let mut cursor = since;
    while cursor < head {
        let page =
            events::page(&state.db, vault_id, cursor, REPLAY_PAGE.min(head - cursor)).await?;
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        for event in page {
            send_with_backpressure(socket, &event.name, &event.payload).await?;
        }
    }
    Ok(())
}

/// Emits, waiting while the socket's buffer is full (a large catch-up must
/// not drop events); gives up only when the client stops reading.
async fn send_with_backpressure<T: Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    payload: &T,
) -> Result<(), AppError> {
    for _ in 0..500 {
        match socket.emit(event, payload) {
            Ok(()) => return Ok(()),
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(error) => {
                return Err(AppError::Internal(anyhow::anyhow!(
                    "replay interrupted: {error}"
                )));
            }
        }
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "replay abandoned: the client is not reading"
    )))
}

async fn on_leave(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
    io: SocketIo,
) {
    let reply = Reply::new(&socket, ack, ack_wanted);
    let raw_id = match &payload {
        Ok(Value::String(id)) => Some(id.as_str()),
        Ok(Value::Object(map)) => map.get("vaultId").and_then(Value::as_str),
        _ => None,
    };
    let parsed = raw_id
        .ok_or_else(|| bad_payload(commands::VAULT_LEAVE, "a vault id"))
        .and_then(|id| parse_id(id, "vault"))
        .and_then(|id| Ok((id, identity(&socket)?)));
    match parsed {
        Ok((vault_id, identity)) => {
            socket.leave([
                vault_room(&vault_id),
                member_room(&vault_id, &identity.user.id),
            ]);
            let left = Left { vault_id };
            emit(&socket, signals::VAULT_LEFT, &left);
            reply.ok(&left);
            schedule_presence(&AppState { core, io }, left.vault_id);
        }
        Err(error) => reply.fail(&error, true),
    }
}

async fn on_source_create(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
    io: SocketIo,
) {
    let state = AppState { core, io };
    let result = async {
        let command: CreateSourceCommand = parse_command(
            commands::SOURCE_CREATE,
            "{vaultId, title, fileUrl}",
            payload,
        )?;
        let user = identity(&socket)?.user;
        let input = CreateSourceRequest {
            title: command.title,
            file_url: command.file_url,
        };
        let source = sources::create_source(&state, &user, &command.vault_id, &input).await?;
        Ok(SourceAck { source })
    }
    .await;
    Reply::new(&socket, ack, ack_wanted).finish(result);
}

async fn on_source_update(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
    io: SocketIo,
) {
    let state = AppState { core, io };
    let result = async {
        let command: UpdateSourceCommand = parse_command(
            commands::SOURCE_UPDATE,
            "{sourceId, title?, fileUrl?}",
            payload,
        )?;
        let user = identity(&socket)?.user;
        let input = UpdateSourceRequest {
            title: command.title,
            file_url: command.file_url,
        };
        let source = sources::update_source(&state, &user, &command.source_id, &input).await?;
        Ok(SourceAck { source })
    }
    .await;
    Reply::new(&socket, ack, ack_wanted).finish(result);
}

async fn on_source_delete(
    socket: SocketRef,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
    io: SocketIo,
) {
    let state = AppState { core, io };
    let result = async {
        let command: DeleteSourceCommand =
            parse_command(commands::SOURCE_DELETE, "{sourceId}", payload)?;
        let user = identity(&socket)?.user;
        let source_id = sources::delete_source(&state, &user, &command.source_id).await?;
        Ok(DeleteAck { source_id })
    }
    .await;
    Reply::new(&socket, ack, ack_wanted).finish(result);
}

/// Any other event: a server event name is refused (never relayed), with
/// `FORBIDDEN` for a viewer of the payload's vault; an unknown one is a
/// `BAD_REQUEST`.
async fn on_other_event(
    socket: SocketRef,
    Event(name): Event,
    TryData(payload): TryData<Value>,
    ack_wanted: AckWanted,
    ack: AckSender,
    State(core): State<Core>,
) {
    let reply = Reply::new(&socket, ack, ack_wanted);
    let error = if is_server_event(&name) {
        let payload = payload.unwrap_or(Value::Null);
        match viewer_of_payload_vault(&socket, &core, &payload).await {
            Ok(true) => AppError::insufficient_permissions(),
            Ok(false) => match command_for_server_event(&name) {
                Some(command) => AppError::BadRequest(format!(
                    "{name} is sent by the server only: use {command}"
                )),
                None => AppError::BadRequest(format!("{name} is sent by the server only")),
            },
            Err(error) => error,
        }
    } else {
        AppError::BadRequest(format!("unknown event {name:?}"))
    };
    reply.fail(&error, false);
}

/// Whether the sender is a viewer of the vault a (forged) payload names,
/// through `vaultId`, `source.vaultId` or `sourceId`.
async fn viewer_of_payload_vault(
    socket: &SocketRef,
    core: &Core,
    payload: &Value,
) -> Result<bool, AppError> {
    let user = identity(socket)?.user;
    let vault_id = payload
        .get("vaultId")
        .or_else(|| payload.get("source").and_then(|s| s.get("vaultId")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let vault_id = match vault_id {
        Some(id) => Some(id),
        None => match payload.get("sourceId").and_then(Value::as_str) {
            Some(source_id) => {
                let row: Option<(String,)> =
                    sqlx::query_as("SELECT vault_id FROM sources WHERE id = $1")
                        .bind(source_id)
                        .fetch_optional(&core.db)
                        .await?;
                row.map(|(id,)| id)
            }
            None => None,
        },
    };
    let Some(vault_id) = vault_id else {
        return Ok(false);
    };
    let role = permissions::member_role(&core.db, &vault_id, &user.id).await?;
    Ok(role == Some(Role::Viewer))
}

async fn on_disconnect(socket: SocketRef, State(core): State<Core>, io: SocketIo) {
    // Rooms are still readable here (socketioxide clears them after this
    // handler); leave them now, so that a presence signal already scheduled
    // cannot count this socket after its disconnect was reported.
    let state = AppState { core, io };
    let rooms = socket.rooms();
    socket.leave_all();
    for room in rooms {
        if let Some(vault_id) = room
            .strip_prefix("vault:")
            .filter(|rest| !rest.contains(':'))
        {
            schedule_presence(&state, vault_id.to_owned());
        }
    }
}

/// Schedules one `presence` signal for the vault after a short debounce;
/// changes that arrive meanwhile are covered by the same signal.
pub fn schedule_presence(state: &AppState, vault_id: String) {
    let newly_pending = match state.presence_pending.lock() {
        Ok(mut pending) => pending.insert(vault_id.clone()),
        Err(_) => return,
    };
    if !newly_pending {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        tokio::time::sleep(PRESENCE_DEBOUNCE).await;
        if let Ok(mut pending) = state.presence_pending.lock() {
            pending.remove(&vault_id);
        }
        if let Err(error) = send_presence(&state, &vault_id).await {
            tracing::warn!(%error, %vault_id, "could not compute presence");
        }
    });
}

/// Who watches the vault, counted from the adapter's rooms (so it stays
/// right across nodes), with names and roles from the database.
async fn send_presence(state: &AppState, vault_id: &str) -> Result<(), AppError> {
    let members: Vec<(String, String, String)> = sqlx::query_as(
        r#"SELECT vu.user_id, u.name, vu.role FROM vault_users vu
           JOIN users u ON u.id = vu.user_id
           WHERE vu.vault_id = $1 ORDER BY u.name, vu.user_id"#,
    )
    .bind(vault_id)
    .fetch_all(&state.db)
    .await?;
    let mut present = Vec::new();
    for (user_id, user_name, role) in members {
        let sockets = state
            .io
            .to(member_room(vault_id, &user_id))
            .fetch_sockets()
            .await
            .map_err(|e| anyhow::anyhow!("adapter: {e}"))?;
        if !sockets.is_empty() {
            present.push(PresenceEntry {
                user_id,
                user_name,
                role: permissions::parse_role(&role)?,
                connections: u32::try_from(sockets.len()).unwrap_or(u32::MAX),
            });
        }
    }
    let presence = Presence {
        vault_id: vault_id.to_owned(),
        present,
    };
    if let Err(error) = state
        .io
        .to(vault_room(vault_id))
        .emit(signals::PRESENCE, &presence)
        .await
    {
        tracing::debug!(%error, "presence not delivered to every socket");
    }
    Ok(())
}

/// Disconnects every socket in `room` (logout: the session's room).
pub async fn disconnect_room(io: &SocketIo, room: String) {
    if let Err(error) = io.to(room).disconnect().await {
        tracing::warn!(%error, "could not disconnect every socket of a room");
    }
}

/// After `vault:deleted` was published: every socket leaves the vault's
/// room and its members' rooms of that vault.
pub async fn close_vault_room(state: &AppState, vault_id: &str) {
    let members: Result<Vec<(String,)>, sqlx::Error> =
        sqlx::query_as("SELECT user_id FROM vault_users WHERE vault_id = $1")
            .bind(vault_id)
            .fetch_all(&state.db)
            .await;
    let mut rooms = vec![vault_room(vault_id)];
    match members {
        Ok(members) => rooms.extend(
            members
                .into_iter()
                .map(|(user_id,)| member_room(vault_id, &user_id)),
        ),
        Err(error) => tracing::warn!(%error, %vault_id, "deleted vault's members unreadable"),
    }
    if let Err(error) = state.io.to(vault_room(vault_id)).leave(rooms).await {
        tracing::warn!(%error, %vault_id, "could not empty a deleted vault's room");
    }
}

/// After `member:removed` was published: the member's sockets get
/// `vault:removed` and leave the vault's rooms.
pub async fn evict_member(state: &AppState, vault_id: &str, user_id: &str) {
    let room = member_room(vault_id, user_id);
    let removed = Removed {
        vault_id: vault_id.to_owned(),
        reason: "You were removed from this vault".into(),
    };
    if let Err(error) = state
        .io
        .to(user_room(user_id))
        .emit(signals::VAULT_REMOVED, &removed)
        .await
    {
        tracing::debug!(%error, "vault:removed not delivered to every socket");
    }
    if let Err(error) = state
        .io
        .to(room.clone())
        .leave([vault_room(vault_id), room])
        .await
    {
        tracing::warn!(%error, %vault_id, "could not evict a removed member's sockets");
    }
    schedule_presence(state, vault_id.to_owned());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_payloads_are_parsed_leniently() {
        let id = "0190f000-0000-7000-8000-000000000001";
        assert_eq!(
            parse_join(&Value::String(id.into())).unwrap(),
            (id.into(), None)
        );
        let object = serde_json::json!({"vaultId": id, "since": 4});
        assert_eq!(parse_join(&object).unwrap(), (id.into(), Some(4)));
        for bad in [
            serde_json::json!(5),
            serde_json::json!({"since": 1}),
            serde_json::json!({"vaultId": id, "since": -1}),
            serde_json::json!({"vaultId": id, "since": "x"}),
            serde_json::json!("not-an-id"),
        ] {
            assert!(parse_join(&bad).is_err(), "{bad}");
        }
    }
}
