//! What the run loop must do after a key, mouse event or engine event (`Action`), and which
//! screen is showing. Shared by every screen and popup.

use crate::event::Command;
use crate::learn::console::LearnEdit;

/// What the run loop must do after a key, mouse event or engine event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Engine(Command),
    /// Start an upskill run (`u`, or `r` on the upskill screen); the app already shows it.
    OpenUpskill,
    /// Esc during a run: stop it (in-flight work stops promptly).
    CancelUpskill,
    /// Save this row of the finished run as the skill (confirmed with `y`).
    ApplyUpskill(usize),
    /// Read the newest upskill run report and show its summary (`o` on the upskill screen).
    OpenUpskillReport,
    /// Load the calibration store and show its report (`c`).
    OpenCalibration,
    /// Append the edited case to `eval/learned.toml` (`a`, then Enter).
    SaveLearned(LearnEdit),
    /// Save this entry's frame and answer under `logs/saved/`.
    SaveEntry(u64),
    Redraw,
    /// Ask for a page of history (the history screen; the answer comes back as a message).
    HistoryQuery {
        filter: crate::history::query::Filter,
        after: Option<crate::history::query::Cursor>,
        limit: usize,
    },
    /// Ask for an incident with its frames.
    HistoryDetail(u64),
    /// Ask for a history frame's JPEG (by its row id).
    HistoryFrame(i64),
    /// Say this in the status bar (a warning).
    Notice(String),
}

/// Which screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Monitor,
    Upskill,
    Calibration,
    History,
}
