//! Watches: plain-English yes/no questions ("Is the garage door open?") the student answers on every frame, kept as sensor states.
//!
//! `spec.rs` is one watch as configured (`[[watch]]` or `skills/watches.toml`) and its
//! validation; `answer.rs` reads the student's `WATCH <id>: yes|no|unsure` lines (pure,
//! forgiving); `state.rs` is the state machine (debounce, the teacher's overrule, pure);
//! `file.rs` keeps `skills/watches.toml` (atomic save, re-read when it changes).
//! This room imports nothing of the engine: the policy, the roles and the faces read it.

pub mod answer;
pub mod file;
pub mod spec;
pub mod state;

pub use answer::{parse_watch_answers, without_watch_lines, WatchAnswer};
pub use spec::{validate_watches, Notify, WatchSpec, MAX_QUESTION_CHARS, MAX_WATCHES};
pub use state::{
    change_line, Decider, StudentStep, WatchBoard, WatchChange, WatchState, WatchStatus,
};
