//! The vault view: the open vault's sources (filtered, with the selection
//! and, when wide, the selected source's details, drawn in `panels` with who
//! is watching and the activity log): its keys, its footer and its drawing.
//!
//! The view owns its filter. The vault's live copy and the selection are
//! the app's (network reports change them whatever is on screen); the view
//! is given them.

use chrono::{DateTime, Duration, Utc};
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table, TableState};
use syncscript_protocol::Role;

use crate::draw::{ACCENT, Hint, ago_rfc3339, key_hints};
use crate::screens::confirm::ConfirmDelete;
use crate::screens::form::SourceForm;
use crate::state::{SourceRow, VaultState};

mod panels;

/// How long a changed row stays highlighted.
pub const HIGHLIGHT: Duration = Duration::seconds(3);
/// Width from which the selected source's details get their own panel.
const WIDE: u16 = 120;

/// The footer while typing into the filter.
const FILTER_HINTS: &[Hint] = &[("⏎", "keep filter", true), ("Esc", "clear", true)];

/// The vault view's own state: the table filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VaultView {
    /// Rows shown are those whose title or URL contains it.
    pub filter: String,
    /// Keys are typed into the filter.
    pub filtering: bool,
}

/// What a key asks of the app once the view has handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (a move, the filter) or ignored.
    Stay,
    Quit,
    /// Back to the vault chooser.
    Choose,
    Help,
    /// Reload the open vault's snapshot.
    Refresh {
        vault_id: String,
    },
    /// Open the source form.
    Form(SourceForm),
    /// Ask before deleting a source.
    Confirm(ConfirmDelete),
    /// A line for the status bar.
    Info(String),
    /// An error line for the status bar.
    Error(String),
    /// The filter was cleared with Esc, and so is the status line.
    Cleared,
}

impl VaultView {
    /// The ids of the rows shown, in order.
    pub fn visible_ids(&self, vault: &VaultState) -> Vec<String> {
        vault
            .filtered_sources(&self.filter)
            .into_iter()
            .map(|row| row.source.id.clone())
            .collect()
    }

    /// The index of the `selected` row among the visible ones (the first
    /// when it is not shown).
    pub fn selected_index(&self, vault: &VaultState, selected: Option<&str>) -> Option<usize> {
        let ids = self.visible_ids(vault);
        match selected {
            Some(id) => ids
                .iter()
                .position(|other| other == id)
                .or(if ids.is_empty() { None } else { Some(0) }),
            None if ids.is_empty() => None,
            None => Some(0),
        }
    }

    fn selected_row<'v>(
        &self,
        vault: &'v VaultState,
        selected: Option<&str>,
    ) -> Option<&'v SourceRow> {
        let ids = self.visible_ids(vault);
        let id = ids.get(self.selected_index(vault, selected)?)?;
        vault.source(id)
    }

    fn move_selection(&self, vault: &VaultState, selected: &mut Option<String>, delta: isize) {
        let ids = self.visible_ids(vault);
        if ids.is_empty() {
            return;
        }
        let current = self.selected_index(vault, selected.as_deref()).unwrap_or(0) as isize;
        let last = ids.len() as isize - 1;
        let next = (current + delta).clamp(0, last) as usize;
        *selected = ids.get(next).cloned();
    }

    /// Handles `key` on the vault screen: typing into the filter, moving
    /// the `selected` row of `vault` (`None` while it loads), or asking the
    /// app for the rest.
    pub fn on_key(
        &mut self,
        key: KeyEvent,
        vault: Option<&VaultState>,
        selected: &mut Option<String>,
    ) -> Outcome {
        if self.filtering {
            self.on_filter_key(key);
            return Outcome::Stay;
        }
        let Some(vault) = vault else {
            // Still loading: only leaving makes sense.
            return match key.code {
                KeyCode::Char('q') => Outcome::Quit,
                KeyCode::Char('v') => Outcome::Choose,
                _ => Outcome::Stay,
            };
        };
        let step = match key.code {
            KeyCode::Up | KeyCode::Char('k') => -1,
            KeyCode::Down | KeyCode::Char('j') => 1,
            KeyCode::PageUp => -10,
            KeyCode::PageDown => 10,
            KeyCode::Home | KeyCode::Char('g') => isize::MIN / 2,
            KeyCode::End | KeyCode::Char('G') => isize::MAX / 2,
            _ => 0,
        };
        if step != 0 {
            self.move_selection(vault, selected, step);
            return Outcome::Stay;
        }
        match key.code {
            KeyCode::Char('q') => Outcome::Quit,
            KeyCode::Char('a') => match write_refusal(vault, "add sources") {
                Some(why) => Outcome::Error(why),
                None => Outcome::Form(SourceForm::add()),
            },
            KeyCode::Char('e') => match write_refusal(vault, "edit sources") {
                Some(why) => Outcome::Error(why),
                None => match self.selected_row(vault, selected.as_deref()) {
                    Some(row) => Outcome::Form(SourceForm::edit(
                        row.source.id.clone(),
                        row.source.title.clone(),
                        row.source.file_url.clone(),
                    )),
                    None => Outcome::Info("Nothing to edit: select a source first".into()),
                },
            },
            KeyCode::Char('d') => match write_refusal(vault, "delete sources") {
                Some(why) => Outcome::Error(why),
                None => match self.selected_row(vault, selected.as_deref()) {
                    Some(row) => Outcome::Confirm(ConfirmDelete {
                        source_id: row.source.id.clone(),
                        title: row.source.title.clone(),
                    }),
                    None => Outcome::Info("Nothing to delete: select a source first".into()),
                },
            },
            KeyCode::Char('v') => Outcome::Choose,
            KeyCode::Char('/') => {
                self.filtering = true;
                Outcome::Stay
            }
            KeyCode::Char('r') if vault.ended.is_none() => Outcome::Refresh {
                vault_id: vault.vault_id.clone(),
            },
            KeyCode::Char('?') => Outcome::Help,
            KeyCode::Esc => {
                self.filter.clear();
                Outcome::Cleared
            }
            _ => Outcome::Stay,
        }
    }

    fn on_filter_key(&mut self, key: KeyEvent) {
        match key.code {
            KeyCode::Enter => self.filtering = false,
            KeyCode::Esc => {
                self.filter.clear();
                self.filtering = false;
            }
            KeyCode::Backspace => {
                self.filter.pop();
            }
            KeyCode::Char(c) => self.filter.push(c),
            _ => {}
        }
    }

    /// The footer's spans for the vault screen showing `vault` (`None`
    /// while it loads).
    pub fn footer(&self, vault: Option<&VaultState>) -> Vec<Span<'static>> {
        if self.filtering {
            return key_hints(FILTER_HINTS);
        }
        let write = vault.is_some_and(|v| can_write(v) && v.ended.is_none());
        let mut spans = key_hints(&[
            ("a", "add", write),
            ("e", "edit", write),
            ("d", "del", write),
            ("/", "filter", true),
            ("r", "refresh", true),
            ("v", "vaults", true),
            ("?", "help", true),
            ("q", "quit", true),
        ]);
        if vault.is_some_and(|v| v.role == Role::Viewer) {
            spans.push("  read-only".fg(Color::Yellow));
        }
        spans
    }

    /// Draws `vault` in `area` with the `selected` row, as the user `me`
    /// sees it at `now`.
    pub fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        vault: &VaultState,
        selected: Option<&str>,
        me: &str,
        now: DateTime<Utc>,
    ) {
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
            self.render_table(frame, table, vault, selected, now);
            let row = self.selected_row(vault, selected);
            panels::render_details(frame, details, vault, row, now);
        } else {
            self.render_table(frame, main, vault, selected, now);
        }
        panels::render_presence(frame, presence, vault, me);
        panels::render_activity(frame, activity, vault, now);
    }

    fn render_table(
        &self,
        frame: &mut Frame,
        area: Rect,
        vault: &VaultState,
        selected: Option<&str>,
        now: DateTime<Utc>,
    ) {
        let rows = vault.filtered_sources(&self.filter);
        let mut title = vec![
            " Sources ".bold(),
            format!("({}) ", vault.len()).fg(Color::DarkGray),
        ];
        if !self.filter.is_empty() || self.filtering {
            title.push(format!("filter: {}", self.filter).fg(Color::Yellow));
            if self.filtering {
                title.push("▏".fg(Color::Yellow));
            }
            title.push(format!(" {} shown ", rows.len()).fg(Color::DarkGray));
        }
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .title(Line::from(title));
        if rows.is_empty() {
            let text = if vault.is_empty() {
                if can_write(vault) {
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
                let style = if is_highlighted(now, row) {
                    Style::new().fg(Color::Black).bg(Color::Yellow)
                } else {
                    Style::new()
                };
                Row::new(vec![
                    Cell::from(row.source.title.clone()),
                    Cell::from(row.source.file_url.clone().fg(Color::Blue)),
                    Cell::from(ago_rfc3339(now, &row.source.updated_at)),
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
        let mut state = TableState::default().with_selected(self.selected_index(vault, selected));
        frame.render_stateful_widget(table, area, &mut state);
    }
}

/// Draws the vault screen while the vault `opening` loads (or when none is
/// open).
pub fn render_loading(frame: &mut Frame, area: Rect, opening: Option<&str>) {
    let text = match opening {
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

/// Whether the user may add, edit and delete sources in `vault`.
fn can_write(vault: &VaultState) -> bool {
    matches!(vault.role, Role::Owner | Role::Contributor)
}

/// Why a mutation key does nothing in `vault`, if it does nothing.
fn write_refusal(vault: &VaultState, verb: &str) -> Option<String> {
    if vault.ended.is_some() {
        return Some(format!("Cannot {verb}: this vault is no longer available"));
    }
    match vault.role {
        Role::Viewer => Some(format!(
            "Viewers can't {verb}: ask an owner for the contributor role"
        )),
        Role::Owner | Role::Contributor => None,
    }
}

fn is_highlighted(now: DateTime<Utc>, row: &SourceRow) -> bool {
    row.seen_change_at
        .is_some_and(|at| now - at < HIGHLIGHT && now >= at)
}
