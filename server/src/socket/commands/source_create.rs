//! `source:create`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use syncscript_protocol::{CreateSourceCommand, CreateSourceRequest, SourceAck, commands};

use crate::error::parse_id;
use crate::idempotency::{self, Key, Operation};
use crate::socket::command::Command;
use crate::sources;

/// `source:create`: as `POST /api/vaults/{id}/sources`.
pub async fn source_create<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_CREATE,
            "{vaultId, title, fileUrl}",
            payload,
            |state, user, command: CreateSourceCommand| async move {
                let input = CreateSourceRequest {
                    title: command.title,
                    file_url: command.file_url,
                };
                let vault_id = command.vault_id;
                let target = parse_id(&vault_id, "vault")?;
                let key = Key::op_id(command.op_id.as_deref());
                let operation = Operation::SourceCreate;
                let answer =
                    idempotency::run(&state, key, &user, operation, &target, &input, |claim| {
                        sources::create_source(&state, &user, &vault_id, &input, claim)
                    })
                    .await?;
                Ok(SourceAck {
                    source: answer.value,
                })
            },
        )
        .await;
}
