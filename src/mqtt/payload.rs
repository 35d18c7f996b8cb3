//! What goes on the wire: event lines (the session log's shape), alerts, and the retained
//! device state, built from engine events with no I/O.

use crate::event::{Event, Health, ModelLoad, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The session id the session log uses for a run that started at `at`.
pub fn session_id(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d-%H%M%S").to_string()
}

/// Does this event go to `<prefix>/D/events`? (student answers, escalations, verdicts)
pub fn is_published_event(ev: &Event) -> bool {
    matches!(
        ev,
        Event::StudentAnswer { .. }
            | Event::Escalated { .. }
            | Event::TeacherVerdict { .. }
            | Event::Incident(_)
    )
}

/// The event as its session log line (`ts`, `session`, `device` added; no image bytes, the
/// invisible characters escaped), or None for an event not published.
pub fn event_line(ev: &Event, session: &str, device: &str, now: DateTime<Utc>) -> Option<String> {
    if !is_published_event(ev) {
        return None;
    }
    let mut value = serde_json::to_value(ev).ok()?;
    let obj = value.as_object_mut()?;
    obj.insert("ts".into(), now.to_rfc3339().into());
    obj.insert("session".into(), session.into());
    obj.insert("device".into(), device.into());
    Some(crate::reading::sanitize::escape_json_invisibles(
        value.to_string(),
    ))
}

/// A model as the state topic shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelState {
    pub model: String,
    pub health: Health,
    pub load: ModelLoad,
}

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            model: String::new(),
            health: Health::Unknown,
            load: ModelLoad::Unknown,
        }
    }
}

/// The skill in use: its name, a version (the history entry it matches, else a hash of
/// its text) and the scores that entry recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SkillInfo {
    pub name: String,
    pub version: String,
    pub train_score: Option<f64>,
    pub holdout_score: Option<f64>,
}

/// Totals since the device started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Counters {
    pub frames: u64,
    pub answers: u64,
    pub escalations: u64,
    pub verdicts: u64,
    pub agreements: u64,
    pub disagreements: u64,
    pub alerts: u64,
    pub student_failures: u64,
    /// Frames shown but not asked (the student offline, loading…).
    #[serde(default)]
    pub unanswered: u64,
    pub teacher_failures: u64,
    /// Frames pushed out of the full teacher queue.
    pub teacher_dropped: u64,
    /// Forced escalations refused (one per frame, `policy.forced_per_minute`).
    pub escalations_refused: u64,
    /// Incoming messages over the size limit, skipped.
    pub oversize_skipped: u64,
    /// Events the bridge could not take (its queue was full).
    pub dropped_events: u64,
    /// Messages dropped from the buffer while the broker was away (oldest first).
    pub dropped_messages: u64,
}

/// Longest description in the state (Home Assistant keeps 255 characters of a state).
pub const STATE_TEXT_CHARS: usize = 255;

/// Longest full description in the state (Home Assistant shows it as an attribute).
pub const FULL_TEXT_CHARS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastAnswer {
    pub seq: u64,
    /// The description without the output contract's lines (confidence has its own
    /// field), one line, at most [`STATE_TEXT_CHARS`].
    pub text: String,
    /// The same, not cut at [`STATE_TEXT_CHARS`] (at most [`FULL_TEXT_CHARS`]).
    #[serde(default)]
    pub full_text: String,
    pub confidence: Option<f32>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastAlert {
    pub seq: u64,
    pub summary: String,
    pub at: DateTime<Utc>,
}

/// `<prefix>/D/state` (retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DeviceState {
    pub device: String,
    pub session: String,
    pub student: ModelState,
    pub teacher: ModelState,
    pub skill: SkillInfo,
    pub counters: Counters,
    pub paused: bool,
    pub last_answer: Option<LastAnswer>,
    pub last_alert: Option<LastAlert>,
    /// The student is down and the teacher watches alone: how, in words (None: it does
    /// not).
    #[serde(default)]
    pub teacher_alone: Option<String>,
    /// Each watch and its state (the fleet console's column).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub watches: Vec<WatchBrief>,
}

/// A watch as the device state says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchBrief {
    pub id: String,
    pub state: crate::watch::WatchState,
}

/// Text for a state field: one printable line, at most [`STATE_TEXT_CHARS`] characters.
pub fn state_text(s: &str) -> String {
    one_line(s, STATE_TEXT_CHARS)
}

/// One printable line of at most `max` characters (cut with `…`).
fn one_line(s: &str, max: usize) -> String {
    let line = crate::reading::sanitize::strip_controls(s)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if line.chars().count() <= max {
        line
    } else {
        let mut t: String = line.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

impl DeviceState {
    pub fn new(device: &str) -> Self {
        DeviceState {
            device: device.to_string(),
            ..Default::default()
        }
    }

    fn model(&mut self, role: Role) -> &mut ModelState {
        match role {
            Role::Student => &mut self.student,
            Role::Teacher => &mut self.teacher,
        }
    }

    /// Take one engine event into account; true when the state changed.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let before = self.clone();
        match ev {
            Event::Started {
                at,
                student,
                teacher,
                skill,
                ..
            } => {
                self.session = session_id(*at);
                self.student.model = student.clone();
                self.teacher.model = teacher.clone();
                self.skill.name = skill.clone();
            }
            Event::FrameTaken { .. } => self.counters.frames += 1,
            Event::StudentAnswer {
                seq,
                at,
                answer,
                confidence,
                ..
            } => {
                self.counters.answers += 1;
                let description = crate::roles::output_contract::without_contract_lines(answer);
                self.last_answer = Some(LastAnswer {
                    seq: *seq,
                    text: state_text(&description),
                    full_text: one_line(&description, FULL_TEXT_CHARS),
                    confidence: *confidence,
                    at: *at,
                });
            }
            Event::StudentFailed { .. } => self.counters.student_failures += 1,
            Event::FrameUnanswered { .. } => self.counters.unanswered += 1,
            Event::TeacherAlone { on, every_secs } => {
                self.teacher_alone = on.then(|| crate::event::teacher_alone_label(*every_secs));
            }
            Event::Escalated { .. } => self.counters.escalations += 1,
            Event::Watches(w) => {
                self.watches = w
                    .watches
                    .iter()
                    .map(|s| WatchBrief {
                        id: s.id.clone(),
                        state: s.state,
                    })
                    .collect();
            }
            Event::TeacherVerdict { verdict, .. } => {
                self.counters.verdicts += 1;
                match verdict.agrees {
                    Some(true) => self.counters.agreements += 1,
                    Some(false) => self.counters.disagreements += 1,
                    None => {}
                }
            }
            Event::TeacherFailed { .. } => self.counters.teacher_failures += 1,
            Event::TeacherDropped { .. } => self.counters.teacher_dropped += 1,
            Event::EscalationRefused { refused, .. } => {
                self.counters.escalations_refused = *refused
            }
            Event::Health { role, health } => self.model(*role).health = health.clone(),
            Event::ModelLoad { role, state, .. } => self.model(*role).load = *state,
            Event::Paused { paused } => self.paused = *paused,
            Event::SkillLoaded { name, .. } => self.skill.name = name.clone(),
            _ => {}
        }
        *self != before
    }
}

/// The alert payload: [`crate::record::notify::Alert`] made safe (one printable line per field),
/// with the frame's capture time as `at`.
pub fn alert_payload(alert: &crate::record::notify::Alert) -> String {
    let json = serde_json::to_string(&alert.cleaned()).unwrap_or_default();
    crate::reading::sanitize::escape_json_invisibles(json)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::verdict::Verdict;

    fn answer(seq: u64, text: &str) -> Event {
        Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: text.into(),
            confidence: Some(0.4),
            measured_confidence: None,
            latency_ms: 900,
            reasons: vec![],
            skill: "skill.txt".into(),
        }
    }

    #[test]
    fn event_lines_are_session_log_lines() {
        let now = Utc::now();
        let line = event_line(&answer(3, "A cat\u{2028}."), "20261202-060000", "pi", now).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "student_answer");
        assert_eq!(v["seq"], 3);
        assert_eq!(v["device"], "pi");
        assert_eq!(v["session"], "20261202-060000");
        assert!(v["ts"].is_string());
        assert!(!line.contains('\u{2028}'));
        assert!(event_line(&Event::Paused { paused: true }, "s", "pi", now).is_none());
        assert!(event_line(
            &Event::StudentToken {
                seq: 1,
                text: "x".into()
            },
            "s",
            "pi",
            now
        )
        .is_none());
    }

    #[test]
    fn state_counts_and_changes() {
        let mut s = DeviceState::new("pi");
        assert!(s.apply(&answer(1, &"word ".repeat(200))));
        assert_eq!(s.counters.answers, 1);
        let last = s.last_answer.as_ref().unwrap();
        assert_eq!(last.text.chars().count(), STATE_TEXT_CHARS);
        assert_eq!(last.full_text, "word ".repeat(200).trim_end());
        // The contract's lines are not part of the description (confidence has its field).
        s.apply(&answer(
            2,
            "Smoke over the pan.\nSafety: smoke.\nCONFIDENCE: 0.90",
        ));
        let last = s.last_answer.as_ref().unwrap();
        assert_eq!(last.text, "Smoke over the pan. Safety: smoke.");
        assert_eq!(last.full_text, last.text);
        assert!(s.apply(&Event::TeacherVerdict {
            seq: 1,
            verdict: Verdict {
                agrees: Some(false),
                ..Default::default()
            },
            latency_ms: 1
        }));
        assert_eq!((s.counters.verdicts, s.counters.disagreements), (1, 1));
        assert!(!s.apply(&Event::Warning {
            message: "x".into()
        }));
        assert!(s.apply(&Event::Health {
            role: Role::Teacher,
            health: Health::Ok { latency_ms: 5 }
        }));
        assert!(!s.apply(&Event::Health {
            role: Role::Teacher,
            health: Health::Ok { latency_ms: 5 }
        }));
        let back: DeviceState = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn state_says_when_the_teacher_watches_alone() {
        let mut s = DeviceState::new("pi");
        assert!(s.apply(&Event::FrameUnanswered {
            seq: 3,
            why: "student offline".into()
        }));
        assert_eq!(s.counters.unanswered, 1);
        assert!(s.apply(&Event::TeacherAlone {
            on: true,
            every_secs: 20
        }));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["teacher_alone"],
            "teacher watches alone, 1 frame / 20 s (student down)"
        );
        assert!(s.apply(&Event::TeacherAlone {
            on: false,
            every_secs: 20
        }));
        assert_eq!(s.teacher_alone, None);
    }
}
