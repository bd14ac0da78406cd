//! What this node knows of the heads of the vaults its sockets watch: the
//! last seq it published or announced to each vault's room, and the head
//! its last sweep read (see [`head_sweep`](crate::socket::head_sweep)).

use std::collections::HashMap;
use std::sync::Mutex;

/// What this node knows of the heads of the vaults its sockets watch.
#[derive(Debug, Default)]
pub struct Announced {
    vaults: Mutex<HashMap<String, Known>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Known {
    /// The last seq this node published or announced to the vault's room.
    announced: i64,
    /// The head the last sweep read.
    swept: Option<i64>,
}

impl Announced {
    /// This node published or announced `seq` to the vault's room.
    pub fn delivered(&self, vault_id: &str, seq: i64) {
        if let Ok(mut vaults) = self.vaults.lock() {
            let known = vaults.entry(vault_id.to_owned()).or_default();
            known.announced = known.announced.max(seq);
        }
    }

    /// Records a sweep's reading of the heads of the vaults watched here
    /// (forgetting the others); returns the heads to announce.
    pub fn sweep(&self, heads: &HashMap<String, i64>) -> Vec<(String, i64)> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_announced_once_it_is_stable_and_ahead() {
        let heads = Announced::default();
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
