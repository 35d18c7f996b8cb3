//! The `y`/`n` question (the upskill screen's "apply this row?"): its keys and its line.

use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::theme::Theme;
use crossterm::event::KeyEvent;
use ratatui::text::Line;

/// `y` → Some(true), `n`/Esc → Some(false), any other key: still asking (None).
pub fn answer(key: &KeyEvent) -> Option<bool> {
    match keys::lookup(&[Context::Confirm], key) {
        Some(KeyAction::Yes) => Some(true),
        Some(KeyAction::No) => Some(false),
        _ => None,
    }
}

/// The question as one line, ending in `y/n`.
pub fn line(theme: &Theme, question: &str) -> Line<'static> {
    Line::styled(format!("{question}? y/n"), theme.banner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyCode, KeyModifiers};

    #[test]
    fn y_n_and_esc() {
        let k = |c| KeyEvent::new(c, KeyModifiers::NONE);
        assert_eq!(answer(&k(KeyCode::Char('Y'))), Some(true));
        assert_eq!(answer(&k(KeyCode::Char('n'))), Some(false));
        assert_eq!(answer(&k(KeyCode::Esc)), Some(false));
        assert_eq!(answer(&k(KeyCode::Char('x'))), None);
    }
}
