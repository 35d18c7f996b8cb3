//! What every frame source promises: the [`FrameSource`] trait, one [`Capture`], its
//! errors, what the capture loop reports, and the stop signal a blocking source watches.

use crate::frame::RawImage;
use tokio::sync::watch;

/// One capture from a source, before it gets a sequence number.
#[derive(Debug, Clone)]
pub struct Capture {
    pub label: String,
    pub raw: RawImage,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// This capture failed (e.g. an unreadable file); the next one may work.
    #[error("{0}")]
    Skipped(String),
    /// The device is gone (camera unplugged); reopen with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// Nothing can be captured at all (e.g. an empty folder).
    #[error("{0}")]
    Fatal(String),
}

/// A source of frames. `next` may block (a camera waits for its next frame).
pub trait FrameSource: Send + 'static {
    fn next(&mut self) -> Result<Capture, SourceError>;
    /// Try to get the device back after `Unavailable`.
    fn reopen(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
    /// e.g. `folder eval/images (7 images)`.
    fn describe(&self) -> String;
    /// Called once by the capture loop before the first `next`: a source whose `next` or
    /// `reopen` can block (a camera) watches this to give up promptly when it turns true.
    fn watch_stop(&mut self, stop: watch::Receiver<bool>) {
        let _ = stop;
    }
}

/// What the capture loop reports besides frames.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureNotice {
    Warning(String),
}

/// Stop when asked, or when the stop sender is gone (nobody could ask any more).
pub(crate) fn stop_requested(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}
