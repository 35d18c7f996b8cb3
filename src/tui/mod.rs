//! The monitoring console: a thin face over the engine.
//!
//! Shared pieces first: `action` (what the run loop does), `keys` (the one key table),
//! `theme` (the one palette), `widgets` (clean, truncate, block), `roles` (each model's
//! view), `layout`. Then the `screens` (monitor, upskill, calibration, history) and
//! `popups` (help, learn editor, confirm, the away summary), each with its state, keys and
//! drawing; `app` holds them and routes events and keys; `status` and `ui` draw it; `run`
//! is the loop that wires it to the engine and to upskill runs. `images` encodes the thumbnail off the UI thread,
//! `terminal` enters and restores the terminal, `export` saves an entry.

pub mod action;
pub mod app;
pub mod export;
pub mod form;
pub mod images;
pub mod keys;
pub mod layout;
pub mod messages;

pub mod popups;
pub mod roles;
pub mod run;
pub mod screens;
pub mod status;
pub mod terminal;
pub mod theme;
pub mod ui;
pub mod widgets;

#[cfg(test)]
pub(crate) mod render_tests;
#[cfg(test)]
mod snapshots;

pub use action::{Action, Screen};
pub use app::{App, Notice};
pub use export::save_entry;
pub use images::ImageState;
pub use roles::RoleView;
pub use run::{perform, run, Console};
pub use screens::monitor::{Entry, TeacherState};
pub use theme::Theme;
