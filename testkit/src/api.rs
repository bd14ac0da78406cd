//! `Api`: a client of one server's REST API with helpers named after the
//! routes they call, for a [`TestApp`](crate::TestApp) or any node of a
//! [`Cluster`](crate::Cluster).

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use syncscript_protocol::{EventList, LoggedEvent, LoginResponse, Role, Source, Vault};

/// The password of every user made by [`TestApp::register`].
pub const PASSWORD: &str = "correct horse battery";

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub email: String,
    pub name: String,
    pub token: String,
}

/// The users and the vault of [`TestApp::team`].
pub struct Team {
    pub owner: TestUser,
    pub contributor: TestUser,
    pub viewer: TestUser,
    pub outsider: TestUser,
    pub vault: Vault,
}

/// A client of the REST API at `base`.
#[derive(Debug, Clone)]
pub struct Api {
    /// `http://host:port`.
    pub base: String,
    pub http: reqwest::Client,
}

/// An HTTP client that, like the project's own, never reuses a connection
/// the server may be closing ([`syncscript_protocol::CLIENT_IDLE_REUSE`]).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(syncscript_protocol::CLIENT_IDLE_REUSE)
        .build()
        .expect("HTTP client")
}

impl Api {
    /// The API at `base` (`http://host:port`).
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            base: base.into(),
            http: http_client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the bearer token of `user` (none for `None`).
    pub fn request(&self, method: Method, path: &str, user: Option<&TestUser>) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match user {
            Some(user) => request.bearer_auth(&user.token),
            None => request,
        }
    }

    /// Sends a request and returns the status and the JSON body (or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<&TestUser>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path, user);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let text = response.text().await.expect("body read");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json)
    }

    /// `POST /api/auth/signup` for `{name}@test.dev`, then
    /// `POST /api/auth/login`.
    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{name}@test.dev");
        self.signup(&email, name).await;
        let login = self.login(&email, PASSWORD).await;
        TestUser {
            id: login.user.id,
            email,
            name: name.to_owned(),
            token: login.token,
        }
    }

    /// `POST /api/auth/signup` with [`PASSWORD`].
    pub async fn signup(&self, email: &str, name: &str) {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/signup",
                None,
                Some(json!({"email": email, "name": name, "password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "signup {email}: {body}");
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> LoginResponse {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {email}: {body}");
        serde_json::from_value(body).expect("login response")
    }

    /// `POST /api/vaults`.
    pub async fn create_vault(&self, owner: &TestUser, name: &str) -> Vault {
        let (status, body) = self
            .call(
                Method::POST,
                "/api/vaults",
                Some(owner),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create vault: {body}");
        serde_json::from_value(body["vault"].clone()).expect("vault")
    }

    /// `DELETE /api/vaults/{id}`.
    pub async fn delete_vault(&self, owner: &TestUser, vault_id: &str) {
        let (status, body) = self
            .call(
                Method::DELETE,
                &format!("/api/vaults/{vault_id}"),
                Some(owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "delete vault: {body}");
    }

    /// `POST /api/vaults/{id}/members`.
    pub async fn add_member(&self, owner: &TestUser, vault_id: &str, user: &TestUser, role: Role) {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/vaults/{vault_id}/members"),
                Some(owner),
                Some(json!({"email": user.email, "role": role})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "add member: {body}");
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`.
    pub async fn remove_member(&self, owner: &TestUser, vault_id: &str, user: &TestUser) {
        let (status, body) = self
            .call(
                Method::DELETE,
                &format!("/api/vaults/{vault_id}/members/{}", user.id),
                Some(owner),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT, "remove member: {body}");
    }

    /// `POST /api/vaults/{id}/sources`.
    pub async fn create_source(&self, user: &TestUser, vault_id: &str, title: &str) -> Source {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/vaults/{vault_id}/sources"),
                Some(user),
                Some(json!({"title": title, "fileUrl": "https://example.org/paper.pdf"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "create source: {body}");
        serde_json::from_value(body["source"].clone()).expect("source")
    }

    /// The vault's whole log, as the bearer of `token` reads it.
    pub async fn event_log(&self, token: &str, vault_id: &str) -> Vec<LoggedEvent> {
        self.event_log_since(token, vault_id, 0).await
    }

    /// The vault's log after seq `since`, read through
    /// `GET /api/vaults/{id}/events` page after page up to the head the
    /// pages report, as the bearer of `token` reads it.
    pub async fn event_log_since(
        &self,
        token: &str,
        vault_id: &str,
        since: i64,
    ) -> Vec<LoggedEvent> {
        let mut log: Vec<LoggedEvent> = Vec::new();
        loop {
            let after = log.last().map_or(since, |event| event.seq);
            let response = self
                .http
                .get(self.url(&format!(
                    "/api/vaults/{vault_id}/events?since={after}&limit=1000"
                )))
                .bearer_auth(token)
                .send()
                .await
                .expect("request sent");
            let status = response.status();
            let text = response.text().await.expect("body read");
            assert_eq!(status, StatusCode::OK, "read the log: {text}");
            let page: EventList = serde_json::from_str(&text).expect("a page of the log");
            let done = page.events.is_empty()
                || page
                    .events
                    .last()
                    .is_some_and(|event| event.seq >= page.seq);
            log.extend(page.events);
            if done {
                return log;
            }
        }
    }

    /// The titles of a vault's sources and the names of its logged events,
    /// in order, as `user` reads them.
    pub async fn titles_and_event_names(
        &self,
        user: &TestUser,
        vault_id: &str,
    ) -> (Vec<String>, Vec<String>) {
        let strings = |body: &Value, list: &str, field: &str| -> Vec<String> {
            body[list]
                .as_array()
                .unwrap_or_else(|| panic!("{list}: {body}"))
                .iter()
                .map(|item| item[field].as_str().expect(field).to_owned())
                .collect()
        };
        let (status, sources) = self
            .call(
                Method::GET,
                &format!("/api/vaults/{vault_id}/sources"),
                Some(user),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "list sources: {sources}");
        let events = self.event_log(&user.token, vault_id).await;
        (
            strings(&sources, "sources", "title"),
            events.into_iter().map(|event| event.name).collect(),
        )
    }

    /// A vault with an owner, a contributor, a viewer and an outsider.
    pub async fn team(&self) -> Team {
        let owner = self.register("owner").await;
        let contributor = self.register("contributor").await;
        let viewer = self.register("viewer").await;
        let outsider = self.register("outsider").await;
        let vault = self.create_vault(&owner, "Team Vault").await;
        self.add_member(&owner, &vault.id, &contributor, Role::Contributor)
            .await;
        self.add_member(&owner, &vault.id, &viewer, Role::Viewer)
            .await;
        Team {
            owner,
            contributor,
            viewer,
            outsider,
            vault,
        }
    }
}
