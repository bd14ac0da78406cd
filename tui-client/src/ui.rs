//! Rendering: a pure function from [`App`] to a frame. Nothing here reads
//! the clock or the network; relative times are computed from `app.now`.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table, TableState, Wrap};
use syncscript_protocol::Role;

use crate::app::{App, Connection, HIGHLIGHT, Mode, Screen};
use crate::draw::{ACCENT, DIM, Hint, ago, ago_rfc3339, key_hints, popup, role_style};
use crate::screens::{confirm, form, help, picker};
use crate::state::{SourceRow, VaultState};

/// Width from which the selected source's details get their own panel.
const WIDE: u16 = 120;

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
        (Screen::Vault, Some(vault)) if app.opening.is_none() => {
            render_vault(frame, app, vault, body);
        }
        (Screen::Vault, _) => render_loading(frame, app, body),
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
        Mode::Normal | Mode::Filter => {}
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

fn render_loading(frame: &mut Frame, app: &App, area: Rect) {
    let text = match &app.opening {
        Some(id) => format!("Loading vault {id}…"),
        None => "No vault open: press v to choose one.".into(),
    };
    frame.render_widget(
        Paragraph::new(text)
            .alignment(Alignment::Center)
            .block(Block::bordered().border_type(BorderType::Rounded)),
        area,
    );
}

fn render_vault(frame: &mut Frame, app: &App, vault: &VaultState, area: Rect) {
    let activity_height = (area.height / 4).max(5);
    let [main, presence, activity] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(activity_height),
    ])
    .areas(area);
    if area.width >= WIDE {
        let [table, details] =
            Layout::horizontal([Constraint::Percentage(68), Constraint::Percentage(32)])
                .areas(main);
        render_table(frame, app, vault, table);
        render_details(frame, app, vault, details);
    } else {
        render_table(frame, app, vault, main);
    }
    render_presence(frame, app, vault, presence);
    render_activity(frame, app, vault, activity);
}

fn is_highlighted(app: &App, row: &SourceRow) -> bool {
    row.seen_change_at
        .is_some_and(|at| app.now - at < HIGHLIGHT && app.now >= at)
}

fn render_table(frame: &mut Frame, app: &App, vault: &VaultState, area: Rect) {
    let rows = vault.filtered_sources(&app.filter);
    let mut title = vec![
        " Sources ".bold(),
        format!("({}) ", vault.len()).fg(Color::DarkGray),
    ];
    if !app.filter.is_empty() || app.mode == Mode::Filter {
        title.push(format!("filter: {}", app.filter).fg(Color::Yellow));
        if app.mode == Mode::Filter {
            title.push("▏".fg(Color::Yellow));
        }
        title.push(format!(" {} shown ", rows.len()).fg(Color::DarkGray));
    }
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(Line::from(title));
    if rows.is_empty() {
        let text = if vault.is_empty() {
            if app.can_write() {
                "No sources yet. Press a to add the first one."
            } else {
                "No sources yet."
            }
        } else {
            "No source matches the filter (Esc clears it)."
        };
        frame.render_widget(
            Paragraph::new(text.fg(Color::DarkGray))
                .alignment(Alignment::Center)
                .block(block),
            area,
        );
        return;
    }
    let by_width = if area.width >= 100 { 14 } else { 12 };
    let table_rows: Vec<Row> = rows
        .iter()
        .map(|row| {
            let style = if is_highlighted(app, row) {
                Style::new().fg(Color::Black).bg(Color::Yellow)
            } else {
                Style::new()
            };
            Row::new(vec![
                Cell::from(row.source.title.clone()),
                Cell::from(row.source.file_url.clone().fg(Color::Blue)),
                Cell::from(ago_rfc3339(app.now, &row.source.updated_at)),
                Cell::from(vault.changed_by(row)),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        table_rows,
        [
            Constraint::Fill(3),
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(by_width),
        ],
    )
    .header(
        Row::new(["Title", "URL", "Changed", "By"])
            .style(Style::new().bold().fg(ACCENT))
            .bottom_margin(0),
    )
    .block(block)
    .column_spacing(1)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(app.selected_index());
    frame.render_stateful_widget(table, area, &mut state);
}

fn render_details(frame: &mut Frame, app: &App, vault: &VaultState, area: Rect) {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Selected ".bold());
    let ids = app.visible_ids();
    let row = app
        .selected_index()
        .and_then(|index| ids.get(index))
        .and_then(|id| vault.source(id));
    let Some(row) = row else {
        frame.render_widget(
            Paragraph::new("Nothing selected".fg(Color::DarkGray)).block(block),
            area,
        );
        return;
    };
    let source = &row.source;
    let label = |text: &'static str| Span::styled(text, Style::new().fg(ACCENT).bold());
    let text = Text::from(vec![
        Line::from(Span::from(source.title.clone()).bold()),
        Line::default(),
        Line::from(label("URL")),
        Line::from(source.file_url.clone().fg(Color::Blue)),
        Line::default(),
        Line::from(vec![
            label("Added   "),
            Span::from(format!(
                "{} by {}",
                ago_rfc3339(app.now, &source.created_at),
                vault.person(&source.created_by)
            )),
        ]),
        Line::from(vec![
            label("Changed "),
            Span::from(format!(
                "{} by {}",
                ago_rfc3339(app.now, &source.updated_at),
                vault.changed_by(row)
            )),
        ]),
        Line::from(vec![
            label("Id      "),
            source.id.clone().fg(Color::DarkGray),
        ]),
    ]);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(block),
        area,
    );
}

fn render_presence(frame: &mut Frame, app: &App, vault: &VaultState, area: Rect) {
    let mut spans = vec![" Watching: ".fg(Color::DarkGray)];
    if vault.presence.is_empty() {
        spans.push("nobody else yet".fg(Color::DarkGray));
    }
    for (index, entry) in vault.presence.iter().enumerate() {
        if index > 0 {
            spans.push(", ".fg(Color::DarkGray));
        }
        let me = entry.user_id == app.identity.user_id;
        let name = if me {
            format!("{} (you)", entry.user_name)
        } else {
            entry.user_name.clone()
        };
        spans.push(Span::from(name).bold());
        spans.push(Span::styled(
            format!(" {}", entry.role.as_str()),
            role_style(entry.role),
        ));
        if entry.connections > 1 {
            spans.push(format!(" ×{}", entry.connections).fg(Color::DarkGray));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_activity(frame: &mut Frame, app: &App, vault: &VaultState, area: Rect) {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Activity ".bold());
    let lines: Vec<Line> = vault
        .activity()
        .take(area.height.saturating_sub(2) as usize)
        .map(|entry| {
            let when = entry.at.map_or_else(String::new, |at| ago(app.now, at));
            Line::from(vec![
                format!("{when:>7} ").fg(Color::DarkGray),
                format!("#{:<4} ", entry.seq).fg(Color::DarkGray),
                Span::from(entry.actor.clone()).bold(),
                format!(" {} ", entry.action).into(),
                Span::from(format!("“{}”", entry.subject)),
            ])
        })
        .collect();
    let paragraph = if lines.is_empty() {
        Paragraph::new("Changes made while you watch appear here.".fg(Color::DarkGray))
    } else {
        Paragraph::new(lines)
    };
    frame.render_widget(paragraph.block(block), area);
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
    let hints: Vec<Hint> = match (&app.mode, app.screen) {
        (Mode::Filter, _) => vec![("⏎", "keep filter", true), ("Esc", "clear", true)],
        (Mode::Form(_), _) => form::HINTS.to_vec(),
        (Mode::ConfirmDelete(_), _) => confirm::HINTS.to_vec(),
        (Mode::Help, _) => help::HINTS.to_vec(),
        (Mode::Normal, Screen::Picker) => picker::HINTS.to_vec(),
        (Mode::Normal, Screen::Vault) => {
            let write = app.can_write() && app.vault.as_ref().is_some_and(|v| v.ended.is_none());
            vec![
                ("a", "add", write),
                ("e", "edit", write),
                ("d", "del", write),
                ("/", "filter", true),
                ("r", "refresh", true),
                ("v", "vaults", true),
                ("?", "help", true),
                ("q", "quit", true),
            ]
        }
    };
    let mut spans = key_hints(&hints);
    if app.screen == Screen::Vault && app.mode == Mode::Normal && app.role() == Some(Role::Viewer) {
        spans.push("  read-only".fg(Color::Yellow));
    }
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
