//! End-to-end tests of the real `syncscript-cli` binary against a real
//! server started in-process on a fresh SQLite database.

mod bench;
mod commands;
mod helpers;
mod idempotency;
mod seed;
mod watch;
