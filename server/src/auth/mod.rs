//! Accounts and sessions, one job per file:
//! - [`routes`]: signup, login, logout, `GET /api/me`;
//! - [`caller`]: the [`Authenticated`] extractor (bearer token or session
//!   cookie, the Origin rule for cookie mutations), token hashing and
//!   session lookup, which the socket handshake shares;
//! - [`cookie`]: the session cookie;
//! - [`password`]: argon2 hashing behind a work queue.

pub mod caller;
mod cookie;
mod password;
mod routes;

pub use caller::{
    Authenticated, check_origin, lookup_session, over_https, peer, token_from_headers,
};
pub use routes::router;
