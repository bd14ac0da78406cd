//! The hostile Socket.IO packets and the contract's answer to each: who
//! opens the connection, the frames sent and the reply expected.

use super::*;

/// Who opens the raw connection.
#[derive(Debug, Clone, Copy)]
pub(super) enum Who {
    Owner,
    Viewer,
    /// The transport only: the frames carry the CONNECT (or none).
    Anonymous,
}

/// The contract's answer to one packet (or a few).
#[derive(Debug, Clone)]
pub(super) enum Reply {
    /// A refused command: through ack 1 when one was asked, else through
    /// the `error` event.
    Error {
        acked: bool,
        code: &'static str,
        message: Msg,
    },
    /// The server closes the transport.
    Closed,
    /// Nothing is answered, and the connection keeps serving.
    Ignored,
    /// This packet is the answer (a namespace's CONNECT_ERROR).
    Packet(&'static str),
    /// The CONNECT is refused: CONNECT_ERROR with this message.
    Refused(&'static str),
}

/// Frames sent on one connection and the answer they get.
#[derive(Debug, Clone)]
pub(super) struct SocketCase {
    pub(super) what: &'static str,
    pub(super) by: Who,
    pub(super) frames: Vec<Frame>,
    pub(super) reply: Reply,
}

pub(super) fn socket_case(what: &'static str, frames: Vec<Frame>, reply: Reply) -> SocketCase {
    SocketCase {
        what,
        by: Who::Owner,
        frames,
        reply,
    }
}

/// A case of one command with ack 1.
pub(super) fn command(what: &'static str, event: &str, payload: Value, reply: Reply) -> SocketCase {
    socket_case(what, vec![emit_ack(event, payload)], reply)
}

impl SocketCase {
    pub(super) fn by(self, by: Who) -> SocketCase {
        SocketCase { by, ..self }
    }
}

/// `42 1 [event, payload]`: an event with ack id 1.
pub(super) fn emit_ack(event: &str, payload: Value) -> Frame {
    Frame::Text(format!("421{}", json!([event, payload])))
}

/// `42[event, payload]`: an event without an ack.
pub(super) fn emit(event: &str, payload: Value) -> Frame {
    Frame::Text(format!("42{}", json!([event, payload])))
}

pub(super) fn text(packet: impl Into<String>) -> Frame {
    Frame::Text(packet.into())
}

pub(super) fn acked(code: &'static str, message: Msg) -> Reply {
    Reply::Error {
        acked: true,
        code,
        message,
    }
}

pub(super) fn shape(command: &'static str) -> Reply {
    let expected = match command {
        "source:create" => "source:create expects {vaultId, title, fileUrl}",
        "source:update" => "source:update expects {sourceId, title?, fileUrl?}",
        "source:delete" => "source:delete expects {sourceId}",
        "vault:join" => "vault:join expects a vault id or {vaultId, since?}",
        _ => "vault:leave expects a vault id",
    };
    acked("BAD_REQUEST", Msg::Exact(expected.into()))
}

pub(super) fn bad(message: Msg) -> Reply {
    acked("BAD_REQUEST", message)
}

pub(super) fn socket_control_in(field: &str) -> Reply {
    acked(
        "VALIDATION",
        Msg::Exact(format!("{field}: must not contain control characters")),
    )
}

pub(super) fn bad_op_id() -> Reply {
    acked(
        "VALIDATION",
        Msg::Exact("opId: must be 1-200 visible ASCII characters".into()),
    )
}

pub(super) fn socket_cases(w: &World) -> Vec<SocketCase> {
    let v = w.vault.as_str();
    let s = w.source.as_str();
    let create = |extra: Value| {
        let mut payload = json!({"vaultId": v, "title": "T", "fileUrl": FILE_URL});
        if let (Some(payload), Value::Object(extra)) = (payload.as_object_mut(), extra) {
            payload.extend(extra);
        }
        payload
    };
    let placeholder = json!({"_placeholder": true, "num": 0});
    vec![
        // Wrong payload types and shapes.
        command(
            "create with a number",
            "source:create",
            json!(42),
            shape("source:create"),
        ),
        command(
            "create with an array",
            "source:create",
            json!(["x"]),
            shape("source:create"),
        ),
        // An array is not an object, even one whose items are the fields in
        // their order (serde would fill the struct from it).
        command(
            "create with the fields as an array",
            "source:create",
            json!([v, "positional", FILE_URL]),
            shape("source:create"),
        ),
        command(
            "update with the fields as an array",
            "source:update",
            json!([s, "positional"]),
            shape("source:update"),
        ),
        command(
            "delete with the id in an array",
            "source:delete",
            json!([w.doomed[4]]),
            shape("source:delete"),
        ),
        command(
            "create with null",
            "source:create",
            Value::Null,
            shape("source:create"),
        ),
        socket_case(
            "create without an argument",
            vec![text(r#"421["source:create"]"#)],
            shape("source:create"),
        ),
        command(
            "create with a numeric title",
            "source:create",
            create(json!({"title": 7})),
            shape("source:create"),
        ),
        command(
            "create without fileUrl",
            "source:create",
            json!({"vaultId": v, "title": "T"}),
            shape("source:create"),
        ),
        command(
            "create with a traversal vault id",
            "source:create",
            create(json!({"vaultId": "../../etc/passwd"})),
            bad(Msg::Exact(
                r#"malformed vault id "../../etc/passwd""#.into(),
            )),
        ),
        command(
            "create with an encoded traversal vault id",
            "source:create",
            create(json!({"vaultId": "%2e%2e%2f"})),
            bad(Msg::StartsWith("malformed vault id")),
        ),
        command(
            "create with a javascript: URL",
            "source:create",
            create(json!({"fileUrl": "javascript:alert(1)"})),
            acked(
                "VALIDATION",
                Msg::Exact("fileUrl: must be an http(s) URL".into()),
            ),
        ),
        command(
            "create with a 501-character title",
            "source:create",
            create(json!({"title": "x".repeat(501)})),
            acked(
                "VALIDATION",
                Msg::Exact("title: must be 1-500 characters".into()),
            ),
        ),
        // Control characters: refused in payloads too (docs/protocol.md,
        // Conventions).
        command(
            "create with a NUL in the title",
            "source:create",
            create(json!({"title": "a\u{0}b"})),
            socket_control_in("title"),
        ),
        command(
            "create with a newline in the title",
            "source:create",
            create(json!({"title": "line\nbreak"})),
            socket_control_in("title"),
        ),
        command(
            "update with a NUL in the title",
            "source:update",
            json!({"sourceId": s, "title": "\u{0}"}),
            socket_control_in("title"),
        ),
        // opId (docs/protocol.md, Retry-safe mutations).
        command(
            "an opId that is a number",
            "source:create",
            create(json!({"opId": 42})),
            bad(Msg::Any),
        ),
        command(
            "an opId that is an object",
            "source:delete",
            json!({"sourceId": w.doomed[1], "opId": {"nested": 1}}),
            bad(Msg::Any),
        ),
        command(
            "an empty opId",
            "source:create",
            create(json!({"opId": ""})),
            bad_op_id(),
        ),
        command(
            "a 201-character opId",
            "source:create",
            create(json!({"opId": "k".repeat(201)})),
            bad_op_id(),
        ),
        command(
            "a non-ASCII opId",
            "source:update",
            json!({"sourceId": s, "title": "T", "opId": "clé"}),
            bad_op_id(),
        ),
        command(
            "an opId with a control character",
            "source:delete",
            json!({"sourceId": w.doomed[2], "opId": "a\u{0}"}),
            acked("VALIDATION", Msg::Field("opId")),
        ),
        // update and delete.
        command(
            "update with a numeric id",
            "source:update",
            json!({"sourceId": 7, "title": "T"}),
            shape("source:update"),
        ),
        command(
            "update without fields",
            "source:update",
            json!({"sourceId": s}),
            acked(
                "VALIDATION",
                Msg::Exact("title: give at least one of title and fileUrl".into()),
            ),
        ),
        socket_case(
            "a repeated key keeps its last value",
            vec![text(format!(
                r#"421["source:update",{{"sourceId":"{s}","title":"ok","title":""}}]"#
            ))],
            acked(
                "VALIDATION",
                Msg::Exact("title: must be 1-500 characters".into()),
            ),
        ),
        command(
            "delete with a traversal id",
            "source:delete",
            json!({"sourceId": "../x"}),
            bad(Msg::Exact(r#"malformed source id "../x""#.into())),
        ),
        command(
            "delete with {}",
            "source:delete",
            json!({}),
            shape("source:delete"),
        ),
        socket_case(
            "a viewer's delete without an ack",
            vec![emit("source:delete", json!({"sourceId": w.doomed[3]}))],
            Reply::Error {
                acked: false,
                code: "FORBIDDEN",
                message: Msg::Exact("Insufficient permissions".into()),
            },
        )
        .by(Who::Viewer),
        socket_case(
            "a malformed create without an ack",
            vec![emit("source:create", json!("nonsense"))],
            Reply::Error {
                acked: false,
                code: "BAD_REQUEST",
                message: Msg::Exact("source:create expects {vaultId, title, fileUrl}".into()),
            },
        ),
        // vault:join and since (docs/protocol.md, Limits and `vault:join`).
        command(
            "join with a number",
            "vault:join",
            json!(42),
            shape("vault:join"),
        ),
        command(
            "join with null",
            "vault:join",
            Value::Null,
            shape("vault:join"),
        ),
        command(
            "join with a malformed id",
            "vault:join",
            json!("not-a-uuid"),
            bad(Msg::Exact(r#"malformed vault id "not-a-uuid""#.into())),
        ),
        command(
            "since is -1",
            "vault:join",
            json!({"vaultId": v, "since": -1}),
            acked(
                "VALIDATION",
                Msg::Exact("since: must be a whole number, 0 or more".into()),
            ),
        ),
        command(
            "since is a string",
            "vault:join",
            json!({"vaultId": v, "since": "5"}),
            bad(Msg::Any),
        ),
        command(
            "since is a fraction",
            "vault:join",
            json!({"vaultId": v, "since": 1.5}),
            bad(Msg::Any),
        ),
        command(
            "since is 1e300",
            "vault:join",
            json!({"vaultId": v, "since": 1e300}),
            bad(Msg::Any),
        ),
        command(
            "since is a boolean",
            "vault:join",
            json!({"vaultId": v, "since": true}),
            bad(Msg::Any),
        ),
        socket_case(
            "since beyond i64",
            vec![text(format!(
                r#"421["vault:join",{{"vaultId":"{v}","since":99999999999999999999}}]"#
            ))],
            bad(Msg::Any),
        ),
        command(
            "leave with {}",
            "vault:leave",
            json!({}),
            shape("vault:leave"),
        ),
        command(
            "leave with a number",
            "vault:leave",
            json!(3),
            shape("vault:leave"),
        ),
        // Unknown and forged events.
        command(
            "an unknown event",
            "vault:destroy",
            json!({"vaultId": v}),
            bad(Msg::Exact(r#"unknown event "vault:destroy""#.into())),
        ),
        command(
            "an emoji event name",
            "💣",
            json!({}),
            bad(Msg::Exact("unknown event \"💣\"".into())),
        ),
        command(
            "a 1,000-character event name",
            &"e".repeat(1000),
            json!({}),
            bad(Msg::StartsWith("unknown event")),
        ),
        command(
            "a forged source:created",
            "source:created",
            json!({"vaultId": v, "seq": 99, "source": {"id": UNKNOWN_ID, "vaultId": v}}),
            bad(Msg::Exact(
                "source:created is sent by the server only: use source:create".into(),
            )),
        ),
        command(
            "a forged presence",
            "presence",
            json!({"vaultId": v, "present": []}),
            bad(Msg::Exact("presence is sent by the server only".into())),
        ),
        command(
            "a forged vault:deleted",
            "vault:deleted",
            json!({"vaultId": v, "seq": 99}),
            bad(Msg::StartsWith("vault:deleted is sent by the server only")),
        ),
        command(
            "a forged error",
            "error",
            json!({"code": "INTERNAL", "message": "x"}),
            bad(Msg::StartsWith("error is sent by the server only")),
        ),
        command(
            "a viewer's forged member:added",
            "member:added",
            json!({"vaultId": v, "member": {"userId": w.viewer.id, "role": "owner"}}),
            acked("FORBIDDEN", Msg::Exact("Insufficient permissions".into())),
        )
        .by(Who::Viewer),
        command(
            "a viewer's forged source:deleted",
            "source:deleted",
            json!({"sourceId": s}),
            acked("FORBIDDEN", Msg::Exact("Insufficient permissions".into())),
        )
        .by(Who::Viewer),
        // Binary attachments.
        socket_case(
            "a binary title",
            vec![
                text(format!(
                    "451-1{}",
                    json!(["source:create", {"vaultId": v, "title": placeholder, "fileUrl": FILE_URL}])
                )),
                Frame::Binary(b"binary title".to_vec()),
            ],
            shape("source:create"),
        ),
        socket_case(
            "a binary join payload",
            vec![
                text(format!("451-1{}", json!(["vault:join", placeholder]))),
                Frame::Binary(b"binary".to_vec()),
            ],
            shape("vault:join"),
        ),
        socket_case(
            "a placeholder without an attachment",
            vec![text(format!("421{}", json!(["vault:join", placeholder])))],
            shape("vault:join"),
        ),
        socket_case(
            "a placeholder pointing past the attachments",
            vec![
                text(format!(
                    "451-1{}",
                    json!(["vault:join", {"_placeholder": true, "num": 7}])
                )),
                Frame::Binary(b"binary".to_vec()),
            ],
            shape("vault:join"),
        ),
        socket_case(
            "a binary frame nobody announced",
            vec![Frame::Binary(vec![1, 2, 3])],
            Reply::Closed,
        ),
        socket_case(
            "two attachments announced, one sent, then a text packet",
            vec![
                text(format!("452-1{}", json!(["vault:join", placeholder]))),
                Frame::Binary(b"one".to_vec()),
                emit_ack("vault:join", json!(v)),
            ],
            Reply::Closed,
        ),
        // Malformed Engine.IO and Socket.IO packets.
        socket_case(
            "an unknown Engine.IO type",
            vec![text("9hello")],
            Reply::Closed,
        ),
        socket_case("an empty frame", vec![text("")], Reply::Closed),
        socket_case(
            "an unknown Socket.IO type",
            vec![text(r#"49["x"]"#)],
            Reply::Closed,
        ),
        socket_case(
            "truncated JSON",
            vec![text(r#"421["source:create",{"#)],
            Reply::Closed,
        ),
        socket_case(
            "an object for the arguments",
            vec![text(r#"421{"a":1}"#)],
            Reply::Closed,
        ),
        socket_case("no event name", vec![text("421[]")], Reply::Closed),
        socket_case(
            "a numeric event name",
            vec![text("421[42,{}]")],
            Reply::Closed,
        ),
        socket_case(
            "a negative ack id",
            vec![text(r#"42-1["vault:join","x"]"#)],
            Reply::Closed,
        ),
        socket_case(
            "an ack id beyond u64",
            vec![text(r#"4299999999999999999999["vault:join","x"]"#)],
            Reply::Error {
                acked: false,
                code: "BAD_REQUEST",
                message: Msg::Any,
            },
        ),
        socket_case(
            "a CONNECT_ERROR from the client",
            vec![text(r#"44{"message":"x"}"#)],
            Reply::Closed,
        ),
        socket_case(
            "an ack nobody asked for",
            vec![text(r#"431["forged"]"#)],
            Reply::Ignored,
        ),
        socket_case(
            "an event for a namespace never joined",
            vec![text(format!(
                "42/admin,1{}",
                json!(["source:create", create(json!({}))])
            ))],
            Reply::Ignored,
        ),
        socket_case(
            "a CONNECT to an unknown namespace",
            vec![text("40/admin,")],
            Reply::Packet(r#"44/admin,{"message":"Invalid namespace"}"#),
        ),
        socket_case(
            "a second CONNECT",
            vec![text(format!("40{}", json!({"token": w.owner.token})))],
            Reply::Ignored,
        ),
        socket_case(
            "an Engine.IO upgrade on a WebSocket",
            vec![text("5")],
            Reply::Closed,
        ),
        socket_case(
            "an Engine.IO noop from the client",
            vec![text("6")],
            Reply::Closed,
        ),
        socket_case(
            "an Engine.IO open from the client",
            vec![text("0")],
            Reply::Closed,
        ),
        socket_case(
            "5,000 levels of nesting",
            vec![text(format!("421[\"vault:join\",{}]", nested(5000)))],
            shape("vault:join"),
        ),
        // Oversize packets: over 64 KiB closes the connection (docs/protocol.md,
        // Limits).
        command(
            "an 80 KiB packet",
            "source:create",
            create(json!({"title": "x".repeat(80 * 1024)})),
            Reply::Closed,
        ),
        command(
            "a 1 MiB packet",
            "source:create",
            create(json!({"title": "x".repeat(1 << 20)})),
            Reply::Closed,
        ),
        // Hostile handshakes.
        socket_case(
            "a numeric token",
            vec![text(r#"40{"token":42}"#)],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "auth that is a string",
            vec![text(r#"40"token""#)],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "SQL as a token",
            vec![text(format!("40{}", json!({"token": "' OR '1'='1"})))],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "a NUL in the token",
            vec![text(format!(
                "40{}",
                json!({"token": format!("{}\u{0}", w.owner.token)})
            ))],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "a 50,000-character token",
            vec![text(format!("40{}", json!({"token": "A".repeat(50_000)})))],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "truncated CONNECT JSON",
            vec![text(r#"40{"token":"#)],
            Reply::Refused("UNAUTHORIZED"),
        )
        .by(Who::Anonymous),
        socket_case(
            "a command before the CONNECT is never run",
            vec![
                emit_ack("source:create", create(json!({"title": "Before CONNECT"}))),
                text(format!("40{}", json!({"token": w.owner.token}))),
            ],
            Reply::Closed,
        )
        .by(Who::Anonymous),
    ]
}
