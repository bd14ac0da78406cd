//! PostgreSQL stopped under a running server (`pg_ctl stop -m immediate`
//! on a PostgreSQL of the test's own), then started again: while it is
//! down, REST reads and writes and logins answer `503 UNAVAILABLE` with
//! `Retry-After: 1`, socket commands ack `UNAVAILABLE`, `/readyz` answers
//! 503 and `/healthz` 200, and the process neither dies nor panics; once
//! PostgreSQL is back the same server serves again without a restart, and
//! nothing was committed or broadcast for the refused mutations.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use syncscript_testkit::{PASSWORD, eventually};

use crate::commander::Commander;
use crate::postgres::PrivatePostgres;
use crate::probe::{self, Findings};
use crate::server::Server;
use crate::watcher::Watcher;
use crate::{PATIENCE, assert_contiguous, assert_watchers_got_exactly, require_root, stop_all};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_unavailable_then_recovers_without_a_restart() {
    require_root("PostgreSQL of its own, run as the postgres user through runuser");
    let mut postgres = PrivatePostgres::start().await;
    let mut server = Server::start(&postgres.url()).await;
    let api = server.api.clone();
    let team = api.team().await;
    let vault = team.vault.id.clone();
    api.create_source(&team.owner, &vault, "before").await;
    let watcher = Watcher::start("viewer", &api.base, &team.viewer.token, &vault);
    let commander = Commander::connect(&api.base, &team.owner.token).await;
    let mut before = Findings::default();
    before.acked(&create_by_socket(&commander, &vault, "by socket, before").await);
    before.assert_none("before the outage");
    let head = api.event_log(&team.owner.token, &vault).await.len() as i64;
    watcher
        .until("applied everything so far", |v| {
            v.applied.len() as i64 >= head
        })
        .await;

    postgres.stop_immediately().await;
    let mut down = Findings::default();
    // Twice: the first requests find the pool's connections broken, the
    // next ones find none to open.
    let sources = format!("/api/vaults/{vault}/sources");
    let events = format!("/api/vaults/{vault}/events");
    for round in 1..=2 {
        let refused =
            json!({"title": format!("refused {round}"), "fileUrl": "https://example.org/p.pdf"});
        let login = json!({"email": team.viewer.email, "password": PASSWORD});
        let by_socket = format!("refused by socket {round}");
        let join = json!({"vaultId": vault, "since": 0});
        let (write, read, log, login, ready, command, join) = tokio::join!(
            probe::rest(
                &api,
                Method::POST,
                &sources,
                Some(&team.owner),
                Some(refused)
            ),
            probe::rest(&api, Method::GET, &sources, Some(&team.viewer), None),
            probe::rest(&api, Method::GET, &events, Some(&team.viewer), None),
            probe::rest(&api, Method::POST, "/api/auth/login", None, Some(login)),
            probe::rest(&api, Method::GET, "/readyz", None, None),
            create_by_socket(&commander, &vault, &by_socket),
            probe::socket(&commander, "vault:join", join),
        );
        for probe in [&write, &read, &log, &login, &command, &join] {
            down.unavailable(probe);
        }
        down.report(&ready);
        if ready.status != Some(StatusCode::SERVICE_UNAVAILABLE) {
            down.problems.push(format!("/readyz: {}", ready.line()));
        }
    }
    let alive = probe::rest(&api, Method::GET, "/healthz", None, None).await;
    down.succeeds(&alive, StatusCode::OK);
    down.print("PostgreSQL stopped");
    server.assert_alive_without_panic();

    postgres.start_again().await;
    let recovery = until_ready(&api).await;
    eprintln!(
        "/readyz answered 200 {:.2} s after PostgreSQL was back",
        recovery.as_secs_f64()
    );
    let mut after = Findings::default();
    after.succeeds(
        &probe::rest(
            &api,
            Method::POST,
            &format!("/api/vaults/{vault}/sources"),
            Some(&team.owner),
            Some(json!({"title": "after", "fileUrl": "https://example.org/p.pdf"})),
        )
        .await,
        StatusCode::CREATED,
    );
    after.acked(&create_by_socket(&commander, &vault, "by socket, after").await);
    after.succeeds(
        &probe::rest(
            &api,
            Method::GET,
            &format!("/api/vaults/{vault}/sources"),
            Some(&team.viewer),
            None,
        )
        .await,
        StatusCode::OK,
    );
    after.print("PostgreSQL started again");
    after.assert_none("after PostgreSQL was started again, same server process");

    let log = api.event_log(&team.owner.token, &vault).await;
    assert_contiguous(&log);
    assert_eq!(
        log.len() as i64,
        head + 2,
        "the refused mutations committed nothing"
    );
    assert_watchers_got_exactly(std::slice::from_ref(&watcher), &log).await;
    stop_all(vec![watcher]).await;
    commander.close().await;
    server.assert_alive_without_panic();
    down.assert_none("while PostgreSQL was stopped");
}

/// `source:create` over the socket, with an ack.
pub async fn create_by_socket(commander: &Commander, vault: &str, title: &str) -> probe::Probe {
    probe::socket(
        commander,
        "source:create",
        json!({"vaultId": vault, "title": title, "fileUrl": "https://example.org/p.pdf"}),
    )
    .await
}

/// Polls `/readyz` until it answers 200; how long that took.
pub async fn until_ready(api: &syncscript_testkit::Api) -> Duration {
    let started = Instant::now();
    eventually("/readyz answers 200 again", PATIENCE, async || {
        let ready = probe::rest(api, Method::GET, "/readyz", None, None).await;
        if ready.status == Some(StatusCode::OK) {
            Ok(())
        } else {
            Err(ready.line())
        }
    })
    .await;
    started.elapsed()
}
