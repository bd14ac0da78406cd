//! The outbox rule under concurrency: seq goes up by exactly one per event,
//! with no gap and no duplicate, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;
use syncscript_protocol::{Role, names};

use crate::socket::{SocketBuilder, TestSocket, WAIT};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Api, Backend, TestApp, TestUser, eventually};

on_both_backends!(
    twenty_concurrent_writers_get_contiguous_seqs,
    watchers_receive_concurrent_writes_in_seq_order,
    a_catch_up_during_writes_comes_before_the_live_events
);

const WRITERS: usize = 20;
const WRITES_EACH: usize = 10;
const WATCHERS: usize = 25;

/// `WRITERS` new contributors of the vault.
async fn contributors(app: &TestApp, owner: &TestUser, vault_id: &str) -> Vec<TestUser> {
    let mut writers = Vec::new();
    for n in 0..WRITERS {
        let writer = app.register(&format!("writer{n}")).await;
        app.add_member(owner, vault_id, &writer, Role::Contributor)
            .await;
        writers.push(writer);
    }
    writers
}

/// Every writer creates `WRITES_EACH` sources, all writers at once.
async fn write_concurrently(api: &Api, vault_id: &str, writers: Vec<TestUser>) {
    let mut tasks = Vec::new();
    for writer in writers {
        let http = api.http.clone();
        let url = api.url(&format!("/api/vaults/{vault_id}/sources"));
        tasks.push(tokio::spawn(async move {
            for i in 0..WRITES_EACH {
                let response = http
                    .post(&url)
                    .bearer_auth(&writer.token)
                    .json(&json!({"title": format!("{} #{i}", writer.name), "fileUrl": "https://example.org/a.pdf"}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
}

async fn twenty_concurrent_writers_get_contiguous_seqs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Busy").await;
    let writers = contributors(&app, &owner, &vault.id).await;
    let before = app.logged_seqs(&vault.id).await.len();
    write_concurrently(&app, &vault.id, writers).await;
    let total = before + WRITERS * WRITES_EACH;
    let seqs = app.logged_seqs(&vault.id).await;
    assert_eq!(seqs, (1..=total as i64).collect::<Vec<_>>());
    let (status, detail) = app
        .call(
            Method::GET,
            &format!("/api/vaults/{}", vault.id),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["seq"], total as i64, "the head is the last seq");
    let events = app
        .event_log_since(&owner.token, &vault.id, before as i64)
        .await;
    assert_eq!(events.len(), WRITERS * WRITES_EACH);
    let mut titles = std::collections::HashSet::new();
    for event in &events {
        assert_eq!(
            event.payload["seq"], event.seq,
            "the payload carries its own seq"
        );
        assert!(
            titles.insert(
                event.payload["source"]["title"]
                    .as_str()
                    .expect("title")
                    .to_owned()
            )
        );
    }
    assert_eq!(app.count("sources").await, (WRITERS * WRITES_EACH) as i64);
}

/// In-order fan-out (docs/protocol.md, "Order of delivery"): with twenty
/// writers committing at once, every watcher receives every event once, in
/// seq order.
async fn watchers_receive_concurrent_writes_in_seq_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Watched").await;
    let writers = contributors(&app, &owner, &vault.id).await;
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut socket = SocketBuilder::new(&app).token(&owner.token).connect().await;
        socket.join_ok(&vault.id).await;
        watchers.push(socket);
    }
    let before = app.logged_seqs(&vault.id).await.len() as i64;
    write_concurrently(&app, &vault.id, writers).await;
    let expected: Vec<i64> = (before + 1..=before + (WRITERS * WRITES_EACH) as i64).collect();
    for (n, watcher) in watchers.iter_mut().enumerate() {
        let mut seqs = Vec::new();
        for _ in 0..expected.len() {
            let event = watcher.next_event("source:created", WAIT).await;
            seqs.push(event["seq"].as_i64().expect("seq"));
        }
        assert_eq!(
            seqs, expected,
            "watcher {n} received these seqs in this order"
        );
    }
}

/// A join with `since` while twenty writers commit: the replay and the live
/// events reach the socket as one run of seqs, in order, each once.
async fn a_catch_up_during_writes_comes_before_the_live_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Caught up").await;
    let writers = contributors(&app, &owner, &vault.id).await;
    for n in 0..100 {
        app.create_source(&owner, &vault.id, &format!("Earlier {n}"))
            .await;
    }
    let writing = {
        let api = Api::new(app.base.clone());
        let vault_id = vault.id.clone();
        tokio::spawn(async move { write_concurrently(&api, &vault_id, writers).await })
    };
    let mut socket = SocketBuilder::new(&app).token(&owner.token).connect().await;
    let ack = socket.join(json!({"vaultId": vault.id, "since": 0})).await;
    assert_eq!(ack["ok"], true, "{ack}");
    writing.await.expect("writers");
    let head = app.logged_seqs(&vault.id).await.len();
    let seqs = sequenced_seqs(&mut socket, head).await;
    assert_eq!(seqs, (1..=head as i64).collect::<Vec<_>>());
}

/// The seqs of the sequenced events the socket receives, in arrival order,
/// until it has `count` of them.
async fn sequenced_seqs(socket: &mut TestSocket, count: usize) -> Vec<i64> {
    let mut seqs = Vec::new();
    let what = format!("{count} sequenced events");
    eventually(&what, WAIT, async || {
        socket.sync().await;
        seqs.extend(
            socket
                .take_matching(|name| names::ALL.contains(&name))
                .iter()
                .map(|(_, event)| event["seq"].as_i64().expect("seq")),
        );
        if seqs.len() >= count {
            Ok(())
        } else {
            Err(seqs.clone())
        }
    })
    .await;
    seqs
}
