//! The network side: REST calls through `syncscript_cli::api::ApiClient`
//! and one Socket.IO connection (rust_socketio), both reporting back as
//! [`NetEvent`]s on a channel.
//!
//! rust_socketio runs its callbacks one at a time under a lock, so they only
//! parse and forward; emits happen in one task that owns the client, in the
//! order the app asked for them.

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder, ReconnectSettings};
use rust_socketio::{Event, Payload, TransportType};
use serde::Serialize;
use serde_json::Value;
use syncscript_cli::api::ApiClient;
use syncscript_protocol::{
    CreateSourceCommand, DeleteAck, DeleteSourceCommand, ErrorCode, ErrorDetail, JoinRequest,
    Joined, Presence, Removed, Resync, SourceAck, UpdateSourceCommand, VaultEvent, commands, names,
    parse_ack, signals,
};
use tokio::sync::{mpsc, oneshot};

use crate::action::{Command, Effect, NetEvent, OpenedVault};

/// How long a source command waits for its ack.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Past events shown in the activity log when a vault opens.
const HISTORY: i64 = 50;
/// Delay between first-connection attempts, doubled up to the maximum.
const CONNECT_RETRY_MIN: Duration = Duration::from_millis(250);
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(3);

/// Where network results go.
pub type Reports = mpsc::UnboundedSender<NetEvent>;

/// What the socket task is asked to do, in order.
#[derive(Debug)]
enum SocketCommand {
    Join { vault_id: String, since: i64 },
    Leave { vault_id: String },
    Send(Command),
    Disconnect,
    Reconnect,
}

/// Runs the app's effects against one server.
pub struct Network {
    api: ApiClient,
    reports: Reports,
    socket: mpsc::UnboundedSender<SocketCommand>,
}

impl Network {
    /// Starts the socket task (it connects, and keeps retrying while the
    /// server is unreachable) and returns the handle that runs effects.
    pub fn start(api: ApiClient, token: String, reports: Reports) -> Network {
        let (socket, commands) = mpsc::unbounded_channel();
        tokio::spawn(socket_task(
            api.server_url(),
            token,
            reports.clone(),
            commands,
        ));
        Network {
            api,
            reports,
            socket,
        }
    }

    /// Runs one effect in the background; its outcome arrives as a report.
    /// `Effect::Quit` is the event loop's business and is ignored here.
    pub fn perform(&self, effect: Effect) {
        let api = self.api.clone();
        let reports = self.reports.clone();
        let to_socket = |command| {
            // The socket task only stops when this handle is dropped.
            let _ = self.socket.send(command);
        };
        match effect {
            Effect::LoadVaults => {
                tokio::spawn(async move {
                    let result = api.list_vaults().await.map_err(|e| e.to_string());
                    let _ = reports.send(NetEvent::VaultsLoaded(result));
                });
            }
            Effect::OpenVault { vault_id } => {
                tokio::spawn(async move {
                    let loaded = tokio::try_join!(
                        api.get_vault(&vault_id),
                        api.list_members(&vault_id),
                        api.list_sources(&vault_id),
                    );
                    let result = match loaded {
                        Ok((detail, members, sources)) => {
                            let since = (sources.seq - HISTORY).max(0);
                            // The history only decorates the activity log:
                            // without it the vault works the same.
                            let history = api
                                .list_events(&vault_id, Some(since), Some(HISTORY))
                                .await
                                .map_or_else(|_| Vec::new(), |list| list.events);
                            Ok(Box::new(OpenedVault {
                                detail,
                                members,
                                sources,
                                history,
                            }))
                        }
                        Err(error) => Err(error.to_string()),
                    };
                    let _ = reports.send(NetEvent::VaultOpened(result));
                });
            }
            Effect::LoadSnapshot { vault_id } => {
                tokio::spawn(async move {
                    let result = api.list_sources(&vault_id).await.map_err(|e| e.to_string());
                    let _ = reports.send(NetEvent::SnapshotLoaded { vault_id, result });
                });
            }
            Effect::Join { vault_id, since } => to_socket(SocketCommand::Join { vault_id, since }),
            Effect::Leave { vault_id } => to_socket(SocketCommand::Leave { vault_id }),
            Effect::Send(command) => to_socket(SocketCommand::Send(command)),
            Effect::Disconnect => to_socket(SocketCommand::Disconnect),
            Effect::Reconnect => to_socket(SocketCommand::Reconnect),
            Effect::Quit => {}
        }
    }
}

/// Builds the client with callbacks that only parse and forward.
fn builder(server: &str, token: &str, reports: &Reports) -> ClientBuilder {
    let on_open = reports.clone();
    let on_close = reports.clone();
    let on_error = reports.clone();
    let on_reconnect = reports.clone();
    let on_any = reports.clone();
    ClientBuilder::new(server)
        .transport_type(TransportType::Websocket)
        .auth(serde_json::json!({ "token": token }))
        .reconnect(true)
        .reconnect_on_disconnect(true)
        .reconnect_delay(100, 500)
        .on(Event::Connect, move |_, _| {
            let _ = on_open.send(NetEvent::Opened);
            async {}.boxed()
        })
        .on(Event::Close, move |_, _| {
            let _ = on_close.send(NetEvent::Closed);
            async {}.boxed()
        })
        .on(Event::Error, move |payload, _| {
            let _ = on_error.send(error_report(payload));
            async {}.boxed()
        })
        .on_reconnect(move || {
            let _ = on_reconnect.send(NetEvent::Reconnecting);
            async { ReconnectSettings::new() }.boxed()
        })
        .on_any(move |event, payload, _| {
            if let Event::Custom(name) = event
                && let Some(report) = event_report(&name, first_value(payload))
            {
                let _ = on_any.send(report);
            }
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

/// What the `error` callback means: the server's `error` event, a handshake
/// refused for its credentials, or a transport problem.
pub fn error_report(payload: Payload) -> NetEvent {
    let value = first_value(payload);
    if let Ok(detail) = serde_json::from_value::<ErrorDetail>(value.clone()) {
        return NetEvent::ServerError(detail);
    }
    let text = match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    match text.split_once("ConnectError frame: ") {
        Some((_, frame)) => {
            let message = serde_json::from_str::<Value>(frame)
                .ok()
                .and_then(|frame| frame.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| frame.to_owned());
            // Only a bad session is final; anything else (e.g. "Invalid
            // namespace" from a server that is shutting down) is retried.
            if message.contains(ErrorCode::Unauthorized.as_str()) {
                NetEvent::Refused(message)
            } else {
                NetEvent::Rejected(message)
            }
        }
        None => NetEvent::TransportError(text),
    }
}

/// Parses a server event by name; `None` for what the client ignores.
pub fn event_report(name: &str, payload: Value) -> Option<NetEvent> {
    fn parse<T: serde::de::DeserializeOwned>(payload: Value) -> Option<T> {
        serde_json::from_value(payload).ok()
    }
    match name {
        signals::VAULT_JOINED => parse::<Joined>(payload).map(NetEvent::Joined),
        signals::VAULT_RESYNC => parse::<Resync>(payload).map(NetEvent::Resync),
        signals::VAULT_REMOVED => parse::<Removed>(payload).map(NetEvent::Removed),
        signals::PRESENCE => parse::<Presence>(payload).map(NetEvent::Presence),
        name if names::ALL.contains(&name) => VaultEvent::from_wire(name, &payload)
            .ok()
            .map(|event| NetEvent::Event(Box::new(event))),
        _ => None,
    }
}

/// Connects (retrying while the server is unreachable), then emits what
/// the app asks for until told to disconnect or the app is gone; a
/// `Reconnect` drops the client and starts over with a new one.
async fn socket_task(
    server: String,
    token: String,
    reports: Reports,
    mut commands: mpsc::UnboundedReceiver<SocketCommand>,
) {
    let mut attempt = 0;
    loop {
        let Some(client) = connect(&server, &token, &reports, &mut commands, &mut attempt).await
        else {
            return;
        };
        let reconnect = serve(&client, &reports, &mut commands).await;
        // Stops auto-reconnect too (a dropped client may keep reconnecting).
        let _ = client.disconnect().await;
        if !reconnect {
            return;
        }
        // Not at once: the server that rejected us may still be going down.
        tokio::time::sleep(CONNECT_RETRY_MIN).await;
    }
}

/// One connected client; `None` when told to stop before it connected.
async fn connect(
    server: &str,
    token: &str,
    reports: &Reports,
    commands: &mut mpsc::UnboundedReceiver<SocketCommand>,
    attempt: &mut u32,
) -> Option<Client> {
    let mut delay = CONNECT_RETRY_MIN;
    loop {
        *attempt += 1;
        match builder(server, token, reports).connect().await {
            Ok(client) => {
                *attempt = 0;
                return Some(client);
            }
            Err(error) => {
                let _ = reports.send(NetEvent::ConnectFailed {
                    attempt: *attempt,
                    error: error.to_string(),
                });
            }
        }
        let retry = tokio::time::sleep(delay);
        tokio::pin!(retry);
        delay = (delay * 2).min(CONNECT_RETRY_MAX);
        loop {
            tokio::select! {
                () = &mut retry => break,
                command = commands.recv() => match command {
                    None | Some(SocketCommand::Disconnect) => return None,
                    Some(SocketCommand::Send(command)) => {
                        let _ = reports.send(NetEvent::CommandDone {
                            command,
                            result: Err(not_connected()),
                        });
                    }
                    // Joins are repeated once the socket opens.
                    Some(
                        SocketCommand::Join { .. }
                        | SocketCommand::Leave { .. }
                        | SocketCommand::Reconnect,
                    ) => {}
                },
            }
        }
    }
}

/// Emits the app's commands in order; `true` when a new client is wanted.
async fn serve(
    client: &Client,
    reports: &Reports,
    commands: &mut mpsc::UnboundedReceiver<SocketCommand>,
) -> bool {
    while let Some(command) = commands.recv().await {
        match command {
            SocketCommand::Join { vault_id, since } => {
                let request = JoinRequest {
                    vault_id,
                    since: Some(since),
                };
                emit(client, reports, commands::VAULT_JOIN, &request).await;
            }
            SocketCommand::Leave { vault_id } => {
                emit(client, reports, commands::VAULT_LEAVE, &vault_id).await;
            }
            SocketCommand::Send(command) => send_command(client, reports, command).await,
            SocketCommand::Disconnect => return false,
            SocketCommand::Reconnect => return true,
        }
    }
    false
}

fn not_connected() -> ErrorDetail {
    ErrorDetail {
        code: ErrorCode::BadRequest,
        message: "not connected to the server".into(),
    }
}

async fn emit<T: Serialize>(client: &Client, reports: &Reports, event: &str, body: &T) {
    let payload = match serde_json::to_value(body) {
        Ok(payload) => payload,
        Err(error) => {
            let _ = reports.send(NetEvent::TransportError(error.to_string()));
            return;
        }
    };
    if let Err(error) = client.emit(event, payload).await {
        let _ = reports.send(NetEvent::TransportError(format!(
            "could not send {event}: {error}"
        )));
    }
}

/// Emits a source command with an ack; the outcome (the source id, or the
/// server's error, or a timeout) is reported as `CommandDone`.
async fn send_command(client: &Client, reports: &Reports, command: Command) {
    let (event, payload) = match &command {
        Command::Create {
            vault_id,
            title,
            file_url,
        } => (
            commands::SOURCE_CREATE,
            serde_json::to_value(CreateSourceCommand {
                vault_id: vault_id.clone(),
                title: title.clone(),
                file_url: file_url.clone(),
            }),
        ),
        Command::Update {
            source_id,
            title,
            file_url,
        } => (
            commands::SOURCE_UPDATE,
            serde_json::to_value(UpdateSourceCommand {
                source_id: source_id.clone(),
                title: Some(title.clone()),
                file_url: Some(file_url.clone()),
            }),
        ),
        Command::Delete { source_id, .. } => (
            commands::SOURCE_DELETE,
            serde_json::to_value(DeleteSourceCommand {
                source_id: source_id.clone(),
            }),
        ),
    };
    let payload = match payload {
        Ok(payload) => payload,
        Err(error) => {
            let _ = reports.send(NetEvent::CommandDone {
                command,
                result: Err(ErrorDetail {
                    code: ErrorCode::BadRequest,
                    message: error.to_string(),
                }),
            });
            return;
        }
    };
    let (ack_tx, ack_rx) = oneshot::channel();
    let mut ack_tx = Some(ack_tx);
    let sent = client
        .emit_with_ack(event, payload, ACK_TIMEOUT, move |payload, _| {
            if let Some(ack_tx) = ack_tx.take() {
                let _ = ack_tx.send(ack_value(payload));
            }
            async {}.boxed()
        })
        .await;
    if let Err(error) = sent {
        let _ = reports.send(NetEvent::CommandDone {
            command,
            result: Err(ErrorDetail {
                code: ErrorCode::BadRequest,
                message: format!("could not send: {error}"),
            }),
        });
        return;
    }
    let reports = reports.clone();
    // Wait elsewhere so that later emits are not held up by this ack.
    tokio::spawn(async move {
        let result = match tokio::time::timeout(ACK_TIMEOUT, ack_rx).await {
            Ok(Ok(ack)) => read_ack(&command, ack),
            Ok(Err(_)) | Err(_) => Err(ErrorDetail {
                code: ErrorCode::Internal,
                message: format!(
                    "no answer from the server within {}s",
                    ACK_TIMEOUT.as_secs()
                ),
            }),
        };
        let _ = reports.send(NetEvent::CommandDone { command, result });
    });
}

/// The id of the source a successful ack is about.
pub fn read_ack(command: &Command, ack: Value) -> Result<String, ErrorDetail> {
    match command {
        Command::Create { .. } | Command::Update { .. } => {
            parse_ack::<SourceAck>(ack).map(|ack| ack.source.id)
        }
        Command::Delete { .. } => parse_ack::<DeleteAck>(ack).map(|ack| ack.source_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refused_handshakes_are_told_apart_from_server_errors() {
        let refused = Payload::from(
            r#"Received an ConnectError frame: {"message":"UNAUTHORIZED"}"#.to_owned(),
        );
        assert!(matches!(error_report(refused), NetEvent::Refused(m) if m == "UNAUTHORIZED"));
        let server =
            Payload::from(json!({"code": "FORBIDDEN", "message": "Insufficient permissions"}));
        assert!(matches!(
            error_report(server),
            NetEvent::ServerError(detail) if detail.code == ErrorCode::Forbidden
        ));
        let closing = Payload::from(
            r#"Received an ConnectError frame: {"message":"Invalid namespace"}"#.to_owned(),
        );
        assert!(matches!(error_report(closing), NetEvent::Rejected(m) if m == "Invalid namespace"));
        assert!(matches!(
            error_report(Payload::from("connection reset".to_owned())),
            NetEvent::TransportError(_)
        ));
    }

    #[test]
    fn acks_are_unwrapped_one_level() {
        let ack = Payload::Text(vec![json!([{"ok": true, "sourceId": "s1"}])]);
        let command = Command::Delete {
            source_id: "s1".into(),
            title: "T".into(),
        };
        assert_eq!(read_ack(&command, ack_value(ack)), Ok("s1".into()));
        let refused = Payload::Text(vec![
            json!([{"ok": false, "error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}]),
        ]);
        assert_eq!(
            read_ack(&command, ack_value(refused)).unwrap_err().code,
            ErrorCode::Forbidden
        );
    }

    #[test]
    fn unknown_events_are_ignored() {
        assert!(event_report("vault:left", json!({"vaultId": "v"})).is_none());
        assert!(event_report("source:created", json!({"nonsense": 1})).is_none());
    }
}
