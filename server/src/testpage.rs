//! The browser test page `/test/realtime` and the official `socket.io-client`
//! browser bundle it loads from `/socket.io/socket.io.min.js`.
//!
//! The Socket.IO layer claims every `/socket.io/` path, so [`wrap`] puts
//! these routes in an outer router that answers them first and hands every
//! other request to the application (with its Socket.IO layer) unchanged.
//! The page's own HTML, CSS and JS are embedded in the binary; the client
//! bundle is read at run time from `web/node_modules`, where
//! `npm ci --prefix web` installs it from the lockfile (it is never copied
//! into the repository).

use std::io::ErrorKind;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tower_http::trace::TraceLayer;

/// The command that installs the client bundle, as the page tells it.
pub const INSTALL_COMMAND: &str = "npm ci --prefix web";

/// Environment variable naming the folder that holds `node_modules`
/// (default: `web` under the working directory, then the source tree's).
pub const WEB_DIR_ENV: &str = "SYNCSCRIPT_WEB_DIR";

/// The source tree's `web/`, for a binary run from anywhere on the machine
/// that built it.
const SOURCE_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../web");

/// Where npm puts the browser bundles, under the web folder.
const CLIENT_DIST: &str = "node_modules/socket.io-client/dist";

const PAGE_HTML: &str = include_str!("../../web/static/index.html");
const PAGE_JS: &str = include_str!("../../web/static/app.js");
const PAGE_CSS: &str = include_str!("../../web/static/style.css");

/// Where the page says the bundle is missing (an HTML comment in the page).
const NOTICE_MARKER: &str = "<!-- bundle-notice -->";

/// Scripts and styles only from files of this origin (no inline code),
/// sockets only to this origin, no framing.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self' ws: wss:; form-action 'self'; base-uri 'none'; \
     frame-ancestors 'none'";

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const SOURCE_MAP: &str = "application/json";

/// The bundle the page loads; its presence says the client is installed.
const CLIENT_BUNDLE: &str = "socket.io.min.js";

/// The files of `socket.io-client/dist` served under `/socket.io/`, like
/// Node's `serveClient`, with their content types.
const CLIENT_FILES: [(&str, &str); 4] = [
    (CLIENT_BUNDLE, JAVASCRIPT),
    ("socket.io.js", JAVASCRIPT),
    ("socket.io.min.js.map", SOURCE_MAP),
    ("socket.io.js.map", SOURCE_MAP),
];

/// Revalidate on every use: the page changes with the binary and the
/// bundle with `npm ci`, and a 304 costs next to nothing.
const REVALIDATE: &str = "no-cache";

/// The folders searched, in order, for `node_modules/socket.io-client`.
#[derive(Debug, Clone)]
pub struct WebDir {
    candidates: Vec<PathBuf>,
}

impl WebDir {
    /// `$SYNCSCRIPT_WEB_DIR` when set; otherwise `web` under the working
    /// directory, then the source tree's `web`.
    pub fn from_env() -> WebDir {
        let candidates = match std::env::var_os(WEB_DIR_ENV) {
            Some(dir) => vec![PathBuf::from(dir)],
            None => vec![PathBuf::from("web"), PathBuf::from(SOURCE_WEB_DIR)],
        };
        WebDir { candidates }
    }

    /// Reads one file of the client's `dist` folder from the first
    /// candidate that has it; `None` when no candidate does.
    async fn read_client_file(&self, name: &str) -> Option<Vec<u8>> {
        for dir in &self.candidates {
            let path = dir.join(CLIENT_DIST).join(name);
            match tokio::fs::read(&path).await {
                Ok(bytes) => return Some(bytes),
                Err(error) if error.kind() == ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "cannot read the client bundle");
                }
            }
        }
        tracing::warn!(
            searched = ?self.candidates,
            "socket.io-client is not installed: run `{INSTALL_COMMAND}`"
        );
        None
    }

    async fn has_client_bundle(&self) -> bool {
        for dir in &self.candidates {
            let path = dir.join(CLIENT_DIST).join(CLIENT_BUNDLE);
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return true;
            }
        }
        false
    }
}

/// Answers the test page and the client bundle, and passes every other
/// request to `app` (which carries the Socket.IO layer).
pub fn wrap(app: Router) -> Router {
    routes(WebDir::from_env()).fallback_service(app)
}

fn routes(web: WebDir) -> Router {
    let mut router = Router::new()
        .route("/test/realtime", get(page))
        .route(
            "/test/realtime/app.js",
            get(|headers: HeaderMap| async move { asset(&headers, JAVASCRIPT, PAGE_JS) }),
        )
        .route(
            "/test/realtime/style.css",
            get(|headers: HeaderMap| async move {
                asset(&headers, "text/css; charset=utf-8", PAGE_CSS)
            }),
        );
    for (name, content_type) in CLIENT_FILES {
        router = router.route(
            &format!("/socket.io/{name}"),
            get(
                move |State(web): State<Arc<WebDir>>, headers: HeaderMap| async move {
                    client_file(&web, &headers, name, content_type).await
                },
            ),
        );
    }
    router
        .route_layer(TraceLayer::new_for_http())
        .with_state(Arc::new(web))
}

/// The page, with a notice naming the install command when the bundle is
/// missing (so it is visible even before any script runs).
async fn page(State(web): State<Arc<WebDir>>, headers: HeaderMap) -> Response {
    let notice = if web.has_client_bundle().await {
        String::new()
    } else {
        format!(
            "<p class=\"notice\" role=\"alert\">The Socket.IO browser client is not installed. \
             Run <code>{INSTALL_COMMAND}</code> in the SyncScript repository, then reload \
             this page.</p>"
        )
    };
    let html = PAGE_HTML.replace(NOTICE_MARKER, &notice);
    let mut response = asset(&headers, "text/html; charset=utf-8", html);
    let response_headers = response.headers_mut();
    response_headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(PAGE_CSP));
    // Same-origin requests keep their `Origin`, which the server's cookie
    // check needs (`no-referrer` would turn it into `null`).
    response_headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    response
}

async fn client_file(
    web: &WebDir,
    headers: &HeaderMap,
    name: &str,
    content_type: &'static str,
) -> Response {
    match web.read_client_file(name).await {
        Some(bytes) => asset(headers, content_type, bytes),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(CACHE_CONTROL, "no-store")],
            format!(
                "The Socket.IO browser client ({name}) is not installed.\n\
                 Run `{INSTALL_COMMAND}` in the SyncScript repository, or set \
                 {WEB_DIR_ENV} to the folder holding its node_modules.\n"
            ),
        )
            .into_response(),
    }
}

/// A static body with its content type, a strong ETag over its bytes and
/// `no-cache`; `304 Not Modified` when `If-None-Match` names that ETag.
fn asset(headers: &HeaderMap, content_type: &'static str, body: impl AsRef<[u8]>) -> Response {
    let etag = etag_of(body.as_ref());
    let fresh = headers
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| if_none_match(value, &etag));
    let common = [
        (ETAG, etag),
        (CACHE_CONTROL, REVALIDATE.to_owned()),
        (X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
    ];
    if fresh {
        (StatusCode::NOT_MODIFIED, common).into_response()
    } else {
        (
            common,
            [(CONTENT_TYPE, content_type)],
            body.as_ref().to_vec(),
        )
            .into_response()
    }
}

fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// Whether an `If-None-Match` list names `etag` (weak comparison, as
/// RFC 9110 asks for this header) or is `*`.
fn if_none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// An app standing in for the real one: answers 418 to everything, as
    /// the Socket.IO layer would claim every path it sees.
    fn wrapped(web: WebDir) -> Router {
        let app = Router::new().fallback(|| async { StatusCode::IM_A_TEAPOT });
        routes(web).fallback_service(app)
    }

    async fn get_with(router: Router, uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(uri);
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag);
        }
        router
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn installed() -> (tempfile::TempDir, WebDir) {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join(CLIENT_DIST);
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join("socket.io.min.js"), "var io;").unwrap();
        let web = WebDir {
            candidates: vec![dir.path().join("absent"), dir.path().to_owned()],
        };
        (dir, web)
    }

    #[tokio::test]
    async fn bundle_is_served_ahead_of_the_app_with_etag_and_304() {
        let (_dir, web) = installed();
        let router = wrapped(web);
        let response = get_with(router.clone(), "/socket.io/socket.io.min.js", None).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], JAVASCRIPT);
        assert_eq!(response.headers()[CACHE_CONTROL], REVALIDATE);
        let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
        assert_eq!(text(response).await, "var io;");

        let again = get_with(router.clone(), "/socket.io/socket.io.min.js", Some(&etag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert!(text(again).await.is_empty());
        let changed = get_with(router.clone(), "/socket.io/socket.io.min.js", Some("\"x\"")).await;
        assert_eq!(changed.status(), StatusCode::OK);

        let engine = get_with(router, "/socket.io/?EIO=4&transport=polling", None).await;
        assert_eq!(engine.status(), StatusCode::IM_A_TEAPOT);
    }

    #[tokio::test]
    async fn missing_bundle_names_the_install_command() {
        let (dir, _) = installed();
        let web = WebDir {
            candidates: vec![dir.path().join("absent")],
        };
        let router = wrapped(web);
        let bundle = get_with(router.clone(), "/socket.io/socket.io.js", None).await;
        assert_eq!(bundle.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(text(bundle).await.contains(INSTALL_COMMAND));
        let page = get_with(router, "/test/realtime", None).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert!(text(page).await.contains(INSTALL_COMMAND));
    }

    #[tokio::test]
    async fn page_is_strict_and_loads_only_files() {
        let (_dir, web) = installed();
        let router = wrapped(web);
        let page = get_with(router.clone(), "/test/realtime", None).await;
        assert_eq!(page.headers()[CONTENT_SECURITY_POLICY], PAGE_CSP);
        assert_eq!(page.headers()[REFERRER_POLICY], "same-origin");
        let html = text(page).await;
        assert!(!html.contains(NOTICE_MARKER) && !html.contains(INSTALL_COMMAND));
        assert!(!html.contains("<script>") && !html.contains("style="));
        for (uri, content_type) in [
            ("/test/realtime/app.js", JAVASCRIPT),
            ("/test/realtime/style.css", "text/css; charset=utf-8"),
        ] {
            let response = get_with(router.clone(), uri, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.headers()[CONTENT_TYPE], content_type);
        }
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(if_none_match("\"a\"", "\"a\""));
        assert!(if_none_match("\"b\", W/\"a\"", "\"a\""));
        assert!(if_none_match("*", "\"a\""));
        assert!(!if_none_match("\"b\"", "\"a\""));
    }
}
