//! Who a request comes from: the session token (bearer header, else the
//! session cookie), the live session it names, and the Origin rule for
//! cookie-authenticated mutations. The [`Authenticated`] extractor applies
//! all three to every REST route that needs a user; the socket handshake
//! calls the same functions.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, REFERER};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method};
use base64::Engine;
use cookie::Cookie;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::{Any, Executor};
use syncscript_protocol::{SECURE_SESSION_COOKIE, SESSION_COOKIE};
use url::Url;

use crate::config::Config;
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
/// the session cookie; the flag says whether it came from the cookie. Over
/// https only the `__Host-` cookie counts (a plain one may have been set by
/// any site of the host, over http too). A request with more than one
/// session cookie is refused: browsers send every cookie of the host
/// whatever port set it, so another site on the same host can plant its
/// own for a narrower path, and the server must not pick one of them.
pub fn token_from_headers(
    headers: &HeaderMap,
    https: bool,
) -> Result<Option<(String, bool)>, AppError> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let bearer = value
            .trim()
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| (token.trim().to_owned(), false));
        return Ok(bearer);
    }
    let mut sessions = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|c| c.name() == SECURE_SESSION_COOKIE || (!https && c.name() == SESSION_COOKIE));
    let Some(first) = sessions.next() else {
        return Ok(None);
    };
    if sessions.next().is_some() {
        return Err(AppError::Unauthorized(SEVERAL_SESSION_COOKIES.into()));
    }
    Ok(Some((first.value().to_owned(), true)))
}

/// The message of a request refused for carrying several session cookies.
pub const SEVERAL_SESSION_COOKIES: &str = "More than one session cookie was sent (another site on \
     this host may have set one): clear this site's cookies and log in again";

/// The TCP peer of a request, as the accept loop recorded it.
pub fn peer(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_canonical())
}

/// Whether the request reached the server over https. The server itself
/// speaks plain http: https is what `--public-url` says, or else what a
/// trusted proxy (the TCP peer) says in `X-Forwarded-Proto`; the header of
/// anyone else is not believed.
pub fn over_https(headers: &HeaderMap, peer: Option<IpAddr>, config: &Config) -> bool {
    if let Some(url) = &config.public_url {
        return url.scheme() == "https";
    }
    let trusted = peer.is_some_and(|peer| {
        config
            .limits
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer))
    });
    trusted
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// Refuses a cookie-authenticated request whose `Origin` (else `Referer`)
/// names another origin than the server's own: `public_url`, else the
/// `Host` it was asked for with the scheme it was reached by (`https` as
/// [`over_https`] says, else `http`), never the scheme the client claims.
/// With neither header the request comes from a non-browser client and is
/// allowed.
pub fn check_origin(
    headers: &HeaderMap,
    https: bool,
    public_url: Option<&Url>,
) -> Result<(), AppError> {
    let refused = || AppError::Forbidden("Cross-origin request refused".into());
    let Some(claimed) = headers.get(ORIGIN).or_else(|| headers.get(REFERER)) else {
        return Ok(());
    };
    let claimed = claimed
        .to_str()
        .ok()
        .and_then(|v| Url::parse(v).ok())
        .ok_or_else(refused)?;
    let scheme = if https { "https" } else { "http" };
    let own = match public_url {
        Some(url) => url.clone(),
        None => headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|host| Url::parse(&format!("{scheme}://{host}")).ok())
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
        let https = over_https(&parts.headers, peer(&parts.extensions), &state.config);
        let (token, via_cookie) = token_from_headers(&parts.headers, https)?
            .ok_or_else(|| AppError::Unauthorized("Authentication required".into()))?;
        let (session_id, user) = lookup_session(&state.db, &token)
            .await?
            .ok_or_else(|| AppError::Unauthorized("Invalid or expired session".into()))?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if via_cookie && !safe {
            check_origin(&parts.headers, https, state.config.public_url.as_ref())?;
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
        let token =
            |pairs: &[(&'static str, &str)]| token_from_headers(&headers(pairs), false).unwrap();
        let both = [
            ("authorization", "Bearer abc"),
            ("cookie", "syncscript_session=xyz"),
        ];
        assert_eq!(token(&both), Some(("abc".into(), false)));
        let cookie = [("cookie", "a=1; syncscript_session=xyz; b=2")];
        assert_eq!(token(&cookie), Some(("xyz".into(), true)));
        let secure = [("cookie", "__Host-syncscript_session=xyz")];
        assert_eq!(token(&secure), Some(("xyz".into(), true)));
        let over_https =
            |pairs: &[(&'static str, &str)]| token_from_headers(&headers(pairs), true).unwrap();
        assert_eq!(
            over_https(&cookie),
            None,
            "over https a plain cookie is not read"
        );
        let both = [(
            "cookie",
            "syncscript_session=planted; __Host-syncscript_session=xyz",
        )];
        assert_eq!(over_https(&both), Some(("xyz".into(), true)));
        assert_eq!(token(&[("cookie", "a=1")]), None);
        assert_eq!(token(&[("authorization", "Basic x")]), None);
    }

    #[test]
    fn several_session_cookies_are_refused() {
        for cookies in [
            "syncscript_session=bogus; syncscript_session=xyz",
            "__Host-syncscript_session=xyz; syncscript_session=planted",
        ] {
            let error = token_from_headers(&headers(&[("cookie", cookies)]), false).unwrap_err();
            assert_eq!(error.to_string(), SEVERAL_SESSION_COOKIES, "{cookies}");
        }
        let split = headers(&[
            ("cookie", "syncscript_session=bogus"),
            ("cookie", "syncscript_session=xyz"),
        ]);
        assert!(
            token_from_headers(&split, false).is_err(),
            "over two Cookie headers too"
        );
        let twice = headers(&[(
            "cookie",
            "__Host-syncscript_session=a; __Host-syncscript_session=b",
        )]);
        assert!(token_from_headers(&twice, true).is_err());
    }

    #[test]
    fn origin_must_match_host_or_public_url() {
        let same = headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://localhost:3000"),
        ]);
        assert!(check_origin(&same, false, None).is_ok());
        assert!(
            check_origin(&same, true, None).is_err(),
            "reached over https, an http page is another origin"
        );
        let claimed_https = headers(&[
            ("host", "localhost:3000"),
            ("origin", "https://localhost:3000"),
        ]);
        assert!(check_origin(&claimed_https, false, None).is_err());
        assert!(check_origin(&claimed_https, true, None).is_ok());
        let websocket = headers(&[
            ("host", "localhost:3000"),
            ("origin", "ws://localhost:3000"),
        ]);
        assert!(check_origin(&websocket, false, None).is_err());
        let foreign = headers(&[
            ("host", "localhost:3000"),
            ("origin", "http://localhost:4000"),
        ]);
        assert!(check_origin(&foreign, false, None).is_err());
        let referer = headers(&[("host", "a.test"), ("referer", "http://evil.test/page")]);
        assert!(check_origin(&referer, false, None).is_err());
        let null = headers(&[("host", "a.test"), ("origin", "null")]);
        assert!(check_origin(&null, false, None).is_err());
        assert!(check_origin(&headers(&[("host", "a.test")]), false, None).is_ok());
        let public = Url::parse("https://sync.example.org").unwrap();
        let ok = headers(&[
            ("host", "internal:3000"),
            ("origin", "https://sync.example.org"),
        ]);
        assert!(check_origin(&ok, true, Some(&public)).is_ok());
        assert!(check_origin(&same, true, Some(&public)).is_err());
    }

    #[test]
    fn only_a_trusted_proxy_says_https() {
        let forwarded = headers(&[("x-forwarded-proto", "https")]);
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        let mut config = Config::new("sqlite::memory:");
        assert!(!over_https(&forwarded, Some(proxy), &config));
        config.limits.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        assert!(over_https(&forwarded, Some(proxy), &config));
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert!(!over_https(&forwarded, Some(stranger), &config));
        assert!(!over_https(&HeaderMap::new(), Some(proxy), &config));
        config.public_url = Some(Url::parse("https://sync.example.org").unwrap());
        assert!(over_https(&HeaderMap::new(), None, &config));
    }
}
