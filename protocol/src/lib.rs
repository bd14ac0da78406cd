//! The SyncScript wire catalog: every REST DTO, error code, Socket.IO event
//! name and payload of `docs/protocol.md`, shared by the server, the CLI, the
//! terminal client and the tests so that a renamed field breaks the build.
//!
//! Serde only: nothing in here does I/O. With the `openapi` feature the types
//! also derive `utoipa::ToSchema`, which the server uses to generate its
//! OpenAPI document.

pub mod error;
pub mod events;
pub mod rest;

pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use events::*;
pub use rest::*;

use serde::{Deserialize, Serialize};

/// A member's role in a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Contributor,
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Contributor, Role::Viewer];

    /// The lowercase name used on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Contributor => "contributor",
            Role::Viewer => "viewer",
        }
    }

    /// Parses the wire name; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long the server keeps a connection waiting for a request's headers,
/// idle keep-alive connections included: it closes one whose next request
/// has not fully arrived within this time (docs/protocol.md, Limits).
pub const IDLE_CONNECTION_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client keeps an idle connection for reuse: well under
/// [`IDLE_CONNECTION_LIMIT`], so that it never sends a request on a
/// connection the server is closing (the request would fail unanswered).
pub const CLIENT_IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// The request header that makes a REST mutation retry-safe
/// (docs/protocol.md, Retry-safe mutations).
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

/// The response header (`true`) on an answer replayed from a stored result
/// rather than produced by running the mutation again.
pub const IDEMPOTENCY_REPLAYED_HEADER: &str = "Idempotency-Replayed";

/// Name of the session cookie set by login over plain http.
pub const SESSION_COOKIE: &str = "syncscript_session";

/// Name of the session cookie set by login over https: the `__Host-`
/// prefix makes browsers refuse it unless it is `Secure`, has `Path=/` and
/// no `Domain`, so that no other site of the host can plant one for a
/// narrower path.
pub const SECURE_SESSION_COOKIE: &str = "__Host-syncscript_session";

/// The room every socket of a vault's watchers joins.
pub fn vault_room(vault_id: &str) -> String {
    format!("vault:{vault_id}")
}

/// The room every socket of a user joins (used to kick them on revocation).
pub fn user_room(user_id: &str) -> String {
    format!("user:{user_id}")
}

/// The room every socket opened with one session joins (used on logout).
pub fn session_room(session_id: &str) -> String {
    format!("session:{session_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_wire_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
