//! Every REST route's happy path, and every bad input of docs/protocol.md answered
//! in the contract's shape without writing anything.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_protocol::Role;

use crate::socket::{SocketBuilder, WAIT};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, TestApp};

on_both_backends!(
    vault_lifecycle,
    members_lifecycle,
    sources_lifecycle_and_event_log,
    bad_inputs_are_refused_and_change_nothing,
    a_vault_keeps_an_owner,
    probes_answer,
);

const UNKNOWN_ID: &str = "01900000-0000-7000-8000-000000000000";

async fn vault_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;

    let (status, body) = app.as_user(&team.viewer).list_vaults().await;
    assert_eq!(status, StatusCode::OK);
    let vaults = body["vaults"].as_array().unwrap();
    assert_eq!(vaults.len(), 1);
    assert_eq!(vaults[0]["id"], *v);
    assert_eq!(vaults[0]["role"], "viewer");
    assert_eq!(vaults[0]["seq"], 2, "two member:added events so far");

    let (status, body) = app.as_user(&team.owner).get_vault(v).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["vault"]["name"], "Team Vault");
    assert_eq!(body["role"], "owner");
    assert_eq!(body["seq"], 2);

    let (status, body) = app
        .as_user(&team.owner)
        .update_vault(v, json!({"name": " Renamed "}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["vault"]["name"], "Renamed");

    let (_, outsider_list) = app.as_user(&team.outsider).list_vaults().await;
    assert_eq!(outsider_list["vaults"], json!([]));

    let (status, _) = app.as_user(&team.owner).delete_vault(v).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.as_user(&team.owner).get_vault(v).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = app.as_user(&team.owner).list_vaults().await;
    assert_eq!(list["vaults"], json!([]));

    let names: Vec<(String,)> =
        sqlx::query_as("SELECT name FROM vault_events WHERE vault_id = $1 ORDER BY seq")
            .bind(v)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let names: Vec<String> = names.into_iter().map(|(n,)| n).collect();
    assert_eq!(
        names,
        [
            "member:added",
            "member:added",
            "vault:updated",
            "vault:deleted"
        ]
    );
}

async fn members_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let (status, body) = app.as_user(&team.viewer).list_members(v).await;
    assert_eq!(status, StatusCode::OK);
    let roles: Vec<(String, String)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("owner@test.dev".to_owned(), "owner".to_owned()),
            ("contributor@test.dev".to_owned(), "contributor".to_owned()),
            ("viewer@test.dev".to_owned(), "viewer".to_owned()),
        ]
    );

    let (status, body) = app
        .as_user(&team.owner)
        .add_member(v, json!({"email": "OUTSIDER@test.dev", "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["member"]["userId"], team.outsider.id);
    assert_eq!(body["member"]["role"], "viewer");

    let (status, body) = app
        .as_user(&team.owner)
        .update_member(v, &team.outsider.id, json!({"role": "contributor"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["member"]["role"], "contributor");
    let (status, _) = app.as_user(&team.outsider).get_vault(v).await;
    assert_eq!(status, StatusCode::OK);

    let (status, _) = app
        .as_user(&team.owner)
        .remove_member(v, &team.outsider.id)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.as_user(&team.outsider).get_vault(v).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "removal takes effect at once"
    );

    let (_, log) = app.as_user(&team.owner).list_events(v, "since=2").await;
    let names: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["member:added", "member:updated", "member:removed"]);
    let removed = &log["events"][2]["payload"];
    assert_eq!(removed["member"]["userId"], team.outsider.id);
    assert_eq!(removed["actor"]["userId"], team.owner.id);
    assert_eq!(removed["actor"]["role"], "owner");
}

async fn sources_lifecycle_and_event_log(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let (status, body) = app
        .as_user(&team.contributor)
        .create_source(
            v,
            json!({"title": "  Attention  ", "fileUrl": "https://arxiv.org/pdf/1706.03762"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let source = body["source"].clone();
    let s = source["id"].as_str().unwrap().to_owned();
    assert_eq!(source["title"], "Attention");
    assert_eq!(source["vaultId"], *v);
    assert_eq!(source["createdBy"], team.contributor.id);

    let (status, body) = app.as_user(&team.viewer).get_source(&s).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["source"], source);

    let (status, body) = app
        .as_user(&team.owner)
        .update_source(&s, json!({"fileUrl": "http://example.org/v2.pdf"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["source"]["title"], "Attention", "untouched field kept");
    assert_eq!(body["source"]["fileUrl"], "http://example.org/v2.pdf");
    assert!(body["source"]["updatedAt"].as_str().unwrap() >= source["updatedAt"].as_str().unwrap());

    let (status, body) = app.as_user(&team.viewer).list_sources(v).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["sources"].as_array().unwrap().len(), 1);
    assert_eq!(body["seq"], 4);

    let (status, _) = app.as_user(&team.contributor).delete_source(&s).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.as_user(&team.owner).get_source(&s).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.as_user(&team.owner).delete_source(&s).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, log) = app.as_user(&team.viewer).list_events(v, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(log["seq"], 5);
    let events = log["events"].as_array().unwrap();
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let created = &events[2];
    assert_eq!(created["name"], "source:created");
    assert_eq!(
        created["actor"],
        json!({"userId": team.contributor.id, "userName": "contributor", "role": "contributor"})
    );
    assert_eq!(created["payload"]["source"], source);
    assert_eq!(created["payload"]["seq"], 3);
    assert_eq!(created["payload"]["vaultId"], *v);
    assert_eq!(created["payload"]["timestamp"], created["timestamp"]);
    assert_eq!(events[4]["name"], "source:deleted");
    assert_eq!(events[4]["payload"]["sourceId"], s);

    let (_, page) = app
        .as_user(&team.viewer)
        .list_events(v, "since=1&limit=2")
        .await;
    let seqs: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 3]);
    assert_eq!(page["seq"], 5);
    let (_, tail) = app.as_user(&team.viewer).list_events(v, "since=5").await;
    assert_eq!(tail["events"], json!([]));
}

/// One refused request: its status and code, and that nothing was written.
async fn refused(
    app: &TestApp,
    user: &syncscript_testkit::TestUser,
    method: Method,
    path: &str,
    body: Option<Value>,
    status: u16,
    code: &str,
) {
    let tables = [
        "users",
        "sessions",
        "vaults",
        "vault_users",
        "sources",
        "vault_events",
    ];
    let mut before = Vec::new();
    for table in tables {
        before.push(app.count(table).await);
    }
    let heads: Vec<(i64,)> = sqlx::query_as("SELECT event_seq FROM vaults ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    let (got, answer) = app
        .call(method.clone(), path, Some(user), body.clone())
        .await;
    assert_eq!(got.as_u16(), status, "{method} {path} {body:?} → {answer}");
    assert_eq!(
        answer["error"]["code"], code,
        "{method} {path} {body:?} → {answer}"
    );
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "a readable message");
    let mut after = Vec::new();
    for table in tables {
        after.push(app.count(table).await);
    }
    assert_eq!(before, after, "{method} {path} wrote rows");
    let heads_after: Vec<(i64,)> = sqlx::query_as("SELECT event_seq FROM vaults ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(heads, heads_after, "{method} {path} moved a seq");
}

async fn bad_inputs_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let owner = &team.owner;
    let v = team.vault.id.clone();
    let s = app.create_source(owner, &v, "Existing").await.id;
    let long_url = format!("https://example.org/{}", "a".repeat(2030));
    let cases: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::POST,
            "/api/vaults".into(),
            Some(json!({"name": ""})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            "/api/vaults".into(),
            Some(json!({"name": "n".repeat(201)})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            "/api/vaults".into(),
            Some(json!({})),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::POST,
            "/api/vaults".into(),
            Some(json!({"name": 7})),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}"),
            Some(json!({"name": " "})),
            422,
            "VALIDATION",
        ),
        (
            Method::GET,
            "/api/vaults/not-a-uuid".into(),
            None,
            400,
            "BAD_REQUEST",
        ),
        (
            Method::GET,
            format!("/api/vaults/{UNKNOWN_ID}"),
            None,
            404,
            "NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/vaults/{UNKNOWN_ID}"),
            None,
            404,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "", "fileUrl": "https://x.org/a.pdf"})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "t".repeat(501), "fileUrl": "https://x.org/a.pdf"})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "T", "fileUrl": "ftp://x.org/a.pdf"})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "T", "fileUrl": "not a url"})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "T", "fileUrl": long_url})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "T"})),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::POST,
            format!("/api/vaults/{UNKNOWN_ID}/sources"),
            Some(json!({"title": "T", "fileUrl": "https://x.org/a.pdf"})),
            404,
            "NOT_FOUND",
        ),
        (
            Method::PATCH,
            format!("/api/sources/{s}"),
            Some(json!({})),
            422,
            "VALIDATION",
        ),
        (
            Method::PATCH,
            format!("/api/sources/{s}"),
            Some(json!({"title": ""})),
            422,
            "VALIDATION",
        ),
        (
            Method::PATCH,
            format!("/api/sources/{s}"),
            Some(json!({"title": 3})),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::PATCH,
            format!("/api/sources/{UNKNOWN_ID}"),
            Some(json!({"title": "T"})),
            404,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            "/api/sources/123".into(),
            None,
            400,
            "BAD_REQUEST",
        ),
        (
            Method::DELETE,
            format!("/api/sources/{UNKNOWN_ID}"),
            None,
            404,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": "nobody@test.dev", "role": "viewer"})),
            404,
            "NOT_FOUND",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": "viewer@test.dev", "role": "viewer"})),
            409,
            "CONFLICT",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": "outsider@test.dev", "role": "admin"})),
            422,
            "VALIDATION",
        ),
        (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": "outsider@test.dev"})),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}/members/{UNKNOWN_ID}"),
            Some(json!({"role": "viewer"})),
            404,
            "NOT_FOUND",
        ),
        (
            Method::DELETE,
            format!("/api/vaults/{v}/members/{}", team.outsider.id),
            None,
            404,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            format!("/api/vaults/{v}/events?since=-1"),
            None,
            422,
            "VALIDATION",
        ),
        (
            Method::GET,
            format!("/api/vaults/{v}/events?limit=0"),
            None,
            422,
            "VALIDATION",
        ),
        (
            Method::GET,
            format!("/api/vaults/{v}/events?limit=10001"),
            None,
            422,
            "VALIDATION",
        ),
        (
            Method::GET,
            format!("/api/vaults/{v}/events?since=abc"),
            None,
            400,
            "BAD_REQUEST",
        ),
        (
            Method::GET,
            "/api/no-such-route".into(),
            None,
            404,
            "NOT_FOUND",
        ),
    ];
    let shapes: Vec<(Method, String, Option<Value>, u16, &str)> = vec![
        (
            Method::PUT,
            "/api/vaults".into(),
            Some(json!({"name": "x"})),
            404,
            "NOT_FOUND",
        ),
        (
            Method::GET,
            "/api/vaults/%FF".into(),
            None,
            400,
            "BAD_REQUEST",
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}"),
            Some(json!({})),
            422,
            "VALIDATION",
        ),
        (
            Method::PATCH,
            format!("/api/vaults/{v}/members/{}", team.viewer.id),
            Some(json!({})),
            422,
            "VALIDATION",
        ),
    ];
    for (method, path, body, status, code) in cases.into_iter().chain(shapes) {
        refused(&app, owner, method, &path, body, status, code).await;
    }
    let validation = app
        .as_user(owner)
        .create_source(&v, json!({"title": "T", "fileUrl": "ftp://x"}))
        .await
        .1;
    assert!(
        validation["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fileUrl"),
        "names the field: {validation}"
    );

    let huge = app
        .request(
            Method::POST,
            &format!("/api/vaults/{v}/sources"),
            Some(owner),
        )
        .json(&json!({"title": "x".repeat(70_000), "fileUrl": "https://x.org/a.pdf"}))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let huge: Value = huge.json().await.unwrap();
    assert_eq!(huge["error"]["code"], "PAYLOAD_TOO_LARGE");
    let not_json = app
        .request(
            Method::POST,
            &format!("/api/vaults/{v}/sources"),
            Some(owner),
        )
        .header("content-type", "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let (_, sources) = app.as_user(owner).list_sources(&v).await;
    assert_eq!(sources["sources"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.logged_seqs(&v).await,
        [1, 2, 3],
        "only the setup's events"
    );
}

async fn a_vault_keeps_an_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let owner = &team.owner;
    refused(
        &app,
        owner,
        Method::PATCH,
        &format!("/api/vaults/{v}/members/{}", owner.id),
        Some(json!({"role": "viewer"})),
        409,
        "CONFLICT",
    )
    .await;
    refused(
        &app,
        owner,
        Method::DELETE,
        &format!("/api/vaults/{v}/members/{}", owner.id),
        None,
        409,
        "CONFLICT",
    )
    .await;
    let (status, _) = app
        .as_user(owner)
        .update_member(v, &team.contributor.id, json!({"role": "owner"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .as_user(owner)
        .update_member(v, &owner.id, json!({"role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::OK, "another owner remains");
    let (status, _) = app
        .as_user(owner)
        .add_member(
            v,
            json!({"email": team.outsider.email, "role": Role::Viewer}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the demotion applies to the very next request"
    );
    let contributor = &team.contributor;
    refused(
        &app,
        contributor,
        Method::DELETE,
        &format!("/api/vaults/{v}/members/{}", contributor.id),
        None,
        409,
        "CONFLICT",
    )
    .await;
}

/// The body of `GET /metrics`.
async fn metrics_text(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.text().await.unwrap()
}

async fn probes_answer(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.node_id = "node-test".into()).await;
    let probes = [
        ("/healthz", app.anonymous().healthz().await),
        ("/readyz", app.anonymous().readyz().await),
    ];
    for (path, (status, body)) in probes {
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(body["status"], "ok");
        assert_eq!(body["node"], "node-test", "{path}: {body}");
    }
    let (_, ready) = app.anonymous().readyz().await;
    assert_eq!(ready["database"], "ok");
    assert!(ready.get("redis").is_none(), "one node, no Redis: {ready}");

    let team = app.team().await;
    let mut watcher = SocketBuilder::new(&app)
        .token(&team.viewer.token)
        .connect()
        .await;
    watcher.join_ok(&team.vault.id).await;
    app.create_source(&team.owner, &team.vault.id, "Counted")
        .await;
    watcher.next_event("source:created", WAIT).await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    let has = |line: &str| {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    };
    has(r#"syncscript_events_published_total{node="node-test"} 3"#);
    // Two member:added before the watcher joined, then the source.
    has(r#"syncscript_events_delivered_total{node="node-test"} 1"#);
    has(r#"syncscript_broadcast_duration_seconds_count{node="node-test"} 3"#);
    has(r#"syncscript_sockets{node="node-test"} 1"#);
    has(r#"syncscript_watched_vaults{node="node-test"} 1"#);
    has(r#"syncscript_joined_rooms{node="node-test"} 1"#);
    has(
        r#"syncscript_http_requests_total{node="node-test",method="POST",route="/api/vaults/{id}/sources",status="201"} 1"#,
    );
    has(
        r#"syncscript_http_request_duration_seconds_count{node="node-test",method="POST",route="/api/vaults/{id}/sources",status="201"} 1"#,
    );
    let pools: &[&str] = match backend {
        Backend::Sqlite => &["read", "write"],
        Backend::Postgres => &["shared"],
    };
    for pool in pools {
        assert!(
            text.lines().any(|line| line.starts_with(&format!(
                r#"syncscript_db_connections{{node="node-test",pool="{pool}",state="idle"}} "#
            ))),
            "pool {pool}: {text}"
        );
    }
    let (status, _) = app.call(Method::GET, "/no/such/path", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let text = metrics_text(&app).await;
    assert!(
        text.contains(r#"syncscript_http_requests_total{node="node-test",method="GET",route="unmatched",status="404"} 1"#),
        "an unknown path is counted without making a series of its own: {text}"
    );
    // A catch-up is measured by how many events it replayed.
    let ack = watcher
        .join(json!({"vaultId": team.vault.id, "since": 0}))
        .await;
    assert_eq!(ack["ok"], true, "{ack}");
    let text = metrics_text(&app).await;
    assert!(
        text.contains(r#"syncscript_replayed_events_sum{node="node-test"} 3.0"#),
        "{text}"
    );
}
