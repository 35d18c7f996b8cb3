//! The upskill screen's state: `UpskillEvent`s from the pipeline and keys in, `Action`s out.
//! No terminal and no disk here; the run loop starts runs and applies rows.

use super::app::Action;
use crate::eval::bootstrap::Interval;
use crate::eval::cases::Split;
use crate::event::Command;
use crate::upskill::pipeline::{UpskillEvent, UpskillOutcome};
use crossterm::event::{KeyCode, KeyEvent};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RunStatus {
    /// Nothing started yet.
    Idle,
    Running,
    /// Esc was pressed; waiting for the pipeline to stop.
    Cancelling,
    Finished,
    Cancelled,
    Failed(String),
    /// The run could not start (bad eval set, skills dir not writable, …).
    Refused(String),
}

/// One case result in the matrix.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Pending,
    Score(f64),
    /// The score of a case the answer failed while stating a high confidence.
    Overconfident(f64),
    Error(String),
}

/// One row: the current skill (row 0) or a candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct UpskillRow {
    pub label: String,
    pub prompt: String,
    pub cells: Vec<Cell>,
    pub train: Option<f64>,
    pub holdout: Option<f64>,
    pub interval: Option<Interval>,
    pub done: bool,
}

/// Everything the upskill screen shows.
#[derive(Debug, Clone)]
pub struct UpskillState {
    pub status: RunStatus,
    /// Case ids in column order (train first, then holdout).
    pub columns: Vec<(String, Split)>,
    pub rows: Vec<UpskillRow>,
    pub phase: String,
    pub done_calls: usize,
    pub total_calls: usize,
    pub started_at: Option<Instant>,
    pub ended_at: Option<Instant>,
    /// Candidates the teacher wrote that were dropped, and why.
    pub dropped: Vec<(String, String)>,
    pub outcome: Option<UpskillOutcome>,
    /// Highlighted row.
    pub selected: usize,
    /// First case column shown (the matrix scrolls sideways with ←/→).
    pub col_offset: usize,
    /// Enter was pressed on this row: waiting for y/n.
    pub confirm: Option<usize>,
    /// The last apply: which row, and the result line.
    pub applied: Option<(usize, Result<String, String>)>,
    /// The skill file, for "saved skills/skill.txt".
    pub skill_path: PathBuf,
    /// Where this run's report was written, or why it could not be.
    pub report: Option<Result<PathBuf, String>>,
    /// The last report's summary, shown in the prompt pane (`o`; any key hides it).
    pub report_text: Option<String>,
}

impl UpskillState {
    pub fn new(skill_path: PathBuf) -> Self {
        UpskillState {
            status: RunStatus::Idle,
            columns: Vec::new(),
            rows: Vec::new(),
            phase: String::new(),
            done_calls: 0,
            total_calls: 0,
            started_at: None,
            ended_at: None,
            dropped: Vec::new(),
            outcome: None,
            selected: 0,
            col_offset: 0,
            confirm: None,
            applied: None,
            skill_path,
            report: None,
            report_text: None,
        }
    }

    /// The pipeline is working (or stopping).
    pub fn running(&self) -> bool {
        matches!(self.status, RunStatus::Running | RunStatus::Cancelling)
    }

    /// A run was spawned: forget the last one.
    pub fn begin(&mut self, now: Instant) {
        let path = std::mem::take(&mut self.skill_path);
        *self = UpskillState::new(path);
        self.status = RunStatus::Running;
        self.phase = "loading the eval set".into();
        self.started_at = Some(now);
    }

    /// The run could not start.
    pub fn refuse(&mut self, why: impl Into<String>) {
        let path = std::mem::take(&mut self.skill_path);
        *self = UpskillState::new(path);
        self.status = RunStatus::Refused(why.into());
    }

    pub fn elapsed(&self, now: Instant) -> Duration {
        match (self.started_at, self.ended_at) {
            (Some(s), Some(e)) => e.saturating_duration_since(s),
            (Some(s), None) => now.saturating_duration_since(s),
            _ => Duration::ZERO,
        }
    }

    /// Time left at the pace so far (None before the first call or after the last).
    pub fn estimate_left(&self, now: Instant) -> Option<Duration> {
        if !self.running() || self.done_calls == 0 || self.total_calls <= self.done_calls {
            return None;
        }
        let per = self.elapsed(now).as_secs_f64() / self.done_calls as f64;
        Some(Duration::from_secs_f64(
            per * (self.total_calls - self.done_calls) as f64,
        ))
    }

    /// Index of the first holdout column (== columns.len() when there is none).
    pub fn first_holdout(&self) -> usize {
        self.columns
            .iter()
            .position(|(_, s)| *s == Split::Holdout)
            .unwrap_or(self.columns.len())
    }

    /// The row the decision picked, when the run finished.
    pub fn winner(&self) -> Option<usize> {
        self.outcome.as_ref().and_then(|o| o.winner)
    }

    fn row_mut(&mut self, row: usize) -> &mut UpskillRow {
        while self.rows.len() <= row {
            self.rows.push(UpskillRow {
                label: format!("candidate {}", self.rows.len()),
                prompt: String::new(),
                cells: vec![Cell::Pending; self.columns.len()],
                train: None,
                holdout: None,
                interval: None,
                done: false,
            });
        }
        &mut self.rows[row]
    }

    fn end(&mut self, status: RunStatus, now: Instant) -> Vec<Action> {
        let was_running = self.running();
        self.status = status;
        self.ended_at = Some(now);
        if was_running {
            // The Pi's model is free again.
            vec![Action::Engine(Command::HoldStudent(false)), Action::Redraw]
        } else {
            vec![Action::Redraw]
        }
    }

    /// Take one pipeline event. The run's end releases the student.
    pub fn handle_event(&mut self, ev: UpskillEvent, now: Instant) -> Vec<Action> {
        match ev {
            UpskillEvent::Started { cases, total_calls } => {
                self.columns = cases;
                self.total_calls = total_calls;
                let n = self.columns.len();
                for r in &mut self.rows {
                    r.cells.resize(n, Cell::Pending);
                }
            }
            UpskillEvent::Phase(p) => self.phase = p,
            UpskillEvent::Row { row, label, prompt } => {
                let r = self.row_mut(row);
                r.label = label;
                r.prompt = prompt;
            }
            UpskillEvent::Dropped(d) => self.dropped.extend(d),
            UpskillEvent::CaseScored {
                row,
                column,
                result,
                done_calls,
                total_calls,
            } => {
                self.done_calls = done_calls;
                self.total_calls = total_calls;
                let n = self.columns.len().max(column + 1);
                let r = self.row_mut(row);
                if r.cells.len() < n {
                    r.cells.resize(n, Cell::Pending);
                }
                r.cells[column] = match result.error {
                    Some(e) => Cell::Error(e),
                    None if result.score.overconfident() => Cell::Overconfident(result.score.total),
                    None => Cell::Score(result.score.total),
                };
            }
            UpskillEvent::RowDone { row, score } => {
                let r = self.row_mut(row);
                r.train = score.train;
                r.holdout = score.holdout;
                r.interval = score.interval;
                r.done = true;
            }
            UpskillEvent::Finished(outcome) => {
                for (i, s) in outcome.rows.iter().enumerate() {
                    let r = self.row_mut(i);
                    r.train = s.train;
                    r.holdout = s.holdout;
                    r.interval = s.interval;
                    r.done = true;
                }
                if let Some(w) = outcome.winner {
                    self.selected = w;
                }
                self.phase = "done".into();
                self.outcome = Some(outcome);
                return self.end(RunStatus::Finished, now);
            }
            UpskillEvent::Failed(m) => {
                self.phase = "failed".into();
                return self.end(RunStatus::Failed(m), now);
            }
            UpskillEvent::Cancelled => {
                self.phase = "cancelled".into();
                return self.end(RunStatus::Cancelled, now);
            }
            UpskillEvent::Report(p) => self.report = Some(Ok(p)),
            UpskillEvent::ReportFailed(e) => self.report = Some(Err(e)),
        }
        vec![Action::Redraw]
    }

    /// What the screen says about the result (None while running).
    pub fn decision_text(&self) -> Option<String> {
        let skill = self.skill_path.display();
        match &self.status {
            RunStatus::Idle | RunStatus::Running => None,
            RunStatus::Cancelling => Some("cancelling…".into()),
            RunStatus::Cancelled => Some("cancelled; the skill is unchanged".into()),
            RunStatus::Failed(m) => Some(format!("failed: {m}; the skill is unchanged")),
            RunStatus::Refused(m) => Some(format!("not started: {m}")),
            RunStatus::Finished => {
                let o = self.outcome.as_ref()?;
                if let Some((row, res)) = &self.applied {
                    let label = self.rows.get(*row).map_or("?", |r| r.label.as_str());
                    return Some(match res {
                        Ok(_) => {
                            format!("applied {label}: saved {skill}; used from the next frame")
                        }
                        Err(e) => format!("could not apply {label}: {e}; the old skill is intact"),
                    });
                }
                Some(match (o.winner, &o.applied) {
                    (Some(w), Some(_)) => format!(
                        "applied candidate {w}: saved {skill}; used from the next frame — {}",
                        o.reason
                    ),
                    (Some(w), None) => format!(
                        "candidate {w} wins but was not saved; the skill stays — {}",
                        o.reason
                    ),
                    (None, _) => format!("the skill stays: {}", o.reason),
                })
            }
        }
    }

    /// Keys on the upskill screen. `Esc` when idle returns `None`: the app goes back.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        if self.report_text.take().is_some() {
            return Some(vec![Action::Redraw]);
        }
        if let Some(row) = self.confirm {
            match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => {
                    self.confirm = None;
                    return Some(vec![Action::ApplyUpskill(row), Action::Redraw]);
                }
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                    self.confirm = None;
                }
                _ => {}
            }
            return Some(vec![Action::Redraw]);
        }
        match key.code {
            KeyCode::Esc => {
                return match self.status {
                    RunStatus::Running => {
                        self.status = RunStatus::Cancelling;
                        self.phase = "cancelling…".into();
                        Some(vec![Action::CancelUpskill, Action::Redraw])
                    }
                    RunStatus::Cancelling => Some(vec![Action::Redraw]),
                    _ => None,
                };
            }
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => {
                if self.selected + 1 < self.rows.len() {
                    self.selected += 1;
                }
            }
            KeyCode::Left => self.col_offset = self.col_offset.saturating_sub(1),
            KeyCode::Right => {
                if self.col_offset + 1 < self.columns.len() {
                    self.col_offset += 1;
                }
            }
            KeyCode::Char('r') => {
                if !self.running() {
                    return Some(vec![Action::OpenUpskill, Action::Redraw]);
                }
            }
            KeyCode::Char('o') => {
                return Some(vec![Action::OpenUpskillReport, Action::Redraw]);
            }
            KeyCode::Enter => {
                if self.status != RunStatus::Finished || self.outcome.is_none() {
                    return Some(vec![Action::Redraw]);
                }
                if self.selected == 0 {
                    return Some(vec![Action::Redraw]);
                }
                if self.selected < self.rows.len() {
                    self.confirm = Some(self.selected);
                }
            }
            _ => return Some(Vec::new()),
        }
        Some(vec![Action::Redraw])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::runner::CaseResult;
    use crate::eval::score::CaseScore;
    use crate::upskill::decision::RowScore;
    use crate::upskill::pipeline::RowSummary;
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    pub fn result(id: &str, split: Split, total: f64, error: Option<&str>) -> CaseResult {
        CaseResult {
            case_id: id.into(),
            split,
            weight: 1.0,
            answer: "A cat.".into(),
            score: CaseScore {
                expect_share: total,
                missed: vec![],
                forbidden: vec![],
                flagged_safety: false,
                safety_ok: true,
                format_ok: true,
                calibration_penalty: 0.0,
                total,
            },
            error: error.map(String::from),
        }
    }

    pub fn columns() -> Vec<(String, Split)> {
        vec![
            ("lighter-flame".into(), Split::Train),
            ("coffee-cup".into(), Split::Train),
            ("empty-room".into(), Split::Train),
            ("fall-stairs".into(), Split::Holdout),
            ("rocket".into(), Split::Holdout),
        ]
    }

    /// Baseline and one candidate scored, second candidate half done.
    pub fn mid_run() -> UpskillState {
        let now = Instant::now();
        let mut s = UpskillState::new(PathBuf::from("skills/skill.txt"));
        s.begin(now);
        let cols = columns();
        s.handle_event(
            UpskillEvent::Started {
                cases: cols.clone(),
                total_calls: 25,
            },
            now,
        );
        s.handle_event(UpskillEvent::Phase("scoring the current skill".into()), now);
        s.handle_event(
            UpskillEvent::Row {
                row: 0,
                label: "current skill".into(),
                prompt: "Describe the scene.".into(),
            },
            now,
        );
        let base = [0.5, 0.25, 1.0, 0.5, 0.75];
        let mut done = 0;
        for (c, v) in base.iter().enumerate() {
            done += 1;
            s.handle_event(
                UpskillEvent::CaseScored {
                    row: 0,
                    column: c,
                    result: result(&cols[c].0, cols[c].1, *v, None),
                    done_calls: done,
                    total_calls: 25,
                },
                now,
            );
        }
        s.handle_event(
            UpskillEvent::RowDone {
                row: 0,
                score: RowScore {
                    train: Some(0.58),
                    holdout: Some(0.63),
                    interval: None,
                },
            },
            now,
        );
        for k in 1..=2 {
            s.handle_event(
                UpskillEvent::Row {
                    row: k,
                    label: format!("candidate {k}"),
                    prompt: format!("Candidate prompt {k}: name every object and hazard."),
                },
                now,
            );
        }
        s.handle_event(UpskillEvent::Phase("scoring candidate 1 of 2".into()), now);
        for (c, (id, split)) in cols.iter().enumerate() {
            done += 1;
            let err = (c == 2).then_some("timeout");
            s.handle_event(
                UpskillEvent::CaseScored {
                    row: 1,
                    column: c,
                    result: result(id, *split, 0.9, err),
                    done_calls: done,
                    total_calls: 15,
                },
                now,
            );
        }
        s.handle_event(
            UpskillEvent::RowDone {
                row: 1,
                score: RowScore {
                    train: Some(0.7),
                    holdout: Some(0.9),
                    interval: Some(Interval {
                        mean: 0.12,
                        lo: 0.03,
                        hi: 0.2,
                    }),
                },
            },
            now,
        );
        s.handle_event(UpskillEvent::Phase("scoring candidate 2 of 2".into()), now);
        done += 1;
        s.handle_event(
            UpskillEvent::CaseScored {
                row: 2,
                column: 0,
                result: result(&cols[0].0, cols[0].1, 0.4, None),
                done_calls: done,
                total_calls: 15,
            },
            now,
        );
        s
    }

    pub fn outcome(winner: Option<usize>, applied: bool) -> UpskillOutcome {
        let row = |label: &str, train, holdout, interval| RowSummary {
            label: label.into(),
            prompt: format!("{label} prompt"),
            train: Some(train),
            holdout: Some(holdout),
            interval,
            results: vec![],
        };
        UpskillOutcome {
            rows: vec![
                row("current skill", 0.58, 0.63, None),
                row(
                    "candidate 1",
                    0.7,
                    0.9,
                    Some(Interval {
                        mean: 0.12,
                        lo: 0.03,
                        hi: 0.2,
                    }),
                ),
                row(
                    "candidate 2",
                    0.5,
                    0.6,
                    Some(Interval {
                        mean: -0.08,
                        lo: -0.2,
                        hi: 0.01,
                    }),
                ),
            ],
            winner,
            reason: "candidate #1 scores 0.700 on train vs 0.580 now (+0.120)".into(),
            applied: applied.then(|| PathBuf::from("skills/history/x.txt")),
            eval_hash: "abc".into(),
        }
    }

    pub fn finished() -> UpskillState {
        let mut s = mid_run();
        let now = Instant::now();
        for c in 1..5 {
            s.handle_event(
                UpskillEvent::CaseScored {
                    row: 2,
                    column: c,
                    result: result("x", Split::Train, 0.5, None),
                    done_calls: 11 + c,
                    total_calls: 15,
                },
                now,
            );
        }
        s.handle_event(UpskillEvent::Finished(outcome(Some(1), true)), now);
        s
    }

    #[test]
    fn events_fill_the_matrix_and_totals() {
        let s = mid_run();
        assert_eq!(s.status, RunStatus::Running);
        assert_eq!(s.columns.len(), 5);
        assert_eq!(s.first_holdout(), 3);
        assert_eq!(s.rows.len(), 3);
        assert_eq!(s.rows[0].cells[1], Cell::Score(0.25));
        assert_eq!(s.rows[1].cells[2], Cell::Error("timeout".into()));
        assert_eq!(s.rows[2].cells[0], Cell::Score(0.4));
        assert_eq!(s.rows[2].cells[1], Cell::Pending);
        assert_eq!(s.rows[0].train, Some(0.58));
        assert_eq!(s.rows[1].interval.unwrap().lo, 0.03);
        assert!(s.rows[1].done && !s.rows[2].done);
        assert_eq!((s.done_calls, s.total_calls), (11, 15));
        assert_eq!(s.phase, "scoring candidate 2 of 2");
        assert!(s.decision_text().is_none());
        // The pace so far gives an estimate.
        let later = s.started_at.unwrap() + Duration::from_secs(22);
        assert_eq!(s.estimate_left(later), Some(Duration::from_secs(8)));
    }

    #[test]
    fn finishing_releases_the_student_and_says_why() {
        let mut s = mid_run();
        let acts = s.handle_event(
            UpskillEvent::Finished(outcome(Some(1), true)),
            Instant::now(),
        );
        assert!(acts.contains(&Action::Engine(Command::HoldStudent(false))));
        assert_eq!(s.status, RunStatus::Finished);
        assert_eq!(s.selected, 1, "the winner is highlighted");
        let d = s.decision_text().unwrap();
        assert!(
            d.starts_with("applied candidate 1: saved skills/skill.txt; used from the next frame"),
            "{d}"
        );
        let mut s = mid_run();
        s.handle_event(UpskillEvent::Finished(outcome(None, false)), Instant::now());
        assert!(s
            .decision_text()
            .unwrap()
            .starts_with("the skill stays: candidate #1"));
        let mut s = mid_run();
        let acts = s.handle_event(
            UpskillEvent::Failed("teacher: HTTP 500".into()),
            Instant::now(),
        );
        assert!(acts.contains(&Action::Engine(Command::HoldStudent(false))));
        assert_eq!(
            s.decision_text().unwrap(),
            "failed: teacher: HTTP 500; the skill is unchanged"
        );
    }

    #[test]
    fn esc_cancels_a_run_then_goes_back() {
        let mut s = mid_run();
        let acts = s.handle_key(key(KeyCode::Esc)).unwrap();
        assert!(acts.contains(&Action::CancelUpskill));
        assert_eq!(s.status, RunStatus::Cancelling);
        assert!(s.running());
        // A second Esc while stopping does nothing more.
        assert_eq!(s.handle_key(key(KeyCode::Esc)), Some(vec![Action::Redraw]));
        let acts = s.handle_event(UpskillEvent::Cancelled, Instant::now());
        assert!(acts.contains(&Action::Engine(Command::HoldStudent(false))));
        assert_eq!(s.status, RunStatus::Cancelled);
        assert_eq!(
            s.decision_text().unwrap(),
            "cancelled; the skill is unchanged"
        );
        // Not running: Esc is the app's (back to the monitor).
        assert_eq!(s.handle_key(key(KeyCode::Esc)), None);
        // `r` runs again.
        assert!(s
            .handle_key(key(KeyCode::Char('r')))
            .unwrap()
            .contains(&Action::OpenUpskill));
    }

    #[test]
    fn r_does_nothing_while_running() {
        let mut s = mid_run();
        assert!(!s
            .handle_key(key(KeyCode::Char('r')))
            .unwrap()
            .contains(&Action::OpenUpskill));
    }

    #[test]
    fn enter_asks_then_applies_the_selected_row() {
        let mut s = mid_run();
        // Nothing to apply while running.
        s.handle_key(key(KeyCode::Down));
        s.handle_key(key(KeyCode::Enter));
        assert_eq!(s.confirm, None);
        let mut s = finished();
        assert_eq!(s.selected, 1);
        s.handle_key(key(KeyCode::Down));
        assert_eq!(s.selected, 2);
        s.handle_key(key(KeyCode::Down));
        assert_eq!(s.selected, 2, "stops at the last row");
        s.handle_key(key(KeyCode::Enter));
        assert_eq!(s.confirm, Some(2));
        // n declines.
        assert_eq!(
            s.handle_key(key(KeyCode::Char('n'))),
            Some(vec![Action::Redraw])
        );
        assert_eq!(s.confirm, None);
        s.handle_key(key(KeyCode::Enter));
        let acts = s.handle_key(key(KeyCode::Char('y'))).unwrap();
        assert!(acts.contains(&Action::ApplyUpskill(2)), "{acts:?}");
        assert_eq!(s.confirm, None);
        // The current skill (row 0) is not offered.
        s.selected = 0;
        s.handle_key(key(KeyCode::Enter));
        assert_eq!(s.confirm, None);
        // The result of an apply replaces the decision line.
        s.applied = Some((2, Ok("skills/history/y.txt".into())));
        assert_eq!(
            s.decision_text().unwrap(),
            "applied candidate 2: saved skills/skill.txt; used from the next frame"
        );
    }

    #[test]
    fn refused_run_says_why() {
        let mut s = UpskillState::new("skills/skill.txt".into());
        s.refuse("cannot load the eval set: eval/cases.toml:3: bad");
        assert!(!s.running());
        assert_eq!(
            s.decision_text().unwrap(),
            "not started: cannot load the eval set: eval/cases.toml:3: bad"
        );
        // No run was going: nothing to release.
        let acts = s.handle_event(UpskillEvent::Cancelled, Instant::now());
        assert!(!acts.contains(&Action::Engine(Command::HoldStudent(false))));
    }

    #[test]
    fn columns_scroll_sideways() {
        let mut s = mid_run();
        s.handle_key(key(KeyCode::Left));
        assert_eq!(s.col_offset, 0);
        for _ in 0..10 {
            s.handle_key(key(KeyCode::Right));
        }
        assert_eq!(s.col_offset, 4);
    }
}
