//! Tests of the upskill screen's state, and the sample runs other tests draw (`state.rs`'s `tests`).

#[cfg(test)]
use super::*;
use crate::eval::runner::CaseResult;
use crate::eval::score::CaseScore;
use crate::upskill::decision::RowScore;
use crate::upskill::pipeline::RowSummary;
use crossterm::event::{KeyCode, KeyModifiers};

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
            watches: vec![],
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
        // Two of the current skill's answers have no confidence line.
        let mut r = result(&cols[c].0, cols[c].1, *v, None);
        r.score.format_ok = !(c == 1 || c == 3);
        s.handle_event(
            UpskillEvent::CaseScored {
                row: 0,
                column: c,
                result: r,
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
                format: FormatShare::default(),
                watches: Default::default(),
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
                format: FormatShare::default(),
                watches: Default::default(),
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
        format: FormatShare { ok: 5, of: 5 },
        watches: Default::default(),
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
    assert_eq!(
        acts,
        vec![Action::Redraw],
        "nothing to release: the scheduler shares the student"
    );
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
    assert_eq!(
        acts,
        vec![Action::Redraw],
        "nothing to release: the scheduler shares the student"
    );
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
    assert_eq!(
        acts,
        vec![Action::Redraw],
        "nothing to release: the scheduler shares the student"
    );
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
    assert_eq!(acts, vec![Action::Redraw]);
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

#[test]
fn format_share_is_counted_per_row_as_answers_come_and_warnings_are_kept() {
    let mut s = mid_run();
    assert_eq!(s.rows[0].format, FormatShare { ok: 3, of: 5 });
    // The failed call is not an answer.
    assert_eq!(s.rows[1].format, FormatShare { ok: 4, of: 4 });
    assert_eq!(s.rows[2].format, FormatShare { ok: 1, of: 1 });
    // A case reported twice counts once.
    let r = result("lighter-flame", Split::Train, 0.4, None);
    s.handle_event(
        UpskillEvent::CaseScored {
            row: 2,
            column: 0,
            result: r,
            done_calls: 12,
            total_calls: 15,
        },
        Instant::now(),
    );
    assert_eq!(s.rows[2].format, FormatShare { ok: 1, of: 1 });
    s.handle_event(
        UpskillEvent::Warning("0 of 5 answers ended with a confidence line".into()),
        Instant::now(),
    );
    assert_eq!(
        s.warnings,
        vec!["0 of 5 answers ended with a confidence line"]
    );
    // The pipeline's own count wins when the row is done.
    s.handle_event(
        UpskillEvent::RowDone {
            row: 2,
            score: RowScore {
                train: Some(0.4),
                holdout: None,
                interval: None,
                format: FormatShare { ok: 2, of: 5 },
                watches: Default::default(),
            },
        },
        Instant::now(),
    );
    assert_eq!(s.rows[2].format, FormatShare { ok: 2, of: 5 });
}
