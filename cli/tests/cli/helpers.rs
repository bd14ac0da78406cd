//! The test server, the CLI runner and line readers shared by the tests.

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use syncscript_client::api::ApiClient;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// How long any single expected thing may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The seed's default password.
pub const PASSWORD: &str = "demo-password";

/// A server running in this process, restartable on the same port and
/// database file.
///
/// Each instance runs on its own tokio runtime, dropped once `run` returns:
/// like a process exit, that also ends the connections the server leaves
/// behind (upgraded websockets outlive axum's graceful shutdown).
pub struct TestServer {
    pub addr: SocketAddr,
    pub url: String,
    database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<anyhow::Result<()>>>,
    _data: TempDir,
}

impl TestServer {
    /// Starts a server on a free port with a fresh database.
    pub async fn start() -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/db.sqlite", data.path().display());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = TestServer {
            addr,
            url: format!("http://{addr}"),
            database_url,
            shutdown: None,
            stopped: None,
            _data: data,
        };
        server.serve(listener);
        server
    }

    fn serve(&mut self, listener: TcpListener) {
        let listener = listener.into_std().unwrap();
        let config = syncscript::Config::new(self.database_url.clone());
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped_rx) = oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let listener = TcpListener::from_std(listener)?;
                let shutdown = async move {
                    let _ = shutdown_rx.await;
                };
                syncscript::run(listener, config, shutdown).await
            });
            runtime.shutdown_timeout(TIMEOUT);
            let _ = stopped_tx.send(result);
        });
        self.shutdown = Some(shutdown_tx);
        self.stopped = Some(stopped_rx);
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            tokio::time::timeout(TIMEOUT, stopped)
                .await
                .expect("server did not stop in time")
                .unwrap()
                .unwrap();
        }
    }

    /// Starts a new server instance on the same port and database.
    pub async fn restart(&mut self) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    eprintln!("rebinding {}: {error}", self.addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => panic!("cannot rebind {}: {error}", self.addr),
            }
        };
        self.serve(listener);
    }

    /// An API client logged in as `email` (with the seed's password).
    pub async fn login(&self, email: &str) -> ApiClient {
        let api = ApiClient::new(&self.url, None).unwrap();
        let login = api.login(email, PASSWORD).await.unwrap();
        api.with_token(Some(login.token))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs the real binary against one server with its own config folder.
pub struct CliRunner {
    server: String,
    pub config: TempDir,
}

impl CliRunner {
    pub fn new(server: &TestServer) -> CliRunner {
        CliRunner {
            server: server.url.clone(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    /// The command with this runner's server and config folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_syncscript-cli"));
        command
            .args(args)
            .env("SYNCSCRIPT_SERVER", &self.server)
            .env("SYNCSCRIPT_CONFIG_DIR", self.config.path())
            .env_remove("SYNCSCRIPT_TOKEN")
            .env_remove("SYNCSCRIPT_PASSWORD")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    /// Runs to completion.
    pub async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(TIMEOUT, self.command(args).output())
            .await
            .expect("syncscript-cli took too long")
            .unwrap()
    }

    /// Runs, asserts success, and returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "syncscript-cli {args:?} failed: {}\nstdout: {}",
            String::from_utf8_lossy(&output.stderr),
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs with `--json`, asserts success, and parses stdout.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let stdout = self.ok(&with_json).await;
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Runs, asserts failure, and returns stderr.
    pub async fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            !output.status.success(),
            "syncscript-cli {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        String::from_utf8(output.stderr).unwrap()
    }
}

/// A running child whose stdout and stderr are read line by line.
pub struct Lines {
    pub child: Child,
    stdout: mpsc::UnboundedReceiver<String>,
    stderr: mpsc::UnboundedReceiver<String>,
}

impl Lines {
    pub fn spawn(mut command: Command) -> Lines {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = forward(child.stdout.take().unwrap(), "stdout");
        let stderr = forward(child.stderr.take().unwrap(), "stderr");
        Lines {
            child,
            stdout,
            stderr,
        }
    }

    /// The next stdout line.
    pub async fn next_line(&mut self) -> String {
        tokio::time::timeout(TIMEOUT, self.stdout.recv())
            .await
            .expect("no stdout line in time")
            .expect("stdout closed")
    }

    /// The next stdout line, parsed as JSON.
    pub async fn next_json(&mut self) -> Value {
        let line = self.next_line().await;
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    /// Waits for a stderr line containing `needle`; returns it.
    pub async fn stderr_until(&mut self, needle: &str) -> String {
        let wait = async {
            let mut seen = Vec::new();
            while let Some(line) = self.stderr.recv().await {
                if line.contains(needle) {
                    return line;
                }
                seen.push(line);
            }
            panic!(
                "stderr closed before {needle:?}; it said:\n{}",
                seen.join("\n")
            );
        };
        tokio::time::timeout(TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("no stderr line with {needle:?} in time"))
    }

    /// Waits for the child to exit and returns its status code.
    pub async fn exit_code(&mut self) -> Option<i32> {
        tokio::time::timeout(TIMEOUT, self.child.wait())
            .await
            .expect("child did not exit in time")
            .unwrap()
            .code()
    }
}

/// Forwards lines into a channel, echoing them for the test's captured
/// output (shown when it fails).
fn forward(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    label: &'static str,
) -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            println!("[child {label}] {line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Seeds the server through the CLI and returns the demo vault's id.
pub async fn seed(cli: &CliRunner) -> String {
    let report = cli.json(&["seed"]).await;
    report["demoVault"]["id"].as_str().unwrap().to_owned()
}
