//! The monitor screen: the log, the frame and the teacher's verdict (`state`, `view`).

pub mod state;
pub mod view;

pub use state::{Entry, Monitor, TeacherState, MAX_ANSWER_CHARS};
