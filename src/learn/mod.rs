//! Learning from escalations: a reviewed frame and the teacher's verdict become an eval case.
//!
//! `cases` writes `eval/learned.toml`; `console` is what the console's learn editor needs.

mod cases;
pub mod console;

pub use cases::*;
