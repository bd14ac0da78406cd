//! A Socket.IO command payload, as JSON text: read as `vault:join` and as
//! each source command.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncscript::socket::payload::{parse_command, parse_join};
use syncscript_protocol::{CreateSourceCommand, DeleteSourceCommand, UpdateSourceCommand};

fuzz_target!(|bytes: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return;
    };
    if let Ok((vault_id, since)) = parse_join(Ok::<_, String>(payload.clone())) {
        assert_eq!(vault_id.len(), 36);
        assert!(since.is_none_or(|since| since.get() >= 0));
    }
    let command = |payload: serde_json::Value| Ok::<_, String>(payload);
    let _ = parse_command::<CreateSourceCommand>("source:create", "", command(payload.clone()));
    let _ = parse_command::<UpdateSourceCommand>("source:update", "", command(payload.clone()));
    let _ = parse_command::<DeleteSourceCommand>("source:delete", "", command(payload));
});
