//! Socket.IO event names and payloads: client commands, sequenced vault
//! events (logged, broadcast, replayed) and signals (never logged).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Actor, ErrorCode, ErrorDetail, Member, Role, Source};

/// Event names, client → server.
pub mod commands {
    pub const VAULT_JOIN: &str = "vault:join";
    pub const VAULT_LEAVE: &str = "vault:leave";
    pub const SOURCE_CREATE: &str = "source:create";
    pub const SOURCE_UPDATE: &str = "source:update";
    pub const SOURCE_DELETE: &str = "source:delete";
}

/// Event names of the sequenced vault events, server → room.
pub mod names {
    pub const SOURCE_CREATED: &str = "source:created";
    pub const SOURCE_UPDATED: &str = "source:updated";
    pub const SOURCE_DELETED: &str = "source:deleted";
    pub const MEMBER_ADDED: &str = "member:added";
    pub const MEMBER_UPDATED: &str = "member:updated";
    pub const MEMBER_REMOVED: &str = "member:removed";
    pub const VAULT_UPDATED: &str = "vault:updated";
    pub const VAULT_DELETED: &str = "vault:deleted";

    /// Every sequenced event name.
    pub const ALL: [&str; 8] = [
        SOURCE_CREATED,
        SOURCE_UPDATED,
        SOURCE_DELETED,
        MEMBER_ADDED,
        MEMBER_UPDATED,
        MEMBER_REMOVED,
        VAULT_UPDATED,
        VAULT_DELETED,
    ];
}

/// Event names of the signals, server → socket or room (never logged).
pub mod signals {
    pub const VAULT_JOINED: &str = "vault:joined";
    pub const VAULT_LEFT: &str = "vault:left";
    pub const VAULT_REMOVED: &str = "vault:removed";
    pub const VAULT_RESYNC: &str = "vault:resync";
    pub const VAULT_HEAD: &str = "vault:head";
    pub const PRESENCE: &str = "presence";
    pub const ERROR: &str = "error";

    /// Every signal name.
    pub const ALL: [&str; 7] = [
        VAULT_JOINED,
        VAULT_LEFT,
        VAULT_REMOVED,
        VAULT_RESYNC,
        VAULT_HEAD,
        PRESENCE,
        ERROR,
    ];
}

/// For a server event name emitted by a client: the command to use instead,
/// or `None` when the event is server-only (signals, member and vault events).
pub fn command_for_server_event(name: &str) -> Option<&'static str> {
    match name {
        names::SOURCE_CREATED => Some(commands::SOURCE_CREATE),
        names::SOURCE_UPDATED => Some(commands::SOURCE_UPDATE),
        names::SOURCE_DELETED => Some(commands::SOURCE_DELETE),
        _ => None,
    }
}

/// Whether `name` is one of the server's own event names.
pub fn is_server_event(name: &str) -> bool {
    names::ALL.contains(&name) || signals::ALL.contains(&name)
}

/// `vault:join` as an object (the bare-string form carries only the id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRequest {
    pub vault_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// `source:create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateSourceCommand {
    pub vault_id: String,
    pub title: String,
    pub file_url: String,
    /// The client's id for this operation (docs/protocol.md "Retry-safe
    /// mutations"): a repeat with the same `opId` gets the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
}

/// `source:update`: at least one of the optional fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSourceCommand {
    pub source_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// The client's id for this operation (docs/protocol.md "Retry-safe
    /// mutations"): a repeat with the same `opId` gets the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
}

/// `source:delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteSourceCommand {
    pub source_id: String,
    /// The client's id for this operation (docs/protocol.md "Retry-safe
    /// mutations"): a repeat with the same `opId` gets the first answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
}

/// `vault:joined`, and the body of a successful join ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub vault_id: String,
    pub role: Role,
    /// The vault's head at the join.
    pub seq: i64,
}

/// `vault:left`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Left {
    pub vault_id: String,
}

/// `vault:removed`: the user lost access to the vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    pub vault_id: String,
    pub reason: String,
}

/// `vault:resync`: `since` is older than the retained window; refetch the
/// snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resync {
    pub vault_id: String,
    pub seq: i64,
}

/// `vault:head`: the vault's last committed seq, announced by the node a
/// socket is connected to; a client whose last applied seq is lower missed
/// an event and rejoins with `since`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub vault_id: String,
    pub seq: i64,
}

/// One user watching a vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceEntry {
    pub user_id: String,
    pub user_name: String,
    pub role: Role,
    pub connections: u32,
}

/// `presence`: everyone watching a vault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    pub vault_id: String,
    pub present: Vec<PresenceEntry>,
}

/// Body of a successful source create/update ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceAck {
    pub source: Source,
}

/// Body of a successful source delete ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteAck {
    pub source_id: String,
}

/// `{ok: true, ...body}`.
pub fn ack_ok<T: Serialize>(body: &T) -> Value {
    let mut map = match serde_json::to_value(body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    map.insert("ok".into(), Value::Bool(true));
    Value::Object(map)
}

/// `{ok: false, error: {code, message}}`.
pub fn ack_err(error: &ErrorDetail) -> Value {
    serde_json::json!({ "ok": false, "error": error })
}

/// Reads an ack: the body on `ok: true`, the error on `ok: false`, and a
/// `BAD_REQUEST` error for anything else.
pub fn parse_ack<T: DeserializeOwned>(ack: Value) -> Result<T, ErrorDetail> {
    let malformed = |why: String| ErrorDetail {
        code: ErrorCode::BadRequest,
        message: format!("malformed ack: {why}"),
    };
    match ack.get("ok").and_then(Value::as_bool) {
        Some(true) => serde_json::from_value(ack).map_err(|e| malformed(e.to_string())),
        Some(false) => {
            let error = ack.get("error").cloned().unwrap_or(Value::Null);
            Err(serde_json::from_value(error).map_err(|e| malformed(e.to_string()))?)
        }
        None => Err(malformed(ack.to_string())),
    }
}

/// The fields every sequenced event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMeta {
    pub vault_id: String,
    pub seq: i64,
    pub actor: Actor,
    pub timestamp: String,
}

/// A vault's identity as carried by `vault:updated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultRef {
    pub id: String,
    pub name: String,
}

/// What a sequenced event says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    SourceCreated(Source),
    SourceUpdated(Source),
    SourceDeleted { source_id: String },
    MemberAdded(Member),
    MemberUpdated(Member),
    MemberRemoved(Member),
    VaultUpdated(VaultRef),
    VaultDeleted,
}

/// A sequenced vault event: logged in `vault_events`, broadcast to the
/// vault's room and replayed by catch-up with the very same name and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEvent {
    pub meta: EventMeta,
    pub kind: EventKind,
}

impl VaultEvent {
    /// The Socket.IO event name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            EventKind::SourceCreated(_) => names::SOURCE_CREATED,
            EventKind::SourceUpdated(_) => names::SOURCE_UPDATED,
            EventKind::SourceDeleted { .. } => names::SOURCE_DELETED,
            EventKind::MemberAdded(_) => names::MEMBER_ADDED,
            EventKind::MemberUpdated(_) => names::MEMBER_UPDATED,
            EventKind::MemberRemoved(_) => names::MEMBER_REMOVED,
            EventKind::VaultUpdated(_) => names::VAULT_UPDATED,
            EventKind::VaultDeleted => names::VAULT_DELETED,
        }
    }

    /// The broadcast payload: the meta fields plus the kind's own field.
    pub fn payload(&self) -> Value {
        let mut map = match serde_json::to_value(&self.meta) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let extra = match &self.kind {
            EventKind::SourceCreated(source) | EventKind::SourceUpdated(source) => {
                Some(("source", serde_json::to_value(source)))
            }
            EventKind::SourceDeleted { source_id } => {
                Some(("sourceId", Ok(Value::String(source_id.clone()))))
            }
            EventKind::MemberAdded(member)
            | EventKind::MemberUpdated(member)
            | EventKind::MemberRemoved(member) => Some(("member", serde_json::to_value(member))),
            EventKind::VaultUpdated(vault) => Some(("vault", serde_json::to_value(vault))),
            EventKind::VaultDeleted => None,
        };
        if let Some((key, Ok(value))) = extra {
            map.insert(key.into(), value);
        }
        Value::Object(map)
    }

    /// Reads an event back from its name and payload (as received live, or
    /// from the log).
    pub fn from_wire(name: &str, payload: &Value) -> Result<VaultEvent, serde_json::Error> {
        fn field<T: DeserializeOwned>(payload: &Value, key: &str) -> Result<T, serde_json::Error> {
            T::deserialize(payload.get(key).unwrap_or(&Value::Null))
        }
        let meta = EventMeta::deserialize(payload)?;
        let kind = match name {
            names::SOURCE_CREATED => EventKind::SourceCreated(field(payload, "source")?),
            names::SOURCE_UPDATED => EventKind::SourceUpdated(field(payload, "source")?),
            names::SOURCE_DELETED => EventKind::SourceDeleted {
                source_id: field(payload, "sourceId")?,
            },
            names::MEMBER_ADDED => EventKind::MemberAdded(field(payload, "member")?),
            names::MEMBER_UPDATED => EventKind::MemberUpdated(field(payload, "member")?),
            names::MEMBER_REMOVED => EventKind::MemberRemoved(field(payload, "member")?),
            names::VAULT_UPDATED => EventKind::VaultUpdated(field(payload, "vault")?),
            names::VAULT_DELETED => EventKind::VaultDeleted,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "unknown vault event {other:?}"
                )));
            }
        };
        Ok(VaultEvent { meta, kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> EventMeta {
        EventMeta {
            vault_id: "v1".into(),
            seq: 7,
            actor: Actor {
                user_id: "u1".into(),
                user_name: "Ada".into(),
                role: Role::Owner,
            },
            timestamp: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    #[test]
    fn events_round_trip_through_name_and_payload() {
        let source = Source {
            id: "s1".into(),
            vault_id: "v1".into(),
            title: "Paper".into(),
            file_url: "https://example.org/p.pdf".into(),
            created_by: "u1".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            updated_at: "2026-01-01T00:00:00.000Z".into(),
        };
        let member = Member {
            user_id: "u2".into(),
            email: "b@x.org".into(),
            name: "Bo".into(),
            role: Role::Viewer,
        };
        let kinds = [
            EventKind::SourceCreated(source.clone()),
            EventKind::SourceUpdated(source),
            EventKind::SourceDeleted {
                source_id: "s1".into(),
            },
            EventKind::MemberAdded(member.clone()),
            EventKind::MemberUpdated(member.clone()),
            EventKind::MemberRemoved(member),
            EventKind::VaultUpdated(VaultRef {
                id: "v1".into(),
                name: "New".into(),
            }),
            EventKind::VaultDeleted,
        ];
        for kind in kinds {
            let event = VaultEvent { meta: meta(), kind };
            let payload = event.payload();
            assert_eq!(payload["vaultId"], "v1");
            assert_eq!(payload["seq"], 7);
            assert_eq!(payload["actor"]["userName"], "Ada");
            let back = VaultEvent::from_wire(event.name(), &payload).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn source_deleted_payload_names_the_source() {
        let event = VaultEvent {
            meta: meta(),
            kind: EventKind::SourceDeleted {
                source_id: "s9".into(),
            },
        };
        assert_eq!(event.payload()["sourceId"], "s9");
    }

    #[test]
    fn acks_carry_ok_and_body_or_error() {
        let ok = ack_ok(&DeleteAck {
            source_id: "s1".into(),
        });
        assert_eq!(ok, serde_json::json!({"ok": true, "sourceId": "s1"}));
        let parsed: DeleteAck = parse_ack(ok).unwrap();
        assert_eq!(parsed.source_id, "s1");

        let detail = ErrorDetail {
            code: ErrorCode::Forbidden,
            message: "Insufficient permissions".into(),
        };
        let err = ack_err(&detail);
        assert_eq!(err["error"]["code"], "FORBIDDEN");
        assert_eq!(parse_ack::<DeleteAck>(err).unwrap_err(), detail);
        assert_eq!(
            parse_ack::<DeleteAck>(serde_json::json!("nonsense"))
                .unwrap_err()
                .code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn server_event_names_map_to_commands() {
        assert_eq!(
            command_for_server_event(names::SOURCE_CREATED),
            Some(commands::SOURCE_CREATE)
        );
        assert_eq!(command_for_server_event(signals::PRESENCE), None);
        assert!(is_server_event(signals::PRESENCE));
        assert!(is_server_event(names::MEMBER_ADDED));
        assert!(!is_server_event(commands::VAULT_JOIN));
    }
}
