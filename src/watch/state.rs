//! Each watch's state (pure): yes / no / unknown, since when, decided by the student or the
//! teacher.
//!
//! The student's answers change a state only after `debounce` frames in a row say the new
//! value (an `unsure` breaks the row). Such a change, or an `unsure`, is the trigger the
//! policy turns into an escalation reason — except a first `no` out of `unknown`, which
//! needs no second opinion. The teacher's answer decides the state where the two disagree
//! and confirms it where they agree; a confirmed `yes` is what opens an incident.

use super::answer::WatchAnswer;
use super::spec::{Notify, WatchSpec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A watch's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    Yes,
    No,
    #[default]
    Unknown,
}

impl WatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            WatchState::Yes => "yes",
            WatchState::No => "no",
            WatchState::Unknown => "unknown",
        }
    }

    pub fn from_bool(b: bool) -> Self {
        if b {
            WatchState::Yes
        } else {
            WatchState::No
        }
    }
}

/// Who decided a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    Student,
    Teacher,
}

impl Decider {
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::Student => "student",
            Decider::Teacher => "teacher",
        }
    }
}

/// A watch as the faces show it (the strip, MQTT, the fleet console).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    pub id: String,
    pub question: String,
    pub state: WatchState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<Decider>,
    #[serde(default)]
    pub notify: Notify,
    #[serde(default = "one")]
    pub level: u8,
    #[serde(default = "two")]
    pub debounce: u32,
}

fn one() -> u8 {
    1
}

fn two() -> u32 {
    2
}

impl WatchStatus {
    /// The watch as configured (what the console's popup edits).
    pub fn spec(&self) -> WatchSpec {
        WatchSpec {
            id: self.id.clone(),
            question: self.question.clone(),
            notify: self.notify,
            level: self.level,
            debounce: self.debounce,
        }
    }
}

/// A state that changed, for the log and the alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchChange {
    pub id: String,
    pub from: WatchState,
    pub to: WatchState,
    pub by: Decider,
    /// The frame that decided it.
    pub seq: u64,
}

/// A change as a log line says it: `watch garage_door: no → yes (teacher)`.
pub fn change_line(c: &WatchChange) -> String {
    format!(
        "watch {}: {} \u{2192} {} ({})",
        c.id,
        c.from.as_str(),
        c.to.as_str(),
        c.by.as_str()
    )
}

/// What a student answer means for one watch, for the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StudentStep {
    /// The state changed (after `debounce` frames): `watch: garage_door → yes`.
    Changed { id: String, to: WatchState },
    /// The student could not say: `watch: garage_door unsure`.
    Unsure { id: String },
}

/// What a teacher verdict did to the watches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TeacherOutcome {
    /// States the teacher changed (overruled the student, or decided an unknown).
    pub changes: Vec<WatchChange>,
    /// The watches the teacher answered `yes` for (confirmed yes), with their spec.
    pub confirmed_yes: Vec<WatchSpec>,
}

#[derive(Debug, Clone)]
struct Entry {
    spec: WatchSpec,
    state: WatchState,
    since: Option<DateTime<Utc>>,
    by: Option<Decider>,
    /// A different answer and how many frames in a row said it.
    pending: Option<(WatchState, u32)>,
}

impl Entry {
    fn new(spec: WatchSpec) -> Self {
        Entry {
            spec,
            state: WatchState::Unknown,
            since: None,
            by: None,
            pending: None,
        }
    }
}

/// Every watch's state.
#[derive(Debug, Clone, Default)]
pub struct WatchBoard {
    entries: Vec<Entry>,
}

impl WatchBoard {
    pub fn new(specs: &[WatchSpec]) -> Self {
        WatchBoard {
            entries: specs.iter().cloned().map(Entry::new).collect(),
        }
    }

    /// A new list of watches: a watch that stays (same id) keeps its state; a new one
    /// starts unknown. Returns the ids removed.
    pub fn set_specs(&mut self, specs: &[WatchSpec]) -> Vec<String> {
        let mut old = std::mem::take(&mut self.entries);
        for spec in specs {
            let entry = match old.iter().position(|e| e.spec.id == spec.id) {
                Some(i) => {
                    let mut e = old.remove(i);
                    if e.spec.debounce != spec.debounce {
                        e.pending = None;
                    }
                    e.spec = spec.clone();
                    e
                }
                None => Entry::new(spec.clone()),
            };
            self.entries.push(entry);
        }
        old.into_iter().map(|e| e.spec.id).collect()
    }

    pub fn specs(&self) -> Vec<WatchSpec> {
        self.entries.iter().map(|e| e.spec.clone()).collect()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.spec.id.as_str()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn statuses(&self) -> Vec<WatchStatus> {
        self.entries
            .iter()
            .map(|e| WatchStatus {
                id: e.spec.id.clone(),
                question: e.spec.question.clone(),
                state: e.state,
                since: e.since,
                by: e.by,
                notify: e.spec.notify,
                level: e.spec.level,
                debounce: e.spec.debounce,
            })
            .collect()
    }

    /// The student answered frame `seq` at `at`; `answers` in the order of the watches
    /// (as `parse_watch_answers` gives them for `ids()`).
    pub fn on_student(
        &mut self,
        seq: u64,
        at: DateTime<Utc>,
        answers: &[WatchAnswer],
    ) -> (Vec<StudentStep>, Vec<WatchChange>) {
        let mut steps = Vec::new();
        let mut changes = Vec::new();
        for (e, a) in self.entries.iter_mut().zip(answers) {
            let Some(b) = a.as_bool() else {
                e.pending = None;
                steps.push(StudentStep::Unsure {
                    id: e.spec.id.clone(),
                });
                continue;
            };
            let said = WatchState::from_bool(b);
            if said == e.state {
                e.pending = None;
                continue;
            }
            let count = match e.pending {
                Some((s, n)) if s == said => n + 1,
                _ => 1,
            };
            if count < e.spec.debounce {
                e.pending = Some((said, count));
                continue;
            }
            let from = e.state;
            e.state = said;
            e.since = Some(at);
            e.by = Some(Decider::Student);
            e.pending = None;
            changes.push(WatchChange {
                id: e.spec.id.clone(),
                from,
                to: said,
                by: Decider::Student,
                seq,
            });
            // A first `no` needs no second opinion; everything else asks the teacher.
            if !(from == WatchState::Unknown && said == WatchState::No) {
                steps.push(StudentStep::Changed {
                    id: e.spec.id.clone(),
                    to: said,
                });
            }
        }
        (steps, changes)
    }

    /// The teacher's answers for frame `seq` (ids it did not answer, or that are not
    /// watched, change nothing). Its answer decides where it differs from the state.
    pub fn on_teacher(
        &mut self,
        seq: u64,
        at: DateTime<Utc>,
        answers: &BTreeMap<String, bool>,
    ) -> TeacherOutcome {
        let mut out = TeacherOutcome::default();
        for e in &mut self.entries {
            let Some(&b) = answers.get(&e.spec.id) else {
                continue;
            };
            let said = WatchState::from_bool(b);
            e.pending = None;
            if said != e.state {
                out.changes.push(WatchChange {
                    id: e.spec.id.clone(),
                    from: e.state,
                    to: said,
                    by: Decider::Teacher,
                    seq,
                });
                e.state = said;
                e.since = Some(at);
            }
            e.by = Some(Decider::Teacher);
            if b {
                out.confirmed_yes.push(e.spec.clone());
            }
        }
        out
    }

    /// The spec of watch `id`.
    pub fn spec(&self, id: &str) -> Option<&WatchSpec> {
        self.entries.iter().map(|e| &e.spec).find(|s| s.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use WatchAnswer::{No, Unsure, Yes};

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn board(debounce: u32) -> WatchBoard {
        let mut w = WatchSpec::new("garage_door", "Is the garage door open?");
        w.debounce = debounce;
        WatchBoard::new(&[w])
    }

    fn state(b: &WatchBoard) -> (WatchState, Option<Decider>) {
        let s = &b.statuses()[0];
        (s.state, s.by)
    }

    #[test]
    fn a_watch_flips_after_debounce_frames_not_before() {
        let mut b = board(3);
        // Two `no`s (debounce 3): still unknown; the third decides, quietly.
        assert_eq!(b.on_student(1, t(1), &[No]), (vec![], vec![]));
        assert_eq!(b.on_student(2, t(2), &[No]), (vec![], vec![]));
        let (steps, changes) = b.on_student(3, t(3), &[No]);
        assert!(steps.is_empty(), "a first no asks nobody: {steps:?}");
        assert_eq!(changes[0].to, WatchState::No);
        assert_eq!(state(&b), (WatchState::No, Some(Decider::Student)));
        // Two `yes`, then one `no` breaks the row: nothing.
        b.on_student(4, t(4), &[Yes]);
        b.on_student(5, t(5), &[Yes]);
        b.on_student(6, t(6), &[No]);
        b.on_student(7, t(7), &[Yes]);
        let (steps, _) = b.on_student(8, t(8), &[Yes]);
        assert!(steps.is_empty(), "{steps:?}");
        assert_eq!(state(&b).0, WatchState::No);
        // The third `yes` in a row flips it and asks the teacher.
        let (steps, changes) = b.on_student(9, t(9), &[Yes]);
        assert_eq!(
            steps,
            vec![StudentStep::Changed {
                id: "garage_door".into(),
                to: WatchState::Yes
            }]
        );
        assert_eq!(changes[0].from, WatchState::No);
        assert_eq!(changes[0].seq, 9);
        assert_eq!(b.statuses()[0].since, Some(t(9)));
    }

    #[test]
    fn unsure_asks_the_teacher_and_breaks_the_row() {
        let mut b = board(2);
        b.on_student(1, t(1), &[Yes]);
        let (steps, changes) = b.on_student(2, t(2), &[Unsure]);
        assert_eq!(
            steps,
            vec![StudentStep::Unsure {
                id: "garage_door".into()
            }]
        );
        assert!(changes.is_empty());
        let (_, changes) = b.on_student(3, t(3), &[Yes]);
        assert!(changes.is_empty(), "the unsure broke the row");
        assert_eq!(state(&b).0, WatchState::Unknown);
    }

    #[test]
    fn the_teacher_overrules_the_student_and_confirms_it() {
        let mut b = board(1);
        b.on_student(1, t(1), &[Yes]);
        assert_eq!(state(&b), (WatchState::Yes, Some(Decider::Student)));
        let answers = BTreeMap::from([("garage_door".to_string(), false)]);
        let out = b.on_teacher(1, t(2), &answers);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.changes[0].from, WatchState::Yes);
        assert_eq!(out.changes[0].by, Decider::Teacher);
        assert!(out.confirmed_yes.is_empty());
        assert_eq!(state(&b), (WatchState::No, Some(Decider::Teacher)));
        // Agreement confirms without a change; a yes is a confirmed yes.
        b.on_student(2, t(3), &[Yes]);
        let yes = BTreeMap::from([("garage_door".to_string(), true)]);
        let out = b.on_teacher(2, t(4), &yes);
        assert!(out.changes.is_empty());
        assert_eq!(out.confirmed_yes[0].id, "garage_door");
        assert_eq!(state(&b), (WatchState::Yes, Some(Decider::Teacher)));
        // An id nobody watches changes nothing.
        let other = BTreeMap::from([("stove".to_string(), true)]);
        assert_eq!(b.on_teacher(3, t(5), &other), TeacherOutcome::default());
    }

    #[test]
    fn a_new_list_keeps_the_state_of_the_watches_that_stay() {
        let mut b = board(1);
        b.on_student(1, t(1), &[Yes]);
        let removed = b.set_specs(&[
            WatchSpec::new("stove_on", "Is the stove on?"),
            WatchSpec::new("garage_door", "Is the garage door still open?"),
        ]);
        assert!(removed.is_empty());
        let s = b.statuses();
        assert_eq!(s[0].state, WatchState::Unknown);
        assert_eq!(s[1].state, WatchState::Yes);
        assert_eq!(s[1].question, "Is the garage door still open?");
        assert_eq!(b.set_specs(&[]), vec!["stove_on", "garage_door"]);
    }
}
