//! The live copy of one vault: its sources, the order of its events (the
//! catch-up rules of `syncscript_client::follower`: the last applied `seq`,
//! the events that arrived ahead of a missing one, the gap rule), the
//! members (to name people), who is watching, and the activity log.
//!
//! Everything here is pure and clock-free (the caller passes `now`), so the
//! catch-up rules of docs/protocol.md are tested by feeding event sequences.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use syncscript_client::follower::{Follower, GAP_WAIT, Rejoin};
use syncscript_client::sequencer::Offered;
use syncscript_protocol::{
    EventKind, Joined, LoggedEvent, Member, PresenceEntry, Role, Source, SourceList, VaultEvent,
};

/// Activity entries kept (the oldest are dropped first).
const ACTIVITY_LIMIT: usize = 200;

/// One line of the activity log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub seq: i64,
    /// When the server says it happened.
    pub at: Option<DateTime<Utc>>,
    pub actor: String,
    /// What happened, e.g. `added`, `deleted`, `added member`.
    pub action: &'static str,
    /// What it happened to (a source title, a member name, the vault name).
    pub subject: String,
}

/// One row of the sources table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRow {
    pub source: Source,
    /// Who made the last change, when an event told us; else the creator.
    pub changed_by: Option<String>,
    /// When this client saw it change live (for the brief highlight).
    pub seen_change_at: Option<DateTime<Utc>>,
}

/// What [`VaultState::apply`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event (and any buffered ones it unblocked) changed the table.
    Applied,
    /// `seq` was already applied: ignored.
    Duplicate,
    /// `seq` is ahead of the next expected one: kept until the gap fills.
    Buffered,
    /// The event is for another vault: ignored.
    OtherVault,
}

/// How the vault ended for this client, when it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    Deleted { by: String },
    Removed { reason: String },
}

/// The live state of the open vault.
#[derive(Debug, Clone, PartialEq)]
pub struct VaultState {
    pub vault_id: String,
    pub name: String,
    /// The user's own role (kept current by `member:updated`).
    pub role: Role,
    pub user_id: String,
    rows: HashMap<String, SourceRow>,
    /// The seq of the last event applied (or of the snapshot), the events
    /// received ahead of the next one, and the gap rule.
    follower: Follower<VaultEvent, DateTime<Utc>>,
    members: HashMap<String, Member>,
    pub presence: Vec<PresenceEntry>,
    activity: VecDeque<Activity>,
    pub ended: Option<Ended>,
}

impl VaultState {
    /// An empty vault, before its snapshot is loaded.
    pub fn new(vault_id: &str, name: &str, role: Role, user_id: &str) -> VaultState {
        let mut follower = Follower::new(GAP_WAIT);
        follower.follow(vault_id, 0);
        VaultState {
            vault_id: vault_id.to_owned(),
            name: name.to_owned(),
            role,
            user_id: user_id.to_owned(),
            rows: HashMap::new(),
            follower,
            members: HashMap::new(),
            presence: Vec::new(),
            activity: VecDeque::new(),
            ended: None,
        }
    }

    /// The seq of the last applied event: what a rejoin passes as `since`.
    pub fn applied_seq(&self) -> i64 {
        self.follower.last(&self.vault_id).unwrap_or_default()
    }

    /// Replaces the table with a snapshot taken at `list.seq`, drops the
    /// buffered events it already contains and applies those that follow.
    pub fn load_snapshot(&mut self, list: SourceList, now: DateTime<Utc>) {
        let previous = std::mem::take(&mut self.rows);
        self.rows = list
            .sources
            .into_iter()
            .map(|source| {
                // Keep what we knew about rows that did not change.
                let (changed_by, seen_change_at) = match previous.get(&source.id) {
                    Some(old) if old.source == source => {
                        (old.changed_by.clone(), old.seen_change_at)
                    }
                    _ => (None, None),
                };
                let row = SourceRow {
                    source,
                    changed_by,
                    seen_change_at,
                };
                (row.source.id.clone(), row)
            })
            .collect();
        let ready = self.follower.reset(&self.vault_id, list.seq, now);
        self.apply_ready(ready, now);
    }

    /// Replaces the member list (used to name the creators of rows).
    pub fn set_members(&mut self, members: Vec<Member>) {
        self.members = members
            .into_iter()
            .map(|member| (member.user_id.clone(), member))
            .collect();
    }

    /// Applies one sequenced event following the catch-up rules: in seq
    /// order, duplicates ignored, early ones buffered.
    pub fn apply(&mut self, event: VaultEvent, now: DateTime<Utc>) -> Applied {
        if event.meta.vault_id != self.vault_id {
            return Applied::OtherVault;
        }
        let seq = event.meta.seq;
        match self.follower.event(&self.vault_id, seq, event, now) {
            Some(Offered::Duplicate) => Applied::Duplicate,
            Some(Offered::Buffered) => Applied::Buffered,
            Some(Offered::Ready(ready)) => {
                self.apply_ready(ready, now);
                Applied::Applied
            }
            None => Applied::OtherVault,
        }
    }

    /// `vault:joined`: the join's replay is complete, so a head beyond what
    /// was applied is a gap.
    pub fn joined(&mut self, joined: &Joined, now: DateTime<Utc>) {
        self.follower.joined(joined, now);
    }

    /// The rejoin due at `now`, if the vault has been behind for the gap
    /// wait (its wait then starts again).
    pub fn due(&mut self, now: DateTime<Utc>) -> Option<Rejoin> {
        self.follower.due(now).pop()
    }

    /// When the next rejoin is due, if the vault is behind.
    pub fn next_rejoin(&self) -> Option<DateTime<Utc>> {
        self.follower.next_due()
    }

    /// Number of events waiting behind a missing seq.
    pub fn buffered(&self) -> usize {
        self.follower.buffered(&self.vault_id)
    }

    /// Applies events the follower released, in order.
    fn apply_ready(&mut self, ready: Vec<VaultEvent>, now: DateTime<Utc>) {
        for event in ready {
            self.apply_now(event, now);
        }
    }

    fn apply_now(&mut self, event: VaultEvent, now: DateTime<Utc>) {
        let meta = event.meta;
        let actor = meta.actor.user_name.clone();
        let (action, subject) = match event.kind {
            EventKind::SourceCreated(source) | EventKind::SourceUpdated(source) => {
                let action = if self.rows.contains_key(&source.id) {
                    "updated"
                } else {
                    "added"
                };
                let subject = source.title.clone();
                let row = SourceRow {
                    source,
                    changed_by: Some(actor.clone()),
                    seen_change_at: Some(now),
                };
                self.rows.insert(row.source.id.clone(), row);
                (action, subject)
            }
            EventKind::SourceDeleted { source_id } => {
                let subject = self
                    .rows
                    .remove(&source_id)
                    .map_or(source_id, |row| row.source.title);
                ("deleted", subject)
            }
            EventKind::MemberAdded(member) => {
                let subject = member.name.clone();
                self.members.insert(member.user_id.clone(), member);
                ("added member", subject)
            }
            EventKind::MemberUpdated(member) => {
                let subject = format!("{} → {}", member.name, member.role);
                if member.user_id == self.user_id {
                    self.role = member.role;
                }
                self.members.insert(member.user_id.clone(), member);
                ("changed role", subject)
            }
            EventKind::MemberRemoved(member) => {
                let subject = member.name.clone();
                self.members.remove(&member.user_id);
                ("removed member", subject)
            }
            EventKind::VaultUpdated(vault) => {
                self.name = vault.name.clone();
                ("renamed vault", vault.name)
            }
            EventKind::VaultDeleted => {
                self.ended = Some(Ended::Deleted { by: actor.clone() });
                ("deleted vault", self.name.clone())
            }
        };
        self.push_activity(Activity {
            seq: meta.seq,
            at: DateTime::parse_from_rfc3339(&meta.timestamp)
                .ok()
                .map(|at| at.with_timezone(&Utc)),
            actor,
            action,
            subject,
        });
    }

    /// Fills the activity log with what happened before the vault was
    /// opened (events already in the snapshot: nothing is applied).
    pub fn load_history(&mut self, events: Vec<LoggedEvent>) {
        // Titles of sources deleted since, as the log itself tells them.
        let mut titles: HashMap<String, String> = HashMap::new();
        for logged in events {
            let Ok(event) = VaultEvent::from_wire(&logged.name, &logged.payload) else {
                continue;
            };
            if event.meta.seq > self.applied_seq()
                || self.activity.iter().any(|a| a.seq == event.meta.seq)
            {
                continue;
            }
            let (action, subject) = match event.kind {
                EventKind::SourceCreated(source) => {
                    titles.insert(source.id, source.title.clone());
                    ("added", source.title)
                }
                EventKind::SourceUpdated(source) => {
                    titles.insert(source.id, source.title.clone());
                    ("updated", source.title)
                }
                EventKind::SourceDeleted { source_id } => {
                    let title = titles.get(&source_id).cloned().unwrap_or(source_id);
                    ("deleted", title)
                }
                EventKind::MemberAdded(member) => ("added member", member.name),
                EventKind::MemberUpdated(member) => {
                    ("changed role", format!("{} → {}", member.name, member.role))
                }
                EventKind::MemberRemoved(member) => ("removed member", member.name),
                EventKind::VaultUpdated(vault) => ("renamed vault", vault.name),
                EventKind::VaultDeleted => ("deleted vault", self.name.clone()),
            };
            self.push_activity(Activity {
                seq: event.meta.seq,
                at: DateTime::parse_from_rfc3339(&event.meta.timestamp)
                    .ok()
                    .map(|at| at.with_timezone(&Utc)),
                actor: event.meta.actor.user_name,
                action,
                subject,
            });
        }
    }

    fn push_activity(&mut self, activity: Activity) {
        if self.activity.len() == ACTIVITY_LIMIT {
            self.activity.pop_back();
        }
        self.activity.push_front(activity);
    }

    /// The activity log, newest first.
    pub fn activity(&self) -> impl Iterator<Item = &Activity> {
        self.activity.iter()
    }

    /// Every source, newest change first (ties by id, newest first).
    pub fn sources(&self) -> Vec<&SourceRow> {
        let mut rows: Vec<&SourceRow> = self.rows.values().collect();
        rows.sort_by(|a, b| {
            b.source
                .updated_at
                .cmp(&a.source.updated_at)
                .then_with(|| b.source.id.cmp(&a.source.id))
        });
        rows
    }

    /// The sources whose title or URL contains `filter` (case-insensitive).
    pub fn filtered_sources(&self, filter: &str) -> Vec<&SourceRow> {
        let needle = filter.to_lowercase();
        self.sources()
            .into_iter()
            .filter(|row| {
                needle.is_empty()
                    || row.source.title.to_lowercase().contains(&needle)
                    || row.source.file_url.to_lowercase().contains(&needle)
            })
            .collect()
    }

    /// One source by id.
    pub fn source(&self, source_id: &str) -> Option<&SourceRow> {
        self.rows.get(source_id)
    }

    /// Number of sources.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the vault has no source.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A person's display name: from the members, else the raw id.
    pub fn person(&self, user_id: &str) -> String {
        self.members
            .get(user_id)
            .map_or_else(|| user_id.to_owned(), |member| member.name.clone())
    }

    /// Who last changed a row, as a name.
    pub fn changed_by(&self, row: &SourceRow) -> String {
        row.changed_by
            .clone()
            .unwrap_or_else(|| self.person(&row.source.created_by))
    }
}

#[cfg(test)]
mod tests;
