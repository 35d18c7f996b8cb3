//! Frame sources (folder, file, camera) and the capture loop that feeds the slot.
//!
//! Sources hand out frames still encoded (file bytes, a camera's MJPEG frame) or raw
//! (YUYV); decoding happens only for the frame the student takes (`prep`).

use super::slot::SlotWriter;
use super::{Frame, RawImage};
use crate::backoff::CAMERA_REOPEN;
use crate::config::{SourceConfig, SourceKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
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

/// True for `.jpg`, `.jpeg` and `.png`, any case.
pub fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| {
            let e = e.to_ascii_lowercase();
            e == "jpg" || e == "jpeg" || e == "png"
        })
        .unwrap_or(false)
}

/// The images in `dir` (by extension), sorted by file name. Directories are left out;
/// anything else (including broken links) is listed so reading it can report the problem.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        SourceError::Fatal(format!("cannot read image folder {}: {e}", dir.display()))
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| is_image_name(p))
        .filter(|p| !std::fs::metadata(p).map(|m| m.is_dir()).unwrap_or(false))
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Read a file and check cheaply (header only, no decode) that it is a JPEG or PNG.
/// The error is the reason, without the path. Only a regular file of at most
/// [`MAX_IMAGE_FILE_BYTES`](crate::bounded_read::MAX_IMAGE_FILE_BYTES) is read, and opening
/// never blocks (a FIFO or `/dev/zero` is refused at once).
fn read_image_file(path: &Path) -> Result<Arc<[u8]>, String> {
    let bytes = crate::bounded_read::read_regular(path, crate::bounded_read::MAX_IMAGE_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Err("empty file".into());
    }
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&bytes[..]))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .into_dimensions()
        .map_err(|e| format!("not a readable image ({e})"))?;
    if w == 0 || h == 0 {
        return Err(format!("image has no pixels ({w}x{h})"));
    }
    // Refused here, per file, rather than when the student takes it.
    super::prep::check_dimensions(w, h).map_err(|why| format!("image {why}"))?;
    Ok(bytes.into())
}

/// What identifies a version of a file, so an unchanged bad file is reported once.
type FileStamp = (u64, Option<SystemTime>);

fn file_stamp(path: &Path) -> FileStamp {
    match std::fs::metadata(path) {
        Ok(m) => (m.len(), m.modified().ok()),
        Err(_) => (0, None),
    }
}

/// Every image of a folder, in file-name order, cycled forever. The list is read again at
/// the start of every cycle, so a replay folder may change while running.
pub struct FolderSource {
    dir: PathBuf,
    files: Vec<PathBuf>,
    pos: usize,
    /// Whether a cycle is under way and whether it produced a good frame yet.
    cycle_started: bool,
    good_in_cycle: bool,
    /// Files already reported as bad, with their stamp: skipped silently while unchanged.
    bad: HashMap<PathBuf, FileStamp>,
}

impl FolderSource {
    /// Open a folder; a missing folder or one without images is `Fatal`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let dir = dir.into();
        if dir.as_os_str().is_empty() {
            return Err(SourceError::Fatal(
                "no image folder configured (source.path is empty)".into(),
            ));
        }
        let files = list_images(&dir)?;
        if files.is_empty() {
            return Err(Self::empty_error(&dir));
        }
        Ok(FolderSource {
            dir,
            files,
            pos: 0,
            cycle_started: false,
            good_in_cycle: false,
            bad: HashMap::new(),
        })
    }

    fn empty_error(dir: &Path) -> SourceError {
        SourceError::Fatal(format!(
            "no .jpg/.jpeg/.png images in folder {}",
            dir.display()
        ))
    }

    /// Images in the current cycle's list.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

impl FrameSource for FolderSource {
    fn next(&mut self) -> Result<Capture, SourceError> {
        loop {
            if self.pos >= self.files.len() || !self.cycle_started {
                if self.cycle_started && !self.good_in_cycle {
                    return Err(SourceError::Fatal(format!(
                        "none of the {} images in {} could be read",
                        self.files.len(),
                        self.dir.display()
                    )));
                }
                // A new cycle: read the folder again (the first cycle uses the list `open` read).
                if self.cycle_started {
                    self.files = list_images(&self.dir)?;
                    let files = &self.files;
                    self.bad.retain(|p, _| files.contains(p));
                }
                if self.files.is_empty() {
                    return Err(Self::empty_error(&self.dir));
                }
                self.pos = 0;
                self.cycle_started = true;
                self.good_in_cycle = false;
            }
            let path = self.files[self.pos].clone();
            self.pos += 1;
            match read_image_file(&path) {
                Ok(bytes) => {
                    self.good_in_cycle = true;
                    self.bad.remove(&path);
                    return Ok(Capture {
                        label: file_label(&path),
                        raw: RawImage::Encoded(bytes),
                    });
                }
                Err(reason) => {
                    let stamp = file_stamp(&path);
                    if self.bad.get(&path) == Some(&stamp) {
                        continue; // reported in an earlier cycle and unchanged since
                    }
                    self.bad.insert(path.clone(), stamp);
                    return Err(SourceError::Skipped(format!(
                        "skipping {}: {reason}",
                        path.display()
                    )));
                }
            }
        }
    }

    fn describe(&self) -> String {
        let n = self.files.len();
        format!(
            "folder {} ({n} image{})",
            self.dir.display(),
            if n == 1 { "" } else { "s" }
        )
    }
}

/// One image, read once and offered again and again.
pub struct FileSource {
    path: PathBuf,
    label: String,
    bytes: Arc<[u8]>,
}

impl FileSource {
    /// Read and check the file now; an unreadable or non-image file is `Fatal`.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, SourceError> {
        let path = path.into();
        if path.as_os_str().is_empty() {
            return Err(SourceError::Fatal(
                "no image file configured (source.path is empty)".into(),
            ));
        }
        let bytes = read_image_file(&path).map_err(|reason| {
            SourceError::Fatal(format!("cannot use image {}: {reason}", path.display()))
        })?;
        Ok(FileSource {
            label: file_label(&path),
            path,
            bytes,
        })
    }
}

impl FrameSource for FileSource {
    fn next(&mut self) -> Result<Capture, SourceError> {
        Ok(Capture {
            label: self.label.clone(),
            raw: RawImage::Encoded(self.bytes.clone()),
        })
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }
}

/// Open the source the config names. A camera that cannot be opened falls back to
/// `fallback_path` when that is set (with a warning the caller shows).
pub fn open_source(
    cfg: &SourceConfig,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    match cfg.kind {
        SourceKind::Folder => Ok((Box::new(FolderSource::open(&cfg.path)?), Vec::new())),
        SourceKind::File => Ok((Box::new(FileSource::open(&cfg.path)?), Vec::new())),
        SourceKind::Camera => open_camera_source(cfg),
    }
}

#[cfg(feature = "camera")]
fn open_camera_source(
    cfg: &SourceConfig,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    use super::camera::CameraSource;
    match CameraSource::open(cfg.camera_index) {
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
                Box::new(CameraSource::closed(cfg.camera_index, reason)),
                notices,
            ))
        }
    }
}

#[cfg(not(feature = "camera"))]
fn open_camera_source(
    _cfg: &SourceConfig,
) -> Result<(Box<dyn FrameSource>, Vec<CaptureNotice>), SourceError> {
    Err(SourceError::Fatal(
        "built without camera support; use source.kind = \"folder\"".into(),
    ))
}

/// Granularity of every wait in the capture loop: stop is seen within this.
const TICK: Duration = Duration::from_millis(50);

/// Stop when asked, or when the stop sender is gone (nobody could ask any more).
pub(crate) fn stop_requested(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleep until `deadline` in short slices; false when stop was requested meanwhile.
fn sleep_until(deadline: Instant, stop: &watch::Receiver<bool>) -> bool {
    loop {
        if stop_requested(stop) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(TICK));
    }
}

/// Time between frames; a bad fps (0, negative, NaN) means one per second.
fn frame_period(fps: f64) -> Duration {
    if fps.is_finite() && fps > 0.0 {
        Duration::from_secs_f64((1.0 / fps).min(3600.0))
    } else {
        Duration::from_secs(1)
    }
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
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture_loop(source, fps, writer, paused, stop, notices))
        .expect("the OS refused to start the capture thread")
}

fn capture_loop(
    mut source: Box<dyn FrameSource>,
    fps: f64,
    writer: SlotWriter,
    paused: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    notices: tokio::sync::mpsc::UnboundedSender<CaptureNotice>,
) {
    let warn = |m: String| {
        let _ = notices.send(CaptureNotice::Warning(m));
    };
    let period = frame_period(fps);
    source.watch_stop(stop.clone());
    let mut seq: u64 = 0;
    let mut deadline = Instant::now();
    while !stop_requested(&stop) {
        if *paused.borrow() {
            std::thread::sleep(TICK);
            // After a pause the next frame comes at once, not in a burst of missed ones.
            deadline = Instant::now();
            continue;
        }
        let got = source.next();
        if got.is_err() && stop_requested(&stop) {
            break; // an error while stopping (e.g. a camera interrupted) is no news
        }
        match got {
            Ok(c) => {
                seq += 1;
                writer.put(Frame {
                    seq,
                    captured_at: chrono::Utc::now(),
                    label: c.label,
                    raw: c.raw,
                });
                // Deadline clock: the schedule does not drift with the time `next` takes;
                // when we fall behind we skip the missed slots instead of bursting.
                deadline += period;
                let now = Instant::now();
                if deadline < now {
                    deadline = now;
                }
                if !sleep_until(deadline, &stop) {
                    break;
                }
            }
            Err(SourceError::Skipped(m)) => warn(m),
            Err(SourceError::Fatal(m)) => {
                warn(format!("capture stopped: {m}"));
                break;
            }
            Err(SourceError::Unavailable(m)) => {
                if !reconnect(source.as_mut(), &m, &stop, &warn) {
                    break;
                }
                deadline = Instant::now();
            }
        }
    }
    drop(writer); // the last writer closes the slot: the student sees the end
}

/// Reopen with exponential backoff (1, 2, 4 … 30 s, plus jitter) until it works (true) or
/// stop is requested or the source says it is hopeless (false).
fn reconnect(
    source: &mut dyn FrameSource,
    first_error: &str,
    stop: &watch::Receiver<bool>,
    warn: &dyn Fn(String),
) -> bool {
    let mut attempt = 1;
    warn(format!(
        "camera lost: {first_error} (retrying in {}s)",
        CAMERA_REOPEN.nominal(attempt).as_secs()
    ));
    let mut last_error = first_error.to_string();
    loop {
        if !sleep_until(Instant::now() + CAMERA_REOPEN.delay(attempt), stop) {
            return false;
        }
        match source.reopen() {
            Ok(()) => {
                warn(format!("camera back: {}", source.describe()));
                return true;
            }
            Err(SourceError::Fatal(m)) => {
                warn(format!("capture stopped: {m}"));
                return false;
            }
            Err(SourceError::Skipped(m)) | Err(SourceError::Unavailable(m)) => {
                attempt += 1;
                // Say it again only when the reason changes: a missing camera at a 30 s
                // retry pace must not flood the warning list.
                if m != last_error {
                    warn(format!(
                        "camera still unavailable: {m} (retrying in {}s)",
                        CAMERA_REOPEN.nominal(attempt).as_secs()
                    ));
                    last_error = m;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::slot::slot;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// A tiny valid PNG of the given size.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    fn folder_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    fn labels(src: &mut dyn FrameSource, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| match src.next() {
                Ok(c) => c.label,
                Err(e) => format!("ERR {e}"),
            })
            .collect()
    }

    #[test]
    fn folder_is_sorted_filtered_and_cycles() {
        let p = png(4, 3);
        let dir = folder_with(&[
            ("b.PNG", &p),
            ("a.jpg.txt", b"nope"),
            ("c.png", &p),
            ("a.png", &p),
            ("notes.md", b"# hi"),
        ]);
        std::fs::create_dir(dir.path().join("d.jpg")).unwrap(); // a folder, not an image
        let mut src = FolderSource::open(dir.path()).unwrap();
        assert_eq!(src.len(), 3);
        assert!(src.describe().ends_with("(3 images)"), "{}", src.describe());
        assert_eq!(
            labels(&mut src, 7),
            ["a.png", "b.PNG", "c.png", "a.png", "b.PNG", "c.png", "a.png"]
        );
        // Frames stay encoded, byte for byte.
        match src.next().unwrap().raw {
            RawImage::Encoded(b) => assert_eq!(&b[..], &p[..]),
            other => panic!("expected encoded bytes, got {other:?}"),
        }
    }

    #[test]
    fn folder_is_reread_every_cycle() {
        let p = png(2, 2);
        let dir = folder_with(&[("a.png", &p), ("b.png", &p)]);
        let mut src = FolderSource::open(dir.path()).unwrap();
        assert_eq!(labels(&mut src, 1), ["a.png"]);
        std::fs::write(dir.path().join("c.JPEG"), png(2, 2)).unwrap(); // PNG bytes, sniffed
        std::fs::remove_file(dir.path().join("a.png")).unwrap();
        // The running cycle keeps its list, then the folder is read again.
        let got = labels(&mut src, 3);
        assert_eq!(got[0], "b.png");
        assert_eq!(&got[1..], ["b.png", "c.JPEG"]);
    }

    #[test]
    fn bad_files_are_skipped_with_reasons_then_silently() {
        let p = png(3, 3);
        let dir = folder_with(&[
            ("a_good.png", &p),
            ("b_empty.png", b""),
            ("c_text.png", b"this is text, not a PNG"),
            ("e_good.jpg", &p),
        ]);
        std::os::unix::fs::symlink(
            dir.path().join("missing"),
            dir.path().join("d_dangling.png"),
        )
        .unwrap();
        let mut src = FolderSource::open(dir.path()).unwrap();
        assert_eq!(src.len(), 5);
        let mut results = Vec::new();
        for _ in 0..5 {
            results.push(src.next());
        }
        assert_eq!(results[0].as_ref().unwrap().label, "a_good.png");
        for (r, name, why) in [
            (&results[1], "b_empty.png", "empty file"),
            (&results[2], "c_text.png", "not a readable image"),
            (&results[3], "d_dangling.png", "No such file"),
        ] {
            match r {
                Err(SourceError::Skipped(m)) => {
                    assert!(m.starts_with("skipping "), "{m}");
                    assert!(m.contains(name) && m.contains(why), "{m}");
                }
                other => panic!("{name}: expected Skipped, got {other:?}"),
            }
        }
        assert_eq!(results[4].as_ref().unwrap().label, "e_good.jpg");
        // Second cycle: the bad files were reported already and are passed over quietly.
        assert_eq!(
            labels(&mut src, 3),
            ["a_good.png", "e_good.jpg", "a_good.png"]
        );
        // A bad file that changes is looked at (and reported) again.
        std::fs::write(dir.path().join("b_empty.png"), b"x").unwrap();
        let r = labels(&mut src, 2);
        assert!(
            r[0].starts_with("ERR skipping") && r[0].contains("b_empty.png"),
            "{r:?}"
        );
        assert_eq!(r[1], "e_good.jpg");
    }

    #[test]
    fn folder_of_only_bad_files_ends_fatal_after_one_cycle() {
        let dir = folder_with(&[("a.png", b""), ("b.jpg", b"text")]);
        let mut src = FolderSource::open(dir.path()).unwrap();
        assert!(matches!(src.next(), Err(SourceError::Skipped(_))));
        assert!(matches!(src.next(), Err(SourceError::Skipped(_))));
        match src.next() {
            Err(SourceError::Fatal(m)) => assert!(m.contains("none of the 2 images"), "{m}"),
            other => panic!("expected Fatal, got {other:?}"),
        }
    }

    #[test]
    fn empty_or_missing_folder_is_fatal_and_names_the_path() {
        let dir = folder_with(&[("readme.txt", b"hi")]);
        match FolderSource::open(dir.path()) {
            Err(SourceError::Fatal(m)) => {
                assert!(m.contains(&dir.path().display().to_string()), "{m}")
            }
            other => panic!("expected Fatal, got {:?}", other.map(|s| s.describe())),
        }
        let missing = dir.path().join("nope");
        match FolderSource::open(&missing) {
            Err(SourceError::Fatal(m)) => assert!(m.contains("nope"), "{m}"),
            other => panic!("expected Fatal, got {:?}", other.map(|s| s.describe())),
        }
        // A folder emptied while running is Fatal at the next cycle.
        let p = png(2, 2);
        let dir = folder_with(&[("a.png", &p)]);
        let mut src = FolderSource::open(dir.path()).unwrap();
        assert!(src.next().is_ok());
        std::fs::remove_file(dir.path().join("a.png")).unwrap();
        assert!(matches!(src.next(), Err(SourceError::Fatal(_))));
    }

    #[test]
    fn file_source_repeats_one_image_and_checks_at_open() {
        let dir = folder_with(&[("one.png", &png(5, 5)), ("bad.png", b"text")]);
        let mut src = FileSource::open(dir.path().join("one.png")).unwrap();
        assert_eq!(labels(&mut src, 3), ["one.png", "one.png", "one.png"]);
        // Read once: deleting the file does not matter any more.
        std::fs::remove_file(dir.path().join("one.png")).unwrap();
        assert!(src.next().is_ok());
        assert!(matches!(
            FileSource::open(dir.path().join("bad.png")),
            Err(SourceError::Fatal(_))
        ));
        assert!(matches!(
            FileSource::open(dir.path().join("absent.jpg")),
            Err(SourceError::Fatal(_))
        ));
    }

    #[test]
    fn open_source_by_kind() {
        let dir = folder_with(&[("x.png", &png(2, 2))]);
        let mut cfg = SourceConfig {
            kind: SourceKind::Folder,
            path: dir.path().display().to_string(),
            ..SourceConfig::default()
        };
        let (mut src, notices) = open_source(&cfg).unwrap();
        assert!(notices.is_empty());
        assert_eq!(src.next().unwrap().label, "x.png");
        cfg.kind = SourceKind::File;
        cfg.path = dir.path().join("x.png").display().to_string();
        let (src, _) = open_source(&cfg).unwrap();
        assert!(src.describe().starts_with("file "));
        cfg.kind = SourceKind::Folder;
        cfg.path = String::new();
        assert!(matches!(open_source(&cfg), Err(SourceError::Fatal(_))));
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
        let (mut src, notices) = open_source(&cfg).unwrap();
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
        let (mut src, notices) = open_source(&cfg).unwrap();
        assert_eq!(notices.len(), 1);
        assert!(src.describe().contains("camera 9999"), "{}", src.describe());
        assert!(matches!(src.next(), Err(SourceError::Unavailable(_))));
        assert!(matches!(src.reopen(), Err(SourceError::Unavailable(_))));
    }

    #[cfg(not(feature = "camera"))]
    #[test]
    fn camera_kind_without_the_feature_is_a_clear_error() {
        let cfg = SourceConfig::default();
        match open_source(&cfg) {
            Err(SourceError::Fatal(m)) => assert!(m.contains("without camera support")),
            _ => panic!("expected Fatal"),
        }
    }

    struct Channels {
        paused: watch::Sender<bool>,
        stop: watch::Sender<bool>,
        notices: tokio::sync::mpsc::UnboundedReceiver<CaptureNotice>,
    }

    fn start(
        src: Box<dyn FrameSource>,
        fps: f64,
    ) -> (
        std::thread::JoinHandle<()>,
        crate::frame::slot::SlotReader,
        Channels,
    ) {
        let (w, r) = slot();
        let (paused_tx, paused_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (n_tx, n_rx) = tokio::sync::mpsc::unbounded_channel();
        let h = spawn_capture(src, fps, w, paused_rx, stop_rx, n_tx);
        (
            h,
            r,
            Channels {
                paused: paused_tx,
                stop: stop_tx,
                notices: n_rx,
            },
        )
    }

    fn join_within(h: std::thread::JoinHandle<()>, limit: Duration) -> Duration {
        let t0 = Instant::now();
        while !h.is_finished() {
            assert!(
                t0.elapsed() < limit,
                "capture thread did not stop in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        h.join().unwrap();
        t0.elapsed()
    }

    #[test]
    fn capture_loop_numbers_frames_pauses_and_stops_quickly() {
        let p = png(2, 2);
        let dir = folder_with(&[("a.png", &p), ("b.png", &p), ("c.png", &p)]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, ch) = start(src, 200.0);
        let mut seqs = Vec::new();
        let t0 = Instant::now();
        while seqs.len() < 10 && t0.elapsed() < Duration::from_secs(5) {
            if let Some(t) = r.try_take() {
                seqs.push(t.frame.seq);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(seqs.len() >= 10, "only {seqs:?}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert!(seqs[0] >= 1);

        // Paused: the sequence stops moving.
        ch.paused.send(true).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let at_pause = r.latest_seq();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.latest_seq(), at_pause, "frames kept coming while paused");
        ch.paused.send(false).unwrap();
        let t0 = Instant::now();
        while r.latest_seq() == at_pause && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(r.latest_seq() > at_pause, "no frames after resume");

        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        // The writer is gone with the thread: the slot is closed.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            while r.try_take().is_some() {}
            assert!(r.take().await.is_none());
        });
    }

    #[test]
    fn capture_paces_to_fps_without_drift() {
        let dir = folder_with(&[("a.png", &png(2, 2))]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, ch) = start(src, 20.0);
        std::thread::sleep(Duration::from_millis(1000));
        let n = r.latest_seq();
        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        // 20 fps for one second: 21 frames at most (one at t=0), and not far fewer.
        assert!((15..=22).contains(&n), "{n} frames in 1 s at 20 fps");
    }

    #[test]
    fn skipped_and_fatal_are_reported_and_fatal_closes_the_slot() {
        let dir = folder_with(&[("a.png", b""), ("b.png", b"junk")]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, mut ch) = start(src, 1000.0);
        join_within(h, Duration::from_secs(2));
        let mut got = Vec::new();
        while let Ok(CaptureNotice::Warning(m)) = ch.notices.try_recv() {
            got.push(m);
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("a.png") && got[1].contains("b.png"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("capture stopped: none of the 2"),
            "{got:?}"
        );
        assert_eq!(r.latest_seq(), 0);
    }

    /// A fake device: frame number `unavailable_at` is Unavailable, and `reopen` fails
    /// `reopen_failures` times before working.
    struct Flaky {
        unavailable_at: u64,
        n: u64,
        reopen_failures: Arc<AtomicUsize>,
        reopens: Arc<Mutex<Vec<Instant>>>,
    }

    impl FrameSource for Flaky {
        fn next(&mut self) -> Result<Capture, SourceError> {
            self.n += 1;
            if self.n == self.unavailable_at {
                return Err(SourceError::Unavailable("unplugged".into()));
            }
            Ok(Capture {
                label: "camera 0".into(),
                raw: RawImage::Encoded(Arc::from(&b"jpeg"[..])),
            })
        }
        fn reopen(&mut self) -> Result<(), SourceError> {
            self.reopens.lock().unwrap().push(Instant::now());
            if self.reopen_failures.load(Ordering::SeqCst) > 0 {
                self.reopen_failures.fetch_sub(1, Ordering::SeqCst);
                return Err(SourceError::Unavailable("still unplugged".into()));
            }
            Ok(())
        }
        fn describe(&self) -> String {
            "camera 0".into()
        }
    }

    #[test]
    fn unavailable_reopens_with_backoff_and_reports_recovery() {
        let reopens = Arc::new(Mutex::new(Vec::new()));
        let src = Box::new(Flaky {
            unavailable_at: 3,
            n: 0,
            reopen_failures: Arc::new(AtomicUsize::new(1)),
            reopens: reopens.clone(),
        });
        let t0 = Instant::now();
        let (h, r, mut ch) = start(src, 100.0);
        // Loss at frame 3, retry after ~1 s (fails), then after ~2 s more (works).
        let deadline = Instant::now() + Duration::from_secs(6);
        while r.latest_seq() < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        let times = reopens.lock().unwrap().clone();
        assert_eq!(times.len(), 2, "{times:?}");
        let first = times[0] - t0;
        let second = times[1] - times[0];
        assert!(first >= Duration::from_millis(1000) && first < Duration::from_millis(1400));
        assert!(second >= Duration::from_millis(2000) && second < Duration::from_millis(2400));
        let mut got = Vec::new();
        while let Ok(CaptureNotice::Warning(m)) = ch.notices.try_recv() {
            got.push(m);
        }
        assert_eq!(
            got,
            [
                "camera lost: unplugged (retrying in 1s)",
                "camera still unavailable: still unplugged (retrying in 2s)",
                "camera back: camera 0",
            ]
        );
        assert!(r.latest_seq() >= 5);
    }

    #[test]
    fn stop_interrupts_the_backoff_wait() {
        let src = Box::new(Flaky {
            unavailable_at: 1,
            n: 0,
            reopen_failures: Arc::new(AtomicUsize::new(100)),
            reopens: Arc::new(Mutex::new(Vec::new())),
        });
        let (h, _r, ch) = start(src, 10.0);
        std::thread::sleep(Duration::from_millis(200)); // now in the 1 s backoff sleep
        ch.stop.send(true).unwrap();
        let took = join_within(h, Duration::from_millis(300));
        assert!(took < Duration::from_millis(200), "{took:?}");
    }

    #[test]
    fn dropping_the_stop_sender_ends_the_loop() {
        let dir = folder_with(&[("a.png", &png(2, 2))]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, _r, ch) = start(src, 5.0);
        drop(ch.stop);
        join_within(h, Duration::from_millis(300));
    }

    #[test]
    fn bad_fps_values_do_not_panic() {
        assert_eq!(frame_period(0.0), Duration::from_secs(1));
        assert_eq!(frame_period(f64::NAN), Duration::from_secs(1));
        assert_eq!(frame_period(-3.0), Duration::from_secs(1));
        assert_eq!(frame_period(4.0), Duration::from_millis(250));
        assert!(frame_period(1e-9) <= Duration::from_secs(3600));
    }
}
