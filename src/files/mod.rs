//! Small file helpers: atomic replacement and bounded reads, so nothing is half-written or read without a limit; who may open a file (`access`: the fix when permission is denied).

pub mod access;
pub mod atomic;
pub mod bounded_read;
