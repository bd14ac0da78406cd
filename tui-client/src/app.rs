//! The app: what the screens share (identity, connection, the open vault's
//! live copy and its selection, status line, notice) and `update`, which
//! takes an [`Action`] and the current time, routes a key to the dialog on
//! top or else to the screen shown (`crate::screens`), acts on what they
//! ask, and returns the [`Effect`]s to run. Network reports are followed in
//! `follow`, command outcomes in `commands`. No I/O happens here, so every
//! behaviour (keys, catch-up, connection states) is testable without a
//! terminal or a server.

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use syncscript_protocol::{ErrorCode, Role};

use crate::action::{Action, Command, Effect};
use crate::screens::confirm::ConfirmDelete;
use crate::screens::form::{self, SourceForm};
use crate::screens::picker::{self, Picker};
use crate::screens::vault::{self, VaultView};
use crate::state::VaultState;

mod commands;
mod follow;

use commands::retry_safe;

/// How long a status message stays.
pub const STATUS_TTL: Duration = Duration::seconds(10);

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

/// The dialog on top of the screen, which gets the keys while it is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// No dialog: keys go to the screen.
    Normal,
    /// The source form, adding or editing.
    Form(SourceForm),
    /// "Delete this source?"
    ConfirmDelete(ConfirmDelete),
    /// The keys and what they do.
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
        self.gap_rejoin().into_iter().collect()
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.should_quit = true;
            return vec![Effect::Quit];
        }
        if self.notice.take().is_some() {
            return Vec::new();
        }
        // The dialog is taken out while it handles the key; one that stays
        // open is put back.
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help => Vec::new(),
            Mode::Form(mut form) => match form.on_key(key) {
                form::Outcome::Stay => {
                    self.mode = Mode::Form(form);
                    Vec::new()
                }
                form::Outcome::Close => Vec::new(),
                form::Outcome::Submit => self.submit_form(form),
            },
            Mode::ConfirmDelete(confirm) => {
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

    /// Sends `form` to the open vault; the form stays open, waiting for
    /// the ack or saying why nothing was sent.
    fn submit_form(&mut self, mut form: SourceForm) -> Vec<Effect> {
        let command = self.vault.as_ref().and_then(|vault| {
            form.submit(&vault.vault_id, self.connection == Connection::Connected)
        });
        self.mode = Mode::Form(form);
        command
            .map(|command| Effect::Send(retry_safe(self.unanswered.as_ref(), command)))
            .into_iter()
            .collect()
    }
}
