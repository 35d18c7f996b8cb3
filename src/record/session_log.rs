//! The session log: one JSON line per event in `logs/session-YYYYMMDD.jsonl`, written
//! and flushed per line; escalated frames saved as JPEG under `logs/frames/`.

use crate::event::Event;
use chrono::{DateTime, Utc};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct SessionLog {
    dir: PathBuf,
    /// Identifies this run in the log and in saved frame names.
    session: String,
    day: String,
    file: Option<File>,
    /// The last write error, reported once until writing works again.
    failing: bool,
    /// This device's name, on every line (many devices may share one teacher).
    device: Option<String>,
}

impl SessionLog {
    pub fn new(dir: &Path, started: DateTime<Utc>) -> Self {
        SessionLog {
            dir: dir.to_path_buf(),
            session: started.format("%Y%m%d-%H%M%S").to_string(),
            day: String::new(),
            file: None,
            failing: false,
            device: None,
        }
    }

    /// Name the device on every line.
    pub fn with_device(mut self, name: &str) -> Self {
        self.device = Some(name.to_string());
        self
    }

    /// The log file for `now`'s day.
    pub fn path_for(&self, now: DateTime<Utc>) -> PathBuf {
        self.dir
            .join(format!("session-{}.jsonl", now.format("%Y%m%d")))
    }

    fn file_for(&mut self, now: DateTime<Utc>) -> std::io::Result<&mut File> {
        let day = now.format("%Y%m%d").to_string();
        if self.file.is_none() || day != self.day {
            std::fs::create_dir_all(&self.dir)?;
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path_for(now))?;
            self.file = Some(f);
            self.day = day;
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Append one event as a JSON line. Returns `Err` with a message the first time
    /// writing fails (disk full, not writable); later failures are silent until it
    /// works again, so a full disk does not flood the screen.
    pub fn append(&mut self, event: &Event) -> Result<(), String> {
        if !event.is_logged() {
            return Ok(());
        }
        let now = Utc::now();
        let mut value = match serde_json::to_value(event) {
            Ok(v) => v,
            Err(e) => return Err(format!("cannot serialise event: {e}")),
        };
        if let Some(obj) = value.as_object_mut() {
            obj.insert("ts".into(), serde_json::Value::String(now.to_rfc3339()));
            obj.insert(
                "session".into(),
                serde_json::Value::String(self.session.clone()),
            );
            if let Some(d) = &self.device {
                obj.insert("device".into(), serde_json::Value::String(d.clone()));
            }
        }
        // serde_json escapes C0 controls but writes C1, U+2028/2029 and format characters
        // raw: a terminal `cat`ing the log would obey C1, line-splitting tools break on
        // U+2028/2029.
        let mut line = crate::reading::sanitize::escape_json_invisibles(value.to_string());
        line.push('\n');
        let result = self
            .file_for(now)
            .and_then(|f| f.write_all(line.as_bytes()).and_then(|_| f.flush()));
        match result {
            Ok(()) => {
                self.failing = false;
                Ok(())
            }
            Err(e) => {
                // Reopen next time: the file may have been removed or the disk freed.
                self.file = None;
                if self.failing {
                    Ok(())
                } else {
                    self.failing = true;
                    Err(format!(
                        "session log not writable ({}): {e}; monitoring continues",
                        self.dir.display()
                    ))
                }
            }
        }
    }

    /// Save an escalated frame's JPEG; returns its path.
    pub fn save_frame(&self, seq: u64, jpeg: &[u8]) -> std::io::Result<PathBuf> {
        let dir = self.dir.join("frames");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}-{seq:06}.jpg", self.session));
        crate::files::atomic::write_atomic(&path, jpeg)?;
        Ok(path)
    }

    pub fn sync(&mut self) {
        if let Some(f) = self.file.as_mut() {
            let _ = f.sync_data();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_logged_event_tokens_skipped() {
        let d = tempfile::tempdir().unwrap();
        let mut log = SessionLog::new(d.path(), Utc::now());
        log.append(&Event::Warning {
            message: "a \u{1b}]0;x\u{7} b \u{9b}31m \u{2028} \u{202e} \u{e0049}".into(),
        })
        .unwrap();
        log.append(&Event::StudentToken {
            seq: 1,
            text: "tok".into(),
        })
        .unwrap();
        log.append(&Event::StudentFailed {
            seq: 1,
            error: "boom".into(),
        })
        .unwrap();
        let text = std::fs::read_to_string(log.path_for(Utc::now())).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["type"], "warning");
        assert!(v["ts"].is_string());
        // Control characters are escaped in the file, never raw.
        assert!(!lines[0].contains('\u{1b}'));
        assert!(lines[0].contains("\\u001b"));
        assert!(!lines[0].contains('\u{9b}'));
        for c in ['\u{2028}', '\u{202e}', '\u{e0049}'] {
            assert!(!lines[0].contains(c), "U+{:04X} raw in the log", c as u32);
        }
        let back: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            back["message"],
            "a \u{1b}]0;x\u{7} b \u{9b}31m \u{2028} \u{202e} \u{e0049}"
        );
    }

    #[test]
    fn unwritable_dir_reports_once() {
        let d = tempfile::tempdir().unwrap();
        let blocker = d.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let mut log = SessionLog::new(&blocker.join("logs"), Utc::now());
        let ev = Event::Paused { paused: true };
        assert!(log.append(&ev).is_err());
        assert!(log.append(&ev).is_ok());
    }
}
