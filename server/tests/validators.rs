//! Property tests of the validators and payload parsers the server owns:
//! whatever a client sends, they answer (never panic), and what they accept
//! obeys the contract's rules (docs/protocol.md "Conventions", "Limits").
//! The same functions are cargo-fuzz targets (fuzz/, scripts/fuzz).

use std::net::IpAddr;

use axum::http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Value, json};
use syncscript::domain::{Email, FileUrl, Name, Title};
use syncscript::error::{AppError, parse_body};
use syncscript::idempotency::validate_key;
use syncscript::limits::client_address;
use syncscript::socket::payload::{parse_command, parse_join};
use syncscript_protocol::{CreateSourceCommand, CreateSourceRequest};

/// Any JSON value, a few levels deep, with any strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

/// Whether any string or key of `value` holds a control character.
fn any_control(value: &Value) -> bool {
    match value {
        Value::String(text) => has_control(text),
        Value::Array(items) => items.iter().any(any_control),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| has_control(key) || any_control(value)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

proptest! {
    // Failures print their minimal input and seed; no regression files are
    // written into the source tree.
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_bytes_as_a_body_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = parse_body::<CreateSourceRequest>(&bytes) {
            let value: Value = serde_json::from_slice(&bytes).expect("accepted bodies are JSON");
            prop_assert!(value.is_object());
            prop_assert!(!has_control(&request.title) && !has_control(&request.file_url));
        }
    }

    #[test]
    fn a_body_is_accepted_only_without_control_characters(
        title in any::<String>(),
        file_url in any::<String>(),
        extra in json_value(),
    ) {
        let body = json!({"title": title, "fileUrl": file_url, "extra": extra});
        let bytes = serde_json::to_vec(&body).expect("serializable");
        let controlled = has_control(&title) || has_control(&file_url) || any_control(&extra);
        match parse_body::<CreateSourceRequest>(&bytes) {
            Ok(request) => {
                prop_assert!(!controlled, "accepted a control character: {body}");
                prop_assert_eq!(request.title, title);
            }
            Err(AppError::Validation { field, message }) => {
                prop_assert!(controlled);
                prop_assert!(["title", "fileUrl", "extra"].contains(&field.as_str()), "{}", field);
                prop_assert_eq!(message, "must not contain control characters");
            }
            Err(other) => prop_assert!(false, "unexpected refusal {other:?} of {body}"),
        }
    }

    #[test]
    fn titles_are_trimmed_and_counted_in_characters(raw in any::<String>()) {
        match Title::parse(&raw) {
            Ok(title) => {
                prop_assert_eq!(&*title, raw.trim());
                prop_assert!((1..=500).contains(&title.chars().count()));
            }
            Err(_) => prop_assert!(!(1..=500).contains(&raw.trim().chars().count())),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded(raw in any::<String>()) {
        match Name::parse("name", &raw) {
            Ok(name) => {
                prop_assert_eq!(&*name, raw.trim());
                prop_assert!((1..=200).contains(&name.chars().count()));
            }
            Err(_) => prop_assert!(!(1..=200).contains(&raw.trim().chars().count())),
        }
    }

    #[test]
    fn accepted_urls_are_absolute_http_with_a_host(raw in "(https?|ftp|javascript)?:?(//)?[a-z0-9.:@/%?#\\[\\]-]{0,40}|\\PC{0,40}") {
        if let Ok(url) = FileUrl::parse(&raw) {
            let parsed = url::Url::parse(&url).expect("accepted URLs parse");
            prop_assert!(matches!(parsed.scheme(), "http" | "https"));
            prop_assert!(parsed.has_host());
            prop_assert!(url.chars().count() <= 2048);
        }
    }

    #[test]
    fn accepted_emails_have_a_local_part_and_a_domain(raw in "\\PC{0,30}@?\\PC{0,30}") {
        if let Ok(email) = Email::parse(&raw) {
            prop_assert!(email.len() <= 254);
            prop_assert!(!email.chars().any(char::is_whitespace));
            let (local, domain) = email.split_once('@').expect("an @");
            prop_assert!(!local.is_empty() && !domain.is_empty());
        }
    }

    #[test]
    fn idempotency_keys_are_visible_ascii(raw in any::<String>()) {
        let visible = !raw.is_empty() && raw.len() <= 200 && raw.bytes().all(|b| b.is_ascii_graphic());
        prop_assert_eq!(validate_key("Idempotency-Key", &raw).is_ok(), visible);
    }

    #[test]
    fn join_payloads_get_an_answer(payload in json_value()) {
        if let Ok((vault_id, since)) = parse_join(Ok::<_, String>(payload)) {
            prop_assert!(uuid::Uuid::parse_str(&vault_id).is_ok());
            prop_assert!(since.is_none_or(|since| since.get() >= 0));
        }
    }

    #[test]
    fn command_payloads_get_an_answer(payload in json_value(), vault_id in any::<String>()) {
        let payload = match payload {
            Value::Object(mut fields) => {
                fields.insert("vaultId".into(), Value::from(vault_id));
                Value::Object(fields)
            }
            other => other,
        };
        if let Ok(command) = parse_command::<CreateSourceCommand>("source:create", "{…}", Ok::<_, String>(payload)) {
            prop_assert!(!has_control(&command.title) && !has_control(&command.file_url));
        }
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers(peer in any::<IpAddr>(), header in "\\PC{0,60}") {
        let mut headers = HeaderMap::new();
        if let Ok(value) = header.parse() {
            headers.insert("x-forwarded-for", value);
        }
        // The peer itself counts (an IPv4-mapped address as IPv4).
        prop_assert_eq!(client_address(peer, &headers, &[]), peer.to_canonical());
    }
}
