//! `Server`: one real `syncscript serve` process on a port of its own, its
//! output in a file; SIGKILLed when dropped, so a failing test leaks no
//! process, and its log printed then.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use syncscript_testkit::{Api, try_eventually};
use tokio::process::{Child, Command};

use crate::BINARY;

/// How long the process may take to start.
const START_PATIENCE: Duration = Duration::from_secs(20);

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running (or killed) `syncscript serve`.
pub struct Server {
    pub port: u16,
    /// Its REST API (Socket.IO is at the same address).
    pub api: Api,
    /// The program and its arguments, the same at every start.
    command: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the server on `database_url` and waits until it answers.
    pub async fn start(database_url: &str) -> Server {
        Server::start_wrapped(database_url, &[]).await
    }

    /// Starts the server through `wrapper` (a program and its arguments,
    /// which must end by exec'ing the arguments that follow it, so that the
    /// child's pid is the server's).
    pub async fn start_wrapped(database_url: &str, wrapper: &[String]) -> Server {
        let port = free_port();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut command: Vec<String> = wrapper.to_vec();
        command.extend(
            [
                BINARY,
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--database-url",
                database_url,
                "--head-sweep",
                "1s",
                "--log-level",
                "info,sqlx=warn,socketioxide=warn,engineioxide=warn",
            ]
            .map(str::to_owned),
        );
        let mut server = Server {
            port,
            api: Api::new(format!("http://127.0.0.1:{port}")),
            command,
            log: dir.path().join("server.log"),
            child: None,
            _dir: dir,
        };
        server.start_again().await;
        server
    }

    /// The server's pid (the wrapper exec'd it).
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("the server is running")
    }

    /// Kills the process with SIGKILL, nothing graceful, and waits for it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.ok();
        }
    }

    /// Starts the (killed) server again, same port, same database, and waits
    /// until it answers.
    pub async fn start_again(&mut self) {
        self.kill().await;
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            // Many sign-ups from one address, and writers faster than a
            // person: the abuse limits are not under test here.
            .env("SYNCSCRIPT_AUTH_RATE_PER_MINUTE", "0")
            .env("SYNCSCRIPT_SOCKET_COMMAND_RATE", "0")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.command[0]));
        self.child = Some(child);
        let healthy = try_eventually(START_PATIENCE, async || {
            assert!(self.is_running(), "the server exited:\n{}", self.tail());
            let health = self
                .api
                .http
                .get(self.api.url("/healthz"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            match health {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(response.status().to_string()),
                Err(error) => Err(error.to_string()),
            }
        })
        .await;
        if let Err(last) = healthy {
            panic!(
                "the server never answered /healthz ({last}):\n{}",
                self.tail()
            );
        }
    }

    /// Whether the process is still alive.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Everything the server printed.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines it printed.
    pub fn tail(&self) -> String {
        tail(&self.log, 60)
    }

    /// The server is alive and never panicked.
    pub fn assert_alive_without_panic(&mut self) {
        assert!(self.is_running(), "the server died:\n{}", self.tail());
        self.assert_no_panic();
    }

    /// The server never panicked (in any of its runs).
    pub fn assert_no_panic(&self) {
        let output = self.output();
        assert!(
            !output.contains("panicked"),
            "the server panicked:\n{}",
            output
                .lines()
                .filter(|l| l.contains("panicked"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- server output (last lines) ----\n{}", self.tail());
        }
        if let Some(child) = self.child.as_mut() {
            child.start_kill().ok();
        }
    }
}

/// The last `lines` lines of a file.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
