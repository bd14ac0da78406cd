//! The outbox rule under concurrency: seq goes up by exactly one per event,
//! with no gap and no duplicate, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;
use syncscript_protocol::Role;

use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, TestApp};

on_both_backends!(twenty_concurrent_writers_get_contiguous_seqs);

const WRITERS: usize = 20;
const WRITES_EACH: usize = 10;

async fn twenty_concurrent_writers_get_contiguous_seqs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Busy").await;
    let mut writers = Vec::new();
    for n in 0..WRITERS {
        let writer = app.register(&format!("writer{n}")).await;
        app.add_member(&owner, &vault.id, &writer, Role::Contributor)
            .await;
        writers.push(writer);
    }
    let before = app.logged_seqs(&vault.id).await.len();
    let mut tasks = Vec::new();
    for writer in writers {
        let http = app.http.clone();
        let url = app.url(&format!("/api/vaults/{}/sources", vault.id));
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..WRITES_EACH {
                let response = http
                    .post(&url)
                    .bearer_auth(&writer.token)
                    .json(&json!({"title": format!("{} #{i}", writer.name), "fileUrl": "https://example.org/a.pdf"}))
                    .send()
                    .await
                    .expect("request");
                assert_eq!(response.status(), StatusCode::CREATED);
                seqs.push(response.json::<serde_json::Value>().await.expect("json"));
            }
            seqs
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
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
    let (_, log) = app
        .call(
            Method::GET,
            &format!("/api/vaults/{}/events?since={before}", vault.id),
            Some(&owner),
            None,
        )
        .await;
    let events = log["events"].as_array().expect("events");
    assert_eq!(events.len(), WRITERS * WRITES_EACH);
    let mut titles = std::collections::HashSet::new();
    for event in events {
        assert_eq!(
            event["payload"]["seq"], event["seq"],
            "the payload carries its own seq"
        );
        assert!(
            titles.insert(
                event["payload"]["source"]["title"]
                    .as_str()
                    .expect("title")
                    .to_owned()
            )
        );
    }
    assert_eq!(app.count("sources").await, (WRITERS * WRITES_EACH) as i64);
}
