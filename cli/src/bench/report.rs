//! The bench's figures: one JSON object (`--json`, stable snake_case
//! names) or a plain table, and the loud lines for what went wrong.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::output::table;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub run_id: String,
    pub server_url: String,
    pub watchers: usize,
    pub vaults: usize,
    /// Mutations fired in the main phase.
    pub events: usize,
    /// Mutations per second asked for (0: unpaced).
    pub rate: f64,
    pub writers: usize,
    pub via: &'static str,
    /// The bench's open-file limit after raising it.
    pub nofile_limit: Option<u64>,
    /// From the first connection attempt to the last watcher's first
    /// `vault:joined` (`null` when some never joined).
    pub connect_join_ms: Option<f64>,
    /// Watchers that joined.
    pub joined: usize,
    /// Connection attempts that failed (each is retried), including those
    /// of the restart test while the server is down.
    pub connect_failures: u64,
    /// Watchers that gave up (refused session or vault).
    pub watcher_failures: usize,
    pub mutations_ok: u64,
    pub mutations_failed: u64,
    /// Failed mutations by error code.
    pub mutation_errors: BTreeMap<String, u64>,
    pub mutation_throughput_per_s: Option<f64>,
    pub mutation_latency_ms: MutationLatency,
    /// Events the vaults hold at the end (the sum of their heads).
    pub committed: u64,
    /// Distinct events received, all watchers together.
    pub delivered: u64,
    /// Σ over vaults of committed events × watchers of the vault.
    pub expected: u64,
    pub complete: bool,
    /// Sending the mutation → receipt, main phase.
    pub delivery_latency_ms: DeliveryLatency,
    /// Seqs skipped over when an event arrived ahead of the next expected.
    pub gaps: u64,
    /// New events that arrived after a later one.
    pub out_of_order: u64,
    pub duplicates: u64,
    /// Unreadable frames, events of another vault.
    pub unexpected: u64,
    /// `vault:head` signals above a socket's last seq (it missed events).
    pub head_behind: u64,
    pub resyncs: u64,
    pub reconnects: u64,
    /// Failed mutations + watchers that gave up + unexpected frames.
    pub errors: u64,
    /// From the first mutation to the last delivery (or the drain timeout).
    pub event_phase_ms: f64,
    pub server: Option<ServerFigures>,
    /// The bench's CPU time while its watchers connected and joined.
    pub bench_connect_cpu_ms: Option<f64>,
    /// The bench's CPU time during the event phase.
    pub bench_cpu_ms: Option<f64>,
    /// The bench's CPU seconds per second of the event phase (1.0 = one
    /// core busy; `null` without mutations).
    pub bench_cpu_share: Option<f64>,
    /// Cores of this machine, to read the shares against.
    pub cores: usize,
    pub restart: Option<RestartFigures>,
}

/// Request → answer of the successful mutations.
#[derive(Debug, Serialize)]
pub struct MutationLatency {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

/// Sending a mutation → receipt of its event by a watcher.
#[derive(Debug, Serialize)]
pub struct DeliveryLatency {
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

/// The server process's figures (`--server-pid`).
#[derive(Debug, Serialize)]
pub struct ServerFigures {
    pub pid: u32,
    /// Before the watchers connect.
    pub rss_before_kib: u64,
    /// Once every watcher joined, after a second to settle.
    pub rss_after_join_kib: u64,
    /// (after join − before) / watchers.
    pub rss_per_socket_kib: f64,
    /// CPU time while the watchers connected and joined.
    pub connect_cpu_ms: f64,
    /// CPU time during the event phase (main phase, not the restart test).
    pub cpu_ms: f64,
    /// `cpu_ms` per delivery made in the event phase.
    pub cpu_per_delivered_us: Option<f64>,
    /// CPU seconds per second of the event phase (`null` without
    /// mutations).
    pub cpu_share: Option<f64>,
    pub nofile_limit: Option<u64>,
}

/// The restart test's figures.
#[derive(Debug, Serialize)]
pub struct RestartFigures {
    /// From the server going away to it being back: answering
    /// `/healthz` or joining a watcher, whichever came first.
    pub server_down_ms: f64,
    /// Mutations fired as soon as the server answered.
    pub burst: usize,
    pub burst_ok: u64,
    pub burst_failed: u64,
    /// Watchers that joined again after the restart.
    pub rejoined: usize,
    /// From the server being back to the last watcher's rejoin.
    pub rejoin_ms: Option<f64>,
    /// From the server being back until every watcher holds every event.
    pub caught_up_ms: Option<f64>,
    /// Sending a burst mutation → receipt (live or replayed).
    pub delivery_latency_ms: DeliveryLatency,
    pub complete: bool,
}

/// Latency samples (µs), sorted.
pub struct Samples(Vec<u32>);

impl Samples {
    pub fn new(mut micros: Vec<u32>) -> Samples {
        micros.sort_unstable();
        Samples(micros)
    }

    /// The `q` quantile (nearest rank) in ms.
    fn at(&self, q: f64) -> Option<f64> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        // Rank ⌈q·n⌉, 1-based; exact for any sample count the bench holds.
        let rank = (q * n as f64).ceil() as usize;
        let index = rank.clamp(1, n) - 1;
        self.0
            .get(index)
            .map(|&micros| ms(u64::from(micros) * 1_000))
    }

    pub fn delivery(&self) -> DeliveryLatency {
        DeliveryLatency {
            p50: self.at(0.5),
            p90: self.at(0.9),
            p99: self.at(0.99),
            p999: self.at(0.999),
            max: self.at(1.0),
        }
    }

    pub fn mutation(&self) -> MutationLatency {
        MutationLatency {
            p50: self.at(0.5),
            p99: self.at(0.99),
            max: self.at(1.0),
        }
    }
}

/// `value` to three decimals, for readable JSON.
pub fn round(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

/// Nanoseconds as milliseconds, to the microsecond.
pub fn ms(nanos: u64) -> f64 {
    (nanos / 1_000) as f64 / 1_000.0
}

impl Report {
    /// Whether every watcher got every event, in order.
    pub fn is_clean(&self) -> bool {
        self.complete
            && self.out_of_order == 0
            && self.unexpected == 0
            && self.restart.as_ref().is_none_or(|restart| restart.complete)
    }

    /// Lines for stderr about what went wrong, loud enough to notice.
    pub fn alarms(&self) -> Vec<String> {
        let mut alarms = Vec::new();
        if !self.complete {
            let missing = self.expected.saturating_sub(self.delivered);
            alarms.push(format!(
                "MISSING: {missing} of {} deliveries ({:.2}% delivered)",
                self.expected,
                percent(self.delivered, self.expected)
            ));
        }
        if self.out_of_order > 0 {
            alarms.push(format!(
                "OUT OF ORDER: {} events arrived after a later one",
                self.out_of_order
            ));
        }
        if self.joined < self.watchers {
            alarms.push(format!(
                "NOT JOINED: {} of {} watchers never joined their vault",
                self.watchers - self.joined,
                self.watchers
            ));
        }
        if self.mutations_failed > 0 {
            alarms.push(format!(
                "FAILED MUTATIONS: {} ({})",
                self.mutations_failed,
                codes(&self.mutation_errors)
            ));
        }
        // The restart test disconnects every watcher on purpose.
        if self.reconnects > 0 && self.restart.is_none() {
            alarms.push(format!(
                "RECONNECTS: watchers were disconnected {} times",
                self.reconnects
            ));
        }
        if let Some(restart) = &self.restart
            && !restart.complete
        {
            alarms.push(format!(
                "RESTART: {} of {} watchers rejoined and not every event reached every watcher",
                restart.rejoined, self.watchers
            ));
        }
        alarms
    }

    /// The figures as a two-column table.
    pub fn table(&self) -> comfy_table::Table {
        let mut t = table(&["figure", "value"]);
        let mut row = |figure: &str, value: String| {
            t.add_row([figure.to_owned(), value]);
        };
        let rate = if self.rate > 0.0 {
            format!("at {}/s", self.rate)
        } else {
            "unpaced".to_owned()
        };
        row("run", format!("{} on {}", self.run_id, self.server_url));
        row(
            "load",
            format!(
                "{} watchers, {} vault(s), {} events {rate}, {} writers via {}",
                self.watchers, self.vaults, self.events, self.writers, self.via
            ),
        );
        row(
            "open-file limit",
            optional(self.nofile_limit, |n| n.to_string()),
        );
        row(
            "connect + join",
            format!(
                "{} ({} of {} joined, {} failed attempts, {} gave up)",
                optional(self.connect_join_ms, |v| format!("{v:.1} ms")),
                self.joined,
                self.watchers,
                self.connect_failures,
                self.watcher_failures
            ),
        );
        row(
            "mutations",
            format!(
                "{} ok, {} failed{}",
                self.mutations_ok,
                self.mutations_failed,
                if self.mutation_errors.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", codes(&self.mutation_errors))
                }
            ),
        );
        row(
            "mutation throughput",
            optional(self.mutation_throughput_per_s, |v| format!("{v:.1}/s")),
        );
        let m = &self.mutation_latency_ms;
        row(
            "mutation latency",
            format!(
                "p50 {}  p99 {}  max {}",
                millis(m.p50),
                millis(m.p99),
                millis(m.max)
            ),
        );
        row(
            "delivered",
            format!(
                "{} of {} ({:.2}%){}",
                self.delivered,
                self.expected,
                percent(self.delivered, self.expected),
                if self.complete { "" } else { "  INCOMPLETE" }
            ),
        );
        row("delivery latency", latencies(&self.delivery_latency_ms));
        row(
            "order",
            format!(
                "{} out of order, {} gaps, {} duplicates, {} unexpected",
                self.out_of_order, self.gaps, self.duplicates, self.unexpected
            ),
        );
        row(
            "resync signals",
            format!(
                "{} vault:head behind, {} vault:resync",
                self.head_behind, self.resyncs
            ),
        );
        row("reconnects", self.reconnects.to_string());
        row("event phase", format!("{:.1} ms", self.event_phase_ms));
        if let Some(server) = &self.server {
            row(
                "server memory",
                format!(
                    "{} KiB before, {} KiB joined: {:.1} KiB per socket",
                    server.rss_before_kib, server.rss_after_join_kib, server.rss_per_socket_kib
                ),
            );
            row(
                "server CPU",
                format!(
                    "connect + join {:.1} ms; events {:.1} ms ({} cores busy): {} per delivered message",
                    server.connect_cpu_ms,
                    server.cpu_ms,
                    optional(server.cpu_share, |v| format!("{v:.2}")),
                    optional(server.cpu_per_delivered_us, |v| format!("{v:.2} µs"))
                ),
            );
            row(
                "server open-file limit",
                optional(server.nofile_limit, |n| n.to_string()),
            );
        }
        row(
            "bench CPU",
            format!(
                "connect + join {}; events {} ({} cores busy of {})",
                optional(self.bench_connect_cpu_ms, |v| format!("{v:.1} ms")),
                optional(self.bench_cpu_ms, |v| format!("{v:.1} ms")),
                optional(self.bench_cpu_share, |v| format!("{v:.2}")),
                self.cores
            ),
        );
        if let Some(restart) = &self.restart {
            row(
                "restart: server down",
                format!("{:.1} ms", restart.server_down_ms),
            );
            row(
                "restart: burst",
                format!(
                    "{} mutations: {} ok, {} failed",
                    restart.burst, restart.burst_ok, restart.burst_failed
                ),
            );
            row(
                "restart: rejoined",
                format!(
                    "{} of {} in {}",
                    restart.rejoined,
                    self.watchers,
                    optional(restart.rejoin_ms, |v| format!("{v:.1} ms"))
                ),
            );
            row(
                "restart: caught up",
                optional(restart.caught_up_ms, |v| format!("{v:.1} ms")),
            );
            row(
                "restart: burst latency",
                latencies(&restart.delivery_latency_ms),
            );
        }
        t
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        100.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn codes(errors: &BTreeMap<String, u64>) -> String {
    errors
        .iter()
        .map(|(code, count)| format!("{code} ×{count}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn optional<T>(value: Option<T>, show: impl FnOnce(T) -> String) -> String {
    value.map_or_else(|| "—".to_owned(), show)
}

fn millis(value: Option<f64>) -> String {
    optional(value, |v| format!("{v:.2} ms"))
}

fn latencies(l: &DeliveryLatency) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        millis(l.p50),
        millis(l.p90),
        millis(l.p99),
        millis(l.p999),
        millis(l.max)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank_in_ms() {
        let samples = Samples::new((1..=1000).rev().collect());
        let l = samples.delivery();
        assert_eq!(l.p50, Some(0.5));
        assert_eq!(l.p90, Some(0.9));
        assert_eq!(l.p99, Some(0.99));
        assert_eq!(l.p999, Some(0.999));
        assert_eq!(l.max, Some(1.0));
        assert_eq!(Samples::new(vec![]).mutation().p50, None);
        assert_eq!(Samples::new(vec![7]).mutation().p99, Some(0.007));
    }
}
