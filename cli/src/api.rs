//! A typed async client of the REST API of DESIGN.md: one method per route,
//! answers as `syncscript-protocol` types, and failures as [`ApiError`]
//! (the contract's `{"error": {code, message}}` with its HTTP status).

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use syncscript_protocol::{
    AddMemberRequest, CreateSourceRequest, ErrorBody, ErrorCode, EventList, Health, LoginRequest,
    LoginResponse, Member, MemberList, MemberResponse, RenameVaultRequest, Role, SignupRequest,
    Source, SourceList, SourceResponse, UpdateMemberRequest, UpdateSourceRequest, User,
    UserResponse, Vault, VaultDetail, VaultInput, VaultList, VaultResponse, VaultSummary,
};
use url::Url;

/// Why an API call failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with the contract's error body.
    #[error("{code}: {message}")]
    Server {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server answered with an error status but not the contract's body.
    #[error("HTTP {status}: {body}")]
    UnexpectedResponse { status: u16, body: String },
    /// The server URL cannot be used.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The request could not be sent or its answer not read.
    #[error("cannot reach {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A success answer whose body is not what the contract says.
    #[error("unexpected answer from {url}: {source}")]
    Decode {
        url: String,
        #[source]
        source: reqwest::Error,
    },
}

impl ApiError {
    /// The contract's error code, when the server sent one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ApiError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Server { status, .. } | ApiError::UnexpectedResponse { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }
}

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
    pub fn new(server_url: &str, token: Option<String>) -> Result<ApiClient, ApiError> {
        let invalid = |reason: String| ApiError::InvalidUrl {
            url: server_url.to_owned(),
            reason,
        };
        let base =
            Url::parse(server_url.trim_end_matches('/')).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("expected an http(s) URL".into()));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("syncscript-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ApiError::Transport {
                url: server_url.to_owned(),
                source,
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

    async fn send(&self, path: &str, builder: RequestBuilder) -> Result<Response, ApiError> {
        let response = builder.send().await.map_err(|source| ApiError::Transport {
            url: self.url(path),
            source,
        })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => ApiError::Server {
                status: status.as_u16(),
                code: error.code,
                message: error.message,
            },
            Err(_) => ApiError::UnexpectedResponse {
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
    ) -> Result<T, ApiError> {
        let response = self.send(path, builder).await?;
        response.json().await.map_err(|source| ApiError::Decode {
            url: self.url(path),
            source,
        })
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.json(path, self.request(Method::GET, path)).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        self.json(path, self.request(method, path).json(body)).await
    }

    async fn no_content(&self, method: Method, path: &str) -> Result<(), ApiError> {
        self.send(path, self.request(method, path)).await?;
        Ok(())
    }

    /// `POST /api/auth/signup`.
    pub async fn signup(&self, email: &str, name: &str, password: &str) -> Result<User, ApiError> {
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
    pub async fn login(&self, email: &str, password: &str) -> Result<LoginResponse, ApiError> {
        let body = LoginRequest {
            email: email.into(),
            password: password.into(),
        };
        self.with_body(Method::POST, "/api/auth/login", &body).await
    }

    /// `POST /api/auth/logout`: revokes this client's session.
    pub async fn logout(&self) -> Result<(), ApiError> {
        self.no_content(Method::POST, "/api/auth/logout").await
    }

    /// `GET /api/me`.
    pub async fn me(&self) -> Result<User, ApiError> {
        let answer: UserResponse = self.get("/api/me").await?;
        Ok(answer.user)
    }

    /// `GET /api/vaults`: the caller's vaults.
    pub async fn list_vaults(&self) -> Result<Vec<VaultSummary>, ApiError> {
        let answer: VaultList = self.get("/api/vaults").await?;
        Ok(answer.vaults)
    }

    /// `POST /api/vaults`: the caller becomes its owner.
    pub async fn create_vault(&self, name: &str) -> Result<Vault, ApiError> {
        let body = VaultInput { name: name.into() };
        let answer: VaultResponse = self.with_body(Method::POST, "/api/vaults", &body).await?;
        Ok(answer.vault)
    }

    /// `GET /api/vaults/{id}`.
    pub async fn get_vault(&self, vault_id: &str) -> Result<VaultDetail, ApiError> {
        self.get(&format!("/api/vaults/{}", segment(vault_id)))
            .await
    }

    /// `PATCH /api/vaults/{id}`.
    pub async fn rename_vault(&self, vault_id: &str, name: &str) -> Result<Vault, ApiError> {
        let body = RenameVaultRequest {
            name: Some(name.into()),
        };
        let path = format!("/api/vaults/{}", segment(vault_id));
        let answer: VaultResponse = self.with_body(Method::PATCH, &path, &body).await?;
        Ok(answer.vault)
    }

    /// `DELETE /api/vaults/{id}`.
    pub async fn delete_vault(&self, vault_id: &str) -> Result<(), ApiError> {
        let path = format!("/api/vaults/{}", segment(vault_id));
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/members`.
    pub async fn list_members(&self, vault_id: &str) -> Result<Vec<Member>, ApiError> {
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
    ) -> Result<Member, ApiError> {
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
    ) -> Result<Member, ApiError> {
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
    pub async fn remove_member(&self, vault_id: &str, user_id: &str) -> Result<(), ApiError> {
        let path = format!(
            "/api/vaults/{}/members/{}",
            segment(vault_id),
            segment(user_id)
        );
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/sources`: the snapshot and its seq.
    pub async fn list_sources(&self, vault_id: &str) -> Result<SourceList, ApiError> {
        self.get(&format!("/api/vaults/{}/sources", segment(vault_id)))
            .await
    }

    /// `POST /api/vaults/{id}/sources`.
    pub async fn create_source(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
    ) -> Result<Source, ApiError> {
        let body = CreateSourceRequest {
            title: title.into(),
            file_url: file_url.into(),
        };
        let path = format!("/api/vaults/{}/sources", segment(vault_id));
        let answer: SourceResponse = self.with_body(Method::POST, &path, &body).await?;
        Ok(answer.source)
    }

    /// `GET /api/sources/{id}`.
    pub async fn get_source(&self, source_id: &str) -> Result<Source, ApiError> {
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
    ) -> Result<Source, ApiError> {
        let path = format!("/api/sources/{}", segment(source_id));
        let answer: SourceResponse = self.with_body(Method::PATCH, &path, changes).await?;
        Ok(answer.source)
    }

    /// `DELETE /api/sources/{id}`.
    pub async fn delete_source(&self, source_id: &str) -> Result<(), ApiError> {
        let path = format!("/api/sources/{}", segment(source_id));
        self.no_content(Method::DELETE, &path).await
    }

    /// `GET /api/vaults/{id}/events?since=N&limit=M`: a page of the log.
    pub async fn list_events(
        &self,
        vault_id: &str,
        since: Option<i64>,
        limit: Option<i64>,
    ) -> Result<EventList, ApiError> {
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
    pub async fn healthz(&self) -> Result<Health, ApiError> {
        self.get("/healthz").await
    }

    /// `GET /readyz`.
    pub async fn readyz(&self) -> Result<Health, ApiError> {
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
            Err(ApiError::InvalidUrl { .. })
        ));
    }

    #[test]
    fn server_errors_display_as_code_and_message() {
        let error = ApiError::Server {
            status: 403,
            code: ErrorCode::Forbidden,
            message: "Insufficient permissions".into(),
        };
        assert_eq!(error.to_string(), "FORBIDDEN: Insufficient permissions");
        assert_eq!(error.code(), Some(ErrorCode::Forbidden));
        assert_eq!(error.status(), Some(403));
    }
}
