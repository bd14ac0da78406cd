//! Validated input. Every value a client sends that has a rule gets a type
//! of its own, parsed once at the edge (a REST handler or a socket
//! command), so that the service functions below take only values that
//! keep their rules. This module is on the ground floor: it imports only
//! `error`.

mod ids;
mod since;
mod text;

pub use ids::{SourceId, UserId, VaultId};
pub use since::{SINCE_RULE, Since};
pub use text::{Email, FileUrl, Name, Title, fold_email};
