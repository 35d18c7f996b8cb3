//! Small pieces every screen draws with: untrusted text made safe (`clean`), cut to a
//! width (`truncate_width`), a bordered `block`, seconds and the spinner.

use crate::reading::sanitize;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

/// Most characters of one model text kept for the screen (the pane cuts further).
pub const TEXT_MAX: usize = 4000;
/// Most characters of a short engine string (names, errors) kept for the screen.
pub const SHORT_MAX: usize = 300;

/// Untrusted text made safe for the terminal.
pub fn clean(s: &str, max_chars: usize) -> String {
    sanitize::for_screen(s, max_chars)
}

/// First non-empty line of cleaned text.
pub fn first_line(s: &str) -> String {
    let c = clean(s, TEXT_MAX);
    c.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

/// Display columns of `s`.
pub fn width_of(s: &str) -> usize {
    Span::raw(s).width()
}

/// Cut to at most `max` display columns, ending in `…` when cut.
pub fn truncate_width(s: &str, max: usize) -> String {
    if width_of(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    let mut tmp = [0u8; 4];
    for ch in s.chars() {
        let cw = width_of(ch.encode_utf8(&mut tmp));
        if w + cw > max - 1 {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

/// A pane: all borders, a title.
pub fn block(title: String) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(title)
}

/// `1234` ms → `1.2s`.
pub fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

/// The spinner's character at this phase.
pub fn spinner_char(phase: usize) -> char {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    FRAMES[phase % FRAMES.len()]
}

/// One editable line of a form (`name` already padded, e.g. `"  label: "`): the focused one
/// shows its cursor at `cursor` (in chars) and scrolls to keep it in view within `width`.
pub fn form_line(
    name: String,
    value: &str,
    focused: bool,
    cursor: usize,
    t: &crate::tui::theme::Theme,
    width: usize,
) -> Line<'static> {
    let room = width.saturating_sub(name.chars().count() + 1).max(1);
    let chars: Vec<char> = clean(value, 1000).chars().collect();
    let name_style = if focused {
        t.accent().patch(t.bold())
    } else {
        t.bold()
    };
    let mut spans = vec![Span::styled(name, name_style)];
    if !focused {
        let s: String = chars.iter().collect();
        spans.push(Span::raw(truncate_width(&s, room)));
        return Line::from(spans);
    }
    let cursor = cursor.min(chars.len());
    let start = (cursor + 1).saturating_sub(room);
    let before: String = chars[start..cursor].iter().collect();
    let at: String = chars.get(cursor).map_or(" ".into(), |c| c.to_string());
    let end = (start + room).min(chars.len());
    let after: String = if cursor < end {
        chars[cursor + 1..end].iter().collect()
    } else {
        String::new()
    };
    spans.push(Span::raw(before));
    spans.push(Span::styled(at, t.selected()));
    spans.push(Span::raw(after));
    Line::from(spans)
}
