//! Frames: where they come from, the latest-frame slot, and preparing one for a model.

#[cfg(feature = "camera")]
pub mod camera;
pub mod camera_mode;
pub mod dhash;
pub mod pixels;
pub mod prep;
pub mod prep_error;
pub mod slot;
pub mod source;
pub mod turbo;

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// Pixels as a source delivered them, kept undecoded where possible so frames that are
/// never used cost next to nothing.
#[derive(Clone)]
pub enum RawImage {
    /// Encoded bytes (JPEG/PNG file contents, or a camera's MJPEG frame).
    Encoded(Arc<[u8]>),
    /// Packed 8-bit RGB, `width * height * 3` bytes.
    Rgb {
        width: u32,
        height: u32,
        data: Arc<[u8]>,
    },
    /// Packed YUYV 4:2:2 (a webcam's raw format), `width * height * 2` bytes:
    /// `Y0 U Y1 V` per pair of pixels. Converted to RGB only when a frame is prepared.
    Yuyv {
        width: u32,
        height: u32,
        data: Arc<[u8]>,
    },
}

impl std::fmt::Debug for RawImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RawImage::Encoded(b) => write!(f, "Encoded({} bytes)", b.len()),
            RawImage::Rgb { width, height, .. } => write!(f, "Rgb({width}x{height})"),
            RawImage::Yuyv { width, height, .. } => write!(f, "Yuyv({width}x{height})"),
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Sequence number, from 1, in capture order.
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    /// Where it came from: a file name, or `camera 0`.
    pub label: String,
    pub raw: RawImage,
}

/// A frame as sent to a model: downscaled JPEG, and its base64 text.
#[derive(Debug, Clone)]
pub struct PreparedFrame {
    pub width: u32,
    pub height: u32,
    pub jpeg: Arc<[u8]>,
    pub base64: Arc<str>,
}
