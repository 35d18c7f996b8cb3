//! Folder and file sources: images read from disk, checked from their header and handed
//! out still encoded; a folder is cycled and read again each cycle.

use super::contract::{Capture, FrameSource, SourceError};
use crate::frame::RawImage;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

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
/// [`MAX_IMAGE_FILE_BYTES`](crate::files::bounded_read::MAX_IMAGE_FILE_BYTES) is read, and opening
/// never blocks (a FIFO or `/dev/zero` is refused at once).
fn read_image_file(path: &Path) -> Result<Arc<[u8]>, String> {
    let bytes = crate::files::bounded_read::read_regular(
        path,
        crate::files::bounded_read::MAX_IMAGE_FILE_BYTES,
    )
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
    crate::frame::prep::check_dimensions(w, h).map_err(|why| format!("image {why}"))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::source::test_support::{folder_with, labels, png};

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
}
