//! `watch` prints every sequenced event once, in seq order, across a server
//! restart; refusals end it with a readable error.

use serde_json::Value;
use syncscript_client::api::{ApiClient, Mutate};

use crate::helpers::{CliRunner, Lines, PASSWORD, api_as, seed};
use syncscript_testkit::{Backend, TestApp};

/// Adds a source as `api` and returns its id.
async fn add_source(api: &ApiClient, vault: &str, title: &str) -> String {
    api.create_source(vault, title, "https://example.org/w.pdf", Mutate::default())
        .await
        .unwrap()
        .id
}

/// Reads the next line and checks its event name and seq.
async fn expect_event(watcher: &mut Lines, name: &str, seq: i64) -> Value {
    let line = watcher.next_json().await;
    assert_eq!(line["event"], name, "{line}");
    assert_eq!(line["seq"], seq, "{line}");
    assert_eq!(line["payload"]["seq"], seq, "{line}");
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_prints_every_event_once_in_order_across_a_server_restart() {
    let mut server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;
    cli.ok(&[
        "login",
        "--email",
        "viewer@demo.com",
        "--password",
        PASSWORD,
    ])
    .await;
    let owner = api_as(&server, "owner@demo.com").await;
    let head = owner.get_vault(&vault).await.unwrap().seq;

    // Without --since the watch starts at the head: the seed's events are
    // not printed.
    let mut watcher = Lines::spawn(cli.command(&["watch", "--vault", &vault]));
    watcher.stderr_until("joined vault").await;

    let first = add_source(&owner, &vault, "Live one").await;
    let line = expect_event(&mut watcher, "source:created", head + 1).await;
    assert_eq!(line["payload"]["source"]["id"], first.as_str());
    assert_eq!(line["payload"]["vaultId"], vault.as_str());
    owner
        .update_source(
            &first,
            &syncscript_protocol::UpdateSourceRequest {
                title: Some("Live one, renamed".into()),
                file_url: None,
            },
            Mutate::default(),
        )
        .await
        .unwrap();
    expect_event(&mut watcher, "source:updated", head + 2).await;
    owner
        .delete_source(&first, Mutate::default())
        .await
        .unwrap();
    expect_event(&mut watcher, "source:deleted", head + 3).await;

    // Restart: same port, same database. Events made as soon as the new
    // instance is up, possibly before the watcher is back, must arrive too.
    server.stop().await;
    server.start_again().await;
    let owner = api_as(&server, "owner@demo.com").await;
    let mut expected = head + 3;
    for title in ["After restart 1", "After restart 2", "After restart 3"] {
        add_source(&owner, &vault, title).await;
    }
    for title in ["After restart 1", "After restart 2", "After restart 3"] {
        expected += 1;
        let line = expect_event(&mut watcher, "source:created", expected).await;
        assert_eq!(line["payload"]["source"]["title"], title);
    }
    watcher.stderr_until("joined vault").await;

    // Live again after the rejoin; the next line being exactly the next seq
    // shows nothing was printed twice in between.
    add_source(&owner, &vault, "Live again").await;
    expect_event(&mut watcher, "source:created", expected + 1).await;
    owner
        .rename_vault(&vault, "Demo Vault, renamed", Mutate::default())
        .await
        .unwrap();
    let line = expect_event(&mut watcher, "vault:updated", expected + 2).await;
    assert_eq!(line["payload"]["vault"]["name"], "Demo Vault, renamed");

    // Deleting the vault ends the watch with status 0.
    owner.delete_vault(&vault, Mutate::default()).await.unwrap();
    expect_event(&mut watcher, "vault:deleted", expected + 3).await;
    assert_eq!(watcher.exit_code().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_since_replays_the_log_and_exits_3_when_removed() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;
    let owner = api_as(&server, "owner@demo.com").await;
    let viewer = api_as(&server, "viewer@demo.com").await;
    let viewer_token = viewer.token().unwrap().to_owned();
    let viewer_id = viewer.me().await.unwrap().id;
    let log = owner.list_events(&vault, Some(0), None).await.unwrap();
    assert_eq!(log.events.len(), 5);

    let mut watcher = Lines::spawn(cli.command(&[
        "--token",
        &viewer_token,
        "watch",
        "--vault",
        &vault,
        "--since",
        "0",
    ]));
    for logged in &log.events {
        let line = expect_event(&mut watcher, &logged.name, logged.seq).await;
        assert_eq!(line["payload"], logged.payload);
    }
    watcher.stderr_until("joined vault").await;

    owner
        .remove_member(&vault, &viewer_id, Mutate::default())
        .await
        .unwrap();
    let line = expect_event(&mut watcher, "member:removed", 6).await;
    assert_eq!(line["payload"]["member"]["userId"], viewer_id.as_str());
    let line = watcher.next_json().await;
    assert_eq!(line["event"], "vault:removed", "{line}");
    assert_eq!(line["payload"]["vaultId"], vault.as_str());
    assert_eq!(watcher.exit_code().await, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_refusals_exit_non_zero_with_the_reason() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;

    // A bogus token: the handshake is refused.
    let stderr = cli
        .fails(&[
            "--token",
            "not-a-token",
            "watch",
            "--vault",
            &vault,
            "--since",
            "0",
        ])
        .await;
    assert!(stderr.starts_with("error: UNAUTHORIZED: "), "{stderr}");

    // A non-member: the join is refused.
    let outsider = server.login("outsider@demo.com", PASSWORD).await.token;
    let stderr = cli
        .fails(&[
            "--token", &outsider, "watch", "--vault", &vault, "--since", "0",
        ])
        .await;
    assert!(
        stderr.contains("FORBIDDEN: Access denied to vault"),
        "{stderr}"
    );

    // Without --since the vault is read over REST first: NOT_FOUND.
    let stderr = cli
        .fails(&["--token", &outsider, "watch", "--vault", &vault])
        .await;
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_pretty_prints_one_readable_line_per_event() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;
    cli.ok(&["login", "--email", "owner@demo.com", "--password", PASSWORD])
        .await;

    let mut watcher =
        Lines::spawn(cli.command(&["watch", "--vault", &vault, "--since", "0", "--pretty"]));
    assert_eq!(
        watcher.next_line().await,
        "#1 member:added by Olivia Owner (owner): Carl Contributor <contributor@demo.com> as contributor"
    );
    assert_eq!(
        watcher.next_line().await,
        "#2 member:added by Olivia Owner (owner): Vera Viewer <viewer@demo.com> as viewer"
    );
    let third = watcher.next_line().await;
    assert!(
        third.starts_with(
            "#3 source:created by Olivia Owner (owner): \"Attention Is All You Need\""
        ),
        "{third}"
    );
}
