//! What the engine leaves behind for people: the session log and alerts sent to someone.

pub mod notify;
pub mod session_log;
