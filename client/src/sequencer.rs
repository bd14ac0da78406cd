//! Puts a vault's sequenced events back in order (the catch-up rules of
//! docs/protocol.md): remembers the last seq applied, ignores duplicates (seq ≤ last,
//! or already held), holds early arrivals until the gap before them is
//! filled, and releases contiguous runs. A resync (or a fresh snapshot)
//! resets it to a new head.
//!
//! It is generic over what it holds so that each application keeps its own
//! representation: the CLI holds raw [`Sequenced`] events, the terminal
//! client typed `VaultEvent`s.

use std::collections::BTreeMap;

use serde_json::Value;

/// One sequenced event as received: its name, seq and payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequenced {
    pub name: String,
    pub seq: i64,
    pub payload: Value,
}

/// What [`Sequencer::offer`] did with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Offered<T> {
    /// The event was next: it and the held events it unblocked, in seq order.
    Ready(Vec<T>),
    /// Ahead of the next expected seq: held until the gap fills.
    Buffered,
    /// Already applied or already held: ignored.
    Duplicate,
}

/// The ordering state of one vault.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequencer<T = Sequenced> {
    last: i64,
    pending: BTreeMap<i64, T>,
}

impl<T> Sequencer<T> {
    /// Starts after `last` (the seq already applied, 0 for none).
    pub fn new(last: i64) -> Sequencer<T> {
        Sequencer {
            last,
            pending: BTreeMap::new(),
        }
    }

    /// The last seq released: what a rejoin passes as `since`.
    pub fn last(&self) -> i64 {
        self.last
    }

    /// Whether events are held back waiting for an earlier one.
    pub fn has_gap(&self) -> bool {
        !self.pending.is_empty()
    }

    /// How many events are held back.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Takes the event `item` numbered `seq`.
    pub fn offer(&mut self, seq: i64, item: T) -> Offered<T> {
        if seq <= self.last || self.pending.contains_key(&seq) {
            return Offered::Duplicate;
        }
        self.pending.insert(seq, item);
        if seq > self.last + 1 {
            return Offered::Buffered;
        }
        Offered::Ready(self.release())
    }

    /// Jumps to `head` (after a resync or a snapshot): everything up to it
    /// is forgotten, later events stay held and those now contiguous are
    /// returned.
    pub fn reset(&mut self, head: i64) -> Vec<T> {
        self.last = head;
        self.pending = self.pending.split_off(&(head + 1));
        self.release()
    }

    fn release(&mut self) -> Vec<T> {
        let mut ready = Vec::new();
        while let Some(next) = self.pending.remove(&(self.last + 1)) {
            self.last += 1;
            ready.push(next);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syncscript_protocol::names;

    fn event(seq: i64) -> Sequenced {
        Sequenced {
            name: names::SOURCE_CREATED.into(),
            seq,
            payload: Value::Null,
        }
    }

    fn offer(s: &mut Sequencer, seq: i64) -> Offered<i64> {
        match s.offer(seq, event(seq)) {
            Offered::Ready(ready) => Offered::Ready(seqs(ready)),
            Offered::Buffered => Offered::Buffered,
            Offered::Duplicate => Offered::Duplicate,
        }
    }

    fn seqs(events: Vec<Sequenced>) -> Vec<i64> {
        events.into_iter().map(|e| e.seq).collect()
    }

    #[test]
    fn in_order_events_pass_straight_through() {
        let mut s = Sequencer::new(0);
        assert_eq!(offer(&mut s, 1), Offered::Ready(vec![1]));
        assert_eq!(offer(&mut s, 2), Offered::Ready(vec![2]));
        assert_eq!(s.last(), 2);
        assert!(!s.has_gap());
    }

    #[test]
    fn duplicates_and_old_events_are_ignored() {
        let mut s = Sequencer::new(5);
        assert_eq!(offer(&mut s, 5), Offered::Duplicate);
        assert_eq!(offer(&mut s, 3), Offered::Duplicate);
        assert_eq!(offer(&mut s, 6), Offered::Ready(vec![6]));
        assert_eq!(offer(&mut s, 6), Offered::Duplicate);
        assert_eq!(s.last(), 6);
    }

    #[test]
    fn early_events_are_buffered_then_released_in_order() {
        let mut s = Sequencer::new(0);
        assert_eq!(offer(&mut s, 3), Offered::Buffered);
        assert_eq!(offer(&mut s, 2), Offered::Buffered);
        // Held twice is still a duplicate.
        assert_eq!(offer(&mut s, 3), Offered::Duplicate);
        assert_eq!(s.buffered(), 2);
        assert_eq!(s.last(), 0);
        assert_eq!(offer(&mut s, 1), Offered::Ready(vec![1, 2, 3]));
        assert_eq!(s.buffered(), 0);
        assert_eq!(s.last(), 3);
    }

    #[test]
    fn a_gap_is_reported_until_the_missing_event_arrives() {
        let mut s = Sequencer::new(1);
        assert!(!s.has_gap());
        assert_eq!(offer(&mut s, 4), Offered::Buffered);
        assert!(s.has_gap(), "2 and 3 are missing");
        assert_eq!(offer(&mut s, 2), Offered::Ready(vec![2]));
        assert!(s.has_gap(), "3 is still missing");
        assert_eq!(offer(&mut s, 3), Offered::Ready(vec![3, 4]));
        assert!(!s.has_gap());
    }

    #[test]
    fn a_resync_resets_to_the_head_and_keeps_later_events() {
        let mut s = Sequencer::new(0);
        assert_eq!(offer(&mut s, 4), Offered::Buffered);
        assert_eq!(offer(&mut s, 11), Offered::Buffered);
        assert_eq!(offer(&mut s, 12), Offered::Buffered);
        assert_eq!(seqs(s.reset(10)), [11, 12]);
        assert_eq!(s.last(), 12);
        assert!(!s.has_gap());
        assert_eq!(offer(&mut s, 4), Offered::Duplicate);
    }

    #[test]
    fn a_reset_can_also_go_back() {
        let mut s = Sequencer::new(8);
        assert_eq!(offer(&mut s, 10), Offered::Buffered);
        assert!(s.reset(3).is_empty());
        assert_eq!(s.last(), 3);
        assert_eq!(s.buffered(), 1);
        assert_eq!(offer(&mut s, 4), Offered::Ready(vec![4]));
    }
}
