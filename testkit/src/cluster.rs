//! `Cluster`: several real `syncscript serve` processes on one fresh
//! PostgreSQL database and a Redis server of their own, with nginx in front
//! when asked, for the multi-node tests.
//!
//! Every process is the real binary, so a node can be killed with SIGKILL,
//! and the Redis server is started on a free port for one cluster, so that
//! stopping it disturbs nothing else. Process output goes to files, printed
//! when a test fails.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

use crate::api::Api;
use crate::app::healthy;
use crate::database::{Backend, TestDatabase};
use crate::eventually::try_eventually;

/// How long a process may take to start or stop.
const PATIENCE: Duration = Duration::from_secs(20);

/// The repository's root (for `scripts/`).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A port that was free a moment ago on 127.0.0.1.
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("local addr").port()
}

/// The last lines of a log file, for a failing test's message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Starts `program` with its output in `log`, killed when dropped.
fn spawn(program: &Path, args: &[String], log: &Path) -> Child {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

/// A Redis server of the test's own, on a free port, keeping nothing on disk.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Redis {
    pub async fn start() -> Redis {
        let mut redis = Redis {
            port: free_port().await,
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
        };
        redis.start_again().await;
        redis
    }

    /// `redis://127.0.0.1:{port}`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (it keeps nothing) and waits until it is gone.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub async fn start_again(&mut self) {
        let args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &self.dir.path().display().to_string(),
        ]
        .map(str::to_owned)
        .to_vec();
        let log = self.dir.path().join("redis.log");
        self.child = Some(spawn(Path::new("redis-server"), &args, &log));
        let answered = try_eventually(
            PATIENCE,
            async || {
                if self.pong().await { Ok(()) } else { Err(()) }
            },
        )
        .await;
        if answered.is_err() {
            panic!(
                "redis-server on port {} never answered:\n{}",
                self.port,
                tail(&log)
            );
        }
    }

    /// Whether the server answers PING.
    async fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut answer = [0; 7];
        stream.read_exact(&mut answer).await.is_ok() && &answer == b"+PONG\r\n"
    }
}

/// One `syncscript serve` process.
pub struct Node {
    /// Its `--node-id`.
    pub id: String,
    pub port: u16,
    /// Its REST API (and Socket.IO at the same address).
    pub api: Api,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Kills the process with SIGKILL: no graceful anything.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }

    /// The last lines of its output.
    pub fn log(&self) -> String {
        tail(&self.log)
    }

    async fn start(&mut self, binary: &Path) {
        self.child = Some(spawn(binary, &self.args, &self.log));
        let healthy = try_eventually(PATIENCE, async || {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("node {} exited ({status}):\n{}", self.id, self.log());
            }
            healthy(&self.api.http, &self.api.base).await
        })
        .await;
        if let Err(last) = healthy {
            panic!(
                "node {} never became healthy ({last}):\n{}",
                self.id,
                self.log()
            );
        }
    }
}

/// nginx in front of the nodes, configured by `scripts/nginx-conf`.
struct Nginx {
    child: Child,
    log: PathBuf,
    /// The program and its `-p`, `-c` and `-e` arguments.
    program: PathBuf,
    args: Vec<String>,
}

/// Nodes sharing one fresh PostgreSQL database and their own Redis.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub redis: Redis,
    pub database: TestDatabase,
    binary: PathBuf,
    dir: tempfile::TempDir,
    nginx: Option<Nginx>,
}

impl Cluster {
    /// Starts `nodes` nodes of `binary` (the `syncscript` executable) with
    /// `--head-sweep 1s`, one after the other (the first runs the
    /// migrations).
    pub async fn start(binary: &Path, nodes: usize) -> Cluster {
        let database = TestDatabase::create(Backend::Postgres).await;
        let redis = Redis::start().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cluster = Cluster {
            nodes: Vec::new(),
            redis,
            database,
            binary: binary.to_path_buf(),
            dir,
            nginx: None,
        };
        for index in 1..=nodes {
            let port = free_port().await;
            let id = format!("node-{index}");
            let args = [
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                &cluster.database.url,
                "--redis-url",
                &cluster.redis.url(),
                "--node-id",
                &id,
                "--head-sweep",
                "1s",
                // Behind nginx every client has the proxy's address.
                "--auth-rate-per-minute",
                "0",
                "--log-level",
                "info,sqlx=warn,socketioxide=warn,engineioxide=warn",
            ]
            .map(str::to_owned)
            .to_vec();
            let mut node = Node {
                log: cluster.dir.path().join(format!("{id}.log")),
                api: Api::new(format!("http://127.0.0.1:{port}")),
                id,
                port,
                args,
                child: None,
            };
            node.start(&cluster.binary).await;
            cluster.nodes.push(node);
        }
        cluster
    }

    /// Starts a killed node again, same port and arguments.
    pub async fn restart(&mut self, index: usize) {
        let binary = self.binary.clone();
        let node = &mut self.nodes[index];
        node.kill().await;
        node.start(&binary).await;
    }

    /// Starts nginx in front of every node (the project's configuration:
    /// IP-hash stickiness, WebSocket upgrades) and returns its API.
    pub async fn with_nginx(&mut self) -> Api {
        let port = free_port().await;
        let dir = self.dir.path().join("nginx");
        std::fs::create_dir_all(&dir).expect("nginx dir");
        let mut args = vec![port.to_string(), dir.display().to_string()];
        args.extend(self.nodes.iter().map(|node| node.port.to_string()));
        let script = repo_root().join("scripts/nginx-conf");
        let status = Command::new(&script)
            .args(&args)
            .status()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(status.success(), "scripts/nginx-conf failed");
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_absolute() && path.exists())
            .expect("nginx is installed (scripts/setup installs it)");
        let log = dir.join("nginx.out");
        let conf = dir.join("nginx.conf");
        let args = vec![
            "-p".to_owned(),
            dir.display().to_string(),
            "-c".to_owned(),
            conf.display().to_string(),
            "-e".to_owned(),
            dir.join("error.log").display().to_string(),
        ];
        let mut foreground = args.clone();
        foreground.extend(["-g".to_owned(), "daemon off;".to_owned()]);
        let child = spawn(&nginx, &foreground, &log);
        let api = Api::new(format!("http://127.0.0.1:{port}"));
        if let Err(last) =
            try_eventually(PATIENCE, async || healthy(&api.http, &api.base).await).await
        {
            panic!("nginx never answered ({last}):\n{}", tail(&log));
        }
        self.nginx = Some(Nginx {
            child,
            log,
            program: nginx,
            args,
        });
        api
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("---- {} ----\n{}", node.id, node.log());
            }
            if let Some(nginx) = &self.nginx {
                eprintln!("---- nginx ----\n{}", tail(&nginx.log));
            }
        }
        if let Some(nginx) = self.nginx.as_mut() {
            // Killing the master alone would leave its workers running:
            // `-s stop` has the master stop them and exit.
            let stopped = std::process::Command::new(&nginx.program)
                .args(&nginx.args)
                .args(["-s", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            // Wait for the master (killed when dropped) to be done.
            let deadline = std::time::Instant::now() + PATIENCE;
            while stopped.as_ref().is_ok_and(|status| status.success())
                && matches!(nginx.child.try_wait(), Ok(None))
                && std::time::Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}
