//! The table itself: every key, where it works, what it does, its help text (types and
//! lookups in `keys.rs`).

use super::Key::{Char, Code, Ctrl, Printable};
use super::{Context, KeyAction, KeyBinding};
use crossterm::event::KeyCode;
use Context as C;
use KeyAction as A;

/// Every key of the console, in the order the help overlay and the README list them.
pub const KEYS: &[KeyBinding] = &[
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('e'), A::Escalate)],
        label: "`e`",
        help: "escalate the current frame to the teacher",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('a'), A::Learn)],
        label: "`a`",
        help: "learn: make the reviewed entry an eval case",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('u'), A::OpenUpskill)],
        label: "`u`",
        help: "upskill: improve the skill with the teacher",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('c'), A::OpenCalibration)],
        label: "`c`",
        help: "calibration: how far to trust confidence",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('p'), A::Pause)],
        label: "`p`",
        help: "pause / resume capture",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('s'), A::Save)],
        label: "`s`",
        help: "save the entry: frame + answer + verdict",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('k'), A::Acknowledge)],
        label: "`k`",
        help: "acknowledge the open incident",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('w'), A::OpenWatches)],
        label: "`w`",
        help: "watches: add, edit, remove questions",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Char('h'), A::OpenHistory)],
        label: "`h`",
        help: "history: incidents and notable entries",
    },
    KeyBinding {
        context: C::All,
        keys: &[(Char('q'), A::Quit), (Ctrl('c'), A::Quit)],
        label: "`q` `Ctrl-C`",
        help: "quit (cancels a running upskill)",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Code(KeyCode::Up), A::Up), (Code(KeyCode::Down), A::Down)],
        label: "`↑` `↓`",
        help: "move in the log (mouse wheel too)",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[
            (Code(KeyCode::PageUp), A::PageUp),
            (Code(KeyCode::PageDown), A::PageDown),
        ],
        label: "`PgUp` `PgDn`",
        help: "move a page",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Code(KeyCode::Home), A::Home), (Code(KeyCode::End), A::End)],
        label: "`Home` `End`",
        help: "oldest / newest (End follows live)",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Code(KeyCode::Enter), A::Pin)],
        label: "`Enter`",
        help: "show the highlighted entry (or click it)",
    },
    KeyBinding {
        context: C::Monitor,
        keys: &[(Code(KeyCode::Esc), A::Back)],
        label: "`Esc`",
        help: "back to live · close help",
    },
    KeyBinding {
        context: C::All,
        keys: &[(Char('?'), A::Help)],
        label: "`?`",
        help: "this help",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[(Code(KeyCode::Up), A::Up), (Code(KeyCode::Down), A::Down)],
        label: "`↑` `↓`",
        help: "select a row (its prompt shows)",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[
            (Code(KeyCode::Left), A::Left),
            (Code(KeyCode::Right), A::Right),
        ],
        label: "`←` `→`",
        help: "scroll the case columns",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[(Code(KeyCode::Enter), A::Apply)],
        label: "`Enter`",
        help: "apply the selected row (asks y/n)",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[(Char('r'), A::Rerun)],
        label: "`r`",
        help: "run again",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[(Char('o'), A::Report)],
        label: "`o`",
        help: "the newest run report (any key closes it)",
    },
    KeyBinding {
        context: C::Upskill,
        keys: &[(Code(KeyCode::Esc), A::Back)],
        label: "`Esc`",
        help: "cancel the run · back when stopped",
    },
    KeyBinding {
        context: C::Calibration,
        keys: &[
            (Char('r'), A::Reload),
            (Code(KeyCode::Esc), A::Back),
            (Char('c'), A::Back),
        ],
        label: "`r` `Esc` `c`",
        help: "reload · back",
    },
    KeyBinding {
        context: C::Help,
        keys: &[
            (Code(KeyCode::Esc), A::CloseHelp),
            (Char('?'), A::CloseHelp),
        ],
        label: "`Esc` `?`",
        help: "close the help",
    },
    KeyBinding {
        context: C::LearnEditor,
        keys: &[
            (Printable, A::Type),
            (Code(KeyCode::Backspace), A::Backspace),
            (Code(KeyCode::Delete), A::Delete),
            (Code(KeyCode::Left), A::Left),
            (Code(KeyCode::Right), A::Right),
            (Code(KeyCode::Home), A::Home),
            (Code(KeyCode::End), A::End),
        ],
        label: "typing, `Backspace` `Delete` `←` `→` `Home` `End`",
        help: "edit the focused line",
    },
    KeyBinding {
        context: C::LearnEditor,
        keys: &[
            (Code(KeyCode::Tab), A::NextField),
            (Code(KeyCode::Down), A::NextField),
        ],
        label: "`Tab` `↓`",
        help: "next line",
    },
    KeyBinding {
        context: C::LearnEditor,
        keys: &[
            (Code(KeyCode::BackTab), A::PrevField),
            (Code(KeyCode::Up), A::PrevField),
        ],
        label: "`Shift-Tab` `↑`",
        help: "previous line",
    },
    KeyBinding {
        context: C::LearnEditor,
        keys: &[(Code(KeyCode::Enter), A::Submit)],
        label: "`Enter`",
        help: "append the case to eval/learned.toml",
    },
    KeyBinding {
        context: C::LearnEditor,
        keys: &[(Code(KeyCode::Esc), A::Cancel)],
        label: "`Esc`",
        help: "cancel",
    },
    KeyBinding {
        context: C::Confirm,
        keys: &[(Char('y'), A::Yes), (Char('Y'), A::Yes)],
        label: "`y`",
        help: "apply the row",
    },
    KeyBinding {
        context: C::Confirm,
        keys: &[
            (Char('n'), A::No),
            (Char('N'), A::No),
            (Code(KeyCode::Esc), A::No),
        ],
        label: "`n` `Esc`",
        help: "keep the skill",
    },
    KeyBinding {
        context: C::WatchesList,
        keys: &[(Code(KeyCode::Up), A::Up), (Code(KeyCode::Down), A::Down)],
        label: "`↑` `↓`",
        help: "select a watch",
    },
    KeyBinding {
        context: C::WatchesList,
        keys: &[(Char('n'), A::New)],
        label: "`n`",
        help: "add a watch",
    },
    KeyBinding {
        context: C::WatchesList,
        keys: &[(Code(KeyCode::Enter), A::Edit)],
        label: "`Enter`",
        help: "edit the selected watch",
    },
    KeyBinding {
        context: C::WatchesList,
        keys: &[(Char('d'), A::Remove), (Code(KeyCode::Delete), A::Remove)],
        label: "`d` `Delete`",
        help: "remove the selected watch",
    },
    KeyBinding {
        context: C::WatchesList,
        keys: &[(Code(KeyCode::Esc), A::Cancel), (Char('w'), A::Cancel)],
        label: "`Esc` `w`",
        help: "close",
    },
    KeyBinding {
        context: C::WatchesForm,
        keys: &[
            (Printable, A::Type),
            (Code(KeyCode::Backspace), A::Backspace),
            (Code(KeyCode::Delete), A::Delete),
            (Code(KeyCode::Left), A::Left),
            (Code(KeyCode::Right), A::Right),
            (Code(KeyCode::Home), A::Home),
            (Code(KeyCode::End), A::End),
        ],
        label: "typing, `Backspace` `Delete` `←` `→` `Home` `End`",
        help: "edit the focused line",
    },
    KeyBinding {
        context: C::WatchesForm,
        keys: &[
            (Code(KeyCode::Tab), A::NextField),
            (Code(KeyCode::Down), A::NextField),
        ],
        label: "`Tab` `↓`",
        help: "next line",
    },
    KeyBinding {
        context: C::WatchesForm,
        keys: &[
            (Code(KeyCode::BackTab), A::PrevField),
            (Code(KeyCode::Up), A::PrevField),
        ],
        label: "`Shift-Tab` `↑`",
        help: "previous line",
    },
    KeyBinding {
        context: C::WatchesForm,
        keys: &[(Code(KeyCode::Enter), A::Submit)],
        label: "`Enter`",
        help: "check and save to skills/watches.toml",
    },
    KeyBinding {
        context: C::WatchesForm,
        keys: &[(Code(KeyCode::Esc), A::Cancel)],
        label: "`Esc`",
        help: "back to the list",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Code(KeyCode::Up), A::Up), (Code(KeyCode::Down), A::Down)],
        label: "`↑` `↓`",
        help: "select an entry",
    },
    KeyBinding {
        context: C::History,
        keys: &[
            (Code(KeyCode::PageUp), A::PageUp),
            (Code(KeyCode::PageDown), A::PageDown),
        ],
        label: "`PgUp` `PgDn`",
        help: "move a page (older entries load as you go)",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Code(KeyCode::Home), A::Home), (Code(KeyCode::End), A::End)],
        label: "`Home` `End`",
        help: "newest / oldest loaded",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Code(KeyCode::Enter), A::Open)],
        label: "`Enter`",
        help: "open it: frames, answers, reasons, verdicts",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('/'), A::Search)],
        label: "`/`",
        help: "search answers and verdicts",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('i'), A::ToggleIncidents)],
        label: "`i`",
        help: "incidents only",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('t'), A::CycleTrigger)],
        label: "`t`",
        help: "by trigger (safety, low, none, audit, forced, …)",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('d'), A::ToggleDisagreed)],
        label: "`d`",
        help: "teacher disagreed",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('l'), A::CycleLevel)],
        label: "`l`",
        help: "level ≥ 1, ≥ 2, any",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('x'), A::ClearFilters)],
        label: "`x`",
        help: "clear the filters, the search and the span",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('k'), A::Acknowledge)],
        label: "`k`",
        help: "acknowledge the selected incident",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Char('r'), A::Reload)],
        label: "`r`",
        help: "reload",
    },
    KeyBinding {
        context: C::History,
        keys: &[(Code(KeyCode::Esc), A::Back), (Char('h'), A::Back)],
        label: "`Esc` `h`",
        help: "back to the monitor",
    },
    KeyBinding {
        context: C::HistoryItem,
        keys: &[
            (Code(KeyCode::Left), A::Left),
            (Code(KeyCode::Right), A::Right),
        ],
        label: "`←` `→`",
        help: "step through its frames",
    },
    KeyBinding {
        context: C::HistoryItem,
        keys: &[(Char('k'), A::Acknowledge)],
        label: "`k`",
        help: "acknowledge the incident",
    },
    KeyBinding {
        context: C::HistoryItem,
        keys: &[(Code(KeyCode::Esc), A::Back)],
        label: "`Esc`",
        help: "back to the list",
    },
    KeyBinding {
        context: C::Search,
        keys: &[
            (Printable, A::Type),
            (Code(KeyCode::Backspace), A::Backspace),
        ],
        label: "typing, `Backspace`",
        help: "edit the search text",
    },
    KeyBinding {
        context: C::Search,
        keys: &[(Code(KeyCode::Enter), A::Submit)],
        label: "`Enter`",
        help: "search",
    },
    KeyBinding {
        context: C::Search,
        keys: &[(Code(KeyCode::Esc), A::Cancel)],
        label: "`Esc`",
        help: "cancel",
    },
    KeyBinding {
        context: C::Away,
        keys: &[
            (Char('h'), A::OpenHistory),
            (Code(KeyCode::Enter), A::OpenHistory),
        ],
        label: "`h` `Enter`",
        help: "open the history at that span",
    },
    KeyBinding {
        context: C::Away,
        keys: &[(Code(KeyCode::Esc), A::Back)],
        label: "`Esc`",
        help: "close",
    },
];
