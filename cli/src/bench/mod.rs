//! `bench`: measures how a server fans events out. It creates its own
//! account and vaults, connects many watching sockets with a lean client
//! ([`wire`], one task each in [`watcher`]), fires mutations from
//! concurrent [`writer`]s, and reports ([`report`]) connect time, mutation
//! throughput, delivery latency, completeness and order per socket, and
//! with `--server-pid` the server's memory and CPU ([`proc`]).
//!
//! The phases: set-up, connect + join every watcher, fire the events, wait
//! until every watcher holds every event of its vault (or a drain timeout),
//! then optionally the restart test, and the report.

mod proc;
mod report;
mod watcher;
mod wire;
mod writer;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use syncscript_client::api::{ApiClient, Mutate};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::bench::proc::{Process, Usage};
use crate::bench::report::{Report, RestartFigures, Samples, ServerFigures, ms, round};
use crate::bench::watcher::{Shared, Tally, Watcher};
use crate::bench::writer::{Batch, Writes};
use crate::cli::{BenchArgs, Via};
use crate::output::print_json;

/// Exit status when deliveries are missing or came out of order.
pub const EXIT_INCOMPLETE: u8 = 2;

/// Mutations one run may fire (the bench keeps a timestamp per mutation
/// and a latency per delivery).
const MAX_EVENTS: usize = 10_000_000;

/// Watchers connecting for the first time at once.
const CONNECTING_AT_ONCE: usize = 256;

/// How long every watcher may take to join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long deliveries may trail the last mutation's answer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the restart test waits for the server to go and to come back.
const RESTART_PATIENCE: Duration = Duration::from_secs(300);

/// How long watchers may take to catch up after the restart's burst.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the bench looks at its counters.
const TICK: Duration = Duration::from_millis(10);

/// How often `/healthz` is asked during the restart test, and how long
/// one answer may take.
const HEALTH_POLL: Duration = Duration::from_millis(20);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the server's memory settles after the joins.
const SETTLE: Duration = Duration::from_secs(1);

/// Descriptors the bench needs beyond one per socket (writers' HTTP
/// connections, stdio, the runtime).
const SPARE_FILES: u64 = 64;

/// What a run was asked to do, checked.
struct Plan {
    watchers: usize,
    vaults: usize,
    events: usize,
    rate: f64,
    writers: usize,
    via: Via,
    server_pid: Option<u32>,
    restart_test: bool,
}

impl Plan {
    fn new(args: &BenchArgs) -> anyhow::Result<Plan> {
        let count = |n: u32| usize::try_from(n).context("count too large for this machine");
        let (watchers, vaults) = (count(args.watchers)?, count(args.vaults)?);
        if vaults > watchers {
            bail!(
                "--vaults ({vaults}) cannot exceed --watchers ({watchers}): every vault needs a watcher"
            );
        }
        if !args.rate.is_finite() || args.rate < 0.0 {
            bail!("--rate must be 0 (as fast as the writers go) or more");
        }
        let events = match args.duration {
            None => count(args.events)?,
            Some(seconds) if seconds.is_finite() && seconds > 0.0 && args.rate > 0.0 => {
                // Saturates for absurd products, refused just below.
                (args.rate * seconds).round() as usize
            }
            Some(_) => bail!("--duration needs a number of seconds above 0 and a --rate above 0"),
        };
        if events > MAX_EVENTS {
            bail!("at most {MAX_EVENTS} mutations per run (asked for {events})");
        }
        Ok(Plan {
            watchers,
            vaults,
            events,
            rate: args.rate,
            writers: count(args.writers)?,
            via: args.via,
            server_pid: args.server_pid,
            restart_test: args.restart_test,
        })
    }

    /// Mutations of the restart test's burst.
    fn burst(&self) -> usize {
        if self.restart_test { self.events } else { 0 }
    }

    /// Watchers of vault `v` (watcher i watches vault i mod V).
    fn watchers_of(&self, v: usize) -> usize {
        self.watchers / self.vaults + usize::from(v < self.watchers % self.vaults)
    }

    /// Mutations among the first `to` that go to vault `v` (mutation k
    /// goes to vault k mod V).
    fn mutations_into(&self, v: usize, to: usize) -> usize {
        to / self.vaults + usize::from(v < to % self.vaults)
    }
}

/// Runs the bench against `server` and prints its report.
pub async fn run(server: &str, args: &BenchArgs, json: bool) -> anyhow::Result<ExitCode> {
    let plan = Plan::new(args)?;
    let socket_url = socket_url(server)?;
    let progress = Progress::new();
    let nofile_limit = open_files(&plan, &progress);
    let setup = Setup::create(server, &plan).await?;
    let bench = Bench {
        plan: &plan,
        setup: &setup,
        socket_url: socket_url.into(),
        progress: &progress,
        shared: Arc::new(Shared::new(plan.events + plan.burst(), plan.events)),
    };
    let measured = bench.measure(nofile_limit).await;
    progress.clear();
    setup.clean_up().await;
    let report = measured?;
    if json {
        print_json(&report)?;
    } else {
        println!("{}", report.table());
    }
    for alarm in report.alarms() {
        eprintln!("{alarm}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INCOMPLETE)
    })
}

/// The Socket.IO WebSocket endpoint of `server` (an `http://` URL).
fn socket_url(server: &str) -> anyhow::Result<String> {
    let Some(host) = server.strip_prefix("http://") else {
        bail!(
            "bench speaks plain WebSocket only: give an http:// server URL, not {server:?} \
             (built without TLS)"
        );
    };
    Ok(format!("ws://{host}/socket.io/?EIO=4&transport=websocket"))
}

/// Raises the open-file limit and warns when it is still too low for the
/// run; returns the limit in force.
fn open_files(plan: &Plan, progress: &Progress) -> Option<u64> {
    let needed = u64::try_from(plan.watchers + plan.writers).unwrap_or(u64::MAX) + SPARE_FILES;
    let limit = match proc::raise_open_file_limit() {
        Ok(limit) => Some(limit),
        Err(error) => {
            progress.say(&format!("bench: cannot raise the open-file limit: {error}"));
            proc::open_file_limit(Process::Bench)
        }
    };
    match limit {
        Some(limit) if limit < needed => progress.say(&format!(
            "bench: WARNING: the open-file limit is {limit}, below the {needed} this run needs; \
             raise the hard limit (ulimit -Hn) or run fewer watchers"
        )),
        Some(_) => {}
        None => progress.say("bench: the open-file limit is unknown"),
    }
    limit
}

/// The account and vaults the run created.
struct Setup {
    run_id: String,
    server: String,
    api: ApiClient,
    token: Arc<str>,
    vaults: Arc<[String]>,
}

impl Setup {
    /// Signs up a fresh account and creates its vaults.
    async fn create(server: &str, plan: &Plan) -> anyhow::Result<Setup> {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_millis());
        let run_id = format!("{millis}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let email = format!("bench-{run_id}@bench.invalid");
        let password = format!("{:032x}", rand::random::<u128>());
        let anonymous = ApiClient::new(server, None)?;
        anonymous
            .signup(&email, &format!("Bench {run_id}"), &password)
            .await
            .context("cannot sign up the bench's account")?;
        let login = anonymous
            .login(&email, &password)
            .await
            .context("cannot log in as the bench's account")?;
        let api = anonymous.with_token(Some(login.token.clone()));
        let mut vaults = Vec::with_capacity(plan.vaults);
        for k in 0..plan.vaults {
            let vault = api
                .create_vault(&format!("bench {run_id} #{k}"), Mutate::default())
                .await
                .context("cannot create the bench's vaults")?;
            vaults.push(vault.id);
        }
        Ok(Setup {
            run_id,
            server: api.server_url(),
            api,
            token: login.token.into(),
            vaults: vaults.into(),
        })
    }

    /// Deletes the run's vaults (the account stays: the API cannot delete
    /// one); a failure is only reported.
    async fn clean_up(&self) {
        for vault in self.vaults.iter() {
            if let Err(error) = self.api.delete_vault(vault, Mutate::default()).await {
                eprintln!("bench: could not delete vault {vault}: {error}");
            }
        }
    }
}

/// Progress bars on stderr (hidden when stderr is not a terminal).
struct Progress {
    multi: MultiProgress,
    joined: ProgressBar,
    mutations: ProgressBar,
    deliveries: ProgressBar,
}

impl Progress {
    fn new() -> Progress {
        let multi = MultiProgress::new();
        let style =
            ProgressStyle::with_template("{prefix:>10} {bar:40} {human_pos}/{human_len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = |prefix: &'static str| {
            multi.add(
                ProgressBar::new(0)
                    .with_style(style.clone())
                    .with_prefix(prefix),
            )
        };
        Progress {
            joined: bar("joined"),
            mutations: bar("mutations"),
            deliveries: bar("delivered"),
            multi,
        }
    }

    /// Prints a line on stderr above the bars.
    fn say(&self, line: &str) {
        self.multi.suspend(|| eprintln!("{line}"));
    }

    fn clear(&self) {
        for bar in [&self.joined, &self.mutations, &self.deliveries] {
            bar.finish_and_clear();
        }
    }
}

/// One run in progress.
struct Bench<'a> {
    plan: &'a Plan,
    setup: &'a Setup,
    socket_url: Arc<str>,
    progress: &'a Progress,
    shared: Arc<Shared>,
}

/// The figures of the event phase.
struct EventPhase {
    writes: Writes,
    committed: u64,
    expected: u64,
    /// Deliveries by the end of the phase.
    delivered: u64,
    elapsed: u64,
    server_cpu: Option<Duration>,
    bench_cpu: Option<Duration>,
}

/// What the restart test saw (on the bench's clock).
struct RestartPhase {
    /// When the server was seen gone.
    down: u64,
    /// When the first request it answered again was sent.
    back: u64,
    /// The burst's mutations.
    writes: Writes,
}

/// Usage around the connect + join phase.
struct ConnectPhase {
    /// The bench's CPU time during it.
    bench_cpu: Option<Duration>,
    server: Option<ServerConnect>,
}

/// The server's usage around the connect + join phase.
struct ServerConnect {
    pid: u32,
    /// Before the first connection.
    before: Usage,
    /// Once every watcher joined.
    joined: Usage,
    /// A moment later, its memory settled.
    settled: Usage,
}

impl Bench<'_> {
    async fn measure(&self, nofile_limit: Option<u64>) -> anyhow::Result<Report> {
        let server_before = self.server_usage()?;
        let bench_before = proc::usage(Process::Bench).ok();
        let (stop, stopped) = watch::channel(false);
        let connect_start = self.shared.now();
        let watchers = self.start_watchers(&stopped);
        self.wait_for_joins().await;
        let bench_joined = proc::usage(Process::Bench).ok();
        let server_joined = self.server_usage()?;
        let server = match (self.plan.server_pid, server_before, server_joined) {
            (Some(pid), Some(before), Some(joined)) => {
                tokio::time::sleep(SETTLE).await;
                let settled = proc::usage(Process::Pid(pid))
                    .context("cannot read the server's usage in /proc")?;
                Some(ServerConnect {
                    pid,
                    before,
                    joined,
                    settled,
                })
            }
            _ => None,
        };
        let connect = ConnectPhase {
            bench_cpu: cpu_between(bench_before, bench_joined),
            server,
        };
        let events = self.events().await;
        let restart = match &events {
            Ok(_) if self.plan.restart_test => Some(self.restart().await),
            _ => None,
        };
        stop.send_replace(true);
        let mut tallies = Vec::with_capacity(watchers.len());
        for handle in watchers {
            tallies.push(handle.await.context("a watcher failed")?);
        }
        let events = events?;
        let restart = restart.transpose()?;
        self.report(
            nofile_limit,
            connect_start,
            tallies,
            events,
            connect,
            restart,
        )
        .await
    }

    /// The server's usage now, with `--server-pid`.
    fn server_usage(&self) -> anyhow::Result<Option<Usage>> {
        self.plan
            .server_pid
            .map(|pid| {
                proc::usage(Process::Pid(pid)).with_context(|| {
                    format!("cannot read the usage of process {pid} in /proc (Linux only)")
                })
            })
            .transpose()
    }

    /// Spawns one task per watcher; they run until `stop` turns true.
    fn start_watchers(&self, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<Tally>> {
        let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
        let vaults: Vec<Arc<str>> = self
            .setup
            .vaults
            .iter()
            .map(|v| v.as_str().into())
            .collect();
        let all = self.plan.events + self.plan.burst();
        (0..self.plan.watchers)
            .map(|i| {
                let v = i % self.plan.vaults;
                let watcher = Watcher {
                    url: self.socket_url.clone(),
                    token: self.setup.token.clone(),
                    vault_id: vaults[v].clone(),
                    planned: self.plan.mutations_into(v, all),
                };
                tokio::spawn(watcher::watch(
                    watcher,
                    self.shared.clone(),
                    gate.clone(),
                    stop.clone(),
                ))
            })
            .collect()
    }

    /// Waits until every watcher joined, or [`JOIN_TIMEOUT`].
    async fn wait_for_joins(&self) {
        let bar = &self.progress.joined;
        bar.set_length(self.plan.watchers as u64);
        let deadline = Instant::now() + JOIN_TIMEOUT;
        loop {
            let joined = self.shared.joined.load(Ordering::Relaxed);
            bar.set_position(joined as u64);
            if joined >= self.plan.watchers {
                return;
            }
            if Instant::now() > deadline {
                self.progress.say(&format!(
                    "bench: only {joined} of {} watchers joined within {}s; going on",
                    self.plan.watchers,
                    JOIN_TIMEOUT.as_secs()
                ));
                return;
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// Fires the main phase's mutations and waits for their deliveries.
    async fn events(&self) -> anyhow::Result<EventPhase> {
        let server_start = self.server_usage()?;
        let bench_start = proc::usage(Process::Bench).ok();
        let start = self.shared.now();
        self.progress.mutations.set_length(self.plan.events as u64);
        let planned: usize = (0..self.plan.vaults)
            .map(|v| self.plan.mutations_into(v, self.plan.events) * self.plan.watchers_of(v))
            .sum();
        self.progress.deliveries.set_length(planned as u64);
        let writes = self
            .fire(0, self.plan.events, self.plan.rate, self.plan.via)
            .await?;
        let (committed, expected) = self.expected().await?;
        self.progress.deliveries.set_length(expected);
        self.drain(expected, writes.last_answer.max(start), DRAIN_TIMEOUT)
            .await;
        let elapsed = self.shared.now() - start;
        let delivered = self.shared.delivered.load(Ordering::Relaxed);
        let server_end = self.server_usage()?;
        let bench_end = proc::usage(Process::Bench).ok();
        Ok(EventPhase {
            writes,
            committed,
            expected,
            delivered,
            elapsed,
            server_cpu: cpu_between(server_start, server_end),
            bench_cpu: cpu_between(bench_start, bench_end),
        })
    }

    /// Runs `writers` on mutations `from..to` at `rate` until all are
    /// answered.
    async fn fire(&self, from: usize, to: usize, rate: f64, via: Via) -> anyhow::Result<Writes> {
        let batch = Arc::new(Batch::new(self.setup.vaults.clone(), from, to, rate));
        let mut handles = Vec::with_capacity(self.plan.writers);
        for _ in 0..self.plan.writers {
            let (batch, shared) = (batch.clone(), self.shared.clone());
            handles.push(match via {
                Via::Rest => {
                    // A client each: one keep-alive connection per writer.
                    // Raw mutations (no idempotency key, one attempt):
                    // the bench measures the mutation itself.
                    let api =
                        ApiClient::new(&self.setup.server, Some(self.setup.token.to_string()))?
                            .raw_mutations();
                    tokio::spawn(writer::rest(api, batch, shared))
                }
                Via::Socket => tokio::spawn(writer::socket(
                    self.socket_url.clone(),
                    self.setup.token.clone(),
                    batch,
                    shared,
                )),
            });
        }
        while !handles.iter().all(JoinHandle::is_finished) {
            self.tick(&batch, from);
            tokio::time::sleep(TICK).await;
        }
        self.tick(&batch, from);
        let mut writes = Writes::default();
        for handle in handles {
            writes.merge(handle.await.context("a writer failed")?);
        }
        Ok(writes)
    }

    /// Moves the mutation and delivery bars.
    fn tick(&self, batch: &Batch, from: usize) {
        let answered = batch.answered.load(Ordering::Relaxed);
        self.progress.mutations.set_position(from as u64 + answered);
        self.progress
            .deliveries
            .set_position(self.shared.delivered.load(Ordering::Relaxed));
    }

    /// The events the vaults hold (their heads added up) and the
    /// deliveries that makes: each vault's head × its watchers.
    async fn expected(&self) -> anyhow::Result<(u64, u64)> {
        let (mut committed, mut expected) = (0, 0);
        for (v, vault) in self.setup.vaults.iter().enumerate() {
            let head = self
                .setup
                .api
                .get_vault(vault)
                .await
                .context("cannot read a vault's head")?
                .seq;
            let head = u64::try_from(head).unwrap_or(0);
            committed += head;
            expected += head * self.plan.watchers_of(v) as u64;
        }
        Ok((committed, expected))
    }

    /// Waits until `expected` deliveries arrived, or `timeout` after
    /// `since` (on the bench's clock).
    async fn drain(&self, expected: u64, since: u64, timeout: Duration) {
        let deadline = since.saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
        loop {
            let delivered = self.shared.delivered.load(Ordering::Relaxed);
            self.progress.deliveries.set_position(delivered);
            if delivered >= expected || self.shared.now() > deadline {
                return;
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// The restart test: asks for a restart, waits for the server to go
    /// and come back, fires the burst and times the watchers' recovery.
    async fn restart(&self) -> anyhow::Result<RestartPhase> {
        let health = ApiClient::new(&self.setup.server, None)?;
        let before = node(&health).await;
        self.shared.epoch.fetch_add(1, Ordering::Release);
        self.progress.say("bench: restart the server now");
        let deadline = Instant::now() + RESTART_PATIENCE;
        // Gone: it stops answering, another process answers, or watchers
        // already joined again (a restart quicker than one poll). Closed
        // sockets alone do not tell: a server shutting down closes them
        // first and still answers while it drains.
        loop {
            match node(&health).await {
                None => break,
                Some(now) if Some(&now) != before.as_ref() => break,
                Some(_) if self.shared.rejoined.load(Ordering::Relaxed) > 0 => break,
                Some(_) => {}
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not go away within {}s",
                    RESTART_PATIENCE.as_secs()
                );
            }
            tokio::time::sleep(HEALTH_POLL).await;
        }
        let down = self.shared.now();
        self.progress
            .say("bench: the server went away; waiting for it to answer again");
        let back = loop {
            // A server busy with reconnecting sockets answers late: it was
            // back when the answered request was sent.
            let asked = self.shared.now();
            if node(&health).await.is_some() {
                break asked;
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not come back within {}s",
                    RESTART_PATIENCE.as_secs()
                );
            }
            tokio::time::sleep(HEALTH_POLL).await;
        };
        self.progress
            .say("bench: the server answers; firing the burst");
        let all = self.plan.events + self.plan.burst();
        self.progress.mutations.set_length(all as u64);
        let writes = self.fire(self.plan.events, all, 0.0, Via::Rest).await?;
        let (_, expected) = self.expected().await?;
        self.progress.deliveries.set_length(expected);
        let deadline = writes.last_answer.max(back)
            + u64::try_from(CATCH_UP_TIMEOUT.as_nanos()).unwrap_or(u64::MAX);
        loop {
            let delivered = self.shared.delivered.load(Ordering::Relaxed);
            self.progress.deliveries.set_position(delivered);
            let rejoined = self.shared.rejoined.load(Ordering::Relaxed);
            let caught_up = delivered >= expected && rejoined >= self.plan.watchers;
            if caught_up || self.shared.now() > deadline {
                return Ok(RestartPhase { down, back, writes });
            }
            tokio::time::sleep(TICK).await;
        }
    }

    /// Puts the figures together.
    async fn report(
        &self,
        nofile_limit: Option<u64>,
        connect_start: u64,
        tallies: Vec<Tally>,
        events: EventPhase,
        connect: ConnectPhase,
        restart: Option<RestartPhase>,
    ) -> anyhow::Result<Report> {
        let plan = self.plan;
        // After the restart test the vaults hold the burst too.
        let (committed, expected) = if restart.is_some() {
            self.expected().await?
        } else {
            (events.committed, events.expected)
        };
        let sum = |field: fn(&Tally) -> u64| tallies.iter().map(field).sum::<u64>();
        let delivered = sum(|t| t.delivered);
        let watcher_failures = tallies.iter().filter(|t| t.failure.is_some()).count();
        for failure in tallies.iter().filter_map(|t| t.failure.as_deref()) {
            self.progress
                .say(&format!("bench: a watcher gave up: {failure}"));
        }
        let joined: Vec<u64> = tallies
            .iter()
            .map(|t| t.first_join_at)
            .filter(|&at| at > 0)
            .collect();
        let connect_join_ms = (joined.len() == plan.watchers)
            .then(|| joined.iter().max().map(|&last| ms(last - connect_start)))
            .flatten();
        let unexpected = sum(|t| t.unexpected);
        let phase_seconds = events.elapsed as f64 / 1e9;
        let Writes {
            ok: mutations_ok,
            failed: mutation_errors,
            latencies_us: mutation_latencies,
            first_sent,
            last_answer,
        } = events.writes;
        let mutations_failed = mutation_errors.values().sum();
        let window = last_answer.saturating_sub(first_sent);
        let complete = delivered >= expected;
        let restart = restart.map(|phase| restart_figures(plan, &tallies, &phase, complete));
        let latencies = tallies
            .iter()
            .flat_map(|t| t.latencies_us.iter().copied())
            .collect();
        // Shares of a phase without mutations would divide by nothing.
        let share =
            |cpu: Duration| (plan.events > 0).then(|| round(cpu.as_secs_f64() / phase_seconds));
        let server = connect.server.map(|server| {
            let cpu = events.server_cpu.unwrap_or_default();
            ServerFigures {
                pid: server.pid,
                rss_before_kib: server.before.rss_kib,
                rss_after_join_kib: server.settled.rss_kib,
                rss_per_socket_kib: round(
                    (server.settled.rss_kib as f64 - server.before.rss_kib as f64)
                        / plan.watchers as f64,
                ),
                connect_cpu_ms: round(
                    server
                        .joined
                        .cpu
                        .saturating_sub(server.before.cpu)
                        .as_secs_f64()
                        * 1e3,
                ),
                cpu_ms: round(cpu.as_secs_f64() * 1e3),
                cpu_per_delivered_us: (events.delivered > 0)
                    .then(|| round(cpu.as_secs_f64() * 1e6 / events.delivered as f64)),
                cpu_share: share(cpu),
                nofile_limit: proc::open_file_limit(Process::Pid(server.pid)),
            }
        });
        Ok(Report {
            run_id: self.setup.run_id.clone(),
            server_url: self.setup.server.clone(),
            watchers: plan.watchers,
            vaults: plan.vaults,
            events: plan.events,
            rate: plan.rate,
            writers: plan.writers,
            via: plan.via.as_str(),
            nofile_limit,
            connect_join_ms,
            joined: joined.len(),
            connect_failures: self.shared.connect_failures.load(Ordering::Relaxed),
            watcher_failures,
            mutations_ok,
            mutations_failed,
            mutation_errors,
            mutation_throughput_per_s: (window > 0)
                .then(|| round(mutations_ok as f64 / (window as f64 / 1e9))),
            mutation_latency_ms: Samples::new(mutation_latencies).mutation(),
            committed,
            delivered,
            expected,
            complete,
            delivery_latency_ms: Samples::new(latencies).delivery(),
            gaps: sum(|t| t.gaps),
            out_of_order: sum(|t| t.out_of_order),
            duplicates: sum(|t| t.duplicates),
            unexpected,
            head_behind: sum(|t| t.head_behind),
            resyncs: sum(|t| t.resyncs),
            reconnects: sum(|t| t.reconnects),
            errors: mutations_failed + watcher_failures as u64 + unexpected,
            event_phase_ms: ms(events.elapsed),
            server,
            bench_connect_cpu_ms: connect.bench_cpu.map(|cpu| round(cpu.as_secs_f64() * 1e3)),
            bench_cpu_ms: events.bench_cpu.map(|cpu| round(cpu.as_secs_f64() * 1e3)),
            bench_cpu_share: events.bench_cpu.and_then(share),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            restart,
        })
    }
}

/// The CPU time spent between two readings of a process.
fn cpu_between(start: Option<Usage>, end: Option<Usage>) -> Option<Duration> {
    Some(end?.cpu.saturating_sub(start?.cpu))
}

/// The restart test's figures: `complete` says whether every delivery
/// of the whole run arrived.
fn restart_figures(
    plan: &Plan,
    tallies: &[Tally],
    phase: &RestartPhase,
    complete: bool,
) -> RestartFigures {
    let rejoins: Vec<u64> = tallies
        .iter()
        .map(|t| t.rejoin_at)
        .filter(|&at| at > 0)
        .collect();
    let all_rejoined = rejoins.len() == plan.watchers;
    let last_rejoin = rejoins.iter().max().copied().unwrap_or(0);
    let last_delivery = tallies
        .iter()
        .map(|t| t.last_delivery_at)
        .max()
        .unwrap_or(0);
    // Back when it answered a health check or a watcher joined again,
    // whichever came first.
    let back = rejoins.iter().fold(phase.back, |back, &at| back.min(at));
    let since_back = |at: u64| ms(at.saturating_sub(back));
    RestartFigures {
        server_down_ms: ms(back.saturating_sub(phase.down)),
        burst: plan.burst(),
        burst_ok: phase.writes.ok,
        burst_failed: phase.writes.failed_total(),
        rejoined: rejoins.len(),
        rejoin_ms: all_rejoined.then(|| since_back(last_rejoin)),
        caught_up_ms: (all_rejoined && complete)
            .then(|| since_back(last_delivery.max(last_rejoin))),
        delivery_latency_ms: Samples::new(
            tallies
                .iter()
                .flat_map(|t| t.burst_latencies_us.iter().copied())
                .collect(),
        )
        .delivery(),
        complete: all_rejoined && complete,
    }
}

/// The node answering `/healthz` (its name, or empty when it gives
/// none); `None` when nothing answers.
async fn node(api: &ApiClient) -> Option<String> {
    match tokio::time::timeout(HEALTH_TIMEOUT, api.healthz()).await {
        Ok(Ok(health)) => Some(health.node.unwrap_or_default()),
        _ => None,
    }
}
