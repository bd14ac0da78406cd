//! The session cookie: set at login, cleared at logout. Over https it is
//! `__Host-syncscript_session` (`Secure`, `Path=/`, no `Domain`: no other
//! site of the host can set one for a narrower path); over plain http,
//! `syncscript_session`.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderName, HeaderValue};
use cookie::{Cookie, SameSite};
use syncscript_protocol::{SECURE_SESSION_COOKIE, SESSION_COOKIE};

use crate::error::AppError;

/// The `Set-Cookie` of a fresh session: HTTP-only, `SameSite=Lax`, path
/// `/`, for `ttl`; over https `Secure` and `__Host-` prefixed.
pub(super) fn session(
    token: &str,
    ttl: chrono::Duration,
    https: bool,
) -> Result<(HeaderName, HeaderValue), AppError> {
    let name = if https {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    };
    let cookie = Cookie::build((name, token.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(https)
        .max_age(cookie::time::Duration::seconds(ttl.num_seconds()))
        .build();
    set_cookie(&cookie)
}

/// The `Set-Cookie`s that clear the session cookie: both names over https
/// (a login over plain http may have left the other), the plain one over
/// http (a browser ignores a `Secure` cookie set over http).
pub(super) fn cleared(https: bool) -> Result<Vec<(HeaderName, HeaderValue)>, AppError> {
    let names: &[&str] = if https {
        &[SECURE_SESSION_COOKIE, SESSION_COOKIE]
    } else {
        &[SESSION_COOKIE]
    };
    names
        .iter()
        .map(|name| {
            let cleared = Cookie::build((*name, ""))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path("/")
                .secure(https)
                .max_age(cookie::time::Duration::ZERO)
                .build();
            set_cookie(&cleared)
        })
        .collect()
}

fn set_cookie(cookie: &Cookie<'_>) -> Result<(HeaderName, HeaderValue), AppError> {
    let value = HeaderValue::from_str(&cookie.to_string())
        .map_err(|e| anyhow::anyhow!("building Set-Cookie: {e}"))?;
    Ok((SET_COOKIE, value))
}
