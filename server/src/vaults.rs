//! Vaults: list, create, read, rename, delete; and the events log route.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use syncscript_protocol::{
    ErrorBody, EventKind, EventList, RenameVaultRequest, Role, Vault, VaultDetail, VaultInput,
    VaultList, VaultRef, VaultResponse, VaultSummary,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::db;
use crate::domain::{Name, Since, VaultId};
use crate::error::{AppError, Json, Path, Query};
use crate::events::{self, Mutation};
use crate::fanout::identity::SessionUser;
use crate::idempotency::{self, Claim, IdempotencyKey, Operation};
use crate::permissions::{self, Action};
use crate::state::AppState;

/// The vault routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_vaults, create_vault))
        .routes(routes!(get_vault, rename_vault, delete_vault))
        .routes(routes!(list_events))
}

#[derive(sqlx::FromRow)]
struct VaultRow {
    id: String,
    name: String,
    created_by: String,
    created_at: String,
}

impl From<VaultRow> for Vault {
    fn from(row: VaultRow) -> Vault {
        Vault {
            id: row.id,
            name: row.name,
            created_by: row.created_by,
            created_at: row.created_at,
        }
    }
}

/// The caller's vaults with their role and the vault's head seq.
#[utoipa::path(get, path = "/api/vaults", tag = "vaults",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's vaults", body = VaultList),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_vaults(
    State(state): State<AppState>,
    session: Authenticated,
) -> Result<Json<VaultList>, AppError> {
    let rows: Vec<(String, String, String, i64, String, String)> = sqlx::query_as(
        r#"SELECT v.id, v.name, vu.role, v.event_seq, v.created_by, v.created_at
           FROM vault_users vu JOIN vaults v ON v.id = vu.vault_id
           WHERE vu.user_id = $1 AND v.deleted_at IS NULL
           ORDER BY v.created_at, v.id"#,
    )
    .bind(&session.user.id)
    .fetch_all(&state.db)
    .await?;
    let vaults = rows
        .into_iter()
        .map(|(id, name, role, seq, created_by, created_at)| {
            Ok(VaultSummary {
                id,
                name,
                role: permissions::parse_role(&role)?,
                seq,
                created_by,
                created_at,
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(Json(VaultList { vaults }))
}

/// Creates a vault; the caller becomes its owner. Not an event: nobody else
/// can see the vault yet, and its seq starts at 0.
#[utoipa::path(post, path = "/api/vaults", tag = "vaults",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = VaultInput,
    responses(
        (status = 201, description = "Vault created", body = VaultResponse),
        (status = 422, description = "Invalid name", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn create_vault(
    State(state): State<AppState>,
    session: Authenticated,
    key: IdempotencyKey,
    Json(input): Json<VaultInput>,
) -> Result<Response, AppError> {
    let name = Name::parse("name", &input.name)?;
    let user = &session.user;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        Operation::VaultCreate,
        "",
        &input,
        |claim| insert_vault(&state, user, &name, claim),
    )
    .await?;
    Ok(answer.respond(StatusCode::CREATED, |vault| VaultResponse { vault }))
}

/// Inserts a vault owned by `user` (and binds `claim` to it).
async fn insert_vault(
    state: &AppState,
    user: &SessionUser,
    name: &str,
    claim: Option<Claim>,
) -> Result<Vault, AppError> {
    let now = db::now();
    let mut tx = db::Tx::begin(&state.writer).await?;
    let vault: VaultRow = sqlx::query_as(
        r#"INSERT INTO vaults (id, name, created_by, created_at)
           VALUES ($1, $2, $3, $4)
           RETURNING id, name, created_by, created_at"#,
    )
    .bind(db::new_id())
    .bind(name)
    .bind(&user.id)
    .bind(&now)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO vault_users (vault_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&vault.id)
    .bind(&user.id)
    .bind(Role::Owner.as_str())
    .bind(&now)
    .execute(&mut *tx)
    .await?;
    let vault = Vault::from(vault);
    if let Some(binding) = claim.map(|claim| claim.bind(&vault)).transpose()?
        && let Err(error) = idempotency::store(&mut tx, &binding).await
    {
        // The key was bound by a racing request: a refusal, rolled back
        // rather than dropped (see `db::Tx`).
        tx.rollback().await;
        return Err(error);
    }
    tx.commit().await?;
    Ok(vault)
}

/// A vault, the caller's role in it and its head seq.
#[utoipa::path(get, path = "/api/vaults/{id}", tag = "vaults",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id")),
    responses(
        (status = 200, description = "The vault", body = VaultDetail),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn get_vault(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<VaultDetail>, AppError> {
    let id = VaultId::parse(&id)?;
    let role = permissions::authorize(&state.db, &id, &session.user.id, Action::Read).await?;
    let (vault, seq) = fetch_vault(&state, &id).await?;
    Ok(Json(VaultDetail { vault, role, seq }))
}

async fn fetch_vault(state: &AppState, id: &str) -> Result<(Vault, i64), AppError> {
    let row: Option<(String, String, String, String, i64)> = sqlx::query_as(
        r#"SELECT id, name, created_by, created_at, event_seq FROM vaults
           WHERE id = $1 AND deleted_at IS NULL"#,
    )
    .bind(id)
    .fetch_optional(&state.db)
    .await?;
    let (id, name, created_by, created_at, seq) =
        row.ok_or_else(|| AppError::NotFound("Vault not found".into()))?;
    Ok((
        Vault {
            id,
            name,
            created_by,
            created_at,
        },
        seq,
    ))
}

/// Renames a vault (owner only); broadcasts `vault:updated`.
#[utoipa::path(patch, path = "/api/vaults/{id}", tag = "vaults",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = RenameVaultRequest,
    responses(
        (status = 200, description = "Renamed", body = VaultResponse),
        (status = 403, description = "Not an owner", body = ErrorBody),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
        (status = 422, description = "Invalid name", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn rename_vault(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<RenameVaultRequest>,
) -> Result<Response, AppError> {
    let id = VaultId::parse(&id)?;
    let name = input
        .name
        .as_deref()
        .ok_or_else(|| AppError::validation("name", "is required"))?;
    let name = Name::parse("name", name)?;
    let user = &session.user;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        Operation::VaultRename,
        &id,
        &input,
        |claim| rename(&state, user, &id, &name, claim),
    )
    .await?;
    Ok(answer.respond(StatusCode::OK, |vault| VaultResponse { vault }))
}

async fn rename(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    name: &str,
    claim: Option<Claim>,
) -> Result<Vault, AppError> {
    let mut mutation = Mutation::begin(state, id, user, Action::Manage).await?;
    let vault: VaultRow = sqlx::query_as(
        r#"UPDATE vaults SET name = $1 WHERE id = $2
           RETURNING id, name, created_by, created_at"#,
    )
    .bind(name)
    .bind(id)
    .fetch_one(mutation.conn())
    .await?;
    let vault = Vault::from(vault);
    let renamed = VaultRef {
        id: vault.id.clone(),
        name: vault.name.clone(),
    };
    mutation.remember(claim.as_ref(), &vault)?;
    mutation
        .commit(state, EventKind::VaultUpdated(renamed))
        .await?;
    Ok(vault)
}

/// Deletes a vault (owner only); broadcasts `vault:deleted`, then every
/// socket leaves the room.
#[utoipa::path(delete, path = "/api/vaults/{id}", tag = "vaults",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not an owner", body = ErrorBody),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn delete_vault(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
) -> Result<Response, AppError> {
    let id = VaultId::parse(&id)?;
    let user = &session.user;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        Operation::VaultDelete,
        &id,
        &(),
        |claim| delete(&state, user, &id, claim),
    )
    .await?;
    Ok(answer.respond_empty(StatusCode::NO_CONTENT))
}

async fn delete(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    claim: Option<Claim>,
) -> Result<(), AppError> {
    let mut mutation = Mutation::begin(state, id, user, Action::Manage).await?;
    sqlx::query("UPDATE vaults SET deleted_at = $1 WHERE id = $2")
        .bind(db::now())
        .bind(id)
        .execute(mutation.conn())
        .await?;
    mutation.remember(claim.as_ref(), &())?;
    mutation.commit(state, EventKind::VaultDeleted).await?;
    Ok(())
}

/// Paging of `GET /api/vaults/{id}/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with a seq greater than this (default 0).
    pub since: Option<i64>,
    /// At most this many events (default 1,000, at most 10,000).
    pub limit: Option<i64>,
}

/// Default page size of the events log.
pub const DEFAULT_EVENTS_LIMIT: i64 = 1_000;
/// Largest page size of the events log.
pub const MAX_EVENTS_LIMIT: i64 = 10_000;

/// The audit/replay log, oldest first, and the vault's head.
#[utoipa::path(get, path = "/api/vaults/{id}/events", tag = "vaults",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"), EventsQuery),
    responses(
        (status = 200, description = "A page of the log", body = EventList),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
        (status = 422, description = "Invalid since or limit", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_events(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<EventList>, AppError> {
    let id = VaultId::parse(&id)?;
    let since = Since::parse(query.since.unwrap_or(0))?;
    let limit = query.limit.unwrap_or(DEFAULT_EVENTS_LIMIT);
    if !(1..=MAX_EVENTS_LIMIT).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("must be 1-{MAX_EVENTS_LIMIT}"),
        ));
    }
    permissions::authorize(&state.db, &id, &session.user.id, Action::Read).await?;
    let mut tx = state.db.begin().await?;
    let seq = events::head(&mut *tx, &id).await?;
    let events = events::page(&mut *tx, &id, since.get(), limit).await?;
    tx.commit().await?;
    Ok(Json(EventList { events, seq }))
}
