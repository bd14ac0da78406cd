//! `source:create`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use syncscript_protocol::{CreateSourceCommand, CreateSourceRequest, SourceAck, commands};

use crate::domain::VaultId;
use crate::idempotency::{self, Key, Operation};
use crate::socket::command::Command;
use crate::sources::{self, NewSource};

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
                let vault_id = VaultId::parse(&command.vault_id)?;
                let source = NewSource::parse(&input)?;
                let key = Key::op_id(command.op_id.as_deref());
                let operation = Operation::SourceCreate;
                let answer =
                    idempotency::run(&state, key, &user, operation, &vault_id, &input, |claim| {
                        sources::create_source(&state, &user, &vault_id, &source, claim)
                    })
                    .await?;
                Ok(SourceAck {
                    source: answer.value,
                })
            },
        )
        .await;
}
