//! The network side: REST calls through `syncscript_client::api::ApiClient`
//! and one `syncscript_client::socket::SocketClient`, both reporting back as
//! [`NetEvent`]s on a channel.
//!
//! The session owns the Socket.IO connection: it waits for the socket to
//! open, rejoins the open vault on every reconnect from the applied seq this
//! layer reports ([`Network::track`]), times acks out, and applies the one
//! refusal rule (only `UNAUTHORIZED` is final).

use syncscript_client::api::ApiClient;
use syncscript_client::socket::{Incoming, SocketClient};
use syncscript_client::{ClientError, RetryPolicy};
use syncscript_protocol::{
    CreateSourceCommand, DeleteSourceCommand, UpdateSourceCommand, VaultEvent,
};
use tokio::sync::mpsc;

use crate::action::{Command, Effect, NetEvent, OpenedVault};

/// Past events shown in the activity log when a vault opens.
const HISTORY: i64 = 50;

/// Where network results go.
pub type Reports = mpsc::UnboundedSender<NetEvent>;

/// Runs the app's effects against one server.
pub struct Network {
    api: ApiClient,
    reports: Reports,
    session: SocketClient,
    /// The vault and seq last reported to the session as applied.
    tracked: Option<(String, i64)>,
}

impl Network {
    /// Starts the Socket.IO session (it connects, and keeps retrying while
    /// the server is unreachable) and returns the handle that runs effects.
    pub fn start(api: ApiClient, token: String, reports: Reports) -> Network {
        let (session, incoming) = SocketClient::start(&api.server_url(), &token);
        tokio::spawn(forward(incoming, reports.clone()));
        Network {
            api,
            reports,
            session,
            tracked: None,
        }
    }

    /// The same network, sending source commands again as `policy` says
    /// when no ack comes (the session's default is
    /// [`RetryPolicy::DEFAULT`]).
    pub fn with_retry(self, policy: RetryPolicy) -> Network {
        Network {
            session: self.session.with_retry(policy),
            ..self
        }
    }

    /// Tells the session how far the open vault is applied (see
    /// [`crate::app::App::applied`]), so that a rejoin asks only for what
    /// follows.
    pub fn track(&mut self, applied: Option<(&str, i64)>) {
        let Some((vault_id, seq)) = applied else {
            return;
        };
        if self
            .tracked
            .as_ref()
            .is_some_and(|(tracked, at)| tracked == vault_id && *at == seq)
        {
            return;
        }
        self.session.applied(vault_id, seq);
        self.tracked = Some((vault_id.to_owned(), seq));
    }

    /// Runs one effect in the background; its outcome arrives as a report.
    /// `Effect::Quit` is the event loop's business and is ignored here.
    pub fn perform(&self, effect: Effect) {
        let api = self.api.clone();
        let reports = self.reports.clone();
        match effect {
            Effect::LoadVaults => {
                tokio::spawn(async move {
                    let result = api.list_vaults().await;
                    let _ = reports.send(NetEvent::VaultsLoaded(result));
                });
            }
            Effect::OpenVault { vault_id } => {
                tokio::spawn(async move {
                    let result = open_vault(&api, &vault_id).await;
                    let _ = reports.send(NetEvent::VaultOpened(result));
                });
            }
            Effect::LoadSnapshot { vault_id } => {
                tokio::spawn(async move {
                    let result = api.list_sources(&vault_id).await;
                    let _ = reports.send(NetEvent::SnapshotLoaded { vault_id, result });
                });
            }
            Effect::Join { vault_id, since } => self.session.join(&vault_id, since),
            Effect::Leave { vault_id } => self.session.leave(&vault_id),
            Effect::Send(command) => {
                let session = self.session.clone();
                // Wait elsewhere so that the event loop is not held up by
                // the ack.
                tokio::spawn(async move {
                    let result = send_command(&session, &command).await;
                    let _ = reports.send(NetEvent::CommandDone { command, result });
                });
            }
            Effect::Quit => {}
        }
    }
}

/// Loads a vault's detail, members, snapshot and recent history.
async fn open_vault(api: &ApiClient, vault_id: &str) -> Result<Box<OpenedVault>, ClientError> {
    let (detail, members, sources) = tokio::try_join!(
        api.get_vault(vault_id),
        api.list_members(vault_id),
        api.list_sources(vault_id),
    )?;
    let since = (sources.seq - HISTORY).max(0);
    // The history only decorates the activity log: without it the vault
    // works the same.
    let history = api
        .list_events(vault_id, Some(since), Some(HISTORY))
        .await
        .map_or_else(|_| Vec::new(), |list| list.events);
    Ok(Box::new(OpenedVault {
        detail,
        members,
        sources,
        history,
    }))
}

/// Sends a source command with its `opId`; the id of the source its ack is
/// about. The session sends it again, with the same `opId`, while no ack
/// comes (a reconnect, a lost ack), a bounded number of times.
pub async fn send_command(
    session: &SocketClient,
    command: &Command,
) -> Result<String, ClientError> {
    let op_id = Some(command.op_id().to_string());
    match command {
        Command::Create {
            vault_id,
            title,
            file_url,
            ..
        } => {
            let body = CreateSourceCommand {
                vault_id: vault_id.clone(),
                title: title.clone(),
                file_url: file_url.clone(),
                op_id,
            };
            Ok(session.create_source(body).await?.id)
        }
        Command::Update {
            source_id,
            title,
            file_url,
            ..
        } => {
            let body = UpdateSourceCommand {
                source_id: source_id.clone(),
                title: Some(title.clone()),
                file_url: Some(file_url.clone()),
                op_id,
            };
            Ok(session.update_source(body).await?.id)
        }
        Command::Delete { source_id, .. } => {
            let body = DeleteSourceCommand {
                source_id: source_id.clone(),
                op_id,
            };
            session.delete_source(body).await
        }
    }
}

/// Forwards what the session reports as the app's network events.
async fn forward(mut incoming: mpsc::UnboundedReceiver<Incoming>, reports: Reports) {
    while let Some(item) = incoming.recv().await {
        if let Some(report) = net_event(item)
            && reports.send(report).is_err()
        {
            return;
        }
    }
}

/// What a session report means to the app; `None` for what it ignores.
pub fn net_event(item: Incoming) -> Option<NetEvent> {
    Some(match item {
        Incoming::Opened { .. } => NetEvent::Opened,
        Incoming::Closed => NetEvent::Closed,
        Incoming::Reconnecting => NetEvent::Reconnecting,
        Incoming::ConnectFailed { attempt, error } => NetEvent::ConnectFailed { attempt, error },
        Incoming::Rejected { message } => NetEvent::Rejected(message),
        Incoming::Refused(code) => NetEvent::Refused(code),
        Incoming::TransportError(text) => NetEvent::TransportError(text),
        Incoming::Event { event, .. } => {
            let event = VaultEvent::from_wire(&event.name, &event.payload).ok()?;
            NetEvent::Event(Box::new(event))
        }
        Incoming::Joined(joined) => NetEvent::Joined(joined),
        Incoming::Removed(removed) => NetEvent::Removed(removed),
        Incoming::Resync(resync) => NetEvent::Resync(resync),
        Incoming::Presence(presence) => NetEvent::Presence(presence),
        Incoming::Error(detail) => NetEvent::ServerError(detail),
        // The session itself rejoins when an announced head is ahead.
        Incoming::Left(_) | Incoming::Head(_) | Incoming::Unknown { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use syncscript_client::sequencer::Sequenced;
    use syncscript_protocol::{ErrorCode, Left, names};

    #[test]
    fn refusals_keep_their_meaning() {
        assert!(matches!(
            net_event(Incoming::Refused(ErrorCode::Unauthorized)),
            Some(NetEvent::Refused(ErrorCode::Unauthorized))
        ));
        assert!(matches!(
            net_event(Incoming::Rejected {
                message: "Invalid namespace".into()
            }),
            Some(NetEvent::Rejected(m)) if m == "Invalid namespace"
        ));
    }

    #[test]
    fn vault_events_are_typed_and_the_rest_ignored() {
        let malformed = Incoming::Event {
            vault_id: "v".into(),
            event: Sequenced {
                name: names::SOURCE_CREATED.into(),
                seq: 1,
                payload: json!({"vaultId": "v", "seq": 1}),
            },
        };
        assert!(net_event(malformed).is_none());
        assert!(
            net_event(Incoming::Left(Left {
                vault_id: "v".into()
            }))
            .is_none()
        );
    }
}
