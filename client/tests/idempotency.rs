//! Retry-safe mutations against the real server (in-process, SQLite): a
//! mutation whose answer is lost after the server committed it is sent
//! again with the same key (REST `Idempotency-Key`, socket `opId`), and
//! the vault holds it once, with one event.
//!
//! The answer is lost by a TCP proxy between the client and the server
//! (`syncscript_testkit::LossyProxy`): it forwards the request, then closes the
//! client's connection instead of forwarding the answer.

use std::time::Duration;

use syncscript_client::api::{ApiClient, Mutate};
use syncscript_client::socket::{Incoming, SocketClient};
use syncscript_client::{ClientError, IdempotencyKey, RetryPolicy};
use syncscript_protocol::{
    CreateSourceCommand, DeleteSourceCommand, IDEMPOTENCY_KEY_HEADER, SourceAck, commands, names,
};
use syncscript_testkit::{Backend, LossyProxy, TestApp};

/// How long any one expected report may take.
const TIMEOUT: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_mutation_whose_answer_is_lost_is_retried_with_the_same_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    let api = ApiClient::new(&proxy.url, Some(team.contributor.token.clone())).unwrap();

    proxy.lose_answer_containing(b"HTTP/1.1 201");
    let source = api
        .create_source(
            &vault,
            "Lost answer",
            "https://example.org/lost.pdf",
            Mutate::default(),
        )
        .await
        .expect("the retry gets the first answer");
    assert_eq!(proxy.lost(), 1, "the first answer was lost");
    assert_eq!(source.title, "Lost answer");

    // Two attempts, one key: a new UUID sent twice.
    let keys = proxy.header_values(IDEMPOTENCY_KEY_HEADER);
    assert_eq!(keys.len(), 2, "{}", proxy.sent());
    assert_eq!(keys[0], keys[1]);
    assert!(IdempotencyKey::new(keys[0].as_str()).is_ok());

    // Committed once: one source, one event after the team's two.
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Lost answer"]);
    assert_eq!(
        events,
        [
            names::MEMBER_ADDED,
            names::MEMBER_ADDED,
            names::SOURCE_CREATED
        ]
    );

    // A delete whose 204 is lost: its retry is answered 204 again, not 404.
    proxy.lose_answer_containing(b"HTTP/1.1 204");
    api.delete_source(&source.id, Mutate::default())
        .await
        .expect("the retry of the delete gets the first answer");
    assert_eq!(proxy.lost(), 2);
    let keys = proxy.header_values(IDEMPOTENCY_KEY_HEADER);
    assert_eq!(keys.len(), 4);
    assert_eq!(keys[2], keys[3]);
    assert_ne!(keys[0], keys[2], "every call has its own key");
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert!(titles.is_empty());
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[3], names::SOURCE_DELETED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_key_is_reused_across_a_user_level_retry() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    // No retry inside the call: the caller sees the failure and retries.
    let api = ApiClient::new(&proxy.url, Some(team.owner.token.clone()))
        .unwrap()
        .with_retry(RetryPolicy::NONE);
    let key = IdempotencyKey::new("user-level-retry-1").unwrap();

    proxy.lose_answer_containing(b"HTTP/1.1 201");
    let error = api
        .create_source(
            &vault,
            "Pressed twice",
            "https://example.org/p.pdf",
            Mutate::with_key(key.clone()),
        )
        .await
        .unwrap_err();
    assert!(error.is_unanswered(), "{error}");
    assert!(matches!(error, ClientError::Transport { .. }), "{error}");

    let again = api
        .create_source(
            &vault,
            "Pressed twice",
            "https://example.org/p.pdf",
            Mutate::with_key(key.clone()),
        )
        .await
        .expect("the same key gets the first answer");
    assert_eq!(
        proxy.header_values(IDEMPOTENCY_KEY_HEADER),
        ["user-level-retry-1", "user-level-retry-1"]
    );
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Pressed twice"]);
    assert_eq!(events.len(), 3, "{events:?}");

    // The server's own answer to that key is the first one.
    let direct = ApiClient::new(&app.base, Some(team.owner.token.clone())).unwrap();
    let replayed = direct
        .create_source(
            &vault,
            "Pressed twice",
            "https://example.org/p.pdf",
            Mutate::with_key(key.clone()),
        )
        .await
        .unwrap();
    assert_eq!(replayed.id, again.id);

    // A raw client sends no key at all.
    direct
        .raw_mutations()
        .rename_vault(&vault, "Renamed raw", Mutate::default())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_command_whose_ack_is_lost_is_sent_again_with_the_same_op_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    let (session, mut incoming) = SocketClient::start(&proxy.url, &team.contributor.token);
    // Not joined to the vault: the next thing the server sends is the ack.
    tokio::time::timeout(TIMEOUT, async {
        while let Some(item) = incoming.recv().await {
            if matches!(item, Incoming::Opened { .. }) {
                return;
            }
        }
        panic!("the session stopped");
    })
    .await
    .expect("the socket opens");

    let op_id = IdempotencyKey::generate().into_string();
    proxy.lose_answer_containing(br#""ok":true"#);
    let command = CreateSourceCommand {
        vault_id: vault.clone(),
        title: "Lost ack".into(),
        file_url: "https://example.org/ack.pdf".into(),
        op_id: Some(op_id.clone()),
    };
    let source = tokio::time::timeout(
        Duration::from_secs(30),
        session.create_source(command.clone()),
    )
    .await
    .expect("answered within the retries")
    .expect("the retry gets the first answer");
    assert_eq!(proxy.lost(), 1, "the first ack was lost");
    assert_eq!(source.title, "Lost ack");

    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Lost ack"]);
    assert_eq!(
        events,
        [
            names::MEMBER_ADDED,
            names::MEMBER_ADDED,
            names::SOURCE_CREATED
        ]
    );

    // That opId is what the server remembers: the very same command again
    // is answered with the first source, and nothing new is committed.
    let ack: SourceAck = session
        .command(commands::SOURCE_CREATE, &command)
        .await
        .unwrap();
    assert_eq!(ack.source.id, source.id);

    // Without an opId of its own, a command gets a new one per call: a
    // delete is applied, and a second delete of the same source (a new
    // operation) finds nothing.
    let deleted = session
        .delete_source(DeleteSourceCommand {
            source_id: source.id.clone(),
            op_id: None,
        })
        .await
        .unwrap();
    assert_eq!(deleted, source.id);
    let again = session
        .delete_source(DeleteSourceCommand {
            source_id: source.id.clone(),
            op_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        again.code(),
        Some(syncscript_protocol::ErrorCode::NotFound),
        "{again}"
    );
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert!(titles.is_empty());
    assert_eq!(events.len(), 4, "{events:?}");
    session.close().await;
}
