//! Small file helpers: atomic replacement and bounded reads, so nothing is half-written or read without a limit.

pub mod atomic;
pub mod bounded_read;
