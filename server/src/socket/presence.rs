//! The `presence` signal: who watches a vault, with how many sockets.
//!
//! Changes (joins, leaves, disconnects, role changes, evictions) only ask
//! for a signal ([`Fanout::request_presence`](crate::fanout::Fanout::request_presence)); this task
//! coalesces the requests of a short window into one signal per vault, so a
//! reconnect storm sends one signal, not one per socket, and spaces a
//! vault's signals by its number of watchers. Counts come from
//! the adapter's rooms, so they cover every node, in one adapter request
//! per vault.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use sqlx::AnyPool;
use syncscript_protocol::{Presence, PresenceEntry, signals};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::error::AppError;
use crate::fanout::members::live_sessions;
use crate::fanout::rooms::Rooms;
use crate::members;

/// Delay that coalesces bursts of presence changes into one signal.
const PRESENCE_DEBOUNCE: Duration = Duration::from_millis(50);
/// After a signal, the vault's next one waits this long per watcher of the
/// vault (between [`PRESENCE_DEBOUNCE`] and [`PRESENCE_MAX_QUIET`]): a
/// signal costs one message per watcher, so a vault's presence costs at
/// most about 10,000 messages a second, however many sockets join at once.
/// Without it, 10,000 sockets joining one vault made the presence of every
/// 50 ms go to thousands of sockets: 46 s to join them all, 7 s with it
/// (README, Performance).
const PRESENCE_QUIET_PER_WATCHER: Duration = Duration::from_micros(100);
/// The longest a vault's presence waits after its previous signal.
const PRESENCE_MAX_QUIET: Duration = Duration::from_secs(2);

/// Starts the task that answers presence requests. The server aborts it
/// before it closes its database pool (the task's own `Rooms` keeps the
/// requests channel open, so it would not end by itself).
pub fn spawn(
    db: AnyPool,
    rooms: Rooms,
    mut requests: mpsc::UnboundedReceiver<String>,
) -> tokio::task::AbortHandle {
    tokio::spawn(async move {
        let mut schedule = Schedule::default();
        loop {
            let wake = schedule.next();
            tokio::select! {
                request = requests.recv() => match request {
                    Some(vault_id) => schedule.request(vault_id, Instant::now()),
                    None => break,
                },
                () = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {
                    // Vaults run one after the other, so a later signal
                    // never overtakes an earlier one for the same vault.
                    for vault_id in schedule.take_due(Instant::now()) {
                        match send(&db, &rooms, &vault_id).await {
                            Ok(watchers) => schedule.sent(vault_id, Instant::now(), watchers),
                            Err(error) => {
                                tracing::warn!(%error, %vault_id, "could not compute presence");
                            }
                        }
                    }
                }
            }
        }
    })
    .abort_handle()
}

/// When each vault's next presence signal is due.
#[derive(Debug, Default)]
struct Schedule {
    /// Vaults whose watchers changed, and when their signal goes.
    due: HashMap<String, Instant>,
    /// Vaults recently signalled, and until when their next signal waits.
    quiet: HashMap<String, Instant>,
}

impl Schedule {
    /// The vault's watchers changed at `now`.
    fn request(&mut self, vault_id: String, now: Instant) {
        let quiet_until = self.quiet.get(&vault_id).copied();
        self.due.entry(vault_id).or_insert_with(|| {
            let debounced = now + PRESENCE_DEBOUNCE;
            quiet_until.map_or(debounced, |until| until.max(debounced))
        });
    }

    /// When the earliest signal is due.
    fn next(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    /// The vaults due at `now`, in a stable order; they leave the schedule.
    fn take_due(&mut self, now: Instant) -> BTreeSet<String> {
        self.quiet.retain(|_, until| *until > now);
        let due: BTreeSet<String> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(vault_id, _)| vault_id.clone())
            .collect();
        for vault_id in &due {
            self.due.remove(vault_id);
        }
        due
    }

    /// The vault's signal went to `watchers` sockets at `now`.
    fn sent(&mut self, vault_id: String, now: Instant, watchers: u32) {
        let quiet =
            (PRESENCE_QUIET_PER_WATCHER * watchers).clamp(PRESENCE_DEBOUNCE, PRESENCE_MAX_QUIET);
        self.quiet.insert(vault_id, now + quiet);
    }
}

/// Counts each member's watchers (one adapter request for the vault) and
/// signals the result to the vault's room; returns how many sockets watch.
async fn send(db: &AnyPool, rooms: &Rooms, vault_id: &str) -> Result<u32, AppError> {
    let (counts, error) = rooms.watchers(vault_id).await;
    if let Some(error) = error {
        tracing::warn!(%error, %vault_id, "presence counts this node's watchers only");
    }
    let mut members = members::list(db, vault_id).await?;
    members.sort_by(|a, b| (&a.name, &a.user_id).cmp(&(&b.name, &b.user_id)));
    let watchers = counts.values().sum();
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
            live_sessions(db, vault_id),
        )
        .await;
    Ok(watchers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crowded_vault_waits_longer_for_its_next_signal() {
        let start = Instant::now();
        let mut schedule = Schedule::default();
        schedule.request("small".into(), start);
        schedule.request("crowded".into(), start);
        schedule.request("crowded".into(), start + Duration::from_millis(10));
        assert_eq!(schedule.next(), Some(start + PRESENCE_DEBOUNCE));
        let sent_at = start + PRESENCE_DEBOUNCE;
        assert_eq!(schedule.take_due(sent_at).len(), 2);
        schedule.sent("small".into(), sent_at, 3);
        schedule.sent("crowded".into(), sent_at, 10_000);
        schedule.request("small".into(), sent_at);
        schedule.request("crowded".into(), sent_at);
        assert_eq!(schedule.due["small"], sent_at + PRESENCE_DEBOUNCE);
        assert_eq!(schedule.due["crowded"], sent_at + Duration::from_secs(1));
        let later = sent_at + PRESENCE_DEBOUNCE;
        assert_eq!(
            schedule.take_due(later),
            BTreeSet::from(["small".to_owned()])
        );
        assert_eq!(schedule.next(), Some(sent_at + Duration::from_secs(1)));
    }
}
