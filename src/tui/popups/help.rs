//! The help overlay (`?`): every key of the screens, from the key table, in a box.

use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::theme::Theme;
use crate::tui::widgets::block;
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// The key closes the overlay (`Esc`, `?`).
pub fn closes(key: &KeyEvent) -> bool {
    keys::lookup(&[Context::Help], key) == Some(KeyAction::CloseHelp)
}

/// The overlay, centered over `area`.
pub fn draw(f: &mut Frame, theme: &Theme, area: Rect, screen: keys::Context) {
    let rows = keys::overlay_rows_for(&[screen, keys::Context::All]);
    let w = 60.min(area.width.saturating_sub(2));
    let h = (rows.len() as u16 + 2).min(area.height.saturating_sub(2));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let key_style = theme.accent().patch(theme.bold());
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>13}  "), key_style),
                Span::raw(d),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(block(" keys · Esc closes ".into())),
        r,
    );
}
