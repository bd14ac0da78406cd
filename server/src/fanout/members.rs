//! Who may receive a vault's events: the live sessions of its members.
//! Read only when rooms cannot be trusted to be current (the other nodes
//! were unreachable, or Redis just came back).

use std::collections::HashSet;

use sqlx::{Any, Executor};

use crate::db;
use crate::error::AppError;

/// The live (not revoked, not expired) sessions of the members of a live
/// vault: the sockets that may receive its events.
pub async fn live_sessions<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
) -> Result<HashSet<String>, AppError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        r#"SELECT s.id FROM sessions s
           JOIN vault_users m ON m.user_id = s.user_id
           JOIN vaults v ON v.id = m.vault_id
           WHERE m.vault_id = $1 AND v.deleted_at IS NULL
             AND s.revoked_at IS NULL AND s.expires_at > $2"#,
    )
    .bind(vault_id)
    .bind(db::now())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}
