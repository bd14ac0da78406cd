//! Retry-safe mutations (docs/protocol.md "Retry-safe mutations").
//!
//! A client that lost the answer to a mutation retries it with the same
//! key: the REST `Idempotency-Key` header or the socket commands' `opId`.
//! The first success stores its result under (user, key) in the same
//! transaction as the change itself, so a key is either unused or bound to
//! exactly one committed change. A repeat within [`KEY_LIFETIME`] gets that
//! result back and commits nothing; the same key with another request is a
//! 422. Two requests racing with one key both run, but only one can insert
//! the key row: the other's transaction rolls back and it answers with the
//! winner's result.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;
use syncscript_protocol::{IDEMPOTENCY_KEY_HEADER, IDEMPOTENCY_REPLAYED_HEADER};

use crate::db;
use crate::error::{AppError, Json};
use crate::fanout::identity::SessionUser;
use crate::state::AppState;

/// The REST header that carries a key.
pub const HEADER: &str = IDEMPOTENCY_KEY_HEADER;
/// The socket commands' payload field that carries a key.
pub const OP_ID: &str = "opId";
/// How long a key stays bound to its first answer.
pub const KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// Longest key, in characters.
pub const MAX_KEY_CHARS: usize = 200;

/// Every retry-safe operation. Its name is part of a key's fingerprint, and
/// REST and the socket commands name an operation through this one type,
/// so that one key covers the same operation over both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    VaultCreate,
    VaultRename,
    VaultDelete,
    MemberAdd,
    MemberUpdate,
    MemberRemove,
    SourceCreate,
    SourceUpdate,
    SourceDelete,
}

impl Operation {
    /// The operation's name in fingerprints (stored: never change one).
    pub fn name(self) -> &'static str {
        match self {
            Operation::VaultCreate => "vault.create",
            Operation::VaultRename => "vault.rename",
            Operation::VaultDelete => "vault.delete",
            Operation::MemberAdd => "member.add",
            Operation::MemberUpdate => "member.update",
            Operation::MemberRemove => "member.remove",
            Operation::SourceCreate => "source.create",
            Operation::SourceUpdate => "source.update",
            Operation::SourceDelete => "source.delete",
        }
    }
}

/// The key a client gave a mutation, if any, and how it named it (the
/// `Idempotency-Key` header, or a command's `opId`).
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    field: &'static str,
    value: Option<&'a str>,
}

impl<'a> Key<'a> {
    /// The `opId` of a socket command.
    pub fn op_id(value: Option<&'a str>) -> Key<'a> {
        Key {
            field: OP_ID,
            value,
        }
    }
}

/// A user's key for one operation: what a repeat must match.
#[derive(Debug, Clone)]
pub struct Claim {
    /// How the client named the key (`Idempotency-Key` or `opId`), for
    /// messages.
    field: &'static str,
    user_id: String,
    key: String,
    /// SHA-256 of the operation, its target and its input.
    fingerprint: String,
}

impl Claim {
    /// The claim of `key` (when the client gave one) for `operation` on
    /// `target` with `input`; a key that breaks the rule is a 422 naming
    /// the key's field.
    fn new(
        key: Key<'_>,
        user: &SessionUser,
        operation: Operation,
        target: &str,
        input: &impl Serialize,
    ) -> Result<Option<Claim>, AppError> {
        let Key { field, value } = key;
        let Some(key) = value else {
            return Ok(None);
        };
        validate_key(field, key)?;
        let input = serde_json::to_string(input)
            .map_err(|e| anyhow::anyhow!("cannot fingerprint a request: {e}"))?;
        let mut digest = Sha256::new();
        for part in [operation.name(), target, &input] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        Ok(Some(Claim {
            field,
            user_id: user.id.clone(),
            key: key.to_owned(),
            fingerprint: hex(&digest.finalize()),
        }))
    }
}

/// A claim with the result to bind to it when its mutation commits.
#[derive(Debug, Clone)]
pub struct Binding {
    claim: Claim,
    /// The result, as JSON text.
    result: String,
}

impl Claim {
    /// The binding of this claim to `result`.
    pub fn bind(&self, result: &impl Serialize) -> Result<Binding, AppError> {
        let result = serde_json::to_string(result)
            .map_err(|e| anyhow::anyhow!("cannot store an idempotent result: {e}"))?;
        Ok(Binding {
            claim: self.clone(),
            result,
        })
    }
}

/// A key is 1–200 visible ASCII characters.
pub fn validate_key(field: &'static str, key: &str) -> Result<(), AppError> {
    let visible = key.bytes().all(|b| b.is_ascii_graphic());
    if visible && (1..=MAX_KEY_CHARS).contains(&key.len()) {
        Ok(())
    } else {
        Err(AppError::validation(
            field,
            "must be 1-200 visible ASCII characters",
        ))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The oldest `created_at` of a key still bound.
fn cutoff() -> Result<String, AppError> {
    let lifetime = chrono::Duration::from_std(KEY_LIFETIME)
        .map_err(|e| anyhow::anyhow!("key lifetime out of range: {e}"))?;
    Ok(db::timestamp(Utc::now() - lifetime))
}

/// Binds a claim to its result inside the mutation's transaction (an
/// expired binding of the same key goes first). Fails with
/// [`AppError::KeyClaimed`] when another request bound the key first.
pub async fn store(conn: &mut AnyConnection, binding: &Binding) -> Result<(), AppError> {
    let Binding { claim, result } = binding;
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND created_at < $3")
        .bind(&claim.user_id)
        .bind(&claim.key)
        .bind(cutoff()?)
        .execute(&mut *conn)
        .await?;
    let inserted = sqlx::query(
        r#"INSERT INTO idempotency_keys (user_id, key, fingerprint, result, created_at)
           VALUES ($1, $2, $3, $4, $5)"#,
    )
    .bind(&claim.user_id)
    .bind(&claim.key)
    .bind(&claim.fingerprint)
    .bind(result)
    .bind(db::now())
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::KeyClaimed),
        Err(e) => Err(e.into()),
    }
}

/// The result bound to `claim`'s key, if it is bound and fresh; 422 when
/// it is bound to another request.
async fn recall<T: DeserializeOwned>(
    state: &AppState,
    claim: &Claim,
) -> Result<Option<T>, AppError> {
    let row: Option<(String, String)> = sqlx::query_as(
        r#"SELECT fingerprint, result FROM idempotency_keys
           WHERE user_id = $1 AND key = $2 AND created_at >= $3"#,
    )
    .bind(&claim.user_id)
    .bind(&claim.key)
    .bind(cutoff()?)
    .fetch_optional(&state.db)
    .await?;
    let Some((fingerprint, result)) = row else {
        return Ok(None);
    };
    if fingerprint != claim.fingerprint {
        return Err(AppError::validation(
            claim.field,
            "was used for a different request",
        ));
    }
    serde_json::from_str(&result)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("stored idempotent result unreadable: {e}").into())
}

/// The result of a mutation run through [`once`].
#[derive(Debug)]
pub struct Answer<T> {
    pub value: T,
    /// Whether `value` is the stored result of an earlier request.
    pub replayed: bool,
}

impl<T> Answer<T> {
    /// The REST answer: `status` with `body(value)`, marked when replayed.
    pub fn respond<B: Serialize>(self, status: StatusCode, body: impl FnOnce(T) -> B) -> Response {
        let replayed = self.replayed;
        mark((status, Json(body(self.value))).into_response(), replayed)
    }

    /// The REST answer without a body (`204`), marked when replayed.
    pub fn respond_empty(self, status: StatusCode) -> Response {
        mark(status.into_response(), self.replayed)
    }
}

fn mark(mut response: Response, replayed: bool) -> Response {
    if replayed {
        response.headers_mut().insert(
            IDEMPOTENCY_REPLAYED_HEADER,
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// Runs `operation` on `target` with `input` for `user`, once per key:
/// `work` (which stores its result under the claim it is given when it
/// commits, see [`Mutation::remember`]) runs unless the key already holds
/// a result, which is then the answer. Without a key, `work` just runs.
///
/// [`Mutation::remember`]: crate::events::Mutation::remember
pub async fn run<T, Fut>(
    state: &AppState,
    key: Key<'_>,
    user: &SessionUser,
    operation: Operation,
    target: &str,
    input: &impl Serialize,
    work: impl FnOnce(Option<Claim>) -> Fut,
) -> Result<Answer<T>, AppError>
where
    T: DeserializeOwned,
    Fut: Future<Output = Result<T, AppError>>,
{
    let claim = Claim::new(key, user, operation, target, input)?;
    let work = work(claim.clone());
    once(state, claim.as_ref(), work).await
}

async fn once<T: DeserializeOwned>(
    state: &AppState,
    claim: Option<&Claim>,
    work: impl Future<Output = Result<T, AppError>>,
) -> Result<Answer<T>, AppError> {
    let Some(claim) = claim else {
        return work.await.map(|value| Answer {
            value,
            replayed: false,
        });
    };
    if let Some(value) = recall(state, claim).await? {
        return Ok(Answer {
            value,
            replayed: true,
        });
    }
    purge_expired(state).await?;
    match work.await {
        Ok(value) => Ok(Answer {
            value,
            replayed: false,
        }),
        // Another request with this key may have committed while this one
        // ran: its commit is then the reason this one failed (the key was
        // taken, the source already deleted, the member already added),
        // and its answer is this one's.
        Err(error) => match recall(state, claim).await? {
            Some(value) => Ok(Answer {
                value,
                replayed: true,
            }),
            None => Err(error),
        },
    }
}

/// Drops expired keys, at most once a minute per node, outside any
/// mutation's transaction (so that keyed mutations do not lock each
/// other's rows).
async fn purge_expired(state: &AppState) -> Result<(), AppError> {
    static LAST_PURGE: AtomicI64 = AtomicI64::new(0);
    let now = Utc::now().timestamp();
    let last = LAST_PURGE.load(Ordering::Relaxed);
    if now - last < 60
        || LAST_PURGE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return Ok(());
    }
    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(cutoff()?)
        .execute(&state.writer)
        .await?;
    Ok(())
}

/// The `Idempotency-Key` header of a REST mutation, if any (422 when it
/// breaks the rule).
#[derive(Debug, Clone, Default)]
pub struct IdempotencyKey(pub Option<String>);

impl IdempotencyKey {
    /// The header's key, for [`run`].
    pub fn key(&self) -> Key<'_> {
        Key {
            field: HEADER,
            value: self.0.as_deref(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<IdempotencyKey, AppError> {
        let Some(value) = parts.headers.get(HEADER) else {
            return Ok(IdempotencyKey(None));
        };
        let key = value
            .to_str()
            .map_err(|_| AppError::validation(HEADER, "must be 1-200 visible ASCII characters"))?;
        validate_key(HEADER, key)?;
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_the_stored_ones() {
        let names: Vec<&str> = [
            Operation::VaultCreate,
            Operation::VaultRename,
            Operation::VaultDelete,
            Operation::MemberAdd,
            Operation::MemberUpdate,
            Operation::MemberRemove,
            Operation::SourceCreate,
            Operation::SourceUpdate,
            Operation::SourceDelete,
        ]
        .into_iter()
        .map(Operation::name)
        .collect();
        assert_eq!(
            names,
            [
                "vault.create",
                "vault.rename",
                "vault.delete",
                "member.add",
                "member.update",
                "member.remove",
                "source.create",
                "source.update",
                "source.delete"
            ]
        );
    }

    #[test]
    fn keys_are_visible_ascii_of_bounded_length() {
        assert!(validate_key(HEADER, "a").is_ok());
        assert!(validate_key(HEADER, &"k".repeat(200)).is_ok());
        for bad in ["", " ", "a b", "é", "a\u{0}", &"k".repeat(201)] {
            assert!(validate_key(HEADER, bad).is_err(), "{bad:?}");
        }
    }
}
