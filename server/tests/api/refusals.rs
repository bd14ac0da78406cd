//! A refusal inside a mutation (a 404 or 409 decided after the mutation's
//! transaction began) rolls back explicitly, so that SQLite's one writer
//! connection stays in its pool: a refusal that dropped the transaction
//! instead closed the writer, and the next write paid for a new connection
//! (and its pragmas). The pool's opened-connections counter in `/metrics`
//! shows it.

use reqwest::StatusCode;
use serde_json::json;
use syncscript_protocol::Role;
use syncscript_testkit::{Backend, TestApp};

/// `syncscript_db_connections_opened_total` of `pool`.
async fn opened(app: &TestApp, pool: &str) -> u64 {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = "syncscript_db_connections_opened_total{node=";
    text.lines()
        .find(|line| line.starts_with(prefix) && line.contains(&format!("pool=\"{pool}\"")))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no opened-connections count of pool {pool} in:\n{text}"))
}

/// SQLite only: on PostgreSQL a dropped transaction's rollback is queued on
/// its connection, which stays in the pool either way.
#[tokio::test]
async fn refusals_inside_a_mutation_keep_the_writer_connection() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let owner = app.as_user(&team.owner);
    let before = opened(&app, "write").await;
    assert!(before >= 1, "the writer has been opened: {before}");
    for round in 0..10 {
        let refusals = [
            (
                "unknown email",
                owner
                    .add_member(
                        v,
                        json!({"email": "nobody@example.org", "role": Role::Viewer}),
                    )
                    .await,
                StatusCode::NOT_FOUND,
            ),
            (
                "already a member",
                owner
                    .add_member(v, json!({"email": team.viewer.email, "role": Role::Viewer}))
                    .await,
                StatusCode::CONFLICT,
            ),
            (
                "the last owner made a viewer",
                owner
                    .update_member(v, &team.owner.id, json!({"role": "viewer"}))
                    .await,
                StatusCode::CONFLICT,
            ),
            (
                "the last owner removed",
                owner.remove_member(v, &team.owner.id).await,
                StatusCode::CONFLICT,
            ),
            (
                "the role of a non-member",
                owner
                    .update_member(v, &team.outsider.id, json!({"role": "viewer"}))
                    .await,
                StatusCode::NOT_FOUND,
            ),
        ];
        for (what, (status, body), expected) in refusals {
            assert_eq!(status, expected, "round {round}, {what}: {body}");
        }
    }
    // A write after the refusals uses the same connection.
    app.create_source(&team.owner, v, "After the refusals")
        .await;
    assert_eq!(
        opened(&app, "write").await,
        before,
        "50 refusals must not close and reopen the writer"
    );
    assert_eq!(
        app.logged_seqs(v).await.len(),
        3,
        "the setup's two events and the source: no refusal committed"
    );
}
