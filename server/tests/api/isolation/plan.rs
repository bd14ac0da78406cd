//! The seeded plan: a random operation, and a round of them that can
//! run concurrently.

use super::*;

impl World {
    pub(super) fn vault_for(&mut self, user: usize, member_bias: f64) -> usize {
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
    pub(super) fn manager_of(&mut self, vault: usize) -> usize {
        let owners: Vec<usize> = (0..self.clients.len())
            .filter(|c| self.model.role(vault, self.clients[*c].user) == Some(Role::Owner))
            .collect();
        if !owners.is_empty() && self.rng.random_bool(0.75) {
            *owners.choose(&mut self.rng).expect("an owner")
        } else {
            self.rng.random_range(0..self.clients.len())
        }
    }

    pub(super) fn title(&mut self) -> String {
        self.next_title += 1;
        format!(
            "Paper {} ({})",
            self.next_title,
            self.rng.random_range(0..1000)
        )
    }

    pub(super) fn random_op(&mut self) -> Op {
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
    pub(super) fn plan_round(&mut self) -> Vec<Op> {
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
}
