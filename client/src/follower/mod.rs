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
//!   resync and snapshots (continue from their seq). It holds whatever the
//!   application orders (raw [`Sequenced`] events, or the terminal client's
//!   typed ones) and runs on the application's clock ([`Moment`]): the
//!   terminal client drives it from its own event loop, on its own clock.
//! - [`Follow`] runs a [`Follower`] over a
//!   [`SocketClient`](crate::socket::SocketClient): it joins,
//!   reports each applied seq to the socket (so that every rejoin, after a
//!   reconnect or a `vault:head`, asks for exactly what is missing), and
//!   rejoins a vault that stays behind, and stops following a vault that
//!   was deleted or that the user was removed from. The CLI and the tests
//!   use it.

mod follow;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use syncscript_protocol::{Head, Joined};
use tokio::time::Instant;

use crate::sequencer::{Offered, Sequenced, Sequencer};
pub use follow::{Follow, MAX_REJOINS, Update};

/// How long a vault may stay behind before it is rejoined: long enough for
/// an event still on its way from another node to arrive.
pub const GAP_WAIT: Duration = Duration::from_secs(1);

/// A moment on the clock a [`Follower`] runs on.
pub trait Moment: Copy + Ord {
    /// The moment `wait` later.
    fn after(self, wait: Duration) -> Self;
}

impl Moment for Instant {
    fn after(self, wait: Duration) -> Instant {
        self + wait
    }
}

impl Moment for DateTime<Utc> {
    fn after(self, wait: Duration) -> DateTime<Utc> {
        chrono::Duration::from_std(wait).map_or(DateTime::<Utc>::MAX_UTC, |wait| self + wait)
    }
}

/// The catch-up state of the vaults one socket follows, holding `T`s, on
/// the clock of `M`.
#[derive(Debug, Clone, PartialEq)]
pub struct Follower<T = Sequenced, M = Instant> {
    vaults: BTreeMap<String, Followed<T, M>>,
    gap_wait: Duration,
}

#[derive(Debug, Clone, PartialEq)]
struct Followed<T, M> {
    sequencer: Sequencer<T>,
    /// The highest head the server announced (a completed join, a
    /// `vault:head`, a resync).
    head: i64,
    /// Since when the vault has been behind, or since its last rejoin.
    behind_since: Option<M>,
    /// Rejoins asked for since the vault was last not behind.
    rejoins: u32,
}

impl<T, M: Moment> Followed<T, M> {
    fn behind(&self) -> bool {
        self.sequencer.has_gap() || self.head > self.sequencer.last()
    }

    /// Starts or stops the wait of the gap rule after a change.
    fn update(&mut self, now: M) {
        self.behind_since = match (self.behind(), self.behind_since) {
            (false, _) => None,
            (true, Some(since)) => Some(since),
            (true, None) => Some(now),
        };
        if self.behind_since.is_none() {
            self.rejoins = 0;
        }
    }
}

/// A vault to rejoin from its last applied seq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejoin {
    pub vault_id: String,
    pub since: i64,
    /// How many rejoins in a row this vault has needed (1 for the first):
    /// an application that can reload a snapshot does so when rejoins do
    /// not help.
    pub attempt: u32,
}

impl<T, M: Moment> Follower<T, M> {
    /// A follower that rejoins a vault behind for `gap_wait`.
    pub fn new(gap_wait: Duration) -> Follower<T, M> {
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
                rejoins: 0,
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

    /// Takes the sequenced event `item` numbered `seq` of `vault_id`, live
    /// or replayed: [`Offered::Ready`] with the events it makes applied, in
    /// seq order, or why none is. `None` when the vault is not followed:
    /// such an event is not the application's.
    pub fn event(&mut self, vault_id: &str, seq: i64, item: T, now: M) -> Option<Offered<T>> {
        let vault = self.vaults.get_mut(vault_id)?;
        let offered = vault.sequencer.offer(seq, item);
        vault.update(now);
        Some(offered)
    }

    /// `vault:joined`: the join's replay is complete, so a head beyond what
    /// was applied is a gap.
    pub fn joined(&mut self, joined: &Joined, now: M) {
        self.announced(&joined.vault_id, joined.seq, now);
    }

    /// `vault:head`: whether the vault is behind the announced head (the
    /// socket then rejoins by itself).
    pub fn head(&mut self, head: &Head, now: M) -> bool {
        self.announced(&head.vault_id, head.seq, now);
        self.vaults
            .get(&head.vault_id)
            .is_some_and(|vault| head.seq > vault.sequencer.last())
    }

    fn announced(&mut self, vault_id: &str, head: i64, now: M) {
        if let Some(vault) = self.vaults.get_mut(vault_id) {
            vault.head = vault.head.max(head);
            vault.update(now);
        }
    }

    /// Continues `vault_id` from `seq`: after a `vault:resync` (the events
    /// up to it are no longer replayed) or a fresh snapshot taken at it.
    /// Returns the held events now next, applied.
    pub fn reset(&mut self, vault_id: &str, seq: i64, now: M) -> Vec<T> {
        let Some(vault) = self.vaults.get_mut(vault_id) else {
            return Vec::new();
        };
        let applied = vault.sequencer.reset(seq);
        vault.head = vault.head.max(seq);
        vault.update(now);
        applied
    }

    /// How many events of `vault_id` are held back behind a missing one.
    pub fn buffered(&self, vault_id: &str) -> usize {
        self.vaults
            .get(vault_id)
            .map_or(0, |vault| vault.sequencer.buffered())
    }

    /// The vaults behind for the gap wait at `now`, to rejoin from their
    /// last applied seq; their wait starts again.
    pub fn due(&mut self, now: M) -> Vec<Rejoin> {
        let mut due = Vec::new();
        for (vault_id, vault) in &mut self.vaults {
            if vault
                .behind_since
                .is_some_and(|since| now >= since.after(self.gap_wait))
            {
                vault.behind_since = Some(now);
                vault.rejoins += 1;
                due.push(Rejoin {
                    vault_id: vault_id.clone(),
                    since: vault.sequencer.last(),
                    attempt: vault.rejoins,
                });
            }
        }
        due
    }

    /// When [`Follower::due`] next has something, if ever.
    pub fn next_due(&self) -> Option<M> {
        self.vaults
            .values()
            .filter_map(|vault| vault.behind_since)
            .min()
            .map(|since| since.after(self.gap_wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncscript_protocol::{Resync, Role};

    fn offer(follower: &mut Follower<i64>, seq: i64, now: Instant) -> Vec<i64> {
        match follower.event("v", seq, seq, now) {
            Some(Offered::Ready(seqs)) => seqs,
            _ => Vec::new(),
        }
    }

    fn joined(seq: i64) -> Joined {
        Joined {
            vault_id: "v".into(),
            role: Role::Viewer,
            seq,
        }
    }

    fn rejoin(since: i64, attempt: u32) -> Rejoin {
        Rejoin {
            vault_id: "v".into(),
            since,
            attempt,
        }
    }

    #[test]
    fn events_are_applied_once_in_order() {
        let now = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 2);
        assert_eq!(follower.event("v", 2, 2, now), Some(Offered::Duplicate));
        assert_eq!(follower.event("v", 4, 4, now), Some(Offered::Buffered));
        assert!(follower.is_behind("v"), "seq 3 is missing");
        assert_eq!(follower.buffered("v"), 1);
        assert_eq!(offer(&mut follower, 3, now), [3, 4]);
        assert_eq!(follower.event("v", 4, 4, now), Some(Offered::Duplicate));
        assert!(!follower.is_behind("v"));
        assert_eq!(follower.last("v"), Some(4));
        assert!(follower.event("elsewhere", 1, 1, now).is_none());
    }

    #[test]
    fn a_vault_behind_for_the_gap_wait_is_rejoined_from_its_last_seq() {
        let start = Instant::now();
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow("v", 0);
        offer(&mut follower, 1, start);
        offer(&mut follower, 3, start);
        assert_eq!(follower.next_due(), Some(start + GAP_WAIT));
        assert!(follower.due(start + GAP_WAIT / 2).is_empty());
        assert_eq!(follower.due(start + GAP_WAIT), [rejoin(1, 1)]);
        // Still behind: rejoined again a whole wait later, not before.
        assert!(follower.due(start + GAP_WAIT + GAP_WAIT / 2).is_empty());
        assert_eq!(follower.due(start + GAP_WAIT * 2), [rejoin(1, 2)]);
        offer(&mut follower, 2, start + GAP_WAIT * 2);
        assert_eq!(follower.next_due(), None, "the gap is filled");
        // A new gap counts its rejoins from one again.
        offer(&mut follower, 5, start + GAP_WAIT * 3);
        assert_eq!(follower.due(start + GAP_WAIT * 4), [rejoin(3, 1)]);
    }

    #[test]
    fn a_join_or_head_beyond_what_was_applied_is_a_gap() {
        let now = Instant::now();
        let mut follower: Follower<i64> = Follower::new(GAP_WAIT);
        follower.follow("v", 5);
        follower.joined(&joined(5), now);
        assert!(!follower.is_behind("v"));
        follower.joined(&joined(7), now);
        assert!(follower.is_behind("v"), "events 6 and 7 never came");
        assert_eq!(offer(&mut follower, 6, now), [6]);
        assert_eq!(offer(&mut follower, 7, now), [7]);
        assert!(!follower.is_behind("v"));
        let head = Head {
            vault_id: "v".into(),
            seq: 8,
        };
        assert!(follower.head(&head, now));
        assert!(follower.is_behind("v"));
    }

    #[test]
    fn a_reset_continues_from_its_seq() {
        let now = Instant::now();
        let mut follower: Follower<i64> = Follower::new(GAP_WAIT);
        follower.follow("v", 0);
        offer(&mut follower, 41, now);
        let resync = Resync {
            vault_id: "v".into(),
            seq: 40,
        };
        let applied = follower.reset(&resync.vault_id, resync.seq, now);
        assert_eq!(applied, [41], "the held event is next after the resync");
        assert!(!follower.is_behind("v"));
        assert_eq!(follower.last("v"), Some(41));
    }

    #[test]
    fn the_terminal_clients_clock_works_too() {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let mut follower: Follower<i64, DateTime<Utc>> = Follower::new(GAP_WAIT);
        follower.follow("v", 0);
        follower.event("v", 2, 2, start);
        assert!(follower.due(start.after(GAP_WAIT / 2)).is_empty());
        assert_eq!(follower.due(start.after(GAP_WAIT)), [rejoin(0, 1)]);
    }
}
