//! A vault with a few sources, opened at a fixed clock.

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use syncscript_protocol::{
    Actor, EventKind, EventMeta, Joined, Member, Presence, PresenceEntry, Role, Source, SourceList,
    Vault, VaultDetail, VaultEvent,
};
use syncscript_tui::action::{Action, Effect, NetEvent, OpenedVault};
use syncscript_tui::app::{App, Identity};

pub const VAULT: &str = "0196f0a2-0000-7000-8000-000000000001";

/// The fixed "now" of every test.
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub fn ago(seconds: i64) -> DateTime<Utc> {
    now() - Duration::seconds(seconds)
}

pub fn source(id: &str, title: &str, url: &str, by: &str, seconds_ago: i64) -> Source {
    let at = ago(seconds_ago).to_rfc3339();
    Source {
        id: id.into(),
        vault_id: VAULT.into(),
        title: title.into(),
        file_url: url.into(),
        created_by: by.into(),
        created_at: at.clone(),
        updated_at: at,
    }
}

pub fn event(seq: i64, by: (&str, &str, Role), seconds_ago: i64, kind: EventKind) -> VaultEvent {
    VaultEvent {
        meta: EventMeta {
            vault_id: VAULT.into(),
            seq,
            actor: Actor {
                user_id: by.0.into(),
                user_name: by.1.into(),
                role: by.2,
            },
            timestamp: ago(seconds_ago).to_rfc3339(),
        },
        kind,
    }
}

pub const BO: (&str, &str, Role) = ("u-bo", "Bo Lindqvist", Role::Contributor);

fn member(id: &str, name: &str, role: Role) -> Member {
    Member {
        user_id: id.into(),
        email: format!("{}@example.org", name.to_lowercase().replace(' ', ".")),
        name: name.into(),
        role,
    }
}

/// Feeds one action at the fixed clock.
pub fn feed(app: &mut App, action: Action) -> Vec<Effect> {
    app.update(action, now())
}

pub fn net(app: &mut App, event: NetEvent) -> Vec<Effect> {
    feed(app, Action::Net(event))
}

pub fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    feed(app, Action::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// The snapshot the vault opens with, at seq 3.
pub fn snapshot() -> SourceList {
    SourceList {
        sources: vec![
            source(
                "s1",
                "Attention Is All You Need",
                "https://arxiv.org/pdf/1706.03762.pdf",
                "u-ada",
                3 * 86400,
            ),
            source(
                "s2",
                "A Relational Model of Data for Large Shared Data Banks",
                "https://www.seas.upenn.edu/~zives/03f/cis550/codd.pdf",
                "u-bo",
                5 * 3600,
            ),
            source(
                "s3",
                "Time, Clocks, and the Ordering of Events",
                "https://lamport.azurewebsites.net/pubs/time-clocks.pdf",
                "u-ada",
                40 * 60,
            ),
        ],
        seq: 3,
    }
}

/// An app of Ada (as `role`), with the vault opened, joined and two live
/// events applied.
pub fn opened(role: Role) -> App {
    let mut app = App::new(
        Identity {
            server: "http://127.0.0.1:3000".into(),
            user_id: "u-ada".into(),
            name: "Ada Lovelace".into(),
        },
        now(),
    );
    app.start(Some(VAULT.into()));
    net(&mut app, NetEvent::Opened);
    let opened = OpenedVault {
        detail: VaultDetail {
            vault: Vault {
                id: VAULT.into(),
                name: "Reading group".into(),
                created_by: "u-ada".into(),
                created_at: ago(7 * 86400).to_rfc3339(),
            },
            role,
            seq: 3,
        },
        members: vec![
            member("u-ada", "Ada Lovelace", role),
            member("u-bo", "Bo Lindqvist", Role::Contributor),
            member("u-cy", "Cy Ng", Role::Viewer),
        ],
        sources: snapshot(),
        history: Vec::new(),
    };
    let effects = net(&mut app, NetEvent::VaultOpened(Ok(Box::new(opened))));
    assert_eq!(
        effects,
        [Effect::Join {
            vault_id: VAULT.into(),
            since: 3
        }]
    );
    net(
        &mut app,
        NetEvent::Joined(Joined {
            vault_id: VAULT.into(),
            role,
            seq: 3,
        }),
    );
    net(
        &mut app,
        NetEvent::Presence(Presence {
            vault_id: VAULT.into(),
            present: vec![
                PresenceEntry {
                    user_id: "u-ada".into(),
                    user_name: "Ada Lovelace".into(),
                    role,
                    connections: 1,
                },
                PresenceEntry {
                    user_id: "u-bo".into(),
                    user_name: "Bo Lindqvist".into(),
                    role: Role::Contributor,
                    connections: 2,
                },
            ],
        }),
    );
    let mut revised = source(
        "s3",
        "Time, Clocks, and the Ordering of Events in a Distributed System",
        "https://lamport.azurewebsites.net/pubs/time-clocks.pdf",
        "u-ada",
        40 * 60,
    );
    revised.updated_at = ago(20).to_rfc3339();
    for event in [
        event(
            4,
            BO,
            95,
            EventKind::SourceCreated(source(
                "s4",
                "Paxos Made Simple",
                "https://lamport.azurewebsites.net/pubs/paxos-simple.pdf",
                "u-bo",
                95,
            )),
        ),
        event(5, BO, 20, EventKind::SourceUpdated(revised)),
    ] {
        net(&mut app, NetEvent::Event(Box::new(event)));
    }
    app
}

/// The same app after the connection dropped and three reconnects failed.
pub fn reconnecting(role: Role) -> App {
    let mut app = opened(role);
    net(&mut app, NetEvent::Closed);
    for _ in 0..3 {
        net(&mut app, NetEvent::Reconnecting);
    }
    app
}
