//! `vault:join`: check, join, check again, with the catch-up of what the
//! socket missed (see [`catch_up`](crate::socket::catch_up)).

use std::collections::HashSet;

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{SocketRef, TryData};
use syncscript_protocol::{Joined, signals, vault_room};

use crate::domain::Since;
use crate::error::AppError;
use crate::fanout::identity::SocketState;
use crate::fanout::names::{joining_room, watched_or_joining, watcher_room};
use crate::permissions;
use crate::socket::catch_up::{
    JoinFailure, Pace, SendFailure, access_denied, catch_up, replay, send_with_backpressure,
};
use crate::socket::command::{Command, Told};
use crate::socket::payload::parse_join;
use crate::state::AppState;

/// `vault:join`: membership checked, the socket joins the vault's rooms,
/// every event after `since` is replayed, then `vault:joined` (and the ack).
pub async fn join<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    let Some(command) = command.open(Told::EventAlways).await else {
        return;
    };
    let joined = join_vault(&command, payload).await;
    match joined {
        Ok(joined) => {
            command.me.watched.add(&joined.vault_id);
            command
                .state
                .fanout
                .request_presence(joined.vault_id.clone());
            // After a large catch-up the socket's buffer may be full: wait
            // for room rather than lose the answer.
            match send_with_backpressure(&command.socket, signals::VAULT_JOINED, &joined).await {
                Ok(()) => command.ok(&joined),
                Err(failure) => failure.log(),
            }
        }
        Err(JoinFailure::Refused(error)) => command.fail(&error, Told::EventAlways),
        Err(JoinFailure::Gone(failure)) => failure.log(),
    }
}

/// Check, join, check again. The first check keeps a non-member out of the
/// room altogether, so no event published meanwhile can reach it. The
/// second closes the race with a removal that commits between the first
/// check and the join: its eviction may have run before the socket was in
/// the room. A removal that commits after the join finds the socket in the
/// room and evicts it.
///
/// With `since`, the events the socket missed reach it before any live one:
/// the bulk of the catch-up is replayed before the socket joins the room,
/// and the tail (what was published meanwhile) under a hold of the vault's
/// publishing line, with the join, so that nothing is broadcast from this
/// node between the two (see [`line`](crate::fanout::line)).
async fn join_vault<A: Adapter>(
    command: &Command<A>,
    payload: Result<Value, impl std::fmt::Display>,
) -> Result<Joined, JoinFailure> {
    let (socket, state) = (&command.socket, &command.state);
    let (vault_id, since) = parse_join(payload)?;
    let user_id = command.user().id.clone();
    let max = state.config.limits.max_vaults_per_socket;
    // Vaults watched, and those whose join is under way (so that joins
    // sent at once cannot all pass the check).
    let rooms = socket.rooms();
    let watched: HashSet<&str> = rooms
        .iter()
        .filter_map(|room| watched_or_joining(room))
        .collect();
    if watched.len() >= max && !watched.contains(vault_id.as_str()) {
        return Err(AppError::RateLimited {
            message: format!("This socket already watches {max} vaults: leave one first"),
            retry_after: None,
        }
        .into());
    }
    // In the joining room before the first check: a removal that commits
    // from here on takes the socket out of it, and the catch-up stops.
    let joining = joining_room(&vault_id);
    socket.join(joining.clone());
    let since = since.map(Since::get);
    let joined = checked_join(socket, &command.me, state, &vault_id, &user_id, since).await;
    socket.leave(joining);
    joined
}

async fn checked_join<A: Adapter>(
    socket: &SocketRef<A>,
    me: &SocketState,
    state: &AppState,
    vault_id: &str,
    user_id: &str,
    since: Option<i64>,
) -> Result<Joined, JoinFailure> {
    let (vault_id, user_id) = (vault_id.to_owned(), user_id.to_owned());
    let (_, head) = permissions::role_and_head(&state.db, &vault_id, &user_id)
        .await?
        .ok_or_else(access_denied)?;
    let replayed = match since {
        Some(since) => catch_up(socket, me, state, &vault_id, since, head).await?,
        None => None,
    };
    let hold = match replayed {
        Some(_) => Some(state.fanout.lines.hold(&vault_id).await),
        None => None,
    };
    let rooms = [
        vault_room(&vault_id),
        watcher_room(&vault_id, &user_id, &socket.id.to_string()),
    ];
    // A failed rejoin leaves only the rooms this join entered: a socket
    // that already watched the vault stays until the removal that refused
    // the join evicts it, after its own `member:removed`.
    let entered: Vec<String> = {
        let already = socket.rooms();
        rooms
            .iter()
            .filter(|room| !already.iter().any(|joined| joined == *room))
            .cloned()
            .collect()
    };
    socket.join(rooms.clone());
    // A client that disconnected during the check has had its rooms
    // cleared already: joining now would leave entries for a gone socket.
    if !socket.connected() {
        socket.leave(rooms);
        return Err(JoinFailure::Gone(SendFailure::Closed));
    }
    let joined: Result<Joined, JoinFailure> = async {
        let (role, head) = permissions::role_and_head(&state.db, &vault_id, &user_id)
            .await?
            .ok_or_else(access_denied)?;
        if let (Some(hold), Some(replayed)) = (&hold, replayed) {
            let tail = replay(
                socket,
                me,
                state,
                &vault_id,
                replayed.cursor,
                hold.replay_bound(head),
                Pace::Immediate,
            )
            .await?;
            state.metrics.replayed(replayed.events + tail);
        }
        Ok(Joined {
            vault_id: vault_id.clone(),
            role,
            seq: head,
        })
    }
    .await;
    drop(hold);
    if joined.is_err() {
        socket.leave(entered);
    }
    joined
}
