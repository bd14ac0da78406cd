//! Who a request comes from: the session token (bearer header, else the
//! session cookie), the live session it names, and the Origin rule for
//! cookie-authenticated mutations. The [`Authenticated`] extractor applies
//! all three to every REST route that needs a user; the socket handshake
//! calls the same functions.

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, REFERER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use base64::Engine;
use cookie::Cookie;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Any, Executor};
use syncscript_protocol::SESSION_COOKIE;
use url::Url;

use crate::db;
use crate::error::AppError;
use crate::fanout::identity::SessionUser;
use crate::state::AppState;

/// An authenticated request: the session, its user and how it was proven.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session_id: String,
    pub user: SessionUser,
    /// True when the session came from the cookie rather than a bearer token.
    pub via_cookie: bool,
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

pub(super) fn hash_token(token: &str) -> String {
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

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Authenticated, AppError> {
        let (token, via_cookie) = token_from_headers(&parts.headers)
            .ok_or_else(|| AppError::Unauthorized("Authentication required".into()))?;
        let (session_id, user) = lookup_session(&state.db, &token)
            .await?
            .ok_or_else(|| AppError::Unauthorized("Invalid or expired session".into()))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe {
            check_origin(&parts.headers, state.config.public_url.as_ref())?;
        }
        Ok(Authenticated {
            session_id,
            user,
            via_cookie,
        })
    }
}

/// A fresh session token: 32 random bytes, URL-safe base64.
pub(super) fn new_token() -> String {
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

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
}
