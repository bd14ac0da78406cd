//! Signup, login, sessions (expiry, revocation), the cookie path and its
//! Origin check.

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use syncscript_testkit::on_both_backends;
use syncscript_testkit::{Backend, PASSWORD, TestApp, TestDatabase};

on_both_backends!(
    signup_login_me_logout,
    signup_rejects_bad_input_and_duplicates,
    signup_can_be_disabled,
    expired_and_revoked_sessions_are_refused,
    cookie_sessions_work_and_foreign_origins_are_refused,
    look_alike_emails_are_one_account,
    colliding_accounts_stop_the_migration_until_resolved,
);

async fn signup_login_me_logout(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(json!({"email": "Ada@Example.org", "name": "Ada", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["user"]["email"], "Ada@Example.org");
    assert_eq!(body["user"]["name"], "Ada");
    assert!(body["user"].get("passwordHash").is_none());

    let (status, body) = app
        .call(
            Method::POST,
            "/api/auth/login",
            None,
            Some(json!({"email": "ada@example.org", "password": "wrong password"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");

    let response = app
        .http
        .post(app.url("/api/auth/login"))
        .json(&json!({"email": "ada@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("syncscript_session={token}")),
        "{cookie}"
    );
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    assert!(body["expiresAt"].as_str().unwrap() > body["user"]["createdAt"].as_str().unwrap());

    let stored: (String,) = sqlx::query_as("SELECT token_hash FROM sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored.0, token, "only a hash of the token is stored");

    let me = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: serde_json::Value = me.json().await.unwrap();
    assert_eq!(me["user"]["name"], "Ada");

    let (status, _) = app.call(Method::GET, "/api/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let logout = app
        .http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert!(
        logout.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

async fn signup_rejects_bad_input_and_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("taken").await;
    let cases = [
        (
            json!({"email": "TAKEN@test.dev", "name": "X", "password": PASSWORD}),
            409,
            "CONFLICT",
        ),
        (
            json!({"email": "no-at-sign", "name": "X", "password": PASSWORD}),
            422,
            "VALIDATION",
        ),
        (
            json!({"email": "a@b.c", "name": "  ", "password": PASSWORD}),
            422,
            "VALIDATION",
        ),
        (
            json!({"email": "a@b.c", "name": "x".repeat(201), "password": PASSWORD}),
            422,
            "VALIDATION",
        ),
        (
            json!({"email": "a@b.c", "name": "X", "password": "short"}),
            422,
            "VALIDATION",
        ),
        (json!({"email": "a@b.c", "name": "X"}), 400, "BAD_REQUEST"),
        (
            json!({"email": 5, "name": "X", "password": PASSWORD}),
            400,
            "BAD_REQUEST",
        ),
        (json!(["not", "an", "object"]), 400, "BAD_REQUEST"),
    ];
    for (body, status, code) in cases {
        let (got, answer) = app
            .call(Method::POST, "/api/auth/signup", None, Some(body.clone()))
            .await;
        assert_eq!(got.as_u16(), status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let not_json = app
        .http
        .post(app.url("/api/auth/signup"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let huge = app
        .http
        .post(app.url("/api/auth/signup"))
        .json(&json!({"email": "a@b.c", "name": "x".repeat(70_000), "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let huge: serde_json::Value = huge.json().await.unwrap();
    assert_eq!(huge["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(app.count("users").await, 1, "no bad signup wrote a user");
}

async fn signup_can_be_disabled(backend: Backend) {
    let app = TestApp::spawn_with(backend, |config| config.signup_enabled = false).await;
    let (status, body) = app
        .call(
            Method::POST,
            "/api/auth/signup",
            None,
            Some(json!({"email": "a@b.c", "name": "A", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "FORBIDDEN");
    assert_eq!(app.count("users").await, 0);
}

async fn expired_and_revoked_sessions_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let second = app.login(&ada.email, PASSWORD).await;
    let (status, _) = app.call(Method::GET, "/api/me", Some(&ada), None).await;
    assert_eq!(status, StatusCode::OK);

    sqlx::query("UPDATE sessions SET expires_at = '2000-01-01T00:00:00.000Z' WHERE user_id = $1 AND id IN (SELECT id FROM sessions WHERE user_id = $1 ORDER BY created_at LIMIT 1)")
        .bind(&ada.id)
        .execute(&app.db)
        .await
        .unwrap();
    let (status, body) = app.call(Method::GET, "/api/me", Some(&ada), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired session: {body}");

    let me = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&second.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the other session lives on");
    app.http
        .post(app.url("/api/auth/logout"))
        .bearer_auth(&second.token)
        .send()
        .await
        .unwrap();
    let me = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth(&second.token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "revoked session");
    let (status, _) = app.call(Method::GET, "/api/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let forged = app
        .http
        .get(app.url("/api/me"))
        .bearer_auth("forged-token")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

async fn cookie_sessions_work_and_foreign_origins_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ada = app.register("ada").await;
    let cookie = format!("syncscript_session={}", ada.token);
    let own_origin = app.base.clone();
    let create = |origin: Option<(&'static str, String)>, cookie: Option<&str>, bearer: bool| {
        let mut request = app
            .http
            .post(app.url("/api/vaults"))
            .json(&json!({"name": "Via cookie"}));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        if let Some((header, value)) = origin {
            request = request.header(header, value);
        }
        if bearer {
            request = request.bearer_auth(&ada.token);
        }
        request
    };

    let me = app
        .http
        .get(app.url("/api/me"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK, "reads are not Origin-checked");

    let cases = [
        (Some(("origin", own_origin.clone())), StatusCode::CREATED),
        (None, StatusCode::CREATED),
        (
            Some(("origin", "http://evil.test".to_owned())),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(("origin", "http://127.0.0.1:1".to_owned())),
            StatusCode::FORBIDDEN,
        ),
        (Some(("origin", "null".to_owned())), StatusCode::FORBIDDEN),
        (
            Some(("referer", "http://evil.test/page".to_owned())),
            StatusCode::FORBIDDEN,
        ),
        (
            Some(("referer", format!("{own_origin}/test/realtime"))),
            StatusCode::CREATED,
        ),
    ];
    let mut created = 0;
    for (origin, expected) in cases {
        let response = create(origin.clone(), Some(&cookie), false)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{origin:?}");
        if expected == StatusCode::CREATED {
            created += 1;
        } else {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "FORBIDDEN");
        }
    }
    let bearer = create(Some(("origin", "http://evil.test".to_owned())), None, true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::CREATED,
        "bearer requests are not Origin-checked"
    );
    created += 1;
    assert_eq!(
        app.count("vaults").await,
        created,
        "refused requests created nothing"
    );

    let logout = app
        .http
        .post(app.url("/api/auth/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        logout.status(),
        StatusCode::FORBIDDEN,
        "a foreign page cannot log the user out"
    );
}

/// E-mails are one account per Unicode case folding on both backends:
/// SQLite's `lower()` folds ASCII only, so `Äda@` and `äda@` used to be
/// two accounts there (and one on PostgreSQL).
async fn look_alike_emails_are_one_account(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = app.anonymous();
    let signup = |email: &str| {
        anonymous.signup(json!({"email": email, "name": "Ada", "password": PASSWORD}))
    };
    let (status, body) = signup("Äda@example.org").await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for look_alike in ["äda@example.org", "ÄDA@EXAMPLE.ORG"] {
        let (status, body) = signup(look_alike).await;
        assert_eq!(status, StatusCode::CONFLICT, "{look_alike}: {body}");
    }
    let (status, login) = app
        .anonymous()
        .login(json!({"email": "äDA@example.org", "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["user"]["email"], "Äda@example.org", "as signed up");
    let owner = app.register("owner").await;
    let vault = app.create_vault(&owner, "Lab").await;
    let (status, added) = app
        .as_user(&owner)
        .add_member(
            &vault.id,
            json!({"email": "äda@EXAMPLE.org", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    assert_eq!(added["member"]["userId"], login["user"]["id"]);
}

/// Two accounts whose e-mails differ only by case, left by the old rule
/// (`Straße` and `STRASSE` fold alike but are distinct for `lower()` on both
/// backends), stop the migration with a message that names them, and are
/// never merged; once one is renamed, the migration goes through.
async fn colliding_accounts_stop_the_migration_until_resolved(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    syncscript::db::migrate(&database.url)
        .await
        .expect("fresh migration");
    let mut conn = sqlx::AnyConnection::connect(&database.existing_url())
        .await
        .expect("connect");
    for (id, email) in [
        ("u-1", "Straße@example.org"),
        ("u-2", "STRASSE@example.org"),
    ] {
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, created_at) VALUES ($1, $2, 'x', 'x', 'x')",
        )
        .bind(id)
        .bind(email)
        .execute(&mut conn)
        .await
        .expect("an account from before the rule");
    }
    let refused = syncscript::db::migrate(&database.url)
        .await
        .expect_err("the collision stops the migration");
    let message = format!("{refused:#}");
    for named in ["Straße@example.org (u-1)", "STRASSE@example.org (u-2)"] {
        assert!(message.contains(named), "{message}");
    }
    let (accounts,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users")
        .fetch_one(&mut conn)
        .await
        .expect("count");
    assert_eq!(accounts, 2, "nothing merged");
    sqlx::query("UPDATE users SET email = 'strasse.two@example.org' WHERE id = 'u-2'")
        .execute(&mut conn)
        .await
        .expect("renamed");
    syncscript::db::migrate(&database.url)
        .await
        .expect("resolved: the migration goes through");
    let (folded,): (String,) = sqlx::query_as("SELECT email_folded FROM users WHERE id = 'u-1'")
        .fetch_one(&mut conn)
        .await
        .expect("folded");
    assert_eq!(folded, "strasse@example.org");
    conn.close().await.ok();
}
