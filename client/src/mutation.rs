//! Retry-safe mutations (docs/protocol.md, contract section G): every
//! mutation carries a client-chosen [`IdempotencyKey`] — the REST header
//! `Idempotency-Key`, or the `opId` field of a `source:*` socket command —
//! and a retry sends the same key again, so that a mutation whose answer
//! was lost is committed once and its retry gets the first answer.
//!
//! Only failures where no answer arrived (connection refused or reset, a
//! timeout, a closed socket, a lost ack) are retried, a bounded number of
//! times ([`RetryPolicy`]); an answer from the server, even an error, is
//! final. A caller that retries at a higher level (a person pressing Enter
//! again after "no answer") passes the same key again: that is what
//! [`crate::api::Mutate::with_key`] and the `op_id` field of the socket
//! commands are for. The REST header names are `syncscript-protocol`'s
//! (`IDEMPOTENCY_KEY_HEADER`, `IDEMPOTENCY_REPLAYED_HEADER`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use uuid::Uuid;

/// The longest key the server accepts.
pub const MAX_KEY_LEN: usize = 200;

/// The identity of one mutation: 1–200 visible ASCII characters, shared by
/// every attempt of it. [`IdempotencyKey::generate`] makes a UUID v7.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// A key that is not 1–200 visible ASCII characters (0x21–0x7E).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key must be 1-{MAX_KEY_LEN} visible ASCII characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// A new key, unique for every call (a UUID v7).
    pub fn generate() -> IdempotencyKey {
        IdempotencyKey(Uuid::now_v7().to_string())
    }

    /// A key given by the caller, checked against the contract's rule.
    pub fn new(key: impl Into<String>) -> Result<IdempotencyKey, InvalidKey> {
        let key = key.into();
        let visible = key.bytes().all(|b| (0x21..=0x7e).contains(&b));
        if key.is_empty() || key.len() > MAX_KEY_LEN || !visible {
            return Err(InvalidKey);
        }
        Ok(IdempotencyKey(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IdempotencyKey {
    type Err = InvalidKey;

    fn from_str(key: &str) -> Result<IdempotencyKey, InvalidKey> {
        IdempotencyKey::new(key)
    }
}

impl From<IdempotencyKey> for String {
    fn from(key: IdempotencyKey) -> String {
        key.0
    }
}

/// How a mutation is retried when no answer arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each next one.
    pub first_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// 4 attempts, 250 ms, 500 ms and 1 s apart: long enough for a socket
    /// to reconnect (about 0.7 s), short enough for a person waiting.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(250),
        max_delay: Duration::from_secs(2),
    };

    /// One attempt, no retry.
    pub const NONE: RetryPolicy = RetryPolicy {
        attempts: 1,
        first_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The wait before retry number `retry` (1 for the first retry).
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32 << retry.saturating_sub(1).min(16);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// Whether another attempt may follow attempt number `attempt` (1 for
    /// the first).
    pub fn allows_another(&self, attempt: u32) -> bool {
        attempt < self.attempts.max(1)
    }
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_unique_valid_uuids() {
        let a = IdempotencyKey::generate();
        let b = IdempotencyKey::generate();
        assert_ne!(a, b);
        assert!(Uuid::parse_str(a.as_str()).is_ok());
        assert_eq!(IdempotencyKey::new(a.as_str()), Ok(a));
    }

    #[test]
    fn keys_are_one_to_two_hundred_visible_ascii_characters() {
        assert!(IdempotencyKey::new("k").is_ok());
        assert!(IdempotencyKey::new("~!").is_ok());
        assert!(IdempotencyKey::new("x".repeat(200)).is_ok());
        for bad in [
            String::new(),
            "x".repeat(201),
            "with space".into(),
            "tab\t".into(),
            "é".into(),
            "\u{7f}".into(),
        ] {
            assert_eq!(IdempotencyKey::new(bad.clone()), Err(InvalidKey), "{bad:?}");
        }
        assert_eq!("abc".parse::<IdempotencyKey>().unwrap().to_string(), "abc");
    }

    #[test]
    fn retries_back_off_and_are_bounded() {
        let policy = RetryPolicy::DEFAULT;
        let delays: Vec<_> = (1..=5).map(|retry| policy.delay(retry)).collect();
        assert_eq!(
            delays,
            [250, 500, 1000, 2000, 2000].map(Duration::from_millis)
        );
        assert!(policy.allows_another(3));
        assert!(!policy.allows_another(4));
        assert!(!RetryPolicy::NONE.allows_another(1));
        let zero = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::DEFAULT
        };
        assert!(!zero.allows_another(1));
    }
}
