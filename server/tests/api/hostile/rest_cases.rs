//! The hostile REST requests and the contract's answer to each: what a
//! request claims to be, its body and framing, and the table of cases.

use super::*;

/// Who a request claims to be.
#[derive(Debug, Clone)]
pub(super) enum Auth {
    Owner,
    Viewer,
    Nobody,
    /// This header instead of a bearer token.
    Header(&'static str, Vec<u8>),
}

/// A request body and how it is framed.
#[derive(Debug, Clone)]
pub(super) enum Body {
    None,
    /// With its `Content-Length`.
    Bytes(Vec<u8>),
    /// `Transfer-Encoding: chunked`, no length announced.
    Chunked(Vec<u8>),
    /// A `Content-Length` of `length` announced, only `sent` sent.
    Lying {
        length: u64,
        sent: Vec<u8>,
    },
}

/// What a row written by an accepted request is.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// `POST …/sources`: a source row and one event.
    SourceCreated,
    /// `PATCH /api/sources/{id}`: one event.
    SourceUpdated,
    /// `POST /api/vaults`: a vault (and its owner's membership), no event.
    VaultCreated,
}

/// The contract's answer to one request.
#[derive(Debug, Clone)]
pub(super) enum Expect {
    /// Refused in the contract's shape; nothing written.
    Refused {
        status: u16,
        code: &'static str,
        message: Msg,
    },
    /// Refused by the HTTP library before the app (no JSON body).
    Bare(u16),
    /// A read that succeeds; nothing written; `pointer` in the answer is
    /// `value` when given.
    Answered {
        status: u16,
        pointer: &'static str,
        value: Option<Value>,
    },
    /// Accepted: exactly one row/event as `kind` says, and `field` reads
    /// back as `value` in the answer and in a fresh read.
    Stored {
        kind: Kind,
        field: &'static str,
        value: String,
    },
    /// The first answer to [`RETRY_KEY`] again, marked as replayed; nothing
    /// written.
    Replayed,
}

pub(super) fn bad_request() -> Expect {
    Expect::Refused {
        status: 400,
        code: "BAD_REQUEST",
        message: Msg::Any,
    }
}

/// A 400 with exactly `message` (no parser position in it).
pub(super) fn bad_request_exactly(message: &str) -> Expect {
    Expect::Refused {
        status: 400,
        code: "BAD_REQUEST",
        message: Msg::Exact(message.to_owned()),
    }
}

pub(super) fn invalid(field: &'static str) -> Expect {
    Expect::Refused {
        status: 422,
        code: "VALIDATION",
        message: Msg::Field(field),
    }
}

pub(super) fn invalid_saying(message: &str) -> Expect {
    Expect::Refused {
        status: 422,
        code: "VALIDATION",
        message: Msg::Exact(message.to_owned()),
    }
}

/// A control character anywhere in a string of the body is refused,
/// naming the top-level field (docs/protocol.md, Conventions).
pub(super) fn control_in(field: &str) -> Expect {
    invalid_saying(&format!("{field}: must not contain control characters"))
}

/// A malformed `Idempotency-Key` (docs/protocol.md, Retry-safe mutations).
pub(super) fn bad_key() -> Expect {
    invalid_saying("Idempotency-Key: must be 1-200 visible ASCII characters")
}

pub(super) fn key_reused() -> Expect {
    invalid_saying("Idempotency-Key: was used for a different request")
}

pub(super) fn refused(status: u16, code: &'static str, message: &str) -> Expect {
    Expect::Refused {
        status,
        code,
        message: Msg::Exact(message.to_owned()),
    }
}

pub(super) fn no_route() -> Expect {
    refused(404, "NOT_FOUND", "No such route")
}

pub(super) fn no_method() -> Expect {
    refused(404, "NOT_FOUND", "This route does not serve that method")
}

pub(super) fn too_large() -> Expect {
    refused(
        413,
        "PAYLOAD_TOO_LARGE",
        "request body is larger than 65536 bytes",
    )
}

pub(super) fn uri_too_long() -> Expect {
    refused(414, "URI_TOO_LONG", "request URI is longer than 8192 bytes")
}

pub(super) fn stored(kind: Kind, field: &'static str, value: &str) -> Expect {
    Expect::Stored {
        kind,
        field,
        value: value.to_owned(),
    }
}

pub(super) fn answered(pointer: &'static str, value: Value) -> Expect {
    Expect::Answered {
        status: 200,
        pointer,
        value: Some(value),
    }
}

/// One hostile request and the contract's answer to it.
#[derive(Debug, Clone)]
pub(super) struct RestCase {
    pub(super) what: &'static str,
    pub(super) method: &'static str,
    pub(super) target: String,
    pub(super) auth: Auth,
    pub(super) content_type: Option<&'static str>,
    pub(super) headers: Vec<(&'static str, Vec<u8>)>,
    pub(super) body: Body,
    pub(super) expect: Expect,
}

pub(super) fn request(
    what: &'static str,
    method: &'static str,
    target: impl Into<String>,
) -> RestCase {
    RestCase {
        what,
        method,
        target: target.into(),
        auth: Auth::Owner,
        content_type: None,
        headers: Vec::new(),
        body: Body::None,
        expect: bad_request(),
    }
}

pub(super) fn get(what: &'static str, target: impl Into<String>) -> RestCase {
    request(what, "GET", target)
}

pub(super) fn delete(what: &'static str, target: impl Into<String>) -> RestCase {
    request(what, "DELETE", target)
}

/// A request with this exact body text, sent as `application/json`.
pub(super) fn with_text(
    what: &'static str,
    method: &'static str,
    target: impl Into<String>,
    body: &str,
) -> RestCase {
    RestCase {
        content_type: Some("application/json"),
        body: Body::Bytes(body.as_bytes().to_vec()),
        ..request(what, method, target)
    }
}

pub(super) fn post(what: &'static str, target: impl Into<String>, body: &str) -> RestCase {
    with_text(what, "POST", target, body)
}

pub(super) fn patch(what: &'static str, target: impl Into<String>, body: &str) -> RestCase {
    with_text(what, "PATCH", target, body)
}

/// A request with `body` serialized (control characters become `\uXXXX`
/// escapes, as a client library would send them).
pub(super) fn post_json(what: &'static str, target: impl Into<String>, body: &Value) -> RestCase {
    post(what, target, &body.to_string())
}

pub(super) fn patch_json(what: &'static str, target: impl Into<String>, body: &Value) -> RestCase {
    patch(what, target, &body.to_string())
}

impl RestCase {
    pub(super) fn answers(self, expect: Expect) -> RestCase {
        RestCase { expect, ..self }
    }

    pub(super) fn by(self, auth: Auth) -> RestCase {
        RestCase { auth, ..self }
    }

    pub(super) fn content_type(self, content_type: Option<&'static str>) -> RestCase {
        RestCase {
            content_type,
            ..self
        }
    }

    pub(super) fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> RestCase {
        self.headers.push((name, value.into()));
        self
    }

    pub(super) fn body(self, body: Body) -> RestCase {
        RestCase { body, ..self }
    }
}

/// `{"title": title, "fileUrl": FILE_URL}`.
pub(super) fn source_body(title: &str) -> Value {
    json!({"title": title, "fileUrl": FILE_URL})
}

/// A JSON object of exactly `size` bytes with an empty `name` (so that a
/// body that is read is refused with 422 `name`).
pub(super) fn padded_body(size: usize) -> Vec<u8> {
    let frame = r#"{"name":"","pad":""}"#.len();
    format!(r#"{{"name":"","pad":"{}"}}"#, "x".repeat(size - frame)).into_bytes()
}

/// `depth` nested arrays around `1`.
pub(super) fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

pub(super) fn rest_cases(w: &World) -> Vec<RestCase> {
    let v = &w.vault;
    let s = &w.source;
    let viewer = &w.viewer.id;
    let sources = format!("/api/vaults/{v}/sources");
    let events = format!("/api/vaults/{v}/events");
    let vaults = "/api/vaults";
    let members = format!("/api/vaults/{v}/members");
    let one_source = format!("/api/sources/{s}");
    let smiles_500 = "😀".repeat(500);
    let accents_500 = "e\u{301}".repeat(250);
    let retried = w.retried_body.to_string();
    vec![
        // Wrong types and shapes.
        post("name is null", vaults, r#"{"name": null}"#).answers(bad_request_exactly(
            "invalid request body: invalid type: null, expected a string",
        )),
        post("name is an array", vaults, r#"{"name": ["Reading"]}"#).answers(bad_request()),
        post("name is an object", vaults, r#"{"name": {"text": "R"}}"#).answers(bad_request()),
        post("name is a boolean", vaults, r#"{"name": true}"#).answers(bad_request()),
        post("body is an array", vaults, r#"[{"name": "R"}]"#).answers(bad_request()),
        post("body is a string", vaults, r#""name""#).answers(bad_request()),
        post("body is null", vaults, "null").answers(bad_request()),
        post("body is empty", vaults, "").answers(bad_request()),
        post("trailing garbage", vaults, r#"{"name": "R"} x"#)
            .answers(bad_request_exactly("invalid JSON: trailing characters")),
        post("trailing comma", vaults, r#"{"name": "R",}"#).answers(bad_request()),
        post("single quotes", vaults, "{'name': 'R'}").answers(bad_request()),
        post("fileUrl is a number", &sources, r#"{"title": "T", "fileUrl": 12}"#)
            .answers(bad_request()),
        post_json(
            "title is an array",
            &sources,
            &json!({"title": ["T"], "fileUrl": FILE_URL}),
        )
        .answers(bad_request()),
        post("member email is a number", &members, r#"{"email": 5, "role": "viewer"}"#)
            .answers(bad_request()),
        post_json(
            "role is a number",
            &members,
            &json!({"email": w.contributor.email, "role": 1}),
        )
        .answers(bad_request()),
        post_json(
            "role in capitals",
            &members,
            &json!({"email": "outsider@test.dev", "role": "OWNER"}),
        )
        .answers(invalid("role")),
        patch(
            "role is an array",
            format!("{members}/{viewer}"),
            r#"{"role": ["owner"]}"#,
        )
        .answers(bad_request()),
        patch(
            "source PATCH with only nulls",
            &one_source,
            r#"{"title": null, "fileUrl": null}"#,
        )
        .answers(invalid("title")),
        post_json(
            "password is a number",
            "/api/auth/signup",
            &json!({"email": "num@test.dev", "name": "Num", "password": 12_345_678}),
        )
        .by(Auth::Nobody)
        .answers(bad_request()),
        // Huge numbers.
        post("name is 1e400", vaults, r#"{"name": 1e400}"#).answers(bad_request()),
        post(
            "name is a 30-digit integer",
            vaults,
            r#"{"name": 123456789012345678901234567890}"#,
        )
        .answers(bad_request()),
        get("since beyond i64", format!("{events}?since=99999999999999999999"))
            .answers(bad_request()),
        get("since below i64", format!("{events}?since=-99999999999999999999"))
            .answers(bad_request()),
        get("since is i64::MAX", format!("{events}?since={}", i64::MAX))
            .answers(answered("/events", json!([]))),
        // since and limit.
        get("since is -1", format!("{events}?since=-1")).answers(invalid_saying(
            "since: must be a whole number, 0 or more",
        )),
        get("since is i64::MIN", format!("{events}?since={}", i64::MIN))
            .answers(invalid("since")),
        get("since is a fraction", format!("{events}?since=1.5")).answers(bad_request()),
        get("since is a boolean", format!("{events}?since=true")).answers(bad_request()),
        get("since is empty", format!("{events}?since=")).answers(bad_request()),
        get("since is hexadecimal", format!("{events}?since=0x10")).answers(bad_request()),
        get("since is a NUL", format!("{events}?since=%00")).answers(bad_request()),
        get("limit is 0", format!("{events}?limit=0")).answers(invalid("limit")),
        get("limit above the cap", format!("{events}?limit=10001"))
            .answers(invalid_saying("limit: must be 1-10000")),
        get("limit is negative", format!("{events}?limit=-5")).answers(invalid("limit")),
        get("limit is a word", format!("{events}?limit=ten")).answers(bad_request()),
        get("limit in exponent form", format!("{events}?limit=1e3")).answers(bad_request()),
        get(
            "limit at the cap, since past the head",
            format!("{events}?since=1000&limit=10000"),
        )
        .answers(answered("/events", json!([]))),
        // Control characters: refused at any depth (docs/protocol.md, Conventions).
        post_json("NUL in a title", &sources, &source_body("a\u{0}b"))
            .answers(control_in("title")),
        post_json("ESC in a vault name", vaults, &json!({"name": "\u{1b}[31mred"}))
            .answers(control_in("name")),
        post_json("newline in a title", &sources, &source_body("line\nbreak"))
            .answers(control_in("title")),
        post_json(
            "leading tab in a title (checked before trimming)",
            &sources,
            &source_body("\tTabbed"),
        )
        .answers(control_in("title")),
        post_json("C1 NEL in a title", &sources, &source_body("T\u{85}"))
            .answers(control_in("title")),
        post_json("DEL in a title", &sources, &source_body("del\u{7f}"))
            .answers(control_in("title")),
        post_json(
            "tab inside a fileUrl",
            &sources,
            &json!({"title": "T", "fileUrl": "https://x.org/a\tb.pdf"}),
        )
        .answers(control_in("fileUrl")),
        post_json(
            "BEL in an unknown field",
            &sources,
            &json!({"title": "T", "fileUrl": FILE_URL, "note": "\u{7}"}),
        )
        .answers(control_in("note")),
        post_json(
            "control character deep in an unknown field",
            &sources,
            &json!({"title": "T", "fileUrl": FILE_URL, "meta": {"deep": ["ok", "\u{1}"]}}),
        )
        .answers(control_in("meta")),
        patch_json(
            "NUL in a vault rename",
            format!("/api/vaults/{v}"),
            &json!({"name": "x\u{0}"}),
        )
        .answers(control_in("name")),
        patch_json("NUL in a source update", &one_source, &json!({"title": "\u{0}"}))
            .answers(control_in("title")),
        post_json(
            "NUL in a signup email",
            "/api/auth/signup",
            &json!({"email": "nul\u{0}@test.dev", "name": "Nul", "password": PASSWORD}),
        )
        .by(Auth::Nobody)
        .answers(control_in("email")),
        post_json(
            "CR LF in a signup name",
            "/api/auth/signup",
            &json!({"email": "crlf@test.dev", "name": "Eve\r\n", "password": PASSWORD}),
        )
        .by(Auth::Nobody)
        .answers(control_in("name")),
        post_json(
            "NUL in a login email",
            "/api/auth/login",
            &json!({"email": format!("{}\u{0}", w.owner.email), "password": PASSWORD}),
        )
        .by(Auth::Nobody)
        .answers(control_in("email")),
        post_json(
            "NUL in a login password",
            "/api/auth/login",
            &json!({"email": w.owner.email, "password": format!("{PASSWORD}\u{0}")}),
        )
        .by(Auth::Nobody)
        .answers(control_in("password")),
        post_json(
            "NUL in a member email",
            &members,
            &json!({"email": "outsider@test.dev\u{0}", "role": "viewer"}),
        )
        .answers(control_in("email")),
        // Unicode: stored verbatim, lengths in characters (docs/protocol.md,
        // Conventions).
        post_json("emoji title", &sources, &source_body("📚 Reading 👩‍👩‍👧 group"))
            .answers(stored(Kind::SourceCreated, "title", "📚 Reading 👩‍👩‍👧 group")),
        post_json(
            "right-to-left title with an override",
            &sources,
            &source_body("مجموعة القراءة \u{202e}fdp.exe\u{202c}"),
        )
        .answers(stored(
            Kind::SourceCreated,
            "title",
            "مجموعة القراءة \u{202e}fdp.exe\u{202c}",
        )),
        post_json(
            "decomposed accents are not normalised",
            &sources,
            &source_body("Cafe\u{301} Ame\u{301}lie"),
        )
        .answers(stored(Kind::SourceCreated, "title", "Cafe\u{301} Ame\u{301}lie")),
        post_json(
            "zero-width characters are kept",
            &sources,
            &source_body("a\u{200b}b\u{200d}c\u{2060}d\u{feff}"),
        )
        .answers(stored(
            Kind::SourceCreated,
            "title",
            "a\u{200b}b\u{200d}c\u{2060}d\u{feff}",
        )),
        post_json(
            "Unicode spaces are trimmed, inner ones kept",
            &sources,
            &source_body("\u{3000}\u{2003} Trimmed  title \u{a0}"),
        )
        .answers(stored(Kind::SourceCreated, "title", "Trimmed  title")),
        post_json("500 emoji are 500 characters", &sources, &source_body(&smiles_500))
            .answers(stored(Kind::SourceCreated, "title", &smiles_500)),
        post_json(
            "501 emoji are too many",
            &sources,
            &source_body(&"😀".repeat(501)),
        )
        .answers(invalid_saying("title: must be 1-500 characters")),
        post_json(
            "250 letters with combining accents are 500 characters",
            &sources,
            &source_body(&accents_500),
        )
        .answers(stored(Kind::SourceCreated, "title", &accents_500)),
        post_json(
            "251 letters with combining accents are too many",
            &sources,
            &source_body(&"e\u{301}".repeat(251)),
        )
        .answers(invalid("title")),
        post_json(
            "zero-width characters count",
            &sources,
            &source_body(&format!("{}\u{200b}\u{200b}", "a".repeat(499))),
        )
        .answers(invalid("title")),
        post(
            "escaped surrogate pair",
            &sources,
            &format!(r#"{{"title": "\ud83d\ude00 ok", "fileUrl": "{FILE_URL}"}}"#),
        )
        .answers(stored(Kind::SourceCreated, "title", "😀 ok")),
        post(
            "lone surrogate escape",
            &sources,
            &format!(r#"{{"title": "\ud800", "fileUrl": "{FILE_URL}"}}"#),
        )
        .answers(bad_request()),
        post("invalid UTF-8", vaults, "")
            .body(Body::Bytes(b"{\"name\": \"\xff\xfe\"}".to_vec()))
            .answers(bad_request()),
        // SQL and HTML: stored and returned verbatim.
        post_json("SQL in a title", &sources, &source_body("'; DROP TABLE sources; --"))
            .answers(stored(Kind::SourceCreated, "title", "'; DROP TABLE sources; --")),
        post_json(
            "SQL that would delete the log",
            &sources,
            &source_body("Robert'); DELETE FROM vault_events WHERE ('1'='1"),
        )
        .answers(stored(
            Kind::SourceCreated,
            "title",
            "Robert'); DELETE FROM vault_events WHERE ('1'='1",
        )),
        post_json("SQL in a vault name", vaults, &json!({"name": "\" OR 1=1 --"}))
            .answers(stored(Kind::VaultCreated, "name", "\" OR 1=1 --")),
        post_json(
            "a script tag in a title",
            &sources,
            &source_body("<script>alert(1)</script>"),
        )
        .answers(stored(Kind::SourceCreated, "title", "<script>alert(1)</script>")),
        post_json(
            "HTML in a fileUrl query",
            &sources,
            &json!({"title": "T", "fileUrl": "https://example.org/a.pdf?q=<img src=x onerror=alert(1)>"}),
        )
        .answers(stored(
            Kind::SourceCreated,
            "fileUrl",
            "https://example.org/a.pdf?q=<img src=x onerror=alert(1)>",
        )),
        patch_json(
            "HTML entities in a title update",
            &one_source,
            &json!({"title": "<b>bold</b> &amp; \"quoted\""}),
        )
        .answers(stored(
            Kind::SourceUpdated,
            "title",
            "<b>bold</b> &amp; \"quoted\"",
        )),
        // Traversal and encoded separators in ids.
        get("dot-dot as a vault id", "/api/vaults/..").answers(bad_request()),
        get("encoded dot-dot as a vault id", "/api/vaults/%2e%2e").answers(bad_request()),
        get(
            "encoded traversal to another route",
            "/api/vaults/%2e%2e%2f%2e%2e%2fme",
        )
        .answers(bad_request()),
        get(
            "encoded traversal to a file",
            "/api/vaults/..%2F..%2Fetc%2Fpasswd",
        )
        .answers(bad_request()),
        get("encoded slash inside an id", format!("/api/vaults/{v}%2Fsources"))
            .answers(bad_request()),
        get("NUL after an id", format!("/api/sources/{s}%00")).answers(bad_request()),
        get("plain traversal is not resolved", format!("/api/vaults/{v}/../../me"))
            .answers(no_route()),
        delete("DELETE with a traversal id", "/api/vaults/%2e%2e").answers(bad_request()),
        patch_json(
            "PATCH with a backslash traversal id",
            "/api/sources/..%5c..%5cwindows",
            &json!({"title": "T"}),
        )
        .answers(bad_request()),
        get(
            "SQL as a vault id",
            "/api/vaults/%27%20OR%20%271%27%3D%271",
        )
        .answers(bad_request()),
        delete("dot-dot as a member id", format!("{members}/%2e%2e")).answers(bad_request()),
        // Huge, chunked, lying and deep bodies.
        post_json("a 70 kB body", &sources, &source_body(&"x".repeat(70_000)))
            .answers(too_large()),
        post("a body of exactly 64 KiB is read", vaults, "")
            .body(Body::Bytes(padded_body(MAX_BODY)))
            .answers(invalid("name")),
        post("a body one byte over 64 KiB", vaults, "")
            .body(Body::Bytes(padded_body(MAX_BODY + 1)))
            .answers(too_large()),
        post("a chunked 70 kB body", &sources, "")
            .body(Body::Chunked(
                source_body(&"x".repeat(70_000)).to_string().into_bytes(),
            ))
            .answers(too_large()),
        post("a Content-Length of 100 MB, 200 kB sent", vaults, "")
            .body(Body::Lying {
                length: 100 << 20,
                sent: format!(r#"{{"name": "{}"#, "x".repeat(200_000)).into_bytes(),
            })
            .answers(too_large()),
        post(
            "129 levels of nesting",
            vaults,
            &format!(r#"{{"name": {}}}"#, nested(129)),
        )
        .answers(bad_request()),
        post(
            "30,000 levels of nesting in an unknown field",
            vaults,
            &format!(r#"{{"name": "R", "x": {}}}"#, nested(30_000)),
        )
        .answers(bad_request()),
        post(
            "100 levels of nesting in an unknown field are read",
            vaults,
            &format!(r#"{{"name": "", "x": {}}}"#, nested(100)),
        )
        .answers(invalid("name")),
        // Duplicate keys: a 400, the server never picks one (docs/protocol.md,
        // Conventions).
        post("a repeated name", vaults, r#"{"name": "A", "name": "B"}"#)
            .answers(bad_request_exactly(
                "invalid request body: duplicate field `name`",
            )),
        post(
            "a repeated title",
            &sources,
            &format!(r#"{{"title": "A", "fileUrl": "{FILE_URL}", "title": "B"}}"#),
        )
        .answers(bad_request_exactly(
            "invalid request body: duplicate field `title`",
        )),
        post(
            "a repeated login email",
            "/api/auth/login",
            &format!(
                r#"{{"email": "{0}", "email": "{0}", "password": "{PASSWORD}"}}"#,
                w.owner.email
            ),
        )
        .by(Auth::Nobody)
        .answers(bad_request_exactly(
            "invalid request body: duplicate field `email`",
        )),
        post(
            "a repeated unknown field is ignored",
            vaults,
            r#"{"name": "", "x": 1, "x": 2}"#,
        )
        .answers(invalid("name")),
        // Content types: only JSON ones, else a 400, never a 415
        // (docs/protocol.md, Conventions).
        post_json("no Content-Type", vaults, &json!({"name": "R"}))
            .content_type(None)
            .answers(bad_request()),
        post_json("text/plain", vaults, &json!({"name": "R"}))
            .content_type(Some("text/plain"))
            .answers(bad_request()),
        post("a form", vaults, "name=R")
            .content_type(Some("application/x-www-form-urlencoded"))
            .answers(bad_request()),
        post("multipart", vaults, "--x\r\n\r\nR\r\n--x--")
            .content_type(Some("multipart/form-data; boundary=x"))
            .answers(bad_request()),
        post_json("application/jsonx", vaults, &json!({"name": "R"}))
            .content_type(Some("application/jsonx"))
            .answers(bad_request()),
        post("a form sent as JSON", vaults, "name=R").answers(bad_request()),
        post_json("JSON with a charset is read", vaults, &json!({"name": ""}))
            .content_type(Some("application/json; charset=utf-8"))
            .answers(invalid("name")),
        post_json("a +json type is read", vaults, &json!({"name": ""}))
            .content_type(Some("application/vnd.syncscript+json"))
            .answers(invalid("name")),
        post_json("a JSON type in capitals is read", vaults, &json!({"name": ""}))
            .content_type(Some("APPLICATION/JSON"))
            .answers(invalid("name")),
        // Long targets: over 8,192 bytes is a 414 (docs/protocol.md, Errors).
        get("a 9 kB path", format!("/api/vaults/{}", "a".repeat(9_000)))
            .answers(uri_too_long()),
        get("a 9 kB query", format!("{events}?pad={}", "x".repeat(9_000)))
            .answers(uri_too_long()),
        post_json(
            "a 9 kB path on a mutation",
            format!("/api/vaults/{}/sources", "a".repeat(9_000)),
            &source_body("T"),
        )
        .answers(uri_too_long()),
        get(
            "a target of exactly 8 KiB gets the app's answer",
            format!("/api/vaults/{}", "a".repeat(MAX_TARGET - "/api/vaults/".len())),
        )
        .answers(bad_request()),
        get(
            "a target one byte over 8 KiB",
            format!("/api/vaults/{}", "a".repeat(MAX_TARGET + 1 - "/api/vaults/".len())),
        )
        .answers(uri_too_long()),
        get("a 70 kB path", format!("/api/vaults/{}", "a".repeat(70_000)))
            .answers(Expect::Bare(414)),
        // Unknown routes and methods.
        get("an unknown route", "/api/nope").answers(no_route()),
        get("the bare API prefix", "/api").answers(no_route()),
        get("a route in capitals", "/API/VAULTS").answers(no_route()),
        get("a path below a route", format!("{sources}/extra")).answers(no_route()),
        request("PUT on the vault list", "PUT", vaults).answers(no_method()),
        delete("DELETE on the vault list", vaults).answers(no_method()),
        request("PATCH on /api/me", "PATCH", "/api/me").answers(no_method()),
        request("POST on the event log", "POST", &events).answers(no_method()),
        request("a made-up method", "BREW", vaults).answers(no_method()),
        request("a lower-case method", "get", "/api/me").answers(no_method()),
        request("OPTIONS on a source", "OPTIONS", &one_source).answers(no_method()),
        request("TRACE on /api/me", "TRACE", "/api/me").answers(no_method()),
        // Idempotency-Key (docs/protocol.md, Retry-safe mutations).
        post_json("an empty Idempotency-Key", &sources, &source_body("K"))
            .header("Idempotency-Key", "")
            .answers(bad_key()),
        post_json("a 201-character Idempotency-Key", &sources, &source_body("K"))
            .header("Idempotency-Key", "k".repeat(201))
            .answers(bad_key()),
        post_json("an Idempotency-Key with a space", &sources, &source_body("K"))
            .header("Idempotency-Key", "two words")
            .answers(bad_key()),
        post_json("a non-ASCII Idempotency-Key", &sources, &source_body("K"))
            .header("Idempotency-Key", "clé".as_bytes())
            .answers(bad_key()),
        post_json("an Idempotency-Key with a tab", &sources, &source_body("K"))
            .header("Idempotency-Key", "a\tb")
            .answers(bad_key()),
        delete(
            "a bad Idempotency-Key on a DELETE",
            format!("/api/sources/{}", w.doomed[0]),
        )
            .header("Idempotency-Key", "")
            .answers(bad_key()),
        patch_json(
            "a bad Idempotency-Key on a rename",
            format!("/api/vaults/{v}"),
            &json!({"name": "Renamed"}),
        )
        .header("Idempotency-Key", "x y")
        .answers(bad_key()),
        post_json("a reused key with another body", &sources, &source_body("Other"))
            .header("Idempotency-Key", RETRY_KEY)
            .answers(key_reused()),
        patch_json(
            "a reused key on another route",
            format!("/api/vaults/{v}"),
            &json!({"name": "Renamed"}),
        )
        .header("Idempotency-Key", RETRY_KEY)
        .answers(key_reused()),
        post("the same request again", &sources, &retried)
            .header("Idempotency-Key", RETRY_KEY)
            .answers(Expect::Replayed),
        post(
            "the same request with its keys reordered and spaced",
            &sources,
            &format!("{{ \"fileUrl\" : \"{FILE_URL}\" ,\n \"title\":\"Retried\" }}"),
        )
        .header("Idempotency-Key", RETRY_KEY)
        .answers(Expect::Replayed),
        // Hostile credentials.
        get("SQL as a bearer token", "/api/me")
            .by(Auth::Header("Authorization", b"Bearer ' OR '1'='1".to_vec()))
            .answers(refused(401, "UNAUTHORIZED", "Invalid or expired session")),
        get("a 10 kB bearer token", "/api/me")
            .by(Auth::Header(
                "Authorization",
                format!("Bearer {}", "A".repeat(10_000)).into_bytes(),
            ))
            .answers(refused(401, "UNAUTHORIZED", "Invalid or expired session")),
        get("a bearer token with a non-ASCII byte", "/api/me")
            .by(Auth::Header(
                "Authorization",
                format!("Bearer {}\u{ff}", w.owner.token).into_bytes(),
            ))
            .answers(Expect::Refused {
                status: 401,
                code: "UNAUTHORIZED",
                message: Msg::Any,
            }),
        get("a Basic credential", "/api/me")
            .by(Auth::Header("Authorization", b"Basic b3duZXI6cHc=".to_vec()))
            .answers(refused(401, "UNAUTHORIZED", "Authentication required")),
        get("SQL as a session cookie", "/api/me")
            .by(Auth::Header(
                "Cookie",
                b"syncscript_session=' OR 1=1 --".to_vec(),
            ))
            .answers(refused(401, "UNAUTHORIZED", "Invalid or expired session")),
        post_json("a mutation without a session", vaults, &json!({"name": "R"}))
            .by(Auth::Nobody)
            .answers(refused(401, "UNAUTHORIZED", "Authentication required")),
        post_json("a viewer's hostile write", &sources, &source_body("<script>"))
            .by(Auth::Viewer)
            .answers(refused(403, "FORBIDDEN", "Insufficient permissions")),
    ]
}
