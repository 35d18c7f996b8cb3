//! The console's one palette: semantic styles (ok, warn, fail, dim, safety, selected, …)
//! and `NO_COLOR`. No other console file names a colour.

use ratatui::style::{Color, Modifier, Style};

/// Colours on or off (`NO_COLOR`). Bold and reverse are kept either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

/// Colours on (what [`Theme::from_env`] gives without `NO_COLOR`).
impl Default for Theme {
    fn default() -> Self {
        Theme { color: true }
    }
}

impl Theme {
    /// Colours unless `NO_COLOR` is set and non-empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }

    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }

    /// Good: healthy, agrees, a high score.
    pub fn ok(&self) -> Style {
        self.fg(Color::Green)
    }

    /// Worth a look: slow, low, partial, a warning.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }

    /// Wrong or broken: offline, failed, disagrees.
    pub fn fail(&self) -> Style {
        self.fg(Color::Red)
    }

    /// Secondary text: times, hints, pending cells.
    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }

    /// Information and activity: reviewing, audits, keys, progress.
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }

    /// A person's doing or a model sure of a wrong answer: forced escalations,
    /// overconfident cells.
    pub fn manual(&self) -> Style {
        self.fg(Color::Magenta)
    }

    /// A safety concern (the `[SAFETY:…]` badge).
    pub fn safety(&self) -> Style {
        self.fail().add_modifier(Modifier::BOLD)
    }

    /// Must not be missed: `ENGINE STOPPED`, `SAFETY RELEVANT`.
    pub fn alarm(&self) -> Style {
        self.fail()
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }

    /// A state that holds until undone: `PAUSED`, the apply question.
    pub fn banner(&self) -> Style {
        self.warn()
            .add_modifier(Modifier::BOLD | Modifier::REVERSED)
    }

    /// The highlighted row (kept without colours).
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }

    /// Labels and headings.
    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    /// A 0..1 value: `fail` below `low`, `warn` below `high`, else `ok`.
    pub fn level(&self, v: f64, low: f64, high: f64) -> Style {
        if v < low {
            self.fail()
        } else if v < high {
            self.warn()
        } else {
            self.ok()
        }
    }

    /// The numbers printed inside bars: dark on the bar's colour, reversed without colours.
    pub fn bar_value(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Black)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_color_keeps_modifiers_only() {
        let t = Theme { color: false };
        for s in [t.ok(), t.warn(), t.fail(), t.dim(), t.accent(), t.manual()] {
            assert_eq!(s, Style::default());
        }
        assert!(t.alarm().add_modifier.contains(Modifier::REVERSED));
        assert_eq!(t.alarm().fg, None);
        let c = Theme { color: true };
        assert_eq!(c.level(0.3, 0.5, 0.8), c.fail());
        assert_eq!(c.level(0.6, 0.5, 0.8), c.warn());
        assert_eq!(c.level(0.8, 0.5, 0.8), c.ok());
    }
}
