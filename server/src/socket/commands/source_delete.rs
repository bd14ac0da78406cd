//! `source:delete`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::TryData;
use syncscript_protocol::{DeleteAck, DeleteSourceCommand, commands};

use crate::domain::SourceId;
use crate::idempotency::{self, Key, Operation};
use crate::socket::command::Command;
use crate::sources;

/// `source:delete`: as `DELETE /api/sources/{id}`.
pub async fn source_delete<A: Adapter>(command: Command<A>, TryData(payload): TryData<Value>) {
    command
        .source_command(
            commands::SOURCE_DELETE,
            "{sourceId}",
            payload,
            |state, user, command: DeleteSourceCommand| async move {
                let id = SourceId::parse(&command.source_id)?;
                let key = Key::op_id(command.op_id.as_deref());
                let operation = Operation::SourceDelete;
                let answer = idempotency::run(&state, key, &user, operation, &id, &(), |claim| {
                    sources::delete_source(&state, &user, &id, claim)
                })
                .await?;
                Ok(DeleteAck {
                    source_id: answer.value,
                })
            },
        )
        .await;
}
