//! When each user's consoles were last seen, kept in the store's `meta` table
//! (`console_left:<uid>`), and the "while you were away" summary a console opens with when
//! that was long enough ago. Written by whoever runs the engine (the service, or a
//! console's own engine), on its own short connection: a console never needs write access
//! to the store.

use super::query::{self, AwaySummary};
use super::schema::{self, SCHEMA_VERSION};
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// A console away longer than this opens with the summary of the span.
pub const AWAY_AFTER: Duration = Duration::from_secs(10 * 60);
/// A running console says it is still there this often (so a killed ssh session still
/// leaves roughly when it left).
pub const HERE_EVERY: Duration = Duration::from_secs(60);

/// The `meta` key for a user's consoles.
pub fn key(uid: u32) -> String {
    format!("console_left:{uid}")
}

/// A read-write connection to an existing store of this build's schema (never creates or
/// migrates it: the engine does), waiting up to 2 s for the writer's lock.
fn open_rw(path: &Path) -> Result<Option<Connection>, String> {
    if !path.exists() {
        return Ok(None);
    }
    // A store of another version: refuse exactly as the readers do.
    drop(schema::open_read(path).map_err(|e| e.to_string())?);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| format!("cannot open the history store {}: {e}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if v != SCHEMA_VERSION {
        return Err(format!(
            "history store {} has schema version {v}, not {SCHEMA_VERSION}",
            path.display()
        ));
    }
    Ok(Some(conn))
}

/// When this user's consoles were last seen, from the store.
pub fn last_seen(conn: &Connection, uid: u32) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(query::meta(conn, &key(uid))?
        .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
        .map(|t| t.with_timezone(&Utc)))
}

/// The summary a console arriving at `now` opens with: the span since this user's
/// consoles were last seen, when that is more than [`AWAY_AFTER`] ago (pure over the
/// connection; the caller records the arrival).
pub fn summary_on_arrival(
    conn: &Connection,
    uid: u32,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<AwaySummary>> {
    let Some(left) = last_seen(conn, uid)? else {
        return Ok(None);
    };
    let away = (now - left).to_std().unwrap_or_default();
    if away <= AWAY_AFTER {
        return Ok(None);
    }
    query::away_summary(conn, left, now).map(Some)
}

/// Record that this user's console is here at `now`.
pub fn mark(conn: &Connection, uid: u32, now: DateTime<Utc>) -> rusqlite::Result<()> {
    query::set_meta(conn, &key(uid), &now.to_rfc3339())
}

/// A console arrives (blocking): the summary of the span it was away, if long enough, and
/// its arrival recorded. No store: nothing to say.
pub fn arrive(path: &Path, uid: u32, now: DateTime<Utc>) -> Result<Option<AwaySummary>, String> {
    let Some(conn) = open_rw(path)? else {
        return Ok(None);
    };
    let summary = summary_on_arrival(&conn, uid, now).map_err(|e| e.to_string())?;
    mark(&conn, uid, now).map_err(|e| e.to_string())?;
    Ok(summary)
}

/// A console is still here, or leaves cleanly (blocking).
pub fn here(path: &Path, uid: u32, now: DateTime<Utc>) -> Result<(), String> {
    match open_rw(path)? {
        Some(conn) => mark(&conn, uid, now).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_away_more_than_ten_minutes_gets_the_summary_of_that_span() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("history.db");
        // No store: nothing, and no store is made.
        assert_eq!(arrive(&path, 1000, Utc::now()).unwrap(), None);
        assert!(!path.exists());
        let o = schema::open(&path).unwrap();
        let t0 = DateTime::parse_from_rfc3339("2026-12-05T02:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // First arrival: never seen, no summary.
        assert_eq!(arrive(&path, 1000, t0).unwrap(), None);
        assert_eq!(last_seen(&o.conn, 1000).unwrap(), Some(t0));
        // Seen every minute while it runs: back after 9 minutes is no summary.
        here(&path, 1000, t0 + chrono::Duration::minutes(5)).unwrap();
        let back = t0 + chrono::Duration::minutes(14);
        assert_eq!(arrive(&path, 1000, back).unwrap(), None);
        // An incident while away, then back after 6 hours.
        o.conn
            .execute(
                "INSERT INTO incidents (id, opened_ms, last_ms, level, title, frames)
                 VALUES (7, ?1, ?1, 2, 'Pan smoking', 3)",
                [(back + chrono::Duration::hours(1)).timestamp_millis()],
            )
            .unwrap();
        let later = back + chrono::Duration::hours(6);
        let s = arrive(&path, 1000, later).unwrap().expect("a summary");
        assert_eq!((s.from, s.until), (back, later));
        assert_eq!(s.incidents.len(), 1);
        assert_eq!(s.incidents[0].title, "Pan smoking");
        // Another user has their own clock.
        assert_eq!(arrive(&path, 1001, later).unwrap(), None);
        assert_eq!(last_seen(&o.conn, 1000).unwrap(), Some(later));
    }
}
