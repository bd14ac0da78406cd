//! A PostgreSQL server of the test's own, on a free port, that the test may
//! stop and start again without disturbing the shared one the other suites
//! use. The data directory is a temp dir owned by the `postgres` OS user:
//! `initdb` and `postgres` refuse to run as root, so every `pg_ctl` runs
//! through `runuser -u postgres`. Stopped (immediately) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::server::{free_port, tail};

/// The PostgreSQL server.
pub struct PrivatePostgres {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
    running: bool,
}

impl PrivatePostgres {
    /// Creates a cluster (`initdb`, trust authentication for `postgres`)
    /// and starts it.
    pub async fn start() -> PrivatePostgres {
        let bin = postgres_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::chown(dir.path(), Some(uid("postgres")), Some(gid("postgres")))
            .expect("chown the data directory to postgres");
        let data = dir.path().join("data");
        let mut postgres = PrivatePostgres {
            port: free_port(),
            bin,
            dir,
            running: false,
        };
        postgres
            .as_postgres(
                "initdb",
                &[
                    "-D",
                    &path(&data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-sync",
                    "-E",
                    "UTF8",
                ],
            )
            .await;
        postgres.start_again().await;
        postgres
    }

    /// `postgres://postgres@127.0.0.1:{port}/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl stop -m immediate`: every backend killed at once, as a crash
    /// or a pulled plug would; the port refuses connections afterwards.
    pub async fn stop_immediately(&mut self) {
        let data = path(&self.dir.path().join("data"));
        self.pg_ctl(&["stop", "-D", &data, "-m", "immediate", "-w"])
            .await;
        self.running = false;
    }

    /// Starts the server (again, after a crash recovery if it was stopped
    /// immediately) and waits until it accepts connections.
    pub async fn start_again(&mut self) {
        let data = path(&self.dir.path().join("data"));
        let log = path(&self.dir.path().join("postgres.log"));
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path(self.dir.path())
        );
        self.pg_ctl(&["start", "-D", &data, "-l", &log, "-o", &options, "-w"])
            .await;
        self.running = true;
    }

    async fn pg_ctl(&self, args: &[&str]) {
        self.as_postgres("pg_ctl", args).await;
    }

    /// Runs one of the PostgreSQL programs as the `postgres` user.
    async fn as_postgres(&self, program: &str, args: &[&str]) {
        let program = path(&self.bin.join(program));
        let mut all = vec!["-u", "postgres", "--", &program];
        all.extend(args);
        let output = tokio::process::Command::new("runuser")
            .args(&all)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {program} through runuser: {e}"));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            tail(&self.dir.path().join("postgres.log"), 20)
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let data = path(&self.dir.path().join("data"));
            let program = path(&self.bin.join("pg_ctl"));
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--", &program])
                .args(["stop", "-D", &data, "-m", "immediate", "-w"])
                .current_dir(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// The newest `/usr/lib/postgresql/*/bin`.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql")
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("a PostgreSQL with pg_ctl under /usr/lib/postgresql/*/bin")
}

/// The uid of an OS user (`id -u`).
fn uid(user: &str) -> u32 {
    id(&["-u", user])
}

/// The gid of an OS user's group (`id -g`).
fn gid(user: &str) -> u32 {
    id(&["-g", user])
}

fn id(args: &[&str]) -> u32 {
    let output = Command::new("id").args(args).output().expect("id runs");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("id {args:?}: the OS user exists"))
}

fn path(path: &Path) -> String {
    path.display().to_string()
}
