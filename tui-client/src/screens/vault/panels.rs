//! The panels around the sources table: the selected source's details,
//! who is watching, and the activity log.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};

use crate::draw::{ACCENT, ago, ago_rfc3339, role_style};
use crate::state::{SourceRow, VaultState};

/// The selected source's details (the `row`, if one is selected).
pub fn render_details(
    frame: &mut Frame,
    area: Rect,
    vault: &VaultState,
    row: Option<&SourceRow>,
    now: DateTime<Utc>,
) {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Selected ".bold());
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
                ago_rfc3339(now, &source.created_at),
                vault.person(&source.created_by)
            )),
        ]),
        Line::from(vec![
            label("Changed "),
            Span::from(format!(
                "{} by {}",
                ago_rfc3339(now, &source.updated_at),
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

/// Who is watching the vault, `me` marked.
pub fn render_presence(frame: &mut Frame, area: Rect, vault: &VaultState, me: &str) {
    let mut spans = vec![" Watching: ".fg(Color::DarkGray)];
    if vault.presence.is_empty() {
        spans.push("nobody else yet".fg(Color::DarkGray));
    }
    for (index, entry) in vault.presence.iter().enumerate() {
        if index > 0 {
            spans.push(", ".fg(Color::DarkGray));
        }
        let name = if entry.user_id == me {
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

/// The activity log, newest first, as much as fits.
pub fn render_activity(frame: &mut Frame, area: Rect, vault: &VaultState, now: DateTime<Utc>) {
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Activity ".bold());
    let lines: Vec<Line> = vault
        .activity()
        .take(area.height.saturating_sub(2) as usize)
        .map(|entry| {
            let when = entry.at.map_or_else(String::new, |at| ago(now, at));
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
