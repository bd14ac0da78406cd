//! `syncscript-cli` as a library: the commands of the `syncscript-cli`
//! binary ([`cli`] parses, [`commands::run`] executes). The REST client,
//! the stored sessions and the Socket.IO session come from
//! `syncscript-client`.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod output;
pub mod seed;
pub mod watch;
