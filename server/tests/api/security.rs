//! docs/security.md items not covered elsewhere: CORS is off unless an
//! origin is allowed, and the server's log never holds a password or a
//! session token, whatever the log level.

use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript_client::socket::{Incoming, SocketClient};
use syncscript_testkit::{Backend, TestApp, eventually, http_client};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use crate::polling::PollingSocket;
use crate::socket::{SocketBuilder, WAIT, is_unauthorized};

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url("/api/vaults"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .expect("preflight sent")
}

fn allowed_origin(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("access-control-allow-origin")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn cors_is_off_unless_an_origin_is_allowed() {
    let closed = TestApp::spawn(Backend::Sqlite).await;
    let answer = preflight(&closed, "https://app.example.org").await;
    assert_eq!(allowed_origin(&answer), None, "no CORS by default");
    let user = closed.register("ada").await;
    let read = closed
        .request(Method::GET, "/api/vaults", Some(&user))
        .header("origin", "https://app.example.org")
        .send()
        .await
        .expect("read sent");
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(allowed_origin(&read), None);

    let open = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.cors_origins = vec!["https://app.example.org".parse().expect("origin")];
    })
    .await;
    let answer = preflight(&open, "https://app.example.org").await;
    assert_eq!(
        allowed_origin(&answer).as_deref(),
        Some("https://app.example.org")
    );
    let allowed_headers = answer
        .headers()
        .get("access-control-allow-headers")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("idempotency-key"),
        "{allowed_headers}"
    );
    assert_eq!(
        answer.headers().get("access-control-allow-credentials"),
        None,
        "bearer tokens only: cookies are never allowed cross-origin"
    );
    let stranger = preflight(&open, "https://evil.example").await;
    assert_eq!(allowed_origin(&stranger), None, "only the allowed origin");
}

/// The `Set-Cookie` of a login sent with `X-Forwarded-Proto: https`.
async fn login_cookie(app: &TestApp, email: &str) -> String {
    let answer = app
        .request(Method::POST, "/api/auth/login", None)
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": email, "password": syncscript_testkit::PASSWORD}))
        .send()
        .await
        .expect("login sent");
    assert_eq!(answer.status(), StatusCode::OK);
    answer
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Over https (here: a trusted proxy's `X-Forwarded-Proto`) the session
/// cookie is `__Host-` prefixed, so that no other site of the host can
/// plant one for a narrower path; anyone else's `X-Forwarded-Proto` is
/// not believed.
#[tokio::test]
async fn a_login_over_https_sets_a_host_prefixed_secure_cookie() {
    let behind_proxy = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    behind_proxy.signup("ada@test.dev", "Ada").await;
    let cookie = login_cookie(&behind_proxy, "ada@test.dev").await;
    assert!(cookie.starts_with("__Host-syncscript_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Secure", "Max-Age="] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value");
    let me = behind_proxy
        .request(Method::GET, "/api/me", None)
        .header("cookie", pair)
        .send()
        .await
        .expect("me sent");
    assert_eq!(me.status(), StatusCode::OK, "the prefixed cookie is read");
    let token = pair.split_once('=').expect("name=value").1;
    let plain = behind_proxy
        .request(Method::GET, "/api/me", None)
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("syncscript_session={token}"))
        .send()
        .await
        .expect("me sent");
    assert_eq!(
        plain.status(),
        StatusCode::UNAUTHORIZED,
        "over https a plain cookie, which any site of the host can set, is not read"
    );

    let direct = TestApp::spawn(Backend::Sqlite).await;
    direct.signup("ada@test.dev", "Ada").await;
    let cookie = login_cookie(&direct, "ada@test.dev").await;
    assert!(cookie.starts_with("syncscript_session="), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "a claim from a stranger: {cookie}"
    );
}

/// A request carrying two session cookies (one planted by a page on
/// another port of the same host, for a narrower path) is refused instead
/// of being served as whichever comes first, on REST and on the handshake.
#[tokio::test]
async fn several_session_cookies_are_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let victim = app.register("victim").await;
    let attacker = app.register("attacker").await;
    let planted = format!(
        "syncscript_session={}; syncscript_session={}",
        attacker.token, victim.token
    );
    for (method, path) in [(Method::GET, "/api/me"), (Method::POST, "/api/vaults")] {
        let answer = app
            .request(method.clone(), path, None)
            .header("cookie", &planted)
            .json(&json!({"name": "victim private notes"}))
            .send()
            .await
            .expect("sent");
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = answer.json().await.expect("error body");
        assert_eq!(body["error"]["code"], "UNAUTHORIZED");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("More than one session cookie"),
            "{message}"
        );
    }
    for user in [&victim, &attacker] {
        let (_, vaults) = app.as_user(user).list_vaults().await;
        assert_eq!(vaults["vaults"], json!([]), "no vault was created");
    }
    let refused = SocketBuilder::new(&app)
        .header("Cookie", &planted)
        .try_connect()
        .await;
    assert!(
        refused.as_ref().is_err_and(is_unauthorized),
        "the handshake is refused too"
    );
}

/// The Origin of a cookie-authenticated request must have the scheme the
/// server is reached by: an `https://` or `ws://` page is another origin
/// for a server reached over plain http, on REST and on the handshake.
#[tokio::test]
async fn the_origin_check_uses_the_scheme_the_server_is_reached_by() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let user = app.register("ada").await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let create = |origin: String| {
        app.request(Method::POST, "/api/vaults", None)
            .header("cookie", format!("syncscript_session={}", user.token))
            .header("origin", origin)
            .json(&json!({"name": "Reading"}))
            .send()
    };
    for scheme in ["https", "ws", "wss"] {
        let answer = create(format!("{scheme}://{host}")).await.expect("sent");
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{scheme}");
    }
    let own = create(format!("http://{host}")).await.expect("sent");
    assert_eq!(own.status(), StatusCode::CREATED);
    let refused = SocketBuilder::new(&app)
        .cookie(&user.token)
        .header("Origin", &format!("https://{host}"))
        .try_connect()
        .await;
    assert!(refused.as_ref().is_err_and(is_unauthorized));

    // Behind a trusted proxy that says https, the https page is the own one.
    let behind_proxy = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a network")];
    })
    .await;
    let user = behind_proxy.register("ada").await;
    let host = behind_proxy.base.trim_start_matches("http://").to_owned();
    let create = |origin: String| {
        behind_proxy
            .request(Method::POST, "/api/vaults", None)
            .header(
                "cookie",
                format!("__Host-syncscript_session={}", user.token),
            )
            .header("x-forwarded-proto", "https")
            .header("origin", origin)
            .json(&json!({"name": "Reading"}))
            .send()
    };
    let own = create(format!("https://{host}")).await.expect("sent");
    assert_eq!(own.status(), StatusCode::CREATED);
    let plain = create(format!("http://{host}")).await.expect("sent");
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn headers_that_never_end_are_cut() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let address = app.base.trim_start_matches("http://");
    let mut slow = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .expect("half a head");
    // The server hangs up (hyper may first answer 408) once the header
    // timeout has passed, instead of holding the connection forever.
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        syncscript::HEADER_READ_TIMEOUT + WAIT,
        slow.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection is still open");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
}

/// The server binary on a fresh SQLite file with every log at `trace`;
/// its output is drained as it comes (a full pipe would stall it).
struct LoudServer {
    child: Child,
    base: String,
    output: Vec<tokio::task::JoinHandle<String>>,
    _dir: tempfile::TempDir,
}

fn drain(
    stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let mut text = String::new();
        if let Some(mut stream) = stream {
            stream.read_to_string(&mut text).await.ok();
        }
        text
    })
}

impl LoudServer {
    async fn start() -> LoudServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("free port")
            .port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_syncscript"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .arg("--database-url")
            .arg(format!("sqlite://{}/db.sqlite", dir.path().display()))
            .args(["--log-level", "trace"])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("server started");
        let output = vec![drain(child.stdout.take()), drain(child.stderr.take())];
        let base = format!("http://127.0.0.1:{port}");
        let http = http_client();
        eventually("the server answers", WAIT * 4, async || {
            http.get(format!("{base}/healthz")).send().await.map(drop)
        })
        .await;
        LoudServer {
            child,
            base,
            output,
            _dir: dir,
        }
    }

    /// Stops the server and returns everything it logged.
    async fn log(mut self) -> String {
        self.child.start_kill().expect("server stopped");
        self.child.wait().await.expect("server exited");
        let mut log = String::new();
        for output in self.output {
            log.push_str(&output.await.expect("output read"));
        }
        log
    }
}

#[tokio::test]
async fn the_log_never_holds_a_password_or_a_session_token() {
    let server = LoudServer::start().await;
    let http = http_client();
    let url = |path: &str| format!("{}{path}", server.base);
    let password = "Secret-Pa55word-9f3c";
    let email = "ada@test.dev";
    let signup = http
        .post(url("/api/auth/signup"))
        .json(&json!({"email": email, "name": "Ada", "password": password}))
        .send()
        .await
        .expect("signup");
    assert_eq!(signup.status(), StatusCode::CREATED);
    let wrong = http
        .post(url("/api/auth/login"))
        .json(&json!({"email": email, "password": "Wrong-Pa55word-77aa"}))
        .send()
        .await
        .expect("wrong login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let login: Value = http
        .post(url("/api/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login body");
    let token = login["token"].as_str().expect("token").to_owned();
    let me = http
        .get(url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("me");
    assert_eq!(me.status(), StatusCode::OK);
    let cookie = http
        .get(url("/api/vaults"))
        .header("cookie", format!("syncscript_session={token}"))
        .send()
        .await
        .expect("cookie request");
    assert_eq!(cookie.status(), StatusCode::OK);
    // A Socket.IO handshake with the token in its CONNECT packet, over
    // long-polling (plain HTTP requests) and over a WebSocket (whose
    // frame-level crates log every message at `trace`).
    PollingSocket::connect(&http, &server.base, &token).await;
    let (socket, mut incoming) = SocketClient::start(&server.base, &token);
    let opened = tokio::time::timeout(WAIT, async {
        while let Some(item) = incoming.recv().await {
            if matches!(item, Incoming::Opened { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(opened, Ok(true), "the WebSocket handshake was accepted");
    socket.close().await;
    let logout = http
        .post(url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);

    let log = server.log().await;
    assert!(log.contains("syncscript listening"), "the log was captured");
    for secret in [password, "Wrong-Pa55word-77aa", token.as_str()] {
        assert!(
            !log.contains(secret),
            "the log holds a secret ({} bytes of log)",
            log.len()
        );
    }
}

/// The series of `syncscript_http_requests_total` in `/metrics`.
async fn request_series(app: &TestApp) -> usize {
    let text = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .filter(|line| line.starts_with("syncscript_http_requests_total{"))
        .count()
}

#[tokio::test]
async fn invented_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let invent = |index: usize| {
        Method::from_bytes(format!("X{index:05}{}", "A".repeat(64)).as_bytes()).expect("a method")
    };
    // One of each kind first: each makes its series (`other`, `unmatched`).
    app.http
        .request(invent(0), app.url("/api/me"))
        .send()
        .await
        .expect("sent");
    app.http
        .get(app.url("/no/such/path/0"))
        .send()
        .await
        .expect("sent");
    // Reading /metrics makes its own series once.
    request_series(&app).await;
    let before = request_series(&app).await;
    for index in 1..300 {
        app.http
            .request(invent(index), app.url("/api/me"))
            .send()
            .await
            .expect("sent");
    }
    for index in 1..100 {
        app.http
            .get(app.url(&format!("/no/such/path/{index}")))
            .send()
            .await
            .expect("sent");
    }
    let after = request_series(&app).await;
    assert_eq!(
        after, before,
        "hundreds of invented methods and paths add no series"
    );
}

/// Knowing a socket's id (its Engine.IO session id) from another client
/// address gives nothing: the session's polling requests, reading its
/// events or sending commands as its user, are refused from any address
/// but the one that opened it, while its owner goes on as before.
#[tokio::test]
async fn a_polling_session_is_served_only_to_the_address_that_opened_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let v = &team.vault.id;
    let http = http_client();
    let mut victim = PollingSocket::connect(&http, &app.base, &team.owner.token).await;
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("a client on 127.0.0.2");
    let join = format!("42{}", json!(["vault:join", {"vaultId": v, "since": 0}]));
    let command = elsewhere
        .post(victim.url())
        .body(join.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(
        command.status(),
        StatusCode::FORBIDDEN,
        "a command as the victim"
    );
    let poll = elsewhere.get(victim.url()).send().await.expect("sent");
    assert_eq!(
        poll.status(),
        StatusCode::FORBIDDEN,
        "a poll of the victim's events"
    );
    // Other spellings of the query name the same session for Engine.IO,
    // and for the check too.
    let sid = victim
        .url()
        .rsplit("sid=")
        .next()
        .expect("the session id")
        .to_owned();
    for query in [
        format!("EIO=4&transport=polling&sid&sid={sid}"),
        format!("EIO=4&transport=polling&s%69d=x&sid={sid}"),
    ] {
        let poll = elsewhere
            .get(format!("{}/socket.io/?{query}", app.base))
            .send()
            .await
            .expect("sent");
        assert_eq!(poll.status(), StatusCode::FORBIDDEN, "{query}");
    }
    victim.send(&[&join]).await;
    let joined = victim.wait_for("42[\"vault:joined\"").await;
    assert!(joined.contains(v.as_str()), "{joined}");
}
