//! The `a` editor: its state and keys (`state`) and its box (`view`).

pub mod state;
pub mod view;

pub use state::{LearnEditor, FIELDS};
