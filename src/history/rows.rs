//! What each engine event becomes in the store: one upsert per frame row (the answer, then
//! its escalation and verdict fill in the same row), incidents, alerts, notes and offline
//! spans. Shared by the live writer and `history import` (the session log has the same
//! events), so both store the same rows; the unique keys make a second import a no-op.
//! Model text is stored cleaned for the screen (`sanitize::for_screen`) and bounded.

use crate::event::{Event, Health, Role};
use crate::policy::Reason;
use crate::reading::sanitize::for_screen;
use chrono::{DateTime, Utc};
use rusqlite::{params, Transaction};

/// Answers and messages are kept to this many characters.
const MAX_TEXT: usize = 4000;

/// Which run an event came from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub session: String,
    pub device: String,
}

/// What the writer remembers between events: the open offline span of each model.
#[derive(Debug, Default)]
pub struct Spans {
    student: Option<i64>,
    teacher: Option<i64>,
}

impl Spans {
    fn slot(&mut self, role: Role) -> &mut Option<i64> {
        match role {
            Role::Student => &mut self.student,
            Role::Teacher => &mut self.teacher,
        }
    }
}

pub fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The triggers of an escalation as ` kind kind ` (spaces around each, so a filter can
/// match one with `LIKE '% kind %'`).
pub fn triggers(reasons: &[Reason]) -> String {
    let mut s = String::from(" ");
    for r in reasons {
        if let Ok(serde_json::Value::Object(o)) = serde_json::to_value(r) {
            if let Some(k) = o.get("kind").and_then(|k| k.as_str()) {
                s.push_str(k);
                s.push(' ');
            }
        }
    }
    s
}

fn reasons_text(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|r| for_screen(&r.to_string(), 300))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Store one event seen at `at`. Events that are not history (tokens, load states) are
/// skipped.
pub fn apply(
    tx: &Transaction<'_>,
    origin: &Origin,
    at: DateTime<Utc>,
    ev: &Event,
    spans: &mut Spans,
) -> rusqlite::Result<()> {
    let s = &origin.session;
    let dev = &origin.device;
    match ev {
        Event::FrameTaken {
            seq,
            captured_at,
            label,
            width,
            height,
            dhash,
            ..
        } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, label, width, height, dhash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (session, seq) DO UPDATE SET label = excluded.label,
                   width = excluded.width, height = excluded.height, dhash = excluded.dhash",
            )?
            .execute(params![
                s,
                *seq as i64,
                dev,
                ms(*captured_at),
                for_screen(label, 300),
                width,
                height,
                dhash
            ])?;
        }
        Event::StudentAnswer {
            seq,
            at: answered,
            answer,
            confidence,
            measured_confidence,
            latency_ms,
            reasons,
            skill,
        } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, answer, confidence, measured,
                   latency_ms, skill, answer_reasons)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (session, seq) DO UPDATE SET answer = excluded.answer,
                   confidence = excluded.confidence, measured = excluded.measured,
                   latency_ms = excluded.latency_ms, skill = excluded.skill,
                   answer_reasons = excluded.answer_reasons",
            )?
            .execute(params![
                s,
                *seq as i64,
                dev,
                ms(*answered),
                for_screen(answer, MAX_TEXT),
                confidence.map(f64::from),
                measured_confidence.map(f64::from),
                *latency_ms as i64,
                for_screen(skill, 300),
                reasons_text(reasons),
            ])?;
        }
        Event::StudentFailed { seq, error } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, failed) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session, seq) DO UPDATE SET failed = excluded.failed",
            )?
            .execute(params![s, *seq as i64, dev, ms(at), for_screen(error, 1000)])?;
        }
        Event::Escalated {
            seq,
            reasons,
            frame_path,
            ..
        } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, escalated_ms, triggers,
                   escalate_reasons, frame_path)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7)
                 ON CONFLICT (session, seq) DO UPDATE SET escalated_ms = excluded.escalated_ms,
                   triggers = excluded.triggers, escalate_reasons = excluded.escalate_reasons,
                   frame_path = excluded.frame_path",
            )?
            .execute(params![
                s,
                *seq as i64,
                dev,
                ms(at),
                triggers(reasons),
                reasons_text(reasons),
                frame_path
                    .as_ref()
                    .map(|p| p.to_string_lossy().into_owned()),
            ])?;
        }
        Event::TeacherVerdict { seq, verdict, .. } => {
            let level = crate::roles::verdict::level(verdict);
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, verdict_ms, verdict, agrees,
                   safety, level, title, summary)
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (session, seq) DO UPDATE SET verdict_ms = excluded.verdict_ms,
                   verdict = excluded.verdict, agrees = excluded.agrees,
                   safety = excluded.safety, level = excluded.level, title = excluded.title,
                   summary = excluded.summary",
            )?
            .execute(params![
                s,
                *seq as i64,
                dev,
                ms(at),
                serde_json::to_string(verdict).unwrap_or_default(),
                verdict.agrees,
                verdict.safety_relevant,
                level,
                for_screen(&verdict.title, 60),
                for_screen(verdict.raw.as_deref().unwrap_or(&verdict.summary), MAX_TEXT),
            ])?;
        }
        Event::TeacherFailed { seq, error } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, teacher_error)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session, seq) DO UPDATE SET teacher_error = excluded.teacher_error",
            )?
            .execute(params![
                s,
                *seq as i64,
                dev,
                ms(at),
                for_screen(error, 1000)
            ])?;
        }
        Event::Incident(inc) => {
            tx.prepare_cached(
                "INSERT INTO incidents (id, device, opened_ms, last_ms, closed_ms, level, title,
                   frames, key_session, key_seq, acked_ms, acked_by)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT (id) DO UPDATE SET last_ms = excluded.last_ms,
                   closed_ms = excluded.closed_ms, level = excluded.level,
                   title = excluded.title, frames = excluded.frames,
                   key_session = excluded.key_session, key_seq = excluded.key_seq,
                   acked_ms = excluded.acked_ms, acked_by = excluded.acked_by",
            )?
            .execute(params![
                inc.id as i64,
                dev,
                ms(inc.opened_at),
                ms(inc.last_at),
                inc.closed_at.map(ms),
                inc.level,
                for_screen(&inc.title, 60),
                inc.frames as i64,
                inc.key_seq.map(|_| s.clone()),
                inc.key_seq.map(|k| k as i64),
                inc.acked_at.map(ms),
                inc.acked_by.as_deref().map(|b| for_screen(b, 100)),
            ])?;
            if let Some(seq) = inc.seq {
                tx.prepare_cached(
                    "UPDATE frames SET incident_id = ?1 WHERE session = ?2 AND seq = ?3",
                )?
                .execute(params![inc.id as i64, s, seq as i64])?;
            }
        }
        Event::Notified {
            seq,
            via,
            suppressed,
            incident,
            change,
        } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO alerts (at_ms, session, seq, incident_id, change, via,
                   suppressed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                ms(at),
                s,
                *seq as i64,
                incident.map(|i| i as i64),
                change,
                via.join(","),
                *suppressed as i64
            ])?;
        }
        Event::Health { role, health } => {
            let open = spans.slot(*role);
            match health {
                Health::Offline { reason, .. } if open.is_none() => {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO offline (role, session, from_ms, reason)
                         VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        role.to_string(),
                        s,
                        ms(at),
                        for_screen(reason, 500)
                    ])?;
                    *open = Some(tx.last_insert_rowid());
                }
                Health::Ok { .. } | Health::Slow { .. } => {
                    if let Some(id) = open.take() {
                        close_span(tx, id, at)?;
                    }
                }
                _ => {}
            }
        }
        Event::Started {
            student,
            teacher,
            source,
            skill,
            ..
        } => note(
            tx,
            s,
            at,
            "started",
            None,
            &format!(
                "started: student {student}, teacher {teacher}, source {source}, skill {skill}"
            ),
        )?,
        Event::Stopped {
            frames_answered, ..
        } => {
            for role in [Role::Student, Role::Teacher] {
                if let Some(id) = spans.slot(role).take() {
                    close_span(tx, id, at)?;
                }
            }
            note(
                tx,
                s,
                at,
                "stopped",
                None,
                &format!("stopped after {frames_answered} answers"),
            )?
        }
        Event::SkillLoaded { name, chars } => note(
            tx,
            s,
            at,
            "skill",
            None,
            &format!("skill changed: {name} ({chars} chars)"),
        )?,
        Event::StudentRefused { reason, hint } => {
            note(tx, s, at, "refused", None, &format!("{reason} — {hint}"))?
        }
        Event::TeacherDropped { seq, reasons } => note(
            tx,
            s,
            at,
            "dropped",
            Some(*seq),
            &format!(
                "teacher queue full, escalation dropped ({})",
                reasons_text(reasons)
            ),
        )?,
        Event::Paused { paused } => note(
            tx,
            s,
            at,
            "paused",
            None,
            if *paused {
                "capture paused"
            } else {
                "capture resumed"
            },
        )?,
        Event::Warning { message } => note(tx, s, at, "warning", None, message)?,
        // A watch that changed state is a notable entry of its own.
        Event::Watches(w) => {
            for c in &w.changes {
                note(
                    tx,
                    s,
                    at,
                    "watch",
                    Some(c.seq),
                    &crate::watch::change_line(c),
                )?;
            }
        }
        // A frame the student could not be asked about (offline, loading, refused).
        Event::FrameUnanswered { seq, why } => {
            tx.prepare_cached(
                "INSERT INTO frames (session, seq, device, at_ms, failed) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session, seq) DO UPDATE SET failed = excluded.failed",
            )?
            .execute(params![s, *seq as i64, dev, ms(at), for_screen(why, 1000)])?;
        }
        Event::TeacherAlone { on, every_secs } => note(
            tx,
            s,
            at,
            "teacher_alone",
            None,
            &if *on {
                format!("the student is down: the teacher watches alone, one frame every {every_secs} s")
            } else {
                "the teacher no longer watches alone".to_string()
            },
        )?,
        Event::EscalationRefused { .. } => {}
        Event::FrameUnchanged { .. }
        | Event::StudentToken { .. }
        | Event::TeacherStarted { .. }
        | Event::ModelLoad { .. }
        | Event::WarmUp { .. } => {}
    }
    Ok(())
}

fn close_span(tx: &Transaction<'_>, id: i64, at: DateTime<Utc>) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE offline SET until_ms = ?2 WHERE id = ?1 AND until_ms IS NULL")?
        .execute(params![id, ms(at)])?;
    Ok(())
}

fn note(
    tx: &Transaction<'_>,
    session: &str,
    at: DateTime<Utc>,
    kind: &str,
    seq: Option<u64>,
    text: &str,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO notes (at_ms, session, kind, seq, text) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        ms(at),
        session,
        kind,
        seq.map(|q| q as i64),
        for_screen(text, 1000)
    ])?;
    Ok(())
}
