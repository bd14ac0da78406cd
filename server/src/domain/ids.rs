//! Ids from a path or a payload: a malformed one is a 400, never a
//! database lookup.

use std::fmt;
use std::ops::Deref;

use crate::error::AppError;

/// Parses a UUID, naming `what` it identifies when it is malformed.
fn parse(raw: &str, what: &str) -> Result<String, AppError> {
    uuid::Uuid::parse_str(raw)
        .map(|id| id.to_string())
        .map_err(|_| AppError::BadRequest(format!("malformed {what} id {raw:?}")))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// Parses a client's id (400 `malformed … id` when it is not a
            /// UUID); the id is kept in its canonical lower-case form.
            pub fn parse(raw: &str) -> Result<$name, AppError> {
                parse(raw, $what).map($name)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A vault's id.
    VaultId,
    "vault"
);
id_type!(
    /// A source's id.
    SourceId,
    "source"
);
id_type!(
    /// A user's id.
    UserId,
    "user"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuids_in_canonical_form() {
        let id = VaultId::parse("0190F000-0000-7000-8000-000000000001").unwrap();
        assert_eq!(id.as_str(), "0190f000-0000-7000-8000-000000000001");
        let error = SourceId::parse("nope").unwrap_err();
        assert_eq!(error.to_string(), r#"malformed source id "nope""#);
        assert!(UserId::parse("").is_err());
    }
}
