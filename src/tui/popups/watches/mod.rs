//! The `w` popup: the watches listed with their states; add, edit and remove them (`state`), and its box (`view`).

pub mod state;
pub mod view;

pub use state::{WatchForm, WatchesPopup, FORM_FIELDS};
