//! `syncscript-cli` as a library: the stored sessions ([`store`]), a typed
//! REST client ([`api`]), and the commands of the `syncscript-cli` binary.

pub mod api;
pub mod store;
