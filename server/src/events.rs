//! The transactional outbox and the single publish path.
//!
//! Every mutation runs through a [`Mutation`]: its transaction first bumps
//! the vault's `event_seq` (which takes the vault row's write lock, so seq
//! order is commit order on both backends and permission checks see the
//! committed roles), then checks the caller's role, changes the rows, stores
//! the `vault_events` row with the exact payload, commits, and only then
//! hands the event to the fan-out, which broadcasts that payload to the
//! vault's room in seq order on this node and applies its effect on rooms
//! (see [`fanout::publish`]; a lagging socket is disconnected so that it
//! catches up by seq). Nothing else emits a sequenced event.
//!
//! [`fanout::publish`]: crate::fanout::publish

use std::collections::HashMap;
use std::future::Future;

use chrono::Utc;
use sqlx::{Any, AnyConnection, Executor};
use syncscript_protocol::{Actor, EventKind, EventMeta, LoggedEvent, VaultEvent};

use crate::db;
use crate::error::AppError;
use crate::fanout::identity::SessionUser;
use crate::fanout::line::Ticket;
use crate::fanout::publish::{Committed, Effect};
use crate::idempotency::{self, Binding, Claim};
use crate::permissions::{self, Action};
use crate::state::AppState;

/// A mutation of one vault in progress: an open transaction holding the
/// vault's next seq and the caller's checked role.
pub struct Mutation {
    tx: db::Tx,
    /// The seq's place in this node's publishing line.
    ticket: Ticket,
    seq: i64,
    vault_id: String,
    actor: Actor,
    /// The idempotency key to bind to the mutation's result, with it.
    remembered: Option<Binding>,
}

impl Mutation {
    /// Opens the transaction, reserves the vault's next seq and checks that
    /// `user` may do `action` (404 for a non-member, 403 without the right).
    pub async fn begin(
        state: &AppState,
        vault_id: &str,
        user: &SessionUser,
        action: Action,
    ) -> Result<Mutation, AppError> {
        let mut tx = db::Tx::begin(&state.writer).await?;
        let seq: Option<(i64,)> = sqlx::query_as(
            r#"UPDATE vaults SET event_seq = event_seq + 1
               WHERE id = $1 AND deleted_at IS NULL
               RETURNING event_seq"#,
        )
        .bind(vault_id)
        .fetch_optional(&mut *tx)
        .await?;
        // Refusals are rolled back explicitly, as in [`Mutation::refuse`].
        let Some((seq,)) = seq else {
            tx.rollback().await;
            return Err(AppError::NotFound("Vault not found".into()));
        };
        // Still under the row lock: tickets are taken in seq order.
        let ticket = state.fanout.lines.reserve(vault_id, seq);
        let role = match permissions::authorize(&mut *tx, vault_id, &user.id, action).await {
            Ok(role) => role,
            Err(error) => {
                tx.rollback().await;
                return Err(error);
            }
        };
        Ok(Mutation {
            tx,
            ticket,
            seq,
            vault_id: vault_id.to_owned(),
            actor: Actor {
                user_id: user.id.clone(),
                user_name: user.name.clone(),
                role,
            },
            remembered: None,
        })
    }

    /// Binds `claim` (when the client gave a key) to `result` when the
    /// mutation commits, so that a retry gets `result` back instead of
    /// changing anything (see [`idempotency`]).
    pub fn remember(
        &mut self,
        claim: Option<&Claim>,
        result: &impl serde::Serialize,
    ) -> Result<(), AppError> {
        self.remembered = claim.map(|claim| claim.bind(result)).transpose()?;
        Ok(())
    }

    /// Ends the mutation on a refusal (a 404, a 409, …) decided inside its
    /// transaction, and returns `error`. The transaction is rolled back here
    /// rather than dropped, so that its connection stays in the pool (see
    /// [`db::Tx`]; on SQLite it is the one writer): refusals are the common
    /// failure. The seq is given back.
    pub async fn refuse(self, error: AppError) -> AppError {
        self.tx.rollback().await;
        error
    }

    /// The transaction's connection, for the mutation's own statements.
    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    /// Stores the event, commits, then broadcasts it; returns the event.
    /// Runs to the end even if the request that started it goes away: a
    /// committed event is always published.
    pub async fn commit(self, state: &AppState, kind: EventKind) -> Result<VaultEvent, AppError> {
        let state = state.clone();
        detached(async move { self.finish(&state, kind).await }).await
    }

    async fn finish(mut self, state: &AppState, kind: EventKind) -> Result<VaultEvent, AppError> {
        let event = VaultEvent {
            meta: EventMeta {
                vault_id: self.vault_id,
                seq: self.seq,
                actor: self.actor,
                timestamp: db::now(),
            },
            kind,
        };
        let payload = event.payload();
        sqlx::query(
            r#"INSERT INTO vault_events (vault_id, seq, name, payload, actor_id, created_at)
               VALUES ($1, $2, $3, $4, $5, $6)"#,
        )
        .bind(&event.meta.vault_id)
        .bind(event.meta.seq)
        .bind(event.name())
        .bind(payload.to_string())
        .bind(&event.meta.actor.user_id)
        .bind(&event.meta.timestamp)
        .execute(&mut *self.tx)
        .await?;
        if let Some(binding) = &self.remembered
            && let Err(error) = idempotency::store(&mut self.tx, binding).await
        {
            // The key was bound by a racing request: a refusal too.
            self.tx.rollback().await;
            return Err(error);
        }
        self.tx.commit().await?;
        let committed = Committed {
            seq: event.meta.seq,
            name: event.name(),
            payload,
            effect: Effect::of(&event.kind),
        };
        state.fanout.publish(self.ticket, committed).await;
        Ok(event)
    }
}

/// Runs `work` on a task of its own, so that it completes even when the
/// request (or socket command) awaiting it is dropped midway.
pub async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, AppError>> + Send + 'static,
) -> Result<T, AppError> {
    tokio::spawn(work)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("mutation task failed: {e}")))?
}

/// The vault's current head seq.
pub async fn head<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
) -> Result<i64, AppError> {
    let head: Option<(i64,)> =
        sqlx::query_as("SELECT event_seq FROM vaults WHERE id = $1 AND deleted_at IS NULL")
            .bind(vault_id)
            .fetch_optional(db)
            .await?;
    head.map(|(seq,)| seq)
        .ok_or_else(|| AppError::NotFound("Vault not found".into()))
}

/// The head seq of each of `vault_ids` that is not deleted, in one query
/// per 500 vaults.
pub async fn current_heads(
    db: &sqlx::AnyPool,
    vault_ids: &[String],
) -> Result<HashMap<String, i64>, AppError> {
    let mut heads = HashMap::with_capacity(vault_ids.len());
    for chunk in vault_ids.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, event_seq FROM vaults WHERE deleted_at IS NULL AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
        for vault_id in chunk {
            query = query.bind(vault_id);
        }
        heads.extend(query.fetch_all(db).await?);
    }
    Ok(heads)
}

/// Up to `limit` logged events with seq > `since`, oldest first.
pub async fn page<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
    since: i64,
    limit: i64,
) -> Result<Vec<LoggedEvent>, AppError> {
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        r#"SELECT seq, name, payload FROM vault_events
           WHERE vault_id = $1 AND seq > $2
           ORDER BY seq LIMIT $3"#,
    )
    .bind(vault_id)
    .bind(since)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(seq, name, payload)| {
            let payload: serde_json::Value = serde_json::from_str(&payload)
                .map_err(|e| anyhow::anyhow!("stored event {seq} unreadable: {e}"))?;
            let meta: EventMeta = serde_json::from_value(payload.clone())
                .map_err(|e| anyhow::anyhow!("stored event {seq} lacks its meta: {e}"))?;
            Ok(LoggedEvent {
                seq,
                name,
                actor: meta.actor,
                timestamp: meta.timestamp,
                payload,
            })
        })
        .collect()
}

/// Whether every event after `since` can still be replayed: it is among the
/// last `min_events` of the vault, or younger than the replay window.
pub async fn replayable<'e>(
    db: impl Executor<'e, Database = Any>,
    vault_id: &str,
    since: i64,
    head: i64,
    state: &AppState,
) -> Result<bool, AppError> {
    if head - since <= state.config.replay_min_events {
        return Ok(true);
    }
    let window = chrono::Duration::from_std(state.config.replay_window)
        .map_err(|e| anyhow::anyhow!("replay window out of range: {e}"))?;
    let cutoff = db::timestamp(Utc::now() - window);
    let first: Option<(String,)> =
        sqlx::query_as("SELECT created_at FROM vault_events WHERE vault_id = $1 AND seq = $2")
            .bind(vault_id)
            .bind(since + 1)
            .fetch_optional(db)
            .await?;
    Ok(first.is_some_and(|(created_at,)| created_at >= cutoff))
}
