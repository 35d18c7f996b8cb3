//! The upskill screen's state: `UpskillEvent`s from the pipeline and keys in, `Action`s out.
//! No terminal and no disk here; the run loop starts runs and applies rows.

use crate::eval::bootstrap::Interval;
use crate::eval::cases::Split;
use crate::eval::runner::FormatShare;
use crate::tui::action::Action;
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::popups::confirm;
use crate::upskill::pipeline::{UpskillEvent, UpskillOutcome};
use crossterm::event::KeyEvent;
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
    /// Answers so far with a readable confidence line, of the answers so far.
    pub format: FormatShare,
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
    /// What the run said a person must know (most answers without a confidence line, …).
    pub warnings: Vec<String>,
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
    /// Monitoring during the run: live answers so far, and the newest one's seq and
    /// reasons (the student is shared, not held).
    pub live: LiveDuringRun,
    /// Whether fine-tuning is worth it yet (`finetune status`'s verdict), when the store
    /// could be read; kept across runs.
    pub finetune: Option<String>,
    /// The last finished runs, newest last, with skill and student model switches
    /// (`finetune::readiness::run_lines`); kept across runs.
    pub past_runs: Vec<String>,
}

/// What the live feed did while the run went on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveDuringRun {
    pub answers: u64,
    pub newest: Option<(u64, String)>,
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
            warnings: Vec::new(),
            outcome: None,
            selected: 0,
            col_offset: 0,
            confirm: None,
            applied: None,
            skill_path,
            report: None,
            report_text: None,
            live: LiveDuringRun::default(),
            finetune: None,
            past_runs: Vec::new(),
        }
    }

    /// A live answer arrived during the run.
    pub fn live_answer(&mut self, seq: u64, reasons: &[crate::policy::Reason]) {
        self.live.answers += 1;
        let why = if reasons.is_empty() {
            "no escalation".to_string()
        } else {
            reasons
                .iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        self.live.newest = Some((seq, why));
    }

    /// The pipeline is working (or stopping).
    pub fn running(&self) -> bool {
        matches!(self.status, RunStatus::Running | RunStatus::Cancelling)
    }

    /// A run was spawned: forget the last one.
    pub fn begin(&mut self, now: Instant) {
        let path = std::mem::take(&mut self.skill_path);
        let finetune = self.finetune.take();
        let past_runs = std::mem::take(&mut self.past_runs);
        *self = UpskillState::new(path);
        self.finetune = finetune;
        self.past_runs = past_runs;
        self.status = RunStatus::Running;
        self.phase = "loading the eval set".into();
        self.started_at = Some(now);
    }

    /// The run could not start.
    pub fn refuse(&mut self, why: impl Into<String>) {
        let path = std::mem::take(&mut self.skill_path);
        let finetune = self.finetune.take();
        let past_runs = std::mem::take(&mut self.past_runs);
        *self = UpskillState::new(path);
        self.finetune = finetune;
        self.past_runs = past_runs;
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
                format: FormatShare::default(),
                done: false,
            });
        }
        &mut self.rows[row]
    }

    fn end(&mut self, status: RunStatus, now: Instant) -> Vec<Action> {
        self.status = status;
        self.ended_at = Some(now);
        vec![Action::Redraw]
    }

    /// Take one pipeline event (from this console's run, or one another console started
    /// in the service: then `Started` is the first this screen hears of it).
    pub fn handle_event(&mut self, ev: UpskillEvent, now: Instant) -> Vec<Action> {
        match ev {
            UpskillEvent::Started { cases, total_calls } => {
                if !self.running() {
                    self.begin(now);
                }
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
            UpskillEvent::Warning(w) => self.warnings.push(w),
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
                // Each case is scored once a row; a repeat would count twice.
                if r.cells[column] == Cell::Pending && result.error.is_none() {
                    r.format.of += 1;
                    r.format.ok += usize::from(result.score.format_ok);
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
                if score.format.of > 0 {
                    r.format = score.format;
                }
                r.done = true;
            }
            UpskillEvent::Finished(outcome) => {
                for (i, s) in outcome.rows.iter().enumerate() {
                    let r = self.row_mut(i);
                    r.train = s.train;
                    r.holdout = s.holdout;
                    r.interval = s.interval;
                    if s.format.of > 0 {
                        r.format = s.format;
                    }
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
            UpskillEvent::Applied { row, result } => self.applied = Some((row, result)),
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
            match confirm::answer(&key) {
                Some(true) => {
                    self.confirm = None;
                    return Some(vec![Action::ApplyUpskill(row), Action::Redraw]);
                }
                Some(false) => self.confirm = None,
                None => {}
            }
            return Some(vec![Action::Redraw]);
        }
        match keys::lookup(&[Context::Upskill], &key) {
            Some(KeyAction::Back) => {
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
            Some(KeyAction::Up) => self.selected = self.selected.saturating_sub(1),
            Some(KeyAction::Down) => {
                if self.selected + 1 < self.rows.len() {
                    self.selected += 1;
                }
            }
            Some(KeyAction::Left) => self.col_offset = self.col_offset.saturating_sub(1),
            Some(KeyAction::Right) => {
                if self.col_offset + 1 < self.columns.len() {
                    self.col_offset += 1;
                }
            }
            Some(KeyAction::Rerun) => {
                if !self.running() {
                    return Some(vec![Action::OpenUpskill, Action::Redraw]);
                }
            }
            Some(KeyAction::Report) => {
                return Some(vec![Action::OpenUpskillReport, Action::Redraw]);
            }
            Some(KeyAction::Apply) => {
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
#[path = "state_tests.rs"]
pub(crate) mod tests;
