//! `seed` creates the demo data once; a second run changes nothing.

use crate::helpers::{CliRunner, api_as};
use syncscript_testkit::{Backend, TestApp};

/// What the seed is responsible for, as the API sees it.
async fn snapshot(server: &TestApp, demo_vault: &str) -> (usize, usize, usize, i64, usize) {
    let owner = api_as(server, "owner@demo.com").await;
    let outsider = api_as(server, "outsider@demo.com").await;
    let vaults = owner.list_vaults().await.unwrap();
    let members = owner.list_members(demo_vault).await.unwrap();
    let sources = owner.list_sources(demo_vault).await.unwrap();
    let outsider_vaults = outsider.list_vaults().await.unwrap();
    (
        vaults.len(),
        members.len(),
        sources.sources.len(),
        sources.seq,
        outsider_vaults.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_twice_creates_the_demo_once() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);

    let first = cli.ok(&["seed"]).await;
    for expected in [
        "owner@demo.com",
        "contributor@demo.com",
        "viewer@demo.com",
        "outsider@demo.com",
        "demo-password",
        "Demo Vault",
        "Outsider's Vault",
        "/test/realtime?vaultId=",
        "watch --vault",
    ] {
        assert!(
            first.contains(expected),
            "missing {expected:?} in:\n{first}"
        );
    }
    let owner = api_as(&server, "owner@demo.com").await;
    let vaults = owner.list_vaults().await.unwrap();
    assert_eq!(vaults.len(), 1);
    let demo = &vaults[0];
    assert_eq!(demo.name, "Demo Vault");
    assert!(first.contains(&demo.id));
    let before = snapshot(&server, &demo.id).await;
    assert_eq!(
        before,
        (1, 3, 3, 5, 1),
        "vaults, members, sources, seq, outsider vaults"
    );

    let second = cli.json(&["seed"]).await;
    assert_eq!(second["demoVault"]["id"], demo.id.as_str());
    assert_eq!(second["demoVault"]["created"], false);
    assert_eq!(second["outsiderVault"]["created"], false);
    assert_eq!(second["sourcesCreated"], 0);
    let users = second["users"].as_array().unwrap();
    assert_eq!(users.len(), 4);
    assert!(users.iter().all(|u| u["created"] == false));
    assert_eq!(snapshot(&server, &demo.id).await, before);

    // The roles are the advertised ones.
    let members = owner.list_members(&demo.id).await.unwrap();
    let role_of = |email: &str| {
        members
            .iter()
            .find(|m| m.email == email)
            .map(|m| m.role.as_str())
    };
    assert_eq!(role_of("owner@demo.com"), Some("owner"));
    assert_eq!(role_of("contributor@demo.com"), Some("contributor"));
    assert_eq!(role_of("viewer@demo.com"), Some("viewer"));
    assert_eq!(role_of("outsider@demo.com"), None);
}
