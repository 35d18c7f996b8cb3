//! Frame sources (folder, file, camera) and the capture loop that feeds the slot.
//!
//! Sources hand out frames still encoded (file bytes, a camera's MJPEG frame) or raw
//! (YUYV); decoding happens only for the frame the student takes (`prep`).
//!
//! By job: `contract.rs` is the trait and its errors (what the camera and the other
//! sources implement), `files.rs` the folder and file sources, `open.rs` picks the source
//! the config names (with the camera's fallback), `capture.rs` the capture thread with
//! its reopen backoff. This file only re-exports them.

mod capture;
pub(crate) mod contract;
mod files;
mod open;
#[cfg(test)]
mod test_support;

pub use capture::spawn_capture;
pub use contract::{Capture, CaptureNotice, FrameSource, SourceError};
pub use files::{is_image_name, list_images, FileSource, FolderSource};
pub use open::open_source;
