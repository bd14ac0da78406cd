//! Command line and environment configuration of `syncscript`.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::HeaderValue;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
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

    /// A web origin (`https://app.example.org`) whose pages may call the
    /// API with a bearer token (CORS); repeat, or separate with commas, for
    /// several. Without it no cross-origin page may read an answer.
    #[arg(long, env = "SYNCSCRIPT_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origin: Vec<HeaderValue>,

    #[command(flatten)]
    pub limits: LimitArgs,
}

/// A web origin: scheme, host and optional port, nothing else.
fn parse_origin(value: &str) -> Result<HeaderValue, String> {
    let url = Url::parse(value).map_err(|e| format!("{value:?} is not an origin: {e}"))?;
    let origin = url.origin().ascii_serialization();
    if !matches!(url.scheme(), "http" | "https")
        || origin.trim_end_matches('/') != value.trim_end_matches('/')
    {
        return Err(format!(
            "{value:?} is not an origin such as https://app.example.org"
        ));
    }
    HeaderValue::from_str(&origin).map_err(|e| e.to_string())
}

/// Abuse limits (docs/security.md): what one client address, socket or
/// user may do.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitArgs {
    /// Login and signup attempts per minute from one client address (also
    /// the burst); over it they are refused with 429 and `Retry-After`.
    /// 0 turns the limit off.
    #[arg(long, env = "SYNCSCRIPT_AUTH_RATE_PER_MINUTE", default_value_t = 20)]
    pub auth_rate_per_minute: u32,

    /// A reverse proxy (an address or a network such as `10.0.0.0/8`;
    /// repeat for several, or separate with commas) whose `X-Forwarded-For`
    /// header names the client. From any other peer the header is ignored.
    #[arg(long, env = "SYNCSCRIPT_TRUSTED_PROXY", value_delimiter = ',', value_parser = parse_network)]
    pub trusted_proxy: Vec<IpNet>,

    /// Members one user may add per minute, over all their vaults (also
    /// the burst); more are refused with 429 and `Retry-After`. Adding by
    /// e-mail tells whether an account exists: the limit keeps that from
    /// becoming a way to enumerate accounts. 0 turns it off.
    #[arg(
        long,
        env = "SYNCSCRIPT_MEMBER_ADDITIONS_PER_MINUTE",
        default_value_t = 30
    )]
    pub member_additions_per_minute: u32,

    /// Socket.IO commands per second one socket may send (bursts of twice
    /// as many); more are refused with `RATE_LIMITED`. 0 turns it off.
    #[arg(long, env = "SYNCSCRIPT_SOCKET_COMMAND_RATE", default_value_t = 50)]
    pub socket_command_rate: u32,

    /// Vaults one socket may watch at once; one more `vault:join` is
    /// refused with `RATE_LIMITED`.
    #[arg(long, env = "SYNCSCRIPT_MAX_VAULTS_PER_SOCKET", default_value_t = 100)]
    pub max_vaults_per_socket: usize,

    /// Sockets one user may have open on this node; one more handshake is
    /// refused with `RATE_LIMITED`.
    #[arg(long, env = "SYNCSCRIPT_MAX_SOCKETS_PER_USER", default_value_t = 50)]
    pub max_sockets_per_user: usize,

    /// Largest Socket.IO packet, or long-polling request body, in bytes;
    /// a client that sends more is disconnected.
    #[arg(long, env = "SYNCSCRIPT_MAX_SOCKETIO_PAYLOAD", default_value_t = 64 * 1024)]
    pub max_socketio_payload: u64,

    /// How long a client that opened a Socket.IO transport has to complete
    /// the handshake (send its CONNECT) before it is disconnected.
    #[arg(long, env = "SYNCSCRIPT_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub handshake_timeout: Duration,
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
    /// Origins allowed to call the API cross-origin (CORS); none by default.
    pub cors_origins: Vec<HeaderValue>,
    pub limits: Limits,
}

/// Abuse limits; see [`LimitArgs`] for each.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `None`: no limit.
    pub auth_rate_per_minute: Option<NonZeroU32>,
    pub trusted_proxies: Vec<IpNet>,
    /// `None`: no limit.
    pub member_additions_per_minute: Option<NonZeroU32>,
    /// `None`: no limit.
    pub socket_command_rate: Option<NonZeroU32>,
    pub max_vaults_per_socket: usize,
    pub max_sockets_per_user: usize,
    pub max_socketio_payload: u64,
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    /// The defaults of `syncscript serve`.
    fn default() -> Limits {
        Limits {
            auth_rate_per_minute: NonZeroU32::new(20),
            trusted_proxies: Vec::new(),
            member_additions_per_minute: NonZeroU32::new(30),
            socket_command_rate: NonZeroU32::new(50),
            max_vaults_per_socket: 100,
            max_sockets_per_user: 50,
            max_socketio_payload: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

impl From<LimitArgs> for Limits {
    fn from(args: LimitArgs) -> Limits {
        Limits {
            auth_rate_per_minute: NonZeroU32::new(args.auth_rate_per_minute),
            trusted_proxies: args.trusted_proxy,
            member_additions_per_minute: NonZeroU32::new(args.member_additions_per_minute),
            socket_command_rate: NonZeroU32::new(args.socket_command_rate),
            max_vaults_per_socket: args.max_vaults_per_socket,
            max_sockets_per_user: args.max_sockets_per_user,
            max_socketio_payload: args.max_socketio_payload,
            handshake_timeout: args.handshake_timeout,
        }
    }
}

/// An address (`10.1.2.3`, `::1`) or a network (`10.0.0.0/8`).
fn parse_network(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is not an IP address or network"))
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
            cors_origins: Vec::new(),
            limits: Limits::default(),
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
            cors_origins: args.cors_origin,
            limits: args.limits.into(),
            ..Config::new(args.database.database_url)
        }
    }
}
