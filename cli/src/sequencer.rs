//! Puts a vault's sequenced events back in order: remembers the last seq
//! applied, drops duplicates (seq ≤ last), holds early arrivals until the
//! gap before them is filled, and releases contiguous runs.

use std::collections::BTreeMap;

use serde_json::Value;

/// One sequenced event as received: its name, seq and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced {
    pub name: String,
    pub seq: i64,
    pub payload: Value,
}

/// The ordering state of one vault.
#[derive(Debug)]
pub struct Sequencer {
    last: i64,
    pending: BTreeMap<i64, Sequenced>,
}

impl Sequencer {
    /// Starts after `last` (the seq already applied, 0 for none).
    pub fn new(last: i64) -> Sequencer {
        Sequencer {
            last,
            pending: BTreeMap::new(),
        }
    }

    /// The last seq released.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// Whether events are held back waiting for an earlier one.
    pub fn has_gap(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes an event and returns those now ready, in seq order (none for a
    /// duplicate or an early arrival).
    pub fn offer(&mut self, event: Sequenced) -> Vec<Sequenced> {
        if event.seq <= self.last {
            return Vec::new();
        }
        self.pending.entry(event.seq).or_insert(event);
        let mut ready = Vec::new();
        while let Some(next) = self.pending.remove(&(self.last + 1)) {
            self.last = next.seq;
            ready.push(next);
        }
        ready
    }

    /// Jumps to `head` (after a resync): everything up to it is forgotten,
    /// later events stay held.
    pub fn reset(&mut self, head: i64) -> Vec<Sequenced> {
        self.last = head;
        self.pending = self.pending.split_off(&(head + 1));
        let mut ready = Vec::new();
        while let Some(next) = self.pending.remove(&(self.last + 1)) {
            self.last = next.seq;
            ready.push(next);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64) -> Sequenced {
        Sequenced {
            name: "source:created".into(),
            seq,
            payload: Value::Null,
        }
    }

    fn seqs(events: Vec<Sequenced>) -> Vec<i64> {
        events.into_iter().map(|e| e.seq).collect()
    }

    #[test]
    fn in_order_events_pass_straight_through() {
        let mut s = Sequencer::new(0);
        assert_eq!(seqs(s.offer(event(1))), [1]);
        assert_eq!(seqs(s.offer(event(2))), [2]);
        assert_eq!(s.last(), 2);
        assert!(!s.has_gap());
    }

    #[test]
    fn duplicates_and_old_events_are_dropped() {
        let mut s = Sequencer::new(5);
        assert!(s.offer(event(5)).is_empty());
        assert!(s.offer(event(3)).is_empty());
        assert_eq!(seqs(s.offer(event(6))), [6]);
        assert!(s.offer(event(6)).is_empty());
    }

    #[test]
    fn early_events_wait_for_the_gap_then_release_in_order() {
        let mut s = Sequencer::new(0);
        assert!(s.offer(event(3)).is_empty());
        assert!(s.offer(event(2)).is_empty());
        assert!(s.has_gap());
        assert!(s.offer(event(3)).is_empty());
        assert_eq!(seqs(s.offer(event(1))), [1, 2, 3]);
        assert!(!s.has_gap());
    }

    #[test]
    fn reset_skips_to_the_head_and_keeps_later_events() {
        let mut s = Sequencer::new(0);
        s.offer(event(4));
        s.offer(event(11));
        assert_eq!(seqs(s.reset(10)), [11]);
        assert_eq!(s.last(), 11);
        assert!(!s.has_gap());
    }
}
