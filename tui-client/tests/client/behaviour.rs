//! What the app does with keys and network reports: which effects it asks
//! for, and how its state follows.

use chrono::Duration;
use crossterm::event::KeyCode;
use syncscript_client::ClientError;
use syncscript_protocol::{ErrorCode, EventKind, Joined, Resync, Role, SourceList};
use syncscript_tui::action::{Action, Command, Effect, NetEvent};
use syncscript_tui::app::{Connection, Mode};

use crate::fixtures::{
    BO, VAULT, event, feed, key, net, now, opened, reconnecting, source, type_text,
};

fn join(since: i64) -> Effect {
    Effect::Join {
        vault_id: VAULT.into(),
        since,
    }
}

fn created(seq: i64, id: &str) -> NetEvent {
    NetEvent::Event(Box::new(event(
        seq,
        BO,
        0,
        EventKind::SourceCreated(source(id, id, "https://example.org/x.pdf", "u-bo", 0)),
    )))
}

fn titles(app: &syncscript_tui::app::App) -> Vec<String> {
    app.vault
        .as_ref()
        .unwrap()
        .sources()
        .into_iter()
        .map(|row| row.source.id.clone())
        .collect()
}

#[test]
fn viewer_mutation_keys_explain_the_refusal() {
    let mut app = opened(Role::Viewer);
    for code in ['a', 'e', 'd'] {
        let effects = key(&mut app, KeyCode::Char(code));
        assert!(effects.is_empty());
        assert_eq!(app.mode, Mode::Normal);
        let status = app.status.clone().expect("a status line");
        assert!(status.is_error);
        assert!(
            status.text.to_lowercase().contains("viewers can't"),
            "{}",
            status.text
        );
    }
}

#[test]
fn every_reconnect_rejoins_since_the_last_applied_seq() {
    let mut app = reconnecting(Role::Owner);
    assert_eq!(app.connection, Connection::Reconnecting { attempt: 3 });
    assert!(!app.joined);
    // The Socket.IO session rejoins by itself on every open, from the
    // applied seq the event loop reports to it.
    assert!(net(&mut app, NetEvent::Opened).is_empty());
    assert_eq!(app.applied(), Some((VAULT, 5)));
    assert_eq!(app.connection, Connection::Connected);
}

#[test]
fn a_gap_that_does_not_fill_triggers_a_rejoin() {
    let mut app = opened(Role::Owner);
    assert!(net(&mut app, created(7, "s7")).is_empty());
    assert_eq!(app.vault.as_ref().unwrap().buffered(), 1);
    // Not yet: a concurrent publish may still bring seq 6.
    assert!(feed(&mut app, Action::Tick).is_empty());
    let later = now() + Duration::milliseconds(1100);
    assert_eq!(app.update(Action::Tick, later), [join(5)]);
    // The wait restarts: no second rejoin on the next tick.
    assert!(app.update(Action::Tick, later).is_empty());
    // The replay fills the gap.
    net(&mut app, created(6, "s6"));
    net(&mut app, created(7, "s7"));
    assert_eq!(app.vault.as_ref().unwrap().applied_seq(), 7);
    assert_eq!(app.vault.as_ref().unwrap().buffered(), 0);
}

#[test]
fn joined_behind_the_head_rejoins_then_reloads() {
    let mut app = opened(Role::Owner);
    let joined = || {
        NetEvent::Joined(Joined {
            vault_id: VAULT.into(),
            role: Role::Owner,
            seq: 9,
        })
    };
    // The replay ended at seq 5 while the head is 9: behind, and rejoined
    // once it has stayed so for the gap wait (an event of another node may
    // still be on its way).
    assert!(net(&mut app, joined()).is_empty());
    let tick = |app: &mut syncscript_tui::app::App, seconds: i64| {
        app.update(Action::Tick, now() + Duration::milliseconds(1100 * seconds))
    };
    assert_eq!(tick(&mut app, 1), [join(5)]);
    assert!(net(&mut app, joined()).is_empty());
    assert_eq!(tick(&mut app, 2), [join(5)]);
    assert!(net(&mut app, joined()).is_empty());
    // Rejoins did not help twice: the snapshot is reloaded.
    assert_eq!(
        tick(&mut app, 3),
        [Effect::LoadSnapshot {
            vault_id: VAULT.into()
        }]
    );
}

#[test]
fn resync_reloads_the_snapshot_then_joins_from_it() {
    let mut app = opened(Role::Owner);
    let effects = net(
        &mut app,
        NetEvent::Resync(Resync {
            vault_id: VAULT.into(),
            seq: 40,
        }),
    );
    assert_eq!(
        effects,
        [Effect::LoadSnapshot {
            vault_id: VAULT.into()
        }]
    );
    let effects = net(
        &mut app,
        NetEvent::SnapshotLoaded {
            vault_id: VAULT.into(),
            result: Ok(SourceList {
                sources: vec![source("s9", "Nine", "https://example.org/9.pdf", "u-bo", 5)],
                seq: 40,
            }),
        },
    );
    assert_eq!(effects, [join(40)]);
    assert_eq!(titles(&app), ["s9"]);
}

#[test]
fn adding_sends_the_command_and_closes_the_form_on_success() {
    let mut app = opened(Role::Contributor);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "Dynamo");
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "https://example.org/dynamo.pdf");
    let effects = key(&mut app, KeyCode::Enter);
    let [Effect::Send(command)] = effects.as_slice() else {
        panic!("one command: {effects:?}");
    };
    let command = command.clone();
    assert_eq!(
        command,
        Command::Create {
            vault_id: VAULT.into(),
            title: "Dynamo".into(),
            file_url: "https://example.org/dynamo.pdf".into(),
            op_id: command.op_id().clone(),
        }
    );
    assert!(matches!(&app.mode, Mode::Form(form) if form.sending));
    net(
        &mut app,
        NetEvent::CommandDone {
            command,
            result: Ok("s-new".into()),
        },
    );
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.selected.as_deref(), Some("s-new"));
}

/// The command of the single `Send` effect in `effects`.
fn sent(effects: &[Effect]) -> Command {
    match effects {
        [Effect::Send(command)] => command.clone(),
        other => panic!("one command: {other:?}"),
    }
}

#[test]
fn a_change_sent_again_after_no_answer_keeps_its_op_id() {
    let mut app = opened(Role::Contributor);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "Bigtable");
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "https://example.org/bigtable.pdf");
    let first = sent(&key(&mut app, KeyCode::Enter));

    // No ack: the server may have applied it.
    net(
        &mut app,
        NetEvent::CommandDone {
            command: first.clone(),
            result: Err(ClientError::AckTimeout {
                event: "source:create",
                after: std::time::Duration::from_secs(5),
            }),
        },
    );
    let status = app.status.clone().expect("a status line");
    assert!(status.text.starts_with("Not confirmed"), "{}", status.text);
    assert!(matches!(&app.mode, Mode::Form(form) if !form.sending && form.error.is_some()));

    // Enter again: the same change, the same opId.
    let again = sent(&key(&mut app, KeyCode::Enter));
    assert_eq!(again, first);

    // A refusal is an answer: the next change gets a new opId.
    net(
        &mut app,
        NetEvent::CommandDone {
            command: again.clone(),
            result: Err(ClientError::Rejected(syncscript_protocol::ErrorDetail {
                code: ErrorCode::Validation,
                message: "title: must be 1-500 characters".into(),
            })),
        },
    );
    assert!(app.unanswered.is_none());
    let third = sent(&key(&mut app, KeyCode::Enter));
    assert!(third.same_change(&first));
    assert_ne!(third.op_id(), first.op_id());

    // Another change after no answer gets its own opId.
    net(
        &mut app,
        NetEvent::CommandDone {
            command: third.clone(),
            result: Err(ClientError::NotConnected),
        },
    );
    key(&mut app, KeyCode::Char('!'));
    let edited = sent(&key(&mut app, KeyCode::Enter));
    assert!(!edited.same_change(&third));
    assert_ne!(edited.op_id(), third.op_id());
}

#[test]
fn a_delete_confirmed_again_after_no_answer_keeps_its_op_id() {
    let mut app = opened(Role::Owner);
    key(&mut app, KeyCode::Char('d'));
    let first = sent(&key(&mut app, KeyCode::Char('y')));
    net(
        &mut app,
        NetEvent::CommandDone {
            command: first.clone(),
            result: Err(ClientError::NotConnected),
        },
    );
    key(&mut app, KeyCode::Char('d'));
    let again = sent(&key(&mut app, KeyCode::Char('y')));
    assert_eq!(again, first);
}

#[test]
fn deleting_asks_first() {
    let mut app = opened(Role::Owner);
    key(&mut app, KeyCode::Char('d'));
    assert!(matches!(app.mode, Mode::ConfirmDelete { .. }));
    assert!(key(&mut app, KeyCode::Char('n')).is_empty());
    key(&mut app, KeyCode::Char('d'));
    let effects = key(&mut app, KeyCode::Char('y'));
    // Newest change first: s3 was updated 20 s ago.
    assert!(matches!(
        effects.as_slice(),
        [Effect::Send(Command::Delete { source_id, .. })] if source_id == "s3"
    ));
}

#[test]
fn nothing_is_sent_while_disconnected() {
    let mut app = reconnecting(Role::Owner);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "Offline");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(matches!(&app.mode, Mode::Form(form) if form.error.is_some()));
}

#[test]
fn a_refused_session_stops_the_socket_and_says_so() {
    let mut app = opened(Role::Owner);
    // The session stops by itself on this refusal: nothing left to do.
    let effects = net(&mut app, NetEvent::Refused(ErrorCode::Unauthorized));
    assert!(effects.is_empty());
    assert!(app.notice.is_some());
    // Reconnect reports after the refusal do not hide it.
    net(&mut app, NetEvent::Reconnecting);
    assert!(matches!(app.connection, Connection::Refused { .. }));
}

#[test]
fn switching_vaults_leaves_the_old_room() {
    let mut app = opened(Role::Owner);
    assert_eq!(key(&mut app, KeyCode::Char('v')), [Effect::LoadVaults]);
    net(
        &mut app,
        NetEvent::VaultsLoaded(Ok(vec![syncscript_protocol::VaultSummary {
            id: "other".into(),
            name: "Other".into(),
            role: Role::Viewer,
            seq: 0,
            created_by: "u-bo".into(),
            created_at: now().to_rfc3339(),
        }])),
    );
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        [
            Effect::Leave {
                vault_id: VAULT.into()
            },
            Effect::OpenVault {
                vault_id: "other".into()
            }
        ]
    );
}

#[test]
fn quitting() {
    let mut app = opened(Role::Owner);
    assert_eq!(key(&mut app, KeyCode::Char('q')), [Effect::Quit]);
    assert!(app.should_quit);
}

#[test]
fn a_socket_turned_away_for_another_reason_is_replaced() {
    let mut app = opened(Role::Owner);
    // The session replaces the socket by itself after this refusal.
    let effects = net(&mut app, NetEvent::Rejected("Invalid namespace".into()));
    assert!(effects.is_empty());
    assert_eq!(app.connection, Connection::Reconnecting { attempt: 1 });
    assert!(net(&mut app, NetEvent::Opened).is_empty());
    assert_eq!(app.connection, Connection::Connected);
    assert_eq!(app.applied(), Some((VAULT, 5)));
}

#[test]
fn switching_vaults_while_offline_still_leaves_the_old_room() {
    let mut app = reconnecting(Role::Owner);
    key(&mut app, KeyCode::Char('v'));
    net(
        &mut app,
        NetEvent::VaultsLoaded(Ok(vec![syncscript_protocol::VaultSummary {
            id: "other".into(),
            name: "Other".into(),
            role: Role::Viewer,
            seq: 0,
            created_by: "u-bo".into(),
            created_at: now().to_rfc3339(),
        }])),
    );
    // Left even while offline, so that the session stops rejoining it.
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        [
            Effect::Leave {
                vault_id: VAULT.into()
            },
            Effect::OpenVault {
                vault_id: "other".into()
            }
        ]
    );
}
