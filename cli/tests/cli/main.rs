//! End-to-end tests of the real `syncscript-cli` binary against a real
//! server started in-process on a fresh SQLite database.

mod bench;
mod commands;
mod helpers;
mod idempotency;
#[path = "../../../client/tests/support/lossy_proxy.rs"]
mod lossy_proxy;
mod seed;
mod watch;
