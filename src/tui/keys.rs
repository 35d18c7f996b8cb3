//! The one key table: every key, the screen or popup it works on, what it does and its help
//! text. The handlers look keys up here, the help overlay lists it, and a test holds the
//! README's key table to it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a key works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Monitor,
    Upskill,
    Calibration,
    /// The help overlay, while open.
    Help,
    /// The `a` editor, while open.
    LearnEditor,
    /// The upskill screen's `y`/`n` question, while asked.
    Confirm,
    /// The `w` popup's list of watches, while open.
    WatchesList,
    /// The `w` popup's form (a watch being added or edited).
    WatchesForm,
    /// Every screen (not inside the editor or a question).
    All,
    /// The history screen's list (`h`).
    History,
    /// An item opened on the history screen.
    HistoryItem,
    /// Typing the history search (`/`).
    Search,
    /// The "while you were away" summary, while open.
    Away,
}

impl Context {
    /// The name in the README's `Screen` column.
    pub fn name(self) -> &'static str {
        match self {
            Context::Monitor => "monitor",
            Context::Upskill => "upskill",
            Context::Calibration => "calibration",
            Context::Help => "help",
            Context::LearnEditor => "learn editor",
            Context::Confirm => "confirm",
            Context::WatchesList => "watches",
            Context::WatchesForm => "watch form",
            Context::All => "all",
            Context::History => "history",
            Context::HistoryItem => "history item",
            Context::Search => "history search",
            Context::Away => "away summary",
        }
    }

    /// What the help overlay puts before the keys; None = not listed there (the popups
    /// show their own hints).
    fn overlay_prefix(self) -> Option<&'static str> {
        match self {
            Context::Monitor | Context::All => Some(""),
            Context::Upskill => Some("upskill "),
            Context::Calibration => Some("calib. "),
            Context::History => Some("history "),
            Context::HistoryItem => Some("item "),
            Context::Help
            | Context::LearnEditor
            | Context::Confirm
            | Context::WatchesList
            | Context::WatchesForm
            | Context::Search
            | Context::Away => None,
        }
    }
}

/// A key as the table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// This character, without Ctrl.
    Char(char),
    /// Ctrl and this letter (either case).
    Ctrl(char),
    /// This key, whatever the modifiers.
    Code(KeyCode),
    /// Any printable character (the editor's typing).
    Printable,
}

impl Key {
    pub fn matches(self, key: &KeyEvent) -> bool {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match (self, key.code) {
            (Key::Char(c), KeyCode::Char(k)) => !ctrl && c == k,
            (Key::Ctrl(c), KeyCode::Char(k)) => ctrl && k.eq_ignore_ascii_case(&c),
            (Key::Code(c), k) => c == k,
            (Key::Printable, KeyCode::Char(k)) => !k.is_control(),
            _ => false,
        }
    }
}

/// What a key asks for; the screen or popup it was looked up for carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAction {
    Escalate,
    /// `k`: acknowledge the open incidents.
    Acknowledge,
    Learn,
    OpenUpskill,
    OpenCalibration,
    Pause,
    Save,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    /// Enter on the monitor: pin the highlighted entry.
    Pin,
    /// Esc: back (to live, to the monitor) or cancel a run.
    Back,
    Help,
    CloseHelp,
    Quit,
    /// The editor: insert the typed character.
    Type,
    Backspace,
    Delete,
    NextField,
    PrevField,
    /// The editor's Enter: save the case.
    Submit,
    /// The editor's Esc.
    Cancel,
    /// Upskill Enter: apply the selected row (asks first).
    Apply,
    Rerun,
    Report,
    Reload,
    Yes,
    No,
    /// `w`: the watches popup.
    OpenWatches,
    /// The watches popup: add a watch.
    New,
    /// The watches popup: edit the selected watch.
    Edit,
    /// The watches popup: remove the selected watch.
    Remove,
    /// `h`: the history screen (from the away summary: at its span).
    OpenHistory,
    /// History: open the selected entry.
    Open,
    /// History: `/`, type a search.
    Search,
    ToggleIncidents,
    CycleTrigger,
    ToggleDisagreed,
    CycleLevel,
    ClearFilters,
}

/// One row of the table: the keys (each with its action), how the README and the help
/// overlay spell them, and the help text.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding {
    pub context: Context,
    pub keys: &'static [(Key, KeyAction)],
    /// The README's `Key` column (the overlay drops the backticks).
    pub label: &'static str,
    pub help: &'static str,
}

#[path = "keys_table.rs"]
mod table;
pub use table::KEYS;

/// The action of `key` in the first of `contexts` that binds it.
pub fn lookup(contexts: &[Context], key: &KeyEvent) -> Option<KeyAction> {
    contexts.iter().find_map(|c| {
        KEYS.iter()
            .filter(|b| b.context == *c)
            .flat_map(|b| b.keys.iter())
            .find(|(k, _)| k.matches(key))
            .map(|(_, a)| *a)
    })
}

/// The help overlay's rows: keys (prefixed by their screen) and help text.
pub fn overlay_rows() -> Vec<(String, &'static str)> {
    overlay_rows_for(&[
        Context::Monitor,
        Context::All,
        Context::Upskill,
        Context::Calibration,
    ])
}

/// The help overlay's rows for a screen: its own keys and those of every screen (the
/// table no longer fits a 24-line terminal whole).
pub fn overlay_rows_for(contexts: &[Context]) -> Vec<(String, &'static str)> {
    KEYS.iter()
        .filter(|b| contexts.contains(&b.context))
        .filter_map(|b| {
            let prefix = b.context.overlay_prefix()?;
            Some((format!("{prefix}{}", b.label.replace('`', "")), b.help))
        })
        .collect()
}

/// The README's key table, row by row (`| screen | keys | help |`).
pub fn readme_rows() -> Vec<String> {
    KEYS.iter()
        .map(|b| format!("| {} | {} | {} |", b.context.name(), b.label, b.help))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_readme_lists_exactly_these_keys() {
        let readme = include_str!("../../README.md");
        let section = readme
            .split("\n## Keys\n")
            .nth(1)
            .expect("README has a ## Keys section");
        let rows: Vec<&str> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and |---|
            .collect();
        let want = readme_rows();
        assert_eq!(
            rows,
            want,
            "README's key table differs from tui/keys.rs; it should read:\n| Screen | Key | What it does |\n|---|---|---|\n{}",
            want.join("\n")
        );
    }

    #[test]
    fn lookup_follows_the_contexts_in_order() {
        assert_eq!(
            lookup(&[Context::Monitor, Context::All], &key(KeyCode::Char('c'))),
            Some(KeyAction::OpenCalibration)
        );
        assert_eq!(
            lookup(&[Context::Calibration], &key(KeyCode::Char('c'))),
            Some(KeyAction::Back)
        );
        let ctrl_c = KeyEvent::new(KeyCode::Char('C'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&[Context::All], &ctrl_c), Some(KeyAction::Quit));
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(lookup(&[Context::All], &ctrl_q), None);
        assert_eq!(
            lookup(&[Context::LearnEditor], &key(KeyCode::Char('q'))),
            Some(KeyAction::Type)
        );
        assert_eq!(lookup(&[Context::Monitor], &key(KeyCode::Char('z'))), None);
    }

    #[test]
    fn every_key_is_bound_once_per_context() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                if a.context != b.context {
                    continue;
                }
                for (ka, _) in a.keys {
                    assert!(
                        !b.keys.iter().any(|(kb, _)| kb == ka),
                        "{ka:?} twice in {}",
                        a.context.name()
                    );
                }
            }
        }
    }
}
