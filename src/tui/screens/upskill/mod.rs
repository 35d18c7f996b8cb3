//! The upskill screen: the run's score matrix and decision (`state`, `view`).

pub mod state;
pub mod view;

pub use state::{Cell, RunStatus, UpskillRow, UpskillState};
