//! Every change the CLI makes carries an idempotency key, given with
//! `--idempotency-key` or made by the CLI, and a change whose answer is
//! lost is sent again with the same key: the server applies it once.
//! The answer is lost by a TCP proxy between the binary and the server.

use syncscript_protocol::{IDEMPOTENCY_KEY_HEADER, names};
use syncscript_testkit::{Backend, LossyProxy, TestApp};

use crate::helpers::CliRunner;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_answer_is_lost_is_sent_again_with_the_same_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    let cli = CliRunner::new(&app);
    let add = [
        "--server",
        proxy.url.as_str(),
        "--token",
        team.owner.token.as_str(),
        "add-source",
        "--vault",
        vault.as_str(),
        "--title",
        "Sent twice",
        "--url",
        "https://example.org/twice.pdf",
        "--idempotency-key",
        "cli-add-1",
    ];

    proxy.lose_answer_containing(b"HTTP/1.1 201");
    let first = cli.json(&add).await;
    assert_eq!(proxy.lost(), 1, "the first answer was lost");
    assert_eq!(
        proxy.header_values(IDEMPOTENCY_KEY_HEADER),
        ["cli-add-1", "cli-add-1"]
    );
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Sent twice"]);
    assert_eq!(
        events,
        [
            names::MEMBER_ADDED,
            names::MEMBER_ADDED,
            names::SOURCE_CREATED
        ]
    );

    // The same command run again by hand: the first answer, nothing new.
    let again = cli.json(&add).await;
    assert_eq!(again["source"]["id"], first["source"]["id"]);
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles.len(), 1);
    assert_eq!(events.len(), 3);

    // Without the flag, the CLI makes a key and keeps it for the retry.
    let source = first["source"]["id"].as_str().unwrap();
    proxy.lose_answer_containing(b"HTTP/1.1 204");
    cli.json(&[
        "--server",
        proxy.url.as_str(),
        "--token",
        team.owner.token.as_str(),
        "delete-source",
        "--source",
        source,
    ])
    .await;
    assert_eq!(proxy.lost(), 2);
    let keys = proxy.header_values(IDEMPOTENCY_KEY_HEADER);
    assert_eq!(keys.len(), 5, "{keys:?}");
    assert_eq!(keys[3], keys[4]);
    assert_ne!(keys[3], "cli-add-1");
    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert!(titles.is_empty());
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(events[3], names::SOURCE_DELETED);
}

/// Runs the CLI through `proxy` as the holder of `token`, with `--json`.
async fn through(
    cli: &CliRunner,
    proxy: &LossyProxy,
    token: &str,
    args: &[&str],
) -> serde_json::Value {
    let mut all = vec!["--server", proxy.url.as_str(), "--token", token];
    all.extend_from_slice(args);
    cli.json(&all).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mutating_command_sends_a_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let proxy = LossyProxy::start(app.addr).await;
    let cli = CliRunner::new(&app);
    let token = team.owner.token.as_str();

    let created = through(&cli, &proxy, token, &["vault", "create", "--name", "Keyed"]).await;
    let vault = created["vault"]["id"].as_str().unwrap().to_owned();
    let added = through(
        &cli,
        &proxy,
        token,
        &[
            "add-source",
            "--vault",
            &vault,
            "--title",
            "T",
            "--url",
            "https://example.org/t.pdf",
        ],
    )
    .await;
    let source = added["source"]["id"].as_str().unwrap().to_owned();
    let viewer = (team.viewer.email.as_str(), team.viewer.id.as_str());
    let changes: [&[&str]; 7] = [
        &[
            "vault",
            "rename",
            "--vault",
            &vault,
            "--name",
            "Keyed again",
        ],
        &[
            "member", "add", "--vault", &vault, "--email", viewer.0, "--role", "viewer",
        ],
        &[
            "member",
            "set-role",
            "--vault",
            &vault,
            "--user",
            viewer.1,
            "--role",
            "contributor",
        ],
        &["member", "remove", "--vault", &vault, "--user", viewer.1],
        &["update-source", "--source", &source, "--title", "T2"],
        &["delete-source", "--source", &source],
        &["vault", "delete", "--vault", &vault],
    ];
    for args in changes {
        through(&cli, &proxy, token, args).await;
    }
    // Nine changes, nine different keys.
    let keys = proxy.header_values(IDEMPOTENCY_KEY_HEADER);
    assert_eq!(keys.len(), 9, "{keys:?}");
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 9, "{keys:?}");

    // Reads send none.
    through(&cli, &proxy, token, &["vault", "list"]).await;
    assert_eq!(proxy.header_values(IDEMPOTENCY_KEY_HEADER).len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_is_refused_and_an_unanswered_change_names_its_key() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let cli = CliRunner::new(&app);
    let token = team.owner.token.as_str();

    let output = cli
        .run(&[
            "--token",
            token,
            "vault",
            "create",
            "--name",
            "x",
            "--idempotency-key",
            "has space",
        ])
        .await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("visible ASCII"), "{stderr}");

    // Nobody listens on the proxy's port once it is dropped: every attempt
    // fails to connect, and the error says how to try again safely.
    let closed = LossyProxy::start(app.addr).await;
    let url = closed.url.clone();
    closed.stop().await;
    let stderr = cli
        .fails(&[
            "--server",
            &url,
            "--token",
            token,
            "vault",
            "rename",
            "--vault",
            &team.vault.id,
            "--name",
            "Never",
            "--idempotency-key",
            "cli-unanswered-1",
        ])
        .await;
    assert!(
        stderr.contains("--idempotency-key cli-unanswered-1"),
        "{stderr}"
    );
}
