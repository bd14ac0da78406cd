//! The message bus: every input the app reacts to is an [`Action`] (a key,
//! a tick, something from the network), and everything it wants done outside
//! itself is an [`Effect`] that the event loop hands to the network layer.

use crossterm::event::KeyEvent;
use syncscript_client::{ClientError, IdempotencyKey};
use syncscript_protocol::{
    ErrorCode, ErrorDetail, Joined, LoggedEvent, Member, Presence, Removed, Resync, SourceList,
    VaultDetail, VaultEvent, VaultSummary,
};

/// An input to [`crate::app::App::update`].
#[derive(Debug, Clone)]
pub enum Action {
    /// Time passed (relative times, highlights, gap timeouts).
    Tick,
    /// A key was pressed.
    Key(KeyEvent),
    /// The terminal was resized (the next frame adapts by itself).
    Resize,
    /// Something arrived from the network.
    Net(NetEvent),
}

/// Something the network layer reports: what the Socket.IO session saw,
/// or the result of a REST call or command. Failures keep the server's
/// error code ([`ClientError::code`]).
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// The socket is (again) accepted by the server; the session rejoins
    /// the open vault by itself.
    Opened,
    /// The server closed the socket (it reconnects by itself).
    Closed,
    /// The socket is trying to reconnect.
    Reconnecting,
    /// A connection failed (server unreachable); retried later.
    ConnectFailed { attempt: u32, error: ClientError },
    /// The server refused the socket's credentials: the session has stopped.
    Refused(ErrorCode),
    /// The server turned the socket away for another reason (e.g. it is
    /// shutting down): the session connects again after a back-off.
    Rejected(String),
    /// A transport error reported by the socket.
    TransportError(String),
    /// A sequenced vault event, live or replayed.
    Event(Box<VaultEvent>),
    /// `vault:joined`.
    Joined(Joined),
    /// `vault:resync`.
    Resync(Resync),
    /// `vault:removed`.
    Removed(Removed),
    /// `presence`.
    Presence(Presence),
    /// An `error` event (a failed join or leave).
    ServerError(ErrorDetail),
    /// `GET /api/vaults` answered.
    VaultsLoaded(Result<Vec<VaultSummary>, ClientError>),
    /// The open vault's detail, members and snapshot arrived.
    VaultOpened(Result<Box<OpenedVault>, ClientError>),
    /// A refreshed snapshot of the open vault arrived.
    SnapshotLoaded {
        vault_id: String,
        result: Result<SourceList, ClientError>,
    },
    /// A source command was acknowledged (or failed or timed out).
    CommandDone {
        command: Command,
        result: Result<String, ClientError>,
    },
}

/// Everything loaded when a vault is opened.
#[derive(Debug, Clone)]
pub struct OpenedVault {
    pub detail: VaultDetail,
    pub members: Vec<Member>,
    pub sources: SourceList,
    /// The last events before the snapshot, oldest first (for the
    /// activity log).
    pub history: Vec<LoggedEvent>,
}

/// A source command, as remembered to report its outcome. `op_id` is the
/// command's `opId`: every sending of this change carries the same one, so
/// the server applies it at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create {
        vault_id: String,
        title: String,
        file_url: String,
        op_id: IdempotencyKey,
    },
    Update {
        source_id: String,
        title: String,
        file_url: String,
        op_id: IdempotencyKey,
    },
    Delete {
        source_id: String,
        title: String,
        op_id: IdempotencyKey,
    },
}

impl Command {
    /// The command's `opId`.
    pub fn op_id(&self) -> &IdempotencyKey {
        match self {
            Command::Create { op_id, .. }
            | Command::Update { op_id, .. }
            | Command::Delete { op_id, .. } => op_id,
        }
    }

    /// The same command with another `opId`.
    pub fn with_op_id(mut self, key: IdempotencyKey) -> Command {
        match &mut self {
            Command::Create { op_id, .. }
            | Command::Update { op_id, .. }
            | Command::Delete { op_id, .. } => *op_id = key,
        }
        self
    }

    /// Whether `other` asks for the same change, whatever its `opId`.
    pub fn same_change(&self, other: &Command) -> bool {
        other.clone().with_op_id(self.op_id().clone()) == *self
    }
}

/// Work the app asks the event loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Load the user's vaults (`GET /api/vaults`).
    LoadVaults,
    /// Load a vault's detail, members and snapshot.
    OpenVault { vault_id: String },
    /// Reload the open vault's snapshot (`vault:resync`, `r`).
    LoadSnapshot { vault_id: String },
    /// Join the vault from `since` (now, or as soon as the socket is open;
    /// the session then rejoins it on every reconnect).
    Join { vault_id: String, since: i64 },
    /// Leave the vault (and stop rejoining it).
    Leave { vault_id: String },
    /// Emit a source command and report its ack.
    Send(Command),
    /// Leave the program.
    Quit,
}
