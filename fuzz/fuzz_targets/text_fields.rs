//! Any text as each validated field: what is accepted is trimmed and
//! within its bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncscript::domain::{Email, FileUrl, Name, Title};
use syncscript::idempotency::validate_key;

fuzz_target!(|raw: &str| {
    if let Ok(title) = Title::parse(raw) {
        assert_eq!(&*title, raw.trim());
        assert!((1..=500).contains(&title.chars().count()));
    }
    if let Ok(name) = Name::parse("name", raw) {
        assert!((1..=200).contains(&name.chars().count()));
    }
    if let Ok(url) = FileUrl::parse(raw) {
        assert!(url.to_ascii_lowercase().starts_with("http"));
    }
    if let Ok(email) = Email::parse(raw) {
        assert!(email.contains('@') && email.len() <= 254);
    }
    if validate_key("Idempotency-Key", raw).is_ok() {
        assert!(raw.bytes().all(|b| b.is_ascii_graphic()));
    }
});
