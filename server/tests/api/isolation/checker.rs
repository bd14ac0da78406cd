//! The end of a run: every client caught up, then the server's state,
//! each vault's log and every client's record checked against the model
//! and the isolation rules of the module's header.

use super::*;

impl World {
    pub(super) async fn finish(mut self) {
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
                let exec = self.exec_of(&op);
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
                let exec = self.exec_of(&op);
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
    pub(super) fn dump(&self, logs: &[Vec<Entry>]) {
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
    pub(super) fn check_model(
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
    pub(super) fn check_views(&self, c: usize, states: &[ServerVault], problems: &mut Vec<String>) {
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
    pub(super) fn check_isolation(
        &self,
        c: usize,
        timeline: &Timeline,
        problems: &mut Vec<String>,
    ) {
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
