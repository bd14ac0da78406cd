//! A typed async client of the REST API of docs/protocol.md: one method per route,
//! answers as `syncscript-protocol` types, and failures as [`ClientError`]
//! (the contract's `{"error": {code, message}}` becomes
//! [`ClientError::Server`] with its HTTP status and code).
//!
//! Every mutation (vaults, members, sources) carries an `Idempotency-Key`
//! ([`crate::mutation`]): the plain methods make a new key per call, the
//! `*_with_key` methods take the caller's, so that an application can send
//! the same key again when a person retries. Within one call, an attempt
//! that got no answer at all (connection refused or reset, timeout) is
//! retried with the same key, as the client's [`RetryPolicy`] allows; the
//! server commits the mutation once and answers the retry with the first
//! answer.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use syncscript_protocol::{
    AddMemberRequest, CLIENT_IDLE_REUSE, CreateSourceRequest, ErrorBody, EventList, Health,
    LoginRequest, LoginResponse, Member, MemberList, MemberResponse, RenameVaultRequest, Role,
    SignupRequest, Source, SourceList, SourceResponse, UpdateMemberRequest, UpdateSourceRequest,
    User, UserResponse, Vault, VaultDetail, VaultInput, VaultList, VaultResponse, VaultSummary,
};
use url::Url;

use crate::error::ClientError;
use crate::mutation::{IDEMPOTENCY_KEY_HEADER, IdempotencyKey, RetryPolicy};

/// How long one attempt of a mutation may wait for its answer before it
/// counts as unanswered (and is retried with the same key).
pub const MUTATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one server, optionally authenticated with a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// How mutations sent with a key are retried.
    retry: RetryPolicy,
    /// Whether the plain mutation methods make a key (see
    /// [`ApiClient::raw_mutations`]).
    keyed: bool,
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
            .pool_idle_timeout(CLIENT_IDLE_REUSE)
            .build()
            .map_err(|source| ClientError::Transport {
                url: server_url.to_owned(),
                source: Arc::new(source),
            })?;
        Ok(ApiClient {
            http,
            base,
            token,
            retry: RetryPolicy::DEFAULT,
            keyed: true,
        })
    }

    /// The same client, retrying unanswered mutations as `policy` says
    /// ([`RetryPolicy::DEFAULT`] unless told otherwise).
    pub fn with_retry(&self, policy: RetryPolicy) -> ApiClient {
        ApiClient {
            retry: policy,
            ..self.clone()
        }
    }

    /// The same client, whose plain mutation methods send no
    /// `Idempotency-Key` and never retry: each call is exactly one bare
    /// request (what a benchmark of the mutation path measures). The
    /// `*_with_key` methods still send their key.
    pub fn raw_mutations(&self) -> ApiClient {
        ApiClient {
            keyed: false,
            ..self.clone()
        }
    }

    /// How unanswered mutations are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
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
        Err(error_answer(status, body))
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

    /// Sends one mutation and reads its whole answer. With a key, every
    /// attempt carries it, and an attempt that got no answer (or lost the
    /// answer's body) is retried as the retry policy allows; without one,
    /// there is exactly one attempt.
    async fn mutate<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Vec<u8>, ClientError> {
        let policy = if key.is_some() {
            self.retry
        } else {
            RetryPolicy::NONE
        };
        let mut attempt = 1;
        loop {
            let mut builder = self
                .request(method.clone(), path)
                .timeout(MUTATION_ATTEMPT_TIMEOUT);
            if let Some(body) = body {
                builder = builder.json(body);
            }
            if let Some(key) = key {
                builder = builder.header(IDEMPOTENCY_KEY_HEADER, key.as_str());
            }
            let answer = match self.send(path, builder).await {
                Ok(response) => {
                    response
                        .bytes()
                        .await
                        .map(|bytes| bytes.to_vec())
                        .map_err(|source| ClientError::Transport {
                            url: self.url(path),
                            source: Arc::new(source),
                        })
                }
                Err(error) => Err(error),
            };
            match answer {
                Err(error) if error.is_unanswered() && policy.allows_another(attempt) => {
                    tokio::time::sleep(policy.delay(attempt)).await;
                    attempt += 1;
                }
                answer => return answer,
            }
        }
    }

    /// A mutation whose answer is a JSON body.
    async fn mutate_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        key: Option<&IdempotencyKey>,
    ) -> Result<T, ClientError> {
        let bytes = self.mutate(method, path, body, key).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            url: self.url(path),
            source: Arc::new(source),
        })
    }

    /// A new key for a plain mutation method, unless this client sends raw
    /// mutations.
    fn fresh_key(&self) -> Option<IdempotencyKey> {
        self.keyed.then(IdempotencyKey::generate)
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

    /// `POST /api/vaults`: the caller becomes its owner. A new idempotency
    /// key per call (see [`ApiClient::create_vault_with_key`]).
    pub async fn create_vault(&self, name: &str) -> Result<Vault, ClientError> {
        self.create_vault_as(name, self.fresh_key().as_ref()).await
    }

    /// `POST /api/vaults` with the caller's idempotency key.
    pub async fn create_vault_with_key(
        &self,
        name: &str,
        key: &IdempotencyKey,
    ) -> Result<Vault, ClientError> {
        self.create_vault_as(name, Some(key)).await
    }

    async fn create_vault_as(
        &self,
        name: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<Vault, ClientError> {
        let body = VaultInput { name: name.into() };
        let answer: VaultResponse = self
            .mutate_json(Method::POST, "/api/vaults", Some(&body), key)
            .await?;
        Ok(answer.vault)
    }

    /// `GET /api/vaults/{id}`.
    pub async fn get_vault(&self, vault_id: &str) -> Result<VaultDetail, ClientError> {
        self.get(&format!("/api/vaults/{}", segment(vault_id)))
            .await
    }

    /// `PATCH /api/vaults/{id}`. A new idempotency key per call.
    pub async fn rename_vault(&self, vault_id: &str, name: &str) -> Result<Vault, ClientError> {
        self.rename_vault_as(vault_id, name, self.fresh_key().as_ref())
            .await
    }

    /// `PATCH /api/vaults/{id}` with the caller's idempotency key.
    pub async fn rename_vault_with_key(
        &self,
        vault_id: &str,
        name: &str,
        key: &IdempotencyKey,
    ) -> Result<Vault, ClientError> {
        self.rename_vault_as(vault_id, name, Some(key)).await
    }

    async fn rename_vault_as(
        &self,
        vault_id: &str,
        name: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<Vault, ClientError> {
        let body = RenameVaultRequest {
            name: Some(name.into()),
        };
        let path = format!("/api/vaults/{}", segment(vault_id));
        let answer: VaultResponse = self
            .mutate_json(Method::PATCH, &path, Some(&body), key)
            .await?;
        Ok(answer.vault)
    }

    /// `DELETE /api/vaults/{id}`. A new idempotency key per call.
    pub async fn delete_vault(&self, vault_id: &str) -> Result<(), ClientError> {
        self.delete_vault_as(vault_id, self.fresh_key().as_ref())
            .await
    }

    /// `DELETE /api/vaults/{id}` with the caller's idempotency key.
    pub async fn delete_vault_with_key(
        &self,
        vault_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        self.delete_vault_as(vault_id, Some(key)).await
    }

    async fn delete_vault_as(
        &self,
        vault_id: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), ClientError> {
        let path = format!("/api/vaults/{}", segment(vault_id));
        self.mutate(Method::DELETE, &path, NO_BODY, key).await?;
        Ok(())
    }

    /// `GET /api/vaults/{id}/members`.
    pub async fn list_members(&self, vault_id: &str) -> Result<Vec<Member>, ClientError> {
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberList = self.get(&path).await?;
        Ok(answer.members)
    }

    /// `POST /api/vaults/{id}/members`. A new idempotency key per call.
    pub async fn add_member(
        &self,
        vault_id: &str,
        email: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        self.add_member_as(vault_id, email, role, self.fresh_key().as_ref())
            .await
    }

    /// `POST /api/vaults/{id}/members` with the caller's idempotency key.
    pub async fn add_member_with_key(
        &self,
        vault_id: &str,
        email: &str,
        role: Role,
        key: &IdempotencyKey,
    ) -> Result<Member, ClientError> {
        self.add_member_as(vault_id, email, role, Some(key)).await
    }

    async fn add_member_as(
        &self,
        vault_id: &str,
        email: &str,
        role: Role,
        key: Option<&IdempotencyKey>,
    ) -> Result<Member, ClientError> {
        let body = AddMemberRequest {
            email: email.into(),
            role: role.as_str().into(),
        };
        let path = format!("/api/vaults/{}/members", segment(vault_id));
        let answer: MemberResponse = self
            .mutate_json(Method::POST, &path, Some(&body), key)
            .await?;
        Ok(answer.member)
    }

    /// `PATCH /api/vaults/{id}/members/{userId}`. A new idempotency key per
    /// call.
    pub async fn update_member(
        &self,
        vault_id: &str,
        user_id: &str,
        role: Role,
    ) -> Result<Member, ClientError> {
        self.update_member_as(vault_id, user_id, role, self.fresh_key().as_ref())
            .await
    }

    /// `PATCH /api/vaults/{id}/members/{userId}` with the caller's
    /// idempotency key.
    pub async fn update_member_with_key(
        &self,
        vault_id: &str,
        user_id: &str,
        role: Role,
        key: &IdempotencyKey,
    ) -> Result<Member, ClientError> {
        self.update_member_as(vault_id, user_id, role, Some(key))
            .await
    }

    async fn update_member_as(
        &self,
        vault_id: &str,
        user_id: &str,
        role: Role,
        key: Option<&IdempotencyKey>,
    ) -> Result<Member, ClientError> {
        let body = UpdateMemberRequest {
            role: Some(role.as_str().into()),
        };
        let path = format!(
            "/api/vaults/{}/members/{}",
            segment(vault_id),
            segment(user_id)
        );
        let answer: MemberResponse = self
            .mutate_json(Method::PATCH, &path, Some(&body), key)
            .await?;
        Ok(answer.member)
    }

    /// `DELETE /api/vaults/{id}/members/{userId}`. A new idempotency key
    /// per call.
    pub async fn remove_member(&self, vault_id: &str, user_id: &str) -> Result<(), ClientError> {
        self.remove_member_as(vault_id, user_id, self.fresh_key().as_ref())
            .await
    }

    /// `DELETE /api/vaults/{id}/members/{userId}` with the caller's
    /// idempotency key.
    pub async fn remove_member_with_key(
        &self,
        vault_id: &str,
        user_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        self.remove_member_as(vault_id, user_id, Some(key)).await
    }

    async fn remove_member_as(
        &self,
        vault_id: &str,
        user_id: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), ClientError> {
        let path = format!(
            "/api/vaults/{}/members/{}",
            segment(vault_id),
            segment(user_id)
        );
        self.mutate(Method::DELETE, &path, NO_BODY, key).await?;
        Ok(())
    }

    /// `GET /api/vaults/{id}/sources`: the snapshot and its seq.
    pub async fn list_sources(&self, vault_id: &str) -> Result<SourceList, ClientError> {
        self.get(&format!("/api/vaults/{}/sources", segment(vault_id)))
            .await
    }

    /// `POST /api/vaults/{id}/sources`. A new idempotency key per call.
    pub async fn create_source(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
    ) -> Result<Source, ClientError> {
        self.create_source_as(vault_id, title, file_url, self.fresh_key().as_ref())
            .await
    }

    /// `POST /api/vaults/{id}/sources` with the caller's idempotency key.
    pub async fn create_source_with_key(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
        key: &IdempotencyKey,
    ) -> Result<Source, ClientError> {
        self.create_source_as(vault_id, title, file_url, Some(key))
            .await
    }

    async fn create_source_as(
        &self,
        vault_id: &str,
        title: &str,
        file_url: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<Source, ClientError> {
        let body = CreateSourceRequest {
            title: title.into(),
            file_url: file_url.into(),
        };
        let path = format!("/api/vaults/{}/sources", segment(vault_id));
        let answer: SourceResponse = self
            .mutate_json(Method::POST, &path, Some(&body), key)
            .await?;
        Ok(answer.source)
    }

    /// `GET /api/sources/{id}`.
    pub async fn get_source(&self, source_id: &str) -> Result<Source, ClientError> {
        let answer: SourceResponse = self
            .get(&format!("/api/sources/{}", segment(source_id)))
            .await?;
        Ok(answer.source)
    }

    /// `PATCH /api/sources/{id}`. A new idempotency key per call.
    pub async fn update_source(
        &self,
        source_id: &str,
        changes: &UpdateSourceRequest,
    ) -> Result<Source, ClientError> {
        self.update_source_as(source_id, changes, self.fresh_key().as_ref())
            .await
    }

    /// `PATCH /api/sources/{id}` with the caller's idempotency key.
    pub async fn update_source_with_key(
        &self,
        source_id: &str,
        changes: &UpdateSourceRequest,
        key: &IdempotencyKey,
    ) -> Result<Source, ClientError> {
        self.update_source_as(source_id, changes, Some(key)).await
    }

    async fn update_source_as(
        &self,
        source_id: &str,
        changes: &UpdateSourceRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Source, ClientError> {
        let path = format!("/api/sources/{}", segment(source_id));
        let answer: SourceResponse = self
            .mutate_json(Method::PATCH, &path, Some(changes), key)
            .await?;
        Ok(answer.source)
    }

    /// `DELETE /api/sources/{id}`. A new idempotency key per call.
    pub async fn delete_source(&self, source_id: &str) -> Result<(), ClientError> {
        self.delete_source_as(source_id, self.fresh_key().as_ref())
            .await
    }

    /// `DELETE /api/sources/{id}` with the caller's idempotency key.
    pub async fn delete_source_with_key(
        &self,
        source_id: &str,
        key: &IdempotencyKey,
    ) -> Result<(), ClientError> {
        self.delete_source_as(source_id, Some(key)).await
    }

    async fn delete_source_as(
        &self,
        source_id: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<(), ClientError> {
        let path = format!("/api/sources/{}", segment(source_id));
        self.mutate(Method::DELETE, &path, NO_BODY, key).await?;
        Ok(())
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

/// The body of a mutation that has none.
const NO_BODY: Option<&()> = None;

/// The error a REST answer with a failure status stands for.
fn error_answer(status: reqwest::StatusCode, body: String) -> ClientError {
    match serde_json::from_str::<ErrorBody>(&body) {
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
