//! The terminal client's app and network layer, without a terminal,
//! against a real server (in-process, SQLite): its source commands carry an
//! `opId`, a command whose ack is lost is sent again with the same `opId`
//! (by the session, or by the person pressing Enter again), and the vault
//! holds the change once.
//!
//! Acks are lost by a TCP proxy between the client and the server
//! (`syncscript_testkit::LossyProxy`): it forwards the command, then
//! closes the connection instead of forwarding the ack.

use std::time::Duration;

use chrono::Utc;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use syncscript_client::api::ApiClient;
use syncscript_client::{ClientError, RetryPolicy};
use syncscript_protocol::names;
use syncscript_testkit::{Backend, LossyProxy, TestApp, TestUser};
use syncscript_tui::action::{Action, Command, Effect, NetEvent};
use syncscript_tui::app::{App, Connection, Identity, Mode};
use syncscript_tui::net::Network;
use tokio::sync::mpsc;

/// How long any one step may take (a lost ack alone takes 5 s).
const TIMEOUT: Duration = Duration::from_secs(30);

/// The app and its network, run by hand like the event loop does.
struct Headless {
    app: App,
    network: Network,
    reports: mpsc::UnboundedReceiver<NetEvent>,
    /// What the network reported so far, briefly (for failure messages).
    seen: Vec<String>,
}

/// A report in a few words.
fn brief(report: &NetEvent) -> String {
    match report {
        NetEvent::Event(event) => format!("Event(seq {})", event.meta.seq),
        NetEvent::Joined(joined) => format!("Joined(seq {})", joined.seq),
        NetEvent::CommandDone { result, .. } => format!("CommandDone({result:?})"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

impl Headless {
    /// Opens `vault` as `user` through `url`, and waits until it is joined.
    async fn open(url: &str, user: &TestUser, vault: &str, retry: RetryPolicy) -> Headless {
        let api = ApiClient::new(url, Some(user.token.clone())).unwrap();
        let (tx, reports) = mpsc::unbounded_channel();
        let network = Network::start(api, user.token.clone(), tx).with_retry(retry);
        let identity = Identity {
            server: url.to_owned(),
            user_id: user.id.clone(),
            name: user.name.clone(),
        };
        let mut app = App::new(identity, Utc::now());
        let effects = app.start(Some(vault.to_owned()));
        let mut headless = Headless {
            app,
            network,
            reports,
            seen: Vec::new(),
        };
        headless.run(effects);
        headless
            .until_app(|app| app.joined && app.connection == Connection::Connected)
            .await;
        headless
    }

    fn run(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            self.network.perform(effect);
        }
        self.network.track(self.app.applied());
    }

    fn key(&mut self, code: KeyCode) -> Vec<Effect> {
        let effects = self.app.update(
            Action::Key(KeyEvent::new(code, KeyModifiers::NONE)),
            Utc::now(),
        );
        self.run(effects.clone());
        effects
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
    }

    /// Feeds network reports to the app until `check` (given the app after
    /// the report, and the report) says so.
    async fn until<T>(&mut self, mut check: impl FnMut(&App, &NetEvent) -> Option<T>) -> T {
        let wait = async {
            loop {
                let report = self.reports.recv().await.expect("the network runs");
                self.seen.push(brief(&report));
                let effects = self.app.update(Action::Net(report.clone()), Utc::now());
                self.run(effects);
                if let Some(found) = check(&self.app, &report) {
                    return found;
                }
            }
        };
        match tokio::time::timeout(TIMEOUT, wait).await {
            Ok(found) => found,
            Err(_) => panic!(
                "not in time; applied seq {:?}, reports so far: {:?}",
                self.app.applied(),
                self.seen
            ),
        }
    }

    /// Feeds network reports to the app until `check` holds (at once if it
    /// already does).
    async fn until_app(&mut self, check: impl Fn(&App) -> bool) {
        if !check(&self.app) {
            self.until(|app, _| check(app).then_some(())).await;
        }
    }

    /// The outcome of the next finished command.
    async fn command_done(&mut self) -> (Command, Result<String, ClientError>) {
        self.until(|_, report| match report {
            NetEvent::CommandDone { command, result } => Some((command.clone(), result.clone())),
            _ => None,
        })
        .await
    }

    /// Opens the add form, fills it and presses Enter: the command sent.
    fn add(&mut self, title: &str, file_url: &str) -> Command {
        self.key(KeyCode::Char('a'));
        self.type_text(title);
        self.key(KeyCode::Tab);
        self.type_text(file_url);
        sent(self.key(KeyCode::Enter))
    }
}

fn sent(effects: Vec<Effect>) -> Command {
    match effects.as_slice() {
        [Effect::Send(command)] => command.clone(),
        other => panic!("one command: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_retried_by_the_session_with_the_same_op_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    let mut tui = Headless::open(&proxy.url, &team.contributor, &vault, RetryPolicy::DEFAULT).await;

    proxy.lose_answer_containing(br#""ok":true"#);
    let command = tui.add("Sent once", "https://example.org/once.pdf");
    let (done, result) = tui.command_done().await;
    assert_eq!(done, command);
    let id = result.expect("the session's retry gets the first answer");
    assert_eq!(proxy.lost(), 1, "the first ack was lost");
    assert_eq!(tui.app.mode, Mode::Normal, "the form closed on success");

    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Sent once"]);
    assert_eq!(
        events,
        [
            names::MEMBER_ADDED,
            names::MEMBER_ADDED,
            names::SOURCE_CREATED
        ]
    );
    // The app shows it once too, once the event has arrived.
    tui.until_app(|app| app.vault.as_ref().is_some_and(|v| v.applied_seq() >= 3))
        .await;
    let shown: Vec<String> = tui
        .app
        .vault
        .as_ref()
        .unwrap()
        .sources()
        .into_iter()
        .map(|row| row.source.id.clone())
        .collect();
    assert_eq!(shown, [id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pressing_enter_again_after_no_answer_sends_the_same_op_id() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let team = app.team().await;
    let vault = team.vault.id.clone();
    let proxy = LossyProxy::start(app.addr).await;
    // No retry by the session: the person sees "no answer" and retries.
    let mut tui = Headless::open(&proxy.url, &team.owner, &vault, RetryPolicy::NONE).await;

    proxy.lose_answer_containing(br#""ok":true"#);
    let first = tui.add("Pressed twice", "https://example.org/twice.pdf");
    let (_, result) = tui.command_done().await;
    let error = result.unwrap_err();
    assert!(error.is_unanswered(), "{error}");
    assert_eq!(proxy.lost(), 1);
    assert!(matches!(&tui.app.mode, Mode::Form(form) if form.error.is_some()));
    // The server did apply it.
    let (titles, _) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Pressed twice"]);

    // Once the socket is back, Enter on the same form: the same opId.
    tui.until_app(|app| app.connection == Connection::Connected)
        .await;
    let again = sent(tui.key(KeyCode::Enter));
    assert_eq!(again, first);
    let (_, result) = tui.command_done().await;
    let id = result.expect("the server answers the same opId with the first answer");
    assert_eq!(tui.app.mode, Mode::Normal);
    assert_eq!(tui.app.selected.as_deref(), Some(id.as_str()));

    let (titles, events) = app.titles_and_event_names(&team.owner, &vault).await;
    assert_eq!(titles, ["Pressed twice"], "applied once");
    assert_eq!(
        events,
        [
            names::MEMBER_ADDED,
            names::MEMBER_ADDED,
            names::SOURCE_CREATED
        ]
    );
}
