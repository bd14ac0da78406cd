//! Isolation under a random workload, property style, on both backends.
//!
//! Several users with random roles in several vaults run a seeded random
//! sequence of operations, a few at a time and concurrently: source
//! mutations over REST and over socket commands, vault joins and leaves,
//! members added, re-roled and removed, vault renames, logouts and
//! reconnects. Every client is a real socket that records everything it
//! receives, in order, and keeps a view of each vault built only from what
//! it received (the catch-up rules of docs/protocol.md). Afterwards:
//!
//! 1. every client's view, after a final `vault:join` with `since`, equals
//!    the server's state (sources, name, members, head) of each vault its
//!    user is a member of;
//! 2. no socket received an event of a vault its user was not a member of
//!    at that event's seq (membership is read by seq from the vault's log;
//!    a join's replay counts at the head it was read at), nor anything of a
//!    vault (event, `presence`, `vault:head`) while not in its room or after
//!    its `vault:removed` for it (the rest of a join's replay included), nor
//!    a `vault:joined` at a head where its user was not a member; a socket
//!    in the room sees its own `member:removed` before its `vault:removed`;
//!    no socket was cut but by its own session's logout;
//! 3. every operation got the contract's answer, refusals included
//!    (`FORBIDDEN`, `NOT_FOUND`, `CONFLICT`, `UNAUTHORIZED` after a logout,
//!    with their messages);
//!
//! and each vault's log holds exactly one event per successful operation,
//! in the order of the rounds, with the actor's role at that seq.
//!
//! The seed is printed at the start and in every failure message:
//! `SYNCSCRIPT_SEED=<seed>` replays the same plan. With concurrent
//! operations the outcome of a race (a role change against that member's
//! command) can steer later choices; `SYNCSCRIPT_ISOLATION_CONCURRENCY=1`
//! runs one operation at a time, which replays exactly.
//! `SYNCSCRIPT_LONG_TESTS=1` runs many more operations, and
//! `SYNCSCRIPT_ISOLATION_DUMP=<dir>` writes every client's record and every
//! vault's log there when the test fails.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_protocol::{Role, Vault, names, signals};
use tokio::task::JoinSet;

mod answers;
mod checker;
mod clients;
mod model;
mod ops;
mod plan;

use answers::*;
use clients::*;
use model::*;
use ops::*;

use crate::socket::{CLOSE, ERROR, SocketBuilder, TestSocket, WAIT};
use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, PASSWORD, TestApp, TestUser};

on_both_backends!(random_workload_keeps_every_vault_to_its_members);

/// Users, and vaults they are spread over.
const USERS: usize = 7;
const VAULTS: usize = 4;
/// Chance that a user has a second client (its own session and socket).
const SECOND_CLIENT: f64 = 0.4;
/// Chance that a user starts as a member of a vault it did not create.
const INITIAL_MEMBERSHIP: f64 = 0.6;
/// Rounds of operations; each round runs 1..=concurrency operations at once.
const ROUNDS: usize = 250;
const LONG_ROUNDS: usize = 2000;
const CONCURRENCY: usize = 4;

/// Markers the test writes into a client's record, where it did something
/// that explains what follows (the server never sends these names).
const JOIN_SENT: &str = "test:join-sent";
const LEAVE_SENT: &str = "test:leave-sent";
const LOGOUT_SENT: &str = "test:logout-sent";
const NEW_SOCKET: &str = "test:new-socket";

/// One received event (or marker) and its data.
type Entry = (String, Value);

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|raw| {
        raw.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {raw:?}"))
    })
}

async fn random_workload_keeps_every_vault_to_its_members(backend: Backend) {
    let seed = env_number("SYNCSCRIPT_SEED").unwrap_or_else(|| rand::rng().random());
    let long = std::env::var("SYNCSCRIPT_LONG_TESTS").is_ok_and(|v| v == "1");
    let rounds = if long { LONG_ROUNDS } else { ROUNDS };
    let concurrency =
        env_number("SYNCSCRIPT_ISOLATION_CONCURRENCY").map_or(CONCURRENCY, |n| (n as usize).max(1));
    eprintln!(
        "isolation on {backend:?}: seed {seed} (replay with SYNCSCRIPT_SEED={seed}), \
         {rounds} rounds of up to {concurrency} operations"
    );
    let started = Instant::now();
    let mut world = World::set_up(backend, seed, concurrency).await;
    for round in 0..rounds {
        world.round = round;
        world.run_round().await;
    }
    let ops = world.ops_run;
    world.finish().await;
    eprintln!(
        "isolation on {backend:?}: seed {seed}: {ops} operations checked in {:.1?}",
        started.elapsed()
    );
}

struct World {
    seed: u64,
    concurrency: usize,
    rng: StdRng,
    app: Arc<TestApp>,
    users: Vec<TestUser>,
    vaults: Vec<Vault>,
    vault_ix: HashMap<String, usize>,
    clients: Vec<Client>,
    model: Model,
    round: usize,
    ops_run: usize,
    next_title: usize,
    /// Answers per kind of operation, reported at the end.
    tally: BTreeMap<(&'static str, String), usize>,
}

impl World {
    async fn set_up(backend: Backend, seed: u64, concurrency: usize) -> World {
        let mut rng = StdRng::seed_from_u64(seed);
        let app = Arc::new(TestApp::spawn(backend).await);
        let mut users = Vec::new();
        for n in 0..USERS {
            users.push(app.register(&format!("user{n}")).await);
        }
        let mut vaults = Vec::new();
        let mut roles = Vec::new();
        for v in 0..VAULTS {
            let creator = rng.random_range(0..USERS);
            let vault = app
                .create_vault(&users[creator], &format!("vault {v}"))
                .await;
            let mut members = BTreeMap::from([(creator, Role::Owner)]);
            for (u, user) in users.iter().enumerate() {
                if u != creator && rng.random_bool(INITIAL_MEMBERSHIP) {
                    let role = *Role::ALL.choose(&mut rng).expect("roles");
                    app.add_member(&users[creator], &vault.id, user, role).await;
                    members.insert(u, role);
                }
            }
            vaults.push(vault);
            roles.push(members);
        }
        let mut clients = Vec::new();
        for (u, user) in users.iter().enumerate() {
            let sessions = if rng.random_bool(SECOND_CLIENT) { 2 } else { 1 };
            for session in 0..sessions {
                let token = if session == 0 {
                    user.token.clone()
                } else {
                    app.login(&user.email, PASSWORD).await.token
                };
                let socket = SocketBuilder::new(&app).token(&token).connect().await;
                clients.push(Client {
                    user: u,
                    token,
                    revoked: false,
                    socket: Some(socket),
                    log: vec![(NEW_SOCKET.into(), json!({}))],
                    views: vaults.iter().map(View::new).collect(),
                    watching: BTreeSet::new(),
                    resync: BTreeSet::new(),
                });
            }
        }
        let model = Model {
            names: vaults.iter().map(|v| v.name.clone()).collect(),
            roles,
            sources: BTreeMap::new(),
            created: Vec::new(),
            // The set-up's member:added events are in the log before round 0.
            expected: vec![Vec::new(); VAULTS],
        };
        let vault_ix = vaults
            .iter()
            .enumerate()
            .map(|(v, vault)| (vault.id.clone(), v))
            .collect();
        let mut world = World {
            seed,
            concurrency,
            rng,
            app,
            users,
            vaults,
            vault_ix,
            clients,
            model,
            round: 0,
            ops_run: 0,
            next_title: 0,
            tally: BTreeMap::new(),
        };
        world.expect_set_up_events();
        world
    }

    /// The set-up added members with the creator's token: those events
    /// open each vault's log (as "round 0" events before every round).
    fn expect_set_up_events(&mut self) {
        for v in 0..VAULTS {
            let creator = self.vaults[v].created_by.clone();
            let added: Vec<(usize, Role)> = self.model.roles[v]
                .iter()
                .filter(|(u, _)| self.users[**u].id != creator)
                .map(|(u, r)| (*u, *r))
                .collect();
            // Added in user order, one after the other.
            for (u, role) in added {
                let key = event_key(
                    names::MEMBER_ADDED,
                    &creator,
                    &format!("{} as {role}", self.users[u].id),
                );
                self.model.expected[v].push((usize::MAX, key));
            }
        }
    }

    fn context(&self) -> String {
        format!(
            "[seed {} — replay with SYNCSCRIPT_SEED={}, round {}]",
            self.seed, self.seed, self.round
        )
    }

    fn describe(&self, op: &Op) -> String {
        let client = &self.clients[op.client];
        let user = &self.users[client.user].name;
        let vault = |v: &usize| format!("vault {v}");
        let who = |u: &usize| self.users[*u].name.clone();
        let detail = match &op.action {
            Action::CreateSource {
                vault: v, title, ..
            } => format!("{} {title:?}", vault(v)),
            Action::UpdateSource { source, title, .. } => format!("{source} → {title:?}"),
            Action::DeleteSource { source, .. } => source.clone(),
            Action::Join { vault: v } | Action::Leave { vault: v } => vault(v),
            Action::AddMember {
                vault: v,
                user: u,
                role,
            }
            | Action::ChangeRole {
                vault: v,
                user: u,
                role,
            } => {
                format!("{} {} as {role}", vault(v), who(u))
            }
            Action::RemoveMember { vault: v, user: u } => format!("{} {}", vault(v), who(u)),
            Action::Rename { vault: v, name } => format!("{} → {name:?}", vault(v)),
            Action::Logout | Action::Reconnect => String::new(),
        };
        format!(
            "{} by {user} (client {}{}) {detail}",
            op.action.kind(),
            op.client,
            if client.revoked { ", logged out" } else { "" }
        )
    }
}
