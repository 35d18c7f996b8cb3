//! What opens over a screen: the help overlay, the `a` editor, the `y`/`n` question, the
//! `w` watches popup, the "while you were away" summary.

pub mod away;
pub mod confirm;
pub mod help;
pub mod learn_editor;
pub mod watches;
