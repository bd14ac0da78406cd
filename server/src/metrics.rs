//! This node's Prometheus metrics: HTTP requests by method and status,
//! events published, connected sockets. `GET /metrics` (in `health`)
//! renders them.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of `syncscript_http_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    method: String,
    status: u16,
}

/// One server's metrics (a registry of its own, so several servers in one
/// process — the tests — do not mix their numbers), each labelled with the
/// node's name.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    /// Events broadcast after their transaction committed.
    pub events_published: Counter,
    sockets: Gauge,
}

impl Metrics {
    /// The metrics of the node named `node_id`.
    pub fn new(node_id: &str) -> Metrics {
        let mut registry = Registry::with_prefix_and_labels(
            "syncscript",
            [(Cow::Borrowed("node"), Cow::Owned(node_id.to_owned()))].into_iter(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        let events_published = Counter::default();
        let sockets = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "events_published",
            "Vault events broadcast after commit",
            events_published.clone(),
        );
        registry.register(
            "sockets",
            "Socket.IO connections on this node",
            sockets.clone(),
        );
        Metrics {
            registry,
            http_requests,
            events_published,
            sockets,
        }
    }
}

/// Middleware counting every answered HTTP request.
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    metrics
        .http_requests
        .get_or_create(&HttpLabels {
            method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

impl Metrics {
    /// The text exposition of every metric, with the socket gauge set to
    /// `sockets` first.
    pub fn render(&self, sockets: usize) -> Result<String, std::fmt::Error> {
        self.sockets.set(i64::try_from(sockets).unwrap_or(i64::MAX));
        let mut body = String::new();
        encode(&mut body, &self.registry)?;
        Ok(body)
    }
}
