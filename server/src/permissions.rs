//! The one place that decides what a member may do (the matrix of docs/protocol.md);
//! REST handlers and Socket.IO commands both go through [`authorize`].

use sqlx::{Any, Executor};
use syncscript_protocol::Role;

use crate::error::AppError;

/// What a request wants to do with a vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read the vault, its sources, members and events; join its room.
    Read,
    /// Create, update or delete sources.
    EditSources,
    /// Add or remove members, change roles, rename or delete the vault.
    Manage,
}

/// Whether `role` may do `action`.
pub fn allows(role: Role, action: Action) -> bool {
    match action {
        Action::Read => true,
        Action::EditSources => matches!(role, Role::Owner | Role::Contributor),
        Action::Manage => role == Role::Owner,
    }
}

/// The caller's role in a live (not deleted) vault, if they are a member.
pub async fn member_role<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
    user_id: &str,
) -> Result<Option<Role>, AppError> {
    let membership = role_and_head(db, vault_id, user_id).await?;
    Ok(membership.map(|(role, _head)| role))
}

/// The user's role in a live vault and the vault's head seq, in one query
/// (`None` for a non-member, or a deleted vault).
pub async fn role_and_head<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
    user_id: &str,
) -> Result<Option<(Role, i64)>, AppError> {
    let row: Option<(String, i64)> = sqlx::query_as(
        r#"SELECT vu.role, v.event_seq FROM vault_users vu
           JOIN vaults v ON v.id = vu.vault_id
           WHERE vu.vault_id = $1 AND vu.user_id = $2 AND v.deleted_at IS NULL"#,
    )
    .bind(vault_id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    row.map(|(role, head)| Ok((parse_role(&role)?, head)))
        .transpose()
}

/// The caller's role if it allows `action`: a non-member gets 404 (the vault's
/// existence is not leaked), a member without the right 403.
pub async fn authorize<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
    user_id: &str,
    action: Action,
) -> Result<Role, AppError> {
    match member_role(db, vault_id, user_id).await? {
        None => Err(AppError::NotFound("Vault not found".into())),
        Some(role) if allows(role, action) => Ok(role),
        Some(_) => Err(AppError::insufficient_permissions()),
    }
}

/// A role read back from the database.
pub fn parse_role(raw: &str) -> Result<Role, AppError> {
    Role::parse(raw)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown role {raw:?} stored")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_design() {
        use Action::*;
        use Role::*;
        let expected = [
            (Owner, Read, true),
            (Owner, EditSources, true),
            (Owner, Manage, true),
            (Contributor, Read, true),
            (Contributor, EditSources, true),
            (Contributor, Manage, false),
            (Viewer, Read, true),
            (Viewer, EditSources, false),
            (Viewer, Manage, false),
        ];
        for (role, action, allowed) in expected {
            assert_eq!(allows(role, action), allowed, "{role} {action:?}");
        }
    }
}
