//! The model: which user holds which role in which vault, the sources
//! it expects, the log's membership by seq, and what the model says an
//! operation must be answered.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct ModelSource {
    pub(super) vault: usize,
    pub(super) title: String,
    pub(super) deleted: bool,
}

/// What the server should hold, from the answers of the operations.
pub(super) struct Model {
    /// Per vault: user index → role.
    pub(super) roles: Vec<BTreeMap<usize, Role>>,
    pub(super) names: Vec<String>,
    pub(super) sources: BTreeMap<String, ModelSource>,
    /// Source ids in creation order (ids made in the same millisecond do
    /// not sort in that order), for seeded choices.
    pub(super) created: Vec<String>,
    /// Per vault: (round, key) of every event a successful operation made.
    pub(super) expected: Vec<Vec<(usize, String)>>,
}

impl Model {
    pub(super) fn role(&self, vault: usize, user: usize) -> Option<Role> {
        self.roles[vault].get(&user).copied()
    }

    pub(super) fn owners(&self, vault: usize) -> usize {
        self.roles[vault]
            .values()
            .filter(|role| **role == Role::Owner)
            .count()
    }
}

/// The comparable part of a sequenced event.
pub(super) fn event_key(name: &str, actor: &str, detail: &str) -> String {
    format!("{name} by {actor}: {detail}")
}

pub(super) fn logged_key(name: &str, payload: &Value) -> String {
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
pub(super) type RoleChanges = Vec<(i64, Option<Role>)>;

/// Who was a member of each vault, with which role, after each seq: read
/// from the vaults' logs.
pub(super) struct Timeline {
    /// (vault, user id) → its role changes.
    pub(super) changes: HashMap<(usize, String), RoleChanges>,
}

impl Timeline {
    pub(super) fn new(vaults: &[Vault], logs: &[Vec<Entry>]) -> Timeline {
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
    pub(super) fn role_at(&self, vault: usize, user: &str, seq: i64) -> Option<Role> {
        let changes = self.changes.get(&(vault, user.to_owned()))?;
        let applied = changes.partition_point(|(at, _)| *at <= seq);
        applied.checked_sub(1).and_then(|last| changes[last].1)
    }
}

impl World {
    /// The roles `user` may have in `vault` while this round runs.
    pub(super) fn possible_roles(
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
    pub(super) fn expect(
        &self,
        op: &Op,
        pending: &HashMap<(usize, usize), Option<Role>>,
    ) -> BTreeSet<Answer> {
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
                // Any member may remove themselves (leave); removing
                // someone else is managing.
                let leaving = *removed == user && self.model.role(*vault, user).is_some();
                let refused = if leaving { None } else { manage(*vault) };
                let answer = refused.unwrap_or_else(|| match self.model.role(*vault, *removed) {
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
    pub(super) fn expect_rejoins(
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
    pub(super) fn pending_changes(&self, ops: &[Op]) -> HashMap<(usize, usize), Option<Role>> {
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
}
