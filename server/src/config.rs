//! Command line and environment configuration of `syncscript`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use url::Url;

/// Largest request body accepted (docs/protocol.md: 64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The default embedded database: a SQLite file under `./data/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/syncscript.db";

/// SyncScript: real-time collaboration server for research vaults.
#[derive(Debug, Parser)]
#[command(name = "syncscript", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `syncscript=debug`).
    #[arg(
        long,
        global = true,
        env = "SYNCSCRIPT_LOG",
        default_value = "info,sqlx=warn,socketioxide=warn,engineioxide=warn"
    )]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the REST API and Socket.IO on one port.
    Serve(Box<ServeArgs>),
    /// Run the database migrations and exit.
    Migrate(DatabaseArgs),
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path/to/file.db` (created if missing) or `postgres://…`.
    #[arg(long, env = "SYNCSCRIPT_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SYNCSCRIPT_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseArgs,

    /// How long a login session lasts (e.g. `30d`, `12h`).
    #[arg(long, env = "SYNCSCRIPT_SESSION_TTL", default_value = "30d", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,

    /// Refuse `POST /api/auth/signup` (accounts are then created by other means).
    #[arg(long, env = "SYNCSCRIPT_NO_SIGNUP")]
    pub no_signup: bool,

    /// The server's public origin (e.g. `https://sync.example.org`), used for
    /// the Origin check of cookie-authenticated requests; derived from each
    /// request's `Host` header when unset.
    #[arg(long, env = "SYNCSCRIPT_PUBLIC_URL")]
    pub public_url: Option<Url>,

    /// How far back catch-up replays events (the last 1,000 events of a
    /// vault are always replayable).
    #[arg(long, env = "SYNCSCRIPT_REPLAY_WINDOW", default_value = "24h", value_parser = humantime::parse_duration)]
    pub replay_window: Duration,

    /// Redis server shared by several nodes (`redis://host:6379`): switches
    /// the Socket.IO adapter to Redis, so that rooms span every node. The
    /// in-process adapter (one node) is used without it.
    #[arg(long, env = "SYNCSCRIPT_REDIS_URL")]
    pub redis_url: Option<Url>,

    /// This node's name in logs and metrics (default: a random id, logged at start).
    #[arg(long, env = "SYNCSCRIPT_NODE_ID")]
    pub node_id: Option<String>,

    /// How often each vault room of this node is checked for events it may
    /// have missed (`vault:head`), e.g. `5s`.
    #[arg(long, env = "SYNCSCRIPT_HEAD_SWEEP", default_value = "5s", value_parser = positive_duration)]
    pub head_sweep: Duration,
}

/// What the server needs to run, independent of how it was given.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub session_ttl: Duration,
    pub signup_enabled: bool,
    pub public_url: Option<Url>,
    pub replay_window: Duration,
    /// Events of a vault that stay replayable whatever their age.
    pub replay_min_events: i64,
    /// The Redis server of a cluster; `None` for one node.
    pub redis_url: Option<Url>,
    /// This node's name in logs and metrics.
    pub node_id: String,
    /// Period of the `vault:head` sweep.
    pub head_sweep: Duration,
}

impl Config {
    /// The defaults of `syncscript serve` with the given database.
    pub fn new(database_url: impl Into<String>) -> Config {
        Config {
            database_url: database_url.into(),
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            signup_enabled: true,
            public_url: None,
            replay_window: Duration::from_secs(24 * 3600),
            replay_min_events: 1000,
            redis_url: None,
            node_id: random_node_id(),
            head_sweep: Duration::from_secs(5),
        }
    }
}

/// A duration longer than zero (a period).
fn positive_duration(value: &str) -> Result<Duration, String> {
    match humantime::parse_duration(value) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        Ok(_) => Err("must be longer than zero".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// A short random node name, `node-` and 8 hex digits.
fn random_node_id() -> String {
    format!("node-{:08x}", rand::random::<u32>())
}

impl From<ServeArgs> for Config {
    fn from(args: ServeArgs) -> Config {
        Config {
            session_ttl: args.session_ttl,
            signup_enabled: !args.no_signup,
            public_url: args.public_url,
            replay_window: args.replay_window,
            redis_url: args.redis_url,
            node_id: args.node_id.unwrap_or_else(random_node_id),
            head_sweep: args.head_sweep,
            ..Config::new(args.database.database_url)
        }
    }
}
