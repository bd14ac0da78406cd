//! `Caller`: one helper per REST route of docs/protocol.md, sent as one
//! user (or nobody), answering the status and the JSON body whatever they
//! are, for tests that assert on the answer itself. The helpers of
//! [`Api`] that assert success are built for setting a scene instead.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::api::{Api, TestUser};

/// The REST API as seen by one caller: see [`Api::as_user`] and
/// [`Api::anonymous`].
#[derive(Clone, Copy)]
pub struct Caller<'a> {
    api: &'a Api,
    user: Option<&'a TestUser>,
}

impl Api {
    /// The routes, called with `user`'s bearer token.
    pub fn as_user<'a>(&'a self, user: &'a TestUser) -> Caller<'a> {
        Caller {
            api: self,
            user: Some(user),
        }
    }

    /// The routes, called without credentials.
    pub fn anonymous(&self) -> Caller<'_> {
        Caller {
            api: self,
            user: None,
        }
    }
}

impl Caller<'_> {
    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.api.call(method, path, self.user, body).await
    }

    /// `POST /api/auth/signup`.
    pub async fn signup(&self, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, "/api/auth/signup", Some(body))
            .await
    }

    /// `POST /api/auth/login`.
    pub async fn login(&self, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, "/api/auth/login", Some(body)).await
    }

    /// `POST /api/auth/logout`.
    pub async fn logout(&self) -> (StatusCode, Value) {
        self.send(Method::POST, "/api/auth/logout", None).await
    }

    /// `GET /api/me`.
    pub async fn me(&self) -> (StatusCode, Value) {
        self.send(Method::GET, "/api/me", None).await
    }

    /// `GET /api/vaults`.
    pub async fn list_vaults(&self) -> (StatusCode, Value) {
        self.send(Method::GET, "/api/vaults", None).await
    }

    /// `POST /api/vaults`.
    pub async fn create_vault(&self, body: Value) -> (StatusCode, Value) {
        self.send(Method::POST, "/api/vaults", Some(body)).await
    }

    /// `GET /api/vaults/{id}`.
    pub async fn get_vault(&self, vault_id: &str) -> (StatusCode, Value) {
        self.send(Method::GET, &format!("/api/vaults/{vault_id}"), None)
            .await
    }

    /// `PATCH /api/vaults/{id}`.
    pub async fn update_vault(&self, vault_id: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            Method::PATCH,
            &format!("/api/vaults/{vault_id}"),
            Some(body),
        )
        .await
    }

    /// `DELETE /api/vaults/{id}`.
    pub async fn delete_vault(&self, vault_id: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, &format!("/api/vaults/{vault_id}"), None)
            .await
    }

    /// `GET /api/vaults/{id}/members`.
    pub async fn list_members(&self, vault_id: &str) -> (StatusCode, Value) {
        self.send(
            Method::GET,
            &format!("/api/vaults/{vault_id}/members"),
            None,
        )
        .await
    }

    /// `POST /api/vaults/{id}/members`.
    pub async fn add_member(&self, vault_id: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/vaults/{vault_id}/members");
        self.send(Method::POST, &path, Some(body)).await
    }

    /// `PATCH /api/vaults/{id}/members/{userId}`.
    pub async fn update_member(
        &self,
        vault_id: &str,
        user_id: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let path = format!("/api/vaults/{vault_id}/members/{user_id}");
        self.send(Method::PATCH, &path, Some(body)).await
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`.
    pub async fn remove_member(&self, vault_id: &str, user_id: &str) -> (StatusCode, Value) {
        let path = format!("/api/vaults/{vault_id}/members/{user_id}");
        self.send(Method::DELETE, &path, None).await
    }

    /// `GET /api/vaults/{id}/sources`.
    pub async fn list_sources(&self, vault_id: &str) -> (StatusCode, Value) {
        self.send(
            Method::GET,
            &format!("/api/vaults/{vault_id}/sources"),
            None,
        )
        .await
    }

    /// `POST /api/vaults/{id}/sources`.
    pub async fn create_source(&self, vault_id: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/vaults/{vault_id}/sources");
        self.send(Method::POST, &path, Some(body)).await
    }

    /// `GET /api/sources/{id}`.
    pub async fn get_source(&self, source_id: &str) -> (StatusCode, Value) {
        self.send(Method::GET, &format!("/api/sources/{source_id}"), None)
            .await
    }

    /// `PATCH /api/sources/{id}`.
    pub async fn update_source(&self, source_id: &str, body: Value) -> (StatusCode, Value) {
        let path = format!("/api/sources/{source_id}");
        self.send(Method::PATCH, &path, Some(body)).await
    }

    /// `DELETE /api/sources/{id}`.
    pub async fn delete_source(&self, source_id: &str) -> (StatusCode, Value) {
        self.send(Method::DELETE, &format!("/api/sources/{source_id}"), None)
            .await
    }

    /// `GET /api/vaults/{id}/events` with `query` (`since=2&limit=5`, or
    /// empty): one page, as the server answers it.
    pub async fn list_events(&self, vault_id: &str, query: &str) -> (StatusCode, Value) {
        let path = match query {
            "" => format!("/api/vaults/{vault_id}/events"),
            query => format!("/api/vaults/{vault_id}/events?{query}"),
        };
        self.send(Method::GET, &path, None).await
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> (StatusCode, Value) {
        self.send(Method::GET, "/healthz", None).await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> (StatusCode, Value) {
        self.send(Method::GET, "/readyz", None).await
    }

    /// `GET /api/openapi.json`.
    pub async fn openapi(&self) -> (StatusCode, Value) {
        self.send(Method::GET, "/api/openapi.json", None).await
    }
}
