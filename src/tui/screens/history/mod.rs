//! The history screen (`h`): incidents and notable entries from the history store, grouped by day, filtered and searched, an item opened to step through its frames.
//!
//! `state.rs` holds the list, filters, search and the opened item and takes the keys
//! (queries leave as `Action`s, answers come back as messages: nothing waits on the
//! store); `view.rs` draws it.

pub mod state;
pub mod view;

pub use state::{HistoryScreen, ItemView};
