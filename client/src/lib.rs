//! `syncscript-client`: what the SyncScript CLI and terminal client share to
//! talk to a server.
//!
//! - [`api`]: a typed client of the REST API;
//! - [`store`]: the logins kept per server in `sessions.json`;
//! - [`sequencer`]: the one ordering of a vault's sequenced events by seq;
//! - [`socket`]: the one Socket.IO connection (joins, rejoins with `since`,
//!   commands with acks, and the rule for refused connections);
//! - [`follower`]: the catch-up rules (ordering, the gap rule, `vault:head`,
//!   resync, rejoins) over that socket, which hand clients only applied
//!   events;
//! - [`mutation`]: idempotency keys and the retry of mutations whose answer
//!   was lost (REST `Idempotency-Key`, socket `opId`);
//! - [`ClientError`]: the one error type, keeping the server's error code.

pub mod api;
pub mod error;
pub mod follower;
pub mod mutation;
pub mod sequencer;
pub mod socket;
pub mod store;

pub use error::ClientError;
pub use mutation::{IdempotencyKey, RetryPolicy};
