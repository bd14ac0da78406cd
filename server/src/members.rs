//! Vault members: list, add, change role, remove. A vault always keeps at
//! least one owner, and a removed member's sockets are evicted at once.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sqlx::{AnyConnection, AnyPool};
use syncscript_protocol::{
    AddMemberRequest, ErrorBody, EventKind, Member, MemberList, MemberResponse, Role,
    UpdateMemberRequest,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Authenticated;
use crate::db;
use crate::domain::{UserId, VaultId, fold_email};
use crate::error::{AppError, Json, Path};
use crate::events::Mutation;
use crate::fanout::identity::SessionUser;
use crate::idempotency::{self, Claim, IdempotencyKey, Operation};
use crate::permissions::{self, Action};
use crate::state::AppState;

/// The member routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
}

fn parse_requested_role(raw: &str) -> Result<Role, AppError> {
    Role::parse(raw)
        .ok_or_else(|| AppError::validation("role", "must be owner, contributor or viewer"))
}

fn member_from_row(row: (String, String, String, String)) -> Result<Member, AppError> {
    let (user_id, email, name, role) = row;
    Ok(Member {
        user_id,
        email,
        name,
        role: permissions::parse_role(&role)?,
    })
}

async fn find_member(
    conn: &mut AnyConnection,
    vault_id: &str,
    user_id: &str,
) -> Result<Member, AppError> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        r#"SELECT vu.user_id, u.email, u.name, vu.role
           FROM vault_users vu JOIN users u ON u.id = vu.user_id
           WHERE vu.vault_id = $1 AND vu.user_id = $2"#,
    )
    .bind(vault_id)
    .bind(user_id)
    .fetch_optional(conn)
    .await?;
    member_from_row(row.ok_or_else(|| AppError::NotFound("Member not found".into()))?)
}

/// Refuses to leave the vault without an owner when `member` stops being one.
async fn keep_an_owner(
    conn: &mut AnyConnection,
    vault_id: &str,
    member: &Member,
) -> Result<(), AppError> {
    if member.role != Role::Owner {
        return Ok(());
    }
    let (owners,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM vault_users WHERE vault_id = $1 AND role = 'owner'")
            .bind(vault_id)
            .fetch_one(conn)
            .await?;
    if owners <= 1 {
        return Err(AppError::Conflict(
            "A vault must keep at least one owner".into(),
        ));
    }
    Ok(())
}

/// The vault's members.
#[utoipa::path(get, path = "/api/vaults/{id}/members", tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id")),
    responses(
        (status = 200, description = "Members", body = MemberList),
        (status = 404, description = "No such vault, or not a member", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn list_members(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<MemberList>, AppError> {
    let id = VaultId::parse(&id)?;
    permissions::authorize(&state.db, &id, &session.user.id, Action::Read).await?;
    let members = list(&state.db, &id).await?;
    Ok(Json(MemberList { members }))
}

/// A vault's members, in the order they were added.
pub async fn list(db: &AnyPool, vault_id: &str) -> Result<Vec<Member>, AppError> {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        r#"SELECT vu.user_id, u.email, u.name, vu.role
           FROM vault_users vu JOIN users u ON u.id = vu.user_id
           WHERE vu.vault_id = $1 ORDER BY vu.added_at, u.email"#,
    )
    .bind(vault_id)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(member_from_row).collect()
}

/// Adds a registered user to the vault (owner only); `member:added`.
#[utoipa::path(post, path = "/api/vaults/{id}/members", tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "Added", body = MemberResponse),
        (status = 429, description = "Too many members added by this user", body = ErrorBody),
        (status = 403, description = "Not an owner", body = ErrorBody),
        (status = 404, description = "No such vault, or no user with that email", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 422, description = "Invalid role", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn add_member(
    State(state): State<AppState>,
    session: Authenticated,
    Path(id): Path<String>,
    key: IdempotencyKey,
    Json(input): Json<AddMemberRequest>,
) -> Result<Response, AppError> {
    let id = VaultId::parse(&id)?;
    let role = parse_requested_role(&input.role)?;
    let user = &session.user;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        Operation::MemberAdd,
        &id,
        &input,
        // Counted only when the addition runs: a retry answered from its
        // key is not another addition.
        |claim| async {
            state.member_additions.attempt(&user.id)?;
            add(&state, user, &id, &input.email, role, claim).await
        },
    )
    .await?;
    Ok(answer.respond(StatusCode::CREATED, |member| MemberResponse { member }))
}

async fn add(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    email: &str,
    role: Role,
    claim: Option<Claim>,
) -> Result<Member, AppError> {
    let mut mutation = Mutation::begin(state, id, user, Action::Manage).await?;
    let user: Option<(String, String, String)> =
        sqlx::query_as("SELECT id, email, name FROM users WHERE email_folded = $1")
            .bind(fold_email(email))
            .fetch_optional(mutation.conn())
            .await?;
    let Some((user_id, email, name)) = user else {
        let error = AppError::NotFound("No user with this email".into());
        return Err(mutation.refuse(error).await);
    };
    let inserted = sqlx::query(
        r#"INSERT INTO vault_users (vault_id, user_id, role, added_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (vault_id, user_id) DO NOTHING"#,
    )
    .bind(id)
    .bind(&user_id)
    .bind(role.as_str())
    .bind(db::now())
    .execute(mutation.conn())
    .await?;
    if inserted.rows_affected() == 0 {
        let error = AppError::Conflict("This user is already a member of the vault".into());
        return Err(mutation.refuse(error).await);
    }
    let member = Member {
        user_id,
        email,
        name,
        role,
    };
    mutation.remember(claim.as_ref(), &member)?;
    mutation
        .commit(state, EventKind::MemberAdded(member.clone()))
        .await?;
    Ok(member)
}

/// Changes a member's role (owner only); `member:updated`. Takes effect on
/// the member's very next command.
#[utoipa::path(patch, path = "/api/vaults/{id}/members/{userId}", tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("userId" = String, Path, description = "Member's user id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "Role changed", body = MemberResponse),
        (status = 403, description = "Not an owner", body = ErrorBody),
        (status = 404, description = "No such vault or member", body = ErrorBody),
        (status = 409, description = "Would leave the vault without an owner", body = ErrorBody),
        (status = 422, description = "Invalid role", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn update_member(
    State(state): State<AppState>,
    session: Authenticated,
    Path((id, user_id)): Path<(String, String)>,
    key: IdempotencyKey,
    Json(input): Json<UpdateMemberRequest>,
) -> Result<Response, AppError> {
    let id = VaultId::parse(&id)?;
    let user_id = UserId::parse(&user_id)?;
    let role = input
        .role
        .as_deref()
        .ok_or_else(|| AppError::validation("role", "is required"))?;
    let role = parse_requested_role(role)?;
    let target = format!("{id}/{user_id}");
    let user = &session.user;
    let operation = Operation::MemberUpdate;
    let answer = idempotency::run(
        &state,
        key.key(),
        user,
        operation,
        &target,
        &input,
        |claim| change_role(&state, user, &id, &user_id, role, claim),
    )
    .await?;
    Ok(answer.respond(StatusCode::OK, |member| MemberResponse { member }))
}

async fn change_role(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    user_id: &str,
    role: Role,
    claim: Option<Claim>,
) -> Result<Member, AppError> {
    let mut mutation = Mutation::begin(state, id, user, Action::Manage).await?;
    let mut member = match find_member(mutation.conn(), id, user_id).await {
        Ok(member) => member,
        Err(error) => return Err(mutation.refuse(error).await),
    };
    if role != Role::Owner
        && let Err(error) = keep_an_owner(mutation.conn(), id, &member).await
    {
        return Err(mutation.refuse(error).await);
    }
    sqlx::query("UPDATE vault_users SET role = $1 WHERE vault_id = $2 AND user_id = $3")
        .bind(role.as_str())
        .bind(id)
        .bind(user_id)
        .execute(mutation.conn())
        .await?;
    member.role = role;
    mutation.remember(claim.as_ref(), &member)?;
    mutation
        .commit(state, EventKind::MemberUpdated(member.clone()))
        .await?;
    Ok(member)
}

/// Removes a member (an owner removes anyone, any member themselves: they
/// leave); `member:removed`, then the member's sockets leave the room and
/// receive `vault:removed`. The last owner can neither be removed nor
/// leave.
#[utoipa::path(delete, path = "/api/vaults/{id}/members/{userId}", tag = "members",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Vault id"),
           ("userId" = String, Path, description = "Member's user id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry of this mutation safe (docs/protocol.md, Retry-safe mutations)")),
    responses(
        (status = 204, description = "Removed, or left"),
        (status = 403, description = "Not an owner, removing someone else", body = ErrorBody),
        (status = 404, description = "No such vault or member", body = ErrorBody),
        (status = 409, description = "Would leave the vault without an owner", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn remove_member(
    State(state): State<AppState>,
    session: Authenticated,
    Path((id, user_id)): Path<(String, String)>,
    key: IdempotencyKey,
) -> Result<Response, AppError> {
    let id = VaultId::parse(&id)?;
    let user_id = UserId::parse(&user_id)?;
    let target = format!("{id}/{user_id}");
    let user = &session.user;
    let operation = Operation::MemberRemove;
    let answer = idempotency::run(&state, key.key(), user, operation, &target, &(), |claim| {
        remove(&state, user, &id, &user_id, claim)
    })
    .await?;
    Ok(answer.respond_empty(StatusCode::NO_CONTENT))
}

async fn remove(
    state: &AppState,
    user: &SessionUser,
    id: &str,
    user_id: &str,
    claim: Option<Claim>,
) -> Result<(), AppError> {
    // Leaving is for every member; removing someone else is managing.
    let action = if user.id == user_id {
        Action::Read
    } else {
        Action::Manage
    };
    let mut mutation = Mutation::begin(state, id, user, action).await?;
    let member = match find_member(mutation.conn(), id, user_id).await {
        Ok(member) => member,
        Err(error) => return Err(mutation.refuse(error).await),
    };
    if let Err(error) = keep_an_owner(mutation.conn(), id, &member).await {
        return Err(mutation.refuse(error).await);
    }
    sqlx::query("DELETE FROM vault_users WHERE vault_id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(mutation.conn())
        .await?;
    mutation.remember(claim.as_ref(), &())?;
    // The eviction runs in the vault's publishing line, right after
    // `member:removed` (see `fanout::publish`).
    mutation
        .commit(state, EventKind::MemberRemoved(member))
        .await?;
    Ok(())
}
