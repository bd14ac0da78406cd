//! The whole permission matrix of docs/protocol.md: each role, a non-member and an
//! anonymous caller × every vault action, over REST.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::socket::{SocketBuilder, WAIT};
use syncscript_protocol::Role;

use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, Team, TestApp, TestUser};

on_both_backends!(permission_matrix, any_member_can_leave_but_the_last_owner);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Owner,
    Contributor,
    Viewer,
    Outsider,
    Anonymous,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    ReadVault,
    ListSources,
    ListMembers,
    ListEvents,
    ReadSource,
    CreateSource,
    UpdateSource,
    DeleteSource,
    AddMember,
    ChangeRole,
    RemoveMember,
    RenameVault,
    DeleteVault,
}

const ACTS: [Act; 13] = [
    Act::ReadVault,
    Act::ListSources,
    Act::ListMembers,
    Act::ListEvents,
    Act::ReadSource,
    Act::CreateSource,
    Act::UpdateSource,
    Act::DeleteSource,
    Act::AddMember,
    Act::ChangeRole,
    Act::RemoveMember,
    Act::RenameVault,
    Act::DeleteVault,
];

fn expected(caller: Caller, act: Act) -> StatusCode {
    let read = matches!(
        act,
        Act::ReadVault | Act::ListSources | Act::ListMembers | Act::ListEvents | Act::ReadSource
    );
    let edit = matches!(
        act,
        Act::CreateSource | Act::UpdateSource | Act::DeleteSource
    );
    let allowed = match caller {
        Caller::Owner => true,
        Caller::Contributor => read || edit,
        Caller::Viewer => read,
        Caller::Outsider | Caller::Anonymous => false,
    };
    match caller {
        Caller::Anonymous => StatusCode::UNAUTHORIZED,
        Caller::Outsider => StatusCode::NOT_FOUND,
        _ if !allowed => StatusCode::FORBIDDEN,
        _ => success(act),
    }
}

fn success(act: Act) -> StatusCode {
    match act {
        Act::CreateSource | Act::AddMember => StatusCode::CREATED,
        Act::DeleteSource | Act::RemoveMember | Act::DeleteVault => StatusCode::NO_CONTENT,
        _ => StatusCode::OK,
    }
}

/// Performs `act` as `caller` on fresh targets (so a destructive action
/// never spoils the next check); returns the status, the body and how many
/// events the call itself logged.
async fn perform(
    app: &TestApp,
    team: &Team,
    caller: Option<&TestUser>,
    act: Act,
    n: usize,
) -> (StatusCode, Value, usize) {
    let owner = &team.owner;
    let mut vault_id = team.vault.id.clone();
    if act == Act::DeleteVault {
        let vault = app.create_vault(owner, "Doomed").await;
        app.add_member(owner, &vault.id, &team.contributor, Role::Contributor)
            .await;
        app.add_member(owner, &vault.id, &team.viewer, Role::Viewer)
            .await;
        vault_id = vault.id;
    }
    let source_id = match act {
        Act::ReadSource | Act::UpdateSource | Act::DeleteSource => {
            Some(app.create_source(owner, &vault_id, "Target").await.id)
        }
        _ => None,
    };
    let target = match act {
        Act::AddMember | Act::ChangeRole | Act::RemoveMember => {
            let extra = app.register(&format!("extra{n}")).await;
            if act != Act::AddMember {
                app.add_member(owner, &vault_id, &extra, Role::Viewer).await;
            }
            Some(extra)
        }
        _ => None,
    };
    let v = &vault_id;
    let (method, path, body): (Method, String, Option<Value>) = match act {
        Act::ReadVault => (Method::GET, format!("/api/vaults/{v}"), None),
        Act::ListSources => (Method::GET, format!("/api/vaults/{v}/sources"), None),
        Act::ListMembers => (Method::GET, format!("/api/vaults/{v}/members"), None),
        Act::ListEvents => (Method::GET, format!("/api/vaults/{v}/events"), None),
        Act::ReadSource => (
            Method::GET,
            format!("/api/sources/{}", source_id.clone().unwrap_or_default()),
            None,
        ),
        Act::CreateSource => (
            Method::POST,
            format!("/api/vaults/{v}/sources"),
            Some(json!({"title": "New", "fileUrl": "https://example.org/n.pdf"})),
        ),
        Act::UpdateSource => (
            Method::PATCH,
            format!("/api/sources/{}", source_id.clone().unwrap_or_default()),
            Some(json!({"title": "Renamed"})),
        ),
        Act::DeleteSource => (
            Method::DELETE,
            format!("/api/sources/{}", source_id.clone().unwrap_or_default()),
            None,
        ),
        Act::AddMember => (
            Method::POST,
            format!("/api/vaults/{v}/members"),
            Some(json!({"email": target.as_ref().map(|t| t.email.clone()), "role": "viewer"})),
        ),
        Act::ChangeRole => (
            Method::PATCH,
            format!(
                "/api/vaults/{v}/members/{}",
                target.as_ref().map(|t| t.id.clone()).unwrap_or_default()
            ),
            Some(json!({"role": "contributor"})),
        ),
        Act::RemoveMember => (
            Method::DELETE,
            format!(
                "/api/vaults/{v}/members/{}",
                target.as_ref().map(|t| t.id.clone()).unwrap_or_default()
            ),
            None,
        ),
        Act::RenameVault => (
            Method::PATCH,
            format!("/api/vaults/{v}"),
            Some(json!({"name": "Renamed"})),
        ),
        Act::DeleteVault => (Method::DELETE, format!("/api/vaults/{v}"), None),
    };
    let before = app.logged_seqs(&vault_id).await.len();
    let (status, answer) = app.call(method, &path, caller, body).await;
    let after = app.logged_seqs(&vault_id).await.len();
    (status, answer, after - before)
}

async fn permission_matrix(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let callers = [
        (Caller::Owner, Some(&team.owner)),
        (Caller::Contributor, Some(&team.contributor)),
        (Caller::Viewer, Some(&team.viewer)),
        (Caller::Outsider, Some(&team.outsider)),
        (Caller::Anonymous, None),
    ];
    let mut n = 0;
    for (caller, user) in callers {
        for act in ACTS {
            n += 1;
            let (status, body, logged) = perform(&app, &team, user, act, n).await;
            let want = expected(caller, act);
            assert_eq!(status, want, "{caller:?} {act:?}: {body}");
            if !want.is_success() {
                let code = body["error"]["code"].as_str().unwrap_or_default();
                let expected_code = match want {
                    StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
                    StatusCode::NOT_FOUND => "NOT_FOUND",
                    _ => "FORBIDDEN",
                };
                assert_eq!(code, expected_code, "{caller:?} {act:?}: {body}");
                if want == StatusCode::FORBIDDEN {
                    assert_eq!(body["error"]["message"], "Insufficient permissions");
                }
                assert_eq!(
                    logged, 0,
                    "{caller:?} {act:?} was refused but logged an event"
                );
            } else {
                let reads = matches!(
                    act,
                    Act::ReadVault
                        | Act::ListSources
                        | Act::ListMembers
                        | Act::ListEvents
                        | Act::ReadSource
                );
                assert_eq!(
                    logged,
                    usize::from(!reads),
                    "{caller:?} {act:?}: one event per mutation"
                );
            }
        }
    }
}

/// Any member may leave a vault (`DELETE …/members/{their own id}`), so
/// that whoever added them by e-mail cannot keep them there; removing
/// someone else stays the owners' right, and the last owner cannot leave.
async fn any_member_can_leave_but_the_last_owner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let mut viewer_socket = SocketBuilder::new(&app)
        .token(&team.viewer.token)
        .connect()
        .await;
    viewer_socket.join_ok(v).await;
    let (status, body) = app
        .as_user(&team.contributor)
        .remove_member(v, &team.viewer.id)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "not someone else: {body}");
    for leaver in [&team.viewer, &team.contributor] {
        let (status, body) = app.as_user(leaver).remove_member(v, &leaver.id).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{}: {body}", leaver.name);
        let (status, _) = app.as_user(leaver).get_vault(v).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{} is out", leaver.name);
    }
    let removed = viewer_socket.next_event("vault:removed", WAIT).await;
    assert_eq!(removed["vaultId"], v.as_str(), "{removed}");
    let (status, body) = app
        .as_user(&team.owner)
        .remove_member(v, &team.owner.id)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the last owner stays: {body}");
    let log = app.event_log(&team.owner.token, v).await;
    let removals = log
        .iter()
        .filter(|event| event.name == "member:removed")
        .count();
    assert_eq!(removals, 2, "one member:removed per leave");
}
