//! Abuse limits (docs/security.md "Limits"): login and signup attempts per
//! client address, with `X-Forwarded-For` believed only from a trusted
//! proxy; commands per socket, vaults per socket, sockets per user, the
//! Socket.IO payload size and the handshake timeout.

use std::num::NonZeroU32;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use syncscript::config::Limits;
use syncscript_testkit::{Backend, TestApp, TestUser, eventually};

use crate::hostile::RawSocket;
use crate::polling::PollingSocket;
use crate::realtime::wait_presence;
use crate::socket::{SocketBuilder, WAIT};

/// A wrong-password login from `forwarded_for` (as `X-Forwarded-For`).
async fn failed_login(app: &TestApp, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"email": "nobody@test.dev", "password": "wrong password"}));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("login sent")
}

async fn assert_limited(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
}

#[tokio::test]
async fn logins_and_signups_are_limited_per_address() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.auth_rate_per_minute = NonZeroU32::new(3);
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            failed_login(&app, None).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_limited(failed_login(&app, None).await).await;
    // Signup draws on the same budget; a spoofed header changes nothing
    // when no proxy is trusted.
    let signup = app
        .request(Method::POST, "/api/auth/signup", None)
        .header("x-forwarded-for", "198.51.100.1")
        .json(&json!({"email": "new@test.dev", "name": "New", "password": "long enough"}))
        .send()
        .await
        .expect("signup sent");
    assert_limited(signup).await;
    assert_eq!(
        app.count("users").await,
        0,
        "a limited signup writes nothing"
    );
    assert_limited(failed_login(&app, Some("198.51.100.2")).await).await;
    // Other routes are not limited.
    let (status, _) = app.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.auth_rate_per_minute = NonZeroU32::new(2);
        config.limits.trusted_proxies = vec!["127.0.0.1/32".parse().expect("network")];
    })
    .await;
    let client = "198.51.100.7";
    for _ in 0..2 {
        let answer = failed_login(&app, Some(client)).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(failed_login(&app, Some(client)).await).await;
    // What a client prepends to the header is not believed: the proxy's
    // own entry (the last) names the client.
    assert_limited(failed_login(&app, Some(&format!("203.0.113.1, {client}"))).await).await;
    let other = failed_login(&app, Some("198.51.100.8")).await;
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "another client has its own budget"
    );
}

async fn owner_with_vaults(app: &TestApp, count: usize) -> (TestUser, Vec<String>) {
    let owner = app.register("owner").await;
    let mut vaults = Vec::new();
    for index in 0..count {
        vaults.push(app.create_vault(&owner, &format!("Vault {index}")).await.id);
    }
    (owner, vaults)
}

#[tokio::test]
async fn a_socket_sending_too_fast_is_refused_then_served_again() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.socket_command_rate = NonZeroU32::new(5);
    })
    .await;
    let (owner, vaults) = owner_with_vaults(&app, 1).await;
    let socket = SocketBuilder::new(&app).token(&owner.token).connect().await;
    let mut codes = Vec::new();
    for _ in 0..20 {
        let ack = socket.emit_with_ack("vault:leave", json!(vaults[0])).await;
        codes.push(ack["error"]["code"].as_str().unwrap_or("ok").to_owned());
    }
    let limited = codes.iter().filter(|code| *code == "RATE_LIMITED").count();
    assert!(
        limited >= 5,
        "a burst of 20 against 5/s (burst 10): {codes:?}"
    );
    assert_eq!(codes[0], "ok", "{codes:?}");
    // The budget refills: within a few seconds commands are served again.
    eventually("commands are served again", WAIT, async || {
        let ack = socket.emit_with_ack("vault:leave", json!(vaults[0])).await;
        if ack["ok"] == true { Ok(()) } else { Err(ack) }
    })
    .await;
}

#[tokio::test]
async fn a_socket_watches_a_bounded_number_of_vaults() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.max_vaults_per_socket = 2;
    })
    .await;
    let (owner, vaults) = owner_with_vaults(&app, 3).await;
    let mut socket = SocketBuilder::new(&app).token(&owner.token).connect().await;
    socket.join_ok(&vaults[0]).await;
    socket.join_ok(&vaults[1]).await;
    let refused = socket.join(json!(vaults[2])).await;
    assert_eq!(refused["error"]["code"], "RATE_LIMITED", "{refused}");
    socket.join_ok(&vaults[1]).await;
    let left = socket.emit_with_ack("vault:leave", json!(vaults[0])).await;
    assert_eq!(left["ok"], true);
    socket.join_ok(&vaults[2]).await;
}

#[tokio::test]
async fn a_user_has_a_bounded_number_of_sockets() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.max_sockets_per_user = 2;
    })
    .await;
    let user = app.register("many").await;
    let first = SocketBuilder::new(&app).token(&user.token).connect().await;
    let _second = SocketBuilder::new(&app).token(&user.token).connect().await;
    let refused = SocketBuilder::new(&app)
        .token(&user.token)
        .try_connect()
        .await;
    let reason = refused.err().expect("a third socket is refused");
    assert_eq!(reason["message"], "RATE_LIMITED", "{reason}");
    let other = app.register("other").await;
    let _others = SocketBuilder::new(&app).token(&other.token).connect().await;
    first.disconnect().await;
    eventually("the closed socket's seat is freed", WAIT, async || {
        SocketBuilder::new(&app)
            .token(&user.token)
            .try_connect()
            .await
            .map(drop)
    })
    .await;
}

#[tokio::test]
async fn an_oversized_packet_closes_only_its_socket() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.max_socketio_payload = 4096;
    })
    .await;
    let (owner, vaults) = owner_with_vaults(&app, 1).await;
    let mut big = SocketBuilder::new(&app).token(&owner.token).connect().await;
    let mut bystander = SocketBuilder::new(&app).token(&owner.token).connect().await;
    big.join_ok(&vaults[0]).await;
    bystander.join_ok(&vaults[0]).await;
    wait_presence(&mut bystander, &vaults[0], &[(&owner, "owner", 2)]).await;
    big.emit(
        "source:create",
        json!({"vaultId": vaults[0], "title": "x".repeat(8000), "fileUrl": "https://e.org/a.pdf"}),
    )
    .await;
    // The server drops the connection (how rust_socketio reports that
    // depends on how the close reaches it): the vault's presence, as the
    // server sees it, loses the socket.
    wait_presence(&mut bystander, &vaults[0], &[(&owner, "owner", 1)]).await;
    assert_eq!(app.count("sources").await, 0);
    let source = app.create_source(&owner, &vaults[0], "still served").await;
    let event = bystander.next_event("source:created", WAIT).await;
    assert_eq!(event["source"]["id"], source.id);
}

/// A transport that opens and never sends the Socket.IO CONNECT is closed
/// after the handshake timeout (`--handshake-timeout`, 10 s by default:
/// docs/protocol.md, Limits), whether it polls or holds a WebSocket, and
/// the server serves others meanwhile and afterwards. The timer is the
/// transport's, not the database's: one backend, and a short timeout in
/// place of the default.
#[tokio::test]
async fn a_transport_that_never_completes_the_handshake_is_closed() {
    assert_eq!(
        Limits::default().handshake_timeout,
        Duration::from_secs(10),
        "the documented default"
    );
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let (owner, vaults) = owner_with_vaults(&app, 1).await;
    let polling = PollingSocket::open(&app.http, &app.url("")).await;
    let mut websocket = RawSocket::open(&app).await.expect("a WebSocket transport");
    let mut served = SocketBuilder::new(&app).token(&owner.token).connect().await;
    served.join_ok(&vaults[0]).await;
    // Without a Socket.IO CONNECT the server gives up on the transport
    // after the timeout (socketioxide's default would wait 45 s).
    eventually("the polling transport is closed", WAIT, async || {
        let (status, body) = polling.poll_answer().await;
        let closed = body.split('\u{1e}').any(|packet| packet == "1");
        if status == StatusCode::BAD_REQUEST || closed {
            Ok(())
        } else {
            Err((status, body))
        }
    })
    .await;
    websocket
        .closed()
        .await
        .expect("the WebSocket transport is closed");
    let source = app
        .create_source(&owner, &vaults[0], "served afterwards")
        .await;
    let event = served.next_event("source:created", WAIT).await;
    assert_eq!(event["source"]["id"], source.id);
}

/// Member additions count against a per-user limit (adding by e-mail tells
/// whether an account exists): past it, 429 with `Retry-After`, and
/// nobody is added.
#[tokio::test]
async fn member_additions_are_limited_per_user() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.limits.member_additions_per_minute = NonZeroU32::new(3);
    })
    .await;
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Lab").await;
    let mut others = Vec::new();
    for index in 0..4 {
        others.push(app.register(&format!("other{index}")).await);
    }
    let add = |email: String| {
        app.request(
            Method::POST,
            &format!("/api/vaults/{}/members", vault.id),
            Some(&owner),
        )
        .json(&json!({"email": email, "role": "viewer"}))
        .send()
    };
    // Known and unknown e-mails alike count.
    let unknown = add("nobody@example.org".into()).await.expect("sent");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    for other in &others[..2] {
        let added = add(other.email.clone()).await.expect("sent");
        assert_eq!(added.status(), StatusCode::CREATED);
    }
    assert_limited(add(others[2].email.clone()).await.expect("sent")).await;
    let (_, members) = app.as_user(&owner).list_members(&vault.id).await;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(3),
        "the owner and two: {members}"
    );
    // Another user has a budget of their own.
    let other_vault = app.create_vault(&others[3], "Elsewhere").await;
    let added = app
        .request(
            Method::POST,
            &format!("/api/vaults/{}/members", other_vault.id),
            Some(&others[3]),
        )
        .json(&json!({"email": owner.email, "role": "viewer"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(added.status(), StatusCode::CREATED);
}
