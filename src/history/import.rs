//! Importing session logs (`logs/session-*.jsonl`) into the store, so nothing recorded
//! before the store existed is lost. Each line is the event it logged, with its `ts`,
//! `session` and `device`; it becomes the same rows the live writer makes. The rows'
//! unique keys (a frame by session and sequence number, a note by session, time, kind
//! and text, …) make importing a file again add nothing. One transaction per file.

use super::rows::{self, Origin, Spans};
use crate::event::Event;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// Lines longer than this are skipped (a session log line is far shorter).
const MAX_LINE: usize = 1 << 20;

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ImportReport {
    pub files: usize,
    /// Events stored (again, for lines already imported: they change nothing).
    pub events: u64,
    /// Lines that were not a logged event (malformed, too long, unknown type).
    pub skipped: u64,
    /// Frame rows in the store before and after.
    pub frames_before: u64,
    pub frames_after: u64,
}

/// The session logs in `dir`, oldest first.
pub fn session_logs(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("session-") && n.ends_with(".jsonl"))
                && p.is_file()
        })
        .collect();
    v.sort();
    Ok(v)
}

fn frames(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT count(*) FROM frames", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Import every session log in `dir`.
pub fn import_dir(conn: &mut Connection, dir: &Path) -> Result<ImportReport, String> {
    let logs = session_logs(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut report = ImportReport {
        frames_before: frames(conn).map_err(|e| e.to_string())?,
        ..ImportReport::default()
    };
    for path in logs {
        import_file(conn, &path, &mut report)
            .map_err(|e| format!("importing {}: {e}", path.display()))?;
        report.files += 1;
    }
    report.frames_after = frames(conn).map_err(|e| e.to_string())?;
    Ok(report)
}

fn import_file(
    conn: &mut Connection,
    path: &Path,
    report: &mut ImportReport,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut reader = std::io::BufReader::new(file);
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    let mut spans: HashMap<String, Spans> = HashMap::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        if buf.len() > MAX_LINE && !buf.ends_with(b"\n") {
            // Skip the rest of an overlong line.
            report.skipped += 1;
            let mut rest = Vec::new();
            reader
                .read_until(b'\n', &mut rest)
                .map_err(|e| e.to_string())?;
            continue;
        }
        let Some((origin, at, ev)) = parse_line(&buf) else {
            if !buf.iter().all(|b| b.is_ascii_whitespace()) {
                report.skipped += 1;
            }
            continue;
        };
        let spans = spans.entry(origin.session.clone()).or_default();
        rows::apply(&tx, &origin, at, &ev, spans).map_err(|e| e.to_string())?;
        report.events += 1;
    }
    tx.commit().map_err(|e| e.to_string())
}

/// One session log line: the run it came from, its time and its event.
fn parse_line(line: &[u8]) -> Option<(Origin, DateTime<Utc>, Event)> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let obj = value.as_object()?;
    let at = obj
        .get("ts")
        .and_then(|t| t.as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let session = obj.get("session")?.as_str()?.to_string();
    let device = obj
        .get("device")
        .and_then(|d| d.as_str())
        .unwrap_or_default()
        .to_string();
    let ev: Event = serde_json::from_value(value).ok()?;
    Some((Origin { session, device }, at, ev))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::session_log::SessionLog;

    #[test]
    fn importing_twice_adds_nothing() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        let started = Utc::now();
        let mut log = SessionLog::new(&logs, started).with_device("pi");
        for seq in 1..=5u64 {
            log.append(&Event::StudentAnswer {
                seq,
                at: started,
                answer: format!("answer {seq}"),
                confidence: Some(0.4),
                measured_confidence: None,
                latency_ms: 10,
                reasons: vec![crate::policy::Reason::NoConfidence],
                skill: "s".into(),
            })
            .unwrap();
        }
        log.append(&Event::SkillLoaded {
            name: "s".into(),
            chars: 3,
        })
        .unwrap();
        log.sync();
        // Garbage and an unknown type are skipped, not fatal.
        let path = log.path_for(Utc::now());
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("not json\n{\"type\":\"from_the_future\",\"ts\":\"2026-01-01T00:00:00Z\",\"session\":\"x\"}\n");
        std::fs::write(&path, text).unwrap();
        let mut conn = super::super::schema::open(&d.path().join("history.db"))
            .unwrap()
            .conn;
        let r = import_dir(&mut conn, &logs).unwrap();
        assert_eq!((r.files, r.events, r.skipped), (1, 6, 2));
        assert_eq!((r.frames_before, r.frames_after), (0, 5));
        let r = import_dir(&mut conn, &logs).unwrap();
        assert_eq!((r.frames_before, r.frames_after), (5, 5));
        let notes: i64 = conn
            .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(notes, 1, "the skill note once");
    }
}
