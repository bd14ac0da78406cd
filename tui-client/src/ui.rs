//! Rendering: a pure function from [`App`] to a frame. This draws the
//! frame (header, connection line, status line, footer) and has the screen
//! shown and the dialog on top draw themselves. Nothing here reads the
//! clock or the network; relative times are computed from `app.now`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::Paragraph;
use syncscript_protocol::Role;

use crate::app::{App, Connection, Mode, Screen};
use crate::draw::{ACCENT, DIM, ago, key_hints, popup, role_style};
use crate::screens::{confirm, form, help, picker, vault};

/// Draws the whole screen for `app`.
pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header, connection, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    render_header(frame, app, header);
    render_connection(frame, app, connection);
    match (app.screen, &app.vault) {
        (Screen::Vault, Some(vault)) if app.opening.is_none() => app.view.render(
            frame,
            body,
            vault,
            app.selected.as_deref(),
            &app.identity.user_id,
            app.now,
        ),
        (Screen::Vault, _) => vault::render_loading(frame, body, app.opening.as_deref()),
        (Screen::Picker, _) => {
            let open = app.vault.as_ref().map(|vault| vault.vault_id.as_str());
            app.picker.render(frame, body, open);
        }
    }
    render_status(frame, app, status);
    render_footer(frame, app, footer);
    match &app.mode {
        Mode::Help => help::render(frame, area, app.role() == Some(Role::Viewer)),
        Mode::Form(form) => form.render(frame, area),
        Mode::ConfirmDelete(confirm) => confirm.render(frame, area),
        Mode::Normal => {}
    }
    if let Some(notice) = &app.notice {
        popup(
            frame,
            area,
            &notice.title,
            Text::from(vec![
                Line::from(notice.body.clone()),
                Line::default(),
                Line::from("Press any key to close.".fg(Color::DarkGray)),
            ]),
            Color::Red,
        );
    }
}

fn render_header(frame: &mut Frame, app: &App, area: Rect) {
    let title = match (&app.screen, &app.vault) {
        (Screen::Vault, Some(vault)) if app.opening.is_none() => vault.name.clone(),
        (Screen::Vault, _) => "Opening…".into(),
        (Screen::Picker, _) => "Choose a vault".into(),
    };
    let left = Line::from(vec![
        " SyncScript ".bold().fg(Color::Black).bg(ACCENT),
        "▸ ".fg(Color::DarkGray),
        Span::from(title).bold(),
    ]);
    let mut right = vec![Span::from(app.identity.name.clone()).bold()];
    if let (Screen::Vault, Some(role)) = (app.screen, app.role()) {
        right.push(" · ".fg(Color::DarkGray));
        right.push(Span::styled(role.as_str(), role_style(role)));
    }
    right.push(Span::from(" "));
    let right = Line::from(right);
    let right_width = right.width() as u16;
    let [left_area, right_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
    frame.render_widget(Paragraph::new(left), left_area);
    frame.render_widget(Paragraph::new(right), right_area);
}

fn render_connection(frame: &mut Frame, app: &App, area: Rect) {
    let mut spans = match &app.connection {
        Connection::Connecting => vec![" ◌ connecting…".fg(Color::Yellow)],
        Connection::Connected => vec![" ● connected".fg(Color::Green)],
        Connection::Reconnecting { attempt } if *attempt == 0 => {
            vec![" ◌ connection lost, reconnecting…".fg(Color::Yellow).bold()]
        }
        Connection::Reconnecting { attempt } => {
            vec![
                format!(" ◌ reconnecting, attempt {attempt}")
                    .fg(Color::Yellow)
                    .bold(),
            ]
        }
        Connection::Offline { attempt, error } => vec![
            format!(" ○ offline (attempt {attempt})")
                .fg(Color::Red)
                .bold(),
            format!(" {error}").fg(Color::DarkGray),
        ],
        Connection::Refused { code } => {
            vec![format!(" ✕ session refused: {code}").fg(Color::Red).bold()]
        }
    };
    if let (Screen::Vault, Some(vault)) = (app.screen, &app.vault) {
        spans.push(" · ".fg(Color::DarkGray));
        spans.push(Span::from(format!("seq {}", vault.applied_seq())));
        if vault.buffered() > 0 {
            spans.push(format!(" (+{} waiting)", vault.buffered()).fg(Color::Yellow));
        }
    }
    spans.push(" · ".fg(Color::DarkGray));
    spans.push(match app.last_event_at {
        Some(at) => Span::from(format!("last event {}", ago(app.now, at))),
        None => "no event yet".fg(Color::DarkGray),
    });
    let right = Line::from(vec![
        Span::styled(app.identity.server.clone(), DIM),
        Span::from(" "),
    ]);
    let left = Line::from(spans);
    let free = area.width.saturating_sub(left.width() as u16);
    if free > right.width() as u16 + 2 {
        let right_width = right.width() as u16;
        let [left_area, right_area] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(right_width)]).areas(area);
        frame.render_widget(Paragraph::new(left), left_area);
        frame.render_widget(Paragraph::new(right), right_area);
    } else {
        frame.render_widget(Paragraph::new(left), area);
    }
}

fn render_status(frame: &mut Frame, app: &App, area: Rect) {
    let line = match &app.status {
        Some(status) if status.is_error => Line::from(vec![
            " ✕ ".fg(Color::Red).bold(),
            status.text.clone().fg(Color::Red),
        ]),
        Some(status) => Line::from(vec![" ✓ ".fg(Color::Green), status.text.clone().into()]),
        None => Line::default(),
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn render_footer(frame: &mut Frame, app: &App, area: Rect) {
    let spans = match (&app.mode, app.screen) {
        (Mode::Form(_), _) => key_hints(form::HINTS),
        (Mode::ConfirmDelete(_), _) => key_hints(confirm::HINTS),
        (Mode::Help, _) => key_hints(help::HINTS),
        (Mode::Normal, Screen::Picker) => key_hints(picker::HINTS),
        (Mode::Normal, Screen::Vault) => app.view.footer(app.vault.as_ref()),
    };
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Draws `app` on a `TestBackend`-style buffer of any size; used by tests.
pub fn render_to_string(app: &App, width: u16, height: u16) -> String {
    let backend = ratatui::backend::TestBackend::new(width, height);
    let mut terminal = match ratatui::Terminal::new(backend) {
        Ok(terminal) => terminal,
        Err(never) => match never {},
    };
    if let Err(never) = terminal.draw(|frame| render(frame, app)) {
        match never {}
    }
    terminal.backend().to_string()
}
