//! The command line of `syncscript-cli` (clap derive): doc comments here are
//! the `--help` text.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use syncscript_client::IdempotencyKey;
use syncscript_protocol::Role;

/// The server used when neither `--server` nor `SYNCSCRIPT_SERVER` is given.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:3000";

/// The password `seed` gives the demo accounts unless told otherwise.
pub const DEFAULT_SEED_PASSWORD: &str = "demo-password";

/// SyncScript admin and test CLI: log in, manage vaults, members and
/// sources over the REST API, and watch a vault's events live.
///
/// Logins are kept per server in `sessions.json` (mode 0600) under
/// `$SYNCSCRIPT_CONFIG_DIR`, else under the user's config folder
/// (`~/.config/syncscript/` on Linux). Server errors are printed on stderr as
/// `error: CODE: message` and exit with status 1.
///
/// Every change (vault, member and source commands) carries an idempotency
/// key: when no answer comes (connection lost, timeout) it is sent again
/// with the same key a few times, and the server applies it at most once.
/// Give the key yourself with `--idempotency-key KEY` to run a command
/// again safely after it failed that way.
#[derive(Debug, Parser)]
#[command(name = "syncscript-cli", version, about, long_about)]
pub struct Cli {
    /// Base URL of the SyncScript server.
    #[arg(long, global = true, env = "SYNCSCRIPT_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// Session token to use instead of the login stored for this server.
    #[arg(
        long,
        global = true,
        env = "SYNCSCRIPT_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub token: Option<String>,

    /// Print machine-readable JSON instead of tables and sentences.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the demo accounts, vaults and sources (safe to run again:
    /// what exists is left as it is).
    ///
    /// Accounts: owner@demo.com, contributor@demo.com, viewer@demo.com (the
    /// three roles of "Demo Vault") and outsider@demo.com (owner of
    /// "Outsider's Vault", not a member of the demo vault).
    Seed(SeedArgs),
    /// Log in and keep the session for this server.
    Login(Credentials),
    /// Revoke the stored session on the server and forget it.
    Logout,
    /// Show who the current session belongs to.
    Whoami,
    /// Session tokens for scripts and the browser test page.
    #[command(subcommand)]
    Session(SessionCommand),
    /// List, create, show, rename and delete vaults.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Manage the members of a vault (owner only).
    #[command(subcommand)]
    Member(MemberCommand),
    /// Add a source (a PDF's title and URL) to a vault.
    AddSource(AddSourceArgs),
    /// Change a source's title and/or URL.
    UpdateSource(UpdateSourceArgs),
    /// Delete a source.
    DeleteSource(DeleteSourceArgs),
    /// Print a vault's event log (oldest first).
    Events(EventsArgs),
    /// Watch a vault live over Socket.IO, one line per event.
    ///
    /// Output on stdout: one JSON object per line, in seq order, each event
    /// exactly once, also across reconnects and server restarts:
    ///
    ///   {"event": NAME, "seq": N, "payload": PAYLOAD}
    ///
    /// NAME is a sequenced event (source:created, source:updated,
    /// source:deleted, member:added, member:updated, member:removed,
    /// vault:updated, vault:deleted); PAYLOAD is exactly what the server
    /// broadcast. Two more lines can appear:
    ///
    ///   {"event": "vault:resync", "seq": HEAD, "payload": {"vaultId", "seq"}}
    ///       events after your --since are no longer retained: refetch the
    ///       sources; watching goes on from HEAD.
    ///   {"event": "vault:removed", "seq": LAST, "payload": {"vaultId", "reason"}}
    ///       you lost access to the vault; LAST is the last seq printed.
    ///
    /// With --pretty: `#SEQ NAME by USER (ROLE): WHAT` instead.
    /// Connection state, joins and presence go to stderr.
    ///
    /// Exit status: 0 after vault:deleted or Ctrl-C; 3 after vault:removed;
    /// 1 when the server refuses the connection (`error: UNAUTHORIZED: …`)
    /// or the join (`error: FORBIDDEN: Access denied to vault`).
    #[command(verbatim_doc_comment)]
    Watch(WatchArgs),
    /// Measure fan-out: connect many watching sockets, fire mutations and
    /// time every delivery.
    ///
    /// Creates its own account (bench-…@bench.invalid) and vaults, so it is
    /// safe against a live server, and deletes the vaults at the end. Each
    /// watcher is one WebSocket of that account's session (like many tabs),
    /// joined to one vault; source creations go to the vaults in turn. For
    /// every delivered event it times sending the mutation → receipt, and it
    /// checks each socket's seqs for gaps, reordering and duplicates.
    ///
    /// Prints a table (stdout) or, with --json, one JSON object; progress
    /// bars and warnings go to stderr. Missing deliveries are reported on
    /// stderr as `MISSING: …`.
    ///
    /// Exit status: 0 when every watcher received every event in order;
    /// 2 when deliveries are missing or came out of order; 1 on errors.
    #[command(verbatim_doc_comment)]
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Password of every demo account.
    #[arg(long, default_value = DEFAULT_SEED_PASSWORD, allow_hyphen_values = true)]
    pub password: String,
}

#[derive(Debug, Args)]
pub struct Credentials {
    /// Account email.
    #[arg(long)]
    pub email: String,
    /// Account password.
    #[arg(
        long,
        env = "SYNCSCRIPT_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub password: String,
}

#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// Log in and print a fresh token, a ready `Cookie:` header and the test
    /// page URL, without storing anything.
    Mint(MintArgs),
}

#[derive(Debug, Args)]
pub struct MintArgs {
    #[command(flatten)]
    pub credentials: Credentials,
    /// Vault to open on the test page.
    #[arg(long)]
    pub vault: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// List the vaults you belong to, with your role and each event head.
    List,
    /// Create a vault; you become its owner.
    Create {
        /// Vault name (1–200 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Show a vault with its members and sources.
    Show(VaultIdArgs),
    /// Rename a vault (owner only).
    Rename {
        #[command(flatten)]
        vault: VaultIdArgs,
        /// New name (1–200 characters).
        #[arg(long)]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Delete a vault and everything in it (owner only).
    Delete {
        #[command(flatten)]
        vault: VaultIdArgs,
        #[command(flatten)]
        key: KeyArgs,
    },
}

/// The idempotency key of a change.
#[derive(Debug, Clone, Args)]
pub struct KeyArgs {
    /// Idempotency key of this change (1–200 visible ASCII characters; a
    /// new one is made when omitted). The server applies a change at most
    /// once per key: after a failure without an answer, run the same
    /// command again with the same key.
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub idempotency_key: Option<IdempotencyKey>,
}

impl KeyArgs {
    /// The given key, else a new one.
    pub fn key(&self) -> IdempotencyKey {
        self.idempotency_key
            .clone()
            .unwrap_or_else(IdempotencyKey::generate)
    }
}

#[derive(Debug, Args)]
pub struct VaultIdArgs {
    /// Vault id.
    #[arg(long)]
    pub vault: String,
}

/// A role given to a member.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Owner,
    Contributor,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Owner => Role::Owner,
            RoleArg::Contributor => Role::Contributor,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// List a vault's members.
    List(VaultIdArgs),
    /// Add an existing account to a vault.
    Add {
        #[command(flatten)]
        vault: VaultIdArgs,
        /// The account's email.
        #[arg(long)]
        email: String,
        /// Role in the vault.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Change a member's role.
    SetRole {
        #[command(flatten)]
        vault: VaultIdArgs,
        /// The member's user id.
        #[arg(long)]
        user: String,
        /// New role.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Remove a member from a vault (their live sockets are kicked).
    Remove {
        #[command(flatten)]
        vault: VaultIdArgs,
        /// The member's user id.
        #[arg(long)]
        user: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Debug, Args)]
pub struct AddSourceArgs {
    /// Vault id.
    #[arg(long)]
    pub vault: String,
    /// Title (1–500 characters).
    #[arg(long)]
    pub title: String,
    /// The PDF's http(s) URL.
    #[arg(long)]
    pub url: String,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("change").required(true).multiple(true).args(["title", "url"])))]
pub struct UpdateSourceArgs {
    /// Source id.
    #[arg(long)]
    pub source: String,
    /// New title.
    #[arg(long)]
    pub title: Option<String>,
    /// New http(s) URL.
    #[arg(long)]
    pub url: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct DeleteSourceArgs {
    /// Source id.
    #[arg(long)]
    pub source: String,
    #[command(flatten)]
    pub key: KeyArgs,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Vault id.
    #[arg(long)]
    pub vault: String,
    /// Only events with a seq greater than this.
    #[arg(long)]
    pub since: Option<i64>,
    /// At most this many events (server default 1,000, max 10,000).
    #[arg(long)]
    pub limit: Option<i64>,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Vault id.
    #[arg(long)]
    pub vault: String,
    /// Replay every event with a seq greater than this first; without it,
    /// only events after joining are printed.
    #[arg(long)]
    pub since: Option<i64>,
    /// Human-readable lines instead of JSON.
    #[arg(long)]
    pub pretty: bool,
}

/// How the bench's writers send mutations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /api/vaults/{id}/sources`, one keep-alive connection per writer.
    Rest,
    /// `source:create` with an ack, one socket per writer.
    Socket,
}

impl Via {
    /// The name used on the command line and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Rest => "rest",
            Via::Socket => "socket",
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Watching sockets, spread over the vaults (socket i joins vault i mod V).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub watchers: u32,
    /// Vaults to create (at most one per watcher).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub vaults: u32,
    /// Mutations (source creations) to fire; mutation k goes to vault k mod V.
    #[arg(long, default_value_t = 200, conflicts_with = "duration")]
    pub events: u32,
    /// Mutations per second, all writers together; 0 = as fast as the
    /// writers go.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Concurrent writers (each waits for its mutation's answer before the
    /// next).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..))]
    pub writers: u32,
    /// How writers send mutations.
    #[arg(long, value_enum, default_value_t = Via::Rest)]
    pub via: Via,
    /// Fire for this many seconds (rate × S mutations) instead of --events.
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// The server's process id (same machine, Linux): adds its resident
    /// memory per socket and CPU time per delivered message, read from
    /// /proc.
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    /// After the first events, ask (on stderr: `bench: restart the server
    /// now`) for a server restart; then fire --events more mutations as soon
    /// as it answers again and time how long every watcher takes to
    /// reconnect, rejoin and hold every event.
    #[arg(long)]
    pub restart_test: bool,
}
