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

use crate::auth;
use crate::error::AppError;
use crate::events;
use crate::realtime::cluster::Link;
use crate::realtime::rooms::Rooms;
use crate::state::Core;

/// Starts the task that sweeps every `core.config.head_sweep` and, with
/// Redis, announces heads after each reconnect.
pub fn spawn(core: Core, rooms: Rooms, link: Option<Link>) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(core.config.head_sweep);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut link = link;
        loop {
            let reconnected = async {
                match link.as_mut() {
                    Some(link) => link.reconnected().await,
                    None => std::future::pending().await,
                }
            };
            let result = tokio::select! {
                _ = ticks.tick() => sweep(&core, &rooms).await,
                Some(()) = reconnected => after_reconnect(&core, &rooms).await,
            };
            if let Err(error) = result {
                tracing::warn!(%error, "could not check the heads of watched vaults");
            }
        }
    })
    .abort_handle()
}

/// Announces each stable head this node's watchers may have missed.
async fn sweep(core: &Core, rooms: &Rooms) -> Result<(), AppError> {
    let vaults = rooms.local_vaults().await;
    let heads = events::heads(&core.db, &vaults).await?;
    for (vault_id, seq) in core.heads.sweep(&heads) {
        announce(core, rooms, vault_id, seq);
    }
    Ok(())
}

/// After Redis came back: this node's watchers may have missed removals,
/// logouts and events of other nodes. Each vault's watchers are checked,
/// told its head, and sent a fresh presence.
async fn after_reconnect(core: &Core, rooms: &Rooms) -> Result<(), AppError> {
    let vaults = rooms.local_vaults().await;
    tracing::info!(
        vaults = vaults.len(),
        "announcing heads after the Redis reconnect"
    );
    for vault_id in &vaults {
        let allowed = auth::live_member_sessions(&core.db, vault_id).await?;
        rooms.enforce_local(vault_id, &allowed);
    }
    let heads = events::heads(&core.db, &vaults).await?;
    for (vault_id, seq) in heads {
        core.request_presence(vault_id.clone());
        announce(core, rooms, vault_id, seq);
    }
    Ok(())
}

fn announce(core: &Core, rooms: &Rooms, vault_id: String, seq: i64) {
    core.heads.delivered(&vault_id, seq);
    let head = Head {
        vault_id: vault_id.clone(),
        seq,
    };
    match serde_json::to_value(&head) {
        Ok(payload) => rooms.emit_local(vault_room(&vault_id), signals::VAULT_HEAD, &payload),
        Err(error) => tracing::error!(%error, "vault:head unserializable"),
    }
}
