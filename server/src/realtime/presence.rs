//! The `presence` signal: who watches a vault, with how many sockets.
//!
//! Changes (joins, leaves, disconnects, role changes, evictions) only ask
//! for a signal ([`Core::request_presence`](crate::state::Core)); this task
//! coalesces the requests of a short window into one signal per vault, so a
//! reconnect storm sends one signal, not one per socket. Counts come from
//! the adapter's rooms, so they cover every node, in one adapter request
//! per vault.

use std::collections::BTreeSet;
use std::time::Duration;

use sqlx::AnyPool;
use syncscript_protocol::{Presence, PresenceEntry, signals};
use tokio::sync::mpsc;

use crate::auth;
use crate::error::AppError;
use crate::members;
use crate::realtime::rooms::Rooms;

/// Delay that coalesces bursts of presence changes into one signal.
const PRESENCE_DEBOUNCE: Duration = Duration::from_millis(50);

/// Starts the task that answers presence requests. The server aborts it
/// before it closes its database pool (the task's own `Rooms` keeps the
/// requests channel open, so it would not end by itself).
pub fn spawn(
    db: AnyPool,
    rooms: Rooms,
    mut requests: mpsc::UnboundedReceiver<String>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        while let Some(first) = requests.recv().await {
            tokio::time::sleep(PRESENCE_DEBOUNCE).await;
            let mut due = BTreeSet::from([first]);
            while let Ok(vault_id) = requests.try_recv() {
                due.insert(vault_id);
            }
            // Batches run one after the other, so a later signal never
            // overtakes an earlier one for the same vault.
            for vault_id in due {
                if let Err(error) = send(&db, &rooms, &vault_id).await {
                    tracing::warn!(%error, %vault_id, "could not compute presence");
                }
            }
        }
    })
    .abort_handle()
}

/// Counts each member's watchers (one adapter request for the vault) and
/// signals the result to the vault's room.
async fn send(db: &AnyPool, rooms: &Rooms, vault_id: &str) -> Result<(), AppError> {
    let (counts, error) = rooms.watchers(vault_id).await;
    if let Some(error) = error {
        tracing::warn!(%error, %vault_id, "presence counts this node's watchers only");
    }
    let mut members = members::list(db, vault_id).await?;
    members.sort_by(|a, b| (&a.name, &a.user_id).cmp(&(&b.name, &b.user_id)));
    let present = members
        .into_iter()
        .filter_map(|member| {
            let connections = *counts.get(&member.user_id)?;
            Some(PresenceEntry {
                user_id: member.user_id,
                user_name: member.name,
                role: member.role,
                connections,
            })
        })
        .collect();
    let presence = Presence {
        vault_id: vault_id.to_owned(),
        present,
    };
    let payload = serde_json::to_value(&presence).map_err(|e| AppError::Internal(e.into()))?;
    rooms
        .broadcast_to_vault(
            vault_id,
            signals::PRESENCE,
            &payload,
            auth::live_member_sessions(db, vault_id),
        )
        .await;
    Ok(())
}
