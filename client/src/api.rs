//! A typed async client of the REST API of docs/protocol.md: one method per route,
//! answers as `syncscript-protocol` types, and failures as [`ClientError`]
//! (the contract's `{"error": {code, message}}` becomes
//! [`ClientError::Server`] with its HTTP status and code).

use std::sync::Arc;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use syncscript_protocol::{
    AddMemberRequest, CreateSourceRequest, ErrorBody, EventList, Health, LoginRequest,
    LoginResponse, Member, MemberList, MemberResponse, RenameVaultRequest, Role, SignupRequest,
    Source, SourceList, SourceResponse, UpdateMemberRequest, UpdateSourceRequest, User,
    UserResponse, Vault, VaultDetail, VaultInput, VaultList, VaultResponse, VaultSummary,
};
use url::Url;

use crate::error::ClientError;

/// A client of one server, optionally authenticated with a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl ApiClient {
    /// A client of the server at `server_url` (e.g. `http://127.0.0.1:3000`),
    /// sending `token` as `Authorization: Bearer` when given.
    pub fn new(server_url: &str, token: Option<String>) -> Result<ApiClient, ClientError> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: server_url.to_owned(),
            reason,
        };
        let base =
            Url::parse(server_url.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http(s) URL".into()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("syncscript-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Transport {
                url: server_url.to_owned(),
                source: Arc::new(source),
            })?;
        Ok(ApiClient { http, base, token })
    }

    /// The same server with another token (or none).
    pub fn with_token(&self, token: Option<String>) -> ApiClient {
        ApiClient {
            token,
            ..self.clone()
        }
    }

    /// The server URL, without a trailing slash.
    pub fn server_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The bearer token this client sends, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server_url())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let builder = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, path: &str, builder: RequestBuilder) -> Result<Response, ClientError> {
        let response = builder
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: self.url(path),
                source: Arc::new(source),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => ClientError::Server {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            },
            Err(_) => ClientError::UnexpectedResponse {
                status: status.as_u16(),
                body: if body.is_empty() {
                    status.canonical_reason().unwrap_or("").to_owned()
                } else {
                    body
                },
            },
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        path: &str,
        builder: RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(path, builder).await?;
        response.json().await.map_err(|source| ClientError::Decode {
            url: self.url(path),
            source: Arc::new(source),
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(path, self.request(Method::GET, path)).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.json(path, self.request(method, path).json(body)).await
    }

    async fn no_content(&self, method: Method, path: &str) -> Result<(), ClientError> {
        self.send(path, self.request(method, path)).await?;
        Ok(())
    }

    /// `POST /api/auth/signup`.
    pub async fn signup(
        &self,
        email: &str,
        name: &str,
        password: &str,
    ) -> Result<User, ClientError> {
        let body = SignupRequest {
            email: email.into(),
            name: name.into(),
            password: password.into(),
        };
        let answer: UserResponse = self
            .with_body(Method::POST, "/api/auth/signup", &body)
            .await?;
        Ok(answer.user)
    }

    /// `POST /api/auth/login`: the token is in the answer (and nowhere else).
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginResponse, ClientError> {
        let body = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        self.with_body(Method::POST, "/api/auth/login", &body).await
    }

    /// `POST /api/auth/logout`: revokes this client's session.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.no_content(Method::POST, "/api/auth/logout").await
    }

    /// `GET /api/me`.
    pub async fn me(&self) -> Result<User, ClientError> {
        let answer: UserResponse = self.get("/api/me").await?;
        Ok(answer.user)
    }

    /// `GET /api/vaults`: the caller's vaults.
    pub async fn list_vaults(&self) -> Result<Vec<VaultSummary>, ClientError> {
        let answer: VaultList = self.get("/api/vaults").await?;
        Ok(answer.vaults)
    }

    /// `POST /api/vaults`: the caller becomes its owner.
    pub async fn create_vault(&self, name: &str) -> Result<Vault, ClientError> {
        let body = VaultInput { name: name.into() };
        let answer: VaultResponse = self.with_body(Method::POST, "/api/vaults", &body).await?;
        Ok(answer.vault)
    }

    /// `GET /api/vaults/{id}`.
    pub async fn get_vault(&self, vault_id: &str) -> Result<VaultDetail, ClientError> {
        self.get(&format!("/api/vaults/{}", segment(vault_id)))
            .await
    }

    /// `PATCH /api/vaults/{id}`.
    pub async fn rename_vault(&self, vault_id: &str, name: &str) -> Result<Vault, ClientError> {
        let body = RenameVaultRequest {
            name: Some(name.into()),
        };
        let path = format!("/api/vaults/{}", segment(vault_id));
        let answer: VaultResponse = self.with_body(Method::PATCH, &path, &body).await?;
        Ok(answer.vault)
    }

    /// `DELETE /api/vaults/{id}`.
    pub async fn delete_vault(&self, vault_id: &str) -> Result<(), ClientError> {
        let path = format!("/api/vaults/{}", segment(vault_id));
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/members`.
    pub async fn list_members(&self, vault_id: &str) -> Result<Vec<Member>, ClientError> {
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberList = self.get(&path).await?;
        Ok(answer.members)
    }

    /// `POST /api/vaults/{id}/members`.
    pub async fn add_member(
        &self,
        vault_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        let body = AddMemberRequest {
            email: email.into(),
            role: role.as_str().into(),
        };
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberResponse = self.with_body(Method::POST, &path, &body).await?;
        Ok(answer.member)
    }

    /// `PATCH /api/vaults/{id}/members/{userId}`.
    pub async fn update_member(
        &self,
        vault_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        let body = UpdateMemberRequest {
            role: Some(role.as_str().into()),
        };
        let path = format!(
            "/api/vaults/{}/members/{}",
            segment(vault_id),
            segment(user_id)
        );
        let answer: MemberResponse = self.with_body(Method::PATCH, &path, &body).await?;
        Ok(answer.member)
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`.
    pub async fn remove_member(&self, vault_id: &str, user_id: &str) -> Result<(), ClientError> {
        let path = format!(
            "/api/vaults/{}/members/{}",
            segment(vault_id),
            segment(user_id)
        );
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/sources`: the snapshot and its seq.
    pub async fn list_sources(&self, vault_id: &str) -> Result<SourceList, ClientError> {
        self.get(&format!("/api/vaults/{}/sources", segment(vault_id)))
            .await
    }

    /// `POST /api/vaults/{id}/sources`.
    pub async fn create_source(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
    ) -> Result<Source, ClientError> {
        let body = CreateSourceRequest {
            title: title.into(),
            file_url: file_url.into(),
        };
        let path = format!("/api/vaults/{}/sources", segment(vault_id));
        let answer: SourceResponse = self.with_body(Method::POST, &path, &body).await?;
        Ok(answer.source)
    }

    /// `GET /api/sources/{id}`.
    pub async fn get_source(&self, source_id: &str) -> Result<Source, ClientError> {
        let answer: SourceResponse = self
            .get(&format!("/api/sources/{}", segment(source_id)))
            .await?;
        Ok(answer.source)
    }

    /// `PATCH /api/sources/{id}`.
    pub async fn update_source(
        &self,
        source_id: &str,
        changes: &UpdateSourceRequest,
    ) -> Result<Source, ClientError> {
        let path = format!("/api/sources/{}", segment(source_id));
        let answer: SourceResponse = self.with_body(Method::PATCH, &path, changes).await?;
        Ok(answer.source)
    }

    /// `DELETE /api/sources/{id}`.
    pub async fn delete_source(&self, source_id: &str) -> Result<(), ClientError> {
        let path = format!("/api/sources/{}", segment(source_id));
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/events?since=N&limit=M`: a page of the log.
    pub async fn list_events(
        &self,
        vault_id: &str,
        since: Option<i64>,
        limit: Option<i64>,
    ) -> Result<EventList, ClientError> {
        let path = format!("/api/vaults/{}/events", segment(vault_id));
        let mut query = Vec::new();
        if let Some(since) = since {
            query.push(("since", since));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit));
        }
        self.json(&path, self.request(Method::GET, &path).query(&query))
            .await
    }

    /// `GET /healthz`.
    pub async fn healthz(&self) -> Result<Health, ClientError> {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Result<Health, ClientError> {
        self.get("/readyz").await
    }
}

/// An id as one URL path segment (ids are UUIDs, but user input is not).
fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_escaped_as_one_path_segment() {
        assert_eq!(segment("abc-123"), "abc-123");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn server_urls_lose_their_trailing_slash_and_must_be_http() {
        let client = ApiClient::new("http://127.0.0.1:3000/", None).unwrap();
        assert_eq!(client.server_url(), "http://127.0.0.1:3000");
        assert!(matches!(
            ApiClient::new("ftp://x", None),
            Err(ClientError::InvalidUrl { .. })
        ));
    }
}
