//! `vault:leave`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use syncscript_protocol::{Left, signals, vault_room};

use crate::fanout::names::watcher_room;
use crate::socket::command::{Command, Told, emit};
use crate::socket::payload::parse_leave;

/// `vault:leave`: the socket leaves the vault's rooms; `vault:left`. Only
/// a socket that watched the vault changes its presence: leaving a vault
/// the socket does not watch is answered the same way and sends nothing to
/// anyone else.
pub async fn leave<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    let Some(command) = command.open(Told::EventAlways).await else {
        return;
    };
    match parse_leave(&payload) {
        Ok(vault_id) => {
            let room = vault_room(&vault_id);
            let watched = command.socket.rooms().iter().any(|joined| *joined == room);
            let socket_id = command.socket.id.to_string();
            command.socket.leave([
                room,
                watcher_room(&vault_id, &command.user().id, &socket_id),
            ]);
            command.me.watched.remove(&vault_id);
            let left = Left {
                vault_id: vault_id.to_string(),
            };
            emit(&command.socket, signals::VAULT_LEFT, &left);
            if watched {
                command.state.fanout.request_presence(left.vault_id.clone());
            }
            command.ok(&left);
        }
        Err(error) => command.fail(&error, Told::EventAlways),
    }
}
