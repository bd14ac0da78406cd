//! The question asked before a source is deleted: which keys confirm it,
//! the command it sends, and how it is drawn.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Stylize};
use ratatui::text::{Line, Text};
use syncscript_client::IdempotencyKey;

use crate::action::Command;
use crate::draw::{ACCENT, Hint, popup};

/// "Delete this source?", for the source `source_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmDelete {
    pub source_id: String,
    pub title: String,
}

/// The footer while the question is asked.
pub const HINTS: &[Hint] = &[("y", "delete", true), ("n", "keep", true)];

impl ConfirmDelete {
    /// Whether `key` answers yes (`y` or Enter); any other key keeps the
    /// source.
    pub fn confirms(&self, key: KeyEvent) -> bool {
        matches!(
            key.code,
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter
        )
    }

    /// The delete command, with a fresh `opId`.
    pub fn command(self) -> Command {
        Command::Delete {
            source_id: self.source_id,
            title: self.title,
            op_id: IdempotencyKey::generate(),
        }
    }

    /// Draws the question over the middle of `area`.
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        popup(
            frame,
            area,
            "Delete source",
            Text::from(vec![
                Line::from(format!(
                    "Delete “{}” for every member of this vault?",
                    self.title
                )),
                Line::default(),
                Line::from(vec![
                    " y ".fg(Color::Black).bg(Color::Red),
                    " delete   ".into(),
                    " n ".fg(Color::Black).bg(ACCENT),
                    " keep".into(),
                ]),
            ]),
            Color::Red,
        );
    }
}
