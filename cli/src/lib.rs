//! `syncscript-cli` as a library: the stored sessions ([`store`]), a typed
//! REST client ([`api`]), and the commands of the `syncscript-cli` binary
//! ([`cli`] parses, [`commands::run`] executes).

pub mod api;
pub mod cli;
pub mod commands;
pub mod output;
pub mod seed;
pub mod sequencer;
pub mod store;
pub mod watch;
