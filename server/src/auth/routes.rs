//! The auth routes: signup, login, logout, `GET /api/me`.

use axum::extract::State;
use axum::http::{Extensions, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use chrono::Utc;
use sqlx::{Any, Executor};
use syncscript_protocol::{
    ErrorBody, LoginRequest, LoginResponse, SignupRequest, User, UserResponse, session_room,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::caller::{Authenticated, hash_token, new_token, over_https, peer};
use crate::auth::cookie;
use crate::auth::password::{hash_password, stand_in_hash, verify_password};
use crate::db;
use crate::domain::{Email, Name, fold_email};
use crate::error::{AppError, Json};
use crate::limits::AuthAttempt;
use crate::state::AppState;

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    email: String,
    name: String,
    created_at: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> User {
        User {
            id: row.id,
            email: row.email,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

/// Creates an account.
#[utoipa::path(post, path = "/api/auth/signup", tag = "auth",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Account created", body = UserResponse),
        (status = 403, description = "Signup disabled", body = ErrorBody),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
        (status = 422, description = "Invalid field", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn signup(
    _: AuthAttempt,
    State(state): State<AppState>,
    Json(input): Json<SignupRequest>,
) -> Result<(StatusCode, Json<UserResponse>), AppError> {
    if !state.config.signup_enabled {
        return Err(AppError::Forbidden(
            "Signup is disabled on this server".into(),
        ));
    }
    let email = Email::parse(&input.email)?;
    let name = Name::parse("name", &input.name)?;
    if !(8..=1024).contains(&input.password.chars().count()) {
        return Err(AppError::validation(
            "password",
            "must be 8-1024 characters",
        ));
    }
    let password_hash = hash_password(input.password).await?;
    let user = insert_user(&state.writer, &email, &name, &password_hash).await?;
    Ok((StatusCode::CREATED, Json(UserResponse { user })))
}

async fn insert_user<'e>(
    db: impl Executor<'e, Database = Any>,
    email: &Email,
    name: &str,
    password_hash: &str,
) -> Result<User, AppError> {
    let row: Result<UserRow, sqlx::Error> = sqlx::query_as(
        r#"INSERT INTO users (id, email, email_folded, name, password_hash, created_at)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, email, name, created_at"#,
    )
    .bind(db::new_id())
    .bind(&**email)
    .bind(email.folded())
    .bind(name)
    .bind(password_hash)
    .bind(db::now())
    .fetch_one(db)
    .await;
    match row {
        Ok(row) => Ok(row.into()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::Conflict(
            "An account with this email already exists".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Logs in: returns a fresh session token (shown only here) and sets the
/// session cookie.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in; also sets the session cookie", body = LoginResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 429, description = "Too many attempts from this address", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login(
    _: AuthAttempt,
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    Json(input): Json<LoginRequest>,
) -> Result<impl IntoResponse, AppError> {
    let found: Option<(String, String, String, String, String)> = sqlx::query_as(
        r#"SELECT id, email, name, created_at, password_hash FROM users
           WHERE email_folded = $1"#,
    )
    .bind(fold_email(&input.email))
    .fetch_optional(&state.db)
    .await?;
    let denied = || AppError::Unauthorized("Invalid email or password".into());
    let Some((id, email, name, created_at, password_hash)) = found else {
        // As slow as a wrong password, so that the time of the answer does
        // not tell which emails have an account.
        verify_password(input.password, stand_in_hash().await?).await?;
        return Err(denied());
    };
    if !verify_password(input.password, password_hash).await? {
        return Err(denied());
    }
    let token = new_token();
    let ttl = chrono::Duration::from_std(state.config.session_ttl)
        .map_err(|e| anyhow::anyhow!("session TTL out of range: {e}"))?;
    let now = Utc::now();
    let expires_at = db::timestamp(now + ttl);
    sqlx::query(
        r#"INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5)"#,
    )
    .bind(db::new_id())
    .bind(&id)
    .bind(hash_token(&token))
    .bind(db::timestamp(now))
    .bind(&expires_at)
    .execute(&state.writer)
    .await?;
    let https = over_https(&headers, peer(&extensions), &state.config);
    let set_cookie = cookie::session(&token, ttl, https)?;
    let body = LoginResponse {
        token,
        user: User {
            id,
            email,
            name,
            created_at,
        },
        expires_at,
    };
    Ok((AppendHeaders([set_cookie]), Json(body)))
}

/// Revokes the caller's session, disconnects every socket opened with it and
/// clears the cookie.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Session revoked"),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    extensions: Extensions,
    session: Authenticated,
) -> Result<impl IntoResponse, AppError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(db::now())
        .bind(&session.session_id)
        .execute(&state.writer)
        .await?;
    let room = session_room(&session.session_id);
    state.fanout.rooms.disconnect(room).await;
    let https = over_https(&headers, peer(&extensions), &state.config);
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders(cookie::cleared(https)?),
    ))
}

/// The caller's account.
#[utoipa::path(get, path = "/api/me", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The logged-in user", body = UserResponse),
        (status = 401, description = "Not logged in", body = ErrorBody),
    ))]
#[tracing::instrument(skip_all)]
pub async fn me(
    State(state): State<AppState>,
    session: Authenticated,
) -> Result<Json<UserResponse>, AppError> {
    let row: UserRow =
        sqlx::query_as("SELECT id, email, name, created_at FROM users WHERE id = $1")
            .bind(&session.user.id)
            .fetch_one(&state.db)
            .await?;
    Ok(Json(UserResponse { user: row.into() }))
}
