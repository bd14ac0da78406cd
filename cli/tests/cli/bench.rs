//! `bench` accounts for every delivery: small runs against a test server
//! must deliver every event to every watcher, in order, and count exactly
//! what was fired. Never timings: they depend on the machine.

use std::process::ExitStatus;

use serde_json::{Value, json};
use syncscript_testkit::{Backend, TestApp};

use crate::helpers::{CliRunner, Lines, TIMEOUT};

/// Runs `bench --json` with `args`; returns its report and exit status
/// (its stderr goes to the test's output).
async fn bench(cli: &CliRunner, args: &[&str]) -> (Value, ExitStatus) {
    let mut command = vec!["--json", "bench"];
    command.extend_from_slice(args);
    let output = cli.run(&command).await;
    println!("bench stderr: {}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: stdout {stdout}"));
    (report, output.status)
}

/// Asserts a clean run: `mutations` fired, `committed` events in the
/// vaults, `expected` deliveries all made, in order, no failure.
fn assert_clean(report: &Value, status: ExitStatus, mutations: u64, committed: u64, expected: u64) {
    let figures =
        |names: &[&str]| -> Vec<Value> { names.iter().map(|name| report[*name].clone()).collect() };
    assert_eq!(
        figures(&["delivered", "expected", "complete"]),
        [json!(expected), json!(expected), json!(true)],
        "{report}"
    );
    assert_eq!(
        figures(&["mutations_ok", "committed", "mutations_failed", "errors"]),
        [json!(mutations), json!(committed), json!(0), json!(0)],
        "{report}"
    );
    assert_eq!(
        figures(&["out_of_order", "gaps", "duplicates", "unexpected"]),
        [json!(0), json!(0), json!(0), json!(0)],
        "{report}"
    );
    assert_eq!(report["joined"], report["watchers"], "{report}");
    assert_eq!(report["watcher_failures"], 0, "{report}");
    assert!(status.success(), "bench exited with {status}: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_over_rest_delivers_every_event_to_every_watcher_in_order() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let args = [
        "--watchers",
        "50",
        "--events",
        "100",
        "--writers",
        "4",
        "--rate",
        "0",
    ];
    let (report, status) = bench(&cli, &args).await;
    assert_clean(&report, status, 100, 100, 50 * 100);
    assert_eq!(report["via"], "rest");
    assert_eq!(report["events"], 100);
    assert_eq!(report["server"], Value::Null, "no --server-pid");
    // The bench cleans up after itself: its vault is deleted.
    assert_eq!(server.count("vaults WHERE deleted_at IS NULL").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_over_sockets_counts_the_same() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let args = [
        "--watchers",
        "50",
        "--events",
        "100",
        "--writers",
        "4",
        "--rate",
        "0",
        "--via",
        "socket",
    ];
    let (report, status) = bench(&cli, &args).await;
    assert_clean(&report, status, 100, 100, 50 * 100);
    assert_eq!(report["via"], "socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_accounts_for_each_vault_with_its_own_watchers() {
    let server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let (watchers, vaults, events) = (50_u64, 3_u64, 100_u64);
    let args = [
        "--watchers",
        "50",
        "--vaults",
        "3",
        "--events",
        "100",
        "--rate",
        "0",
    ];
    let (report, status) = bench(&cli, &args).await;
    // Watcher i watches vault i mod 3, mutation k goes to vault k mod 3.
    let share = |total: u64, v: u64| total / vaults + u64::from(v < total % vaults);
    let expected: u64 = (0..vaults)
        .map(|v| share(watchers, v) * share(events, v))
        .sum();
    assert_eq!(expected, 17 * 34 + 17 * 33 + 16 * 33);
    assert_clean(&report, status, events, events, expected);
    assert_eq!(report["vaults"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_restart_test_sees_every_watcher_rejoin_and_catch_up() {
    let mut server = TestApp::spawn(Backend::Sqlite).await;
    let cli = CliRunner::new(&server);
    let mut run = Lines::spawn(cli.command(&[
        "--json",
        "bench",
        "--watchers",
        "20",
        "--events",
        "40",
        "--rate",
        "0",
        "--restart-test",
    ]));
    run.stderr_until("bench: restart the server now").await;
    server.restart().await;
    let report = run.next_json().await;
    let status = tokio::time::timeout(TIMEOUT, run.child.wait())
        .await
        .expect("bench did not exit in time")
        .unwrap();
    // The main phase and the burst, 40 mutations each, reached all 20.
    assert_clean(&report, status, 40, 80, 20 * 80);
    let restart = &report["restart"];
    assert_eq!(restart["complete"], true, "{report}");
    assert_eq!(restart["rejoined"], 20, "{report}");
    assert_eq!(restart["burst_ok"], 40, "{report}");
    assert_eq!(restart["burst_failed"], 0, "{report}");
    assert!(report["reconnects"].as_u64() >= Some(20), "{report}");
}
