//! The source form, for adding a source or editing one: its fields, its
//! keys, what it sends, how it shows the answer, and how it is drawn.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use syncscript_client::IdempotencyKey;

use crate::action::Command;
use crate::draw::{ACCENT, Hint, popup};

/// Which field of the source form has the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Title,
    Url,
}

/// The add/edit form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceForm {
    /// The source being edited; `None` when adding.
    pub source_id: Option<String>,
    pub title: String,
    pub file_url: String,
    pub focus: Field,
    /// The server's answer to the last submission, when it refused it.
    pub error: Option<String>,
    /// Submitted, waiting for the ack.
    pub sending: bool,
}

/// What a key asks of the app once the form has handled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The form stays open.
    Stay,
    /// The form is closed.
    Close,
    /// The form is to be sent ([`SourceForm::submit`]).
    Submit,
}

/// The footer while the form is open.
pub const HINTS: &[Hint] = &[
    ("Tab", "next field", true),
    ("⏎", "save", true),
    ("Esc", "cancel", true),
];

impl SourceForm {
    /// An empty form that adds a source.
    pub fn add() -> SourceForm {
        SourceForm::new(None, String::new(), String::new())
    }

    /// A form that edits the source `source_id`, filled with its values.
    pub fn edit(source_id: String, title: String, file_url: String) -> SourceForm {
        SourceForm::new(Some(source_id), title, file_url)
    }

    fn new(source_id: Option<String>, title: String, file_url: String) -> SourceForm {
        SourceForm {
            source_id,
            title,
            file_url,
            focus: Field::Title,
            error: None,
            sending: false,
        }
    }

    /// Types into the focused field, moves between fields, or asks to
    /// close or send the form. While it is sending only `Esc` does
    /// something.
    pub fn on_key(&mut self, key: KeyEvent) -> Outcome {
        if self.sending {
            return if key.code == KeyCode::Esc {
                Outcome::Close
            } else {
                Outcome::Stay
            };
        }
        let field = match self.focus {
            Field::Title => &mut self.title,
            Field::Url => &mut self.file_url,
        };
        match key.code {
            KeyCode::Esc => return Outcome::Close,
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Up | KeyCode::Down => {
                self.focus = match self.focus {
                    Field::Title => Field::Url,
                    Field::Url => Field::Title,
                };
            }
            KeyCode::Backspace => {
                field.pop();
            }
            KeyCode::Char(c) => field.push(c),
            KeyCode::Enter => return Outcome::Submit,
            _ => {}
        }
        Outcome::Stay
    }

    /// The command that sends the form to the vault `vault_id` (with a
    /// fresh `opId`), and the form now waiting for its ack. While
    /// disconnected nothing is sent and the form says why.
    pub fn submit(&mut self, vault_id: &str, connected: bool) -> Option<Command> {
        if !connected {
            self.fail("Not connected: try again when the connection is back".into());
            return None;
        }
        let command = match &self.source_id {
            None => Command::Create {
                vault_id: vault_id.to_owned(),
                title: self.title.clone(),
                file_url: self.file_url.clone(),
                op_id: IdempotencyKey::generate(),
            },
            Some(source_id) => Command::Update {
                source_id: source_id.clone(),
                title: self.title.clone(),
                file_url: self.file_url.clone(),
                op_id: IdempotencyKey::generate(),
            },
        };
        self.sending = true;
        self.error = None;
        Some(command)
    }

    /// Shows why the submission did not go through; the form can be sent
    /// again.
    pub fn fail(&mut self, why: String) {
        self.sending = false;
        self.error = Some(why);
    }

    /// Draws the form over the middle of `area`.
    pub fn render(&self, frame: &mut Frame, area: Rect) {
        let title = if self.source_id.is_some() {
            "Edit source"
        } else {
            "Add source"
        };
        let field = |label: &'static str, value: &str, focused: bool| {
            let label = Span::styled(
                format!("{label:>6} "),
                Style::new().fg(ACCENT).add_modifier(Modifier::BOLD),
            );
            let value = if focused {
                Span::from(format!("{value}▏")).underlined()
            } else {
                Span::from(value.to_owned())
            };
            Line::from(vec![label, value])
        };
        let mut lines = vec![
            field("Title", &self.title, self.focus == Field::Title),
            field("URL", &self.file_url, self.focus == Field::Url),
            Line::default(),
        ];
        if self.sending {
            lines.push(Line::from("Sending…".fg(Color::Yellow)));
        } else if let Some(error) = &self.error {
            lines.push(Line::from(error.clone().fg(Color::Red)));
        } else {
            lines.push(Line::from(
                "Tab: next field · Enter: save · Esc: cancel".fg(Color::DarkGray),
            ));
        }
        popup(frame, area, title, Text::from(lines), ACCENT);
    }
}
