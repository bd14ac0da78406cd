//! `since`: the seq after which a client wants a vault's events, on REST
//! (`GET /api/vaults/{id}/events?since=`) and in `vault:join` alike.

use crate::error::AppError;

/// The rule of `since`, in its 422.
pub const SINCE_RULE: &str = "must be a whole number, 0 or more";

/// A seq a client has applied up to: 0 or more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Since(i64);

impl Since {
    /// 422 `since` for a negative number.
    pub fn parse(raw: i64) -> Result<Since, AppError> {
        if raw < 0 {
            Err(AppError::validation("since", SINCE_RULE))
        } else {
            Ok(Since(raw))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_zero_or_more() {
        assert_eq!(Since::parse(0).unwrap().get(), 0);
        assert_eq!(Since::parse(7).unwrap().get(), 7);
        assert!(Since::parse(-1).is_err());
    }
}
