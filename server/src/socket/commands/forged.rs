//! Any other event a socket sends: a server event name is refused (never
//! relayed), an unknown one is a `BAD_REQUEST`.

use serde_json::Value;
use socketioxide::adapter::Adapter;
use socketioxide::extract::{Event, TryData};
use syncscript_protocol::{Role, command_for_server_event, is_server_event};

use crate::error::AppError;
use crate::fanout::identity::SessionUser;
use crate::permissions;
use crate::socket::command::{Command, Told};
use crate::sources;
use crate::state::AppState;

/// Any other event: a server event name is refused (never relayed), with
/// `FORBIDDEN` for a viewer of the payload's vault; an unknown one is a
/// `BAD_REQUEST`.
pub async fn other_event<A: Adapter>(
    command: Command<A>,
    Event(name): Event,
    TryData(payload): TryData<Value>,
) {
    let Some(command) = command.open(Told::AckOrEvent).await else {
        return;
    };
    let error = if is_server_event(&name) {
        let payload = payload.unwrap_or(Value::Null);
        match viewer_of_payload_vault(&command.state, command.user(), &payload).await {
            Ok(true) => AppError::insufficient_permissions(),
            Ok(false) => match command_for_server_event(&name) {
                Some(replacement) => AppError::BadRequest(format!(
                    "{name} is sent by the server only: use {replacement}"
                )),
                None => AppError::BadRequest(format!("{name} is sent by the server only")),
            },
            Err(error) => error,
        }
    } else {
        AppError::BadRequest(format!("unknown event {name:?}"))
    };
    command.fail(&error, Told::AckOrEvent);
}

/// Whether the sender is a viewer of the vault a (forged) payload names,
/// through `vaultId`, `source.vaultId` or `sourceId`.
async fn viewer_of_payload_vault(
    state: &AppState,
    user: &SessionUser,
    payload: &Value,
) -> Result<bool, AppError> {
    let named = payload
        .get("vaultId")
        .or_else(|| payload.get("source").and_then(|s| s.get("vaultId")))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let vault_id = match (named, payload.get("sourceId").and_then(Value::as_str)) {
        (Some(vault_id), _) => vault_id,
        (None, Some(source_id)) => match sources::vault_of(&state.db, source_id).await {
            Ok(vault_id) => vault_id,
            Err(AppError::NotFound(_)) => return Ok(false),
            Err(error) => return Err(error),
        },
        (None, None) => return Ok(false),
    };
    let role = permissions::member_role(&state.db, &vault_id, &user.id).await?;
    Ok(role == Some(Role::Viewer))
}
