//! Accounts and sessions: signup, login, logout, `GET /api/me`, and the
//! [`Session`] extractor that authenticates every other request by bearer
//! token or session cookie (with the Origin check for cookie mutations).

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, REFERER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use base64::Engine;
use chrono::Utc;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Any, Executor};
use syncscript_protocol::{
    ErrorBody, LoginRequest, LoginResponse, SESSION_COOKIE, SignupRequest, User, UserResponse,
    session_room,
};
use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::db;
use crate::error::{AppError, Json};
use crate::fanout::identity::SessionUser;
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

/// An authenticated request: the session, its user and how it was proven.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub user: SessionUser,
    /// True when the session came from the cookie rather than a bearer token.
    pub via_cookie: bool,
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

/// The session token of a request: the bearer token if there is one, else
/// the session cookie; the flag says whether it came from the cookie.
pub fn token_from_headers(headers: &HeaderMap) -> Option<(String, bool)> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), false));
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| (c.value().to_owned(), true))
}

/// Refuses a cookie-authenticated request whose `Origin` (else `Referer`)
/// names another origin than the server's own. With neither header the
/// request comes from a non-browser client and is allowed.
pub fn check_origin(headers: &HeaderMap, public_url: Option<&Url>) -> Result<(), AppError> {
    let refused = || AppError::Forbidden("Cross-origin request refused".into());
    let Some(claimed) = headers.get(ORIGIN).or_else(|| headers.get(REFERER)) else {
        return Ok(());
    };
    let claimed = claimed
        .to_str()
        .ok()
        .and_then(|v| Url::parse(v).ok())
        .ok_or_else(refused)?;
    let own = match public_url {
        Some(url) => url.clone(),
        None => headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|host| Url::parse(&format!("{}://{host}", claimed.scheme())).ok())
            .ok_or_else(refused)?,
    };
    if claimed.origin() == own.origin() {
        Ok(())
    } else {
        Err(refused())
    }
}

fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The live (not expired, not revoked) session of a token.
pub async fn lookup_session<'e>(
    db: impl Executor<'e, Database = Any>,
    token: &str,
) -> Result<Option<(String, SessionUser)>, AppError> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        r#"SELECT s.id, u.id, u.email, u.name FROM sessions s
           JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > $2"#,
    )
    .bind(hash_token(token))
    .bind(db::now())
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(session_id, id, email, name)| (session_id, SessionUser { id, email, name })))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Session, AppError> {
        let (token, via_cookie) = token_from_headers(&parts.headers)
            .ok_or_else(|| AppError::Unauthorized("Authentication required".into()))?;
        let (id, user) = lookup_session(&state.db, &token)
            .await?
            .ok_or_else(|| AppError::Unauthorized("Invalid or expired session".into()))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe {
            check_origin(&parts.headers, state.config.public_url.as_ref())?;
        }
        Ok(Session {
            id,
            user,
            via_cookie,
        })
    }
}

/// An email address: at most 254 bytes once trimmed, no white space, `local@domain`.
pub fn validate_email(raw: &str) -> Result<String, AppError> {
    let email = raw.trim();
    let well_formed = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty());
    if well_formed {
        Ok(email.to_owned())
    } else {
        Err(AppError::validation("email", "must be an email address"))
    }
}

/// A display name: 1–200 characters once trimmed.
pub fn validate_name(field: &'static str, raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    match name.chars().count() {
        1..=200 => Ok(name.to_owned()),
        _ => Err(AppError::validation(field, "must be 1-200 characters")),
    }
}

/// Password hashing is deliberately costly (argon2id, ~19 MiB each): at most
/// one hash per core runs at a time, so a flood of logins or signups queues
/// instead of exhausting memory and the blocking thread pool.
static PASSWORD_WORK: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

async fn password_slot() -> Result<SemaphorePermit<'static>, AppError> {
    PASSWORD_WORK
        .acquire()
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("password work queue closed: {e}")))
}

async fn hash_password(password: String) -> Result<String, AppError> {
    let _slot = password_slot().await?;
    tokio::task::spawn_blocking(move || {
        let mut salt_bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut salt_bytes);
        let salt = SaltString::encode_b64(&salt_bytes)
            .map_err(|e| anyhow::anyhow!("encoding a salt: {e}"))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(AppError::from)
}

/// The hash an unknown email's password is checked against: a real hash
/// (of a random password, made once), so the check costs what a real one
/// does.
async fn stand_in_hash() -> Result<String, AppError> {
    static STAND_IN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    STAND_IN
        .get_or_try_init(|| {
            let mut password = [0u8; 32];
            rand::rng().fill_bytes(&mut password);
            hash_password(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(password))
        })
        .await
        .cloned()
}

async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
    let _slot = password_slot().await?;
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .map_err(|e| anyhow::anyhow!("stored password hash unreadable: {e}"))
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(AppError::from)
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
    let email = validate_email(&input.email)?;
    let name = validate_name("name", &input.name)?;
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
    email: &str,
    name: &str,
    password_hash: &str,
) -> Result<User, AppError> {
    let row: Result<UserRow, sqlx::Error> = sqlx::query_as(
        r#"INSERT INTO users (id, email, name, password_hash, created_at)
           VALUES ($1, $2, $3, $4, $5)
           RETURNING id, email, name, created_at"#,
    )
    .bind(db::new_id())
    .bind(email)
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
    Json(input): Json<LoginRequest>,
) -> Result<impl IntoResponse, AppError> {
    let found: Option<(String, String, String, String, String)> = sqlx::query_as(
        r#"SELECT id, email, name, created_at, password_hash FROM users
           WHERE lower(email) = lower($1)"#,
    )
    .bind(input.email.trim())
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
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
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
    let cookie = Cookie::build((SESSION_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(is_https(&headers, &state))
        .max_age(cookie::time::Duration::seconds(ttl.num_seconds()))
        .build();
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
    Ok((AppendHeaders([set_cookie(&cookie)?]), Json(body)))
}

fn is_https(headers: &HeaderMap, state: &AppState) -> bool {
    let public_https = state
        .config
        .public_url
        .as_ref()
        .is_some_and(|url| url.scheme() == "https");
    let forwarded_https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    public_https || forwarded_https
}

fn set_cookie(cookie: &Cookie<'_>) -> Result<(axum::http::HeaderName, HeaderValue), AppError> {
    let value = HeaderValue::from_str(&cookie.to_string())
        .map_err(|e| anyhow::anyhow!("building Set-Cookie: {e}"))?;
    Ok((SET_COOKIE, value))
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
    session: Session,
) -> Result<impl IntoResponse, AppError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(db::now())
        .bind(&session.id)
        .execute(&state.writer)
        .await?;
    state
        .fanout
        .rooms
        .disconnect(session_room(&session.id))
        .await;
    let cleared = Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([set_cookie(&cleared)?]),
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
    session: Session,
) -> Result<Json<UserResponse>, AppError> {
    let row: UserRow =
        sqlx::query_as("SELECT id, email, name, created_at FROM users WHERE id = $1")
            .bind(&session.user.id)
            .fetch_one(&state.db)
            .await?;
    Ok(Json(UserResponse { user: row.into() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn bearer_wins_over_cookie() {
        let both = headers(&[
            ("authorization", "Bearer abc"),
            ("cookie", "syncscript_session=xyz"),
        ]);
        assert_eq!(token_from_headers(&both), Some(("abc".into(), false)));
        let cookie = headers(&[("cookie", "a=1; syncscript_session=xyz; b=2")]);
        assert_eq!(token_from_headers(&cookie), Some(("xyz".into(), true)));
        assert_eq!(token_from_headers(&headers(&[("cookie", "a=1")])), None);
        assert_eq!(
            token_from_headers(&headers(&[("authorization", "Basic x")])),
            None
        );
    }

    #[test]
    fn origin_must_match_host_or_public_url() {
        let same = headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://localhost:3000"),
        ]);
        assert!(check_origin(&same, None).is_ok());
        let foreign = headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://localhost:4000"),
        ]);
        assert!(check_origin(&foreign, None).is_err());
        let referer = headers(&[("host", "a.test"), ("referer", "http://evil.test/page")]);
        assert!(check_origin(&referer, None).is_err());
        let null = headers(&[("host", "a.test"), ("origin", "null")]);
        assert!(check_origin(&null, None).is_err());
        assert!(check_origin(&headers(&[("host", "a.test")]), None).is_ok());
        let public = Url::parse("https://sync.example.org").unwrap();
        let ok = headers(&[
            ("host", "internal:3000"),
            ("origin", "https://sync.example.org"),
        ]);
        assert!(check_origin(&ok, Some(&public)).is_ok());
        assert!(check_origin(&same, Some(&public)).is_err());
    }

    #[test]
    fn emails_and_names_are_validated() {
        assert_eq!(validate_email(" a@b.c ").unwrap(), "a@b.c");
        assert!(validate_email("nope").is_err());
        assert!(validate_email("a b@c").is_err());
        assert!(validate_name("name", "  ").is_err());
        assert!(validate_name("name", &"x".repeat(201)).is_err());
        assert_eq!(validate_name("name", " Ada ").unwrap(), "Ada");
    }
}
