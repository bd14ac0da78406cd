//! A typed async client of the REST API of docs/protocol.md: one method per
//! route, answers as `syncscript-protocol` types, and failures as
//! [`ClientError`] (the contract's `{"error": {code, message}}` becomes
//! [`ClientError::Server`] with its HTTP status and code).
//!
//! This module holds the client itself and the plumbing every route shares;
//! the routes are grouped one file each (`auth`, `vaults`, `members`,
//! `sources`, `events`, `health`), each an `impl ApiClient` block.
//!
//! Every mutation (vaults, members, sources) takes a [`Mutate`] saying how it
//! is sent, and carries an `Idempotency-Key` ([`crate::mutation`]):
//! `Mutate::default()` makes a new key per call, [`Mutate::with_key`] sends
//! the caller's, so that an application can send the same key again when a
//! person retries. Within one call, an attempt that got no answer at all
//! (connection refused or reset, timeout) is retried with the same key, as
//! the client's [`RetryPolicy`] allows; the server commits the mutation once
//! and answers the retry with the first answer.

mod auth;
mod events;
mod health;
mod members;
mod sources;
mod vaults;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use syncscript_protocol::{CLIENT_IDLE_REUSE, ErrorBody, IDEMPOTENCY_KEY_HEADER};
use url::Url;

use crate::error::ClientError;
use crate::mutation::{IdempotencyKey, RetryPolicy};

/// How long one attempt of a mutation may wait for its answer before it
/// counts as unanswered (and is retried with the same key).
pub const MUTATION_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// How one mutation is sent. `Mutate::default()` is the usual choice: a new
/// idempotency key for the call (none on a client made by
/// [`ApiClient::raw_mutations`]).
///
/// Built with `Default` and the methods below, never field by field, so that
/// a later option does not change the signature of every mutation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mutate {
    /// The mutation's idempotency key: `None` for a new one per call,
    /// `Some` for the caller's (sent by every client, raw ones included).
    pub key: Option<IdempotencyKey>,
}

impl Mutate {
    /// A mutation sent with the caller's key, so that a retry by the caller
    /// (a person pressing Enter again after "no answer") is the same
    /// mutation.
    pub fn with_key(key: IdempotencyKey) -> Mutate {
        Mutate { key: Some(key) }
    }
}

/// A client of one server, optionally authenticated with a bearer token.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
    /// How mutations sent with a key are retried.
    retry: RetryPolicy,
    /// Whether a mutation without the caller's key gets a new one (see
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

    /// The same client, whose mutations sent with `Mutate::default()` carry
    /// no `Idempotency-Key` and never retry: each call is exactly one bare
    /// request (what a benchmark of the mutation path measures). A mutation
    /// given the caller's key ([`Mutate::with_key`]) still sends it.
    pub fn raw_mutations(&self) -> ApiClient {
        ApiClient {
            keyed: false,
            ..self.clone()
        }
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

    /// Sends one mutation, as `how` says, and reads its whole answer. With a
    /// key (the caller's, or a new one unless this client sends raw
    /// mutations), every attempt carries it, and an attempt that got no
    /// answer (or lost the answer's body) is retried as the retry policy
    /// allows; without one, there is exactly one attempt.
    async fn mutate<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        how: Mutate,
    ) -> Result<Vec<u8>, ClientError> {
        let key = how.key.or_else(|| self.fresh_key());
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
            if let Some(key) = &key {
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
        how: Mutate,
    ) -> Result<T, ClientError> {
        let bytes = self.mutate(method, path, body, how).await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode {
            url: self.url(path),
            source: Arc::new(source),
        })
    }

    /// A new key for a mutation without the caller's, unless this client
    /// sends raw mutations.
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
