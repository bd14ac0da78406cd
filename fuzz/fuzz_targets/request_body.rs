//! A REST body, as bytes: read as each request type the API takes; an
//! accepted one is a JSON object.
#![no_main]

use libfuzzer_sys::fuzz_target;
use syncscript::error::parse_body;
use syncscript_protocol::{
    AddMemberRequest, CreateSourceRequest, LoginRequest, SignupRequest, UpdateSourceRequest,
};

fuzz_target!(|bytes: &[u8]| {
    let accepted = [
        parse_body::<CreateSourceRequest>(bytes).is_ok(),
        parse_body::<UpdateSourceRequest>(bytes).is_ok(),
        parse_body::<AddMemberRequest>(bytes).is_ok(),
        parse_body::<SignupRequest>(bytes).is_ok(),
        parse_body::<LoginRequest>(bytes).is_ok(),
    ];
    if accepted.contains(&true) {
        let value: serde_json::Value = serde_json::from_slice(bytes).expect("accepted bodies are JSON");
        assert!(value.is_object());
    }
});
