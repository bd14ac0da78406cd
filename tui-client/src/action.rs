//! The message bus: every input the app reacts to is an [`Action`] (a key,
//! a tick, something from the network), and everything it wants done outside
//! itself is an [`Effect`] that the event loop hands to the network layer.

use crossterm::event::KeyEvent;
use syncscript_protocol::{
    ErrorDetail, Joined, LoggedEvent, Member, Presence, Removed, Resync, SourceList, VaultDetail,
    VaultEvent, VaultSummary,
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

/// Something the network layer reports, from a socket callback or the
/// result of a REST call or command.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// The socket is (again) accepted by the server: safe to emit.
    Opened,
    /// The server closed the socket (it reconnects by itself).
    Closed,
    /// The socket is trying to reconnect.
    Reconnecting,
    /// The first connection failed (server unreachable); retried later.
    ConnectFailed { attempt: u32, error: String },
    /// The server refused the socket's credentials.
    Refused(String),
    /// The server refused the socket for another reason (e.g. it is
    /// shutting down): worth a fresh connection.
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
    /// An `error` event (a failed command sent without an ack).
    ServerError(ErrorDetail),
    /// `GET /api/vaults` answered.
    VaultsLoaded(Result<Vec<VaultSummary>, String>),
    /// The open vault's detail, members and snapshot arrived.
    VaultOpened(Result<Box<OpenedVault>, String>),
    /// A refreshed snapshot of the open vault arrived.
    SnapshotLoaded {
        vault_id: String,
        result: Result<SourceList, String>,
    },
    /// A source command was acknowledged (or failed or timed out).
    CommandDone {
        command: Command,
        result: Result<String, ErrorDetail>,
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

/// A source command, as remembered to report its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Create {
        vault_id: String,
        title: String,
        file_url: String,
    },
    Update {
        source_id: String,
        title: String,
        file_url: String,
    },
    Delete {
        source_id: String,
        title: String,
    },
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
    /// Emit `vault:join {vaultId, since}`.
    Join { vault_id: String, since: i64 },
    /// Emit `vault:leave`.
    Leave { vault_id: String },
    /// Emit a source command and report its ack.
    Send(Command),
    /// Stop using the socket (its credentials were refused).
    Disconnect,
    /// Drop the socket and connect a new one.
    Reconnect,
    /// Leave the program.
    Quit,
}
