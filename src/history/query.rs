//! Reading the store: what the history screen, `history` from a shell and the service's
//! paged socket queries ask. Filters (time span, incidents only, trigger, teacher
//! disagreed, level ≥ N, text), newest first, keyset paging; one incident with its frames;
//! the "while you were away" summary. Every value is a bound parameter: search text is
//! data, never SQL.

use crate::event::{IncidentChange, IncidentEvent};
use crate::roles::verdict::Verdict;
use chrono::{DateTime, Utc};
use rusqlite::{params_from_iter, types::Value, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

/// What to list. The default lists everything, newest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Incidents only.
    pub incidents_only: bool,
    /// Leave out plain answers: only escalations, failures, verdicts, incidents, notes and
    /// offline spans.
    pub notable_only: bool,
    /// Frames escalated for this trigger (a reason kind: `safety`, `low_confidence`,
    /// `no_confidence`, `audit`, `forced`, `echoes_prompt`, `cut`).
    pub trigger: Option<String>,
    /// Frames the teacher disagreed with.
    pub disagreed: bool,
    /// Frames and incidents of at least this level.
    pub min_level: Option<u8>,
    /// Text in answers, verdicts, titles, reasons and notes (case-insensitive for ASCII).
    pub text: Option<String>,
}

/// Where a page starts: items strictly older than this one (from [`Item::cursor`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub at_ms: i64,
    pub rank: u8,
    pub id: i64,
}

/// A frame the student took: its answer, escalation and verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameRow {
    pub id: i64,
    pub session: String,
    pub seq: u64,
    pub device: String,
    pub at: DateTime<Utc>,
    pub label: Option<String>,
    pub dhash: Option<String>,
    pub answer: Option<String>,
    pub confidence: Option<f64>,
    pub measured: Option<f64>,
    pub skill: Option<String>,
    pub failed: Option<String>,
    pub escalated: bool,
    /// Reason kinds (`safety`, `low_confidence`, …).
    pub triggers: Vec<String>,
    /// The reasons in words.
    pub reasons: Option<String>,
    pub frame_path: Option<String>,
    pub verdict: Option<Verdict>,
    pub agrees: Option<bool>,
    pub level: Option<u8>,
    pub title: Option<String>,
    pub teacher_error: Option<String>,
    pub incident_id: Option<u64>,
}

/// A note: a skill change, a start or stop, a dropped escalation, a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoteRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub seq: Option<u64>,
    pub text: String,
}

/// A span a model was offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfflineRow {
    pub id: i64,
    pub role: String,
    pub from: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
    pub reason: String,
}

/// One line of history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "item", rename_all = "snake_case")]
pub enum Item {
    Incident(IncidentEvent),
    Frame(Box<FrameRow>),
    Note(NoteRow),
    Offline(OfflineRow),
}

impl Item {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Item::Incident(i) => i.opened_at,
            Item::Frame(f) => f.at,
            Item::Note(n) => n.at,
            Item::Offline(o) => o.from,
        }
    }

    /// The cursor for the next (older) page after this item.
    pub fn cursor(&self) -> Cursor {
        let (rank, id) = match self {
            Item::Incident(i) => (3, i.id as i64),
            Item::Frame(f) => (2, f.id),
            Item::Note(n) => (1, n.id),
            Item::Offline(o) => (0, o.id),
        };
        Cursor {
            at_ms: self.at().timestamp_millis(),
            rank,
            id,
        }
    }
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// `%`, `_` and `\` in search text match themselves.
fn like_pattern(text: &str) -> String {
    let mut p = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Builds one table's WHERE clause with bound values.
struct Where {
    clauses: Vec<String>,
    values: Vec<Value>,
}

impl Where {
    fn new() -> Self {
        Where {
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    fn push(&mut self, clause: &str, values: impl IntoIterator<Item = Value>) {
        // Each `?` in `clause` becomes the number of the value it binds.
        let mut values = values.into_iter();
        let mut parts = clause.split('?');
        let mut c = parts.next().unwrap_or_default().to_string();
        for part in parts {
            if let Some(v) = values.next() {
                self.values.push(v);
            }
            c.push_str(&format!("?{}", self.values.len()));
            c.push_str(part);
        }
        self.clauses.push(c);
    }

    fn span(&mut self, col: &str, f: &Filter, cursor: Option<Cursor>, rank: u8) {
        if let Some(s) = f.since {
            self.push(
                &format!("{col} >= ?"),
                [Value::Integer(s.timestamp_millis())],
            );
        }
        if let Some(u) = f.until {
            self.push(
                &format!("{col} < ?"),
                [Value::Integer(u.timestamp_millis())],
            );
        }
        if let Some(c) = cursor {
            // Older than the cursor in (time, rank, id) order, newest first.
            let same_time_older = if rank < c.rank {
                "1".to_string()
            } else if rank == c.rank {
                format!("id < {}", c.id)
            } else {
                "0".to_string()
            };
            self.push(
                &format!("({col} < ? OR ({col} = ? AND {same_time_older}))"),
                [Value::Integer(c.at_ms), Value::Integer(c.at_ms)],
            );
        }
    }

    fn text(&mut self, cols: &[&str], f: &Filter) {
        if let Some(t) = f.text.as_deref().filter(|t| !t.trim().is_empty()) {
            let any = cols
                .iter()
                .map(|c| format!("{c} LIKE ? ESCAPE '\\'"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let pat = like_pattern(t.trim());
            self.push(
                &format!("({any})"),
                cols.iter().map(|_| Value::Text(pat.clone())),
            );
        }
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

const FRAME_COLS: &str = "id, session, seq, device, at_ms, label, dhash, answer, confidence, \
    measured, skill, failed, escalated_ms, triggers, escalate_reasons, frame_path, verdict, \
    agrees, level, title, teacher_error, incident_id";

fn frame_row(r: &Row<'_>) -> rusqlite::Result<FrameRow> {
    let triggers: Option<String> = r.get(13)?;
    let verdict: Option<String> = r.get(16)?;
    Ok(FrameRow {
        id: r.get(0)?,
        session: r.get(1)?,
        seq: r.get::<_, i64>(2)? as u64,
        device: r.get(3)?,
        at: time(r.get(4)?),
        label: r.get(5)?,
        dhash: r.get(6)?,
        answer: r.get(7)?,
        confidence: r.get(8)?,
        measured: r.get(9)?,
        skill: r.get(10)?,
        failed: r.get(11)?,
        escalated: r.get::<_, Option<i64>>(12)?.is_some(),
        triggers: triggers
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        reasons: r.get(14)?,
        frame_path: r.get(15)?,
        verdict: verdict.and_then(|v| serde_json::from_str(&v).ok()),
        agrees: r.get(17)?,
        level: r.get::<_, Option<i64>>(18)?.map(|l| l as u8),
        title: r.get(19)?,
        teacher_error: r.get(20)?,
        incident_id: r.get::<_, Option<i64>>(21)?.map(|i| i as u64),
    })
}

const INCIDENT_COLS: &str = "id, opened_ms, last_ms, closed_ms, level, title, frames, key_seq, \
    acked_ms, acked_by";

fn incident_row(r: &Row<'_>) -> rusqlite::Result<IncidentEvent> {
    let closed: Option<i64> = r.get(3)?;
    Ok(IncidentEvent {
        change: if closed.is_some() {
            IncidentChange::Close
        } else {
            IncidentChange::Open
        },
        id: r.get::<_, i64>(0)? as u64,
        seq: None,
        opened_at: time(r.get(1)?),
        last_at: time(r.get(2)?),
        closed_at: closed.map(time),
        level: r.get::<_, i64>(4)? as u8,
        title: r.get(5)?,
        frames: r.get::<_, i64>(6)? as u64,
        key_seq: r.get::<_, Option<i64>>(7)?.map(|s| s as u64),
        acked_at: r.get::<_, Option<i64>>(8)?.map(time),
        acked_by: r.get(9)?,
    })
}

/// One page of history, newest first: at most `limit` items older than `after`.
pub fn items(
    conn: &Connection,
    f: &Filter,
    after: Option<Cursor>,
    limit: usize,
) -> rusqlite::Result<Vec<Item>> {
    let limit = limit.clamp(1, 10_000);
    let mut out: Vec<Item> = Vec::new();
    let frame_filter = f.trigger.is_some() || f.disagreed;
    // Incidents.
    if !frame_filter {
        let mut w = Where::new();
        w.span("opened_ms", f, after, 3);
        if let Some(l) = f.min_level {
            w.push("level >= ?", [Value::Integer(l.into())]);
        }
        w.text(&["title"], f);
        let sql = format!(
            "SELECT {INCIDENT_COLS} FROM incidents WHERE {} ORDER BY opened_ms DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        let mut st = conn.prepare(&sql)?;
        for r in st.query_map(params_from_iter(w.values.iter()), incident_row)? {
            out.push(Item::Incident(r?));
        }
    }
    if f.incidents_only {
        return Ok(out);
    }
    // Frames.
    {
        let mut w = Where::new();
        w.span("at_ms", f, after, 2);
        if f.notable_only {
            w.push(
                "(escalated_ms IS NOT NULL OR failed IS NOT NULL OR verdict IS NOT NULL \
                 OR teacher_error IS NOT NULL)",
                [],
            );
        }
        if let Some(t) = &f.trigger {
            w.push(
                "triggers LIKE ? ESCAPE '\\'",
                [Value::Text(like_pattern(&format!(" {} ", t.trim())))],
            );
        }
        if f.disagreed {
            w.push("agrees = 0", []);
        }
        if let Some(l) = f.min_level {
            w.push("level >= ?", [Value::Integer(l.into())]);
        }
        w.text(
            &[
                "answer",
                "summary",
                "title",
                "escalate_reasons",
                "failed",
                "teacher_error",
            ],
            f,
        );
        let sql = format!(
            "SELECT {FRAME_COLS} FROM frames WHERE {} ORDER BY at_ms DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        let mut st = conn.prepare(&sql)?;
        for r in st.query_map(params_from_iter(w.values.iter()), frame_row)? {
            out.push(Item::Frame(Box::new(r?)));
        }
    }
    if !frame_filter && f.min_level.is_none() {
        let mut w = Where::new();
        w.span("at_ms", f, after, 1);
        w.push("kind NOT IN ('started', 'stopped')", []);
        w.text(&["text"], f);
        let sql = format!(
            "SELECT id, at_ms, kind, seq, text FROM notes WHERE {} ORDER BY at_ms DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(w.values.iter()), |r| {
            Ok(NoteRow {
                id: r.get(0)?,
                at: time(r.get(1)?),
                kind: r.get(2)?,
                seq: r.get::<_, Option<i64>>(3)?.map(|s| s as u64),
                text: r.get(4)?,
            })
        })?;
        for r in rows {
            out.push(Item::Note(r?));
        }
        let mut w = Where::new();
        w.span("from_ms", f, after, 0);
        w.text(&["reason"], f);
        let sql = format!(
            "SELECT id, role, from_ms, until_ms, reason FROM offline WHERE {} ORDER BY from_ms DESC, id DESC LIMIT {limit}",
            w.sql()
        );
        let mut st = conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(w.values.iter()), |r| {
            Ok(OfflineRow {
                id: r.get(0)?,
                role: r.get(1)?,
                from: time(r.get(2)?),
                until: r.get::<_, Option<i64>>(3)?.map(time),
                reason: r.get(4)?,
            })
        })?;
        for r in rows {
            out.push(Item::Offline(r?));
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.cursor()));
    out.truncate(limit);
    Ok(out)
}

impl PartialOrd for Cursor {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cursor {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at_ms, self.rank, self.id).cmp(&(other.at_ms, other.rank, other.id))
    }
}

/// One incident.
pub fn incident(conn: &Connection, id: u64) -> rusqlite::Result<Option<IncidentEvent>> {
    conn.query_row(
        &format!("SELECT {INCIDENT_COLS} FROM incidents WHERE id = ?1"),
        [id as i64],
        incident_row,
    )
    .optional()
}

/// An incident's frames, oldest first (to step through).
pub fn incident_frames(conn: &Connection, id: u64) -> rusqlite::Result<Vec<FrameRow>> {
    let mut st = conn.prepare(&format!(
        "SELECT {FRAME_COLS} FROM frames WHERE incident_id = ?1 ORDER BY at_ms, id"
    ))?;
    let rows = st.query_map([id as i64], frame_row)?;
    rows.collect()
}

/// At most `limit` of an incident's frames, oldest first, and how many it has in all.
pub fn incident_frames_bounded(
    conn: &Connection,
    id: u64,
    limit: usize,
) -> rusqlite::Result<(Vec<FrameRow>, u64)> {
    let mut st = conn.prepare(&format!(
        "SELECT {FRAME_COLS} FROM frames WHERE incident_id = ?1 ORDER BY at_ms, id LIMIT ?2"
    ))?;
    let rows = st
        .query_map([id as i64, limit as i64], frame_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let all: i64 = conn.query_row(
        "SELECT count(*) FROM frames WHERE incident_id = ?1",
        [id as i64],
        |r| r.get(0),
    )?;
    Ok((rows, all.max(0) as u64))
}

/// One frame row by its id.
pub fn frame(conn: &Connection, id: i64) -> rusqlite::Result<Option<FrameRow>> {
    conn.query_row(
        &format!("SELECT {FRAME_COLS} FROM frames WHERE id = ?1"),
        [id],
        frame_row,
    )
    .optional()
}

/// The incidents still open (the engine's tracker resumes them).
pub fn open_incidents(conn: &Connection) -> rusqlite::Result<Vec<IncidentEvent>> {
    let mut st = conn.prepare(&format!(
        "SELECT {INCIDENT_COLS} FROM incidents WHERE closed_ms IS NULL ORDER BY id"
    ))?;
    let rows = st.query_map([], incident_row)?;
    rows.collect()
}

pub fn max_incident_id(conn: &Connection) -> rusqlite::Result<u64> {
    let m: Option<i64> = conn.query_row("SELECT max(id) FROM incidents", [], |r| r.get(0))?;
    Ok(m.unwrap_or(0).max(0) as u64)
}

/// A value kept in the store (`meta`), e.g. when the last console left.
pub fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
}

pub fn set_meta(conn: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

/// What happened in a span nobody watched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AwaySummary {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Incidents opened in the span, most urgent first, then newest.
    pub incidents: Vec<IncidentEvent>,
    /// Frames answered.
    pub answers: u64,
    /// Escalations per trigger, most first.
    pub escalations: Vec<(String, u64)>,
    /// Verdicts where the teacher disagreed.
    pub disagreements: u64,
    /// Seconds each model was offline within the span.
    pub offline_secs: Vec<(String, i64)>,
    /// Skill changes.
    pub skill_changes: Vec<NoteRow>,
}

/// The "while you were away" summary of `[from, until)`.
pub fn away_summary(
    conn: &Connection,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> rusqlite::Result<AwaySummary> {
    let (a, b) = (from.timestamp_millis(), until.timestamp_millis());
    let mut s = AwaySummary {
        from,
        until,
        ..AwaySummary::default()
    };
    let mut st = conn.prepare(&format!(
        "SELECT {INCIDENT_COLS} FROM incidents WHERE opened_ms >= ?1 AND opened_ms < ?2
         ORDER BY level DESC, opened_ms DESC LIMIT 100"
    ))?;
    s.incidents = st
        .query_map([a, b], incident_row)?
        .collect::<Result<_, _>>()?;
    let (answers, disagreements): (i64, i64) = conn.query_row(
        "SELECT count(answer), count(CASE WHEN agrees = 0 THEN 1 END) FROM frames
         WHERE at_ms >= ?1 AND at_ms < ?2",
        [a, b],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    s.answers = answers as u64;
    s.disagreements = disagreements as u64;
    let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
    let mut st = conn.prepare(
        "SELECT triggers FROM frames WHERE at_ms >= ?1 AND at_ms < ?2 AND escalated_ms IS NOT NULL",
    )?;
    for t in st.query_map([a, b], |r| r.get::<_, Option<String>>(0))? {
        for k in t?.unwrap_or_default().split_whitespace() {
            *counts.entry(k.to_string()).or_default() += 1;
        }
    }
    s.escalations = counts.into_iter().collect();
    s.escalations
        .sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
    let mut st = conn.prepare(
        "SELECT role, sum(min(coalesce(until_ms, ?2), ?2) - max(from_ms, ?1)) FROM offline
         WHERE from_ms < ?2 AND coalesce(until_ms, ?2) > ?1 GROUP BY role ORDER BY role",
    )?;
    s.offline_secs = st
        .query_map([a, b], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? / 1000))
        })?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare(
        "SELECT id, at_ms, kind, seq, text FROM notes WHERE kind = 'skill' AND at_ms >= ?1
         AND at_ms < ?2 ORDER BY at_ms",
    )?;
    s.skill_changes = st
        .query_map([a, b], |r| {
            Ok(NoteRow {
                id: r.get(0)?,
                at: time(r.get(1)?),
                kind: r.get(2)?,
                seq: r.get::<_, Option<i64>>(3)?.map(|q| q as u64),
                text: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(s)
}
