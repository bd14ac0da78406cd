//! Sessions, REST commands and their errors, through the real binary.

use syncscript_protocol::ErrorCode;

use crate::helpers::{CliRunner, PASSWORD, api_as, seed};
use syncscript_testkit::{Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_mint_prints_a_working_token_and_cookie_without_storing_it() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;

    let minted = cli
        .json(&[
            "session",
            "mint",
            "--email",
            "viewer@demo.com",
            "--password",
            PASSWORD,
            "--vault",
            &vault,
        ])
        .await;
    let token = minted["token"].as_str().unwrap();
    assert_eq!(
        minted["header"],
        format!("Cookie: syncscript_session={token}").as_str()
    );
    assert_eq!(
        minted["testPageUrl"],
        format!("{}/test/realtime?vaultId={vault}", server.base).as_str()
    );

    let api = syncscript_client::api::ApiClient::new(&server.base, Some(token.to_owned())).unwrap();
    assert_eq!(api.me().await.unwrap().email, "viewer@demo.com");

    let cookie = minted["cookie"].as_str().unwrap();
    let response = reqwest::Client::new()
        .get(format!("{}/api/me", server.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "viewer@demo.com");

    // Human output carries the same header; nothing was stored.
    let human = cli
        .ok(&[
            "session",
            "mint",
            "--email",
            "viewer@demo.com",
            "--password",
            PASSWORD,
        ])
        .await;
    assert!(human.contains("Cookie: syncscript_session="), "{human}");
    assert!(!cli.config.path().join("sessions.json").exists());
    assert!(cli.fails(&["whoami"]).await.contains("not logged in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_whoami_add_source_and_logout() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let vault = seed(&cli).await;

    cli.ok(&[
        "login",
        "--email",
        "contributor@demo.com",
        "--password",
        PASSWORD,
    ])
    .await;
    let file = cli.config.path().join("sessions.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = stored["sessions"][server.base.as_str()]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let whoami = cli.ok(&["whoami"]).await;
    assert!(whoami.contains("contributor@demo.com"), "{whoami}");
    assert_eq!(
        cli.json(&["whoami"]).await["user"]["email"],
        "contributor@demo.com"
    );

    let added = cli
        .json(&[
            "add-source",
            "--vault",
            &vault,
            "--title",
            "From the CLI",
            "--url",
            "https://example.org/cli.pdf",
        ])
        .await;
    let source_id = added["source"]["id"].as_str().unwrap().to_owned();
    let owner = api_as(&server, "owner@demo.com").await;
    let sources = owner.list_sources(&vault).await.unwrap().sources;
    let source = sources.iter().find(|s| s.id == source_id).unwrap();
    assert_eq!(source.title, "From the CLI");
    assert_eq!(source.file_url, "https://example.org/cli.pdf");

    cli.ok(&[
        "update-source",
        "--source",
        &source_id,
        "--title",
        "Renamed",
    ])
    .await;
    assert_eq!(owner.get_source(&source_id).await.unwrap().title, "Renamed");

    let events = cli
        .json(&["events", "--vault", &vault, "--since", "5"])
        .await;
    let names: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["source:created", "source:updated"]);

    cli.ok(&["delete-source", "--source", &source_id]).await;
    let gone = owner.get_source(&source_id).await.unwrap_err();
    assert_eq!(gone.code(), Some(ErrorCode::NotFound));

    cli.ok(&["logout"]).await;
    assert!(cli.fails(&["whoami"]).await.contains("not logged in"));
    let revoked = syncscript_client::api::ApiClient::new(&server.base, Some(token))
        .unwrap()
        .me()
        .await
        .unwrap_err();
    assert_eq!(revoked.code(), Some(ErrorCode::Unauthorized));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_and_member_commands_manage_a_new_vault() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    seed(&cli).await;
    let owner = server.login("owner@demo.com", PASSWORD).await.token;

    let created = cli
        .json(&[
            "--token",
            &owner,
            "vault",
            "create",
            "--name",
            "Reading group",
        ])
        .await;
    let vault = created["vault"]["id"].as_str().unwrap().to_owned();
    let listed = cli.ok(&["--token", &owner, "vault", "list"]).await;
    assert!(
        listed.contains("Reading group") && listed.contains(&vault),
        "{listed}"
    );

    let added = cli
        .json(&[
            "--token",
            &owner,
            "member",
            "add",
            "--vault",
            &vault,
            "--email",
            "viewer@demo.com",
            "--role",
            "viewer",
        ])
        .await;
    let viewer_id = added["member"]["userId"].as_str().unwrap().to_owned();
    cli.ok(&[
        "--token",
        &owner,
        "member",
        "set-role",
        "--vault",
        &vault,
        "--user",
        &viewer_id,
        "--role",
        "contributor",
    ])
    .await;
    let shown = cli
        .json(&["--token", &owner, "vault", "show", "--vault", &vault])
        .await;
    let members = shown["members"].as_array().unwrap();
    assert!(
        members
            .iter()
            .any(|m| m["userId"] == viewer_id.as_str() && m["role"] == "contributor")
    );
    cli.ok(&[
        "--token", &owner, "member", "remove", "--vault", &vault, "--user", &viewer_id,
    ])
    .await;
    let api = api_as(&server, "owner@demo.com").await;
    assert_eq!(api.list_members(&vault).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_reported_as_code_and_message() {
    let server = TestApp::spawn(Backend::Sqlite).await;
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
    let stderr = cli
        .fails(&[
            "add-source",
            "--vault",
            &vault,
            "--title",
            "Nope",
            "--url",
            "https://example.org/n.pdf",
        ])
        .await;
    assert!(
        stderr.contains("error: FORBIDDEN: Insufficient permissions"),
        "{stderr}"
    );

    let unknown = "01900000-0000-7000-8000-000000000000";
    let stderr = cli.fails(&["vault", "show", "--vault", unknown]).await;
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");

    // A non-member cannot tell the vault exists.
    let outsider = server.login("outsider@demo.com", PASSWORD).await.token;
    let stderr = cli
        .fails(&["--token", &outsider, "vault", "show", "--vault", &vault])
        .await;
    assert!(stderr.starts_with("error: NOT_FOUND: "), "{stderr}");

    let stderr = cli
        .fails(&[
            "login",
            "--email",
            "viewer@demo.com",
            "--password",
            "wrong-password",
        ])
        .await;
    assert!(stderr.starts_with("error: UNAUTHORIZED: "), "{stderr}");

    let owner = server.login("owner@demo.com", PASSWORD).await.token;
    let stderr = cli
        .fails(&[
            "--token",
            &owner,
            "add-source",
            "--vault",
            &vault,
            "--title",
            "Bad URL",
            "--url",
            "ftp://x",
        ])
        .await;
    assert!(stderr.starts_with("error: VALIDATION: "), "{stderr}");
}
