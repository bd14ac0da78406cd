//! Watchers whose TCP connections are cut at seeded-random intervals of
//! 1-4 s (a reset or a close, picked at random) by a proxy between them and
//! the server, while a writer commits about 10 events a second: after the
//! last cut each has applied 100% of the committed log, once each and in
//! seq order, and was never sent anything that is not in it. A third
//! watcher, connected directly, is the control. 10 s in CI, 60 s in the
//! long version.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use syncscript_testkit::{Backend, TestDatabase};

use crate::proxy::{Cut, Proxy};
use crate::server::Server;
use crate::watcher::Watcher;
use crate::{
    assert_acknowledged_are_logged, assert_contiguous, assert_watchers_got_exactly, long_tests,
    seed, stop_all, try_create_source,
};

/// The writer's pace: about 10 events a second.
const WRITE_EVERY: Duration = Duration::from_millis(100);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_cut_at_random_get_every_event_once_in_order() {
    cut_at_random("cuts (10 s)", Duration::from_secs(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_cut_at_random_for_a_minute_get_every_event_once_in_order() {
    if !long_tests() {
        eprintln!("long version: set SYNCSCRIPT_LONG_TESTS=1 to run it");
        return;
    }
    cut_at_random("cuts (60 s)", Duration::from_secs(60)).await;
}

async fn cut_at_random(test: &str, duration: Duration) {
    let mut rng = StdRng::seed_from_u64(seed(test));
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut server = Server::start(&database.url).await;
    let api = server.api.clone();
    let team = api.team().await;
    let vault = team.vault.id.clone();
    let proxy = Proxy::start(server.port).await;
    let watchers = vec![
        Watcher::start("viewer (cut)", &proxy.url(), &team.viewer.token, &vault),
        Watcher::start(
            "contributor (cut)",
            &proxy.url(),
            &team.contributor.token,
            &vault,
        ),
        Watcher::start("owner (direct)", &api.base, &team.owner.token, &vault),
    ];
    for watcher in &watchers {
        watcher.until("joined", |v| v.joins > 0).await;
    }

    let writer = {
        let (api, owner, vault) = (api.clone(), team.owner.clone(), vault.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(WRITE_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let end = Instant::now() + duration;
            let (mut acknowledged, mut unexpected) = (Vec::new(), Vec::new());
            let mut n = 0;
            while Instant::now() < end {
                ticks.tick().await;
                n += 1;
                match try_create_source(&api, &owner, &vault, &format!("paper {n}")).await {
                    Ok((StatusCode::CREATED, body)) => {
                        acknowledged.push(body["source"]["id"].as_str().unwrap_or("").to_owned());
                    }
                    other => unexpected.push(format!("{other:?}")),
                }
            }
            (acknowledged, unexpected)
        })
    };

    let started = Instant::now();
    let mut cuts = Vec::new();
    loop {
        let wait = Duration::from_millis(rng.random_range(1000..=4000));
        if started.elapsed() + wait >= duration {
            break;
        }
        tokio::time::sleep(wait).await;
        let how = if rng.random_bool(0.5) {
            Cut::Reset
        } else {
            Cut::Close
        };
        let connections = proxy.cut(how);
        eprintln!(
            "{test}: at {:.1} s, {how:?} of {connections} connections",
            started.elapsed().as_secs_f64()
        );
        cuts.push(connections);
    }
    let (acknowledged, unexpected) = writer.await.expect("writer");
    assert!(
        unexpected.is_empty(),
        "the writer (direct) always succeeds: {unexpected:?}"
    );
    eprintln!(
        "{test}: {} events written, {} cuts",
        acknowledged.len(),
        cuts.len()
    );
    assert!(
        cuts.iter().any(|&n| n > 0),
        "connections were actually cut: {cuts:?}"
    );

    let log = api.event_log(&team.owner.token, &vault).await;
    assert_contiguous(&log);
    assert_acknowledged_are_logged(&acknowledged, &log);
    assert_watchers_got_exactly(&watchers, &log).await;
    for watcher in &watchers[..2] {
        assert!(
            watcher.view().disconnects > 0,
            "{}: its connection was cut",
            watcher.name
        );
    }
    stop_all(watchers).await;
    drop(proxy);
    server.assert_alive_without_panic();
}
