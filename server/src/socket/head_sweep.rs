//! The `vault:head` signal: how a watcher learns that it missed an event
//! when no later event would tell it.
//!
//! Redis pub/sub keeps no history, and a node can die between its commit
//! and its publish. So each node announces `vault:head` {vaultId, seq} to
//! its own watchers of a vault (never to other nodes'):
//! - right after its link to Redis comes back, for every vault its sockets
//!   watch (after checking that each of those sockets may still watch it:
//!   removals and logouts made on other nodes meanwhile did not reach it);
//! - on a periodic sweep (`--head-sweep`), for every vault whose head in the
//!   database is ahead of the last seq this node published or announced
//!   there, once that head has stayed the same for a whole period (an event
//!   of another node may still be on its way through Redis before that).
//!
//! A client behind the announced head rejoins with `since`.

use syncscript_protocol::{Head, signals, vault_room};

use crate::error::AppError;
use crate::events;
use crate::fanout::members::live_sessions;
use crate::state::AppState;

/// Starts the task that sweeps every `config.head_sweep` and, with Redis,
/// announces heads after each reconnect.
pub fn spawn(state: AppState) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(state.config.head_sweep);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut link = state.fanout.link.clone();
        loop {
            let reconnected = async {
                match link.as_mut() {
                    Some(link) => link.reconnected().await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                _ = ticks.tick() => sweep(&state).await,
                Some(()) = reconnected => after_reconnect(&state).await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "could not check the heads of watched vaults");
            }
        }
    })
    .abort_handle()
}

/// Announces each stable head this node's watchers may have missed.
async fn sweep(state: &AppState) -> Result<(), AppError> {
    let vaults = state.fanout.rooms.local_vaults().await;
    let heads = events::current_heads(&state.db, &vaults).await?;
    for (vault_id, seq) in state.fanout.announced.sweep(&heads) {
        announce(state, vault_id, seq);
    }
    Ok(())
}

/// After Redis came back: this node's watchers may have missed removals,
/// logouts and events of other nodes. Each vault's watchers are checked,
/// told its head, and sent a fresh presence.
async fn after_reconnect(state: &AppState) -> Result<(), AppError> {
    let rooms = &state.fanout.rooms;
    let vaults = rooms.local_vaults().await;
    tracing::info!(
        vaults = vaults.len(),
        "announcing heads after the Redis reconnect"
    );
    for vault_id in &vaults {
        let allowed = live_sessions(&state.db, vault_id).await?;
        rooms.enforce_local(vault_id, &allowed);
    }
    let heads = events::current_heads(&state.db, &vaults).await?;
    for (vault_id, seq) in heads {
        state.fanout.request_presence(vault_id.clone());
        announce(state, vault_id, seq);
    }
    Ok(())
}

fn announce(state: &AppState, vault_id: String, seq: i64) {
    state.fanout.announced.delivered(&vault_id, seq);
    let head = Head {
        vault_id: vault_id.clone(),
        seq,
    };
    match serde_json::to_value(&head) {
        Ok(payload) => {
            state
                .fanout
                .rooms
                .emit_local(vault_room(&vault_id), signals::VAULT_HEAD, &payload)
        }
        Err(error) => tracing::error!(%error, "vault:head unserializable"),
    }
}
