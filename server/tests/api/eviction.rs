//! A removed member's sockets receive nothing of the vault after
//! `vault:removed`, and receive their own `member:removed` first: the
//! eviction runs in the vault's publishing line, and stops a join's
//! catch-up in progress (regressions found by the randomised isolation
//! test).

use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use syncscript_protocol::{Role, names};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, TestApp, TestUser};

use crate::socket::{SocketBuilder, WAIT};

on_both_backends!(
    a_removal_during_a_catch_up_stops_it,
    nothing_of_the_vault_follows_a_removal_while_others_write,
);

fn sequenced(name: &str) -> bool {
    names::ALL.contains(&name)
}

async fn a_removal_during_a_catch_up_stops_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let member = app.register("member").await;
    let v = app.create_vault(&owner, "Long history").await.id;
    for n in 0..1500 {
        app.create_source(&owner, &v, &format!("s{n}")).await;
    }
    app.add_member(&owner, &v, &member, Role::Viewer).await;
    let mut socket = SocketBuilder::new(&app)
        .token(&member.token)
        .connect()
        .await;
    socket
        .emit("vault:join", json!({"vaultId": v, "since": 0}))
        .await;
    socket.next_event("source:created", WAIT).await;
    app.remove_member(&owner, &v, &member).await;
    socket.events_until("vault:removed", WAIT).await;
    socket.sync().await;
    let after: Vec<(String, Value)> = socket.take_matching(sequenced);
    assert!(
        after.is_empty(),
        "{} events of the vault after vault:removed (seqs {:?}..{:?})",
        after.len(),
        after.first().map(|event| event.1["seq"].clone()),
        after.last().map(|event| event.1["seq"].clone()),
    );
}

async fn nothing_of_the_vault_follows_a_removal_while_others_write(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.register("owner").await;
    let member = app.register("member").await;
    let v = app.create_vault(&owner, "Busy").await.id;
    let mut writers = Vec::new();
    for n in 0..3 {
        let writer = app.register(&format!("writer{n}")).await;
        app.add_member(&owner, &v, &writer, Role::Contributor).await;
        writers.push(writer);
    }
    let mut socket = SocketBuilder::new(&app)
        .token(&member.token)
        .connect()
        .await;
    let done = AtomicBool::new(false);
    let write = |writer: &TestUser| {
        let (app, v, done, writer) = (&app, &v, &done, writer.clone());
        async move {
            let mut n = 0;
            while !done.load(Ordering::SeqCst) {
                n += 1;
                app.create_source(&writer, v, &format!("w{n}")).await;
            }
        }
    };
    let removals = async {
        let mut leaks = Vec::new();
        for _ in 0..40 {
            app.add_member(&owner, &v, &member, Role::Viewer).await;
            socket.join_ok(&v).await;
            socket.next_event("source:created", WAIT).await;
            app.remove_member(&owner, &v, &member).await;
            let mut got = socket.events_until("vault:removed", WAIT).await;
            socket.sync().await;
            got.extend(socket.take_matching(|_| true));
            let removal = got
                .iter()
                .find(|(name, data)| {
                    name == "member:removed" && data["member"]["userId"] == member.id
                })
                .and_then(|(_, data)| data["seq"].as_i64());
            let Some(removal) = removal else {
                leaks.push("its own member:removed never arrived".to_owned());
                continue;
            };
            let removed_at = got.iter().position(|(name, _)| name == "vault:removed");
            let late: Vec<String> = got
                .iter()
                .enumerate()
                .filter(|(index, (name, data))| {
                    (sequenced(name) && data["seq"].as_i64() > Some(removal))
                        || (name == "presence" && removed_at.is_some_and(|at| *index > at))
                })
                .map(|(_, (name, data))| format!("{name} {}", data["seq"]))
                .collect();
            if !late.is_empty() {
                leaks.push(format!("removed at seq {removal}, then {late:?}"));
            }
        }
        done.store(true, Ordering::SeqCst);
        leaks
    };
    let (leaks, (), (), ()) = tokio::join!(
        removals,
        write(&writers[0]),
        write(&writers[1]),
        write(&writers[2])
    );
    assert!(
        leaks.is_empty(),
        "{} of 40 removals leaked: {leaks:?}",
        leaks.len()
    );
}
