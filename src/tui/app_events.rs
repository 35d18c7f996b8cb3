//! How engine events change the console's state (pure): the roles' panes, the log, the
//! notices, incidents, watches and skill changes.

use crate::event::Event;
use crate::tui::app::App;
use crate::tui::screens::monitor::{TeacherState, MAX_ANSWER_CHARS};
use std::time::Instant;

impl App {
    /// Take one engine event. Pure: every change of the console's state from the engine
    /// comes through here.
    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::Started {
                student,
                teacher,
                source,
                skill,
                ..
            } => {
                self.student.set_name(student);
                self.teacher.set_name(teacher);
                self.source = source;
                self.skill = skill;
            }
            Event::FrameUnchanged {
                unchanged_total, ..
            } => self.unchanged = unchanged_total,
            Event::FrameTaken {
                seq,
                captured_at,
                label,
                width,
                height,
                jpeg_bytes,
                superseded,
                image,
                ..
            } => {
                self.frames_seen += 1;
                self.superseded += superseded;
                if let Some(e) = self.monitor.entry_for(seq) {
                    e.captured_at = captured_at;
                    e.label = label;
                    e.width = width;
                    e.height = height;
                    e.jpeg_bytes = jpeg_bytes;
                    if image.is_some() {
                        e.frame = image;
                    }
                }
            }
            Event::StudentToken { seq, text } => self.monitor.add_token(seq, &text),
            Event::StudentAnswer {
                seq,
                at,
                answer,
                confidence,
                measured_confidence,
                latency_ms,
                reasons,
                skill,
            } => {
                self.answers += 1;
                // At the answer's own time: a snapshot replays old answers at attach.
                let age = (chrono::Utc::now() - at).to_std().unwrap_or_default();
                let when = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                self.recent.record(when, &reasons);
                if self.upskill.running() {
                    self.upskill.live_answer(seq, &reasons);
                }
                self.student.record_latency(latency_ms);
                if let Some(e) = self.monitor.entry_for(seq) {
                    e.answer = answer.chars().take(MAX_ANSWER_CHARS).collect();
                    e.answered = true;
                    e.confidence = confidence;
                    e.measured = measured_confidence;
                    e.latency_ms = Some(latency_ms);
                    e.reasons = reasons;
                    e.skill = Some(skill);
                }
            }
            Event::StudentFailed { seq, error } => {
                if let Some(e) = self.monitor.entry_for(seq) {
                    e.failed = Some(error);
                }
            }
            Event::FrameUnanswered { seq, why } => {
                if let Some(e) = self.monitor.entry_for(seq) {
                    e.unanswered = Some(why);
                }
            }
            Event::TeacherAlone { on, every_secs } => {
                self.teacher_alone = on.then_some(every_secs);
            }
            Event::StudentRefused { reason, hint } => {
                // The status line shows the student's health (offline with this reason);
                // the notice says that monitoring did not start.
                self.notify(
                    format!(
                        "student not started: {}",
                        crate::model::error::with_hint(&reason, &hint)
                    ),
                    true,
                );
            }
            Event::Escalated {
                seq,
                reasons,
                queue_len,
                ..
            } => {
                self.escalations += 1;
                self.teacher_queue = queue_len;
                if let Some(e) = self.monitor.existing(seq) {
                    if !reasons.is_empty() {
                        e.reasons = reasons;
                    }
                    e.teacher = TeacherState::Queued {
                        pos: queue_len.max(1),
                    };
                }
            }
            Event::TeacherDropped { seq, .. } => {
                if let Some(e) = self.monitor.existing(seq) {
                    e.teacher = TeacherState::Dropped;
                }
            }
            Event::EscalationRefused { seq, why, refused } => self.notify(
                format!("#{seq} escalation refused: {why} ({refused} refused so far)"),
                true,
            ),
            Event::TeacherStarted { seq, queue_len } => {
                self.teacher_queue = queue_len;
                self.reviewing = Some(seq);
                self.monitor.queue_advanced();
                if let Some(e) = self.monitor.existing(seq) {
                    e.teacher = TeacherState::Reviewing;
                }
            }
            Event::TeacherVerdict {
                seq,
                verdict,
                latency_ms,
            } => {
                if self.reviewing == Some(seq) {
                    self.reviewing = None;
                }
                self.teacher.record_latency(latency_ms);
                if verdict.agrees == Some(false) {
                    self.disagreements += 1;
                }
                if let Some(e) = self.monitor.existing(seq) {
                    e.teacher = TeacherState::Verdict(verdict, latency_ms);
                }
            }
            Event::TeacherFailed { seq, error } => {
                if self.reviewing == Some(seq) {
                    self.reviewing = None;
                }
                if let Some(e) = self.monitor.existing(seq) {
                    e.teacher = TeacherState::Failed(error);
                }
            }
            Event::Health { role, health } => self.role_mut(role).health = health,
            Event::ModelLoad { role, state, .. } => self.role_mut(role).load = state,
            Event::WarmUp { .. } => {}
            Event::Paused { paused } => self.paused = paused,
            Event::SkillLoaded { name, chars } => {
                self.notify(format!("skill loaded: {name} ({chars} chars)"), false);
                self.skill = name;
            }
            Event::Warning { message } => self.notify(message, true),
            Event::Notified { seq, via, .. } => self.notify(
                format!("#{seq}: safety alert sent via {}", via.join(" and ")),
                false,
            ),
            Event::Incident(i) => {
                use crate::event::IncidentChange as C;
                self.history.incident_changed(&i);
                let title = crate::reading::sanitize::for_screen(&i.title, 60);
                let text = match i.change {
                    C::Open => format!(
                        "incident #{} opened (level {}): {title} · k acknowledges",
                        i.id, i.level
                    ),
                    C::Raise => format!("incident #{} rose to level {}: {title}", i.id, i.level),
                    C::Close => format!("incident #{} closed: {title}", i.id),
                    C::Ack => format!("incident #{} acknowledged", i.id),
                    C::Join => return,
                };
                self.notify(text, matches!(i.change, C::Open | C::Raise));
            }
            Event::Watches(w) => {
                for c in &w.changes {
                    if let Some(e) = self.monitor.existing(c.seq) {
                        if e.watch_changes.len() < crate::watch::MAX_WATCHES * 2 {
                            e.watch_changes.push(c.clone());
                        }
                    }
                    self.notify(
                        crate::watch::change_line(c),
                        c.to == crate::watch::WatchState::Yes,
                    );
                }
                if let Some(p) = self.watches_popup.as_mut() {
                    p.update(&w.watches);
                }
                self.watches = w.watches;
            }
            Event::Stopped { .. } => {
                self.stopped = true;
                self.reviewing = None;
            }
        }
    }
}
