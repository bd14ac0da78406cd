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
//! Every case asserts the answer of the contract (docs/protocol.md:
//! Conventions for control characters, duplicate keys, content types and
//! Unicode; Errors for 414; Limits for the abuse limits and `since`;
//! Retry-safe mutations for `Idempotency-Key` and `opId`), that nothing was
//! written (row counts, every vault's head and the vault's logged seqs)
//! unless the case
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

mod floods;
mod raw_engineio;
mod raw_http;
mod rest_cases;
mod rest_tests;
mod socket_cases;
mod socket_tests;

use floods::*;
pub(crate) use raw_engineio::RawSocket;
use raw_engineio::*;
use raw_http::*;
use rest_cases::*;
use rest_tests::*;
use socket_cases::*;
use socket_tests::*;

use crate::socket::{SocketBuilder, TestSocket, WAIT};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, PASSWORD, TestApp, TestUser};

on_both_backends!(
    hostile_rest_requests,
    slow_bodies_do_not_hold_up_other_clients,
    hostile_socket_packets,
    floods_are_limited_and_answered,
);

/// An id that names nothing.
const UNKNOWN_ID: &str = "01900000-0000-7000-8000-000000000000";
/// A file URL that passes validation.
const FILE_URL: &str = "https://example.org/paper.pdf";
/// The key of the setup's successful request, reused by hostile ones.
const RETRY_KEY: &str = "retry-me-0001";
/// Largest request body (docs/protocol.md, Limits).
const MAX_BODY: usize = 65_536;
/// Longest request target with a JSON answer (docs/protocol.md, Errors:
/// a longer path and query is a `414 URI_TOO_LONG`).
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
    for index in 0..5 {
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
/// (`idempotency_keys`: only a success is remembered, docs/protocol.md,
/// Retry-safe mutations).
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
