//! End to end: the real `syncscript-tui` binary in tmux against a real
//! server started in this process (`syncscript_testkit::TestApp`), with sources added by the real
//! `syncscript-cli` binary. The screen is read with `tmux capture-pane -p`,
//! polled until a deadline.
//!
//! Needs tmux (`scripts` install it) and the `syncscript-cli` binary next to
//! `syncscript-tui` in the target folder (a workspace build provides it).

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use syncscript_client::api::{ApiClient, Mutate};
use syncscript_protocol::Role;
use syncscript_testkit::{Backend, PASSWORD, TestApp, eventually};
use tempfile::TempDir;

/// How long a step that does not measure latency may take.
const PATIENCE: Duration = Duration::from_secs(15);
/// A change shows on other members' screens within a second.
const LIVE: Duration = Duration::from_secs(1);

/// A captured screen, shown as it reads when a wait fails.
struct Screen(String);

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}", self.0)
    }
}

/// Signs a user up and returns an API client logged in as them.
async fn user(server: &TestApp, email: &str, name: &str) -> ApiClient {
    server.signup(email, name).await;
    let login = server.login(email, PASSWORD).await;
    ApiClient::new(&server.base, Some(login.token)).unwrap()
}

/// A private tmux server (its own socket), killed when dropped.
struct Tmux {
    socket: String,
    /// The socket file, removed with the server.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn new() -> Tmux {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        Tmux {
            socket: format!("syncscript-tui-e2e-{}-{nanos}", std::process::id()),
            socket_path: None,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux is installed");
        assert!(
            output.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts `command` in a new 100×30 session named `name`; the pane stays
    /// after the program exits so that its last words can be read.
    fn start(&mut self, name: &str, command: &[String]) {
        let mut args = vec![
            "start-server",
            ";",
            "set-option",
            "-g",
            "remain-on-exit",
            "on",
            ";",
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            "100",
            "-y",
            "30",
        ];
        args.extend(command.iter().map(String::as_str));
        self.run(&args);
        let path = self.run(&["display-message", "-p", "#{socket_path}"]);
        let path = String::from_utf8_lossy(&path.stdout).trim().to_owned();
        self.socket_path = Some(PathBuf::from(path));
    }

    fn screen(&self, name: &str) -> String {
        let output = self.run(&["capture-pane", "-p", "-t", name]);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Presses one key, by tmux name (`a`, `Enter`, `Tab`, `BSpace`).
    fn keys(&self, name: &str, key: &str) {
        self.run(&["send-keys", "-t", name, key]);
    }

    /// Types `text` literally.
    fn type_text(&self, name: &str, text: &str) {
        self.run(&["send-keys", "-t", name, "-l", text]);
    }

    /// Reads the screen until it contains every one of `texts`, or panics
    /// with the screen after `within`.
    async fn wait_for(&self, name: &str, texts: &[&str], within: Duration) -> String {
        let what = format!("{name}'s screen shows {texts:?}");
        eventually(&what, within, async || {
            let screen = self.screen(name);
            if texts.iter().all(|text| screen.contains(text)) {
                Ok(screen)
            } else {
                Err(Screen(screen))
            }
        })
        .await
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn tui_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_syncscript-tui"))
}

fn cli_binary() -> PathBuf {
    let path = tui_binary().with_file_name("syncscript-cli");
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}

/// `syncscript-cli add-source`, as `api`'s user.
fn add_source(server: &TestApp, api: &ApiClient, vault_id: &str, title: &str) {
    let config = tempfile::tempdir().unwrap();
    let output = Command::new(cli_binary())
        .env("SYNCSCRIPT_CONFIG_DIR", config.path())
        .args(["--server", &server.base])
        // `=`: a token may start with `-`.
        .arg(format!("--token={}", api.token().unwrap()))
        .args(["add-source", "--vault", vault_id, "--title", title])
        .args(["--url", "https://example.org/paper.pdf"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "add-source failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn tui_command(server: &TestApp, api: &ApiClient, vault_id: &str, config: &TempDir) -> Vec<String> {
    vec![
        "env".into(),
        format!("SYNCSCRIPT_CONFIG_DIR={}", config.path().display()),
        tui_binary().display().to_string(),
        "--server".into(),
        server.base.clone(),
        // `=`: a token may start with `-`.
        format!("--token={}", api.token().unwrap()),
        "--vault".into(),
        vault_id.to_owned(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_reconnect_after_restart_and_viewer_refusal() {
    let mut server = TestApp::spawn(Backend::Sqlite).await;
    let owner = user(&server, "ada@example.org", "Ada Owner").await;
    let viewer = user(&server, "cy@example.org", "Cy Viewer").await;
    let vault = owner
        .create_vault("Reading group", Mutate::default())
        .await
        .unwrap();
    owner
        .add_member(&vault.id, "cy@example.org", Role::Viewer, Mutate::default())
        .await
        .unwrap();

    let mut tmux = Tmux::new();
    let config = tempfile::tempdir().unwrap();
    tmux.start("owner", &tui_command(&server, &owner, &vault.id, &config));
    tmux.start("viewer", &tui_command(&server, &viewer, &vault.id, &config));
    // Joined: presence lists the user themself.
    tmux.wait_for(
        "owner",
        &["Reading group", "connected", "Ada Owner (you)"],
        PATIENCE,
    )
    .await;
    tmux.wait_for(
        "viewer",
        &["Reading group", "connected", "Cy Viewer (you)"],
        PATIENCE,
    )
    .await;

    // seq 1 was `member:added`.
    // Live: a source added from the CLI shows on both screens within a second.
    add_source(&server, &owner, &vault.id, "Paxos Made Simple");
    let added = Instant::now();
    tmux.wait_for("owner", &["Paxos Made Simple", "seq 2"], LIVE)
        .await;
    tmux.wait_for(
        "viewer",
        &["Paxos Made Simple", "seq 2"],
        LIVE.saturating_sub(added.elapsed()),
    )
    .await;

    // A viewer pressing `a` is told why nothing happens.
    tmux.keys("viewer", "a");
    tmux.wait_for("viewer", &["Viewers can't add sources"], PATIENCE)
        .await;

    // The owner adds one from the TUI (a Socket.IO command with an ack):
    // a refused URL is explained in the form, a good one reaches the viewer.
    tmux.keys("owner", "a");
    tmux.wait_for("owner", &["Add source"], PATIENCE).await;
    tmux.type_text("owner", "Lamport clocks");
    tmux.keys("owner", "Tab");
    tmux.type_text("owner", "ftp://example.org/clocks.pdf");
    tmux.keys("owner", "Enter");
    tmux.wait_for("owner", &["VALIDATION"], PATIENCE).await;
    for _ in "ftp://example.org/clocks.pdf".chars() {
        tmux.keys("owner", "BSpace");
    }
    tmux.type_text("owner", "https://example.org/clocks.pdf");
    tmux.keys("owner", "Enter");
    tmux.wait_for("owner", &["Added “Lamport clocks”", "seq 3"], PATIENCE)
        .await;
    tmux.wait_for("viewer", &["Lamport clocks", "seq 3"], LIVE)
        .await;

    // The server goes away: the client says it is reconnecting.
    server.stop().await;
    tmux.wait_for("owner", &["reconnecting"], PATIENCE).await;
    tmux.wait_for("viewer", &["reconnecting"], PATIENCE).await;

    // Back on the same port and database; a source is added at once, most
    // likely before the clients are back: they must catch up by themselves.
    server.start_again().await;
    add_source(&server, &owner, &vault.id, "Time, Clocks, and the Ordering");
    for name in ["owner", "viewer"] {
        let screen = tmux
            .wait_for(
                name,
                &[
                    "Time, Clocks, and the Ordering",
                    "Paxos Made Simple",
                    "● connected",
                    "seq 4",
                ],
                PATIENCE,
            )
            .await;
        assert!(!screen.contains("reconnecting"), "{screen}");
    }

    // And they are live again.
    add_source(&server, &owner, &vault.id, "Dynamo");
    tmux.wait_for("owner", &["Dynamo", "seq 5"], LIVE).await;
    tmux.wait_for("viewer", &["Dynamo", "seq 5"], LIVE).await;

    tmux.keys("owner", "q");
    tmux.keys("viewer", "q");
    server.stop().await;
}
