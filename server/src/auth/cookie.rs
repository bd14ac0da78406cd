//! The session cookie: set at login, cleared at logout.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use cookie::{Cookie, SameSite};
use syncscript_protocol::SESSION_COOKIE;

use crate::error::AppError;
use crate::state::AppState;

/// The `Set-Cookie` of a fresh session: HTTP-only, `SameSite=Lax`, path
/// `/`, `Secure` when the server is reached over https, for `ttl`.
pub(super) fn session(
    token: &str,
    ttl: chrono::Duration,
    headers: &HeaderMap,
    state: &AppState,
) -> Result<(HeaderName, HeaderValue), AppError> {
    let cookie = Cookie::build((SESSION_COOKIE, token.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(is_https(headers, state))
        .max_age(cookie::time::Duration::seconds(ttl.num_seconds()))
        .build();
    set_cookie(&cookie)
}

/// The `Set-Cookie` that clears the session cookie.
pub(super) fn cleared() -> Result<(HeaderName, HeaderValue), AppError> {
    let cleared = Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    set_cookie(&cleared)
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

fn set_cookie(cookie: &Cookie<'_>) -> Result<(HeaderName, HeaderValue), AppError> {
    let value = HeaderValue::from_str(&cookie.to_string())
        .map_err(|e| anyhow::anyhow!("building Set-Cookie: {e}"))?;
    Ok((SET_COOKIE, value))
}
