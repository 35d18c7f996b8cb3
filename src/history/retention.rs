//! Retention, so an SD card never fills: rows, frames and session logs older than
//! `keep_days` go; then, while the store, the frames and the session logs together are
//! over `max_mb`, the oldest frames of entries outside incidents go first, then the oldest
//! session logs (never today's), then the oldest rows outside incidents, and incident key
//! frames last. Runs in the writer thread at start and hourly; says what it removed.

use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// What retention keeps.
#[derive(Debug, Clone)]
pub struct Retention {
    pub keep_days: u32,
    pub max_bytes: u64,
    /// `[paths] logs`: the session logs and `frames/`.
    pub logs: PathBuf,
}

/// What one pass removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pruned {
    pub frames: u64,
    pub incident_frames: u64,
    pub rows: u64,
    pub session_logs: u64,
    pub bytes: u64,
    /// Still over `max_mb` after everything it may remove.
    pub still_over: bool,
}

impl Pruned {
    pub fn is_empty(&self) -> bool {
        self.frames + self.incident_frames + self.rows + self.session_logs == 0
    }

    /// One line for the user.
    pub fn describe(&self, r: &Retention) -> String {
        let mut s = format!(
            "history retention (keep {} days, {} MB in all) removed {} frames, {} rows, {} session logs ({:.1} MB)",
            r.keep_days,
            r.max_bytes >> 20,
            self.frames + self.incident_frames,
            self.rows,
            self.session_logs,
            self.bytes as f64 / 1_048_576.0
        );
        if self.incident_frames > 0 {
            s.push_str(&format!(
                "; {} of the frames were incident key frames",
                self.incident_frames
            ));
        }
        if self.still_over {
            s.push_str("; still over the limit: raise [history] max_mb or free space");
        }
        s
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn session_logs(logs: &Path) -> Vec<(PathBuf, u64)> {
    let mut v: Vec<(PathBuf, u64)> = std::fs::read_dir(logs)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("session-") && n.ends_with(".jsonl"))
        })
        .map(|p| {
            let n = file_len(&p);
            (p, n)
        })
        .collect();
    v.sort();
    v
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// The store (with its WAL), the frames and the session logs, in bytes.
pub fn used_bytes(conn: &Connection, logs: &Path) -> u64 {
    let store = conn
        .path()
        .map(|p| {
            let p = PathBuf::from(p);
            let mut wal = p.as_os_str().to_owned();
            wal.push("-wal");
            file_len(&p) + file_len(Path::new(&wal))
        })
        .unwrap_or(0);
    store + dir_bytes(&logs.join("frames")) + session_logs(logs).iter().map(|l| l.1).sum::<u64>()
}

/// Remove the JPEG files of these frame rows (and forget their paths).
fn drop_frame_files(conn: &Connection, ids_paths: &[(i64, String)]) -> rusqlite::Result<u64> {
    let mut freed = 0;
    for (id, path) in ids_paths {
        let p = Path::new(path);
        freed += file_len(p);
        let _ = std::fs::remove_file(p);
        conn.execute("UPDATE frames SET frame_path = NULL WHERE id = ?1", [id])?;
    }
    Ok(freed)
}

fn oldest_frames(
    conn: &Connection,
    in_incident: bool,
    n: usize,
) -> rusqlite::Result<Vec<(i64, String)>> {
    let sql = format!(
        "SELECT id, frame_path FROM frames WHERE frame_path IS NOT NULL AND incident_id IS {} NULL \
         ORDER BY at_ms, id LIMIT {n}",
        if in_incident { "NOT" } else { "" }
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// Free pages back to the file system: vacuum them out of the store, then checkpoint the
/// WAL into it and truncate the WAL.
fn shrink(conn: &Connection) -> rusqlite::Result<()> {
    // Each step frees one page: step it to the end.
    let mut st = conn.prepare("PRAGMA incremental_vacuum")?;
    let mut rows = st.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

/// One pass at `now_ms`.
pub fn prune(conn: &mut Connection, r: &Retention, now_ms: i64) -> rusqlite::Result<Pruned> {
    let mut out = Pruned::default();
    let cutoff = now_ms - i64::from(r.keep_days) * 86_400_000;
    // Age first: frames (with their files), then every other row.
    loop {
        let old: Vec<(i64, Option<String>)> = {
            let mut st = conn.prepare(
                "SELECT id, frame_path FROM frames WHERE at_ms < ?1 ORDER BY at_ms LIMIT 1000",
            )?;
            let rows = st.query_map([cutoff], |x| Ok((x.get(0)?, x.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        if old.is_empty() {
            break;
        }
        let tx = conn.transaction()?;
        for (id, path) in &old {
            if let Some(p) = path {
                out.bytes += file_len(Path::new(p));
                let _ = std::fs::remove_file(p);
                out.frames += 1;
            }
            tx.execute("DELETE FROM frames WHERE id = ?1", [id])?;
            out.rows += 1;
        }
        tx.commit()?;
    }
    for (table, col) in [
        ("notes", "at_ms"),
        ("alerts", "at_ms"),
        ("offline", "coalesce(until_ms, from_ms)"),
    ] {
        out.rows +=
            conn.execute(&format!("DELETE FROM {table} WHERE {col} < ?1"), [cutoff])? as u64;
    }
    out.rows += conn.execute(
        "DELETE FROM incidents WHERE closed_ms IS NOT NULL AND closed_ms < ?1",
        [cutoff],
    )? as u64;
    let today = chrono::DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .format("session-%Y%m%d.jsonl")
        .to_string();
    let cutoff_name = chrono::DateTime::from_timestamp_millis(cutoff)
        .unwrap_or_default()
        .format("session-%Y%m%d.jsonl")
        .to_string();
    for (p, n) in session_logs(&r.logs) {
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name < cutoff_name && std::fs::remove_file(&p).is_ok() {
            out.session_logs += 1;
            out.bytes += n;
        }
    }
    // Size: cheapest to lose first.
    let over = |conn: &Connection| used_bytes(conn, &r.logs) > r.max_bytes;
    while over(conn) {
        let batch = oldest_frames(conn, false, 100)?;
        if batch.is_empty() {
            break;
        }
        out.frames += batch.len() as u64;
        out.bytes += drop_frame_files(conn, &batch)?;
    }
    for (p, n) in session_logs(&r.logs) {
        if !over(conn) {
            break;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name != today && std::fs::remove_file(&p).is_ok() {
            out.session_logs += 1;
            out.bytes += n;
        }
    }
    while over(conn) {
        let before = used_bytes(conn, &r.logs);
        let n = conn.execute(
            "DELETE FROM frames WHERE id IN (SELECT id FROM frames WHERE incident_id IS NULL \
             AND frame_path IS NULL ORDER BY at_ms, id LIMIT 1000)",
            [],
        )? as u64;
        let m = conn.execute(
            "DELETE FROM notes WHERE id IN (SELECT id FROM notes ORDER BY at_ms LIMIT 200)",
            [],
        )? as u64;
        if n + m == 0 {
            break;
        }
        out.rows += n + m;
        // Give the freed pages back to the file system.
        shrink(conn)?;
        let after = used_bytes(conn, &r.logs);
        out.bytes += before.saturating_sub(after);
        if after >= before {
            // The file does not shrink (a store made without auto_vacuum): removing more
            // rows would not help; say so rather than empty the history.
            break;
        }
    }
    while over(conn) {
        let batch = oldest_frames(conn, true, 20)?;
        if batch.is_empty() {
            break;
        }
        out.incident_frames += batch.len() as u64;
        out.bytes += drop_frame_files(conn, &batch)?;
    }
    if out.rows > 0 {
        shrink(conn)?;
    }
    out.still_over = over(conn);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    const DAY: i64 = 86_400_000;

    fn frame(conn: &Connection, seq: i64, at: i64, path: Option<&Path>, incident: Option<i64>) {
        conn.execute(
            "INSERT INTO frames (session, seq, at_ms, answer, frame_path, incident_id)
             VALUES ('s', ?1, ?2, 'an answer', ?3, ?4)",
            params![
                seq,
                at,
                path.map(|p| p.to_string_lossy().into_owned()),
                incident
            ],
        )
        .unwrap();
    }

    #[test]
    fn old_goes_first_then_plain_frames_then_incident_frames_last() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        let frames = logs.join("frames");
        std::fs::create_dir_all(&frames).unwrap();
        let mut conn = super::super::schema::open(&logs.join("history.db"))
            .unwrap()
            .conn;
        let now = 1_800_000_000_000i64;
        let jpeg = vec![0u8; 100_000];
        let mut paths = Vec::new();
        for seq in 0..40i64 {
            let p = frames.join(format!("f{seq:03}.jpg"));
            std::fs::write(&p, &jpeg).unwrap();
            // 0..10 are 40 days old; 30..40 belong to an incident.
            let at = if seq < 10 {
                now - 40 * DAY
            } else {
                now - DAY + seq * 1000
            };
            frame(&conn, seq, at, Some(&p), (seq >= 30).then_some(1));
            paths.push(p);
        }
        std::fs::write(logs.join("session-20200101.jsonl"), "{}\n").unwrap();
        let r = Retention {
            keep_days: 30,
            max_bytes: 10 << 30,
            logs: logs.clone(),
        };
        let p = prune(&mut conn, &r, now).unwrap();
        assert_eq!((p.frames, p.rows, p.session_logs), (10, 10, 1));
        assert!(paths[..10].iter().all(|p| !p.exists()));
        assert!(paths[10..].iter().all(|p| p.exists()));
        assert!(p
            .describe(&r)
            .contains("removed 10 frames, 10 rows, 1 session logs"));
        // Now a size cap that 25 frames fit under (plus the store).
        let store = used_bytes(&conn, &logs) - 30 * 100_000;
        let r = Retention {
            max_bytes: store + 25 * 100_000,
            ..r
        };
        let p = prune(&mut conn, &r, now).unwrap();
        assert!(!p.still_over, "{p:?}");
        assert_eq!(
            p.incident_frames, 0,
            "incident key frames are the last to go"
        );
        assert!(p.frames >= 5 && p.frames <= 20, "{p:?}");
        assert!(paths[30..].iter().all(|p| p.exists()));
        assert!(paths[10..15].iter().all(|p| !p.exists()), "oldest first");
        // Rows without frames stay while the cap holds.
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM frames", [], |x| x.get(0))
            .unwrap();
        assert_eq!(rows, 30);
        // A cap below the incident frames: they go too, and it says so.
        let r = Retention {
            max_bytes: store + 5 * 100_000,
            ..r
        };
        let p = prune(&mut conn, &r, now).unwrap();
        assert!(p.incident_frames > 0, "{p:?}");
        assert!(p.describe(&r).contains("incident key frames"));
    }
}

#[cfg(test)]
mod shrink_tests {
    use super::*;

    #[test]
    fn removing_rows_gives_the_space_back() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let mut conn = super::super::schema::open(&logs.join("history.db"))
            .unwrap()
            .conn;
        let tx = conn.transaction().unwrap();
        for i in 0..20_000i64 {
            tx.execute(
                "INSERT INTO frames (session, seq, at_ms, answer) VALUES ('s', ?1, ?1, ?2)",
                rusqlite::params![i, "an answer of some length ".repeat(8)],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        shrink(&conn).unwrap();
        let full = used_bytes(&conn, &logs);
        let r = Retention {
            keep_days: 3650,
            max_bytes: full / 2,
            logs: logs.clone(),
        };
        let p = prune(&mut conn, &r, 1_000_000).unwrap();
        assert!(!p.still_over, "{p:?}");
        let left: i64 = conn
            .query_row("SELECT count(*) FROM frames", [], |x| x.get(0))
            .unwrap();
        assert!(
            left > 5_000 && left < 15_000,
            "about half kept, oldest gone: {left}"
        );
        let oldest: i64 = conn
            .query_row("SELECT min(seq) FROM frames", [], |x| x.get(0))
            .unwrap();
        assert!(oldest > 5_000, "{oldest}");
    }
}
