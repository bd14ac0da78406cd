//! In-order publishing on this node: every socket receives a vault's
//! sequenced events in seq order, whatever the concurrency of writers.
//!
//! Seq order is commit order (the vault row's lock), but the tasks that
//! committed race to their broadcasts: with two of them emitting to the same
//! thousand sockets at once, some sockets got seq 6 before seq 5. So each
//! mutation takes a [`Ticket`] for its seq right after reserving it (still
//! under the row lock, hence in seq order), and a vault's events leave this
//! node through its *line*: an event is broadcast only once every earlier
//! ticket of the vault on this node has been broadcast or given up (its
//! transaction rolled back, and its seq will be reserved again).
//!
//! The line's *gate* is held while broadcasting, and by a join that replays
//! the tail of a catch-up ([`Lines::hold`]): nothing is broadcast to the
//! vault from this node meanwhile, so the replayed events reach the socket
//! before any live one that follows them.
//!
//! Events committed on other nodes reach this node's sockets through the
//! adapter in the order their node published them; across nodes, clients
//! order by seq.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use crate::fanout::publish::Committed;

/// The lines of the vaults this node is publishing to.
#[derive(Debug, Default)]
pub struct Lines {
    lines: Mutex<HashMap<String, Arc<Line>>>,
    /// Tells the reservations of one seq apart (a rolled-back seq is
    /// reserved again by the next mutation).
    reservations: AtomicU64,
}

/// One vault's events waiting to be broadcast from this node.
#[derive(Debug, Default)]
struct Line {
    /// Reserved seqs, in order, with their event once committed.
    pending: Mutex<BTreeMap<i64, Slot>>,
    /// Held while broadcasting, and while a join replays its tail.
    gate: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct Slot {
    reservation: u64,
    event: Option<Committed>,
}

impl Lines {
    /// Reserves `seq` in the vault's line. Call it while the transaction
    /// that reserved the seq holds the vault's row lock, so that tickets
    /// are taken in seq order.
    pub fn reserve(self: &Arc<Lines>, vault_id: &str, seq: i64) -> Ticket {
        let line = self.line(vault_id);
        let reservation = self.reservations.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut pending) = line.pending.lock() {
            pending.insert(
                seq,
                Slot {
                    reservation,
                    event: None,
                },
            );
        }
        Ticket {
            lines: self.clone(),
            line,
            vault_id: vault_id.to_owned(),
            seq,
            reservation,
            committed: false,
        }
    }

    /// Stops this node's broadcasts to the vault until the [`Hold`] is
    /// dropped (the tail of a join's catch-up).
    pub async fn hold(self: &Arc<Lines>, vault_id: &str) -> Hold {
        let line = self.line(vault_id);
        let guard = line.gate.clone().lock_owned().await;
        Hold {
            lines: self.clone(),
            line,
            vault_id: vault_id.to_owned(),
            _guard: guard,
        }
    }

    /// The last seq up to `head` that is no longer in the vault's line now:
    /// it has been broadcast from this node, or is being broadcast, so a
    /// socket that joins the room later will not receive it live. The bulk
    /// of a catch-up stops there (replaying further could send an event
    /// that then also arrives live).
    pub fn sent_through(&self, vault_id: &str, head: i64) -> i64 {
        let line = self
            .lines
            .lock()
            .ok()
            .and_then(|lines| lines.get(vault_id).cloned());
        line.map_or(head, |line| line.sent_through(head))
    }

    fn line(&self, vault_id: &str) -> Arc<Line> {
        match self.lines.lock() {
            Ok(mut lines) => lines.entry(vault_id.to_owned()).or_default().clone(),
            // A poisoned map still orders this caller's own events.
            Err(_) => Arc::default(),
        }
    }

    /// Forgets the vault's line once nothing is pending and nobody else
    /// holds it (the caller holds one reference, the map another).
    fn release(&self, vault_id: &str, line: &Arc<Line>) {
        let Ok(mut lines) = self.lines.lock() else {
            return;
        };
        let idle = line.pending.lock().is_ok_and(|pending| pending.is_empty());
        if idle && Arc::strong_count(line) == 2 {
            lines.remove(vault_id);
        }
    }
}

/// A seq reserved in its vault's line. Dropped without [`Ticket::publish`]
/// (the mutation failed), it gives its place up.
#[derive(Debug)]
pub struct Ticket {
    lines: Arc<Lines>,
    line: Arc<Line>,
    vault_id: String,
    seq: i64,
    reservation: u64,
    committed: bool,
}

impl Ticket {
    /// The vault whose seq this is.
    pub fn vault_id(&self) -> &str {
        &self.vault_id
    }

    /// Hands the committed event to the line, then broadcasts, with
    /// `broadcast`, every event at the head of the line that is ready (this
    /// one, once every earlier one has gone; a later one's task may find it
    /// ready and broadcast it first).
    pub async fn publish<F, Fut>(mut self, event: Committed, broadcast: F)
    where
        F: Fn(Committed) -> Fut,
        Fut: Future<Output = ()>,
    {
        let unqueued = match self.line.pending.lock() {
            Ok(mut pending) => match pending.get_mut(&self.seq) {
                Some(slot) if slot.reservation == self.reservation => {
                    slot.event = Some(event);
                    self.committed = true;
                    None
                }
                _ => Some(event),
            },
            Err(_) => Some(event),
        };
        if let Some(event) = unqueued {
            // The slot is gone (a poisoned line): broadcast out of line
            // rather than lose the event.
            broadcast(event).await;
            return;
        }
        let _gate = self.line.gate.lock().await;
        while let Some(ready) = self.next_ready() {
            broadcast(ready).await;
        }
    }

    fn next_ready(&self) -> Option<Committed> {
        let mut pending = self.line.pending.lock().ok()?;
        let first = pending.first_entry()?;
        // Not committed yet: everything behind it waits.
        first.get().event.as_ref()?;
        first.remove().event
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.committed
            && let Ok(mut pending) = self.line.pending.lock()
            && pending
                .get(&self.seq)
                .is_some_and(|slot| slot.reservation == self.reservation)
        {
            pending.remove(&self.seq);
        }
        self.lines.release(&self.vault_id, &self.line);
    }
}

/// The vault's broadcasts from this node, stopped.
#[derive(Debug)]
pub struct Hold {
    lines: Arc<Lines>,
    line: Arc<Line>,
    vault_id: String,
    _guard: OwnedMutexGuard<()>,
}

impl Hold {
    /// The last seq up to `head` that will not be broadcast from this node
    /// after the hold: events at or below it are to be replayed, the later
    /// ones committed here are still in the line and will reach the socket
    /// live.
    pub fn replay_bound(&self, head: i64) -> i64 {
        self.line.sent_through(head)
    }
}

impl Line {
    /// `head`, or the seq before the first one still in the line.
    fn sent_through(&self, head: i64) -> i64 {
        let first_pending = self
            .pending
            .lock()
            .ok()
            .and_then(|pending| pending.keys().next().copied());
        first_pending.map_or(head, |first| head.min(first - 1))
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.lines.release(&self.vault_id, &self.line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::publish::Effect;

    fn event(seq: i64) -> Committed {
        Committed {
            seq,
            name: "source:created",
            payload: serde_json::Value::Null,
            effect: Effect::Nothing,
        }
    }

    async fn publish_and_record(ticket: Ticket, seq: i64, log: &Mutex<Vec<i64>>) {
        ticket
            .publish(event(seq), |event| async move {
                if let Ok(mut log) = log.lock() {
                    log.push(event.seq);
                }
            })
            .await;
    }

    #[tokio::test]
    async fn a_later_commit_waits_for_the_earlier_one() {
        let lines = Arc::new(Lines::default());
        let log = Mutex::new(Vec::new());
        let first = lines.reserve("v", 1);
        let second = lines.reserve("v", 2);
        publish_and_record(second, 2, &log).await;
        assert!(log.lock().is_ok_and(|log| log.is_empty()));
        publish_and_record(first, 1, &log).await;
        assert_eq!(*log.lock().unwrap_or_else(|e| e.into_inner()), [1, 2]);
        assert!(lines.lines.lock().is_ok_and(|lines| lines.is_empty()));
    }

    #[tokio::test]
    async fn a_rolled_back_seq_gives_its_place_to_its_next_reservation() {
        let lines = Arc::new(Lines::default());
        let log = Mutex::new(Vec::new());
        let failed = lines.reserve("v", 1);
        let again = lines.reserve("v", 1);
        drop(failed);
        publish_and_record(again, 1, &log).await;
        assert_eq!(*log.lock().unwrap_or_else(|e| e.into_inner()), [1]);
    }

    #[tokio::test]
    async fn a_hold_bounds_the_replay_below_the_pending_seqs() {
        let lines = Arc::new(Lines::default());
        let hold = lines.hold("v").await;
        assert_eq!(hold.replay_bound(7), 7);
        let pending = lines.reserve("v", 5);
        assert_eq!(hold.replay_bound(7), 4);
        assert_eq!(lines.sent_through("v", 7), 4, "the bulk stops there too");
        assert_eq!(lines.sent_through("elsewhere", 7), 7);
        drop(pending);
        drop(hold);
        assert!(lines.lines.lock().is_ok_and(|lines| lines.is_empty()));
    }
}
