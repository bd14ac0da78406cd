//! The whole application state and its update function: `update` takes an
//! [`Action`] and the current time, changes the state and returns the
//! [`Effect`]s to run. No I/O happens here, so every behaviour (keys, catch-up,
//! connection states) is testable without a terminal or a server.

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use syncscript_client::ClientError;
use syncscript_protocol::{ErrorCode, ErrorDetail, Role};

use crate::action::{Action, Command, Effect, NetEvent, OpenedVault};
use crate::screens::confirm::ConfirmDelete;
use crate::screens::form::{self, SourceForm};
use crate::screens::picker::{self, Picker};
use crate::screens::vault::{self, VaultView};
use crate::state::{Applied, Ended, VaultState};

/// How long buffered events may wait for a missing seq before rejoining.
pub const GAP_WAIT: Duration = Duration::seconds(1);
/// How long a status message stays.
pub const STATUS_TTL: Duration = Duration::seconds(10);
/// Rejoins for the same gap before falling back to a snapshot reload.
const MAX_GAP_REJOINS: u32 = 2;

/// Who is using the client, on which server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub server: String,
    pub user_id: String,
    pub name: String,
}

/// The socket's state, as shown in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Connecting for the first time.
    Connecting,
    /// Accepted by the server.
    Connected,
    /// Lost; the socket retries by itself.
    Reconnecting { attempt: u32 },
    /// The server cannot be reached; retried in the background.
    Offline { attempt: u32, error: String },
    /// The server refused the session: nothing more will be tried.
    Refused { code: ErrorCode },
}

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// The list of the user's vaults.
    Picker,
    /// The open vault.
    Vault,
}

/// What the keyboard is currently driving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Form(SourceForm),
    ConfirmDelete(ConfirmDelete),
    Help,
}

/// A line in the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub text: String,
    pub is_error: bool,
    pub at: DateTime<Utc>,
}

/// A message in a box that the next key dismisses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub title: String,
    pub body: String,
}

/// Everything the screen shows; rendering is a function of this alone.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub identity: Identity,
    /// The clock of the last update: relative times are computed from it.
    pub now: DateTime<Utc>,
    pub connection: Connection,
    /// When the last vault event arrived.
    pub last_event_at: Option<DateTime<Utc>>,
    pub screen: Screen,
    /// The vault chooser.
    pub picker: Picker,
    /// The vault being loaded, if any.
    pub opening: Option<String>,
    pub vault: Option<VaultState>,
    /// Whether the open vault is joined on the current socket.
    pub joined: bool,
    gap_rejoins: u32,
    /// The selected source, by id (survives re-sorting).
    pub selected: Option<String>,
    /// The vault view (its filter).
    pub view: VaultView,
    pub mode: Mode,
    pub status: Option<Status>,
    pub notice: Option<Notice>,
    pub should_quit: bool,
    /// The last command that got no answer (its ack timed out, or the
    /// connection dropped) even after the session's retries: the server may
    /// have applied it. The same change asked for again is sent with its
    /// `opId`, so that the server applies it at most once.
    pub unanswered: Option<Command>,
}

impl App {
    /// A fresh app; [`App::start`] gives its first effects.
    pub fn new(identity: Identity, now: DateTime<Utc>) -> App {
        App {
            identity,
            now,
            connection: Connection::Connecting,
            last_event_at: None,
            screen: Screen::Picker,
            picker: Picker::default(),
            opening: None,
            vault: None,
            joined: false,
            gap_rejoins: 0,
            selected: None,
            view: VaultView::default(),
            mode: Mode::Normal,
            status: None,
            notice: None,
            should_quit: false,
            unanswered: None,
        }
    }

    /// The first effects: load the vault list, and open `vault_id` if given.
    pub fn start(&mut self, vault_id: Option<String>) -> Vec<Effect> {
        let mut effects = vec![Effect::LoadVaults];
        if let Some(vault_id) = vault_id {
            self.opening = Some(vault_id.clone());
            self.screen = Screen::Vault;
            effects.push(Effect::OpenVault { vault_id });
        }
        effects
    }

    /// The user's role in the open vault.
    pub fn role(&self) -> Option<Role> {
        self.vault.as_ref().map(|vault| vault.role)
    }

    /// Changes the state for `action` at time `now`; returns what to do.
    pub fn update(&mut self, action: Action, now: DateTime<Utc>) -> Vec<Effect> {
        self.now = now;
        let effects = match action {
            Action::Tick => self.on_tick(),
            Action::Resize => Vec::new(),
            Action::Key(key) if key.kind == KeyEventKind::Release => Vec::new(),
            Action::Key(key) => self.on_key(key),
            Action::Net(event) => self.on_net(event),
        };
        let shown = self
            .vault
            .as_ref()
            .and_then(|vault| self.view.selected_index(vault, self.selected.as_deref()));
        if shown.is_none() {
            self.selected = None;
        }
        effects
    }

    fn info(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            is_error: false,
            at: self.now,
        });
    }

    fn error(&mut self, text: impl Into<String>) {
        self.status = Some(Status {
            text: text.into(),
            is_error: true,
            at: self.now,
        });
    }

    fn on_tick(&mut self) -> Vec<Effect> {
        if let Some(status) = &self.status
            && self.now - status.at > STATUS_TTL
        {
            self.status = None;
        }
        let mut effects = Vec::new();
        if self.connection == Connection::Connected
            && self.joined
            && let Some(vault) = &mut self.vault
            && let Some(since) = vault.gap_since()
            && self.now - since >= GAP_WAIT
        {
            vault.restart_gap_wait(self.now);
            effects.push(Effect::Join {
                vault_id: vault.vault_id.clone(),
                since: vault.applied_seq(),
            });
        }
        effects
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

    fn is_open_vault(&self, vault_id: &str) -> bool {
        self.vault
            .as_ref()
            .is_some_and(|vault| vault.vault_id == vault_id)
    }

    fn on_net(&mut self, event: NetEvent) -> Vec<Effect> {
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
                if vault.applied_seq() >= joined.seq {
                    self.gap_rejoins = 0;
                    return Vec::new();
                }
                // The replay ends before `vault:joined`: anything still
                // missing up to the head was lost on the way.
                self.gap_rejoins += 1;
                if self.gap_rejoins > MAX_GAP_REJOINS {
                    self.gap_rejoins = 0;
                    vec![Effect::LoadSnapshot {
                        vault_id: joined.vault_id,
                    }]
                } else {
                    self.join_effect().into_iter().collect()
                }
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
                    self.joined = false;
                    self.mode = Mode::Normal;
                    self.view.filtering = false;
                    self.notice = Some(Notice {
                        title: "Removed from vault".into(),
                        body: format!(
                            "You no longer have access to “{}” ({}). Press v to pick another \
                             vault or q to quit.",
                            vault.name, removed.reason
                        ),
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
                self.error(describe_detail(&detail));
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
            self.joined = false;
            self.mode = Mode::Normal;
            self.view.filtering = false;
            self.notice = Some(Notice {
                title: "Vault deleted".into(),
                body: format!(
                    "{by} deleted “{}”. Press v to pick another vault or q to quit.",
                    vault.name
                ),
            });
        }
        Vec::new()
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
                self.gap_rejoins = 0;
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

    fn on_command_done(&mut self, command: Command, result: Result<String, ClientError>) {
        let form_waiting = matches!(&self.mode, Mode::Form(form) if form.sending);
        match &result {
            Err(error) if error.is_unanswered() => self.unanswered = Some(command.clone()),
            // An answer settles that opId: the next change gets a new one.
            _ if self
                .unanswered
                .as_ref()
                .is_some_and(|previous| previous.op_id() == command.op_id()) =>
            {
                self.unanswered = None;
            }
            _ => {}
        }
        match result {
            Ok(id) => {
                let text = match &command {
                    Command::Create { title, .. } => {
                        self.selected = Some(id);
                        format!("Added “{title}”")
                    }
                    Command::Update { title, .. } => format!("Saved “{title}”"),
                    Command::Delete { title, .. } => format!("Deleted “{title}”"),
                };
                if form_waiting && !matches!(command, Command::Delete { .. }) {
                    self.mode = Mode::Normal;
                }
                self.info(text);
            }
            Err(error) => {
                let mut text = describe_error(&error);
                let outcome = if error.is_unanswered() {
                    text.push_str(" (sending it again applies it at most once)");
                    "Not confirmed"
                } else {
                    "Refused"
                };
                match &mut self.mode {
                    Mode::Form(form)
                        if form_waiting && !matches!(command, Command::Delete { .. }) =>
                    {
                        form.fail(text.clone());
                    }
                    _ => {}
                }
                self.error(format!("{outcome}: {text}"));
            }
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.should_quit = true;
            return vec![Effect::Quit];
        }
        if self.notice.take().is_some() {
            return Vec::new();
        }
        match self.mode.clone() {
            Mode::Help => {
                self.mode = Mode::Normal;
                Vec::new()
            }
            Mode::Form(mut form) => match form.on_key(key) {
                form::Outcome::Stay => {
                    self.mode = Mode::Form(form);
                    Vec::new()
                }
                form::Outcome::Close => {
                    self.mode = Mode::Normal;
                    Vec::new()
                }
                form::Outcome::Submit => self.submit_form(form),
            },
            Mode::ConfirmDelete(confirm) => {
                self.mode = Mode::Normal;
                if !confirm.confirms(key) {
                    self.info("Delete cancelled");
                    return Vec::new();
                }
                if !self.ensure_connected() {
                    return Vec::new();
                }
                self.info(format!("Deleting “{}”…", confirm.title));
                let command = retry_safe(self.unanswered.as_ref(), confirm.command());
                vec![Effect::Send(command)]
            }
            Mode::Normal => match self.screen {
                Screen::Picker => self.on_picker_key(key),
                Screen::Vault => self.on_vault_key(key),
            },
        }
    }

    fn on_picker_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self.picker.on_key(key) {
            picker::Outcome::Stay => Vec::new(),
            picker::Outcome::Quit => {
                self.should_quit = true;
                vec![Effect::Quit]
            }
            picker::Outcome::Reload => vec![Effect::LoadVaults],
            picker::Outcome::Help => {
                self.mode = Mode::Help;
                Vec::new()
            }
            picker::Outcome::Back => {
                if self.vault.is_some() {
                    self.screen = Screen::Vault;
                }
                Vec::new()
            }
            picker::Outcome::Open { vault_id } => self.open(vault_id),
        }
    }

    /// Shows the vault `vault_id`: the open one as it is, another one by
    /// leaving the open one and loading it.
    fn open(&mut self, vault_id: String) -> Vec<Effect> {
        if self.is_open_vault(&vault_id) && self.vault.as_ref().is_some_and(|v| v.ended.is_none()) {
            self.screen = Screen::Vault;
            return Vec::new();
        }
        let mut effects = Vec::new();
        // Also while disconnected: the session must stop rejoining it.
        if let Some(old) = self.vault.take()
            && old.ended.is_none()
        {
            effects.push(Effect::Leave {
                vault_id: old.vault_id,
            });
        }
        self.joined = false;
        self.opening = Some(vault_id.clone());
        self.screen = Screen::Vault;
        effects.push(Effect::OpenVault { vault_id });
        effects
    }

    fn ensure_connected(&mut self) -> bool {
        if self.connection == Connection::Connected {
            return true;
        }
        self.error("Not connected: the change cannot be sent until the connection is back");
        false
    }

    fn on_vault_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match self
            .view
            .on_key(key, self.vault.as_ref(), &mut self.selected)
        {
            vault::Outcome::Stay => {}
            vault::Outcome::Quit => {
                self.should_quit = true;
                return vec![Effect::Quit];
            }
            vault::Outcome::Choose => {
                self.screen = Screen::Picker;
                if let Some(vault) = &self.vault {
                    self.picker.point_at(&vault.vault_id);
                }
                return vec![Effect::LoadVaults];
            }
            vault::Outcome::Help => self.mode = Mode::Help,
            vault::Outcome::Refresh { vault_id } => {
                self.info("Refreshing…");
                return vec![Effect::LoadSnapshot { vault_id }];
            }
            vault::Outcome::Form(form) => self.mode = Mode::Form(form),
            vault::Outcome::Confirm(confirm) => self.mode = Mode::ConfirmDelete(confirm),
            vault::Outcome::Info(text) => self.info(text),
            vault::Outcome::Error(text) => self.error(text),
            vault::Outcome::Cleared => self.status = None,
        }
        Vec::new()
    }

    fn submit_form(&mut self, mut form: SourceForm) -> Vec<Effect> {
        let Some(vault) = &self.vault else {
            return Vec::new();
        };
        let command = form.submit(&vault.vault_id, self.connection == Connection::Connected);
        self.mode = Mode::Form(form);
        command
            .map(|command| Effect::Send(retry_safe(self.unanswered.as_ref(), command)))
            .into_iter()
            .collect()
    }
}

/// `command`, with the `opId` of the `unanswered` command when it asks for
/// the same change (a person trying again after "no answer").
fn retry_safe(unanswered: Option<&Command>, command: Command) -> Command {
    match unanswered {
        Some(previous) if previous.same_change(&command) => {
            command.with_op_id(previous.op_id().clone())
        }
        _ => command,
    }
}

/// A failure as one readable line: the server's message and code when it
/// sent them, else what went wrong on the way.
pub fn describe_error(error: &ClientError) -> String {
    match error.detail() {
        Some(detail) => describe_detail(&detail),
        None => error.to_string(),
    }
}

/// A server error as one readable line.
pub fn describe_detail(detail: &ErrorDetail) -> String {
    match detail.code {
        ErrorCode::Forbidden | ErrorCode::Validation | ErrorCode::NotFound => {
            format!("{} ({})", detail.message, detail.code)
        }
        _ => format!("{}: {}", detail.code, detail.message),
    }
}
