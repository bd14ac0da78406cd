//! Several real `syncscript` processes sharing PostgreSQL and a Redis of
//! the test's own (docs/protocol.md, "Several nodes"): events, presence,
//! revocation, deletion and logout cross nodes; seq stays contiguous with
//! writers on every node; a Redis restart and a node killed with SIGKILL
//! lose nothing; nginx in front works. Each test has its own database and
//! Redis. Watchers use rust_socketio and the official npm client.

mod watchers;

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_testkit::{Api, Cluster, Team, eventually};

use crate::watchers::{View, Watcher};

const BINARY: &str = env!("CARGO_BIN_EXE_syncscript");

async fn cluster(nodes: usize) -> Cluster {
    Cluster::start(Path::new(BINARY), nodes).await
}

/// Creates `count` sources in the team's vault through `api`.
async fn create_sources(api: &Api, team: &Team, count: usize, label: &str) {
    for i in 0..count {
        api.create_source(&team.owner, &team.vault.id, &format!("{label} {i}"))
            .await;
    }
}

/// The vault's head seq, read through the API.
async fn head(api: &Api, team: &Team) -> i64 {
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/api/vaults/{}", team.vault.id),
            Some(&team.owner),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["seq"].as_i64().expect("vault seq")
}

fn seqs(head: i64) -> Vec<i64> {
    (1..=head).collect()
}

/// Waits until every watcher has applied exactly `seqs`.
async fn until_all_applied(watchers: &[Watcher], seqs: &[i64]) {
    for watcher in watchers {
        watcher.until_applied(seqs).await;
    }
}

/// A pool on the cluster's database.
async fn database(cluster: &Cluster) -> sqlx::AnyPool {
    sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.database.existing_url())
        .await
        .expect("pool")
}

async fn stop_all(watchers: Vec<Watcher>) {
    for watcher in watchers {
        watcher.stop().await;
    }
}

/// Mutations made on each node reach every member watching on every node,
/// over both clients, and no one else.
#[tokio::test]
async fn mutations_on_each_node_reach_every_member_on_every_node_and_no_one_else() {
    let cluster = cluster(3).await;
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].api.clone());
    let team = a.team().await;
    let vault = &team.vault.id;
    let other_vault = b.create_vault(&team.outsider, "Elsewhere").await;
    let watchers = vec![
        watchers::rust("owner@1", &a.base, &team.owner.token, vault),
        watchers::node("viewer@2", &b.base, &team.viewer.token, vault),
        watchers::rust("contributor@3", &c.base, &team.contributor.token, vault),
        watchers::node("owner@3", &c.base, &team.owner.token, vault),
    ];
    let outsiders = vec![
        watchers::rust("outsider@1", &a.base, &team.outsider.token, vault),
        watchers::node("outsider@2", &b.base, &team.outsider.token, vault),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    for outsider in &outsiders {
        let view = outsider.until("refused", |v| !v.refusals.is_empty()).await;
        assert_eq!(view.refusals[0], "FORBIDDEN", "{}", outsider.name);
    }
    // A watcher of another vault on a third node hears nothing of this one.
    let elsewhere = watchers::rust(
        "outsider-own@3",
        &c.base,
        &team.outsider.token,
        &other_vault.id,
    );
    elsewhere.until("joined", |v| v.joins > 0).await;

    for (api, label) in [(&a, "via 1"), (&b, "via 2"), (&c, "via 3")] {
        create_sources(api, &team, 2, label).await;
        api.create_source(&team.contributor, vault, label).await;
    }
    let expected = seqs(head(&a, &team).await);
    assert_eq!(expected.len(), 2 + 9, "two member:added and nine sources");
    for watcher in &watchers {
        let view = watcher.until_applied(&expected).await;
        assert!(
            view.foreign.is_empty(),
            "{}: {:?}",
            watcher.name,
            view.foreign
        );
    }
    for outsider in outsiders.iter().chain([&elsewhere]) {
        let view = outsider.view();
        assert!(view.applied.is_empty(), "{}: {view:?}", outsider.name);
        assert!(view.foreign.is_empty(), "{}: {view:?}", outsider.name);
        assert!(
            view.presence.is_none() || outsider.name.starts_with("outsider-own"),
            "{}: {view:?}",
            outsider.name
        );
    }
    stop_all(watchers).await;
    stop_all(outsiders).await;
    elsewhere.stop().await;
}

/// Writers on three nodes mutating one vault at once: seq 1..N, no gap, and
/// every watcher gets all of it.
#[tokio::test]
async fn concurrent_writers_on_three_nodes_give_contiguous_seqs() {
    let cluster = cluster(3).await;
    let apis: Vec<Api> = cluster.nodes.iter().map(|n| n.api.clone()).collect();
    let team = apis[0].team().await;
    let watchers: Vec<Watcher> = apis
        .iter()
        .enumerate()
        .map(|(i, api)| {
            watchers::rust(
                &format!("viewer@{}", i + 1),
                &api.base,
                &team.viewer.token,
                &team.vault.id,
            )
        })
        .collect();
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    let mut writers = tokio::task::JoinSet::new();
    for (i, api) in apis.iter().enumerate() {
        let (api, writer, vault) = (api.clone(), team.contributor.clone(), team.vault.id.clone());
        writers.spawn(async move {
            for n in 0..20 {
                api.create_source(&writer, &vault, &format!("w{i} {n}"))
                    .await;
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("writer");
    }
    let logged: Vec<i64> = sqlx_seqs(&cluster, &team.vault.id).await;
    assert_eq!(logged, seqs(62), "2 member:added + 60 sources, contiguous");
    until_all_applied(&watchers, &logged).await;
    stop_all(watchers).await;
}

/// Revocation, vault deletion and logout made through one node reach
/// sockets connected to the others.
#[tokio::test]
async fn revocation_deletion_and_logout_reach_sockets_on_other_nodes() {
    let cluster = cluster(3).await;
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].api.clone());
    let team = a.team().await;
    let vault = &team.vault.id;
    let viewer_rust = watchers::rust("viewer@2", &b.base, &team.viewer.token, vault);
    let viewer_npm = watchers::node("viewer@3", &c.base, &team.viewer.token, vault);
    let contributor = watchers::rust("contributor@3", &c.base, &team.contributor.token, vault);
    for watcher in [&viewer_rust, &viewer_npm, &contributor] {
        watcher.until("joined", |v| v.joins > 0).await;
    }

    // Removal through node 1 reaches the viewer's sockets on nodes 2 and 3,
    // and nothing of the vault reaches them afterwards.
    a.remove_member(&team.owner, vault, &team.viewer).await;
    for watcher in [&viewer_rust, &viewer_npm] {
        watcher.until("removed", |v| v.removed).await;
    }
    contributor
        .until("seen presence without the removed viewer", |v| {
            v.presence.as_ref().is_some_and(|p| {
                p.present
                    .iter()
                    .all(|entry| entry.user_id != team.viewer.id)
                    && !p.present.is_empty()
            })
        })
        .await;
    create_sources(&a, &team, 3, "after removal").await;
    let expected = seqs(head(&a, &team).await);
    contributor.until_applied(&expected).await;
    for watcher in [&viewer_rust, &viewer_npm] {
        let view = watcher.view();
        assert!(view.foreign.is_empty(), "{}: {view:?}", watcher.name);
        assert!(
            !view.applied.contains(&expected[expected.len() - 1]),
            "{}",
            watcher.name
        );
    }

    // Logout through node 1 disconnects the contributor's sockets on nodes
    // 2 and 3, and their reconnects are refused: no later event reaches
    // them.
    let contributor_npm = watchers::node("contributor@2", &b.base, &team.contributor.token, vault);
    contributor_npm.until_applied(&expected).await;
    let (status, _) = a
        .call(
            Method::POST,
            "/api/auth/logout",
            Some(&team.contributor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    contributor
        .until("disconnected by the logout", |v| v.disconnects > 0)
        .await;
    contributor_npm
        .until("refused after logout", |v| v.unauthorized)
        .await;
    let owner_2 = watchers::rust("owner@2", &b.base, &team.owner.token, vault);
    create_sources(&a, &team, 2, "after logout").await;
    owner_2.until_applied(&seqs(head(&a, &team).await)).await;
    for watcher in [&contributor, &contributor_npm] {
        let view = watcher.view();
        assert_eq!(
            view.applied, expected,
            "{}: nothing after the logout",
            watcher.name
        );
    }

    // Deletion through node 2 reaches the owner's watchers on nodes 1 and 3.
    let owner_1 = watchers::rust("owner@1", &a.base, &team.owner.token, vault);
    let owner_3 = watchers::node("owner@3", &c.base, &team.owner.token, vault);
    let before = head(&a, &team).await;
    for watcher in [&owner_1, &owner_3] {
        watcher.until_applied(&seqs(before)).await;
    }
    b.delete_vault(&team.owner, vault).await;
    for watcher in [&owner_1, &owner_3] {
        watcher.until_applied(&seqs(before + 1)).await;
    }
    stop_all(vec![
        viewer_rust,
        viewer_npm,
        contributor,
        contributor_npm,
        owner_1,
        owner_2,
        owner_3,
    ])
    .await;
}

/// Presence counts the sockets of every node, in one signal.
#[tokio::test]
async fn presence_counts_sockets_on_every_node() {
    let cluster = cluster(3).await;
    let [a, b, c] = [0, 1, 2].map(|i| cluster.nodes[i].api.clone());
    let team = a.team().await;
    let vault = &team.vault.id;
    let watchers = vec![
        watchers::rust("owner@1", &a.base, &team.owner.token, vault),
        watchers::node("owner@2", &b.base, &team.owner.token, vault),
        watchers::rust("owner@3", &c.base, &team.owner.token, vault),
        watchers::node("viewer@3", &c.base, &team.viewer.token, vault),
    ];
    let counts = |view: &View| -> Vec<(String, u32)> {
        view.presence
            .iter()
            .flat_map(|p| &p.present)
            .map(|entry| (entry.user_name.clone(), entry.connections))
            .collect()
    };
    let want = vec![("owner".to_owned(), 3), ("viewer".to_owned(), 1)];
    for watcher in &watchers {
        watcher
            .until("seen owner×3 and viewer×1", |v| counts(v) == want)
            .await;
    }
    // A socket leaving on one node lowers the count everywhere.
    let mut watchers = watchers;
    let leaving = watchers.remove(1);
    leaving.stop().await;
    let want = vec![("owner".to_owned(), 2), ("viewer".to_owned(), 1)];
    for watcher in &watchers {
        watcher
            .until("seen owner×2 and viewer×1", |v| counts(v) == want)
            .await;
    }
    stop_all(watchers).await;
}

/// Redis stopped mid-stream and started again, the last mutation made
/// during the outage: every watcher ends with every event exactly once,
/// without any further mutation. Prints how long recovery took.
#[tokio::test]
async fn a_redis_restart_loses_nothing() {
    let mut cluster = cluster(3).await;
    let apis: Vec<Api> = cluster.nodes.iter().map(|n| n.api.clone()).collect();
    let team = apis[0].team().await;
    let vault = &team.vault.id;
    let watchers = vec![
        watchers::rust("viewer@1", &apis[0].base, &team.viewer.token, vault),
        watchers::node("viewer@2", &apis[1].base, &team.viewer.token, vault),
        watchers::rust(
            "contributor@3",
            &apis[2].base,
            &team.contributor.token,
            vault,
        ),
        watchers::node("owner@3", &apis[2].base, &team.owner.token, vault),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    for api in &apis {
        create_sources(api, &team, 2, "before").await;
    }
    let before = seqs(head(&apis[0], &team).await);
    until_all_applied(&watchers, &before).await;

    cluster.redis.stop().await;
    // Every node keeps answering, and says it is degraded.
    for api in &apis {
        let ready = until_ready_is(api, StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(ready["redis"], "unreachable", "{ready}");
        assert_eq!(ready["database"], "ok", "{ready}");
    }
    // Mutations during the outage, on every node, the last one included.
    for api in &apis {
        create_sources(api, &team, 2, "during").await;
    }
    let all = seqs(head(&apis[0], &team).await);

    let restarted = Instant::now();
    cluster.redis.start_again().await;
    until_all_applied(&watchers, &all).await;
    let complete = restarted.elapsed();
    let mut linked = Duration::ZERO;
    for api in &apis {
        until_ready_is(api, StatusCode::OK).await;
        linked = linked.max(restarted.elapsed());
    }
    eprintln!(
        "redis restart: every watcher complete {complete:?} after Redis started again; \
         every node linked again (live cross-node delivery) by {linked:?}"
    );
    // Live delivery across nodes works again.
    apis[0].create_source(&team.owner, vault, "after").await;
    let after = seqs(head(&apis[0], &team).await);
    until_all_applied(&watchers, &after).await;
    stop_all(watchers).await;
}

/// A node killed with SIGKILL mid-stream: its watchers (through nginx)
/// reconnect to another node and, like every other watcher, end with every
/// committed event.
#[tokio::test]
async fn a_node_killed_mid_stream_loses_nothing() {
    let mut cluster = cluster(3).await;
    let balancer = cluster.with_nginx().await;
    let team = balancer.team().await;
    let vault = &team.vault.id;
    let (_, health) = balancer.call(Method::GET, "/healthz", None, None).await;
    let victim = cluster
        .nodes
        .iter()
        .position(|n| health["node"] == n.id.as_str())
        .expect("nginx reached a node");
    let survivors: Vec<Api> = (0..3)
        .filter(|&i| i != victim)
        .map(|i| cluster.nodes[i].api.clone())
        .collect();
    let victim_api = cluster.nodes[victim].api.clone();
    let watchers = vec![
        watchers::rust("viewer@lb", &balancer.base, &team.viewer.token, vault),
        watchers::node("owner@lb", &balancer.base, &team.owner.token, vault),
        watchers::rust(
            "contributor@survivor",
            &survivors[0].base,
            &team.contributor.token,
            vault,
        ),
        watchers::node(
            "viewer@survivor",
            &survivors[1].base,
            &team.viewer.token,
            vault,
        ),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    // Writers on the victim and on a survivor, concurrently with the kill.
    let victim_writer = {
        let (api, owner, vault) = (victim_api.clone(), team.owner.clone(), vault.clone());
        tokio::spawn(async move {
            for n in 0..200 {
                let body =
                    json!({"title": format!("victim {n}"), "fileUrl": "https://example.org/p.pdf"});
                let sent = api
                    .request(
                        Method::POST,
                        &format!("/api/vaults/{vault}/sources"),
                        Some(&owner),
                    )
                    .json(&body)
                    .send()
                    .await;
                if sent.is_err() {
                    return n;
                }
            }
            200
        })
    };
    create_sources(&survivors[0], &team, 5, "survivor").await;
    cluster.nodes[victim].kill().await;
    let sent_to_victim = victim_writer.await.expect("victim writer");
    assert!(sent_to_victim < 200, "the victim died mid-stream");
    create_sources(&survivors[1], &team, 5, "after the kill").await;

    let all = seqs(head(&survivors[0], &team).await);
    until_all_applied(&watchers, &all).await;
    let moved = watchers[0].view();
    assert!(
        moved.disconnects > 0,
        "the balanced watcher lost its node: {moved:?}"
    );
    stop_all(watchers).await;
}

/// A node that dies between its commit and its publish: the event is in
/// the log but no watcher was sent it, and no later event comes to reveal
/// the gap. The nodes' sweep announces the head (`vault:head`) and every
/// watcher, over both clients, catches up without any further mutation.
#[tokio::test]
async fn an_event_committed_but_never_published_reaches_every_watcher() {
    let cluster = cluster(3).await;
    let apis: Vec<Api> = cluster.nodes.iter().map(|n| n.api.clone()).collect();
    let team = apis[0].team().await;
    let vault = &team.vault.id;
    let watchers = vec![
        watchers::rust("viewer@1", &apis[0].base, &team.viewer.token, vault),
        watchers::node("viewer@2", &apis[1].base, &team.viewer.token, vault),
        watchers::rust("owner@3", &apis[2].base, &team.owner.token, vault),
    ];
    create_sources(&apis[0], &team, 2, "published").await;
    let published = seqs(head(&apis[0], &team).await);
    until_all_applied(&watchers, &published).await;
    // What a node's commit leaves when the node dies before publishing: the
    // vault's seq bumped and the event logged, in one transaction.
    let pool = database(&cluster).await;
    let (name, payload, actor): (String, String, String) = sqlx::query_as(
        "SELECT name, payload, actor_id FROM vault_events WHERE vault_id = $1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(vault)
    .fetch_one(&pool)
    .await
    .expect("last event");
    let seq = *published.last().expect("events") + 1;
    let mut payload: Value = serde_json::from_str(&payload).expect("payload");
    payload["seq"] = json!(seq);
    payload["source"]["title"] = json!("never published");
    let mut tx = pool.begin().await.expect("tx");
    sqlx::query("UPDATE vaults SET event_seq = $1 WHERE id = $2")
        .bind(seq)
        .bind(vault)
        .execute(&mut *tx)
        .await
        .expect("seq");
    sqlx::query(
        "INSERT INTO vault_events (vault_id, seq, name, payload, actor_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(vault)
    .bind(seq)
    .bind(&name)
    .bind(payload.to_string())
    .bind(&actor)
    .bind(payload["timestamp"].as_str().expect("timestamp"))
    .execute(&mut *tx)
    .await
    .expect("event");
    tx.commit().await.expect("commit");
    pool.close().await;

    let all = seqs(seq);
    until_all_applied(&watchers, &all).await;
    stop_all(watchers).await;
}

/// One client connected through nginx receives the events made on each
/// node, over both clients, and over HTTP long-polling upgraded to a
/// WebSocket (as a browser connects).
#[tokio::test]
async fn a_client_through_nginx_receives_events_made_on_each_node() {
    let mut cluster = cluster(3).await;
    let balancer = cluster.with_nginx().await;
    let apis: Vec<Api> = cluster.nodes.iter().map(|n| n.api.clone()).collect();
    let team = balancer.team().await;
    let vault = &team.vault.id;
    let watchers = vec![
        watchers::rust("viewer@lb", &balancer.base, &team.viewer.token, vault),
        watchers::node("viewer@lb", &balancer.base, &team.viewer.token, vault),
        watchers::node_polling("owner@lb", &balancer.base, &team.owner.token, vault),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }
    for api in &apis {
        create_sources(api, &team, 1, "node").await;
    }
    let all = seqs(head(&balancer, &team).await);
    until_all_applied(&watchers, &all).await;
    stop_all(watchers).await;
}

/// Polls `/readyz` until it answers `status`; its body.
async fn until_ready_is(api: &Api, status: StatusCode) -> Value {
    let what = format!("{} answers {status}", api.base);
    eventually(&what, watchers::PATIENCE, async || {
        match api.anonymous().readyz().await {
            (got, body) if got == status => Ok(body),
            (got, body) => Err(format!("{got} {body}")),
        }
    })
    .await
}

/// The vault's logged seqs, from the database.
async fn sqlx_seqs(cluster: &Cluster, vault_id: &str) -> Vec<i64> {
    let pool = database(cluster).await;
    let rows: Vec<(i64,)> =
        sqlx::query_as("SELECT seq FROM vault_events WHERE vault_id = $1 ORDER BY seq")
            .bind(vault_id)
            .fetch_all(&pool)
            .await
            .expect("seqs");
    pool.close().await;
    rows.into_iter().map(|(seq,)| seq).collect()
}
