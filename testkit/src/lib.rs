//! The SyncScript server for tests: started in this process on a free port
//! over a fresh SQLite file or PostgreSQL database ([`TestApp`]), with
//! helpers named after the routes they call, so that tests read as intent.
//! The server, client, CLI and terminal-client test suites all use it.

mod app;
mod database;

pub use app::{PASSWORD, Team, TestApp, TestUser};
pub use database::{Backend, TestDatabase, postgres_admin_url};
