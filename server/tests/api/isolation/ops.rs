//! The operations of the workload, over REST and socket commands, how
//! one is executed on its own task, and how a round of them runs and
//! its outcome is taken in.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Via {
    Rest,
    Socket,
}

#[derive(Debug, Clone)]
pub(super) enum Action {
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
    pub(super) fn kind(&self) -> &'static str {
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
pub(super) struct Op {
    pub(super) client: usize,
    pub(super) action: Action,
}

/// What a task does with one client's session and socket (owned, so that
/// the operations of a round run concurrently).
pub(super) struct Exec {
    pub(super) app: Arc<TestApp>,
    pub(super) token: String,
    pub(super) email: String,
    pub(super) socket: Option<TestSocket>,
    pub(super) step: Step,
}

pub(super) enum Step {
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
pub(super) struct Done {
    pub(super) socket: Option<TestSocket>,
    pub(super) token: String,
    /// What the socket received during the step, with the step's markers.
    pub(super) entries: Vec<Entry>,
    pub(super) answer: Answer,
    pub(super) body: Value,
    /// A reconnect's joins, by vault id.
    pub(super) rejoined: Vec<(String, Answer)>,
    /// After a logout: the old session on REST and on a new handshake.
    pub(super) after_logout: Vec<(&'static str, Answer)>,
}

pub(super) fn drain(socket: &mut Option<TestSocket>, entries: &mut Vec<Entry>) {
    if let Some(socket) = socket {
        entries.extend(socket.take_matching(|_| true));
    }
}

/// `vault:join {vaultId, since}` recorded with its marker, up to its
/// `vault:joined` (or `error`).
pub(super) async fn join_recorded(
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

pub(super) async fn execute(exec: Exec) -> Done {
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

impl World {
    /// What a task needs to run `op` on its own: the client's credentials
    /// and its socket, which the task takes and gives back in its answer.
    pub(super) fn exec_of(&mut self, op: &Op) -> Exec {
        let step = self.step_of(op);
        let client = &mut self.clients[op.client];
        Exec {
            app: self.app.clone(),
            token: client.token.clone(),
            email: self.users[client.user].email.clone(),
            socket: client.socket.take(),
            step,
        }
    }

    pub(super) fn step_of(&self, op: &Op) -> Step {
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

    pub(super) async fn run_round(&mut self) {
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
            let exec = self.exec_of(&op);
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
    pub(super) async fn conclude(
        &mut self,
        op: &Op,
        expected: &Expected,
        description: &str,
        done: Done,
    ) {
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
    pub(super) async fn absorb_idle(&mut self) {
        for c in 0..self.clients.len() {
            let mut entries = Vec::new();
            drain(&mut self.clients[c].socket, &mut entries);
            self.absorb(c, entries).await;
        }
    }

    /// Appends a client's received entries to its record and applies them
    /// to its views, as a client following the catch-up rules would.
    pub(super) async fn absorb(&mut self, c: usize, entries: Vec<Entry>) {
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
    pub(super) async fn resync(&mut self, c: usize) {
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
}
