//! The vault chooser: the user's vaults as the server listed them, the
//! highlighted one, its keys and how it is drawn.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Paragraph, Row, Table, TableState};
use syncscript_protocol::VaultSummary;

use crate::draw::{ACCENT, Hint, role_style};

/// The list of the user's vaults and the highlighted one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Picker {
    /// The user's vaults, once loaded.
    pub vaults: Option<Vec<VaultSummary>>,
    /// The highlighted row.
    pub index: usize,
}

/// What a key asks of the app once the chooser has handled it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled here (or ignored).
    Stay,
    Quit,
    /// Load the list again.
    Reload,
    Help,
    /// Back to the open vault, if there is one.
    Back,
    /// Open this vault.
    Open {
        vault_id: String,
    },
}

/// The chooser's footer.
pub const HINTS: &[Hint] = &[
    ("↑↓", "move", true),
    ("⏎", "open", true),
    ("r", "reload", true),
    ("?", "help", true),
    ("q", "quit", true),
];

impl Picker {
    /// Shows a freshly loaded list, keeping the highlight within it.
    pub fn loaded(&mut self, vaults: Vec<VaultSummary>) {
        self.index = self.index.min(vaults.len().saturating_sub(1));
        self.vaults = Some(vaults);
    }

    /// Highlights `vault_id` when it is in the list.
    pub fn point_at(&mut self, vault_id: &str) {
        if let Some(vaults) = &self.vaults
            && let Some(index) = vaults.iter().position(|v| v.id == vault_id)
        {
            self.index = index;
        }
    }

    /// Moves the highlight, or asks to open, reload, show help, go back or
    /// quit.
    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        let count = self.vaults.as_ref().map_or(0, Vec::len);
        match key.code {
            KeyCode::Char('q') => Outcome::Quit,
            KeyCode::Up | KeyCode::Char('k') => {
                self.index = self.index.saturating_sub(1);
                Outcome::Stay
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.index = (self.index + 1).min(count.saturating_sub(1));
                Outcome::Stay
            }
            KeyCode::Char('r') => Outcome::Reload,
            KeyCode::Char('?') => Outcome::Help,
            KeyCode::Esc => Outcome::Back,
            KeyCode::Enter => self
                .vaults
                .as_ref()
                .and_then(|vaults| vaults.get(self.index))
                .map_or(Outcome::Stay, |chosen| Outcome::Open {
                    vault_id: chosen.id.clone(),
                }),
            _ => Outcome::Stay,
        }
    }

    /// Draws the list in `area`, marking the vault `open` (if any).
    pub fn render(&self, frame: &mut Frame, area: Rect, open: Option<&str>) {
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .title(" Your vaults ".bold());
        let Some(vaults) = &self.vaults else {
            frame.render_widget(
                Paragraph::new("Loading your vaults…")
                    .alignment(Alignment::Center)
                    .block(block),
                area,
            );
            return;
        };
        if vaults.is_empty() {
            frame.render_widget(
                Paragraph::new(
                    "You are not a member of any vault yet.\n\
                     Create one with `syncscript-cli vault create NAME`.",
                )
                .alignment(Alignment::Center)
                .block(block),
                area,
            );
            return;
        }
        let wide = area.width >= 100;
        let rows: Vec<Row> = vaults
            .iter()
            .map(|vault| {
                let mut name = vec![Span::from(vault.name.clone()).bold()];
                if open == Some(vault.id.as_str()) {
                    name.push(" (open)".fg(Color::DarkGray));
                }
                let mut cells = vec![
                    Cell::from(Line::from(name)),
                    Cell::from(Span::styled(vault.role.as_str(), role_style(vault.role))),
                    Cell::from(format!("{:>6}", vault.seq)),
                ];
                if wide {
                    cells.push(Cell::from(vault.id.clone().fg(Color::DarkGray)));
                }
                Row::new(cells)
            })
            .collect();
        let mut widths = vec![
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(6),
        ];
        let mut header = vec!["Vault", "Your role", "   Seq"];
        if wide {
            widths.push(Constraint::Length(36));
            header.push("Id");
        }
        let table = Table::new(rows, widths)
            .header(Row::new(header).style(Style::new().bold().fg(ACCENT)))
            .block(block)
            .column_spacing(2)
            .highlight_symbol("▶ ")
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = TableState::default().with_selected(Some(self.index));
        frame.render_stateful_widget(table, area, &mut state);
    }
}
