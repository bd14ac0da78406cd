//! Any text as each validated field: what is accepted is trimmed and
//! within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncscript::auth::{validate_email, validate_name};
use syncscript::idempotency::validate_key;
use syncscript::sources::{validate_file_url, validate_title};

fuzz_target!(|raw: &str| {
    if let Ok(title) = validate_title(raw) {
        assert_eq!(title, raw.trim());
        assert!((1..=500).contains(&title.chars().count()));
    }
    if let Ok(name) = validate_name("name", raw) {
        assert!((1..=200).contains(&name.chars().count()));
    }
    if let Ok(url) = validate_file_url(raw) {
        assert!(url.to_ascii_lowercase().starts_with("http"));
    }
    if let Ok(email) = validate_email(raw) {
        assert!(email.contains('@') && email.len() <= 254);
    }
    if validate_key("Idempotency-Key", raw).is_ok() {
        assert!(raw.bytes().all(|b| b.is_ascii_graphic()));
    }
});
