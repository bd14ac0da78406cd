//! The Socket.IO session against the real server (in-process, SQLite): a
//! join replays from `since`, commands are acked, a restart is followed by a
//! rejoin from the applied seq, and only `UNAUTHORIZED` ends the session.

use std::time::Duration;

use syncscript_client::ClientError;
use syncscript_client::sequencer::Sequenced;
use syncscript_client::socket::{Incoming, SocketClient};
use syncscript_protocol::{
    CreateSourceCommand, ErrorCode, JoinRequest, SourceAck, commands, names,
};
use syncscript_testkit::{Backend, TestApp};
use tokio::sync::mpsc::UnboundedReceiver;

/// How long any one expected report may take.
const TIMEOUT: Duration = Duration::from_secs(15);

async fn next(incoming: &mut UnboundedReceiver<Incoming>) -> Incoming {
    tokio::time::timeout(TIMEOUT, incoming.recv())
        .await
        .expect("a report in time")
        .expect("the session is running")
}

/// Skips reports until `pick` takes one.
async fn until<T>(
    incoming: &mut UnboundedReceiver<Incoming>,
    mut pick: impl FnMut(Incoming) -> Option<T>,
) -> T {
    loop {
        if let Some(found) = pick(next(incoming).await) {
            return found;
        }
    }
}

async fn next_event(incoming: &mut UnboundedReceiver<Incoming>) -> Sequenced {
    until(incoming, |item| match item {
        Incoming::Event { event, .. } => Some(event),
        _ => None,
    })
    .await
}

fn create(vault_id: &str, title: &str, file_url: &str) -> CreateSourceCommand {
    CreateSourceCommand {
        vault_id: vault_id.into(),
        title: title.into(),
        file_url: file_url.into(),
        op_id: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_replays_since_and_commands_are_acked() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let (session, mut incoming) = SocketClient::start(&app.base, &team.contributor.token);
    session.join(&vault, 0);

    let joins = until(&mut incoming, |item| match item {
        Incoming::Opened { joins } => Some(joins),
        _ => None,
    })
    .await;
    assert_eq!(
        joins,
        [JoinRequest {
            vault_id: vault.clone(),
            since: Some(0)
        }]
    );
    // The team's two `member:added`, then the join's answer.
    for seq in [1, 2] {
        let event = next_event(&mut incoming).await;
        assert_eq!((event.name.as_str(), event.seq), (names::MEMBER_ADDED, seq));
    }
    let joined = until(&mut incoming, |item| match item {
        Incoming::Joined(joined) => Some(joined),
        _ => None,
    })
    .await;
    assert_eq!(joined.seq, 2);

    let ack: SourceAck = session
        .command(
            commands::SOURCE_CREATE,
            &create(&vault, "Paxos", "https://example.org/paxos.pdf"),
        )
        .await
        .unwrap();
    assert_eq!(ack.source.title, "Paxos");
    let event = next_event(&mut incoming).await;
    assert_eq!((event.name.as_str(), event.seq), (names::SOURCE_CREATED, 3));
    assert_eq!(event.payload["source"]["id"], ack.source.id.as_str());

    let refused = session
        .command::<SourceAck>(
            commands::SOURCE_CREATE,
            &create(&vault, "Paxos", "ftp://example.org/paxos.pdf"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Validation), "{refused}");

    session.leave(&vault);
    let left = until(&mut incoming, |item| match item {
        Incoming::Left(left) => Some(left),
        _ => None,
    })
    .await;
    assert_eq!(left.vault_id, vault);
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_the_vault_is_rejoined_from_the_applied_seq() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let (session, mut incoming) = SocketClient::start(&app.base, &team.viewer.token);
    session.join(&vault, 2);
    until(&mut incoming, |item| match item {
        Incoming::Joined(_) => Some(()),
        _ => None,
    })
    .await;
    app.create_source(&team.owner, &vault, "Before").await;
    assert_eq!(next_event(&mut incoming).await.seq, 3);
    session.applied(&vault, 3);

    app.restart().await;
    // Made as soon as the server is back, likely before the socket is.
    app.create_source(&team.owner, &vault, "After").await;
    let joins = until(&mut incoming, |item| match item {
        Incoming::Opened { joins } => Some(joins),
        _ => None,
    })
    .await;
    assert_eq!(joins[0].since, Some(3));
    // Nothing before it again: the replay starts after the applied seq.
    let event = next_event(&mut incoming).await;
    assert_eq!(event.seq, 4);
    assert_eq!(event.payload["source"]["title"], "After");
    session.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_session_is_refused_for_good() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (session, mut incoming) = SocketClient::start(&app.base, "not-a-token");
    let code = until(&mut incoming, |item| match item {
        Incoming::Refused(code) => Some(code),
        _ => None,
    })
    .await;
    assert_eq!(code, ErrorCode::Unauthorized);
    // The session has stopped: its channel closes and commands fail at once.
    let rest = tokio::time::timeout(TIMEOUT, incoming.recv()).await;
    assert!(matches!(rest, Ok(None)), "{rest:?}");
    let error = session
        .command::<SourceAck>(commands::SOURCE_CREATE, &create("v", "t", "u"))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Stopped), "{error}");
}
