//! Opening the store: WAL, the schema version (`PRAGMA user_version`) and its forward
//! migrations, a store from a newer version refused, a file that is not a (sound) SQLite
//! database renamed aside and a fresh store started.

use chrono::Utc;
use rusqlite::Connection;
use std::path::{Path, PathBuf};

/// The schema this build writes. Each entry of `MIGRATIONS` takes the store one version up.
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[i]` takes a store from version `i` to `i + 1`. Later issues (watches,
/// fine-tune export) add a version at the end; nothing here is ever edited once shipped.
const MIGRATIONS: &[&str] = &[
    // 0 → 1: frames (one row per frame the student took: answer, escalation, verdict),
    // incidents, alerts, notes (skill changes, failures, drops, starts and stops),
    // offline spans, and a key/value table for state (the incident tracker, imports).
    r#"
    CREATE TABLE frames (
        id INTEGER PRIMARY KEY,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        device TEXT NOT NULL DEFAULT '',
        at_ms INTEGER NOT NULL,
        label TEXT,
        width INTEGER,
        height INTEGER,
        dhash TEXT,
        answer TEXT,
        confidence REAL,
        measured REAL,
        latency_ms INTEGER,
        skill TEXT,
        skill_version TEXT,
        answer_reasons TEXT,
        failed TEXT,
        escalated_ms INTEGER,
        triggers TEXT,
        escalate_reasons TEXT,
        frame_path TEXT,
        verdict_ms INTEGER,
        verdict TEXT,
        agrees INTEGER,
        safety INTEGER,
        level INTEGER,
        title TEXT,
        summary TEXT,
        teacher_error TEXT,
        incident_id INTEGER,
        UNIQUE (session, seq)
    );
    CREATE INDEX frames_at ON frames (at_ms);
    CREATE INDEX frames_incident ON frames (incident_id) WHERE incident_id IS NOT NULL;
    CREATE INDEX frames_escalated ON frames (at_ms) WHERE escalated_ms IS NOT NULL;
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        device TEXT NOT NULL DEFAULT '',
        opened_ms INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        closed_ms INTEGER,
        level INTEGER NOT NULL,
        title TEXT NOT NULL,
        frames INTEGER NOT NULL,
        key_session TEXT,
        key_seq INTEGER,
        acked_ms INTEGER,
        acked_by TEXT
    );
    CREATE INDEX incidents_opened ON incidents (opened_ms);
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        session TEXT NOT NULL,
        seq INTEGER NOT NULL,
        incident_id INTEGER,
        change TEXT,
        via TEXT NOT NULL,
        suppressed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (session, seq, at_ms)
    );
    CREATE INDEX alerts_at ON alerts (at_ms);
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        session TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER,
        text TEXT NOT NULL,
        UNIQUE (session, at_ms, kind, text)
    );
    CREATE INDEX notes_at ON notes (at_ms);
    CREATE TABLE offline (
        id INTEGER PRIMARY KEY,
        role TEXT NOT NULL,
        session TEXT NOT NULL,
        from_ms INTEGER NOT NULL,
        until_ms INTEGER,
        reason TEXT NOT NULL,
        UNIQUE (session, role, from_ms)
    );
    CREATE INDEX offline_from ON offline (from_ms);
    CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
];

/// Why the store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "history store {path} is from a newer gemmaedge-tui (schema version {found}, this one \
         reads up to {supported}); left as it is: upgrade, or set [history] path to another file"
    )]
    Newer {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("history store {path}: {error}")]
    Sqlite {
        path: PathBuf,
        error: rusqlite::Error,
    },
    #[error("history store {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

/// An open store and what the user should be told about opening it.
pub struct Opened {
    pub conn: Connection,
    pub notices: Vec<String>,
}

/// Open (or create) the store at `path` and bring it to `SCHEMA_VERSION`.
pub fn open(path: &Path) -> Result<Opened, OpenError> {
    let io = |error| OpenError::Io {
        path: path.to_path_buf(),
        error,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut notices = Vec::new();
    match try_open(path) {
        Ok(conn) => return Ok(Opened { conn, notices }),
        Err(Attempt::Refuse(e)) => return Err(e),
        Err(Attempt::Unreadable(why)) => {
            let aside = set_aside(path).map_err(io)?;
            notices.push(format!(
                "history store {} could not be read ({why}): moved aside to {}, a fresh store \
                 was started",
                path.display(),
                aside.display()
            ));
        }
    }
    match try_open(path) {
        Ok(conn) => Ok(Opened { conn, notices }),
        Err(Attempt::Refuse(e)) => Err(e),
        Err(Attempt::Unreadable(why)) => Err(OpenError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::other(why),
        }),
    }
}

/// `quick_check` the store (it reads every page: seconds for a big store on an SD card,
/// so the writer runs it in its own thread after start). A damaged store is closed, moved
/// aside and a fresh one opened in its place; the notice says so.
pub fn recover_if_damaged(
    conn: Connection,
    path: &Path,
) -> Result<(Connection, Option<String>), OpenError> {
    let ok = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get::<_, String>(0))
        .unwrap_or_else(|e| e.to_string());
    if ok == "ok" {
        return Ok((conn, None));
    }
    drop(conn);
    let aside = set_aside(path).map_err(|error| OpenError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let fresh = open(path)?;
    Ok((
        fresh.conn,
        Some(format!(
            "history store {} is damaged (integrity check: {ok}): moved aside to {}, a fresh \
             store was started",
            path.display(),
            aside.display()
        )),
    ))
}

/// Open the store and check it whole (`history import`, tests): `open`, then
/// `recover_if_damaged`.
pub fn open_checked(path: &Path) -> Result<Opened, OpenError> {
    let mut o = open(path)?;
    let (conn, notice) = recover_if_damaged(o.conn, path)?;
    o.conn = conn;
    o.notices.extend(notice);
    Ok(o)
}

/// Open the store read-only for queries (the `history` command); never migrates.
pub fn open_read(path: &Path) -> Result<Connection, OpenError> {
    let sql = |error| OpenError::Sqlite {
        path: path.to_path_buf(),
        error,
    };
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql)?;
    if v > SCHEMA_VERSION {
        return Err(OpenError::Newer {
            path: path.to_path_buf(),
            found: v,
            supported: SCHEMA_VERSION,
        });
    }
    if v < SCHEMA_VERSION {
        return Err(OpenError::Io {
            path: path.to_path_buf(),
            error: std::io::Error::other(format!(
                "schema version {v} is older than this build's {SCHEMA_VERSION}: start the \
                 engine once (it migrates the store), then ask again"
            )),
        });
    }
    Ok(conn)
}

enum Attempt {
    Refuse(OpenError),
    Unreadable(String),
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

fn try_open(path: &Path) -> Result<Connection, Attempt> {
    // A file that does not start like a database is not one, whatever SQLite would say
    // about it later (SQLite treats an empty file as a new database, which is fine).
    if let Ok(mut f) = std::fs::File::open(path) {
        use std::io::Read;
        let mut head = [0u8; 16];
        let n = f.read(&mut head).unwrap_or(0);
        if n > 0 && (n < 16 || &head != SQLITE_MAGIC) {
            return Err(Attempt::Unreadable("not an SQLite database".into()));
        }
    }
    let unreadable = |e: rusqlite::Error| Attempt::Unreadable(e.to_string());
    let conn = Connection::open(path).map_err(unreadable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(unreadable)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(unreadable)?;
    if version > SCHEMA_VERSION {
        return Err(Attempt::Refuse(OpenError::Newer {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        }));
    }
    // Reading the schema reads the first pages: a file that is not a database fails here.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })
    .map_err(unreadable)?;
    if version == 0 {
        // Before any table: lets retention give freed pages back (`incremental_vacuum`).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(unreadable)?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(unreadable)?;
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(unreadable)?;
    migrate(&conn, version).map_err(|error| {
        Attempt::Refuse(OpenError::Sqlite {
            path: path.to_path_buf(),
            error,
        })
    })?;
    Ok(conn)
}

/// Apply the migrations after `from`, each in its own transaction with its version.
fn migrate(conn: &Connection, from: i64) -> rusqlite::Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Move the file (and its WAL and shared-memory files) to `<path>.corrupt-<time>`.
fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut aside = path.as_os_str().to_owned();
    aside.push(format!(".corrupt-{stamp}"));
    let aside = PathBuf::from(aside);
    std::fs::rename(path, &aside)?;
    for ext in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(ext);
        let side = PathBuf::from(side);
        if side.exists() {
            let mut to = aside.as_os_str().to_owned();
            to.push(ext);
            std::fs::rename(&side, PathBuf::from(to))?;
        }
    }
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_store_has_the_current_version_and_wal() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/history.db");
        let o = open(&p).unwrap();
        assert!(o.notices.is_empty());
        let v: i64 = o
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = o
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let vacuum: i64 = o
            .conn
            .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
            .unwrap();
        assert_eq!(vacuum, 2, "incremental, so retention can shrink the file");
        drop(o);
        // Opening again migrates nothing and keeps rows.
        let o = open(&p).unwrap();
        o.conn
            .execute("INSERT INTO meta (key, value) VALUES ('a', 'b')", [])
            .unwrap();
        drop(o);
        let o = open(&p).unwrap();
        let n: i64 = o
            .conn
            .query_row("SELECT count(*) FROM meta", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_newer_store_is_refused_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch("CREATE TABLE x (a); PRAGMA user_version = 99;")
                .unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let err = open(&p).err().expect("refused");
        let msg = err.to_string();
        assert!(msg.contains("schema version 99"), "{msg}");
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert_eq!(std::fs::read(&p).unwrap(), before, "never rewritten");
        assert!(matches!(
            open_read(&p),
            Err(OpenError::Newer { found: 99, .. })
        ));
    }

    #[test]
    fn garbage_is_moved_aside_and_a_fresh_store_started() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.db");
        std::fs::write(&p, b"this is not a database, just text\n".repeat(200)).unwrap();
        let o = open(&p).unwrap();
        assert_eq!(o.notices.len(), 1);
        assert!(o.notices[0].contains("moved aside"), "{}", o.notices[0]);
        let aside: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("history.db.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1, "the old file is kept");
        let old = std::fs::read(d.path().join(&aside[0])).unwrap();
        assert!(old.starts_with(b"this is not a database"));
        let v: i64 = o
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, SCHEMA_VERSION);
    }

    #[test]
    fn a_damaged_database_is_moved_aside() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.db");
        {
            let o = open(&p).unwrap();
            o.conn
                .execute_batch("PRAGMA journal_mode=DELETE; CREATE TABLE big (x);")
                .unwrap();
            for i in 0..2000 {
                o.conn
                    .execute(
                        "INSERT INTO big VALUES (?1)",
                        [format!("row {i} {}", "x".repeat(50))],
                    )
                    .unwrap();
            }
        }
        // Scribble over pages after the header: the magic is intact, the b-trees are not.
        let mut bytes = std::fs::read(&p).unwrap();
        for b in bytes.iter_mut().skip(4096).take(16384) {
            *b = 0xA5;
        }
        std::fs::write(&p, &bytes).unwrap();
        let o = open_checked(&p).unwrap();
        assert_eq!(o.notices.len(), 1, "told: {:?}", o.notices);
        assert!(o.notices[0].contains("is damaged"), "{:?}", o.notices);
        let n: i64 = o
            .conn
            .query_row("SELECT count(*) FROM frames", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
