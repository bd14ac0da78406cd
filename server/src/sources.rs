//! Sources: the snapshot of a vault, and create / read / update / delete.
//! The mutations are service functions shared by the REST handlers and the
//! Socket.IO commands.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sqlx::AnyPool;
use syncscript_protocol::{
    CreateSourceRequest, ErrorBody, EventKind, Source, SourceList, SourceResponse,
    UpdateSourceRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::db;
use crate::domain::{FileUrl, SourceId, Title, VaultId};
use crate::error::{AppError, Json, Path};
use crate::events::{self, Mutation};
use crate::fanout::identity::SessionUser;
use crate::idempotency::{self, Claim, IdempotencyKey, Operation};
use crate::permissions::{self, Action};
use crate::state::AppState;

/// The source routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sources, create_source_route))
        .routes(routes!(
            get_source,
            update_source_route,
            delete_source_route
        ))
}

const SOURCE_COLUMNS: &str = "id, vault_id, title, file_url, created_by, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: String,
    vault_id: String,
    title: String,
    file_url: String,
    created_by: String,
    created_at: String,
    updated_at: String,
}

impl From<SourceRow> for Source {
    fn from(row: SourceRow) -> Source {
        Source {
            id: row.id,
            vault_id: row.vault_id,
            title: row.title,
            file_url: row.file_url,
            created_by: row.created_by,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A new source's fields, validated.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub title: Title,
    pub file_url: FileUrl,
}

impl NewSource {
    pub fn parse(input: &CreateSourceRequest) -> Result<NewSource, AppError> {
        Ok(NewSource {
            title: Title::parse(&input.title)?,
            file_url: FileUrl::parse(&input.file_url)?,
        })
    }
}

/// The fields an update changes, validated: at least one.
#[derive(Debug, Clone)]
pub struct SourceChanges {
    pub title: Option<Title>,
    pub file_url: Option<FileUrl>,
}

impl SourceChanges {
    pub fn parse(input: &UpdateSourceRequest) -> Result<SourceChanges, AppError> {
        if input.title.is_none() && input.file_url.is_none() {
            return Err(AppError::validation(
                "title",
                "give at least one of title and fileUrl",
            ));
        }
        Ok(SourceChanges {
            title: input.title.as_deref().map(Title::parse).transpose()?,
            file_url: input.file_url.as_deref().map(FileUrl::parse).transpose()?,
        })
    }
}

/// Creates a source in a vault (owner, contributor); `source:created`.
pub async fn create_source(
    state: &AppState,
    user: &SessionUser,
    vault_id: &VaultId,
    input: &NewSource,
    claim: Option<Claim>,
) -> Result<Source, AppError> {
    let mut mutation = Mutation::begin(state, vault_id, user, Action::EditSources).await?;
    let now = db::now();
    let row: SourceRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        r#"INSERT INTO sources (id, vault_id, title, file_url, created_by, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6)
           RETURNING {SOURCE_COLUMNS}"#
    )))
    .bind(db::new_id())
    .bind(vault_id.as_str())
    .bind(&*input.title)
    .bind(&*input.file_url)
    .bind(&user.id)
    .bind(&now)
    .fetch_one(mutation.conn())
    .await?;
    let source = Source::from(row);
    mutation.remember(claim.as_ref(), &source)?;
    mutation
        .commit(state, EventKind::SourceCreated(source.clone()))
        .await?;
    Ok(source)
}

/// The vault a live source belongs to; 404 when there is none.
pub async fn vault_of(db: &AnyPool, source_id: &str) -> Result<String, AppError> {
    let row: Option<(String,)> = sqlx::query_as(
        r#"SELECT s.vault_id FROM sources s JOIN vaults v ON v.id = s.vault_id
           WHERE s.id = $1 AND v.deleted_at IS NULL"#,
    )
    .bind(source_id)
    .fetch_optional(db)
    .await?;
    row.map(|(vault_id,)| vault_id).ok_or_else(source_not_found)
}

fn source_not_found() -> AppError {
    AppError::NotFound("Source not found".into())
}

/// A non-member must not learn that the source exists.
fn hide_vault(error: AppError) -> AppError {
    match error {
        AppError::NotFound(_) => source_not_found(),
        other => other,
    }
}

/// Updates a source's title and/or URL (owner, contributor); `source:updated`.
pub async fn update_source(
    state: &AppState,
    user: &SessionUser,
    source_id: &SourceId,
    changes: &SourceChanges,
    claim: Option<Claim>,
) -> Result<Source, AppError> {
    let vault_id = vault_of(&state.db, source_id).await?;
    let mut mutation = Mutation::begin(state, &vault_id, user, Action::EditSources)
        .await
        .map_err(hide_vault)?;
    let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        r#"UPDATE sources SET title = COALESCE($1, title), file_url = COALESCE($2, file_url),
               updated_at = $3
           WHERE id = $4 AND vault_id = $5
           RETURNING {SOURCE_COLUMNS}"#
    )))
    .bind(changes.title.as_deref())
    .bind(changes.file_url.as_deref())
    .bind(db::now())
    .bind(source_id.as_str())
    .bind(&vault_id)
    .fetch_optional(mutation.conn())
    .await?;
    let Some(row) = row else {
        return Err(mutation.refuse(source_not_found()).await);
    };
    let source = Source::from(row);
    mutation.remember(claim.as_ref(), &source)?;
    mutation
        .commit(state, EventKind::SourceUpdated(source.clone()))
        .await?;
    Ok(source)
}

/// Deletes a source (owner, contributor); `source:deleted`.
pub async fn delete_source(
    state: &AppState,
    user: &SessionUser,
    source_id: &SourceId,
    claim: Option<Claim>,
) -> Result<String, AppError> {
    let vault_id = vault_of(&state.db, source_id).await?;
    let mut mutation = Mutation::begin(state, &vault_id, user, Action::EditSources)
        .await
        .map_err(hide_vault)?;
    let deleted = sqlx::query("DELETE FROM sources WHERE id = $1 AND vault_id = $2")
        .bind(source_id.as_str())
        .bind(&vault_id)
        .execute(mutation.conn())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(mutation.refuse(source_not_found()).await);
    }
    let source_id = source_id.to_string();
    mutation.remember(claim.as_ref(), &source_id)?;
    mutation
        .commit(
            state,
            EventKind::SourceDeleted {
                source_id: source_id.clone(),
            },
        )
        .await?;
    Ok(source_id)
}

/// The vault's sources, oldest first, with the seq of the snapshot.
///
/// The head is read before the rows, so the rows are at least as new as the
/// seq; a client that joins with `since = seq` may be replayed an event it
/// already has, which applying by id makes harmless.
#[utoipa::path(get, path = "/api/vaults/{id}/sources", tag = "sources",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id")),
    responses(
        (status = 200, description = "Snapshot and its seq", body = SourceList),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_sources(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<SourceList>, AppError> {
    let id = VaultId::parse(&id)?;
    permissions::authorize(&state.db, &id, &session.user.id, Action::Read).await?;
    let mut tx = state.db.begin().await?;
    let seq = events::head(&mut *tx, &id).await?;
    let rows: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM sources WHERE vault_id = $1 ORDER BY created_at, id"
    )))
    .bind(id.as_str())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Json(SourceList {
        sources: rows.into_iter().map(Source::from).collect(),
        seq,
    }))
}

/// Adds a source to a vault.
#[utoipa::path(post, path = "/api/vaults/{id}/sources", tag = "sources",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = CreateSourceRequest,
    responses(
        (status = 201, description = "Created", body = SourceResponse),
        (status = 403, description = "Viewer", body = ErrorBody),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
        (status = 422, description = "Invalid title or fileUrl", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn create_source_route(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<CreateSourceRequest>,
) -> Result<Response, AppError> {
    let vault_id = VaultId::parse(&id)?;
    let source = NewSource::parse(&input)?;
    let user = &session.user;
    let operation = Operation::SourceCreate;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        operation,
        &vault_id,
        &input,
        |claim| create_source(&state, user, &vault_id, &source, claim),
    )
    .await?;
    Ok(answer.respond(StatusCode::CREATED, |source| SourceResponse { source }))
}

/// One source.
#[utoipa::path(get, path = "/api/sources/{id}", tag = "sources",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Source id")),
    responses(
        (status = 200, description = "The source", body = SourceResponse),
        (status = 404, description = "No such source, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn get_source(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<SourceResponse>, AppError> {
    let id = SourceId::parse(&id)?;
    let vault_id = vault_of(&state.db, &id).await?;
    permissions::authorize(&state.db, &vault_id, &session.user.id, Action::Read)
        .await
        .map_err(hide_vault)?;
    let row: Option<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {SOURCE_COLUMNS} FROM sources WHERE id = $1"
    )))
    .bind(id.as_str())
    .fetch_optional(&state.db)
    .await?;
    let source = Source::from(row.ok_or_else(source_not_found)?);
    Ok(Json(SourceResponse { source }))
}

/// Changes a source's title and/or URL.
#[utoipa::path(patch, path = "/api/sources/{id}", tag = "sources",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Source id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = UpdateSourceRequest,
    responses(
        (status = 200, description = "Updated", body = SourceResponse),
        (status = 403, description = "Viewer", body = ErrorBody),
        (status = 404, description = "No such source, or not a member", body = ErrorBody),
        (status = 422, description = "Invalid or missing field", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn update_source_route(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<UpdateSourceRequest>,
) -> Result<Response, AppError> {
    let source_id = SourceId::parse(&id)?;
    let changes = SourceChanges::parse(&input)?;
    let user = &session.user;
    let operation = Operation::SourceUpdate;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        operation,
        &source_id,
        &input,
        |claim| update_source(&state, user, &source_id, &changes, claim),
    )
    .await?;
    Ok(answer.respond(StatusCode::OK, |source| SourceResponse { source }))
}

/// Deletes a source.
#[utoipa::path(delete, path = "/api/sources/{id}", tag = "sources",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Source id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Viewer", body = ErrorBody),
        (status = 404, description = "No such source, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn delete_source_route(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
) -> Result<Response, AppError> {
    let source_id = SourceId::parse(&id)?;
    let user = &session.user;
    let operation = Operation::SourceDelete;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        operation,
        &source_id,
        &(),
        |claim| delete_source(&state, user, &source_id, claim),
    )
    .await?;
    Ok(answer.respond_empty(StatusCode::NO_CONTENT))
}
