//! The catch-up rules of docs/protocol.md ("Catching up"), written once for
//! every Rust client: the CLI's `watch`, the terminal client and the tests'
//! watchers hand a follower what their socket reports and get back only
//! applied events, each exactly once and in seq order.
//!
//! - [`Follower`] is the rules without any I/O: for each followed vault, the
//!   last applied seq and the events that arrived ahead of a missing one (a
//!   [`Sequencer`]); the gap rule (a vault is *behind* while events are
//!   held back, or a completed join or a `vault:head` announced a head
//!   beyond what was applied; behind for [`GAP_WAIT`], it is rejoined from
//!   its last applied seq, again every [`GAP_WAIT`] while it stays behind);
//!   resync (continue from the announced head, the application reloads its
//!   snapshot); removal and deletion (the vault is no longer followed).
//!   The terminal client drives it from its own event loop.
//! - [`Follow`] runs a [`Follower`] over a
//!   [`SocketClient`](crate::socket::SocketClient): it joins,
//!   reports each applied seq to the socket (so that every rejoin, after a
//!   reconnect or a `vault:head`, asks for exactly what is missing), and
//!   rejoins a vault that stays behind. The CLI and the tests use it.

mod follow;

use std::collections::BTreeMap;
use std::time::Duration;

use syncscript_protocol::{Head, Joined, Resync, names};
use tokio::time::Instant;

use crate::sequencer::{Offered, Sequenced, Sequencer};
pub use follow::{Follow, Update};

/// How long a vault may stay behind before it is rejoined: long enough for
/// an event still on its way from another node to arrive.
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// The catch-up state of the vaults one socket follows.
#[derive(Debug, Clone)]
pub struct Follower {
    vaults: BTreeMap<String, Followed>,
    gap_wait: Duration,
}

#[derive(Debug, Clone)]
struct Followed {
    sequencer: Sequencer,
    /// The highest head the server announced (a completed join, a
    /// `vault:head`, a resync).
    head: i64,
    /// Since when the vault has been behind, or since its last rejoin.
    behind_since: Option<Instant>,
}

impl Followed {
    fn behind(&self) -> bool {
        self.sequencer.has_gap() || self.head > self.sequencer.last()
    }

    /// Starts or stops the wait of the gap rule after a change.
    fn update(&mut self, now: Instant) {
        self.behind_since = match (self.behind(), self.behind_since) {
            (false, _) => None,
            (true, Some(since)) => Some(since),
            (true, None) => Some(now),
        };
    }
}

/// A vault to rejoin from its last applied seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin {
    pub vault_id: String,
    pub since: i64,
}

impl Follower {
    /// A follower that rejoins a vault behind for `gap_wait`.
    pub fn new(gap_wait: Duration) -> Follower {
        Follower {
            vaults: BTreeMap::new(),
            gap_wait,
        }
    }

    /// Follows `vault_id` from `since` (the seq of the snapshot the
    /// application holds, 0 for none); following it again starts over.
    pub fn follow(&mut self, vault_id: &str, since: i64) {
        self.vaults.insert(
            vault_id.to_owned(),
            Followed {
                sequencer: Sequencer::new(since),
                head: since,
                behind_since: None,
            },
        );
    }

    /// Stops following `vault_id`.
    pub fn unfollow(&mut self, vault_id: &str) {
        self.vaults.remove(vault_id);
    }

    /// Whether `vault_id` is followed.
    pub fn follows(&self, vault_id: &str) -> bool {
        self.vaults.contains_key(vault_id)
    }

    /// The last applied seq of `vault_id`: what a rejoin passes as `since`.
    pub fn last(&self, vault_id: &str) -> Option<i64> {
        Some(self.vaults.get(vault_id)?.sequencer.last())
    }

    /// Whether `vault_id` is behind (see the module documentation).
    pub fn is_behind(&self, vault_id: &str) -> bool {
        self.vaults.get(vault_id).is_some_and(Followed::behind)
    }

    /// Takes a sequenced event of `vault_id`, live or replayed: the events
    /// it makes applied, in seq order (none for a duplicate or an event
    /// that came early). `None` when the vault is not followed: such an
    /// event is not the application's. After `vault:deleted` is applied the
    /// vault is no longer followed.
    pub fn event(
        &mut self,
        vault_id: &str,
        event: Sequenced,
        now: Instant,
    ) -> Option<Vec<Sequenced>> {
        let vault = self.vaults.get_mut(vault_id)?;
        let applied = match vault.sequencer.offer(event.seq, event) {
            Offered::Ready(events) => events,
            Offered::Buffered | Offered::Duplicate => Vec::new(),
        };
        vault.update(now);
        if applied
            .iter()
            .any(|event| event.name == names::VAULT_DELETED)
        {
            self.vaults.remove(vault_id);
        }
        Some(applied)
    }

    /// `vault:joined`: the join's replay is complete, so a head beyond what
    /// was applied is a gap.
    pub fn joined(&mut self, joined: &Joined, now: Instant) {
        self.announced(&joined.vault_id, joined.seq, now);
    }

    /// `vault:head`: whether the vault is behind the announced head (the
    /// socket then rejoins by itself).
    pub fn head(&mut self, head: &Head, now: Instant) -> bool {
        self.announced(&head.vault_id, head.seq, now);
        self.vaults
            .get(&head.vault_id)
            .is_some_and(|vault| head.seq > vault.sequencer.last())
    }

    fn announced(&mut self, vault_id: &str, head: i64, now: Instant) {
        if let Some(vault) = self.vaults.get_mut(vault_id) {
            vault.head = vault.head.max(head);
            vault.update(now);
        }
    }

    /// `vault:resync`: the events up to its seq are no longer replayed; the
    /// vault continues from there (the application reloads its snapshot),
    /// and the held events now next are applied.
    pub fn resync(&mut self, resync: &Resync, now: Instant) -> Vec<Sequenced> {
        let Some(vault) = self.vaults.get_mut(&resync.vault_id) else {
            return Vec::new();
        };
        let applied = vault.sequencer.reset(resync.seq);
        vault.head = vault.head.max(resync.seq);
        vault.update(now);
        applied
    }

    /// The vaults behind for the gap wait at `now`, to rejoin from their
    /// last applied seq; their wait starts again.
    pub fn due(&mut self, now: Instant) -> Vec<Rejoin> {
        let mut due = Vec::new();
        for (vault_id, vault) in &mut self.vaults {
            if vault
                .behind_since
                .is_some_and(|since| now >= since + self.gap_wait)
            {
                vault.behind_since = Some(now);
                due.push(Rejoin {
                    vault_id: vault_id.clone(),
                    since: vault.sequencer.last(),
                });
            }
        }
        due
    }

    /// When [`Follower::due`] next has something, if ever.
    pub fn next_due(&self) -> Option<Instant> {
        self.vaults
            .values()
            .filter_map(|vault| vault.behind_since)
            .min()
            .map(|since| since + self.gap_wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncscript_protocol::Role;

    fn event(seq: i64) -> Sequenced {
        Sequenced {
            name: names::SOURCE_CREATED.into(),
            seq,
            payload: serde_json::Value::Null,
        }
    }

    fn seqs(events: Option<Vec<Sequenced>>) -> Vec<i64> {
        events
            .unwrap_or_default()
            .iter()
            .map(|event| event.seq)
            .collect()
    }

    fn joined(seq: i64) -> Joined {
        Joined {
            vault_id: "v".into(),
            role: Role::Viewer,
            seq,
        }
    }

    #[test]
    fn events_are_applied_once_in_order() {
        let now = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 2);
        assert_eq!(seqs(follower.event("v", event(2), now)), Vec::<i64>::new());
        assert_eq!(seqs(follower.event("v", event(4), now)), Vec::<i64>::new());
        assert!(follower.is_behind("v"), "seq 3 is missing");
        assert_eq!(seqs(follower.event("v", event(3), now)), [3, 4]);
        assert_eq!(seqs(follower.event("v", event(4), now)), Vec::<i64>::new());
        assert!(!follower.is_behind("v"));
        assert_eq!(follower.last("v"), Some(4));
        assert!(follower.event("elsewhere", event(1), now).is_none());
    }

    #[test]
    fn a_vault_behind_for_the_gap_wait_is_rejoined_from_its_last_seq() {
        let start = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 0);
        follower.event("v", event(1), start);
        follower.event("v", event(3), start);
        assert_eq!(follower.next_due(), Some(start + GAP_WAIT));
        assert!(follower.due(start + GAP_WAIT / 2).is_empty());
        let rejoin = Rejoin {
            vault_id: "v".into(),
            since: 1,
        };
        assert_eq!(
            follower.due(start + GAP_WAIT),
            std::slice::from_ref(&rejoin)
        );
        // Still behind: rejoined again a whole wait later, not before.
        assert!(follower.due(start + GAP_WAIT + GAP_WAIT / 2).is_empty());
        assert_eq!(follower.due(start + GAP_WAIT * 2), [rejoin]);
        follower.event("v", event(2), start + GAP_WAIT * 2);
        assert_eq!(follower.next_due(), None, "the gap is filled");
    }

    #[test]
    fn a_join_or_head_beyond_what_was_applied_is_a_gap() {
        let now = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 5);
        follower.joined(&joined(5), now);
        assert!(!follower.is_behind("v"));
        follower.joined(&joined(7), now);
        assert!(follower.is_behind("v"), "events 6 and 7 never came");
        assert_eq!(seqs(follower.event("v", event(6), now)), [6]);
        assert_eq!(seqs(follower.event("v", event(7), now)), [7]);
        assert!(!follower.is_behind("v"));
        let head = Head {
            vault_id: "v".into(),
            seq: 8,
        };
        assert!(follower.head(&head, now));
        assert!(follower.is_behind("v"));
    }

    #[test]
    fn a_resync_continues_from_its_seq_and_deletion_ends_the_follow() {
        let now = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 0);
        follower.event("v", event(41), now);
        let resync = Resync {
            vault_id: "v".into(),
            seq: 40,
        };
        let applied: Vec<i64> = follower
            .resync(&resync, now)
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(applied, [41], "the held event is next after the resync");
        assert!(!follower.is_behind("v"));
        let deleted = Sequenced {
            name: names::VAULT_DELETED.into(),
            seq: 42,
            payload: serde_json::Value::Null,
        };
        assert_eq!(seqs(follower.event("v", deleted, now)), [42]);
        assert!(!follower.follows("v"));
    }
}
