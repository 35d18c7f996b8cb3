//! Reading local files that may not be what their name says: only regular files, never
//! blocking on open, never more than a cap.
//!
//! A path handed to us (`--source`, `skills/skill.txt`, `eval --skill`, an eval file or
//! image, a session log) can be `/dev/zero` (endless), a FIFO (opening it blocks until a
//! writer comes; reading it blocks until the writer writes) or a huge file. Every read of
//! such a path goes through here: the file is opened with `O_NONBLOCK` (so a FIFO opens at
//! once), its type is checked on the open descriptor (no race with a rename), anything but
//! a regular file is refused, and at most `cap` bytes are read.

use std::fs::File;
use std::io::{self, BufRead, Read};
use std::path::Path;

/// Largest image file read (a frame, an eval image, a learned frame). A 12 MP camera JPEG
/// is a few MB; a 25 MP PNG (the decode limit) rarely more than 40 MB.
pub const MAX_IMAGE_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest skill file read (a skill is at most 8000 characters once trimmed).
pub const MAX_SKILL_FILE_BYTES: u64 = 256 * 1024;
/// Largest eval-set TOML file read (100k learned cases are about 20 MB).
pub const MAX_EVAL_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest config file read.
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;
/// Longest session-log line read (lines are a few hundred bytes; verdicts are capped).
pub const MAX_LOG_LINE_BYTES: usize = 1024 * 1024;

/// What a non-regular file is, for the message.
fn kind_of(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO";
        }
        if ft.is_char_device() {
            return "a character device";
        }
        if ft.is_block_device() {
            return "a block device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "something else"
    }
}

/// Human size: `64 MiB`, `256 KiB`, `12 bytes`.
pub fn human_bytes(n: u64) -> String {
    if n >= 1024 * 1024 && n % (1024 * 1024) == 0 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// Open `path` for reading without blocking and only when it is a regular file (symlinks
/// are followed; what they point at must be a regular file). The error says what it is
/// instead.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK: opening a FIFO without a writer returns at once instead of waiting;
        // it has no effect on reading a regular file. O_NOCTTY: a terminal device never
        // becomes our controlling terminal.
        opts.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = opts.open(path)?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "not a regular file ({}); only regular files are read",
                kind_of(ft)
            ),
        ));
    }
    Ok(f)
}

fn too_large(cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("larger than the {} limit", human_bytes(cap)),
    )
}

/// The whole of a regular file of at most `cap` bytes (see [`open_regular`]).
pub fn read_regular(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let f = open_regular(path)?;
    let len = f.metadata()?.len();
    if len > cap {
        return Err(too_large(cap));
    }
    let mut out = Vec::with_capacity(len as usize);
    // The file may grow between the stat and the read: never past the cap.
    f.take(cap + 1).read_to_end(&mut out)?;
    if out.len() as u64 > cap {
        return Err(too_large(cap));
    }
    Ok(out)
}

/// As [`read_regular`], as UTF-8 text.
pub fn read_regular_string(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, cap)?).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not UTF-8 text (at byte {})", e.utf8_error().valid_up_to()),
        )
    })
}

/// The lines of a regular file (see [`open_regular`]), each at most `max_line` bytes: a
/// longer line is an error naming its number. Memory stays bounded by one line.
pub fn for_each_line(
    path: &Path,
    max_line: usize,
    mut f: impl FnMut(usize, &str) -> io::Result<()>,
) -> io::Result<()> {
    let mut reader = io::BufReader::new(open_regular(path)?);
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        let n = reader
            .by_ref()
            .take(max_line as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
        } else if buf.len() > max_line {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "line {number} is longer than the {} limit",
                    human_bytes(max_line as u64)
                ),
            ));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        let line = std::str::from_utf8(&buf).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("line {number} is not UTF-8 text"),
            )
        })?;
        f(number, line)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn regular_file_read_whole_and_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.txt");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read_regular(&p, 5).unwrap(), b"hello");
        let e = read_regular(&p, 4).unwrap_err();
        assert!(
            e.to_string().contains("larger than the 4 bytes limit"),
            "{e}"
        );
        assert_eq!(read_regular_string(&p, 100).unwrap(), "hello");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn dev_zero_is_refused_not_read() {
        let e = read_regular(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn fifo_without_writer_is_refused_at_once() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.jpg");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let t = Instant::now();
        let e = read_regular(&p, 1024).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(e.to_string().contains("FIFO"), "{e}");
    }

    #[test]
    fn directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = read_regular(d.path(), 1024).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }

    #[test]
    fn lines_bounded_and_numbered() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, "one\r\ntwo\n\nthree").unwrap();
        let mut seen = Vec::new();
        for_each_line(&p, 5, |n, l| {
            seen.push((n, l.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, "one".to_string()),
                (2, "two".into()),
                (3, "".into()),
                (4, "three".into())
            ]
        );
        std::fs::write(&p, "ok\n0123456789\n").unwrap();
        let e = for_each_line(&p, 5, |_, _| Ok(())).unwrap_err();
        assert!(e.to_string().contains("line 2 is longer"), "{e}");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_bytes(64 * 1024 * 1024), "64 MiB");
        assert_eq!(human_bytes(256 * 1024), "256 KiB");
        assert_eq!(human_bytes(12), "12 bytes");
    }
}
