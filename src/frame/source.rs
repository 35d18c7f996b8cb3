//! Frame sources (folder, file, camera) and the capture loop that feeds the slot.
//! PLACEHOLDER body: replaced by the full implementation.

use super::slot::SlotWriter;
use super::RawImage;
use crate::config::SourceConfig;

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
}

/// What the capture loop reports besides frames.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureNotice {
    Warning(String),
}

/// Open the source the config names. A camera that cannot be opened falls back to
/// `fallback_path` when that is set (with a warning the caller shows).
pub fn open_source(
    cfg: &SourceConfig,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    let _ = cfg;
    Err(SourceError::Fatal(
        "frame sources are not implemented yet".into(),
    ))
}

/// Run the capture loop on its own thread until `stop` is set: offers frames at `fps`
/// into the slot (numbered from 1), waits while `paused`, reports warnings.
pub fn spawn_capture(
    source: Box<dyn FrameSource>,
    fps: f64,
    writer: SlotWriter,
    paused: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
    notices: tokio::sync::mpsc::UnboundedSender<CaptureNotice>,
) -> std::thread::JoinHandle<()> {
    let _ = (source, fps, writer, paused, stop, notices);
    std::thread::spawn(|| {})
}
