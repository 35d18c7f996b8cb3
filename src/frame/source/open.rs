//! Opening the source the config names; a camera that cannot be opened falls back to the
//! sample photos, or is handed out closed so the capture loop retries it.

use super::contract::{CaptureNotice, FrameSource, SourceError};
use super::files::{FileSource, FolderSource};
use crate::config::{SourceConfig, SourceKind};

/// Open the source the config names. A camera that cannot be opened falls back to
/// `fallback_path` when that is set (with a warning the caller shows).
/// `max_side` (`frame.max_side`) picks the camera's mode (see `frame::camera_mode`).
pub fn open_source(
    cfg: &SourceConfig,
    max_side: u32,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    match cfg.kind {
        SourceKind::Folder => Ok((Box::new(FolderSource::open(&cfg.path)?), Vec::new())),
        SourceKind::File => Ok((Box::new(FileSource::open(&cfg.path)?), Vec::new())),
        SourceKind::Camera => open_camera_source(cfg, max_side),
    }
}

/// What the config asks of the camera's mode. A `camera_mode` that does not parse was
/// refused when the config was checked; here it counts as not set.
pub fn mode_request(cfg: &SourceConfig, max_side: u32) -> crate::frame::camera_mode::ModeRequest {
    crate::frame::camera_mode::ModeRequest {
        max_side,
        fps: cfg.fps,
        forced: crate::frame::camera_mode::parse_camera_mode(&cfg.camera_mode)
            .ok()
            .flatten(),
    }
}

#[cfg(feature = "camera")]
fn open_camera_source(
    cfg: &SourceConfig,
    max_side: u32,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    use crate::frame::camera::CameraSource;
    let request = mode_request(cfg, max_side);
    match CameraSource::open(cfg.camera_index, request) {
        Ok(cam) => Ok((Box::new(cam), Vec::new())),
        Err(reason) => {
            let mut notices = Vec::new();
            if !cfg.fallback_path.is_empty() {
                match FolderSource::open(&cfg.fallback_path) {
                    Ok(folder) => {
                        notices.push(CaptureNotice::Warning(format!(
                            "no camera ({reason}); showing sample photos from {}",
                            cfg.fallback_path
                        )));
                        return Ok((Box::new(folder), notices));
                    }
                    Err(e) => notices.push(CaptureNotice::Warning(format!(
                        "no camera ({reason}) and no sample photos either ({e}); \
                         retrying the camera"
                    ))),
                }
            } else {
                notices.push(CaptureNotice::Warning(format!(
                    "no camera ({reason}); retrying with backoff"
                )));
            }
            Ok((
                Box::new(CameraSource::closed(cfg.camera_index, request, reason)),
                notices,
            ))
        }
    }
}

#[cfg(not(feature = "camera"))]
fn open_camera_source(
    _cfg: &SourceConfig,
    _max_side: u32,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    Err(SourceError::Fatal(
        "built without camera support; use source.kind = \"folder\"".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::source::test_support::{folder_with, png};

    #[test]
    fn open_source_by_kind() {
        let dir = folder_with(&[("x.png", &png(2, 2))]);
        let mut cfg = SourceConfig {
            kind: SourceKind::Folder,
            path: dir.path().display().to_string(),
            ..SourceConfig::default()
        };
        let (mut src, notices) = open_source(&cfg, 768).unwrap();
        assert!(notices.is_empty());
        assert_eq!(src.next().unwrap().label, "x.png");
        cfg.kind = SourceKind::File;
        cfg.path = dir.path().join("x.png").display().to_string();
        let (src, _) = open_source(&cfg, 768).unwrap();
        assert!(src.describe().starts_with("file "));
        cfg.kind = SourceKind::Folder;
        cfg.path = String::new();
        assert!(matches!(open_source(&cfg, 768), Err(SourceError::Fatal(_))));
    }

    #[cfg(feature = "camera")]
    #[test]
    fn camera_that_cannot_open_falls_back_to_sample_photos() {
        let dir = folder_with(&[("sample.png", &png(2, 2))]);
        let cfg = SourceConfig {
            kind: SourceKind::Camera,
            camera_index: 9_999, // no such device, here or anywhere
            fallback_path: dir.path().display().to_string(),
            ..SourceConfig::default()
        };
        let (mut src, notices) = open_source(&cfg, 768).unwrap();
        assert_eq!(src.next().unwrap().label, "sample.png");
        match &notices[..] {
            [CaptureNotice::Warning(m)] => {
                assert!(m.starts_with("no camera ("), "{m}");
                assert!(m.contains("showing sample photos from"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        // Without a fallback the camera source is returned anyway, waiting to be reopened.
        let cfg = SourceConfig {
            fallback_path: String::new(),
            ..cfg
        };
        let (mut src, notices) = open_source(&cfg, 768).unwrap();
        assert_eq!(notices.len(), 1);
        assert!(src.describe().contains("camera 9999"), "{}", src.describe());
        assert!(matches!(src.next(), Err(SourceError::Unavailable(_))));
        assert!(matches!(src.reopen(), Err(SourceError::Unavailable(_))));
    }

    #[cfg(not(feature = "camera"))]
    #[test]
    fn camera_kind_without_the_feature_is_a_clear_error() {
        let cfg = SourceConfig::default();
        match open_source(&cfg, 768) {
            Err(SourceError::Fatal(m)) => assert!(m.contains("without camera support")),
            _ => panic!("expected Fatal"),
        }
    }
}
