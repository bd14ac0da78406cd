//! The help dialog: what each key of the vault view does. Any key closes
//! it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span, Text};

use crate::draw::{ACCENT, Hint, popup};

/// The footer while the help is shown.
pub const HINTS: &[Hint] = &[("any key", "close help", true)];

/// Draws the help over the middle of `area`; a viewer is also told why
/// the mutation keys do nothing.
pub fn render(frame: &mut Frame, area: Rect, viewer: bool) {
    let key = |k: &'static str, what: &'static str| {
        Line::from(vec![
            Span::styled(format!("{k:>8}  "), Style::new().fg(ACCENT).bold()),
            Span::from(what),
        ])
    };
    let mut lines = vec![
        key("↑↓ j k", "move the selection (PgUp/PgDn, g/G: jump)"),
        key("a", "add a source (title and URL)"),
        key("e", "edit the selected source"),
        key("d", "delete the selected source (asks first)"),
        key("/", "filter the table by title or URL"),
        key("r", "reload the vault from the server"),
        key("v", "switch to another vault"),
        key("?", "this help"),
        key("q Ctrl-C", "quit"),
        Line::default(),
        Line::from(
            "Changes from others appear live; rows that just changed are highlighted. \
             After a lost connection the client reconnects and catches up by itself.",
        ),
    ];
    if viewer {
        lines.push(Line::default());
        lines.push(Line::from(
            "You are a viewer here: adding, editing and deleting need the contributor or \
             owner role."
                .fg(Color::Yellow),
        ));
    }
    popup(frame, area, "Help", Text::from(lines), ACCENT);
}
