//! Tests of the client without a terminal or a server: what the app does
//! with keys and network reports, and what a person sees (`TestBackend`
//! snapshots at 80×24 and 120×40).

mod behaviour;
mod fixtures;
mod render;
