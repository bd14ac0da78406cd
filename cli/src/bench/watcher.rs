//! One watching socket: it connects (again after any disconnect, like a
//! real client), joins its vault from the last seq it holds, and accounts
//! for every event it receives: new, duplicate, out of order, skipped
//! ahead, and the time since its mutation was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use syncscript_protocol::{ErrorCode, JoinRequest, commands};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::bench::wire::{Connection, Event, Packet, Sequenced, WireError, decode};

/// How long one connection attempt (WebSocket and handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the watchers, the writers and the bench's monitor share.
pub struct Shared {
    /// The bench's clock: every instant below is nanoseconds after it.
    pub origin: Instant,
    /// When mutation k was sent (0 while it was not).
    pub sent: Vec<AtomicU64>,
    /// Mutations from this index on are the restart test's burst.
    pub burst_from: usize,
    /// New deliveries, all watchers together.
    pub delivered: AtomicU64,
    /// Watchers that joined their vault at least once.
    pub joined: AtomicUsize,
    /// Connection attempts that failed.
    pub connect_failures: AtomicU64,
    /// Bumped when the restart test asks for a restart: each watcher then
    /// counts its next join in `rejoined`.
    pub epoch: AtomicU64,
    /// Watchers joined since the last bump of `epoch`.
    pub rejoined: AtomicUsize,
}

impl Shared {
    /// A clock starting now, for `mutations` mutations whose burst (if
    /// any) starts at `burst_from`.
    pub fn new(mutations: usize, burst_from: usize) -> Shared {
        Shared {
            origin: Instant::now(),
            sent: (0..mutations).map(|_| AtomicU64::new(0)).collect(),
            burst_from,
            delivered: AtomicU64::new(0),
            joined: AtomicUsize::new(0),
            connect_failures: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            rejoined: AtomicUsize::new(0),
        }
    }

    /// Nanoseconds since `origin` (at least 1, so that 0 means "never").
    pub fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Records that mutation `k` is being sent now; returns the time.
    pub fn mark_sent(&self, k: usize) -> u64 {
        let now = self.now();
        if let Some(sent) = self.sent.get(k) {
            sent.store(now, Ordering::Release);
        }
        now
    }
}

/// Where one watcher connects and what it watches.
pub struct Watcher {
    pub url: Arc<str>,
    pub token: Arc<str>,
    pub vault_id: Arc<str>,
    /// Events its vault is planned to receive (to size its buffers).
    pub planned: usize,
}

/// What one watcher saw, for the report.
#[derive(Debug, Default)]
pub struct Tally {
    /// Distinct events received.
    pub delivered: u64,
    /// Events received again.
    pub duplicates: u64,
    /// New events older than one already received.
    pub out_of_order: u64,
    /// Seqs skipped over when an event arrived ahead of the next expected.
    pub gaps: u64,
    /// Frames that could not be read, and events of another vault or with
    /// a seq below 1.
    pub unexpected: u64,
    /// `vault:head` signals above the last seq received.
    pub head_behind: u64,
    /// `vault:resync` signals.
    pub resyncs: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Why the watcher stopped before being told to, if it did.
    pub failure: Option<String>,
    /// Delivery latencies (µs) of the main phase's events.
    pub latencies_us: Vec<u32>,
    /// Delivery latencies (µs) of the restart test's burst.
    pub burst_latencies_us: Vec<u32>,
    /// When it first joined.
    pub first_join_at: u64,
    /// When it last joined after the restart test's bump.
    pub rejoin_at: u64,
    /// When it received its last new event.
    pub last_delivery_at: u64,
}

/// The seqs one socket received.
#[derive(Debug, Default)]
struct Seqs {
    /// Bit `s` is set once seq `s` arrived.
    seen: Vec<u64>,
    highest: i64,
    /// Every seq up to this one arrived.
    contiguous: i64,
}

/// How an event's seq relates to what arrived before.
#[derive(Debug, PartialEq)]
enum Arrival {
    Duplicate,
    New {
        /// Older than the highest seq received.
        late: bool,
        /// Seqs jumped over.
        skipped: u64,
    },
}

impl Seqs {
    fn with_capacity(events: usize) -> Seqs {
        Seqs {
            seen: Vec::with_capacity(events / 64 + 1),
            ..Seqs::default()
        }
    }

    fn is_seen(&self, seq: usize) -> bool {
        self.seen
            .get(seq / 64)
            .is_some_and(|word| word & (1 << (seq % 64)) != 0)
    }

    /// Records `seq` (≥ 1).
    fn offer(&mut self, seq: usize) -> Arrival {
        if self.is_seen(seq) {
            return Arrival::Duplicate;
        }
        let word = seq / 64;
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        self.seen[word] |= 1 << (seq % 64);
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let arrival = Arrival::New {
            late: seq < self.highest,
            skipped: u64::try_from(seq - self.highest - 1).unwrap_or(0),
        };
        self.highest = self.highest.max(seq);
        while usize::try_from(self.contiguous + 1).is_ok_and(|next| self.is_seen(next)) {
            self.contiguous += 1;
        }
        arrival
    }
}

/// How a connection ended.
enum End {
    /// The bench is over.
    Stopped,
    /// The connection dropped: reconnect.
    Dropped,
    /// The server refused the session or the vault: give up.
    Refused(String),
}

/// One watcher's state across its connections.
struct Run<'a> {
    watcher: &'a Watcher,
    shared: &'a Shared,
    seqs: Seqs,
    tally: Tally,
    /// Held until the first join, so that only so many watchers connect at
    /// once.
    permit: Option<OwnedSemaphorePermit>,
    /// The restart epoch of its last counted join.
    epoch: u64,
}

/// Runs one watcher until `stop` turns true; `gate` bounds how many
/// watchers are connecting for the first time.
pub async fn watch(
    watcher: Watcher,
    shared: Arc<Shared>,
    gate: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Tally {
    let permit = tokio::select! {
        permit = gate.acquire_owned() => permit.ok(),
        _ = stop.wait_for(|stopped| *stopped) => return Tally::default(),
    };
    let mut run = Run {
        watcher: &watcher,
        shared: &shared,
        seqs: Seqs::with_capacity(watcher.planned),
        tally: Tally {
            latencies_us: Vec::with_capacity(watcher.planned),
            ..Tally::default()
        },
        permit,
        epoch: 0,
    };
    let mut connections = 0_u64;
    loop {
        let attempt = tokio::select! {
            attempt = tokio::time::timeout(
                CONNECT_TIMEOUT,
                Connection::open(&watcher.url, &watcher.token),
            ) => attempt,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let end = match attempt {
            Ok(Ok(mut connection)) => {
                connections += 1;
                if connections > 1 {
                    run.tally.reconnects += 1;
                }
                let end = run.follow(&mut connection, &mut stop).await;
                if matches!(end, End::Stopped) {
                    connection.close().await;
                }
                end
            }
            Ok(Err(WireError::Refused(message))) if message == ErrorCode::Unauthorized.as_str() => {
                End::Refused(format!("connection refused: {message}"))
            }
            Ok(Err(_)) | Err(_) => {
                shared.connect_failures.fetch_add(1, Ordering::Relaxed);
                End::Dropped
            }
        };
        match end {
            End::Stopped => break,
            End::Refused(why) => {
                run.tally.failure = Some(why);
                break;
            }
            End::Dropped => {
                // Retry soon, spread out so that thousands do not move as one.
                let pause = Duration::from_millis(rand::random_range(50..=100));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = stop.wait_for(|stopped| *stopped) => break,
                }
            }
        }
    }
    run.tally
}

impl Run<'_> {
    /// Joins and follows the vault on one connection until it ends.
    async fn follow(
        &mut self,
        connection: &mut Connection,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let mut join = match self.join(connection).await {
            Ok(id) => id,
            Err(_) => return End::Dropped,
        };
        // One stop future for the whole connection: making one per message
        // would cost a registration with the channel each time.
        let stopped = stop.wait_for(|stopped| *stopped);
        tokio::pin!(stopped);
        loop {
            let message = tokio::select! {
                biased;
                message = connection.recv() => message,
                _ = &mut stopped => return End::Stopped,
            };
            let received = self.shared.now();
            let Ok(message) = message else {
                return End::Dropped;
            };
            let Ok(packet) = decode(&message) else {
                self.tally.unexpected += 1;
                continue;
            };
            match packet {
                Packet::Event(Event::Sequenced(event)) => self.on_event(&event, received),
                Packet::Event(Event::Joined(joined))
                    if joined.vault_id == &*self.watcher.vault_id =>
                {
                    self.on_joined(received);
                }
                Packet::Event(Event::Head(head))
                    if head.vault_id == &*self.watcher.vault_id && head.seq > self.seqs.highest =>
                {
                    // Events were lost on their way: rejoin from the last
                    // seq held (the contract's rule 6).
                    self.tally.head_behind += 1;
                    join = match self.join(connection).await {
                        Ok(id) => id,
                        Err(_) => return End::Dropped,
                    };
                }
                Packet::Event(Event::Resync(_)) => self.tally.resyncs += 1,
                Packet::Event(Event::Removed) => {
                    return End::Refused("removed from the vault".into());
                }
                Packet::Ack {
                    id,
                    outcome: Err(error),
                } if id == join => {
                    return End::Refused(format!(
                        "join refused: {}: {}",
                        error.code, error.message
                    ));
                }
                Packet::Ping => match connection.pong().await {
                    Ok(()) => {}
                    Err(_) => return End::Dropped,
                },
                Packet::Close | Packet::Disconnected => return End::Dropped,
                _ => {}
            }
        }
    }

    /// Asks to join the vault from the last contiguous seq held.
    async fn join(&mut self, connection: &mut Connection) -> Result<u64, WireError> {
        let request = JoinRequest {
            vault_id: self.watcher.vault_id.to_string(),
            since: Some(self.seqs.contiguous),
        };
        connection.emit(commands::VAULT_JOIN, &request).await
    }

    fn on_joined(&mut self, at: u64) {
        if self.tally.first_join_at == 0 {
            self.permit = None;
            self.tally.first_join_at = at;
            self.shared.joined.fetch_add(1, Ordering::Relaxed);
        }
        let epoch = self.shared.epoch.load(Ordering::Acquire);
        if epoch > self.epoch {
            self.epoch = epoch;
            self.tally.rejoin_at = at;
            self.shared.rejoined.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_event(&mut self, event: &Sequenced<'_>, received: u64) {
        let seq = usize::try_from(event.seq).unwrap_or(0);
        if event.vault_id != &*self.watcher.vault_id || seq == 0 {
            self.tally.unexpected += 1;
            return;
        }
        match self.seqs.offer(seq) {
            Arrival::Duplicate => {
                self.tally.duplicates += 1;
                return;
            }
            Arrival::New { late, skipped } => {
                self.tally.out_of_order += u64::from(late);
                self.tally.gaps += skipped;
            }
        }
        self.tally.delivered += 1;
        self.tally.last_delivery_at = received;
        self.shared.delivered.fetch_add(1, Ordering::Relaxed);
        let Some(k) = event.source.as_ref().and_then(|s| mutation_index(s.title)) else {
            return;
        };
        let sent = self
            .shared
            .sent
            .get(k)
            .map_or(0, |sent| sent.load(Ordering::Acquire));
        if sent == 0 {
            return;
        }
        let micros = u32::try_from(received.saturating_sub(sent) / 1_000).unwrap_or(u32::MAX);
        if k >= self.shared.burst_from {
            self.tally.burst_latencies_us.push(micros);
        } else {
            self.tally.latencies_us.push(micros);
        }
    }
}

/// The title the bench gives mutation `k`.
pub fn mutation_title(k: usize) -> String {
    format!("bench-{k}")
}

/// The `k` of a title made by [`mutation_title`].
fn mutation_index(title: &str) -> Option<usize> {
    title.strip_prefix("bench-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_count_duplicates_late_arrivals_and_skips() {
        let mut seqs = Seqs::with_capacity(4);
        let new = |late, skipped| Arrival::New { late, skipped };
        assert_eq!(seqs.offer(1), new(false, 0));
        assert_eq!(seqs.offer(2), new(false, 0));
        assert_eq!(seqs.offer(2), Arrival::Duplicate);
        assert_eq!(seqs.offer(5), new(false, 2));
        assert_eq!(seqs.contiguous, 2);
        assert_eq!(seqs.offer(3), new(true, 0));
        assert_eq!(seqs.offer(4), new(true, 0));
        assert_eq!((seqs.contiguous, seqs.highest), (5, 5));
        assert_eq!(seqs.offer(200), new(false, 194));
        assert_eq!(seqs.offer(200), Arrival::Duplicate);
    }

    #[test]
    fn titles_carry_the_mutation_index() {
        assert_eq!(mutation_index(&mutation_title(42)), Some(42));
        assert_eq!(mutation_index("Attention Is All You Need"), None);
    }
}
