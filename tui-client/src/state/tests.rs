//! The catch-up rules of docs/protocol.md, fed as event sequences.

use super::*;
use syncscript_protocol::{Actor, EventMeta};

const VAULT: &str = "v1";

fn at(second: u32) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("2026-03-01T12:00:{second:02}Z"))
        .unwrap()
        .with_timezone(&Utc)
}

/// The follower's gap wait, on the terminal client's clock.
fn gap_wait() -> chrono::Duration {
    chrono::Duration::from_std(GAP_WAIT).unwrap()
}

fn source(id: &str, title: &str, second: u32) -> Source {
    Source {
        id: id.into(),
        vault_id: VAULT.into(),
        title: title.into(),
        file_url: format!("https://example.org/{id}.pdf"),
        created_by: "u1".into(),
        created_at: at(second).to_rfc3339(),
        updated_at: at(second).to_rfc3339(),
    }
}

fn event(seq: i64, kind: EventKind) -> VaultEvent {
    VaultEvent {
        meta: EventMeta {
            vault_id: VAULT.into(),
            seq,
            actor: Actor {
                user_id: "u2".into(),
                user_name: "Bo".into(),
                role: Role::Contributor,
            },
            timestamp: at(seq as u32).to_rfc3339(),
        },
        kind,
    }
}

fn created(seq: i64, id: &str, title: &str) -> VaultEvent {
    event(seq, EventKind::SourceCreated(source(id, title, seq as u32)))
}

fn updated(seq: i64, id: &str, title: &str) -> VaultEvent {
    event(seq, EventKind::SourceUpdated(source(id, title, seq as u32)))
}

fn deleted(seq: i64, id: &str) -> VaultEvent {
    event(
        seq,
        EventKind::SourceDeleted {
            source_id: id.into(),
        },
    )
}

/// A vault whose snapshot was taken at `seq` with the given sources.
fn vault(sources: Vec<Source>, seq: i64) -> VaultState {
    let mut vault = VaultState::new(VAULT, "Reading group", Role::Owner, "u1");
    vault.load_snapshot(SourceList { sources, seq }, at(0));
    vault
}

/// The table as `(id, title)` pairs, newest change first.
fn table(vault: &VaultState) -> Vec<(String, String)> {
    vault
        .sources()
        .into_iter()
        .map(|row| (row.source.id.clone(), row.source.title.clone()))
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(id, title)| (id.to_string(), title.to_string()))
        .collect()
}

#[test]
fn events_in_order_build_the_table() {
    let mut vault = vault(vec![source("s0", "Old", 0)], 0);
    for event in [
        created(1, "s1", "One"),
        created(2, "s2", "Two"),
        updated(3, "s1", "One, revised"),
        deleted(4, "s0"),
    ] {
        assert_eq!(vault.apply(event, at(10)), Applied::Applied);
    }
    assert_eq!(vault.applied_seq(), 4);
    assert_eq!(
        table(&vault),
        pairs(&[("s1", "One, revised"), ("s2", "Two")])
    );
    let log: Vec<_> = vault.activity().map(|a| (a.seq, a.action)).collect();
    assert_eq!(
        log,
        [(4, "deleted"), (3, "updated"), (2, "added"), (1, "added")]
    );
    assert_eq!(vault.activity().next().unwrap().subject, "Old");
}

#[test]
fn duplicated_events_are_ignored() {
    let mut vault = vault(vec![], 0);
    assert_eq!(
        vault.apply(created(1, "s1", "One"), at(1)),
        Applied::Applied
    );
    assert_eq!(vault.apply(deleted(2, "s1"), at(2)), Applied::Applied);
    // A replay of seq 1 after the delete must not bring the row back.
    assert_eq!(
        vault.apply(created(1, "s1", "One"), at(3)),
        Applied::Duplicate
    );
    assert_eq!(vault.apply(deleted(2, "s1"), at(3)), Applied::Duplicate);
    assert!(vault.is_empty());
    assert_eq!(vault.applied_seq(), 2);
    assert_eq!(vault.activity().count(), 2);
}

#[test]
fn events_already_in_the_snapshot_are_ignored() {
    let mut vault = vault(vec![source("s1", "One", 1)], 5);
    assert_eq!(
        vault.apply(created(4, "s9", "Gone"), at(6)),
        Applied::Duplicate
    );
    assert_eq!(
        vault.apply(created(5, "s1", "Stale"), at(6)),
        Applied::Duplicate
    );
    assert_eq!(table(&vault), pairs(&[("s1", "One")]));
}

#[test]
fn out_of_order_events_wait_for_the_missing_one() {
    let mut vault = vault(vec![], 0);
    assert_eq!(
        vault.apply(updated(3, "s1", "One, revised"), at(1)),
        Applied::Buffered
    );
    assert_eq!(
        vault.apply(created(2, "s2", "Two"), at(1)),
        Applied::Buffered
    );
    // Buffered twice is still a duplicate.
    assert_eq!(
        vault.apply(created(2, "s2", "Two"), at(1)),
        Applied::Duplicate
    );
    assert!(vault.is_empty());
    assert_eq!(vault.buffered(), 2);
    assert_eq!(vault.next_rejoin(), Some(at(1) + gap_wait()));

    assert_eq!(
        vault.apply(created(1, "s1", "One"), at(2)),
        Applied::Applied
    );
    assert_eq!(vault.applied_seq(), 3);
    assert_eq!(vault.buffered(), 0);
    assert_eq!(vault.next_rejoin(), None);
    assert_eq!(
        table(&vault),
        pairs(&[("s1", "One, revised"), ("s2", "Two")])
    );
}

#[test]
fn a_gap_stays_open_until_the_rejoin_replays_it() {
    let mut vault = vault(vec![], 0);
    vault.apply(created(1, "s1", "One"), at(1));
    // seq 2 and 3 were lost; 4 arrives live.
    assert_eq!(
        vault.apply(created(4, "s4", "Four"), at(2)),
        Applied::Buffered
    );
    assert_eq!(vault.applied_seq(), 1, "the rejoin asks since 1");
    assert_eq!(vault.next_rejoin(), Some(at(2) + gap_wait()));
    let rejoin = vault.due(at(4)).expect("behind for the gap wait");
    assert_eq!((rejoin.since, rejoin.attempt), (1, 1));
    assert_eq!(vault.next_rejoin(), Some(at(4) + gap_wait()), "waits again");

    // The replay after `vault:join {since: 1}`: 2, 3 and 4 again.
    vault.apply(created(2, "s2", "Two"), at(5));
    assert_eq!(
        vault.next_rejoin(),
        Some(at(4) + gap_wait()),
        "still waiting for 3"
    );
    vault.apply(deleted(3, "s1"), at(5));
    assert_eq!(
        vault.apply(created(4, "s4", "Four"), at(5)),
        Applied::Duplicate
    );
    assert_eq!(vault.applied_seq(), 4);
    assert_eq!(vault.next_rejoin(), None);
    assert_eq!(table(&vault), pairs(&[("s4", "Four"), ("s2", "Two")]));
}

#[test]
fn a_resync_snapshot_replaces_the_table_and_keeps_later_events() {
    let mut vault = vault(vec![source("s1", "One", 1)], 1);
    vault.apply(created(2, "s2", "Two"), at(2));
    // Far behind: 3..=9 are missing, 10 and 11 arrive live.
    vault.apply(created(10, "s10", "Ten"), at(3));
    vault.apply(deleted(11, "s3"), at(3));
    assert_eq!(vault.buffered(), 2);

    // `vault:resync` → the snapshot at seq 10 (s1 deleted, s3 added
    // meanwhile, s10 already in it).
    vault.load_snapshot(
        SourceList {
            sources: vec![
                source("s2", "Two", 2),
                source("s3", "Three", 3),
                source("s10", "Ten", 10),
            ],
            seq: 10,
        },
        at(4),
    );
    assert_eq!(vault.applied_seq(), 11, "seq 11 applied after the snapshot");
    assert_eq!(vault.buffered(), 0);
    assert_eq!(vault.next_rejoin(), None);
    assert_eq!(table(&vault), pairs(&[("s10", "Ten"), ("s2", "Two")]));
}

#[test]
fn history_fills_the_activity_log_without_changing_the_table() {
    let mut vault = vault(vec![source("s2", "Two", 2)], 3);
    let logged = |event: VaultEvent| LoggedEvent {
        seq: event.meta.seq,
        name: event.name().into(),
        actor: event.meta.actor.clone(),
        timestamp: event.meta.timestamp.clone(),
        payload: event.payload(),
    };
    vault.load_history(vec![
        logged(created(1, "s1", "One")),
        logged(created(2, "s2", "Two")),
        logged(deleted(3, "s1")),
        logged(created(4, "s4", "Not yet applied")),
    ]);
    let log: Vec<_> = vault
        .activity()
        .map(|a| (a.seq, a.action, a.subject.as_str()))
        .collect();
    assert_eq!(
        log,
        [
            (3, "deleted", "One"),
            (2, "added", "Two"),
            (1, "added", "One")
        ]
    );
    assert_eq!(table(&vault), pairs(&[("s2", "Two")]));
    assert_eq!(vault.applied_seq(), 3);
}

#[test]
fn events_of_another_vault_are_ignored() {
    let mut vault = vault(vec![], 0);
    let mut other = created(1, "s1", "Elsewhere");
    other.meta.vault_id = "v2".into();
    assert_eq!(vault.apply(other, at(1)), Applied::OtherVault);
    assert_eq!(vault.applied_seq(), 0);
}

#[test]
fn member_and_vault_events_update_names_role_and_end() {
    let mut vault = vault(vec![source("s1", "One", 1)], 0);
    vault.set_members(vec![Member {
        user_id: "u1".into(),
        email: "ada@example.org".into(),
        name: "Ada".into(),
        role: Role::Owner,
    }]);
    assert_eq!(vault.changed_by(vault.source("s1").unwrap()), "Ada");
    vault.apply(
        event(
            1,
            EventKind::MemberUpdated(Member {
                user_id: "u1".into(),
                email: "ada@example.org".into(),
                name: "Ada".into(),
                role: Role::Viewer,
            }),
        ),
        at(1),
    );
    assert_eq!(vault.role, Role::Viewer);
    vault.apply(
        event(
            2,
            EventKind::VaultUpdated(syncscript_protocol::VaultRef {
                id: VAULT.into(),
                name: "Renamed".into(),
            }),
        ),
        at(2),
    );
    assert_eq!(vault.name, "Renamed");
    vault.apply(event(3, EventKind::VaultDeleted), at(3));
    assert_eq!(vault.ended, Some(Ended::Deleted { by: "Bo".into() }));
}

#[test]
fn live_changes_remember_who_and_when() {
    let mut vault = vault(vec![], 0);
    vault.apply(created(1, "s1", "One"), at(7));
    let row = vault.source("s1").unwrap();
    assert_eq!(row.seen_change_at, Some(at(7)));
    assert_eq!(vault.changed_by(row), "Bo");
}

#[test]
fn the_filter_matches_title_or_url_ignoring_case() {
    let vault = vault(
        vec![
            source("s1", "Attention Is All", 1),
            source("s2", "Other", 2),
        ],
        0,
    );
    let ids = |filter: &str| -> Vec<String> {
        vault
            .filtered_sources(filter)
            .into_iter()
            .map(|row| row.source.id.clone())
            .collect()
    };
    assert_eq!(ids("attention"), ["s1"]);
    assert_eq!(ids("S2.PDF"), ["s2"]);
    assert_eq!(ids(""), ["s2", "s1"]);
}
