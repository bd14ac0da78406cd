//! The writers: concurrent tasks that take the next mutation of a batch
//! when it is due, send it (over REST or their own socket), wait for its
//! answer and time it. Mutation k creates the source `bench-k` in vault
//! k mod V.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use syncscript_client::api::{ApiClient, Mutate};
use syncscript_client::error::ClientError;
use syncscript_protocol::{CreateSourceCommand, ErrorDetail, commands};

use crate::bench::watcher::{Shared, mutation_title};
use crate::bench::wire::{Connection, WireError};

/// How long a mutation may wait for its answer.
const MUTATION_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a socket writer may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A run of mutations `from..to`, paced at `rate` per second (0: unpaced),
/// shared by its writers.
pub struct Batch {
    vaults: Arc<[String]>,
    from: usize,
    to: usize,
    rate: f64,
    start: Instant,
    next: AtomicUsize,
    /// Mutations answered (or given up), for progress.
    pub answered: AtomicU64,
}

impl Batch {
    /// Mutations `from..to` into `vaults`, starting now.
    pub fn new(vaults: Arc<[String]>, from: usize, to: usize, rate: f64) -> Batch {
        Batch {
            vaults,
            from,
            to,
            rate,
            start: Instant::now(),
            next: AtomicUsize::new(from),
            answered: AtomicU64::new(0),
        }
    }

    /// The next mutation, once it is due; `None` when all are taken.
    async fn take(&self) -> Option<usize> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        if k >= self.to {
            return None;
        }
        if self.rate > 0.0 {
            // Exact in f64 for any count the bench can run.
            let offset = Duration::from_secs_f64((k - self.from) as f64 / self.rate);
            tokio::time::sleep_until((self.start + offset).into()).await;
        }
        Some(k)
    }

    fn vault_of(&self, k: usize) -> &str {
        &self.vaults[k % self.vaults.len()]
    }
}

/// The URL given to mutation `k`'s source.
fn file_url(k: usize) -> String {
    format!("https://bench.invalid/{k}.pdf")
}

/// What writers measured.
#[derive(Debug, Default)]
pub struct Writes {
    pub ok: u64,
    /// Failures by error code (`TIMEOUT`, `TRANSPORT`, `CONNECT` or
    /// `HTTP nnn` when the server sent none).
    pub failed: BTreeMap<String, u64>,
    /// Request → answer of each successful mutation (µs).
    pub latencies_us: Vec<u32>,
    /// When the first mutation was sent (0: none was).
    pub first_sent: u64,
    /// When the last answer came.
    pub last_answer: u64,
}

impl Writes {
    fn record(&mut self, sent: u64, answered: u64, outcome: Result<(), String>) {
        if self.first_sent == 0 || sent < self.first_sent {
            self.first_sent = sent;
        }
        self.last_answer = self.last_answer.max(answered);
        match outcome {
            Ok(()) => {
                self.ok += 1;
                let micros = (answered.saturating_sub(sent)) / 1_000;
                self.latencies_us
                    .push(u32::try_from(micros).unwrap_or(u32::MAX));
            }
            Err(code) => *self.failed.entry(code).or_default() += 1,
        }
    }

    /// Adds another writer's figures to these.
    pub fn merge(&mut self, other: Writes) {
        self.ok += other.ok;
        for (code, count) in other.failed {
            *self.failed.entry(code).or_default() += count;
        }
        self.latencies_us.extend(other.latencies_us);
        if other.first_sent != 0 && (self.first_sent == 0 || other.first_sent < self.first_sent) {
            self.first_sent = other.first_sent;
        }
        self.last_answer = self.last_answer.max(other.last_answer);
    }

    /// Failed mutations, all codes together.
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// A writer over REST: `POST /api/vaults/{id}/sources` on its own
/// keep-alive client.
pub async fn rest(api: ApiClient, batch: Arc<Batch>, shared: Arc<Shared>) -> Writes {
    let mut writes = Writes::default();
    while let Some(k) = batch.take().await {
        let title = mutation_title(k);
        let url = file_url(k);
        let sent = shared.mark_sent(k);
        let created = tokio::time::timeout(
            MUTATION_TIMEOUT,
            api.create_source(batch.vault_of(k), &title, &url, Mutate::default()),
        )
        .await;
        let outcome = match created {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(failure_code(&error)),
            Err(_) => Err("TIMEOUT".to_owned()),
        };
        writes.record(sent, shared.now(), outcome);
        batch.answered.fetch_add(1, Ordering::Relaxed);
    }
    writes
}

/// How a REST failure is counted.
fn failure_code(error: &ClientError) -> String {
    match (error.code(), error.status()) {
        (Some(code), _) => code.as_str().to_owned(),
        (None, Some(status)) => format!("HTTP {status}"),
        (None, None) => "TRANSPORT".to_owned(),
    }
}

/// A writer over its own socket: `source:create` with an ack, one at a
/// time; it reconnects after a transport failure or a timeout.
pub async fn socket(
    url: Arc<str>,
    token: Arc<str>,
    batch: Arc<Batch>,
    shared: Arc<Shared>,
) -> Writes {
    let mut writes = Writes::default();
    let mut connection: Option<Connection> = None;
    while let Some(k) = batch.take().await {
        let open = match connection.as_mut() {
            Some(open) => open,
            None => {
                match tokio::time::timeout(CONNECT_TIMEOUT, Connection::open(&url, &token)).await {
                    Ok(Ok(opened)) => connection.insert(opened),
                    Ok(Err(_)) | Err(_) => {
                        let now = shared.now();
                        writes.record(now, now, Err("CONNECT".to_owned()));
                        batch.answered.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
        };
        let command = CreateSourceCommand {
            vault_id: batch.vault_of(k).to_owned(),
            title: mutation_title(k),
            file_url: file_url(k),
            op_id: None,
        };
        let sent = shared.mark_sent(k);
        let answer = tokio::time::timeout(MUTATION_TIMEOUT, create(open, &command)).await;
        let outcome = match answer {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(refusal))) => Err(refusal.code.as_str().to_owned()),
            Ok(Err(_)) => {
                connection = None;
                Err("TRANSPORT".to_owned())
            }
            Err(_) => {
                connection = None;
                Err("TIMEOUT".to_owned())
            }
        };
        writes.record(sent, shared.now(), outcome);
        batch.answered.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(open) = connection {
        open.close().await;
    }
    writes
}

/// Sends one `source:create` and waits for its ack.
async fn create(
    connection: &mut Connection,
    command: &CreateSourceCommand,
) -> Result<Result<(), ErrorDetail>, WireError> {
    let id = connection.emit(commands::SOURCE_CREATE, command).await?;
    connection.ack(id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_merge_counts_codes_and_the_time_window() {
        let mut a = Writes::default();
        a.record(2_000, 5_000, Ok(()));
        a.record(3_000, 9_000, Err("TIMEOUT".into()));
        let mut b = Writes::default();
        b.record(1_000, 4_000, Ok(()));
        b.record(1_500, 2_000, Err("TIMEOUT".into()));
        a.merge(b);
        assert_eq!(a.ok, 2);
        assert_eq!(a.failed_total(), 2);
        assert_eq!(a.failed.get("TIMEOUT"), Some(&2));
        assert_eq!((a.first_sent, a.last_answer), (1_000, 9_000));
        assert_eq!(a.latencies_us, vec![3, 3]);
    }
}
