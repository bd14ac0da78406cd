//! Hostile and malformed input, as tables of cases run on both backends.
//!
//! REST requests are written byte for byte over a raw TCP connection (so
//! that nothing normalises them first): wrong types and shapes, huge
//! numbers, control characters, Unicode, SQL and HTML text, traversal in
//! ids, huge, chunked, lying, deep and slow bodies, duplicate keys, content
//! types, over-long targets, unknown routes and methods, `since`/`limit`,
//! `Idempotency-Key` and hostile credentials. Socket.IO payloads and raw
//! Engine.IO/Socket.IO packets go over a raw WebSocket: malformed frames,
//! binary attachments, unknown and forged events, wrong payload types, an
//! `opId` of a wrong type, hostile handshakes, floods and oversize packets.
//!
//! Every case asserts the answer of the contract (docs/protocol.md and the
//! issue-11 decisions: control characters, duplicate keys, 414, `since`,
//! `Idempotency-Key`, the abuse limits), that nothing was written (row
//! counts, every vault's head and the vault's logged seqs) unless the case
//! is about what gets stored, and that the server still serves a normal
//! request afterwards. A table runs all its cases and then reports every
//! failed one at once, so that one answer that is off does not hide the
//! others.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript::Config;
use syncscript::config::Limits;
use syncscript_protocol::names;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::socket::{SocketBuilder, TestSocket, WAIT};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, PASSWORD, TestApp, TestUser};

on_both_backends!(
    hostile_rest_requests,
    slow_bodies_do_not_hold_up_other_clients,
    hostile_socket_packets,
    floods_are_limited_and_answered,
    a_transport_that_never_connects_is_closed,
);

/// An id that names nothing.
const UNKNOWN_ID: &str = "01900000-0000-7000-8000-000000000000";
/// A file URL that passes validation.
const FILE_URL: &str = "https://example.org/paper.pdf";
/// The key of the setup's successful request, reused by hostile ones.
const RETRY_KEY: &str = "retry-me-0001";
/// Largest request body (docs/protocol.md, Limits).
const MAX_BODY: usize = 65_536;
/// Longest request target with a JSON answer (issue-11 decision D).
const MAX_TARGET: usize = 8_192;
/// How long a raw HTTP exchange may take.
const HTTP_PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// The world every case runs in, and what "nothing was written" means.
// ---------------------------------------------------------------------------

/// A server with a vault, its members and a few sources, and the answer of
/// one successful request sent with [`RETRY_KEY`].
struct World {
    app: TestApp,
    owner: TestUser,
    viewer: TestUser,
    contributor: TestUser,
    vault: String,
    source: String,
    /// The body of the retried request and its first answer.
    retried_body: Value,
    retried_answer: Value,
    /// Sources of the vault that only destructive cases use (one each),
    /// so that a delete the server wrongly accepts spoils no other case.
    doomed: Vec<String>,
    /// More vaults of the owner, for the floods.
    spare_vaults: Vec<String>,
}

async fn world(backend: Backend) -> World {
    world_with(backend, |_| {}).await
}

/// The world on a server configured by `configure`.
async fn world_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> World {
    let app = TestApp::spawn_with(backend, configure).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let source = app.create_source(&team.owner, &vault, "Existing").await.id;
    let mut doomed = Vec::new();
    for index in 0..4 {
        let title = format!("Doomed {index}");
        doomed.push(app.create_source(&team.owner, &vault, &title).await.id);
    }
    let retried_body = json!({"title": "Retried", "fileUrl": FILE_URL});
    let response = app
        .request(
            Method::POST,
            &format!("/api/vaults/{vault}/sources"),
            Some(&team.owner),
        )
        .header("Idempotency-Key", RETRY_KEY)
        .json(&retried_body)
        .send()
        .await
        .expect("retried request sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let retried_answer: Value = response.json().await.expect("retried answer");
    World {
        app,
        owner: team.owner,
        viewer: team.viewer,
        contributor: team.contributor,
        vault,
        source,
        retried_body,
        retried_answer,
        doomed,
        spare_vaults: Vec::new(),
    }
}

/// The tables whose row counts a refused request must leave alone
/// (`idempotency_keys`: only a success is remembered, decision G).
const TABLES: [&str; 7] = [
    "users",
    "sessions",
    "vaults",
    "vault_users",
    "sources",
    "vault_events",
    "idempotency_keys",
];

/// Everything a request could have written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    rows: Vec<(&'static str, i64)>,
    /// Every vault's id and head.
    heads: Vec<(String, i64)>,
    /// The seqs logged for the world's vault.
    seqs: Vec<i64>,
}

impl Snapshot {
    /// What an accepted write leaves: `rows` more rows in `table`, `events`
    /// more events in `vault` (its head and its log move on), and with
    /// `new_vault` that vault at head 0 with its owner's membership.
    fn after(
        &self,
        table: &str,
        rows: i64,
        vault: &str,
        events: i64,
        new_vault: Option<&str>,
    ) -> Snapshot {
        let mut next = self.clone();
        for (name, count) in &mut next.rows {
            if *name == table {
                *count += rows;
            }
            if *name == "vault_events" {
                *count += events;
            }
            if *name == "vault_users" && new_vault.is_some() {
                *count += 1;
            }
        }
        for (id, head) in &mut next.heads {
            if id == vault {
                *head += events;
            }
        }
        if let Some(id) = new_vault {
            next.heads.push((id.to_owned(), 0));
            next.heads.sort();
        }
        let last = next.seqs.last().copied().unwrap_or(0);
        next.seqs.extend((1..=events).map(|n| last + n));
        next
    }
}

async fn snapshot(app: &TestApp, vault: &str) -> Snapshot {
    let mut rows = Vec::new();
    for table in TABLES {
        rows.push((table, app.count(table).await));
    }
    let heads: Vec<(String, i64)> = sqlx::query_as("SELECT id, event_seq FROM vaults ORDER BY id")
        .fetch_all(&app.db)
        .await
        .expect("heads");
    Snapshot {
        rows,
        heads,
        seqs: app.logged_seqs(vault).await,
    }
}

fn unchanged(before: &Snapshot, after: &Snapshot) -> Result<(), String> {
    if before == after {
        Ok(())
    } else {
        Err(format!(
            "it wrote something:\n  before {before:?}\n  after  {after:?}"
        ))
    }
}

/// A normal request still gets a normal answer: the vault, with the head
/// its log ends at.
async fn still_serves(world: &World) -> Result<(), String> {
    let (status, body) = world
        .app
        .call(
            Method::GET,
            &format!("/api/vaults/{}", world.vault),
            Some(&world.owner),
            None,
        )
        .await;
    let logged = world.app.logged_seqs(&world.vault).await;
    let head = logged.last().copied().unwrap_or(0);
    if status == StatusCode::OK && body["seq"] == head {
        Ok(())
    } else {
        Err(format!(
            "a normal request afterwards got {status} {body} (head {head})"
        ))
    }
}

/// How an error message must read.
#[derive(Debug, Clone)]
enum Msg {
    /// Any readable message.
    Any,
    Exact(String),
    /// `<field>: <rule>`.
    Field(&'static str),
    Contains(&'static str),
    StartsWith(&'static str),
}

fn check_message(expected: &Msg, actual: &Value) -> Result<(), String> {
    let Some(text) = actual.as_str().filter(|text| !text.is_empty()) else {
        return Err(format!("no readable message: {actual}"));
    };
    let fits = match expected {
        Msg::Any => true,
        Msg::Exact(exact) => text == exact,
        Msg::Field(field) => text.starts_with(&format!("{field}: ")),
        Msg::Contains(part) => text.contains(part),
        Msg::StartsWith(start) => text.starts_with(start),
    };
    if fits {
        Ok(())
    } else {
        Err(format!("message {text:?} is not {expected:?}"))
    }
}

/// Fails with every failed case of a table (each was also printed when it
/// happened, in case a later one panics).
fn report(table: &str, total: usize, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} of {total} {table} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------
// REST: a raw HTTP/1.1 client and the table.
// ---------------------------------------------------------------------------

/// Who a request claims to be.
#[derive(Debug, Clone)]
enum Auth {
    Owner,
    Viewer,
    Nobody,
    /// This header instead of a bearer token.
    Header(&'static str, Vec<u8>),
}

/// A request body and how it is framed.
#[derive(Debug, Clone)]
enum Body {
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
enum Kind {
    /// `POST …/sources`: a source row and one event.
    SourceCreated,
    /// `PATCH /api/sources/{id}`: one event.
    SourceUpdated,
    /// `POST /api/vaults`: a vault (and its owner's membership), no event.
    VaultCreated,
}

/// The contract's answer to one request.
#[derive(Debug, Clone)]
enum Expect {
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

fn bad_request() -> Expect {
    Expect::Refused {
        status: 400,
        code: "BAD_REQUEST",
        message: Msg::Any,
    }
}

fn bad_request_saying(part: &'static str) -> Expect {
    Expect::Refused {
        status: 400,
        code: "BAD_REQUEST",
        message: Msg::Contains(part),
    }
}

fn invalid(field: &'static str) -> Expect {
    Expect::Refused {
        status: 422,
        code: "VALIDATION",
        message: Msg::Field(field),
    }
}

fn invalid_saying(message: &str) -> Expect {
    Expect::Refused {
        status: 422,
        code: "VALIDATION",
        message: Msg::Exact(message.to_owned()),
    }
}

/// Decision A: a control character anywhere in a string of the body.
fn control_in(field: &str) -> Expect {
    invalid_saying(&format!("{field}: must not contain control characters"))
}

/// Decision G: a malformed `Idempotency-Key`.
fn bad_key() -> Expect {
    invalid_saying("Idempotency-Key: must be 1-200 visible ASCII characters")
}

fn key_reused() -> Expect {
    invalid_saying("Idempotency-Key: was used for a different request")
}

fn refused(status: u16, code: &'static str, message: &str) -> Expect {
    Expect::Refused {
        status,
        code,
        message: Msg::Exact(message.to_owned()),
    }
}

fn no_route() -> Expect {
    refused(404, "NOT_FOUND", "No such route")
}

fn no_method() -> Expect {
    refused(404, "NOT_FOUND", "This route does not serve that method")
}

fn too_large() -> Expect {
    refused(
        413,
        "PAYLOAD_TOO_LARGE",
        "request body is larger than 65536 bytes",
    )
}

fn uri_too_long() -> Expect {
    refused(414, "URI_TOO_LONG", "request URI is longer than 8192 bytes")
}

fn stored(kind: Kind, field: &'static str, value: &str) -> Expect {
    Expect::Stored {
        kind,
        field,
        value: value.to_owned(),
    }
}

fn answered(pointer: &'static str, value: Value) -> Expect {
    Expect::Answered {
        status: 200,
        pointer,
        value: Some(value),
    }
}

/// One hostile request and the contract's answer to it.
#[derive(Debug, Clone)]
struct RestCase {
    what: &'static str,
    method: &'static str,
    target: String,
    auth: Auth,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Body,
    expect: Expect,
}

fn request(what: &'static str, method: &'static str, target: impl Into<String>) -> RestCase {
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

fn get(what: &'static str, target: impl Into<String>) -> RestCase {
    request(what, "GET", target)
}

fn delete(what: &'static str, target: impl Into<String>) -> RestCase {
    request(what, "DELETE", target)
}

/// A request with this exact body text, sent as `application/json`.
fn with_text(
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

fn post(what: &'static str, target: impl Into<String>, body: &str) -> RestCase {
    with_text(what, "POST", target, body)
}

fn patch(what: &'static str, target: impl Into<String>, body: &str) -> RestCase {
    with_text(what, "PATCH", target, body)
}

/// A request with `body` serialized (control characters become `\uXXXX`
/// escapes, as a client library would send them).
fn post_json(what: &'static str, target: impl Into<String>, body: &Value) -> RestCase {
    post(what, target, &body.to_string())
}

fn patch_json(what: &'static str, target: impl Into<String>, body: &Value) -> RestCase {
    patch(what, target, &body.to_string())
}

impl RestCase {
    fn answers(self, expect: Expect) -> RestCase {
        RestCase { expect, ..self }
    }

    fn by(self, auth: Auth) -> RestCase {
        RestCase { auth, ..self }
    }

    fn content_type(self, content_type: Option<&'static str>) -> RestCase {
        RestCase {
            content_type,
            ..self
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> RestCase {
        self.headers.push((name, value.into()));
        self
    }

    fn body(self, body: Body) -> RestCase {
        RestCase { body, ..self }
    }
}

/// `{"title": title, "fileUrl": FILE_URL}`.
fn source_body(title: &str) -> Value {
    json!({"title": title, "fileUrl": FILE_URL})
}

/// A JSON object of exactly `size` bytes with an empty `name` (so that a
/// body that is read is refused with 422 `name`).
fn padded_body(size: usize) -> Vec<u8> {
    let frame = r#"{"name":"","pad":""}"#.len();
    format!(r#"{{"name":"","pad":"{}"}}"#, "x".repeat(size - frame)).into_bytes()
}

/// `depth` nested arrays around `1`.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

fn rest_cases(w: &World) -> Vec<RestCase> {
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
        post("name is null", vaults, r#"{"name": null}"#).answers(bad_request()),
        post("name is an array", vaults, r#"{"name": ["Reading"]}"#).answers(bad_request()),
        post("name is an object", vaults, r#"{"name": {"text": "R"}}"#).answers(bad_request()),
        post("name is a boolean", vaults, r#"{"name": true}"#).answers(bad_request()),
        post("body is an array", vaults, r#"[{"name": "R"}]"#).answers(bad_request()),
        post("body is a string", vaults, r#""name""#).answers(bad_request()),
        post("body is null", vaults, "null").answers(bad_request()),
        post("body is empty", vaults, "").answers(bad_request()),
        post("trailing garbage", vaults, r#"{"name": "R"} x"#).answers(bad_request()),
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
        // Control characters (decision A).
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
        // Unicode: stored verbatim, lengths in characters (decision F).
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
        // Duplicate keys (decision B).
        post("a repeated name", vaults, r#"{"name": "A", "name": "B"}"#)
            .answers(bad_request_saying("duplicate field `name`")),
        post(
            "a repeated title",
            &sources,
            &format!(r#"{{"title": "A", "fileUrl": "{FILE_URL}", "title": "B"}}"#),
        )
        .answers(bad_request_saying("duplicate field `title`")),
        post(
            "a repeated login email",
            "/api/auth/login",
            &format!(
                r#"{{"email": "{0}", "email": "{0}", "password": "{PASSWORD}"}}"#,
                w.owner.email
            ),
        )
        .by(Auth::Nobody)
        .answers(bad_request_saying("duplicate field `email`")),
        post(
            "a repeated unknown field is ignored",
            vaults,
            r#"{"name": "", "x": 1, "x": 2}"#,
        )
        .answers(invalid("name")),
        // Content types (decision C).
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
        // Long targets (decision D).
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
        // Idempotency-Key (decision G).
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

/// The request's bytes, as a client would put them on the wire.
fn wire_request(world: &World, case: &RestCase) -> Vec<u8> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        case.method, case.target, world.app.addr
    )
    .into_bytes();
    let mut header = |name: &str, value: &[u8]| {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    };
    match &case.auth {
        Auth::Owner => header(
            "Authorization",
            format!("Bearer {}", world.owner.token).as_bytes(),
        ),
        Auth::Viewer => header(
            "Authorization",
            format!("Bearer {}", world.viewer.token).as_bytes(),
        ),
        Auth::Nobody => {}
        Auth::Header(name, value) => header(name, value),
    }
    if let Some(content_type) = case.content_type {
        header("Content-Type", content_type.as_bytes());
    }
    for (name, value) in &case.headers {
        header(name, value);
    }
    let body = match &case.body {
        Body::None => Vec::new(),
        Body::Bytes(bytes) => {
            header("Content-Length", bytes.len().to_string().as_bytes());
            bytes.clone()
        }
        Body::Chunked(bytes) => {
            header("Transfer-Encoding", b"chunked");
            let mut chunked = Vec::new();
            for chunk in bytes.chunks(4096) {
                chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                chunked.extend_from_slice(chunk);
                chunked.extend_from_slice(b"\r\n");
            }
            chunked.extend_from_slice(b"0\r\n\r\n");
            chunked
        }
        Body::Lying { length, sent } => {
            header("Content-Length", length.to_string().as_bytes());
            sent.clone()
        }
    };
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(&body);
    head
}

/// An answer read off the wire.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn describe(&self) -> String {
        format!(
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
        )
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The response in `bytes` once it is complete (head and the body its
/// framing announces).
fn complete_response(bytes: &[u8], closed: bool) -> Option<RawResponse> {
    let end = find(bytes, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = &bytes[end + 4..];
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if value("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest, closed)?
    } else if let Some(length) = value("content-length").and_then(|v| v.parse::<usize>().ok()) {
        if rest.len() < length && !closed {
            return None;
        }
        rest[..length.min(rest.len())].to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    Some(RawResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8], closed: bool) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(rest, b"\r\n") else {
            return closed.then_some(body);
        };
        let line = String::from_utf8_lossy(&rest[..line_end]);
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16).ok()?;
        if size == 0 {
            return Some(body);
        }
        let start = line_end + 2;
        if rest.len() < start + size + 2 {
            return closed.then_some(body);
        }
        body.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// Sends `request` on a connection of its own and reads the answer. The
/// request is written while the answer is read: a server may answer (413)
/// before it has read everything.
async fn send_raw(addr: SocketAddr, request: Vec<u8>) -> Result<RawResponse, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let (mut reader, mut writer) = stream.into_split();
    // The write half stays open until the answer is read: closing it would
    // tell the server the client is gone.
    let writing = tokio::spawn(async move {
        writer.write_all(&request).await.ok();
        writer
    });
    let mut received = Vec::new();
    let reading = tokio::time::timeout(HTTP_PATIENCE, async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return complete_response(&received, true),
                Ok(n) => {
                    received.extend_from_slice(&buffer[..n]);
                    if let Some(response) = complete_response(&received, false) {
                        return Some(response);
                    }
                }
            }
        }
    })
    .await;
    drop(writing.await);
    match reading {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err(format!(
            "no readable answer: {:?}",
            String::from_utf8_lossy(&received[..received.len().min(300)])
        )),
        Err(_) => Err(format!("no answer within {HTTP_PATIENCE:?}")),
    }
}

/// Reads a stored row back through the API, by the answer's id.
async fn read_back(world: &World, kind: Kind, answer: &Value) -> Result<Value, String> {
    let (path, key) = match kind {
        Kind::SourceCreated | Kind::SourceUpdated => (
            format!(
                "/api/sources/{}",
                answer["source"]["id"].as_str().unwrap_or("")
            ),
            "source",
        ),
        Kind::VaultCreated => (
            format!(
                "/api/vaults/{}",
                answer["vault"]["id"].as_str().unwrap_or("")
            ),
            "vault",
        ),
    };
    let (status, body) = world
        .app
        .call(Method::GET, &path, Some(&world.owner), None)
        .await;
    if status == StatusCode::OK {
        Ok(body[key].clone())
    } else {
        Err(format!("reading {path} back: {status} {body}"))
    }
}

async fn run_rest_case(world: &World, case: &RestCase) -> Result<(), String> {
    let before = snapshot(&world.app, &world.vault).await;
    let response = send_raw(world.app.addr, wire_request(world, case)).await?;
    let answer = response.json();
    let mut expected_after = before.clone();
    match &case.expect {
        Expect::Refused {
            status,
            code,
            message,
        } => {
            if response.status != *status || answer["error"]["code"] != *code {
                return Err(format!(
                    "answered {}, the contract says {status} {code}",
                    response.describe()
                ));
            }
            check_message(message, &answer["error"]["message"])?;
        }
        Expect::Bare(status) => {
            if response.status != *status {
                return Err(format!(
                    "answered {}, expected a bare {status}",
                    response.describe()
                ));
            }
        }
        Expect::Answered {
            status,
            pointer,
            value,
        } => {
            let got = answer.pointer(pointer).cloned().unwrap_or(Value::Null);
            if response.status != *status || value.as_ref().is_some_and(|value| *value != got) {
                return Err(format!(
                    "answered {}, expected {status} with {pointer} = {value:?}",
                    response.describe()
                ));
            }
        }
        Expect::Stored { kind, field, value } => {
            let (status, key, table, rows, events) = match kind {
                Kind::SourceCreated => (201, "source", "sources", 1, 1),
                Kind::SourceUpdated => (200, "source", "sources", 0, 1),
                Kind::VaultCreated => (201, "vault", "vaults", 1, 0),
            };
            if response.status != status || answer[key][*field] != *value {
                return Err(format!(
                    "answered {}, expected {status} with {key}.{field} = {value:?}",
                    response.describe()
                ));
            }
            let again = read_back(world, *kind, &answer).await?;
            if again[*field] != *value {
                return Err(format!("read back {key}.{field} as {}", again[*field]));
            }
            let new_vault = matches!(kind, Kind::VaultCreated)
                .then(|| answer["vault"]["id"].as_str().unwrap_or_default());
            expected_after = before.after(table, rows, &world.vault, events, new_vault);
        }
        Expect::Replayed => {
            if response.status != 201 || answer != world.retried_answer {
                return Err(format!(
                    "answered {}, expected the first answer again: 201 {}",
                    response.describe(),
                    world.retried_answer
                ));
            }
            if response.header("idempotency-replayed") != Some("true") {
                return Err("no `Idempotency-Replayed: true` header".into());
            }
        }
    }
    let after = snapshot(&world.app, &world.vault).await;
    if after != expected_after {
        return Err(format!(
            "wrote something else than expected:\n  before   {before:?}\n  expected {expected_after:?}\n  after    {after:?}"
        ));
    }
    still_serves(world).await
}

async fn hostile_rest_requests(backend: Backend) {
    let world = world(backend).await;
    let cases = rest_cases(&world);
    assert!(cases.len() >= 55, "{} REST cases", cases.len());
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        if let Err(why) = run_rest_case(&world, case).await {
            let failure = format!(
                "REST #{index} {:?} ({} {}): {why}",
                case.what,
                case.method,
                shorten(&case.target)
            );
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    report("REST", cases.len(), &failures);
}

fn shorten(text: &str) -> String {
    if text.chars().count() > 90 {
        format!(
            "{}… ({} bytes)",
            text.chars().take(80).collect::<String>(),
            text.len()
        )
    } else {
        text.to_owned()
    }
}

/// A body trickled a byte at a time holds one connection, not the server:
/// REST and Socket.IO clients are served while it trickles, and the slow
/// request is then answered (and refused) like any other. A client that
/// gives up halfway through its body leaves nothing behind.
async fn slow_bodies_do_not_hold_up_other_clients(backend: Backend) {
    let world = world(backend).await;
    let before = snapshot(&world.app, &world.vault).await;
    let body = br#"{"name": 7, "pad": "trickled slowly"}"#.to_vec();
    let head = format!(
        "POST /api/vaults HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        world.app.addr,
        world.owner.token,
        body.len()
    );
    let (started, has_started) = oneshot::channel();
    let (finish, may_finish) = oneshot::channel::<()>();
    let addr = world.app.addr;
    let slow = tokio::spawn(async move {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).ok();
        let (mut reader, mut writer) = stream.into_split();
        writer.write_all(head.as_bytes()).await.expect("head");
        let (last, first) = body.split_last().expect("a body");
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        let mut started = Some(started);
        for byte in first {
            pace.tick().await;
            writer.write_all(&[*byte]).await.expect("a byte");
            if let Some(started) = started.take() {
                started.send(()).ok();
            }
        }
        // The last byte waits until the other clients have been served.
        may_finish.await.ok();
        writer.write_all(&[*last]).await.expect("the last byte");
        let mut answer = Vec::new();
        reader.read_to_end(&mut answer).await.ok();
        drop(writer);
        complete_response(&answer, true)
    });
    has_started.await.expect("the slow body started");

    // Meanwhile: several REST requests, and a socket that joins.
    for _ in 0..10 {
        still_serves(&world)
            .await
            .expect("served during the slow body");
    }
    let mut socket = SocketBuilder::new(&world.app)
        .token(&world.contributor.token)
        .connect()
        .await;
    socket.join_ok(&world.vault).await;
    assert!(
        !slow.is_finished(),
        "the slow request was still being sent while the others were served"
    );
    finish.send(()).ok();
    let answer = tokio::time::timeout(HTTP_PATIENCE, slow)
        .await
        .expect("the slow request is answered")
        .expect("the slow client ran")
        .expect("a complete answer");
    assert_eq!(answer.status, 400, "{}", answer.describe());
    assert_eq!(answer.json()["error"]["code"], "BAD_REQUEST");

    // A client that stops halfway and goes away.
    let stream = TcpStream::connect(world.app.addr).await.expect("connect");
    let (reader, mut writer) = stream.into_split();
    let half = format!(
        "POST /api/vaults/{}/sources HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"title\": \"Half",
        world.vault, world.app.addr, world.owner.token
    );
    writer
        .write_all(half.as_bytes())
        .await
        .expect("half a body");
    drop(writer);
    drop(reader);

    // Headers that never end hold their connection only.
    let mut never = TcpStream::connect(world.app.addr).await.expect("connect");
    never
        .write_all(b"POST /api/vaults HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("half a head");
    still_serves(&world)
        .await
        .expect("served during endless headers");
    socket.sync().await;
    assert!(
        socket
            .take_matching(|name| names::ALL.contains(&name))
            .is_empty(),
        "nothing was broadcast"
    );
    drop(never);
    let after = snapshot(&world.app, &world.vault).await;
    unchanged(&before, &after).expect("the slow clients wrote nothing");
    still_serves(&world).await.expect("served afterwards");
}

// ---------------------------------------------------------------------------
// Socket.IO: a raw Engine.IO v4 / Socket.IO v5 client over one WebSocket.
// ---------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One frame put on the WebSocket.
#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

/// What the WebSocket gave next.
#[derive(Debug)]
enum Received {
    Text(String),
    Binary(usize),
    Closed(String),
    Silent,
}

/// A WebSocket to `/socket.io/` that speaks the packets by hand. It answers
/// the server's pings by itself.
struct RawSocket {
    ws: Ws,
    next_ack: u64,
}

impl RawSocket {
    /// The transport, up to the Engine.IO open packet (no Socket.IO
    /// CONNECT yet).
    async fn open(app: &TestApp) -> Result<RawSocket, String> {
        let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", app.addr);
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .map_err(|e| format!("websocket: {e}"))?;
        let mut socket = RawSocket { ws, next_ack: 100 };
        match socket.recv(WAIT).await {
            Received::Text(open) if open.starts_with('0') => Ok(socket),
            other => Err(format!("no Engine.IO open packet: {other:?}")),
        }
    }

    /// The transport and the CONNECT of `/` with `token`, accepted.
    async fn connect(app: &TestApp, token: &str) -> Result<RawSocket, String> {
        let mut socket = RawSocket::open(app).await?;
        socket
            .send(&Frame::Text(format!("40{}", json!({ "token": token }))))
            .await?;
        match socket.recv(WAIT).await {
            Received::Text(connected) if connected.starts_with("40") => Ok(socket),
            other => Err(format!("CONNECT not accepted: {other:?}")),
        }
    }

    async fn send(&mut self, frame: &Frame) -> Result<(), String> {
        let message = match frame {
            Frame::Text(text) => Message::text(text.clone()),
            Frame::Binary(bytes) => Message::binary(bytes.clone()),
        };
        self.ws
            .send(message)
            .await
            .map_err(|e| format!("send: {e}"))
    }

    /// The next frame within `within`; pings are answered, not returned.
    async fn recv(&mut self, within: Duration) -> Received {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next()).await;
            match next {
                Err(_) => return Received::Silent,
                Ok(None) => return Received::Closed("end of stream".into()),
                Ok(Some(Err(error))) => return Received::Closed(error.to_string()),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Received::Closed(format!("close frame {frame:?}"));
                }
                Ok(Some(Ok(Message::Text(text)))) if text.as_str() == "2" => {
                    self.ws.send(Message::text("3")).await.ok();
                }
                Ok(Some(Ok(Message::Text(text)))) => return Received::Text(text.to_string()),
                Ok(Some(Ok(Message::Binary(bytes)))) => return Received::Binary(bytes.len()),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Reads text packets until `pick` accepts one; what came before is in
    /// the error when none does.
    async fn until<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Text(text) => match pick(&text) {
                    Some(found) => return Ok(found),
                    None => seen.push(shorten(&text)),
                },
                Received::Binary(len) => seen.push(format!("<{len} binary bytes>")),
                Received::Closed(why) => {
                    return Err(format!("no {what}: closed ({why}) after {seen:?}"));
                }
                Received::Silent => {
                    return Err(format!("no {what} within {WAIT:?} after {seen:?}"));
                }
            }
        }
    }

    /// The ack with id `id`, its first argument.
    async fn ack(&mut self, id: u64) -> Result<Value, String> {
        self.until(&format!("ack {id}"), |text| parse_ack(text, id))
            .await
    }

    /// The next `error` event's payload.
    async fn error_event(&mut self) -> Result<Value, String> {
        self.until("error event", |text| {
            parse_event(text)
                .filter(|(name, _)| name == "error")
                .map(|(_, data)| data)
        })
        .await
    }

    /// Waits until the server closes the transport.
    async fn closed(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Closed(_) => return Ok(()),
                Received::Silent => {
                    return Err(format!("the connection stayed open; received {seen:?}"));
                }
                Received::Text(text) => seen.push(shorten(&text)),
                Received::Binary(len) => seen.push(format!("<{len} binary bytes>")),
            }
        }
    }

    /// A round trip: a command with an ack that the server does not know.
    /// Returns every text packet received before its answer (what the
    /// server sent before handling it).
    async fn round_trip(&mut self) -> Result<Vec<String>, String> {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send(&Frame::Text(format!("42{id}[\"test:sync\",{{}}]")))
            .await?;
        let mut before = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self
                .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
                .await
            {
                Received::Text(text) if parse_ack(&text, id).is_some() => return Ok(before),
                Received::Text(text) => before.push(text),
                Received::Binary(len) => before.push(format!("<{len} binary bytes>")),
                other => {
                    return Err(format!(
                        "the connection no longer serves: {other:?} after {before:?}"
                    ));
                }
            }
        }
    }

    async fn close(mut self) {
        tokio::time::timeout(Duration::from_secs(1), self.ws.close(None))
            .await
            .ok();
    }
}

/// The first argument of an ACK packet `43<id>[…]`.
fn parse_ack(text: &str, id: u64) -> Option<Value> {
    let rest = text.strip_prefix("43")?;
    let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if rest[..digits].parse::<u64>().ok()? != id {
        return None;
    }
    let args: Vec<Value> = serde_json::from_str(&rest[digits..]).ok()?;
    args.into_iter().next()
}

/// The name and first argument of an EVENT packet `42[name, data]`.
fn parse_event(text: &str) -> Option<(String, Value)> {
    let rest = text
        .strip_prefix("42")?
        .trim_start_matches(|c: char| c.is_ascii_digit());
    let args: Vec<Value> = serde_json::from_str(rest).ok()?;
    let mut args = args.into_iter();
    let name = args.next()?.as_str()?.to_owned();
    Some((name, args.next().unwrap_or(Value::Null)))
}

/// Who opens the raw connection.
#[derive(Debug, Clone, Copy)]
enum Who {
    Owner,
    Viewer,
    /// The transport only: the frames carry the CONNECT (or none).
    Anonymous,
}

/// The contract's answer to one packet (or a few).
#[derive(Debug, Clone)]
enum Reply {
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
struct SocketCase {
    what: &'static str,
    by: Who,
    frames: Vec<Frame>,
    reply: Reply,
}

fn socket_case(what: &'static str, frames: Vec<Frame>, reply: Reply) -> SocketCase {
    SocketCase {
        what,
        by: Who::Owner,
        frames,
        reply,
    }
}

/// A case of one command with ack 1.
fn command(what: &'static str, event: &str, payload: Value, reply: Reply) -> SocketCase {
    socket_case(what, vec![emit_ack(event, payload)], reply)
}

impl SocketCase {
    fn by(self, by: Who) -> SocketCase {
        SocketCase { by, ..self }
    }
}

/// `42 1 [event, payload]`: an event with ack id 1.
fn emit_ack(event: &str, payload: Value) -> Frame {
    Frame::Text(format!("421{}", json!([event, payload])))
}

/// `42[event, payload]`: an event without an ack.
fn emit(event: &str, payload: Value) -> Frame {
    Frame::Text(format!("42{}", json!([event, payload])))
}

fn text(packet: impl Into<String>) -> Frame {
    Frame::Text(packet.into())
}

fn acked(code: &'static str, message: Msg) -> Reply {
    Reply::Error {
        acked: true,
        code,
        message,
    }
}

fn shape(command: &'static str) -> Reply {
    let expected = match command {
        "source:create" => "source:create expects {vaultId, title, fileUrl}",
        "source:update" => "source:update expects {sourceId, title?, fileUrl?}",
        "source:delete" => "source:delete expects {sourceId}",
        "vault:join" => "vault:join expects a vault id or {vaultId, since?}",
        _ => "vault:leave expects a vault id",
    };
    acked("BAD_REQUEST", Msg::Exact(expected.into()))
}

fn bad(message: Msg) -> Reply {
    acked("BAD_REQUEST", message)
}

fn socket_control_in(field: &str) -> Reply {
    acked(
        "VALIDATION",
        Msg::Exact(format!("{field}: must not contain control characters")),
    )
}

fn bad_op_id() -> Reply {
    acked(
        "VALIDATION",
        Msg::Exact("opId: must be 1-200 visible ASCII characters".into()),
    )
}

fn socket_cases(w: &World) -> Vec<SocketCase> {
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
        // Control characters (decision A).
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
        // opId (decision G).
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
        // vault:join and since (decision E).
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
        // Oversize packets (decision I: 64 KiB).
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

async fn open_for(world: &World, who: Who) -> Result<RawSocket, String> {
    match who {
        Who::Owner => RawSocket::connect(&world.app, &world.owner.token).await,
        Who::Viewer => RawSocket::connect(&world.app, &world.viewer.token).await,
        Who::Anonymous => RawSocket::open(&world.app).await,
    }
}

/// Sends the case's frames and checks the answer; the connection is
/// returned when it should still serve.
async fn play(world: &World, case: &SocketCase) -> Result<Option<RawSocket>, String> {
    let mut socket = open_for(world, case.by).await?;
    for frame in &case.frames {
        if let Err(error) = socket.send(frame).await {
            // A server that closed the connection already may refuse the
            // rest of the frames.
            if !matches!(case.reply, Reply::Closed) {
                return Err(error);
            }
        }
    }
    match &case.reply {
        Reply::Error {
            acked,
            code,
            message,
        } => {
            let detail = if *acked {
                let ack = socket.ack(1).await?;
                if ack["ok"] != false {
                    return Err(format!("acked {ack}, the contract says {code}"));
                }
                ack["error"].clone()
            } else {
                socket.error_event().await?
            };
            if detail["code"] != *code {
                return Err(format!("answered {detail}, the contract says {code}"));
            }
            check_message(message, &detail["message"])?;
            Ok(Some(socket))
        }
        Reply::Closed => {
            socket.closed().await?;
            Ok(None)
        }
        Reply::Ignored => {
            let answered = socket.round_trip().await?;
            if answered.is_empty() {
                Ok(Some(socket))
            } else {
                Err(format!("expected no answer, got {answered:?}"))
            }
        }
        Reply::Packet(packet) => {
            socket
                .until(packet, |text| (text == *packet).then_some(()))
                .await?;
            Ok(Some(socket))
        }
        Reply::Refused(message) => {
            let refusal = socket
                .until("CONNECT_ERROR", |text| {
                    text.strip_prefix("44")
                        .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
                })
                .await?;
            if refusal["message"] == *message {
                socket.close().await;
                Ok(None)
            } else {
                Err(format!("refused with {refusal}, expected {message}"))
            }
        }
    }
}

async fn run_socket_case(
    world: &World,
    control: &mut TestSocket,
    case: &SocketCase,
) -> Result<(), String> {
    let before = snapshot(&world.app, &world.vault).await;
    let played = play(world, case).await;
    let result = match played {
        Ok(Some(mut socket)) => {
            // The same connection still serves a normal command.
            let served = socket.round_trip().await.map(|_| ());
            socket.close().await;
            served
        }
        Ok(None) => Ok(()),
        Err(why) => Err(why),
    };
    // Whatever happened, nothing reached the vault's watchers...
    control.sync().await;
    let leaked = control.take_matching(|name| names::ALL.contains(&name));
    let after = snapshot(&world.app, &world.vault).await;
    result?;
    if !leaked.is_empty() {
        return Err(format!("broadcast to the vault: {leaked:?}"));
    }
    // ...nothing was written, and the server serves others.
    unchanged(&before, &after)?;
    still_serves(world).await
}

async fn hostile_socket_packets(backend: Backend) {
    let world = world(backend).await;
    let mut control = SocketBuilder::new(&world.app)
        .token(&world.contributor.token)
        .connect()
        .await;
    control.join_ok(&world.vault).await;
    let cases = socket_cases(&world);
    assert!(cases.len() >= 22, "{} socket cases", cases.len());
    let mut failures = Vec::new();
    for (index, case) in cases.iter().enumerate() {
        if let Err(why) = run_socket_case(&world, &mut control, case).await {
            let failure = format!("socket #{index} {:?}: {why}", case.what);
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    // A fresh socket is accepted and served after all of it.
    let mut fresh = SocketBuilder::new(&world.app)
        .token(&world.owner.token)
        .connect()
        .await;
    fresh.join_ok(&world.vault).await;
    report("Socket.IO", cases.len(), &failures);
}

// ---------------------------------------------------------------------------
// Floods (decision I): every command is answered, the limits hold, and the
// server keeps serving others.
// ---------------------------------------------------------------------------

/// Sends `count` commands at once (ack ids 1..=count) and returns their
/// acks in order.
async fn burst(
    socket: &mut RawSocket,
    count: u64,
    packet: impl Fn(u64) -> String,
) -> Result<Vec<Value>, String> {
    for id in 1..=count {
        socket.send(&Frame::Text(packet(id))).await?;
    }
    let mut acks = vec![Value::Null; count as usize];
    let mut missing = count;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while missing > 0 {
        match socket
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            Received::Text(text) => {
                let Some(rest) = text.strip_prefix("43") else {
                    continue;
                };
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let Ok(id) = digits.parse::<u64>() else {
                    continue;
                };
                if let Some(ack) = parse_ack(&text, id)
                    && (1..=count).contains(&id)
                    && acks[(id - 1) as usize].is_null()
                {
                    acks[(id - 1) as usize] = ack;
                    missing -= 1;
                }
            }
            Received::Binary(_) => {}
            other => {
                return Err(format!(
                    "{missing} of {count} commands unanswered: {other:?}"
                ));
            }
        }
    }
    Ok(acks)
}

fn code_of(ack: &Value) -> &str {
    if ack["ok"] == true {
        "ok"
    } else {
        ack["error"]["code"].as_str().unwrap_or("?")
    }
}

fn tally(acks: &[Value]) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for ack in acks {
        let code = code_of(ack).to_owned();
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => counts.push((code, 1)),
        }
    }
    counts
}

fn count_of(tally: &[(String, usize)], code: &str) -> usize {
    tally.iter().find(|(c, _)| c == code).map_or(0, |(_, n)| *n)
}

/// A flood run against the world: `Err` says how the answers differ from
/// the contract.
type FloodRun = for<'a> fn(&'a World) -> Pin<Box<dyn Future<Output = Result<(), String>> + 'a>>;

/// One flood and what the contract says of it.
struct Flood {
    what: &'static str,
    /// Puts back the limit of `syncscript serve` under test (TestApp lifts
    /// the socket budgets for load tests; each flood meets only its own).
    limit: fn(&mut Config),
    /// Vaults the owner needs besides the world's.
    spare_vaults: usize,
    run: FloodRun,
}

fn command_rate(config: &mut Config) {
    config.limits.socket_command_rate = Limits::default().socket_command_rate;
}

fn sockets_per_user(config: &mut Config) {
    config.limits.max_sockets_per_user = Limits::default().max_sockets_per_user;
}

fn vaults_per_socket(config: &mut Config) {
    config.limits.max_vaults_per_socket = Limits::default().max_vaults_per_socket;
}

/// 150 joins of one vault in a burst: every one answered, the burst of
/// 100 honoured, the rest `RATE_LIMITED`.
fn joins_in_a_burst(world: &World) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let vault = world.vault.clone();
        let acks = burst(&mut socket, 150, |id| {
            format!("42{id}{}", json!(["vault:join", vault]))
        })
        .await?;
        let tally = tally(&acks);
        let allowed = tally
            .iter()
            .all(|(code, _)| code == "ok" || code == "RATE_LIMITED");
        socket.close().await;
        if allowed && count_of(&tally, "ok") >= 100 && count_of(&tally, "RATE_LIMITED") >= 1 {
            Ok(())
        } else {
            Err(format!(
                "answers {tally:?}; the contract says at least 100 ok (the burst) and the rest RATE_LIMITED"
            ))
        }
    })
}

/// 300 unknown events in a burst: each answered, `BAD_REQUEST` within the
/// budget and `RATE_LIMITED` beyond it.
fn unknown_events_in_a_burst(
    world: &World,
) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let acks = burst(&mut socket, 300, |id| {
            format!("42{id}[\"flood:{id}\",{{}}]")
        })
        .await?;
        let tally = tally(&acks);
        socket.close().await;
        let allowed = tally
            .iter()
            .all(|(code, _)| code == "BAD_REQUEST" || code == "RATE_LIMITED");
        if allowed
            && count_of(&tally, "BAD_REQUEST") >= 100
            && count_of(&tally, "RATE_LIMITED") >= 1
        {
            Ok(())
        } else {
            Err(format!(
                "answers {tally:?}; the contract says BAD_REQUEST within the burst of 100, RATE_LIMITED beyond"
            ))
        }
    })
}

/// A socket in 100 vault rooms may not join a 101st (`RATE_LIMITED`); after
/// leaving one it may.
fn joins_of_101_vaults(world: &World) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let vaults: Vec<&String> = std::iter::once(&world.vault)
            .chain(&world.spare_vaults)
            .collect();
        if vaults.len() != 101 {
            return Err(format!("{} vaults to join", vaults.len()));
        }
        let mut socket = RawSocket::connect(&world.app, &world.owner.token).await?;
        let mut answers = Vec::new();
        for (index, vault) in vaults.iter().enumerate() {
            let id = index as u64 + 1;
            socket
                .send(&Frame::Text(format!(
                    "42{id}{}",
                    json!(["vault:join", vault])
                )))
                .await?;
            answers.push(code_of(&socket.ack(id).await?).to_owned());
        }
        let first_100_ok = answers[..100].iter().all(|code| code == "ok");
        let refused = answers[100] == "RATE_LIMITED";
        socket
            .send(&emit_ack("vault:leave", json!(vaults[0])))
            .await?;
        let left = code_of(&socket.ack(1).await?).to_owned();
        socket
            .send(&Frame::Text(format!(
                "42200{}",
                json!(["vault:join", vaults[100]])
            )))
            .await?;
        let rejoined = code_of(&socket.ack(200).await?).to_owned();
        socket.close().await;
        if first_100_ok && refused && left == "ok" && rejoined == "ok" {
            Ok(())
        } else {
            Err(format!(
                "joins answered {:?}…, the 101st {:?}, leave {left}, then join {rejoined}; the contract says 100 ok, RATE_LIMITED, ok, ok",
                &answers[..3],
                answers[100]
            ))
        }
    })
}

/// 51 connections of one user: the 51st handshake is refused with
/// `RATE_LIMITED`, the 50 others keep working.
fn sockets_of_one_user(world: &World) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
    Box::pin(async move {
        let mut open = Vec::new();
        for _ in 0..50 {
            open.push(RawSocket::connect(&world.app, &world.viewer.token).await?);
        }
        let mut extra = RawSocket::open(&world.app).await?;
        extra
            .send(&Frame::Text(format!(
                "40{}",
                json!({"token": world.viewer.token})
            )))
            .await?;
        let answer = extra
            .until("CONNECT answer", |text| {
                (text.starts_with("40") || text.starts_with("44")).then(|| text.to_owned())
            })
            .await?;
        extra.close().await;
        let refusal = answer
            .strip_prefix("44")
            .and_then(|rest| serde_json::from_str::<Value>(rest).ok())
            .unwrap_or(Value::Null);
        let mut served = Ok(());
        if let Some(first) = open.first_mut() {
            served = first.round_trip().await.map(|_| ());
        }
        for socket in open {
            socket.close().await;
        }
        served?;
        if refusal["message"] == "RATE_LIMITED" {
            Ok(())
        } else {
            Err(format!(
                "the 51st handshake got {answer:?}; the contract says connect_error RATE_LIMITED"
            ))
        }
    })
}

async fn floods_are_limited_and_answered(backend: Backend) {
    let floods = [
        Flood {
            what: "150 joins of one vault in a burst",
            limit: command_rate,
            spare_vaults: 0,
            run: joins_in_a_burst,
        },
        Flood {
            what: "300 unknown events in a burst",
            limit: command_rate,
            spare_vaults: 0,
            run: unknown_events_in_a_burst,
        },
        Flood {
            what: "51 sockets of one user",
            limit: sockets_per_user,
            spare_vaults: 0,
            run: sockets_of_one_user,
        },
        Flood {
            what: "joins of 101 vaults by one socket",
            limit: vaults_per_socket,
            spare_vaults: 100,
            run: joins_of_101_vaults,
        },
    ];
    let mut failures = Vec::new();
    for flood in &floods {
        let mut world = world_with(backend, flood.limit).await;
        for index in 0..flood.spare_vaults {
            let name = format!("Spare {index}");
            let vault = world.app.create_vault(&world.owner, &name).await;
            world.spare_vaults.push(vault.id);
        }
        let mut control = SocketBuilder::new(&world.app)
            .token(&world.contributor.token)
            .connect()
            .await;
        control.join_ok(&world.vault).await;
        let before = snapshot(&world.app, &world.vault).await;
        let result = (flood.run)(&world).await;
        control.sync().await;
        let leaked = control.take_matching(|name| names::ALL.contains(&name));
        let after = snapshot(&world.app, &world.vault).await;
        let checked = result
            .and_then(|()| {
                if leaked.is_empty() {
                    Ok(())
                } else {
                    Err(format!("broadcast to the vault: {leaked:?}"))
                }
            })
            .and_then(|()| unchanged(&before, &after));
        let checked = match checked {
            Ok(()) => still_serves(&world).await,
            Err(why) => Err(why),
        };
        if let Err(why) = checked {
            let failure = format!("flood {:?}: {why}", flood.what);
            eprintln!("{failure}");
            failures.push(failure);
        }
    }
    report("flood", floods.len(), &failures);
}

/// A transport that opens and never sends the Socket.IO CONNECT is closed
/// after the handshake timeout (decision I: 10 s), and the server serves
/// others meanwhile.
async fn a_transport_that_never_connects_is_closed(backend: Backend) {
    let world = world(backend).await;
    let mut idle = RawSocket::open(&world.app).await.expect("transport");
    still_serves(&world).await.expect("served meanwhile");
    let mut socket = SocketBuilder::new(&world.app)
        .token(&world.owner.token)
        .connect()
        .await;
    socket.join_ok(&world.vault).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let outcome = loop {
        match idle
            .recv(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            Received::Closed(_) => break Ok(()),
            Received::Silent => break Err("still open after 15 s"),
            Received::Text(_) | Received::Binary(_) => {}
        }
    };
    outcome.expect("the server closes a transport that never sends CONNECT within about 10 s");
    still_serves(&world).await.expect("served afterwards");
}
