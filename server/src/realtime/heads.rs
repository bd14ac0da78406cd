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

use std::collections::HashMap;
use std::sync::Mutex;

use syncscript_protocol::{Head, signals, vault_room};

use crate::auth;
use crate::error::AppError;
use crate::events;
use crate::realtime::cluster::Link;
use crate::realtime::rooms::Rooms;
use crate::state::Core;

/// What this node knows of the heads of the vaults its sockets watch.
#[derive(Debug, Default)]
pub struct Heads {
    vaults: Mutex<HashMap<String, Known>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Known {
    /// The last seq this node published or announced to the vault's room.
    announced: i64,
    /// The head the last sweep read.
    swept: Option<i64>,
}

impl Heads {
    /// This node published or announced `seq` to the vault's room.
    pub fn delivered(&self, vault_id: &str, seq: i64) {
        if let Ok(mut vaults) = self.vaults.lock() {
            let known = vaults.entry(vault_id.to_owned()).or_default();
            known.announced = known.announced.max(seq);
        }
    }

    /// Records a sweep's reading of the heads of the vaults watched here
    /// (forgetting the others); returns the heads to announce.
    fn sweep(&self, heads: &HashMap<String, i64>) -> Vec<(String, i64)> {
        let Ok(mut vaults) = self.vaults.lock() else {
            return Vec::new();
        };
        vaults.retain(|vault_id, _| heads.contains_key(vault_id));
        let mut due = Vec::new();
        for (vault_id, &head) in heads {
            let known = vaults.entry(vault_id.clone()).or_default();
            if head > known.announced && known.swept == Some(head) {
                due.push((vault_id.clone(), head));
            }
            known.swept = Some(head);
        }
        due
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_announced_once_it_is_stable_and_ahead() {
        let heads = Heads::default();
        let reading = |pairs: &[(&str, i64)]| -> HashMap<String, i64> {
            pairs.iter().map(|(v, s)| ((*v).to_owned(), *s)).collect()
        };
        heads.delivered("a", 3);
        // First reading: nothing is known to be stable yet.
        assert!(heads.sweep(&reading(&[("a", 4), ("b", 2)])).is_empty());
        // Stable and ahead: announced. "a" moved on: wait one more period.
        let mut due = heads.sweep(&reading(&[("a", 5), ("b", 2)]));
        assert_eq!(due, vec![("b".to_owned(), 2)]);
        heads.delivered("b", 2);
        due = heads.sweep(&reading(&[("a", 5), ("b", 2)]));
        assert_eq!(due, vec![("a".to_owned(), 5)]);
        heads.delivered("a", 5);
        assert!(heads.sweep(&reading(&[("a", 5), ("b", 2)])).is_empty());
        // A vault no longer watched here is forgotten.
        heads.sweep(&reading(&[("b", 2)]));
        assert!(!heads.vaults.lock().unwrap().contains_key("a"));
    }
}
