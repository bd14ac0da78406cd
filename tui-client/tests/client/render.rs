//! What a person sees, as text snapshots of a `TestBackend`.

use crossterm::event::KeyCode;
use insta::assert_snapshot;
use syncscript_protocol::Role;
use syncscript_tui::action::NetEvent;
use syncscript_tui::ui::render_to_string;

use crate::fixtures::{key, net, opened, reconnecting, type_text};

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

fn role_name(role: Role) -> &'static str {
    role.as_str()
}

#[test]
fn connected_owner_and_viewer() {
    for role in [Role::Owner, Role::Viewer] {
        let app = opened(role);
        for (width, height) in SIZES {
            assert_snapshot!(
                format!("connected_{}_{width}x{height}", role_name(role)),
                render_to_string(&app, width, height)
            );
        }
    }
}

#[test]
fn reconnecting_owner_and_viewer() {
    for role in [Role::Owner, Role::Viewer] {
        let app = reconnecting(role);
        for (width, height) in SIZES {
            assert_snapshot!(
                format!("reconnecting_{}_{width}x{height}", role_name(role)),
                render_to_string(&app, width, height)
            );
        }
    }
}

#[test]
fn viewer_pressing_a_is_told_why() {
    let mut app = opened(Role::Viewer);
    key(&mut app, KeyCode::Char('a'));
    assert_snapshot!(render_to_string(&app, 80, 24));
}

#[test]
fn add_form_with_a_validation_error() {
    let mut app = opened(Role::Owner);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "Dynamo");
    key(&mut app, KeyCode::Tab);
    type_text(&mut app, "ftp://example.org/dynamo.pdf");
    let effects = key(&mut app, KeyCode::Enter);
    let Some(syncscript_tui::action::Effect::Send(command)) = effects.into_iter().next() else {
        panic!("Enter sends the command");
    };
    net(
        &mut app,
        NetEvent::CommandDone {
            command,
            result: Err(syncscript_protocol::ErrorDetail {
                code: syncscript_protocol::ErrorCode::Validation,
                message: "fileUrl must be an http(s) URL".into(),
            }
            .into()),
        },
    );
    assert_snapshot!(render_to_string(&app, 80, 24));
}

#[test]
fn delete_confirmation_and_filter() {
    let mut app = opened(Role::Owner);
    key(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "lamport");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('d'));
    assert_snapshot!(render_to_string(&app, 80, 24));
}

#[test]
fn help_for_a_viewer() {
    let mut app = opened(Role::Viewer);
    key(&mut app, KeyCode::Char('?'));
    assert_snapshot!(render_to_string(&app, 80, 24));
}

#[test]
fn removed_from_the_vault() {
    let mut app = opened(Role::Viewer);
    net(
        &mut app,
        NetEvent::Removed(syncscript_protocol::Removed {
            vault_id: crate::fixtures::VAULT.into(),
            reason: "removed by an owner".into(),
        }),
    );
    assert_snapshot!(render_to_string(&app, 80, 24));
}

#[test]
fn vault_picker() {
    let mut app = opened(Role::Owner);
    key(&mut app, KeyCode::Char('v'));
    net(
        &mut app,
        NetEvent::VaultsLoaded(Ok(vec![
            syncscript_protocol::VaultSummary {
                id: crate::fixtures::VAULT.into(),
                name: "Reading group".into(),
                role: Role::Owner,
                seq: 5,
                created_by: "u-ada".into(),
                created_at: crate::fixtures::ago(86400).to_rfc3339(),
            },
            syncscript_protocol::VaultSummary {
                id: "0196f0a2-0000-7000-8000-000000000002".into(),
                name: "Thesis".into(),
                role: Role::Viewer,
                seq: 120,
                created_by: "u-bo".into(),
                created_at: crate::fixtures::ago(86400).to_rfc3339(),
            },
        ])),
    );
    key(&mut app, KeyCode::Down);
    assert_snapshot!(render_to_string(&app, 80, 24));
}
