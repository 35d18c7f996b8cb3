//! The monitor screen: the log, the frame and the teacher's verdict (`state`, `view`), and the watches strip (`watches`).

pub mod state;
pub mod view;
pub mod watches;

pub use state::{Entry, Monitor, TeacherState, MAX_ANSWER_CHARS};
