//! The writer: engine events into the store off the frame path. A thread of its own (SQLite
//! calls block) fed by a bounded queue the engine never waits on; what does not fit is
//! counted. Rows go in batches, one transaction at most every second, so a `kill -9`
//! loses at most the last second. A write that fails (a full disk) pauses history: the
//! engine goes on, the pause and its reason are told once, and history resumes by itself
//! when a write works again (saying how much was lost meanwhile).

use super::retention::Retention;
use super::rows::{self, Origin, Spans};
use super::schema::{self, OpenError};
use crate::event::{Event, IncidentEvent};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Events waiting for the writer; beyond this they are dropped and counted.
pub const QUEUE: usize = 8192;
/// At most one transaction per this long.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Event(DateTime<Utc>, Box<Event>),
    /// Commit what is pending now and say so (tests, the stop).
    Flush(mpsc::Sender<()>),
    /// Run `f` on the writer's connection between batches (retention, imports).
    Run(Box<dyn FnOnce(&mut Connection) + Send>),
    /// Commit, close the store (checkpointing the WAL into it) and end.
    Stop(mpsc::Sender<()>),
}

/// What the writer has done, for a status bar and `check`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriterStatus {
    /// Events stored.
    pub written: u64,
    /// Events lost: the queue was full, or history was paused.
    pub dropped: u64,
    /// Why history is paused (a write failed), while it is.
    pub paused: Option<String>,
}

#[derive(Default)]
struct Share {
    written: AtomicU64,
    dropped: AtomicU64,
    paused: Mutex<Option<String>>,
    notices: Mutex<Vec<String>>,
}

impl Share {
    fn notice(&self, n: String) {
        let mut v = self.notices.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 100 {
            v.push(n);
        }
    }
}

/// The engine's end of the writer. Cloning shares the one writer.
#[derive(Clone)]
pub struct HistoryHandle {
    tx: SyncSender<Msg>,
    share: Arc<Share>,
    path: PathBuf,
}

/// What the store held at start that the engine carries on with.
#[derive(Debug, Default)]
pub struct Resume {
    /// Incidents still open (the tracker goes on with them).
    pub open_incidents: Vec<IncidentEvent>,
    /// Above every incident id in the store.
    pub next_incident_id: u64,
    /// Said to the user (a store moved aside).
    pub notices: Vec<String>,
}

impl HistoryHandle {
    /// Open the store at `path` (migrating it), read what the engine resumes, and start
    /// the writer thread for events of `origin`.
    pub fn start(path: &Path, origin: Origin) -> Result<(HistoryHandle, Resume), OpenError> {
        Self::start_with(path, origin, None)
    }

    /// `start`, with retention run at start and hourly in the writer thread.
    pub fn start_with(
        path: &Path,
        origin: Origin,
        retention: Option<Retention>,
    ) -> Result<(HistoryHandle, Resume), OpenError> {
        let opened = schema::open(path)?;
        let mut conn = opened.conn;
        let mut notices = opened.notices;
        let sql = |error| OpenError::Sqlite {
            path: path.to_path_buf(),
            error,
        };
        let read = |c: &Connection| -> rusqlite::Result<(Vec<IncidentEvent>, u64)> {
            Ok((
                super::query::open_incidents(c)?,
                super::query::max_incident_id(c)? + 1,
            ))
        };
        let (open_incidents, next_incident_id) = match read(&conn) {
            Ok(r) => r,
            // Unreadable where it matters now: check it whole, here.
            Err(_) => {
                let (fresh, notice) = schema::recover_if_damaged(conn, path)?;
                conn = fresh;
                notices.extend(notice);
                read(&conn).map_err(sql)?
            }
        };
        let resume = Resume {
            open_incidents,
            next_incident_id,
            notices,
        };
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let share = Arc::new(Share::default());
        std::thread::Builder::new()
            .name("history".into())
            .spawn({
                let share = share.clone();
                move || run(conn, rx, origin, share, retention)
            })
            .map_err(|error| OpenError::Io {
                path: path.to_path_buf(),
                error,
            })?;
        Ok((
            HistoryHandle {
                tx,
                share,
                path: path.to_path_buf(),
            },
            resume,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queue an event for the store; never waits. Tokens are not history.
    pub fn send(&self, ev: &Event) {
        if matches!(ev, Event::StudentToken { .. }) {
            return;
        }
        let mut ev = ev.clone();
        if let Event::FrameTaken { image, .. } = &mut ev {
            *image = None;
        }
        match self.tx.try_send(Msg::Event(Utc::now(), Box::new(ev))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.share.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Run `f` on the writer's connection, between batches; waits for it.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> T + Send + 'static,
    ) -> Option<T> {
        let (back, answer) = mpsc::channel();
        let job = Box::new(move |c: &mut Connection| {
            let _ = back.send(f(c));
        });
        self.tx.send(Msg::Run(job)).ok()?;
        answer.recv().ok()
    }

    /// Commit what is queued now and wait until it is (at most `limit`).
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Msg::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(limit).is_ok()
    }

    pub fn status(&self) -> WriterStatus {
        WriterStatus {
            written: self.share.written.load(Ordering::Relaxed),
            dropped: self.share.dropped.load(Ordering::Relaxed),
            paused: self
                .share
                .paused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// One-line messages for the user since the last call (paused, resumed, drops).
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut *self.share.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Commit what is queued and close the store (the engine's stop); later events are
    /// counted as dropped.
    pub fn stop(&self) {
        let (done, wait) = mpsc::channel();
        if self.tx.send(Msg::Stop(done)).is_ok() {
            let _ = wait.recv_timeout(Duration::from_secs(5));
        }
    }
}

/// Drops are told at most this often.
const DROP_NOTICE_EVERY: Duration = Duration::from_secs(60);

/// Retention runs this often (and at start).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Msg>,
    origin: Origin,
    share: Arc<Share>,
    retention: Option<Retention>,
) {
    let mut next_retention = Instant::now();
    // The whole-store check reads every page: here, off the engine's start.
    if let Some(path) = conn.path().map(PathBuf::from) {
        match schema::recover_if_damaged(conn, &path) {
            Ok((c, notice)) => {
                conn = c;
                if let Some(n) = notice {
                    share.notice(n);
                }
            }
            Err(e) => {
                share.notice(format!("{e}; history is off, monitoring goes on"));
                *share.paused.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some("the store could not be opened again".into());
                return;
            }
        }
    }
    let mut spans = Spans::default();
    let mut batch: Vec<(DateTime<Utc>, Box<Event>)> = Vec::new();
    let mut last_commit = Instant::now() - COMMIT_EVERY;
    let mut told_dropped = 0u64;
    let mut last_drop_notice = Instant::now() - DROP_NOTICE_EVERY;
    let mut lost_while_paused = 0u64;
    loop {
        if let Some(r) = retention
            .as_ref()
            .filter(|_| Instant::now() >= next_retention)
        {
            next_retention = Instant::now() + RETENTION_EVERY;
            match super::retention::prune(&mut conn, r, Utc::now().timestamp_millis()) {
                Ok(p) if !p.is_empty() || p.still_over => share.notice(p.describe(r)),
                Ok(_) => {}
                Err(e) => share.notice(format!("history retention failed: {e}")),
            }
        }
        let wait = if batch.is_empty() {
            if retention.is_some() {
                next_retention.saturating_duration_since(Instant::now())
            } else {
                RETENTION_EVERY
            }
        } else {
            COMMIT_EVERY.saturating_sub(last_commit.elapsed())
        };
        let mut flush = None;
        let mut ended = false;
        match rx.recv_timeout(wait) {
            Ok(Msg::Event(at, ev)) => batch.push((at, ev)),
            Ok(Msg::Flush(done)) => flush = Some(done),
            Ok(Msg::Stop(done)) => {
                flush = Some(done);
                ended = true;
            }
            Ok(Msg::Run(job)) => {
                job(&mut conn);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => ended = true,
        }
        let due = last_commit.elapsed() >= COMMIT_EVERY;
        if !batch.is_empty() && (due || flush.is_some() || ended) {
            let n = batch.len() as u64;
            match commit(&mut conn, &origin, &batch, &mut spans) {
                Ok(()) => {
                    share.written.fetch_add(n, Ordering::Relaxed);
                    let was = share
                        .paused
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take();
                    if was.is_some() {
                        share.notice(format!(
                            "history resumed ({lost_while_paused} entries lost while it was paused)"
                        ));
                        lost_while_paused = 0;
                    }
                }
                Err(e) => {
                    share.dropped.fetch_add(n, Ordering::Relaxed);
                    lost_while_paused += n;
                    let mut paused = share.paused.lock().unwrap_or_else(|e| e.into_inner());
                    if paused.is_none() {
                        let why = pause_reason(&e);
                        share.notice(format!(
                            "history paused: {why}; monitoring goes on, history resumes when a \
                             write works again"
                        ));
                        *paused = Some(why);
                    }
                }
            }
            batch.clear();
            last_commit = Instant::now();
        }
        let dropped = share.dropped.load(Ordering::Relaxed);
        if dropped > told_dropped && last_drop_notice.elapsed() >= DROP_NOTICE_EVERY {
            let paused = share
                .paused
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some();
            if !paused {
                share.notice(format!(
                    "history dropped {} entries (the writer could not keep up; {dropped} in all)",
                    dropped - told_dropped
                ));
            }
            told_dropped = dropped;
            last_drop_notice = Instant::now();
        }
        if ended {
            // Closing checkpoints the WAL into the store and removes it.
            let _ = conn.close();
            if let Some(done) = flush {
                let _ = done.send(());
            }
            return;
        }
        if let Some(done) = flush {
            let _ = done.send(());
        }
    }
}

fn commit(
    conn: &mut Connection,
    origin: &Origin,
    batch: &[(DateTime<Utc>, Box<Event>)],
    spans: &mut Spans,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    for (at, ev) in batch {
        rows::apply(&tx, origin, *at, ev, spans)?;
    }
    tx.commit()
}

/// A write error in words a user can act on.
fn pause_reason(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => "the disk is full".into(),
        Some(rusqlite::ErrorCode::ReadOnly) => "the store is read-only".into(),
        Some(rusqlite::ErrorCode::CannotOpen) | Some(rusqlite::ErrorCode::PermissionDenied) => {
            "the store cannot be written (permissions)".into()
        }
        _ => format!("a write failed: {e}"),
    }
}
