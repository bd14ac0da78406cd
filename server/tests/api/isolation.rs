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

// ---------------------------------------------------------------------------
// Answers

/// What an operation was answered: `OK`, or the error's code and message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Answer {
    code: String,
    message: String,
}

impl Answer {
    fn ok() -> Answer {
        Answer {
            code: "OK".into(),
            message: String::new(),
        }
    }

    fn refused(code: &str, message: &str) -> Answer {
        Answer {
            code: code.into(),
            message: message.into(),
        }
    }

    fn is_ok(&self) -> bool {
        self.code == "OK"
    }

    /// A socket command's ack.
    fn of_ack(ack: &Value) -> Answer {
        if ack["ok"] == true {
            Answer::ok()
        } else {
            Answer::refused(
                ack["error"]["code"].as_str().unwrap_or("<no code>"),
                ack["error"]["message"].as_str().unwrap_or("<no message>"),
            )
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_ok() {
            f.write_str("OK")
        } else {
            write!(f, "{} {:?}", self.code, self.message)
        }
    }
}

const NOT_A_MEMBER_VAULT: (&str, &str) = ("NOT_FOUND", "Vault not found");
const NOT_A_MEMBER_SOURCE: (&str, &str) = ("NOT_FOUND", "Source not found");
const NO_SUCH_MEMBER: (&str, &str) = ("NOT_FOUND", "Member not found");
const NO_RIGHT: (&str, &str) = ("FORBIDDEN", "Insufficient permissions");
const JOIN_REFUSED: (&str, &str) = ("FORBIDDEN", "Access denied to vault");
const LAST_OWNER: (&str, &str) = ("CONFLICT", "A vault must keep at least one owner");
const ALREADY_MEMBER: (&str, &str) = ("CONFLICT", "This user is already a member of the vault");
const REVOKED: (&str, &str) = ("UNAUTHORIZED", "Invalid or expired session");

fn refusal((code, message): (&str, &str)) -> Answer {
    Answer::refused(code, message)
}

/// The HTTP status the contract gives an error code.
fn status_of(code: &str) -> StatusCode {
    match code {
        "BAD_REQUEST" => StatusCode::BAD_REQUEST,
        "UNAUTHORIZED" => StatusCode::UNAUTHORIZED,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "CONFLICT" => StatusCode::CONFLICT,
        "VALIDATION" => StatusCode::UNPROCESSABLE_ENTITY,
        "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
        "UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A REST call with a bearer token; the answer (an error whose HTTP status
/// is not its code's shows both, so it matches no expectation) and the body.
async fn rest(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (Answer, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let text = response.text().await.expect("body read");
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let answer = if status.is_success() {
        Answer::ok()
    } else {
        let code = body["error"]["code"].as_str().unwrap_or("<no code>");
        let message = body["error"]["message"].as_str().unwrap_or("<no message>");
        if status_of(code) == status {
            Answer::refused(code, message)
        } else {
            Answer::refused(&format!("{code} (HTTP {status})"), message)
        }
    };
    (answer, body)
}

// ---------------------------------------------------------------------------
// Operations

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Rest,
    Socket,
}

#[derive(Debug, Clone)]
enum Action {
    CreateSource {
        vault: usize,
        title: String,
        via: Via,
    },
    UpdateSource {
        source: String,
        title: String,
        via: Via,
    },
    DeleteSource {
        source: String,
        via: Via,
    },
    Join {
        vault: usize,
    },
    Leave {
        vault: usize,
    },
    AddMember {
        vault: usize,
        user: usize,
        role: Role,
    },
    ChangeRole {
        vault: usize,
        user: usize,
        role: Role,
    },
    RemoveMember {
        vault: usize,
        user: usize,
    },
    Rename {
        vault: usize,
        name: String,
    },
    Logout,
    Reconnect,
}

impl Action {
    fn kind(&self) -> &'static str {
        match self {
            Action::CreateSource { via: Via::Rest, .. } => "create source (REST)",
            Action::CreateSource { .. } => "create source (socket)",
            Action::UpdateSource { via: Via::Rest, .. } => "update source (REST)",
            Action::UpdateSource { .. } => "update source (socket)",
            Action::DeleteSource { via: Via::Rest, .. } => "delete source (REST)",
            Action::DeleteSource { .. } => "delete source (socket)",
            Action::Join { .. } => "join",
            Action::Leave { .. } => "leave",
            Action::AddMember { .. } => "add member",
            Action::ChangeRole { .. } => "change role",
            Action::RemoveMember { .. } => "remove member",
            Action::Rename { .. } => "rename vault",
            Action::Logout => "logout",
            Action::Reconnect => "reconnect",
        }
    }
}

#[derive(Debug, Clone)]
struct Op {
    client: usize,
    action: Action,
}

/// What a task does with one client's session and socket (owned, so that
/// the operations of a round run concurrently).
struct Exec {
    app: Arc<TestApp>,
    token: String,
    email: String,
    socket: Option<TestSocket>,
    step: Step,
}

enum Step {
    Rest {
        method: Method,
        path: String,
        body: Option<Value>,
    },
    Command {
        event: &'static str,
        payload: Value,
    },
    Join {
        vault_id: String,
        since: i64,
    },
    Leave {
        vault_id: String,
    },
    Logout,
    Reconnect {
        login: bool,
        rejoin: Vec<(String, i64)>,
    },
}

/// What came back from an [`Exec`].
struct Done {
    socket: Option<TestSocket>,
    token: String,
    /// What the socket received during the step, with the step's markers.
    entries: Vec<Entry>,
    answer: Answer,
    body: Value,
    /// A reconnect's joins, by vault id.
    rejoined: Vec<(String, Answer)>,
    /// After a logout: the old session on REST and on a new handshake.
    after_logout: Vec<(&'static str, Answer)>,
}

fn drain(socket: &mut Option<TestSocket>, entries: &mut Vec<Entry>) {
    if let Some(socket) = socket {
        entries.extend(socket.take_matching(|_| true));
    }
}

/// `vault:join {vaultId, since}` recorded with its marker, up to its
/// `vault:joined` (or `error`).
async fn join_recorded(
    socket: &mut TestSocket,
    vault_id: &str,
    since: i64,
    entries: &mut Vec<Entry>,
) -> Answer {
    entries.extend(socket.take_matching(|_| true));
    let payload = json!({"vaultId": vault_id, "since": since});
    entries.push((JOIN_SENT.into(), payload.clone()));
    let answer = Answer::of_ack(&socket.join(payload).await);
    let marker = if answer.is_ok() {
        signals::VAULT_JOINED
    } else {
        ERROR
    };
    entries.extend(socket.events_until(marker, WAIT).await);
    answer
}

async fn execute(exec: Exec) -> Done {
    let Exec {
        app,
        mut token,
        email,
        mut socket,
        step,
    } = exec;
    let mut entries = Vec::new();
    let mut body = Value::Null;
    let mut rejoined = Vec::new();
    let mut after_logout = Vec::new();
    let answer = match step {
        Step::Rest {
            method,
            path,
            body: request,
        } => {
            let (answer, answered) = rest(&app, &token, method, &path, request).await;
            body = answered;
            answer
        }
        Step::Command { event, payload } => {
            let ack = socket
                .as_ref()
                .expect("a socket command needs a socket")
                .emit_with_ack(event, payload)
                .await;
            let answer = Answer::of_ack(&ack);
            body = ack;
            answer
        }
        Step::Join { vault_id, since } => {
            let socket = socket.as_mut().expect("a join needs a socket");
            join_recorded(socket, &vault_id, since, &mut entries).await
        }
        Step::Leave { vault_id } => {
            let socket = socket.as_mut().expect("a leave needs a socket");
            entries.extend(socket.take_matching(|_| true));
            entries.push((LEAVE_SENT.into(), json!({ "vaultId": vault_id })));
            let answer =
                Answer::of_ack(&socket.emit_with_ack("vault:leave", json!(vault_id)).await);
            if answer.is_ok() {
                entries.extend(socket.events_until(signals::VAULT_LEFT, WAIT).await);
            }
            answer
        }
        Step::Logout => {
            drain(&mut socket, &mut entries);
            entries.push((LOGOUT_SENT.into(), json!({})));
            let (answer, _) = rest(&app, &token, Method::POST, "/api/auth/logout", None).await;
            if answer.is_ok() {
                // The session's socket is cut by the server.
                if let Some(mut cut) = socket.take() {
                    entries.extend(cut.events_until(CLOSE, WAIT).await);
                }
                let (me, _) = rest(&app, &token, Method::GET, "/api/me", None).await;
                after_logout.push(("GET /api/me with the old token", me));
                let handshake = match SocketBuilder::new(&app).token(&token).try_connect().await {
                    Ok(_) => Answer::ok(),
                    Err(reason) => {
                        Answer::refused(reason["message"].as_str().unwrap_or("<no message>"), "")
                    }
                };
                after_logout.push(("a handshake with the old token", handshake));
            }
            answer
        }
        Step::Reconnect { login, rejoin } => {
            if let Some(mut old) = socket.take() {
                entries.extend(old.take_matching(|_| true));
                old.disconnect().await;
            }
            if login {
                token = app.login(&email, PASSWORD).await.token;
            }
            let mut fresh = SocketBuilder::new(&app).token(&token).connect().await;
            entries.push((NEW_SOCKET.into(), json!({})));
            for (vault_id, since) in rejoin {
                let answer = join_recorded(&mut fresh, &vault_id, since, &mut entries).await;
                rejoined.push((vault_id, answer));
            }
            socket = Some(fresh);
            Answer::ok()
        }
    };
    drain(&mut socket, &mut entries);
    Done {
        socket,
        token,
        entries,
        answer,
        body,
        rejoined,
        after_logout,
    }
}

// ---------------------------------------------------------------------------
// Clients and their views

/// What a client knows of one vault, built from what its sockets received.
#[derive(Debug, Clone, Default)]
struct View {
    last: i64,
    name: String,
    sources: BTreeMap<String, Value>,
    /// User id → role.
    members: BTreeMap<String, String>,
    /// Events received ahead of a gap, by seq.
    buffer: BTreeMap<i64, Entry>,
}

impl View {
    fn new(vault: &Vault) -> View {
        View {
            name: vault.name.clone(),
            members: BTreeMap::from([(vault.created_by.clone(), "owner".into())]),
            ..View::default()
        }
    }

    /// Rule 2 of the catch-up: in seq order, exactly once.
    fn offer(&mut self, name: &str, payload: &Value) {
        let Some(seq) = payload["seq"].as_i64() else {
            return;
        };
        if seq <= self.last {
            return;
        }
        self.buffer.insert(seq, (name.to_owned(), payload.clone()));
        while let Some((name, payload)) = self.buffer.remove(&(self.last + 1)) {
            self.apply(&name, &payload);
            self.last += 1;
        }
    }

    fn apply(&mut self, name: &str, payload: &Value) {
        let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
        match name {
            names::SOURCE_CREATED | names::SOURCE_UPDATED => {
                let source = &payload["source"];
                self.sources.insert(text(&source["id"]), source.clone());
            }
            names::SOURCE_DELETED => {
                self.sources.remove(&text(&payload["sourceId"]));
            }
            names::MEMBER_ADDED | names::MEMBER_UPDATED => {
                let member = &payload["member"];
                self.members
                    .insert(text(&member["userId"]), text(&member["role"]));
            }
            names::MEMBER_REMOVED => {
                self.members.remove(&text(&payload["member"]["userId"]));
            }
            names::VAULT_UPDATED => self.name = text(&payload["vault"]["name"]),
            _ => {}
        }
    }
}

/// One session of a user, with its socket (if connected), everything its
/// sockets received and its views.
struct Client {
    user: usize,
    token: String,
    /// The token was logged out (and not replaced yet).
    revoked: bool,
    socket: Option<TestSocket>,
    log: Vec<Entry>,
    views: Vec<View>,
    /// Vaults its socket is in (rejoined after a reconnect).
    watching: BTreeSet<usize>,
    /// Vaults that answered a join with `vault:resync`.
    resync: BTreeSet<usize>,
}

// ---------------------------------------------------------------------------
// The model

#[derive(Debug, Clone)]
struct ModelSource {
    vault: usize,
    title: String,
    deleted: bool,
}

/// What the server should hold, from the answers of the operations.
struct Model {
    /// Per vault: user index → role.
    roles: Vec<BTreeMap<usize, Role>>,
    names: Vec<String>,
    sources: BTreeMap<String, ModelSource>,
    /// Source ids in creation order (ids made in the same millisecond do
    /// not sort in that order), for seeded choices.
    created: Vec<String>,
    /// Per vault: (round, key) of every event a successful operation made.
    expected: Vec<Vec<(usize, String)>>,
}

impl Model {
    fn role(&self, vault: usize, user: usize) -> Option<Role> {
        self.roles[vault].get(&user).copied()
    }

    fn owners(&self, vault: usize) -> usize {
        self.roles[vault]
            .values()
            .filter(|role| **role == Role::Owner)
            .count()
    }
}

/// The comparable part of a sequenced event.
fn event_key(name: &str, actor: &str, detail: &str) -> String {
    format!("{name} by {actor}: {detail}")
}

fn logged_key(name: &str, payload: &Value) -> String {
    let actor = payload["actor"]["userId"].as_str().unwrap_or("?");
    let detail = match name {
        names::SOURCE_CREATED | names::SOURCE_UPDATED => format!(
            "{} {}",
            payload["source"]["id"].as_str().unwrap_or("?"),
            payload["source"]["title"]
        ),
        names::SOURCE_DELETED => payload["sourceId"].as_str().unwrap_or("?").to_owned(),
        names::MEMBER_ADDED | names::MEMBER_UPDATED | names::MEMBER_REMOVED => format!(
            "{} as {}",
            payload["member"]["userId"].as_str().unwrap_or("?"),
            payload["member"]["role"].as_str().unwrap_or("?")
        ),
        names::VAULT_UPDATED => payload["vault"]["name"].to_string(),
        _ => payload.to_string(),
    };
    event_key(name, actor, &detail)
}

/// A member's role changes in seq order: (seq, role from then on).
type RoleChanges = Vec<(i64, Option<Role>)>;

/// Who was a member of each vault, with which role, after each seq: read
/// from the vaults' logs.
struct Timeline {
    /// (vault, user id) → its role changes.
    changes: HashMap<(usize, String), RoleChanges>,
}

impl Timeline {
    fn new(vaults: &[Vault], logs: &[Vec<Entry>]) -> Timeline {
        let mut changes: HashMap<(usize, String), RoleChanges> = HashMap::new();
        for (v, vault) in vaults.iter().enumerate() {
            changes
                .entry((v, vault.created_by.clone()))
                .or_default()
                .push((0, Some(Role::Owner)));
            for (name, payload) in &logs[v] {
                let seq = payload["seq"].as_i64().expect("logged seq");
                let user = payload["member"]["userId"].as_str().unwrap_or_default();
                let role = payload["member"]["role"].as_str().and_then(Role::parse);
                let change = match name.as_str() {
                    names::MEMBER_ADDED | names::MEMBER_UPDATED => role,
                    names::MEMBER_REMOVED => None,
                    _ => continue,
                };
                changes
                    .entry((v, user.to_owned()))
                    .or_default()
                    .push((seq, change));
            }
        }
        Timeline { changes }
    }

    /// The user's role in the vault once the event `seq` committed.
    fn role_at(&self, vault: usize, user: &str, seq: i64) -> Option<Role> {
        let changes = self.changes.get(&(vault, user.to_owned()))?;
        let applied = changes.partition_point(|(at, _)| *at <= seq);
        applied.checked_sub(1).and_then(|last| changes[last].1)
    }
}

// ---------------------------------------------------------------------------
// The world

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

    // -- planning -----------------------------------------------------------

    fn vault_for(&mut self, user: usize, member_bias: f64) -> usize {
        let member_of: Vec<usize> = (0..VAULTS)
            .filter(|v| self.model.role(*v, user).is_some())
            .collect();
        if !member_of.is_empty() && self.rng.random_bool(member_bias) {
            *member_of.choose(&mut self.rng).expect("a vault")
        } else {
            self.rng.random_range(0..VAULTS)
        }
    }

    /// A client for an owner's job in `vault`: mostly one of an owner's.
    fn manager_of(&mut self, vault: usize) -> usize {
        let owners: Vec<usize> = (0..self.clients.len())
            .filter(|c| self.model.role(vault, self.clients[*c].user) == Some(Role::Owner))
            .collect();
        if !owners.is_empty() && self.rng.random_bool(0.75) {
            *owners.choose(&mut self.rng).expect("an owner")
        } else {
            self.rng.random_range(0..self.clients.len())
        }
    }

    fn title(&mut self) -> String {
        self.next_title += 1;
        format!(
            "Paper {} ({})",
            self.next_title,
            self.rng.random_range(0..1000)
        )
    }

    fn random_op(&mut self) -> Op {
        let mut client = self.rng.random_range(0..self.clients.len());
        let user = self.clients[client].user;
        let online = self.clients[client].socket.is_some();
        let via = if online && self.rng.random_bool(0.5) {
            Via::Socket
        } else {
            Via::Rest
        };
        let roll = self.rng.random_range(0..100);
        let action = match roll {
            0..28 => Action::CreateSource {
                vault: self.vault_for(user, 0.8),
                title: self.title(),
                via,
            },
            28..50 => {
                let candidates: Vec<(String, usize, bool)> = self
                    .model
                    .created
                    .iter()
                    .map(|id| {
                        let s = &self.model.sources[id];
                        (id.clone(), s.vault, s.deleted)
                    })
                    .collect();
                let live: Vec<&(String, usize, bool)> = candidates
                    .iter()
                    .filter(|(_, v, deleted)| !deleted && self.model.role(*v, user).is_some())
                    .collect();
                let pick = if !live.is_empty() && self.rng.random_bool(0.8) {
                    live.choose(&mut self.rng).map(|s| s.0.clone())
                } else {
                    candidates.choose(&mut self.rng).map(|s| s.0.clone())
                };
                match pick {
                    None => Action::CreateSource {
                        vault: self.vault_for(user, 0.8),
                        title: self.title(),
                        via,
                    },
                    Some(source) if roll < 42 => Action::UpdateSource {
                        source,
                        title: self.title(),
                        via,
                    },
                    Some(source) => Action::DeleteSource { source, via },
                }
            }
            50..62 if online => Action::Join {
                vault: self.vault_for(user, 0.75),
            },
            62..67 if online => {
                let watching: Vec<usize> = self.clients[client].watching.iter().copied().collect();
                let vault = if !watching.is_empty() && self.rng.random_bool(0.8) {
                    *watching.choose(&mut self.rng).expect("a vault")
                } else {
                    self.rng.random_range(0..VAULTS)
                };
                Action::Leave { vault }
            }
            50..67 => Action::Reconnect,
            67..74 => {
                let vault = self.rng.random_range(0..VAULTS);
                client = self.manager_of(vault);
                let non_members: Vec<usize> = (0..USERS)
                    .filter(|u| self.model.role(vault, *u).is_none())
                    .collect();
                let user = if !non_members.is_empty() && self.rng.random_bool(0.85) {
                    *non_members.choose(&mut self.rng).expect("a user")
                } else {
                    self.rng.random_range(0..USERS)
                };
                Action::AddMember {
                    vault,
                    user,
                    role: *Role::ALL.choose(&mut self.rng).expect("roles"),
                }
            }
            74..87 => {
                let vault = self.rng.random_range(0..VAULTS);
                client = self.manager_of(vault);
                let members: Vec<usize> = self.model.roles[vault].keys().copied().collect();
                let user = if self.rng.random_bool(0.9) {
                    *members
                        .choose(&mut self.rng)
                        .expect("a vault keeps an owner")
                } else {
                    self.rng.random_range(0..USERS)
                };
                if roll < 80 {
                    Action::ChangeRole {
                        vault,
                        user,
                        role: *Role::ALL.choose(&mut self.rng).expect("roles"),
                    }
                } else {
                    Action::RemoveMember { vault, user }
                }
            }
            87..91 => {
                let vault = self.rng.random_range(0..VAULTS);
                client = self.manager_of(vault);
                let name = format!("vault {vault}, take {}", self.rng.random_range(0..10_000));
                Action::Rename { vault, name }
            }
            91..95 => Action::Logout,
            _ => Action::Reconnect,
        };
        Op { client, action }
    }

    /// Operations that may run at once: one per client, one membership or
    /// rename per vault, one per source. The only races allowed are a
    /// member's command (source mutation, join) against a change of that
    /// member's role in that vault; both outcomes are then accepted.
    fn plan_round(&mut self) -> Vec<Op> {
        let wanted = self.rng.random_range(1..=self.concurrency);
        let mut ops: Vec<Op> = Vec::new();
        let mut clients = HashSet::new();
        let mut managed = HashSet::new();
        let mut sources = HashSet::new();
        for _ in 0..wanted * 4 {
            if ops.len() == wanted {
                break;
            }
            let op = self.random_op();
            if clients.contains(&op.client) {
                continue;
            }
            let manages = match &op.action {
                Action::AddMember { vault, .. }
                | Action::ChangeRole { vault, .. }
                | Action::RemoveMember { vault, .. }
                | Action::Rename { vault, .. } => Some(*vault),
                _ => None,
            };
            if manages.is_some_and(|v| managed.contains(&v)) {
                continue;
            }
            let source = match &op.action {
                Action::UpdateSource { source, .. } | Action::DeleteSource { source, .. } => {
                    Some(source.clone())
                }
                _ => None,
            };
            if source.as_ref().is_some_and(|s| sources.contains(s)) {
                continue;
            }
            clients.insert(op.client);
            managed.extend(manages);
            sources.extend(source);
            ops.push(op);
        }
        ops
    }

    // -- expectations ---------------------------------------------------------

    /// The roles `user` may have in `vault` while this round runs.
    fn possible_roles(
        &self,
        vault: usize,
        user: usize,
        pending: &HashMap<(usize, usize), Option<Role>>,
    ) -> Vec<Option<Role>> {
        let mut roles = vec![self.model.role(vault, user)];
        if let Some(next) = pending.get(&(vault, user)) {
            roles.push(*next);
        }
        roles
    }

    /// The answers the contract allows `op`.
    fn expect(&self, op: &Op, pending: &HashMap<(usize, usize), Option<Role>>) -> BTreeSet<Answer> {
        let client = &self.clients[op.client];
        let user = client.user;
        let over_rest = !matches!(
            op.action,
            Action::CreateSource {
                via: Via::Socket,
                ..
            } | Action::UpdateSource {
                via: Via::Socket,
                ..
            } | Action::DeleteSource {
                via: Via::Socket,
                ..
            } | Action::Join { .. }
                | Action::Leave { .. }
                | Action::Reconnect
        );
        if over_rest && client.revoked {
            return BTreeSet::from([refusal(REVOKED)]);
        }
        let edit = |role: Option<Role>, not_member: (&str, &str)| match role {
            None => refusal(not_member),
            Some(Role::Viewer) => refusal(NO_RIGHT),
            Some(_) => Answer::ok(),
        };
        // Only an owner manages; the model's role is certain here (one
        // membership change per vault and round).
        let manage = |vault: usize| match self.model.role(vault, user) {
            None => Some(refusal(NOT_A_MEMBER_VAULT)),
            Some(Role::Owner) => None,
            Some(_) => Some(refusal(NO_RIGHT)),
        };
        match &op.action {
            Action::CreateSource { vault, .. } => self
                .possible_roles(*vault, user, pending)
                .into_iter()
                .map(|role| edit(role, NOT_A_MEMBER_VAULT))
                .collect(),
            Action::UpdateSource { source, .. } | Action::DeleteSource { source, .. } => {
                let known = &self.model.sources[source];
                if known.deleted {
                    return BTreeSet::from([refusal(NOT_A_MEMBER_SOURCE)]);
                }
                self.possible_roles(known.vault, user, pending)
                    .into_iter()
                    .map(|role| edit(role, NOT_A_MEMBER_SOURCE))
                    .collect()
            }
            Action::Join { vault } => self
                .possible_roles(*vault, user, pending)
                .into_iter()
                .map(|role| match role {
                    None => refusal(JOIN_REFUSED),
                    Some(_) => Answer::ok(),
                })
                .collect(),
            Action::Leave { .. } | Action::Logout | Action::Reconnect => {
                BTreeSet::from([Answer::ok()])
            }
            Action::AddMember {
                vault, user: added, ..
            } => {
                let answer = manage(*vault).unwrap_or_else(|| {
                    if self.model.role(*vault, *added).is_some() {
                        refusal(ALREADY_MEMBER)
                    } else {
                        Answer::ok()
                    }
                });
                BTreeSet::from([answer])
            }
            Action::ChangeRole {
                vault,
                user: changed,
                role,
            } => {
                let answer =
                    manage(*vault).unwrap_or_else(|| match self.model.role(*vault, *changed) {
                        None => refusal(NO_SUCH_MEMBER),
                        Some(Role::Owner)
                            if *role != Role::Owner && self.model.owners(*vault) == 1 =>
                        {
                            refusal(LAST_OWNER)
                        }
                        Some(_) => Answer::ok(),
                    });
                BTreeSet::from([answer])
            }
            Action::RemoveMember {
                vault,
                user: removed,
            } => {
                let answer =
                    manage(*vault).unwrap_or_else(|| match self.model.role(*vault, *removed) {
                        None => refusal(NO_SUCH_MEMBER),
                        Some(Role::Owner) if self.model.owners(*vault) == 1 => refusal(LAST_OWNER),
                        Some(_) => Answer::ok(),
                    });
                BTreeSet::from([answer])
            }
            Action::Rename { vault, .. } => {
                BTreeSet::from([manage(*vault).unwrap_or_else(Answer::ok)])
            }
        }
    }

    /// The answers the contract allows each join of a reconnect, by vault.
    fn expect_rejoins(
        &self,
        op: &Op,
        pending: &HashMap<(usize, usize), Option<Role>>,
    ) -> BTreeMap<usize, BTreeSet<Answer>> {
        let client = &self.clients[op.client];
        if !matches!(op.action, Action::Reconnect) {
            return BTreeMap::new();
        }
        client
            .watching
            .iter()
            .map(|v| {
                let join = Op {
                    client: op.client,
                    action: Action::Join { vault: *v },
                };
                (*v, self.expect(&join, pending))
            })
            .collect()
    }

    /// The membership changes of a round that will succeed: (vault, user)
    /// → role afterwards.
    fn pending_changes(&self, ops: &[Op]) -> HashMap<(usize, usize), Option<Role>> {
        let mut pending = HashMap::new();
        for op in ops {
            let change = match &op.action {
                Action::AddMember { vault, user, role }
                | Action::ChangeRole { vault, user, role } => ((*vault, *user), Some(*role)),
                Action::RemoveMember { vault, user } => ((*vault, *user), None),
                _ => continue,
            };
            if self.expect(op, &HashMap::new()).contains(&Answer::ok()) {
                pending.insert(change.0, change.1);
            }
        }
        pending
    }

    // -- running --------------------------------------------------------------

    fn step_of(&self, op: &Op) -> Step {
        let client = &self.clients[op.client];
        let vault_id = |v: &usize| self.vaults[*v].id.clone();
        let file_url = |title: &str| {
            format!(
                "https://example.org/{}.pdf",
                title.replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            )
        };
        match &op.action {
            Action::CreateSource { vault, title, via } => {
                let body = json!({"title": title, "fileUrl": file_url(title)});
                match via {
                    Via::Rest => Step::Rest {
                        method: Method::POST,
                        path: format!("/api/vaults/{}/sources", vault_id(vault)),
                        body: Some(body),
                    },
                    Via::Socket => {
                        let mut payload = body;
                        payload["vaultId"] = json!(vault_id(vault));
                        Step::Command {
                            event: "source:create",
                            payload,
                        }
                    }
                }
            }
            Action::UpdateSource { source, title, via } => match via {
                Via::Rest => Step::Rest {
                    method: Method::PATCH,
                    path: format!("/api/sources/{source}"),
                    body: Some(json!({ "title": title })),
                },
                Via::Socket => Step::Command {
                    event: "source:update",
                    payload: json!({"sourceId": source, "title": title}),
                },
            },
            Action::DeleteSource { source, via } => match via {
                Via::Rest => Step::Rest {
                    method: Method::DELETE,
                    path: format!("/api/sources/{source}"),
                    body: None,
                },
                Via::Socket => Step::Command {
                    event: "source:delete",
                    payload: json!({ "sourceId": source }),
                },
            },
            Action::Join { vault } => Step::Join {
                vault_id: vault_id(vault),
                since: client.views[*vault].last,
            },
            Action::Leave { vault } => Step::Leave {
                vault_id: vault_id(vault),
            },
            Action::AddMember { vault, user, role } => Step::Rest {
                method: Method::POST,
                path: format!("/api/vaults/{}/members", vault_id(vault)),
                body: Some(json!({"email": self.users[*user].email, "role": role})),
            },
            Action::ChangeRole { vault, user, role } => Step::Rest {
                method: Method::PATCH,
                path: format!(
                    "/api/vaults/{}/members/{}",
                    vault_id(vault),
                    self.users[*user].id
                ),
                body: Some(json!({ "role": role })),
            },
            Action::RemoveMember { vault, user } => Step::Rest {
                method: Method::DELETE,
                path: format!(
                    "/api/vaults/{}/members/{}",
                    vault_id(vault),
                    self.users[*user].id
                ),
                body: None,
            },
            Action::Rename { vault, name } => Step::Rest {
                method: Method::PATCH,
                path: format!("/api/vaults/{}", vault_id(vault)),
                body: Some(json!({ "name": name })),
            },
            Action::Logout => Step::Logout,
            Action::Reconnect => Step::Reconnect {
                login: client.revoked,
                rejoin: client
                    .watching
                    .iter()
                    .map(|v| (vault_id(v), client.views[*v].last))
                    .collect(),
            },
        }
    }

    async fn run_round(&mut self) {
        self.absorb_idle().await;
        let ops = self.plan_round();
        let pending = self.pending_changes(&ops);
        let mut tasks = JoinSet::new();
        let mut planned = Vec::new();
        for (index, op) in ops.into_iter().enumerate() {
            let expected = Expected {
                answer: self.expect(&op, &pending),
                rejoins: self.expect_rejoins(&op, &pending),
            };
            let description = self.describe(&op);
            let step = self.step_of(&op);
            let client = &mut self.clients[op.client];
            let exec = Exec {
                app: self.app.clone(),
                token: client.token.clone(),
                email: self.users[client.user].email.clone(),
                socket: client.socket.take(),
                step,
            };
            tasks.spawn(async move { (index, execute(exec).await) });
            planned.push((op, expected, description));
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(error) => {
                    let running: Vec<&String> = planned.iter().map(|(_, _, d)| d).collect();
                    panic!(
                        "{} an operation failed while running {running:?}: {error}",
                        self.context()
                    )
                }
            }
        }
        results.sort_by_key(|(index, _)| *index);
        for (index, done) in results {
            let (op, expected, description) = &planned[index];
            self.ops_run += 1;
            self.conclude(op, expected, description, done).await;
        }
    }

    /// Takes back an operation's socket and session, records what it
    /// received, checks its answer and applies it to the model.
    async fn conclude(&mut self, op: &Op, expected: &Expected, description: &str, done: Done) {
        let context = self.context();
        let user = self.clients[op.client].user;
        let actor = self.users[user].id.clone();
        {
            let client = &mut self.clients[op.client];
            client.socket = done.socket;
            client.token = done.token;
        }
        self.absorb(op.client, done.entries).await;
        *self
            .tally
            .entry((op.action.kind(), done.answer.to_string()))
            .or_default() += 1;
        assert!(
            expected.answer.contains(&done.answer),
            "{context} {description}: answered {}, the contract says {}; body {}",
            done.answer,
            alternatives(&expected.answer),
            done.body
        );
        let round = self.round;
        let ok = done.answer.is_ok();
        match &op.action {
            Action::CreateSource { vault, title, .. } if ok => {
                let source = &done.body["source"];
                let id = source["id"].as_str().expect("created source id").to_owned();
                assert_eq!(source["title"], *title, "{context} {description}: {source}");
                assert_eq!(
                    source["vaultId"], self.vaults[*vault].id,
                    "{context} {description}: {source}"
                );
                self.model.expected[*vault].push((
                    round,
                    event_key(
                        names::SOURCE_CREATED,
                        &actor,
                        &format!("{id} {}", json!(title)),
                    ),
                ));
                self.model.created.push(id.clone());
                self.model.sources.insert(
                    id,
                    ModelSource {
                        vault: *vault,
                        title: title.clone(),
                        deleted: false,
                    },
                );
            }
            Action::UpdateSource { source, title, .. } if ok => {
                assert_eq!(
                    done.body["source"]["title"], *title,
                    "{context} {description}: {}",
                    done.body
                );
                let known = self.model.sources.get_mut(source).expect("known source");
                known.title = title.clone();
                self.model.expected[known.vault].push((
                    round,
                    event_key(
                        names::SOURCE_UPDATED,
                        &actor,
                        &format!("{source} {}", json!(title)),
                    ),
                ));
            }
            Action::DeleteSource { source, .. } if ok => {
                let known = self.model.sources.get_mut(source).expect("known source");
                known.deleted = true;
                self.model.expected[known.vault]
                    .push((round, event_key(names::SOURCE_DELETED, &actor, source)));
            }
            Action::AddMember { vault, user, role } if ok => {
                self.model.roles[*vault].insert(*user, *role);
                let detail = format!("{} as {role}", self.users[*user].id);
                self.model.expected[*vault]
                    .push((round, event_key(names::MEMBER_ADDED, &actor, &detail)));
            }
            Action::ChangeRole { vault, user, role } if ok => {
                self.model.roles[*vault].insert(*user, *role);
                let detail = format!("{} as {role}", self.users[*user].id);
                self.model.expected[*vault]
                    .push((round, event_key(names::MEMBER_UPDATED, &actor, &detail)));
            }
            Action::RemoveMember { vault, user } if ok => {
                let was = self.model.roles[*vault].remove(user).expect("a member");
                let detail = format!("{} as {was}", self.users[*user].id);
                self.model.expected[*vault]
                    .push((round, event_key(names::MEMBER_REMOVED, &actor, &detail)));
            }
            Action::Rename { vault, name } if ok => {
                self.model.names[*vault] = name.clone();
                self.model.expected[*vault].push((
                    round,
                    event_key(names::VAULT_UPDATED, &actor, &json!(name).to_string()),
                ));
            }
            Action::Join { vault } if !ok => {
                self.clients[op.client].watching.remove(vault);
            }
            Action::Logout if ok => {
                self.clients[op.client].revoked = true;
                for (what, answer) in &done.after_logout {
                    assert_eq!(
                        answer.code, "UNAUTHORIZED",
                        "{context} {description}: {what} was answered {answer}"
                    );
                }
            }
            Action::Reconnect => {
                self.clients[op.client].revoked = false;
                let rejoined: Vec<usize> = done
                    .rejoined
                    .iter()
                    .map(|(id, _)| self.vault_ix[id])
                    .collect();
                assert_eq!(
                    rejoined,
                    expected.rejoins.keys().copied().collect::<Vec<_>>(),
                    "{context} {description}: rejoined other vaults than it watched"
                );
                for (vault_id, answer) in &done.rejoined {
                    let vault = self.vault_ix[vault_id];
                    let allowed = &expected.rejoins[&vault];
                    assert!(
                        allowed.contains(answer),
                        "{context} {description}: rejoining vault {vault} was answered {answer}, \
                         the contract says {}",
                        alternatives(allowed)
                    );
                    if !answer.is_ok() {
                        self.clients[op.client].watching.remove(&vault);
                    }
                }
            }
            _ => {}
        }
    }

    /// Records what the idle sockets received since the last look.
    async fn absorb_idle(&mut self) {
        for c in 0..self.clients.len() {
            let mut entries = Vec::new();
            drain(&mut self.clients[c].socket, &mut entries);
            self.absorb(c, entries).await;
        }
    }

    /// Appends a client's received entries to its record and applies them
    /// to its views, as a client following the catch-up rules would.
    async fn absorb(&mut self, c: usize, entries: Vec<Entry>) {
        let own_id = self.users[self.clients[c].user].id.clone();
        for (name, data) in entries {
            let vault = data["vaultId"]
                .as_str()
                .and_then(|id| self.vault_ix.get(id))
                .copied();
            let client = &mut self.clients[c];
            if let Some(v) = vault {
                match name.as_str() {
                    n if names::ALL.contains(&n) => {
                        client.views[v].offer(n, &data);
                        if n == names::MEMBER_REMOVED && data["member"]["userId"] == own_id {
                            client.watching.remove(&v);
                        }
                    }
                    signals::VAULT_JOINED => {
                        client.watching.insert(v);
                    }
                    signals::VAULT_LEFT | signals::VAULT_REMOVED => {
                        client.watching.remove(&v);
                    }
                    signals::VAULT_RESYNC => {
                        client.resync.insert(v);
                    }
                    _ => {}
                }
            }
            client.log.push((name, data));
        }
        self.resync(c).await;
    }

    /// Rule 5 of the catch-up: reload the snapshot.
    async fn resync(&mut self, c: usize) {
        let vaults = std::mem::take(&mut self.clients[c].resync);
        for v in vaults {
            let token = self.clients[c].token.clone();
            let id = self.vaults[v].id.clone();
            let path = format!("/api/vaults/{id}/sources");
            let (answer, snapshot) = rest(&self.app, &token, Method::GET, &path, None).await;
            if !answer.is_ok() {
                continue;
            }
            let (_, vault) = rest(
                &self.app,
                &token,
                Method::GET,
                &format!("/api/vaults/{id}"),
                None,
            )
            .await;
            let (_, members) = rest(
                &self.app,
                &token,
                Method::GET,
                &format!("/api/vaults/{id}/members"),
                None,
            )
            .await;
            let view = &mut self.clients[c].views[v];
            view.last = snapshot["seq"].as_i64().expect("snapshot seq");
            view.sources = sources_by_id(&snapshot);
            view.members = members_by_id(&members);
            view.name = vault["vault"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let kept = view.buffer.split_off(&(view.last + 1));
            view.buffer = BTreeMap::new();
            for (_, (name, payload)) in kept {
                view.offer(&name, &payload);
            }
        }
    }

    // -- the end --------------------------------------------------------------

    async fn finish(mut self) {
        let context = self.context();
        self.absorb_idle().await;
        // Every client back online, in every vault its user belongs to,
        // caught up with `since`.
        for c in 0..self.clients.len() {
            let client = &self.clients[c];
            if client.socket.is_none() {
                let op = Op {
                    client: c,
                    action: Action::Reconnect,
                };
                let step = self.step_of(&op);
                let exec = Exec {
                    app: self.app.clone(),
                    token: client.token.clone(),
                    email: self.users[client.user].email.clone(),
                    socket: None,
                    step,
                };
                let expected = Expected {
                    answer: BTreeSet::from([Answer::ok()]),
                    rejoins: self.expect_rejoins(&op, &HashMap::new()),
                };
                let done = execute(exec).await;
                let description = format!("final {}", self.describe(&op));
                self.conclude(&op, &expected, &description, done).await;
            }
            let user = self.clients[c].user;
            for v in 0..VAULTS {
                if self.model.role(v, user).is_none() {
                    continue;
                }
                let op = Op {
                    client: c,
                    action: Action::Join { vault: v },
                };
                let step = self.step_of(&op);
                let client = &mut self.clients[c];
                let exec = Exec {
                    app: self.app.clone(),
                    token: client.token.clone(),
                    email: self.users[client.user].email.clone(),
                    socket: client.socket.take(),
                    step,
                };
                let expected = Expected {
                    answer: BTreeSet::from([Answer::ok()]),
                    rejoins: BTreeMap::new(),
                };
                let done = execute(exec).await;
                let description = format!("final {}", self.describe(&op));
                self.conclude(&op, &expected, &description, done).await;
            }
        }
        for client in &mut self.clients {
            client.socket.as_mut().expect("back online").sync().await;
        }
        self.absorb_idle().await;

        // The server's state, read by an owner of each vault.
        let mut logs = Vec::new();
        let mut states = Vec::new();
        for v in 0..VAULTS {
            let owner = (0..self.clients.len())
                .find(|c| self.model.role(v, self.clients[*c].user) == Some(Role::Owner))
                .expect("a vault keeps an owner");
            let token = self.clients[owner].token.clone();
            states.push(ServerVault::read(&self.app, &token, &self.vaults[v].id).await);
            logs.push(read_log(&self.app, &token, &self.vaults[v].id).await);
        }
        let timeline = Timeline::new(&self.vaults, &logs);

        let mut problems = Vec::new();
        self.check_model(&states, &logs, &timeline, &mut problems);
        for c in 0..self.clients.len() {
            self.check_views(c, &states, &mut problems);
            self.check_isolation(c, &timeline, &mut problems);
        }
        let tally: Vec<String> = self
            .tally
            .iter()
            .map(|((kind, answer), n)| format!("{kind}: {answer} ×{n}"))
            .collect();
        eprintln!("{context} answers:\n  {}", tally.join("\n  "));
        if !problems.is_empty() {
            self.dump(&logs);
        }
        let shown: Vec<&String> = problems.iter().take(25).collect();
        assert!(
            problems.is_empty(),
            "{context} {} problem(s), the first ones:\n{}",
            problems.len(),
            shown
                .iter()
                .map(|p| format!("  - {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// With `SYNCSCRIPT_ISOLATION_DUMP=<dir>`, writes every client's record
    /// and every vault's log there, one JSON line per entry, for a failure
    /// to be read in full.
    fn dump(&self, logs: &[Vec<Entry>]) {
        let Ok(dir) = std::env::var("SYNCSCRIPT_ISOLATION_DUMP") else {
            return;
        };
        let dir = std::path::Path::new(&dir);
        std::fs::create_dir_all(dir).expect("dump directory");
        let lines = |entries: &[Entry]| {
            entries
                .iter()
                .enumerate()
                .map(|(index, (name, data))| format!("{index}\t{name}\t{data}\n"))
                .collect::<String>()
        };
        for (c, client) in self.clients.iter().enumerate() {
            let name = format!("client-{c}-{}.log", self.users[client.user].name);
            std::fs::write(dir.join(name), lines(&client.log)).expect("dump a record");
        }
        for (v, log) in logs.iter().enumerate() {
            std::fs::write(dir.join(format!("vault-{v}.log")), lines(log)).expect("dump a log");
        }
        let ids: String = self
            .users
            .iter()
            .map(|u| format!("user {} {}\n", u.name, u.id))
            .chain(
                self.vaults
                    .iter()
                    .enumerate()
                    .map(|(v, vault)| format!("vault {v} {}\n", vault.id)),
            )
            .collect();
        std::fs::write(dir.join("ids.txt"), ids).expect("dump the ids");
        eprintln!("{} records written to {}", self.context(), dir.display());
    }

    /// The model against the server: roles, names, sources, and the log
    /// against the successful operations, round by round.
    fn check_model(
        &self,
        states: &[ServerVault],
        logs: &[Vec<Entry>],
        timeline: &Timeline,
        problems: &mut Vec<String>,
    ) {
        for v in 0..VAULTS {
            let state = &states[v];
            let roles: BTreeMap<String, String> = self.model.roles[v]
                .iter()
                .map(|(u, role)| (self.users[*u].id.clone(), role.to_string()))
                .collect();
            if roles != state.members {
                problems.push(format!(
                    "vault {v}: members {:?}, the operations' answers say {roles:?}",
                    state.members
                ));
            }
            if state.name != self.model.names[v] {
                problems.push(format!(
                    "vault {v}: named {:?}, the operations' answers say {:?}",
                    state.name, self.model.names[v]
                ));
            }
            let titles: BTreeMap<String, String> = self
                .model
                .sources
                .iter()
                .filter(|(_, s)| s.vault == v && !s.deleted)
                .map(|(id, s)| (id.clone(), s.title.clone()))
                .collect();
            let served: BTreeMap<String, String> = state
                .sources
                .iter()
                .map(|(id, s)| (id.clone(), s["title"].as_str().unwrap_or("?").to_owned()))
                .collect();
            if titles != served {
                problems.push(format!(
                    "vault {v}: sources {served:?}, the operations' answers say {titles:?}"
                ));
            }

            // Seqs 1..=head, one event per successful operation, each
            // round's events after the previous round's.
            let log = &logs[v];
            let seqs: Vec<i64> = log
                .iter()
                .map(|(_, p)| p["seq"].as_i64().unwrap_or(-1))
                .collect();
            let contiguous: Vec<i64> = (1..=log.len() as i64).collect();
            if seqs != contiguous || state.seq != log.len() as i64 {
                problems.push(format!(
                    "vault {v}: logged seqs {seqs:?} with head {}",
                    state.seq
                ));
                continue;
            }
            let expected = &self.model.expected[v];
            if expected.len() != log.len() {
                problems.push(format!(
                    "vault {v}: {} events logged, {} operations succeeded",
                    log.len(),
                    expected.len()
                ));
            }
            let mut at = 0;
            for chunk in expected.chunk_by(|a, b| a.0 == b.0) {
                let end = (at + chunk.len()).min(log.len());
                let mut want: Vec<&String> = chunk.iter().map(|(_, key)| key).collect();
                let mut got: Vec<String> = log[at..end]
                    .iter()
                    .map(|(name, payload)| logged_key(name, payload))
                    .collect();
                want.sort();
                got.sort();
                let got: Vec<&String> = got.iter().collect();
                if want != got {
                    let round = chunk[0].0;
                    problems.push(format!(
                        "vault {v}, {}: logged seqs {}..={end} are {got:?}, the operations that \
                         succeeded then make {want:?}",
                        if round == usize::MAX {
                            "set-up".to_owned()
                        } else {
                            format!("round {round}")
                        },
                        at + 1
                    ));
                }
                at = end;
            }

            // Each event carries its actor's role at that seq.
            for (name, payload) in log {
                let seq = payload["seq"].as_i64().unwrap_or_default();
                let actor = payload["actor"]["userId"].as_str().unwrap_or_default();
                let role = timeline.role_at(v, actor, seq - 1).map(|r| r.to_string());
                if payload["actor"]["role"].as_str() != role.as_deref() {
                    problems.push(format!(
                        "vault {v} seq {seq} {name}: actor role {}, but the log makes it {role:?}",
                        payload["actor"]["role"]
                    ));
                }
            }
        }
    }

    /// Check 1: a client's views equal the server's state of every vault
    /// its user belongs to.
    fn check_views(&self, c: usize, states: &[ServerVault], problems: &mut Vec<String>) {
        let client = &self.clients[c];
        let who = format!("client {c} ({})", self.users[client.user].name);
        for (v, state) in states.iter().enumerate() {
            if self.model.role(v, client.user).is_none() {
                continue;
            }
            let view = &client.views[v];
            if view.last != state.seq || !view.buffer.is_empty() {
                problems.push(format!(
                    "{who} vault {v}: applied up to seq {} with {:?} buffered, the head is {}",
                    view.last,
                    view.buffer.keys().collect::<Vec<_>>(),
                    state.seq
                ));
            }
            if view.sources != state.sources {
                let mine: BTreeSet<&String> = view.sources.keys().collect();
                let theirs: BTreeSet<&String> = state.sources.keys().collect();
                problems.push(format!(
                    "{who} vault {v}: its view's sources differ from the server's: only in the \
                     view {:?}, only on the server {:?}, differing {:?}",
                    mine.difference(&theirs).collect::<Vec<_>>(),
                    theirs.difference(&mine).collect::<Vec<_>>(),
                    mine.intersection(&theirs)
                        .filter(|id| view.sources[**id] != state.sources[**id])
                        .collect::<Vec<_>>()
                ));
            }
            if view.members != state.members {
                problems.push(format!(
                    "{who} vault {v}: its view's members {:?}, the server's {:?}",
                    view.members, state.members
                ));
            }
            if view.name != state.name {
                problems.push(format!(
                    "{who} vault {v}: its view's name {:?}, the server's {:?}",
                    view.name, state.name
                ));
            }
        }
    }

    /// Check 2: everything a client's sockets received, in order, against
    /// its user's membership by seq and its sockets' rooms.
    ///
    /// - A live event of a vault (socket in its room) is legal when the
    ///   user was a member at that event's seq; its own `member:removed`
    ///   too, and that ends the room.
    /// - A join's replay is read at the head where the join's membership
    ///   check passed: an event received during a join (between the
    ///   `vault:join` and its `vault:joined` or refusal) is legal when the
    ///   user was a member at its seq, or at a later seq received in that
    ///   join, or at the join's `vault:joined` head.
    /// - Nothing of a vault (event, `presence`, `vault:head`) after the
    ///   socket's `vault:removed` or `vault:left` for it, until it joins
    ///   again — also not the rest of a join's replay: once removed, the
    ///   user is not a member at that moment any more.
    /// - `vault:joined` only at a head where the user is a member;
    ///   `vault:removed` only for a vault the user was removed from; a
    ///   socket is cut only by its own session's logout.
    fn check_isolation(&self, c: usize, timeline: &Timeline, problems: &mut Vec<String>) {
        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Room {
            Out,
            /// A join under way. `reference`: the highest seq of the join's
            /// answer (its `vault:joined` head, or an event it carried) at
            /// which the user was a member; `removed`: a `vault:removed`
            /// arrived since the join was sent.
            Joining {
                was_in: bool,
                reference: Option<i64>,
                removed: bool,
            },
            In,
        }
        let client = &self.clients[c];
        let user = &self.users[client.user];
        let who = format!("client {c} ({})", user.name);
        let log = &client.log;
        let member_at = |v: usize, seq: i64| timeline.role_at(v, &user.id, seq).is_some();
        let mut rooms: HashMap<usize, Room> = HashMap::new();
        let mut logging_out = false;
        let mut report = |index: usize, what: String| {
            let from = index.saturating_sub(6);
            let around: Vec<String> = log[from..=index]
                .iter()
                .map(|(name, data)| format!("{name} {}", brief(data)))
                .collect();
            problems.push(format!(
                "{who}, received #{index}: {what}; the entries up to it: {around:?}"
            ));
        };
        for (index, (name, data)) in log.iter().enumerate() {
            let vault = data["vaultId"]
                .as_str()
                .and_then(|id| self.vault_ix.get(id))
                .copied();
            let room = vault.map_or(Room::Out, |v| *rooms.get(&v).unwrap_or(&Room::Out));
            // Whether the socket may receive anything of this vault now.
            let open = match room {
                Room::In => Ok(()),
                Room::Joining { removed: false, .. } => Ok(()),
                Room::Joining { removed: true, .. } => {
                    Err("after its vault:removed, during a join")
                }
                Room::Out => Err("whose room it is not in"),
            };
            match name.as_str() {
                NEW_SOCKET => {
                    rooms.clear();
                    logging_out = false;
                }
                LOGOUT_SENT => logging_out = true,
                CLOSE => {
                    if !logging_out {
                        report(
                            index,
                            "the socket was cut without its session's logout".into(),
                        );
                    }
                    rooms.clear();
                }
                JOIN_SENT => {
                    let v = vault.expect("a join names its vault");
                    let mut reference = None;
                    for (later, data) in &log[index + 1..] {
                        let seq = data["seq"].as_i64();
                        let of_v = data["vaultId"] == self.vaults[v].id;
                        match later.as_str() {
                            signals::VAULT_JOINED if of_v => {
                                reference = reference.max(seq.filter(|h| member_at(v, *h)));
                                break;
                            }
                            ERROR | CLOSE | NEW_SOCKET => break,
                            sequenced if of_v && names::ALL.contains(&sequenced) => {
                                reference = reference.max(seq.filter(|s| member_at(v, *s)));
                            }
                            _ => {}
                        }
                    }
                    rooms.insert(
                        v,
                        Room::Joining {
                            was_in: room == Room::In,
                            reference,
                            removed: false,
                        },
                    );
                }
                ERROR => {
                    let refused = rooms.iter().find_map(|(v, room)| match room {
                        Room::Joining {
                            was_in, removed, ..
                        } => Some((*v, *was_in && !*removed)),
                        _ => None,
                    });
                    if let Some((v, still_in)) = refused {
                        rooms.insert(v, if still_in { Room::In } else { Room::Out });
                    }
                }
                signals::VAULT_JOINED => {
                    let v = vault.expect("vault:joined names a known vault");
                    let head = data["seq"].as_i64().unwrap_or(-1);
                    if !matches!(room, Room::Joining { .. }) {
                        report(index, format!("vault:joined of vault {v} without a join"));
                    }
                    if !member_at(v, head) {
                        report(
                            index,
                            format!("joined vault {v} at head {head}, where it is not a member"),
                        );
                    }
                    rooms.insert(v, Room::In);
                }
                signals::VAULT_LEFT => {
                    if let Some(v) = vault {
                        rooms.insert(v, Room::Out);
                    }
                }
                signals::VAULT_REMOVED => {
                    let v = vault.expect("vault:removed names a known vault");
                    let removed = timeline
                        .changes
                        .get(&(v, user.id.clone()))
                        .is_some_and(|changes| changes.iter().any(|(_, role)| role.is_none()));
                    if !removed {
                        report(
                            index,
                            format!("vault:removed of vault {v}, never removed from it"),
                        );
                    }
                    // The room gets member:removed before the removed
                    // member's sockets leave it: a socket in the room sees
                    // its own removal first (which ends the room, below).
                    if room == Room::In {
                        report(
                            index,
                            format!(
                                "vault:removed of vault {v} while in its room, without its own \
                                 member:removed first"
                            ),
                        );
                    }
                    let next = match room {
                        Room::Joining {
                            was_in, reference, ..
                        } => Room::Joining {
                            was_in,
                            reference,
                            removed: true,
                        },
                        _ => Room::Out,
                    };
                    rooms.insert(v, next);
                }
                signals::PRESENCE | signals::VAULT_HEAD | signals::VAULT_RESYNC => {
                    let v = vault.expect("the signal names a known vault");
                    if let Err(why) = open {
                        report(index, format!("{name} of vault {v}, {why}"));
                    }
                }
                sequenced if names::ALL.contains(&sequenced) => {
                    let Some(v) = vault else {
                        report(index, format!("{sequenced} of an unknown vault"));
                        continue;
                    };
                    let seq = data["seq"].as_i64().unwrap_or(-1);
                    let own_removal =
                        sequenced == names::MEMBER_REMOVED && data["member"]["userId"] == user.id;
                    let legal = own_removal
                        || member_at(v, seq)
                        || matches!(room, Room::Joining { reference: Some(h), .. } if seq <= h);
                    if let Err(why) = open {
                        report(index, format!("{sequenced} seq {seq} of vault {v}, {why}"));
                    } else if !legal {
                        report(
                            index,
                            format!(
                                "{sequenced} seq {seq} of vault {v}, of which it is not a member \
                                 at that seq"
                            ),
                        );
                    }
                    // A live removal ends the room (its vault:removed
                    // follows); one in a join's answer may be history. A
                    // rejoin's answer that holds the user's last removal
                    // ends the room it was in either way: live, or
                    // replayed to a socket that the removal evicts.
                    let last_removal = timeline
                        .changes
                        .get(&(v, user.id.clone()))
                        .and_then(|changes| changes.last())
                        .is_some_and(|(at, role)| *at == seq && role.is_none());
                    match room {
                        Room::In if own_removal => {
                            rooms.insert(v, Room::Out);
                        }
                        Room::Joining {
                            was_in: true,
                            reference,
                            removed,
                        } if own_removal && last_removal => {
                            rooms.insert(
                                v,
                                Room::Joining {
                                    was_in: false,
                                    reference,
                                    removed,
                                },
                            );
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        // A socket still in a room must belong to a member: an eviction
        // that missed a socket would show here even if nothing followed.
        for (v, room) in rooms {
            if room == Room::In && self.model.role(v, client.user).is_none() {
                problems.push(format!(
                    "{who}: its socket is still in vault {v}'s room, but it is no member"
                ));
            }
        }
    }
}

/// What an operation may be answered.
struct Expected {
    answer: BTreeSet<Answer>,
    /// A reconnect's joins, by vault.
    rejoins: BTreeMap<usize, BTreeSet<Answer>>,
}

fn alternatives(answers: &BTreeSet<Answer>) -> String {
    answers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ")
}

/// A short rendering of an entry's data for failure messages.
fn brief(data: &Value) -> String {
    let mut text = data.to_string();
    if text.len() > 160 {
        let mut cut = 160;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn sources_by_id(snapshot: &Value) -> BTreeMap<String, Value> {
    snapshot["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| (s["id"].as_str().expect("source id").to_owned(), s.clone()))
        .collect()
}

fn members_by_id(members: &Value) -> BTreeMap<String, String> {
    members["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["userId"].as_str().expect("user id").to_owned(),
                m["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect()
}

/// A vault as the server has it at the end.
struct ServerVault {
    seq: i64,
    name: String,
    sources: BTreeMap<String, Value>,
    members: BTreeMap<String, String>,
}

impl ServerVault {
    async fn read(app: &TestApp, token: &str, vault_id: &str) -> ServerVault {
        let get = |path: String| async move {
            let (answer, body) = rest(app, token, Method::GET, &path, None).await;
            assert!(answer.is_ok(), "GET {path}: {answer}");
            body
        };
        let snapshot = get(format!("/api/vaults/{vault_id}/sources")).await;
        let vault = get(format!("/api/vaults/{vault_id}")).await;
        let members = get(format!("/api/vaults/{vault_id}/members")).await;
        ServerVault {
            seq: snapshot["seq"].as_i64().expect("seq"),
            name: vault["vault"]["name"].as_str().expect("name").to_owned(),
            sources: sources_by_id(&snapshot),
            members: members_by_id(&members),
        }
    }
}

/// A vault's whole log, as (name, payload).
async fn read_log(app: &TestApp, token: &str, vault_id: &str) -> Vec<Entry> {
    app.event_log(token, vault_id)
        .await
        .into_iter()
        .map(|event| (event.name, event.payload))
        .collect()
}
