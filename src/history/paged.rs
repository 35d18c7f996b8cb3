//! History pages for a socket client: bounded in size (at most `MAX_PAGE` items, a line
//! under the protocol's cap) and in time (a query that runs longer than `MAX_QUERY` is
//! interrupted), on a read-only connection of its own, so a query never holds up the
//! engine or the writer.

use super::query::{self, Cursor, Filter, Item};
use super::schema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::{Duration, Instant};

/// Items in one page at most.
pub const MAX_PAGE: usize = 200;
/// A query is interrupted after this long.
pub const MAX_QUERY: Duration = Duration::from_secs(2);

/// One page and where the next begins (none: this was the last).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<Cursor>,
}

/// Read one page of the store at `path` (blocking: run it off the async threads).
pub fn page(
    path: &Path,
    filter: &Filter,
    after: Option<Cursor>,
    limit: usize,
) -> Result<Page, String> {
    let limit = limit.clamp(1, MAX_PAGE);
    if !path.exists() {
        return Ok(Page {
            items: Vec::new(),
            next: None,
        });
    }
    let conn = schema::open_read(path).map_err(|e| e.to_string())?;
    let began = Instant::now();
    conn.progress_handler(10_000, Some(move || began.elapsed() > MAX_QUERY))
        .map_err(|e| e.to_string())?;
    let items = query::items(&conn, filter, after, limit).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::OperationInterrupted => {
            format!(
                "the history query took longer than {} s and was stopped: narrow it (a shorter span, fewer filters)",
                MAX_QUERY.as_secs()
            )
        }
        e => format!("history query failed: {e}"),
    })?;
    let next = (items.len() == limit)
        .then(|| items.last().map(Item::cursor))
        .flatten();
    Ok(Page { items, next })
}

/// Frames of one incident sent at most (the rest are counted).
pub const MAX_DETAIL_FRAMES: usize = 200;
/// Largest frame JPEG sent to a console.
pub const MAX_FRAME_BYTES: u64 = 4 * 1024 * 1024;

/// One incident and its frames to step through (bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detail {
    pub incident: crate::event::IncidentEvent,
    pub frames: Vec<query::FrameRow>,
    /// Frames the incident has beyond those sent.
    #[serde(default)]
    pub more: u64,
}

/// A read-only connection with the query deadline, or None when there is no store.
fn read_conn(path: &Path) -> Result<Option<rusqlite::Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = schema::open_read(path).map_err(|e| e.to_string())?;
    let began = Instant::now();
    conn.progress_handler(10_000, Some(move || began.elapsed() > MAX_QUERY))
        .map_err(|e| e.to_string())?;
    Ok(Some(conn))
}

/// Incident `id` with at most `MAX_DETAIL_FRAMES` of its frames (blocking).
pub fn detail(path: &Path, id: u64) -> Result<Detail, String> {
    let conn = read_conn(path)?.ok_or_else(|| format!("no history store at {}", path.display()))?;
    let incident = query::incident(&conn, id)
        .map_err(|e| format!("history query failed: {e}"))?
        .ok_or_else(|| format!("incident #{id} is not in the history store"))?;
    let (frames, all) = query::incident_frames_bounded(&conn, id, MAX_DETAIL_FRAMES)
        .map_err(|e| format!("history query failed: {e}"))?;
    Ok(Detail {
        incident,
        more: all.saturating_sub(frames.len() as u64),
        frames,
    })
}

/// The saved JPEG of frame row `id` (blocking). Only a regular file under `<logs>/frames`
/// is read, at most `MAX_FRAME_BYTES`: the row names the file, a client never does.
pub fn frame_jpeg(path: &Path, logs: &Path, id: i64) -> Result<Vec<u8>, String> {
    let conn = read_conn(path)?.ok_or_else(|| format!("no history store at {}", path.display()))?;
    let row = query::frame(&conn, id)
        .map_err(|e| format!("history query failed: {e}"))?
        .ok_or_else(|| format!("frame {id} is not in the history store"))?;
    let Some(file) = row.frame_path else {
        return Err("no frame was saved for this entry".into());
    };
    let frames = std::fs::canonicalize(logs.join("frames"))
        .map_err(|e| format!("cannot read {}: {e}", logs.join("frames").display()))?;
    let real = std::fs::canonicalize(&file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("the frame {file} is gone (retention removes old frames)")
        }
        _ => format!("cannot read the frame {file}: {e}"),
    })?;
    if !real.starts_with(&frames) {
        return Err(format!(
            "the frame {file} is outside {}: not read",
            frames.display()
        ));
    }
    crate::files::bounded_read::read_regular(&real, MAX_FRAME_BYTES)
        .map_err(|e| format!("cannot read the frame {file}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_read_only_from_under_the_logs_frames_and_detail_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let logs = d.path().join("logs");
        std::fs::create_dir_all(logs.join("frames")).unwrap();
        let path = logs.join("history.db");
        let inside = logs.join("frames/s-000001.jpg");
        std::fs::write(&inside, [0xff, 0xd8, 1]).unwrap();
        let outside = d.path().join("secret.txt");
        std::fs::write(&outside, "secret").unwrap();
        let link = logs.join("frames/s-000002.jpg");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        let o = schema::open(&path).unwrap();
        for (id, p) in [(1, &inside), (2, &link), (3, &outside)] {
            o.conn
                .execute(
                    "INSERT INTO frames (id, session, seq, at_ms, frame_path, incident_id)
                     VALUES (?1, 's', ?1, ?1, ?2, 9)",
                    rusqlite::params![id, p.to_string_lossy()],
                )
                .unwrap();
        }
        o.conn
            .execute(
                "INSERT INTO frames (id, session, seq, at_ms) VALUES (4, 's', 4, 4)",
                [],
            )
            .unwrap();
        assert_eq!(frame_jpeg(&path, &logs, 1).unwrap(), vec![0xff, 0xd8, 1]);
        for id in [2, 3] {
            let e = frame_jpeg(&path, &logs, id).unwrap_err();
            assert!(e.contains("outside"), "{e}");
        }
        assert!(frame_jpeg(&path, &logs, 4)
            .unwrap_err()
            .contains("no frame"));
        assert!(frame_jpeg(&path, &logs, 99).unwrap_err().contains("not in"));
        std::fs::remove_file(&inside).unwrap();
        assert!(frame_jpeg(&path, &logs, 1).unwrap_err().contains("gone"));
        // An incident's detail: at most MAX_DETAIL_FRAMES frames, the rest counted.
        o.conn
            .execute(
                "INSERT INTO incidents (id, opened_ms, last_ms, level, title, frames)
                 VALUES (9, 1, 1, 2, 't', 3)",
                [],
            )
            .unwrap();
        for i in 0..(MAX_DETAIL_FRAMES as i64 + 5) {
            o.conn
                .execute(
                    "INSERT INTO frames (session, seq, at_ms, incident_id) VALUES ('u', ?1, ?1, 9)",
                    [i],
                )
                .unwrap();
        }
        let dt = detail(&path, 9).unwrap();
        assert_eq!(dt.frames.len(), MAX_DETAIL_FRAMES);
        assert_eq!(dt.more, 8);
        assert!(detail(&path, 10).unwrap_err().contains("#10"));
    }

    #[test]
    fn pages_are_bounded_and_a_missing_store_is_empty() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("history.db");
        let p = page(&path, &Filter::default(), None, 10).unwrap();
        assert!(p.items.is_empty() && p.next.is_none());
        let o = schema::open(&path).unwrap();
        for i in 0..300 {
            o.conn
                .execute(
                    "INSERT INTO frames (session, seq, at_ms, answer) VALUES ('s', ?1, ?1, 'x')",
                    [i],
                )
                .unwrap();
        }
        let p = page(&path, &Filter::default(), None, 100_000).unwrap();
        assert_eq!(p.items.len(), MAX_PAGE);
        let rest = page(&path, &Filter::default(), p.next, 100_000).unwrap();
        assert_eq!(rest.items.len(), 100);
        assert!(rest.next.is_none());
    }
}
