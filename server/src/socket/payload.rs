//! How a command's payload is read: leniently (as a JSON value, so that a
//! wrong shape is answered instead of silently dropped), then checked.

use serde::de::DeserializeOwned;
use serde_json::Value;
use syncscript_protocol::commands;

use crate::domain::{Since, VaultId};
use crate::error::{AppError, reject_control_characters};

pub fn bad_payload(command: &str, expected: &str) -> AppError {
    AppError::BadRequest(format!("{command} expects {expected}"))
}

/// Reads a command's payload leniently so that a wrong shape, or no
/// argument at all (socketioxide would skip a `Data` handler silently), is
/// answered with `BAD_REQUEST` instead of being dropped.
pub fn parse_command<T: DeserializeOwned>(
    command: &str,
    expected: &str,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<T, AppError> {
    let payload = payload.map_err(|_| bad_payload(command, expected))?;
    // An object only: serde would also fill the command from an array of
    // its fields in order.
    if !payload.is_object() {
        return Err(bad_payload(command, expected));
    }
    reject_control_characters(&payload)?;
    serde_json::from_value(payload).map_err(|_| bad_payload(command, expected))
}

const JOIN_EXPECTS: &str = "a vault id or {vaultId, since?}";

/// The vault and `since` of a `vault:join` payload: the vault id, or
/// `{vaultId, since?}`.
pub fn parse_join(
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<(VaultId, Option<Since>), AppError> {
    let bad = || bad_payload(commands::VAULT_JOIN, JOIN_EXPECTS);
    let payload = payload.map_err(|_| bad())?;
    let (raw_id, since) = match &payload {
        Value::String(id) => (id.as_str(), None),
        Value::Object(map) => {
            let id = map.get("vaultId").and_then(Value::as_str).ok_or_else(bad)?;
            let since = match map.get("since") {
                None | Some(Value::Null) => None,
                Some(since) => match since.as_i64() {
                    Some(since) => Some(Since::parse(since)?),
                    None => {
                        return Err(AppError::BadRequest("since must be a whole number".into()));
                    }
                },
            };
            (id, since)
        }
        _ => return Err(bad()),
    };
    Ok((VaultId::parse(raw_id)?, since))
}

/// The vault id of a `vault:leave` payload: the id, or `{vaultId}`.
pub fn parse_leave(payload: &Result<Value, impl std::fmt::Display>) -> Result<VaultId, AppError> {
    let raw_id = match payload {
        Ok(Value::String(id)) => Some(id.as_str()),
        Ok(Value::Object(map)) => map.get("vaultId").and_then(Value::as_str),
        _ => None,
    };
    raw_id
        .ok_or_else(|| bad_payload(commands::VAULT_LEAVE, "a vault id"))
        .and_then(VaultId::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_payloads_are_parsed_leniently() {
        let id = "0190f000-0000-7000-8000-000000000001";
        let parse = |payload: Value| parse_join(Ok::<_, String>(payload));
        let vault = VaultId::parse(id).unwrap();
        assert_eq!(
            parse(Value::String(id.into())).unwrap(),
            (vault.clone(), None)
        );
        let object = serde_json::json!({"vaultId": id, "since": 4});
        let since = Since::parse(4).unwrap();
        assert_eq!(parse(object).unwrap(), (vault, Some(since)));
        for bad in [
            serde_json::json!(5),
            serde_json::json!({"since": 1}),
            serde_json::json!({"vaultId": id, "since": -1}),
            serde_json::json!({"vaultId": id, "since": "x"}),
            serde_json::json!("not-an-id"),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }
}
