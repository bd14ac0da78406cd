//! `syncscript-tui`: a terminal client that joins a vault and renders its
//! sources live.
//!
//! The shape is ratatui's component style: [`action::Action`] is the
//! message bus, [`app::App::update`] the only place state changes (and it
//! returns [`action::Effect`]s instead of doing I/O), routing keys to one
//! component per screen and dialog in [`screens`] (each with its state, its
//! keys and its drawing), [`ui::render`] a pure function of the state,
//! [`net`] the REST and Socket.IO side, and [`run`] the one event loop that
//! merges keys, a tick and network reports.

pub mod action;
pub mod app;
pub mod draw;
pub mod login;
pub mod net;
pub mod screens;
pub mod state;
pub mod ui;

use std::time::Duration;

use chrono::Utc;
use crossterm::event::{Event, EventStream};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use action::{Action, Effect, NetEvent};
use app::App;
use login::{Args, Login};
use net::Network;

/// How often relative times and timeouts are refreshed.
const TICK: Duration = Duration::from_millis(250);
/// Network reports handled before the next frame is drawn.
const BATCH: usize = 256;

/// Resolves the login, then runs the terminal UI until the user quits.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let login = login::resolve(&args).await?;
    // `init` also installs a panic hook that restores the terminal first.
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, login, args.vault).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    login: Login,
    vault: Option<String>,
) -> anyhow::Result<()> {
    let (reports, mut incoming) = mpsc::unbounded_channel::<NetEvent>();
    let mut network = Network::start(login.api, login.token, reports);
    let mut app = App::new(login.identity, Utc::now());
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut pending: Vec<Effect> = app.start(vault);
    loop {
        for effect in pending.drain(..) {
            network.perform(effect);
        }
        network.track(app.applied());
        if app.should_quit {
            return Ok(());
        }
        terminal.draw(|frame| ui::render(frame, &app))?;
        let action = tokio::select! {
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) => Action::Key(key),
                Some(Ok(Event::Resize(..))) => Action::Resize,
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(error.into()),
                None => return Ok(()),
            },
            _ = tick.tick() => Action::Tick,
            Some(report) = incoming.recv() => Action::Net(report),
        };
        pending.extend(app.update(action, Utc::now()));
        // Apply a burst of network reports (e.g. a catch-up) in one frame.
        for _ in 0..BATCH {
            match incoming.try_recv() {
                Ok(report) => pending.extend(app.update(Action::Net(report), Utc::now())),
                Err(_) => break,
            }
        }
    }
}
