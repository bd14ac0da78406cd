//! This node's Prometheus metrics: what an operator watches. HTTP requests
//! by method, route and status (counts and latency), events published and
//! delivered, broadcast duration, catch-up replay sizes, connected sockets,
//! joined rooms and database pool usage. `GET /metrics` (in `health`)
//! renders them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use sqlx::AnyPool;

/// Labels of the HTTP request metrics. Each takes its value from a closed
/// set, so that no client can make series (and memory) grow: whatever it
/// sends, the number of series is bounded by the routes, the methods and
/// the status codes the server answers with.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// One of the standard methods, else `other`.
    method: &'static str,
    /// The route's pattern (`/api/vaults/{id}`), never the raw path, so that
    /// ids do not make a series each; `unmatched` for the fallback.
    route: String,
    status: u16,
}

/// The label of a request method: the standard ones by name, any other as
/// `other`.
fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// Which database pool: on SQLite the readers' and the single writer's,
/// on PostgreSQL one pool shared by both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolName {
    Read,
    Write,
    Shared,
}

impl PoolName {
    fn label(self) -> &'static str {
        match self {
            PoolName::Read => "read",
            PoolName::Write => "write",
            PoolName::Shared => "shared",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    pool: &'static str,
    /// `idle` or `busy`.
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolOnly {
    pool: &'static str,
}

/// What the node's rooms hold when the metrics are read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoomCounts {
    /// Socket.IO connections on this node.
    pub sockets: usize,
    /// Vaults with at least one watcher on this node.
    pub vaults: usize,
    /// Vault joins of this node's sockets (a socket watching two vaults
    /// counts twice).
    pub joined: usize,
}

/// One server's metrics (a registry of its own, so several servers in one
/// process — the tests — do not mix their numbers), each labelled with the
/// node's name.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram>,
    events_published: Counter,
    events_delivered: Counter,
    broadcast_duration: Histogram,
    replayed: Histogram,
    sockets: Gauge,
    watched_vaults: Gauge,
    joined_rooms: Gauge,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_opened: Family<PoolOnly, Counter>,
}

/// Seconds, from 100 µs to about 1.6 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.0, 15)
}

impl Metrics {
    /// The metrics of the node named `node_id`.
    pub fn new(node_id: &str) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "syncscript",
            [(Cow::Borrowed("node"), Cow::Owned(node_id.to_owned()))].into_iter(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(latency_buckets())) as fn() -> Histogram,
        );
        let broadcast_duration = Histogram::new(latency_buckets());
        // Events per catch-up: 0, 1, 4, … 65,536.
        let replayed = Histogram::new([0.0].into_iter().chain(exponential_buckets(1.0, 4.0, 9)));
        let metrics = Metrics {
            http_requests,
            http_duration: http_duration.clone(),
            events_published: Counter::default(),
            events_delivered: Counter::default(),
            broadcast_duration,
            replayed,
            sockets: Gauge::default(),
            watched_vaults: Gauge::default(),
            joined_rooms: Gauge::default(),
            pool_connections: Family::default(),
            pool_opened: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route and status",
            metrics.http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route and status",
            http_duration,
        );
        registry.register(
            "events_published",
            "Vault events broadcast after commit",
            metrics.events_published.clone(),
        );
        registry.register(
            "events_delivered",
            "Vault events handed to this node's sockets (one per watching socket)",
            metrics.events_delivered.clone(),
        );
        registry.register(
            "broadcast_duration_seconds",
            "Time to broadcast one committed event to its vault's room",
            metrics.broadcast_duration.clone(),
        );
        registry.register(
            "replayed_events",
            "Events replayed by one catch-up (a vault:join with since)",
            metrics.replayed.clone(),
        );
        registry.register(
            "sockets",
            "Socket.IO connections on this node",
            metrics.sockets.clone(),
        );
        registry.register(
            "watched_vaults",
            "Vaults with at least one watcher on this node",
            metrics.watched_vaults.clone(),
        );
        registry.register(
            "joined_rooms",
            "Vault joins of this node's sockets",
            metrics.joined_rooms.clone(),
        );
        registry.register(
            "db_connections",
            "Database pool connections, by pool and state",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "db_connections_opened",
            "Connections each database pool opened since the start",
            metrics.pool_opened.clone(),
        );
        Metrics {
            registry,
            ..metrics
        }
    }

    /// An event was broadcast to `sockets` of this node in `took`.
    pub fn published(&self, sockets: usize, took: Duration) {
        self.events_published.inc();
        self.events_delivered
            .inc_by(u64::try_from(sockets).unwrap_or(u64::MAX));
        self.broadcast_duration.observe(took.as_secs_f64());
    }

    /// A catch-up replayed `events` events.
    pub fn replayed(&self, events: u64) {
        // Exact as an f64 far beyond any replay's size.
        self.replayed.observe(events as f64);
    }

    /// The text exposition of every metric, with the gauges set from
    /// `rooms` and `pools` first.
    pub fn render(
        &self,
        rooms: RoomCounts,
        pools: &[(PoolName, &AnyPool, u64)],
    ) -> Result<String, std::fmt::Error> {
        let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        self.sockets.set(gauge(rooms.sockets));
        self.watched_vaults.set(gauge(rooms.vaults));
        self.joined_rooms.set(gauge(rooms.joined));
        for &(name, pool, opened) in pools {
            let counter = self
                .pool_opened
                .get_or_create(&PoolOnly { pool: name.label() });
            counter.inc_by(opened.saturating_sub(counter.get()));
            let idle = pool.num_idle();
            let size = usize::try_from(pool.size()).unwrap_or(usize::MAX);
            for (state, count) in [("idle", idle), ("busy", size.saturating_sub(idle))] {
                self.pool_connections
                    .get_or_create(&PoolLabels {
                        pool: name.label(),
                        state,
                    })
                    .set(gauge(count));
            }
        }
        let mut body = String::new();
        encode(&mut body, &self.registry)?;
        Ok(body)
    }
}

/// Middleware counting and timing every answered HTTP request.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let response = next.run(request).await;
    let labels = HttpLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    metrics
        .http_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics.http_requests.get_or_create(&labels).inc();
    response
}
