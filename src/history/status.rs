//! What `check` says about the store: its path, size (with its WAL), rows, incidents and
//! the oldest entry, or why it cannot be read. Read-only: never creates or migrates it.

use super::schema;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// The store at a glance.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStatus {
    pub path: PathBuf,
    /// The database and its `-wal` file.
    pub bytes: u64,
    pub frames: u64,
    pub incidents: u64,
    pub oldest: Option<DateTime<Utc>>,
}

/// The store at `path`: None when there is none yet; an error says why it is unusable.
pub fn status(path: &Path) -> Result<Option<StoreStatus>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = schema::open_read(path).map_err(|e| e.to_string())?;
    let q = |sql: &str| -> Result<Option<i64>, String> {
        conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map_err(|e| format!("{} cannot be read: {e}", path.display()))
    };
    let frames = q("SELECT count(*) FROM frames")?.unwrap_or(0).max(0) as u64;
    let incidents = q("SELECT count(*) FROM incidents")?.unwrap_or(0).max(0) as u64;
    let oldest = [
        q("SELECT min(at_ms) FROM frames")?,
        q("SELECT min(at_ms) FROM notes")?,
        q("SELECT min(opened_ms) FROM incidents")?,
    ]
    .into_iter()
    .flatten()
    .min()
    .and_then(DateTime::from_timestamp_millis);
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Ok(Some(StoreStatus {
        path: path.to_path_buf(),
        bytes: size(path) + size(Path::new(&wal)),
        frames,
        incidents,
        oldest,
    }))
}

impl StoreStatus {
    /// `logs/history.db · 12.3 MB · 10412 frames, 3 incidents · oldest 2026-11-05 (30 days)`.
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let oldest = match self.oldest {
            Some(t) => format!(
                "oldest {} ({} days)",
                t.format("%Y-%m-%d"),
                (now - t).num_days().max(0)
            ),
            None => "empty".into(),
        };
        format!(
            "{} · {:.1} MB · {} frames, {} incidents · {oldest}",
            self.path.display(),
            self.bytes as f64 / 1_048_576.0,
            self.frames,
            self.incidents
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_no_store_an_empty_one_a_full_one_and_a_broken_one() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("history.db");
        assert_eq!(status(&path).unwrap(), None);
        assert!(!path.exists(), "check never creates the store");
        let o = schema::open(&path).unwrap();
        let s = status(&path).unwrap().unwrap();
        assert_eq!((s.frames, s.incidents, s.oldest), (0, 0, None));
        assert!(s
            .describe(Utc::now())
            .ends_with("0 frames, 0 incidents · empty"));
        let t0 = DateTime::parse_from_rfc3339("2026-11-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for i in 0..3i64 {
            o.conn
                .execute(
                    "INSERT INTO frames (session, seq, at_ms) VALUES ('s', ?1, ?2)",
                    [i, t0.timestamp_millis() + i * 1000],
                )
                .unwrap();
        }
        let s = status(&path).unwrap().unwrap();
        assert_eq!((s.frames, s.oldest), (3, Some(t0)));
        assert!(s.bytes > 0);
        let text = s.describe(t0 + chrono::Duration::days(30));
        assert!(
            text.contains("3 frames, 0 incidents · oldest 2026-11-05 (30 days)"),
            "{text}"
        );
        drop(o);
        // A newer store: the reason names its version.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("PRAGMA user_version = 99").unwrap();
        drop(c);
        let e = status(&path).unwrap_err();
        assert!(e.contains("99"), "{e}");
        // Not a database.
        std::fs::write(&path, b"not sqlite at all, just text").unwrap();
        let _ = std::fs::remove_file(d.path().join("history.db-wal"));
        assert!(status(&path).is_err());
    }
}
