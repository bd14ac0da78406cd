//! The drawing pieces every screen shares: colours, role badges, relative
//! times, the centred popup and the footer's key hints.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Span, Text};
use ratatui::widgets::{Block, BorderType, Clear, Padding, Paragraph, Wrap};
use syncscript_protocol::Role;

/// The colour of titles, headers and key badges.
pub const ACCENT: Color = Color::Cyan;
/// Secondary text.
pub const DIM: Style = Style::new().fg(Color::DarkGray);

/// One key of the footer: the key, what it does, and whether it is enabled.
pub type Hint = (&'static str, &'static str, bool);

/// "5s ago", "3m ago", "2h ago", "4d ago" from `now`.
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s ago"),
        60..3600 => format!("{}m ago", seconds / 60),
        3600..86400 => format!("{}h ago", seconds / 3600),
        _ => format!("{}d ago", seconds / 86400),
    }
}

/// [`ago`] of an RFC 3339 timestamp; the timestamp itself when it does not
/// parse.
pub fn ago_rfc3339(now: DateTime<Utc>, timestamp: &str) -> String {
    DateTime::parse_from_rfc3339(timestamp).map_or_else(
        |_| timestamp.to_owned(),
        |then| ago(now, then.with_timezone(&Utc)),
    )
}

/// The colour a role is shown in.
pub fn role_style(role: Role) -> Style {
    match role {
        Role::Owner => Style::new().fg(Color::Magenta),
        Role::Contributor => Style::new().fg(Color::Green),
        Role::Viewer => Style::new().fg(Color::Yellow),
    }
}

/// The footer's spans for `hints`: enabled keys on the accent colour,
/// disabled ones shown but struck out.
pub fn key_hints(hints: &[Hint]) -> Vec<Span<'static>> {
    hints
        .iter()
        .flat_map(|&(key, label, enabled)| key_hint(key, label, enabled))
        .collect()
}

fn key_hint(key: &str, label: &str, enabled: bool) -> Vec<Span<'static>> {
    if enabled {
        vec![
            Span::from(" "),
            Span::styled(key.to_owned(), Style::new().fg(Color::Black).bg(ACCENT)),
            Span::from(format!(" {label}")),
        ]
    } else {
        let off = Style::new()
            .fg(Color::DarkGray)
            .add_modifier(Modifier::CROSSED_OUT);
        vec![
            Span::from(" "),
            Span::styled(key.to_owned(), off),
            Span::styled(format!(" {label}"), off),
        ]
    }
}

/// A centred rectangle of at most `width`×`height` inside `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A bordered box over the middle of `area`, as tall as its wrapped text.
pub fn popup(frame: &mut Frame, area: Rect, title: &str, text: Text, color: Color) {
    let width = (area.width * 3 / 4).clamp(40.min(area.width), 90);
    // Borders plus the wrapped text.
    let inner = width.saturating_sub(4).max(1) as usize;
    let lines: usize = text
        .lines
        .iter()
        .map(|line| line.width().div_ceil(inner).max(1))
        .sum();
    let area = centered(area, width, lines as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: false }).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .border_style(Style::new().fg(color))
                .title(format!(" {title} ").bold())
                .padding(Padding::horizontal(1)),
        ),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_pick_the_largest_unit() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let before = |seconds: i64| now - chrono::Duration::seconds(seconds);
        assert_eq!(ago(now, before(5)), "5s ago");
        assert_eq!(ago(now, before(185)), "3m ago");
        assert_eq!(ago(now, before(7300)), "2h ago");
        assert_eq!(ago(now, before(3 * 86400)), "3d ago");
        assert_eq!(ago(now, now + chrono::Duration::seconds(5)), "0s ago");
    }
}
