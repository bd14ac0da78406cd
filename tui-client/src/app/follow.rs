//! What the app does with network reports: the socket's state, and the
//! open vault following the server (opening it, its events in seq order,
//! joins and rejoins, the gap rule, resyncs, removal, presence).

use syncscript_client::ClientError;

use super::{App, Connection, Mode, Notice, Screen, commands};
use crate::action::{Effect, NetEvent, OpenedVault};
use crate::screens::vault::VaultView;
use crate::state::{Applied, Ended, VaultState};

/// Rejoins for the same gap before falling back to a snapshot reload.
const MAX_GAP_REJOINS: u32 = 2;

impl App {
    /// While the vault is joined, the follower's gap rule: a vault behind
    /// for its gap wait is rejoined from its last applied seq, and
    /// reloaded once rejoins have not helped [`MAX_GAP_REJOINS`] times.
    pub(super) fn gap_rejoin(&mut self) -> Option<Effect> {
        if self.connection != Connection::Connected || !self.joined {
            return None;
        }
        let vault = self.vault.as_mut()?;
        let rejoin = vault.due(self.now)?;
        if rejoin.attempt > MAX_GAP_REJOINS {
            return Some(Effect::LoadSnapshot {
                vault_id: rejoin.vault_id,
            });
        }
        Some(Effect::Join {
            vault_id: rejoin.vault_id,
            since: rejoin.since,
        })
    }

    /// The open vault and its last applied seq while it is live: what the
    /// Socket.IO session's rejoins ask for (the event loop reports it).
    pub fn applied(&self) -> Option<(&str, i64)> {
        let vault = self.vault.as_ref()?;
        if vault.ended.is_some() {
            return None;
        }
        Some((vault.vault_id.as_str(), vault.applied_seq()))
    }

    /// The join that (re)subscribes the open vault; the session sends it as
    /// soon as the socket is open.
    fn join_effect(&mut self) -> Option<Effect> {
        let vault = self.vault.as_ref()?;
        if vault.ended.is_some() {
            return None;
        }
        self.joined = false;
        Some(Effect::Join {
            vault_id: vault.vault_id.clone(),
            since: vault.applied_seq(),
        })
    }

    pub(super) fn is_open_vault(&self, vault_id: &str) -> bool {
        self.vault
            .as_ref()
            .is_some_and(|vault| vault.vault_id == vault_id)
    }

    /// Follows one network report.
    pub(super) fn on_net(&mut self, event: NetEvent) -> Vec<Effect> {
        match event {
            NetEvent::Opened => {
                let was_reconnecting = matches!(
                    self.connection,
                    Connection::Reconnecting { .. } | Connection::Offline { .. }
                );
                self.connection = Connection::Connected;
                // The session has just rejoined the open vault since its
                // applied seq: `vault:joined` follows.
                self.joined = false;
                if was_reconnecting {
                    self.info("Reconnected: catching up");
                }
                Vec::new()
            }
            NetEvent::Closed => {
                self.joined = false;
                if !matches!(self.connection, Connection::Refused { .. }) {
                    self.connection = Connection::Reconnecting { attempt: 0 };
                }
                Vec::new()
            }
            NetEvent::Reconnecting => {
                self.joined = false;
                self.connection = match &self.connection {
                    Connection::Reconnecting { attempt } => Connection::Reconnecting {
                        attempt: attempt + 1,
                    },
                    Connection::Refused { code } => Connection::Refused { code: *code },
                    _ => Connection::Reconnecting { attempt: 1 },
                };
                Vec::new()
            }
            NetEvent::ConnectFailed { attempt, error } => {
                self.connection = Connection::Offline {
                    attempt,
                    error: error.to_string(),
                };
                Vec::new()
            }
            NetEvent::Refused(code) => {
                self.joined = false;
                self.connection = Connection::Refused { code };
                self.notice = Some(Notice {
                    title: "Session refused".into(),
                    body: format!(
                        "The server refused this session ({code}). It may have expired or been \
                         logged out: log in again with `syncscript-cli login` and restart."
                    ),
                });
                Vec::new()
            }
            NetEvent::Rejected(reason) => {
                self.joined = false;
                let attempt = match self.connection {
                    Connection::Reconnecting { attempt } => attempt + 1,
                    _ => 1,
                };
                self.connection = Connection::Reconnecting { attempt };
                self.info(format!(
                    "The server turned the connection away ({reason}): retrying"
                ));
                Vec::new()
            }
            NetEvent::TransportError(error) => {
                if let Connection::Offline { attempt, .. } = self.connection {
                    self.connection = Connection::Offline { attempt, error };
                }
                Vec::new()
            }
            NetEvent::Event(event) => self.on_vault_event(*event),
            NetEvent::Joined(joined) => {
                let Some(vault) = self
                    .vault
                    .as_mut()
                    .filter(|v| v.vault_id == joined.vault_id)
                else {
                    return Vec::new();
                };
                self.joined = true;
                vault.role = joined.role;
                // The replay ends before `vault:joined`: anything still
                // missing up to the head is a gap (see `gap_rejoin`).
                vault.joined(&joined, self.now);
                Vec::new()
            }
            NetEvent::Resync(resync) => {
                if !self.is_open_vault(&resync.vault_id) {
                    return Vec::new();
                }
                self.info("Too far behind to replay: reloading the vault");
                vec![Effect::LoadSnapshot {
                    vault_id: resync.vault_id,
                }]
            }
            NetEvent::Removed(removed) => {
                if let Some(vault) = self
                    .vault
                    .as_mut()
                    .filter(|v| v.vault_id == removed.vault_id)
                {
                    vault.ended = Some(Ended::Removed {
                        reason: removed.reason.clone(),
                    });
                    let body = format!(
                        "You no longer have access to “{}” ({}). Press v to pick another \
                         vault or q to quit.",
                        vault.name, removed.reason
                    );
                    self.vault_ended(Notice {
                        title: "Removed from vault".into(),
                        body,
                    });
                }
                Vec::new()
            }
            NetEvent::Presence(presence) => {
                if let Some(vault) = self
                    .vault
                    .as_mut()
                    .filter(|v| v.vault_id == presence.vault_id)
                {
                    vault.presence = presence.present;
                }
                Vec::new()
            }
            NetEvent::ServerError(detail) => {
                self.error(commands::describe_detail(&detail));
                Vec::new()
            }
            NetEvent::VaultsLoaded(Ok(vaults)) => {
                self.picker.loaded(vaults);
                Vec::new()
            }
            NetEvent::VaultsLoaded(Err(error)) => {
                self.error(format!("Cannot load your vaults: {error}"));
                Vec::new()
            }
            NetEvent::VaultOpened(result) => self.on_vault_opened(result),
            NetEvent::SnapshotLoaded { vault_id, result } => {
                let now = self.now;
                let Some(vault) = self.vault.as_mut().filter(|v| v.vault_id == vault_id) else {
                    return Vec::new();
                };
                match result {
                    Ok(list) => {
                        vault.load_snapshot(list, now);
                        self.info("Vault reloaded");
                        self.join_effect().into_iter().collect()
                    }
                    Err(error) => {
                        self.error(format!("Cannot reload the vault: {error}"));
                        Vec::new()
                    }
                }
            }
            NetEvent::CommandDone { command, result } => {
                self.on_command_done(command, result);
                Vec::new()
            }
        }
    }

    fn on_vault_event(&mut self, event: syncscript_protocol::VaultEvent) -> Vec<Effect> {
        let now = self.now;
        let Some(vault) = self.vault.as_mut() else {
            return Vec::new();
        };
        let applied = vault.apply(event, now);
        if applied != Applied::OtherVault {
            self.last_event_at = Some(now);
        }
        if applied == Applied::Applied
            && let Some(Ended::Deleted { by }) = &vault.ended
            && self.notice.is_none()
        {
            let body = format!(
                "{by} deleted “{}”. Press v to pick another vault or q to quit.",
                vault.name
            );
            self.vault_ended(Notice {
                title: "Vault deleted".into(),
                body,
            });
        }
        Vec::new()
    }

    /// The open vault ended for this client: it is no longer joined, any
    /// dialog and the filter typing end, and `notice` says why.
    fn vault_ended(&mut self, notice: Notice) {
        self.joined = false;
        self.mode = Mode::Normal;
        self.view.filtering = false;
        self.notice = Some(notice);
    }

    fn on_vault_opened(&mut self, result: Result<Box<OpenedVault>, ClientError>) -> Vec<Effect> {
        match result {
            Ok(opened) => {
                let OpenedVault {
                    detail,
                    members,
                    sources,
                    history,
                } = *opened;
                if self.opening.as_deref() != Some(detail.vault.id.as_str()) {
                    return Vec::new();
                }
                self.opening = None;
                let mut vault = VaultState::new(
                    &detail.vault.id,
                    &detail.vault.name,
                    detail.role,
                    &self.identity.user_id,
                );
                vault.set_members(members);
                vault.load_snapshot(sources, self.now);
                vault.load_history(history);
                self.vault = Some(vault);
                self.screen = Screen::Vault;
                self.selected = None;
                self.view = VaultView::default();
                self.mode = Mode::Normal;
                self.join_effect().into_iter().collect()
            }
            Err(error) => {
                self.opening = None;
                self.screen = if self.vault.is_some() {
                    Screen::Vault
                } else {
                    Screen::Picker
                };
                self.error(format!("Cannot open the vault: {error}"));
                Vec::new()
            }
        }
    }
}
