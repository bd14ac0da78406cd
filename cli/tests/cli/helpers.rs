//! The CLI runner and line readers shared by the tests; the server is
//! `syncscript_testkit::TestApp`.

use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use syncscript_client::api::ApiClient;
use syncscript_testkit::TestApp;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// How long any single expected thing may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// The seed's default password.
pub const PASSWORD: &str = "demo-password";

/// An API client logged in as `email` (with the seed's password).
pub async fn api_as(server: &TestApp, email: &str) -> ApiClient {
    let login = server.login(email, PASSWORD).await;
    ApiClient::new(&server.base, Some(login.token)).unwrap()
}

/// Runs the real binary against one server with its own config folder.
pub struct CliRunner {
    server: String,
    pub config: TempDir,
}

impl CliRunner {
    pub fn new(server: &TestApp) -> CliRunner {
        CliRunner {
            server: server.base.clone(),
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
