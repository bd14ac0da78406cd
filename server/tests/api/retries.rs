//! Retry-safe mutations: an `Idempotency-Key` (REST) or `opId` (socket)
//! makes a retried mutation return the first answer instead of committing
//! again (docs/protocol.md "Retry-safe mutations").

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_protocol::Role;
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, TestApp, TestUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::socket::{SocketBuilder, TestSocket, WAIT};

on_both_backends!(
    a_lost_answer_retried_with_its_key_commits_once,
    every_mutation_repeated_with_its_key_gets_the_first_answer,
    a_key_reused_for_another_request_is_refused,
    concurrent_requests_with_one_key_commit_once,
    concurrent_deletes_with_one_key_all_get_the_first_answer,
    socket_commands_with_an_op_id_commit_once,
    keys_are_per_user_and_only_successes_are_remembered,
    malformed_keys_are_refused,
);

const PDF: &str = "https://example.org/paper.pdf";

/// Sends a request over a raw connection and hangs up as soon as the first
/// byte of the answer arrives: the server has committed, the client never
/// learns the outcome.
async fn send_and_lose_the_answer(
    app: &TestApp,
    method: &str,
    path: &str,
    user: &TestUser,
    key: &str,
    body: &Value,
) {
    let address = app.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.expect("connect");
    let body = body.to_string();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        user.token,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut first = [0u8; 1];
    stream
        .read_exact(&mut first)
        .await
        .expect("an answer began");
}

/// A request with an idempotency key; the status, whether the answer says
/// it is a replay, and the JSON body (Null when empty).
async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, bool, Value) {
    let mut request = app
        .request(method, path, Some(user))
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotency-replayed")
        .is_some_and(|value| value == "true");
    let text = response.text().await.expect("body read");
    (
        status,
        replayed,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn head(app: &TestApp, user: &TestUser, vault_id: &str) -> i64 {
    let (status, body) = app
        .call(
            Method::GET,
            &format!("/api/vaults/{vault_id}"),
            Some(user),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["seq"].as_i64().expect("seq")
}

/// The `source:created` events a watcher receives up to (and without) the
/// one of `marker`.
async fn created_before(watcher: &mut TestSocket, marker: &str) -> Vec<String> {
    let mut ids = Vec::new();
    loop {
        let event = watcher.next_event("source:created", WAIT).await;
        let id = event["source"]["id"]
            .as_str()
            .expect("source id")
            .to_owned();
        if id == marker {
            return ids;
        }
        ids.push(id);
    }
}

async fn a_lost_answer_retried_with_its_key_commits_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let mut watcher = SocketBuilder::new(&app)
        .token(&team.viewer.token)
        .connect()
        .await;
    watcher.join_ok(v).await;
    let path = format!("/api/vaults/{v}/sources");
    let body = json!({"title": "Lost answer", "fileUrl": PDF});

    send_and_lose_the_answer(&app, "POST", &path, &team.contributor, "retry-1", &body).await;
    let (status, replayed, answer) = keyed(
        &app,
        Method::POST,
        &path,
        &team.contributor,
        "retry-1",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert!(replayed, "the retry is answered from the first request");
    let id = answer["source"]["id"]
        .as_str()
        .expect("source id")
        .to_owned();
    assert_eq!(answer["source"]["title"], "Lost answer");

    let (_, again, second) = keyed(
        &app,
        Method::POST,
        &path,
        &team.contributor,
        "retry-1",
        Some(body),
    )
    .await;
    assert!(again);
    assert_eq!(second, answer, "every retry gets the same body");

    assert_eq!(app.count("sources").await, 1, "one source, not one per try");
    let marker = app.create_source(&team.owner, v, "marker").await;
    assert_eq!(created_before(&mut watcher, &marker.id).await, vec![id]);
    let log = app.event_log(&team.owner.token, v).await;
    let created = log
        .iter()
        .filter(|event| event.name == "source:created")
        .count();
    assert_eq!(created, 2, "the retried source and the marker: {log:?}");
}

async fn every_mutation_repeated_with_its_key_gets_the_first_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let owner = &team.owner;
    let v = team.vault.id.clone();
    let source = app.create_source(owner, &v, "Paper").await;
    let s = source.id.clone();
    let outsider = team.outsider.id.clone();
    let viewer = team.viewer.id.clone();
    let other = app.create_vault(owner, "Doomed").await;

    let steps: Vec<(Method, String, Option<Value>, StatusCode)> = vec![
        (
            Method::POST,
            "/api/vaults".into(),
            Some(json!({"name": "Keyed"})),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}"),
            Some(json!({"name": "Renamed"})),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": team.outsider.email, "role": "viewer"})),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}/members/{outsider}"),
            Some(json!({"role": "contributor"})),
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            format!("/api/vaults/{v}/members/{viewer}"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "New", "fileUrl": PDF})),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("/api/sources/{s}"),
            Some(json!({"title": "Retitled"})),
            StatusCode::OK,
        ),
        (
            Method::DELETE,
            format!("/api/sources/{s}"),
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::DELETE,
            format!("/api/vaults/{}", other.id),
            None,
            StatusCode::NO_CONTENT,
        ),
    ];
    for (step, (method, path, body, expected)) in steps.into_iter().enumerate() {
        let key = format!("step-{step}");
        let (status, replayed, first) =
            keyed(&app, method.clone(), &path, owner, &key, body.clone()).await;
        assert_eq!(status, expected, "{method} {path}: {first}");
        assert!(
            !replayed,
            "{method} {path}: a first request is not a replay"
        );
        let seq = head(&app, owner, &v).await;
        let events = app.count("vault_events").await;
        let vaults_after = app.count("vaults").await;
        for _ in 0..2 {
            let (status, replayed, again) =
                keyed(&app, method.clone(), &path, owner, &key, body.clone()).await;
            assert_eq!(status, expected, "{method} {path} repeated: {again}");
            assert!(replayed, "{method} {path}: the repeat is marked");
            assert_eq!(again, first, "{method} {path}: the same body");
        }
        assert_eq!(
            head(&app, owner, &v).await,
            seq,
            "{method} {path}: seq moved"
        );
        assert_eq!(app.count("vault_events").await, events, "{method} {path}");
        assert_eq!(app.count("vaults").await, vaults_after, "{method} {path}");
    }
}

async fn a_key_reused_for_another_request_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let path = format!("/api/vaults/{v}/sources");
    let (status, _, _) = keyed(
        &app,
        Method::POST,
        &path,
        &team.owner,
        "k",
        Some(json!({"title": "First", "fileUrl": PDF})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let seq = head(&app, &team.owner, v).await;
    let different_body = json!({"title": "Second", "fileUrl": PDF});
    let other_vault = app.create_vault(&team.owner, "Other").await;
    let attempts = [
        (Method::POST, path.clone(), Some(different_body.clone())),
        (
            Method::POST,
            format!("/api/vaults/{}/sources", other_vault.id),
            Some(json!({"title": "First", "fileUrl": PDF})),
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}"),
            Some(json!({"name": "First"})),
        ),
    ];
    for (method, path, body) in attempts {
        let (status, _, answer) = keyed(&app, method.clone(), &path, &team.owner, "k", body).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {answer}"
        );
        assert_eq!(answer["error"]["code"], "VALIDATION");
        assert_eq!(
            answer["error"]["message"],
            "Idempotency-Key: was used for a different request"
        );
    }
    assert_eq!(app.count("sources").await, 1);
    assert_eq!(head(&app, &team.owner, v).await, seq);
    // Field order and spacing are not a different request.
    let (status, replayed, _) = keyed(
        &app,
        Method::POST,
        &path,
        &team.owner,
        "k",
        Some(json!({"fileUrl": PDF, "title": "First"})),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
}

async fn concurrent_requests_with_one_key_commit_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let path = format!("/api/vaults/{v}/sources");
    let body = json!({"title": "Raced", "fileUrl": PDF});
    let seq = head(&app, &team.owner, v).await;
    let tries = (0..8).map(|_| {
        keyed(
            &app,
            Method::POST,
            &path,
            &team.contributor,
            "race",
            Some(body.clone()),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let ids: Vec<&Value> = answers
        .iter()
        .map(|(status, _, answer)| {
            assert_eq!(*status, StatusCode::CREATED, "{answer}");
            &answer["source"]["id"]
        })
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one source for all: {ids:?}"
    );
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "exactly one try did the work"
    );
    assert_eq!(app.count("sources").await, 1);
    assert_eq!(head(&app, &team.owner, v).await, seq + 1);
}

async fn concurrent_deletes_with_one_key_all_get_the_first_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let source = app.create_source(&team.owner, v, "Doomed").await;
    let path = format!("/api/sources/{}", source.id);
    let seq = head(&app, &team.owner, v).await;
    // A losing try fails on what the winner did (no such source) and must
    // answer with the winner's 204, not with its own 404.
    let tries = (0..8).map(|_| keyed(&app, Method::DELETE, &path, &team.contributor, "gone", None));
    let answers = futures_util::future::join_all(tries).await;
    for (status, _, body) in &answers {
        assert_eq!(*status, StatusCode::NO_CONTENT, "{body}");
    }
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1,
        "exactly one try did the work"
    );
    assert_eq!(
        head(&app, &team.owner, v).await,
        seq + 1,
        "one source:deleted"
    );
}

async fn socket_commands_with_an_op_id_commit_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let mut watcher = SocketBuilder::new(&app)
        .token(&team.viewer.token)
        .connect()
        .await;
    watcher.join_ok(v).await;
    let create = json!({"vaultId": v, "title": "Via socket", "fileUrl": PDF, "opId": "op-1"});

    // The first try's ack is lost with its connection.
    let lost = SocketBuilder::new(&app)
        .token(&team.contributor.token)
        .connect()
        .await;
    lost.emit("source:create", create.clone()).await;
    let first = watcher.next_event("source:created", WAIT).await;
    lost.disconnect().await;

    let socket = SocketBuilder::new(&app)
        .token(&team.contributor.token)
        .connect()
        .await;
    let ack = socket.emit_with_ack("source:create", create.clone()).await;
    assert_eq!(ack["ok"], true, "{ack}");
    assert_eq!(
        ack["source"], first["source"],
        "the retry gets the first source"
    );
    let again = socket.emit_with_ack("source:create", create).await;
    assert_eq!(again, ack);

    // REST and socket share one key space: the same operation under the
    // same key is the same operation.
    let (status, replayed, answer) = keyed(
        &app,
        Method::POST,
        &format!("/api/vaults/{v}/sources"),
        &team.contributor,
        "op-1",
        Some(json!({"title": "Via socket", "fileUrl": PDF})),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{answer}");
    assert_eq!(answer["source"], ack["source"]);

    let id = ack["source"]["id"].as_str().expect("id");
    let update = json!({"sourceId": id, "title": "Renamed", "opId": "op-2"});
    let updated = socket.emit_with_ack("source:update", update.clone()).await;
    assert_eq!(updated["ok"], true, "{updated}");
    assert_eq!(socket.emit_with_ack("source:update", update).await, updated);
    let reused = socket
        .emit_with_ack(
            "source:update",
            json!({"sourceId": id, "title": "Other", "opId": "op-2"}),
        )
        .await;
    assert_eq!(reused["error"]["code"], "VALIDATION", "{reused}");
    assert_eq!(
        reused["error"]["message"],
        "opId: was used for a different request"
    );
    let delete = json!({"sourceId": id, "opId": "op-3"});
    let deleted = socket.emit_with_ack("source:delete", delete.clone()).await;
    assert_eq!(deleted["ok"], true, "{deleted}");
    assert_eq!(socket.emit_with_ack("source:delete", delete).await, deleted);

    let marker = app.create_source(&team.owner, v, "marker").await;
    assert_eq!(
        created_before(&mut watcher, &marker.id).await,
        Vec::<String>::new()
    );
    let names: Vec<String> = watcher
        .take_matching(|name| name.starts_with("source:"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        names,
        ["source:updated", "source:deleted"],
        "one event each"
    );
    assert_eq!(app.count("sources").await, 1, "only the marker is left");
}

async fn keys_are_per_user_and_only_successes_are_remembered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let path = format!("/api/vaults/{v}/sources");
    let body = json!({"title": "Shared key", "fileUrl": PDF});
    let (status, _, owners) = keyed(
        &app,
        Method::POST,
        &path,
        &team.owner,
        "same",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, replayed, contributors) = keyed(
        &app,
        Method::POST,
        &path,
        &team.contributor,
        "same",
        Some(body.clone()),
    )
    .await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_ne!(owners["source"]["id"], contributors["source"]["id"]);

    // A refusal commits nothing and binds nothing: the retry is judged
    // afresh once the viewer may edit.
    let (status, _, refused) = keyed(
        &app,
        Method::POST,
        &path,
        &team.viewer,
        "later",
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(app.count("idempotency_keys").await, 2);
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/api/vaults/{v}/members/{}", team.viewer.id),
            Some(&team.owner),
            Some(json!({"role": Role::Contributor.as_str()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, replayed, _) =
        keyed(&app, Method::POST, &path, &team.viewer, "later", Some(body)).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_eq!(app.count("sources").await, 3);
}

async fn malformed_keys_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let path = format!("/api/vaults/{v}/sources");
    let body = json!({"title": "T", "fileUrl": PDF});
    let long = "k".repeat(201);
    for key in ["", "two words", long.as_str()] {
        let (status, _, answer) = keyed(
            &app,
            Method::POST,
            &path,
            &team.owner,
            key,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{key:?}: {answer}"
        );
        assert_eq!(
            answer["error"]["message"],
            "Idempotency-Key: must be 1-200 visible ASCII characters"
        );
    }
    let socket = SocketBuilder::new(&app)
        .token(&team.owner.token)
        .connect()
        .await;
    for (op_id, code) in [
        (json!(""), "VALIDATION"),
        (json!("a\u{7f}"), "VALIDATION"),
        (json!(7), "BAD_REQUEST"),
        (json!({"nested": true}), "BAD_REQUEST"),
    ] {
        let ack = socket
            .emit_with_ack(
                "source:create",
                json!({"vaultId": v, "title": "T", "fileUrl": PDF, "opId": op_id}),
            )
            .await;
        assert_eq!(ack["error"]["code"], code, "opId {op_id}: {ack}");
    }
    assert_eq!(app.count("sources").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);
}
