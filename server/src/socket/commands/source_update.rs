//! `source:update`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use syncscript_protocol::{SourceAck, UpdateSourceCommand, UpdateSourceRequest, commands};

use crate::domain::SourceId;
use crate::idempotency::{self, Key, Operation};
use crate::socket::command::Command;
use crate::sources::{self, SourceChanges};

/// `source:update`: as `PATCH /api/sources/{id}`.
pub async fn source_update<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_UPDATE,
            "{sourceId, title?, fileUrl?}",
            payload,
            |state, user, command: UpdateSourceCommand| async move {
                let input = UpdateSourceRequest {
                    title: command.title,
                    file_url: command.file_url,
                };
                let id = SourceId::parse(&command.source_id)?;
                let changes = SourceChanges::parse(&input)?;
                let key = Key::op_id(command.op_id.as_deref());
                let operation = Operation::SourceUpdate;
                let answer =
                    idempotency::run(&state, key, &user, operation, &id, &input, |claim| {
                        sources::update_source(&state, &user, &id, &changes, claim)
                    })
                    .await?;
                Ok(SourceAck {
                    source: answer.value,
                })
            },
        )
        .await;
}
