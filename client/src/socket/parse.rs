//! What the server sends, typed: event payloads, acks, and the `error`
//! callback's refusals (see the rule in [`socket`](super)).

use rust_socketio::Payload;
use serde::de::DeserializeOwned;
use serde_json::Value;
use syncscript_protocol::{ErrorCode, ErrorDetail, names, signals};

use super::Incoming;
use crate::sequencer::Sequenced;

/// What rust_socketio puts before the server's refusal of a connection.
const CONNECT_ERROR_PREFIX: &str = "Received an ConnectError frame: ";

/// The first JSON value of a payload (events carry one argument).
pub(super) fn first_value(payload: Payload) -> Value {
    match payload {
        Payload::Text(values) => values.into_iter().next().unwrap_or(Value::Null),
        #[allow(deprecated)]
        Payload::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
        Payload::Binary(_) => Value::Null,
    }
}

/// An ack's body: rust_socketio hands it over one array level deeper.
pub(super) fn ack_value(payload: Payload) -> Value {
    match first_value(payload) {
        Value::Array(values) => values.into_iter().next().unwrap_or(Value::Null),
        other => other,
    }
}

/// What the `error` callback means: the server's `error` event, a refused
/// handshake (final or transient, see the module documentation), or a
/// transport problem.
pub(super) fn error_report(payload: Payload) -> Incoming {
    let value = first_value(payload);
    if let Ok(detail) = serde_json::from_value::<ErrorDetail>(value.clone()) {
        return Incoming::Error(detail);
    }
    let text = match value {
        Value::String(text) => text,
        other => other.to_string(),
    };
    let Some(frame) = text.strip_prefix(CONNECT_ERROR_PREFIX) else {
        return Incoming::TransportError(text);
    };
    let message = serde_json::from_str::<Value>(frame)
        .ok()
        .and_then(|frame| frame.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| frame.to_owned());
    if message == ErrorCode::Unauthorized.as_str() {
        Incoming::Refused(ErrorCode::Unauthorized)
    } else {
        Incoming::Rejected { message }
    }
}

/// Types a server event by name.
pub(super) fn event_report(name: String, payload: Value) -> Incoming {
    fn parse<T: DeserializeOwned>(payload: &Value) -> Option<T> {
        T::deserialize(payload).ok()
    }
    let typed = match name.as_str() {
        signals::VAULT_JOINED => parse(&payload).map(Incoming::Joined),
        signals::VAULT_LEFT => parse(&payload).map(Incoming::Left),
        signals::VAULT_REMOVED => parse(&payload).map(Incoming::Removed),
        signals::VAULT_RESYNC => parse(&payload).map(Incoming::Resync),
        signals::VAULT_HEAD => parse(&payload).map(Incoming::Head),
        signals::PRESENCE => parse(&payload).map(Incoming::Presence),
        event if names::ALL.contains(&event) => {
            let vault_id = payload.get("vaultId").and_then(Value::as_str);
            let seq = payload.get("seq").and_then(Value::as_i64);
            match (vault_id, seq) {
                (Some(vault_id), Some(seq)) => Some(Incoming::Event {
                    vault_id: vault_id.to_owned(),
                    event: Sequenced {
                        name: name.clone(),
                        seq,
                        payload: payload.clone(),
                    },
                }),
                _ => None,
            }
        }
        _ => None,
    };
    typed.unwrap_or(Incoming::Unknown { name, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use syncscript_protocol::{Joined, Resync, Role};

    fn refusal(message: &str) -> Payload {
        Payload::from(format!(
            "{CONNECT_ERROR_PREFIX}{}",
            json!({ "message": message })
        ))
    }

    #[test]
    fn only_an_unauthorized_refusal_is_final() {
        assert!(matches!(
            error_report(refusal("UNAUTHORIZED")),
            Incoming::Refused(ErrorCode::Unauthorized)
        ));
        for transient in ["INTERNAL", "Invalid namespace", "UNAUTHORIZED, maybe"] {
            assert!(
                matches!(
                    error_report(refusal(transient)),
                    Incoming::Rejected { message } if message == transient
                ),
                "{transient}"
            );
        }
    }

    #[test]
    fn error_events_and_transport_errors_are_told_apart_from_refusals() {
        let server =
            Payload::from(json!({"code": "FORBIDDEN", "message": "Access denied to vault"}));
        assert!(matches!(
            error_report(server),
            Incoming::Error(detail) if detail.code == ErrorCode::Forbidden
        ));
        assert!(matches!(
            error_report(Payload::from("connection reset".to_owned())),
            Incoming::TransportError(text) if text == "connection reset"
        ));
    }

    #[test]
    fn acks_are_unwrapped_one_level() {
        let ack = Payload::Text(vec![json!([{"ok": true, "sourceId": "s1"}])]);
        assert_eq!(ack_value(ack), json!({"ok": true, "sourceId": "s1"}));
        let event = Payload::Text(vec![json!({"vaultId": "v1"})]);
        assert_eq!(first_value(event), json!({"vaultId": "v1"}));
    }

    #[test]
    fn events_are_typed_by_name() {
        let created = json!({"vaultId": "v1", "seq": 4, "source": {}});
        assert!(matches!(
            event_report(names::SOURCE_CREATED.into(), created.clone()),
            Incoming::Event { vault_id, event }
                if vault_id == "v1" && event.seq == 4 && event.payload == created
        ));
        let joined = json!({"vaultId": "v1", "role": "viewer", "seq": 9});
        assert!(matches!(
            event_report(signals::VAULT_JOINED.into(), joined),
            Incoming::Joined(Joined {
                role: Role::Viewer,
                seq: 9,
                ..
            })
        ));
        let resync = json!({"vaultId": "v1", "seq": 40});
        assert!(matches!(
            event_report(signals::VAULT_RESYNC.into(), resync),
            Incoming::Resync(Resync { seq: 40, .. })
        ));
    }

    #[test]
    fn unknown_or_malformed_events_are_kept_raw() {
        assert!(matches!(
            event_report(names::SOURCE_CREATED.into(), json!({"nonsense": 1})),
            Incoming::Unknown { name, .. } if name == names::SOURCE_CREATED
        ));
        assert!(matches!(
            event_report("something:else".into(), Value::Null),
            Incoming::Unknown { .. }
        ));
    }
}
