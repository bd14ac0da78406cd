//! The SyncScript server for tests: started in this process on a free port
//! over a fresh SQLite file or PostgreSQL database ([`TestApp`]), with
//! helpers named after the routes they call, so that tests read as intent.
//! The server, client, CLI and terminal-client test suites all use it.

mod api;
mod app;
mod cluster;
mod database;
mod eventually;
mod lossy_proxy;
mod routes;

pub use api::{Api, PASSWORD, Team, TestUser, http_client};
pub use app::TestApp;
pub use cluster::{Cluster, Node, Redis};
pub use database::{Backend, TestDatabase, postgres_admin_url};
pub use eventually::{POLL_INTERVAL, eventually, try_eventually};
pub use lossy_proxy::LossyProxy;
pub use routes::Caller;
