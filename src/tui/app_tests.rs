//! Tests of the app's state machine: events, keys, mouse (the `tests` module of `app.rs`).

#[cfg(test)]
use super::*;
use crate::event::{Command, Event};
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use crate::tui::layout;
use crate::tui::screens::monitor::{TeacherState, MAX_ANSWER_CHARS};
use chrono::Utc;
use crossterm::event::{KeyCode, KeyEventState};
use ratatui::layout::Rect;

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn app() -> App {
    let mut a = App::new(&Config::default());
    a.theme = Theme { color: true };
    a.set_size(80, 24);
    a
}

pub fn frame(seq: u64) -> Event {
    Event::FrameTaken {
        dhash: None,
        seq,
        captured_at: Utc::now(),
        label: format!("img{seq}.jpg"),
        width: 768,
        height: 432,
        jpeg_bytes: 41 * 1024,
        superseded: 0,
        image: None,
    }
}

pub fn answer(seq: u64, text: &str, confidence: Option<f32>, reasons: Vec<Reason>) -> Event {
    Event::StudentAnswer {
        seq,
        at: Utc::now(),
        answer: text.into(),
        confidence,
        measured_confidence: None,
        latency_ms: 1200,
        reasons,
        skill: "skill.txt".into(),
    }
}

fn filled(n: u64) -> App {
    let mut a = app();
    for s in 1..=n {
        a.handle_event(frame(s));
        a.handle_event(answer(s, &format!("answer {s}"), Some(0.9), vec![]));
    }
    a
}

#[test]
fn tokens_stream_into_newest_then_answer_replaces_them() {
    let mut a = app();
    a.handle_event(frame(1));
    a.handle_event(answer(1, "first", Some(0.9), vec![]));
    a.handle_event(frame(2));
    assert!(a.busy());
    for t in ["A ", "cat ", "sits"] {
        a.handle_event(Event::StudentToken {
            seq: 2,
            text: t.into(),
        });
    }
    assert_eq!(a.monitor.entries[1].answer, "A cat sits");
    assert_eq!(a.monitor.entries[0].answer, "first");
    assert!(!a.monitor.entries[1].answered);
    a.handle_event(answer(2, "A cat sits on a mat.", Some(0.7), vec![]));
    assert_eq!(a.monitor.entries[1].answer, "A cat sits on a mat.");
    assert!(a.monitor.entries[1].answered);
    assert_eq!(a.monitor.entries[1].confidence, Some(0.7));
    assert!(!a.busy());
    // A late token after the answer does not corrupt it.
    a.handle_event(Event::StudentToken {
        seq: 2,
        text: "junk".into(),
    });
    assert_eq!(a.monitor.entries[1].answer, "A cat sits on a mat.");
}

#[test]
fn runaway_stream_is_bounded() {
    let mut a = app();
    a.handle_event(frame(1));
    let chunk = "x".repeat(1000);
    for _ in 0..40 {
        a.handle_event(Event::StudentToken {
            seq: 1,
            text: chunk.clone(),
        });
    }
    assert_eq!(
        a.monitor.entries[0].answer.chars().count(),
        MAX_ANSWER_CHARS
    );
}

#[test]
fn history_bound_holds_at_cap() {
    let mut cfg = Config::default();
    cfg.console.history = 10;
    let mut a = App::new(&cfg);
    for s in 1..=25 {
        a.handle_event(frame(s));
    }
    assert_eq!(a.monitor.entries.len(), 10);
    assert_eq!(a.monitor.entries.front().unwrap().seq, 16);
    assert_eq!(a.monitor.entries.back().unwrap().seq, 25);
    assert_eq!(a.frames_seen, 25);
    // Events for evicted entries are ignored, not resurrected.
    a.handle_event(answer(3, "old", Some(0.9), vec![]));
    assert_eq!(a.monitor.entries.len(), 10);
    assert!(a.monitor.entry(3).is_none());
}

#[test]
fn stats_latency_median_and_escalation_rate() {
    let mut a = app();
    for (s, ms) in [(1, 1000), (2, 3000), (3, 1400), (4, 1200)] {
        a.handle_event(frame(s));
        a.handle_event(Event::StudentAnswer {
            seq: s,
            at: Utc::now(),
            answer: "x".into(),
            confidence: Some(0.9),
            measured_confidence: None,
            latency_ms: ms,
            reasons: vec![],
            skill: "s".into(),
        });
    }
    a.handle_event(Event::Escalated {
        seq: 2,
        reasons: vec![Reason::NoConfidence],
        queue_len: 1,
        frame_path: None,
    });
    assert_eq!(a.student.last_latency(), Some(1200));
    assert_eq!(a.student.median_latency(), Some(1300));
    assert_eq!(a.escalation_rate(), Some(0.25));
    for s in 5..=100 {
        a.handle_event(answer(s, "x", None, vec![]));
    }
    assert_eq!(a.student.latencies.len(), LATENCY_WINDOW);
}

#[test]
fn selection_and_scroll_keys() {
    let mut a = filled(30);
    let rows = a.monitor.log_rows();
    assert!(rows > 3 && rows < 30, "rows {rows}");
    assert_eq!(a.monitor.cursor_index(), Some(29));
    assert_eq!(a.monitor.visible_range(rows), 30 - rows..30);
    a.handle_key(key(KeyCode::Up));
    assert_eq!(a.monitor.cursor, Some(29));
    a.handle_key(key(KeyCode::Up));
    assert_eq!(a.monitor.cursor, Some(28));
    // Still in view: the window did not move.
    assert_eq!(a.monitor.visible_range(rows), 30 - rows..30);
    a.handle_key(key(KeyCode::PageUp));
    assert_eq!(a.monitor.cursor, Some(28 - (rows as u64 - 1)));
    let r = a.monitor.visible_range(rows);
    assert!(r.contains(&a.monitor.cursor_index().unwrap()));
    a.handle_key(key(KeyCode::Home));
    assert_eq!(a.monitor.cursor, Some(1));
    assert_eq!(a.monitor.visible_range(rows), 0..rows);
    a.handle_key(key(KeyCode::Up));
    assert_eq!(a.monitor.cursor, Some(1), "stops at the oldest");
    a.handle_key(key(KeyCode::Down));
    a.handle_key(key(KeyCode::Down));
    assert_eq!(a.monitor.cursor, Some(3));
    // New entries do not move a scrolled-back view.
    a.handle_event(frame(31));
    assert_eq!(a.monitor.visible_range(rows), 0..rows);
    // Enter pins the highlighted entry for the frame and teacher panes.
    assert_eq!(a.monitor.frame_entry().map(|e| e.seq), Some(31));
    a.handle_key(key(KeyCode::Enter));
    assert_eq!(a.monitor.selected, Some(3));
    assert_eq!(a.monitor.teacher_entry().map(|e| e.seq), Some(3));
    a.handle_key(key(KeyCode::End));
    assert_eq!(a.monitor.cursor, None);
    assert_eq!(a.monitor.visible_range(rows).end, 31);
    a.handle_key(key(KeyCode::PageDown));
    assert_eq!(a.monitor.cursor, Some(31), "page down stops at newest");
}

#[test]
fn esc_goes_back_to_live_or_closes_help_first() {
    let mut a = filled(5);
    a.handle_key(key(KeyCode::Up));
    a.handle_key(key(KeyCode::Up));
    a.handle_key(key(KeyCode::Enter));
    assert_eq!(a.monitor.selected, Some(3));
    a.handle_key(key(KeyCode::Char('?')));
    assert!(a.help);
    a.handle_key(key(KeyCode::Esc));
    assert!(!a.help);
    assert_eq!(a.monitor.selected, Some(3), "first Esc only closes help");
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(
        (a.monitor.selected, a.monitor.cursor, a.monitor.top),
        (None, None, None)
    );
}

#[test]
fn tick_turns_the_spinner_only_while_busy() {
    let mut a = app();
    assert!(!a.tick());
    assert_eq!(a.spinner, 0);
    a.handle_event(frame(1));
    assert!(a.tick());
    assert_eq!(a.spinner, 1);
    a.handle_event(Event::Stopped {
        frames_answered: 0,
        failure: None,
    });
    assert!(!a.busy());
    assert!(!a.tick());
}

#[test]
fn help_toggles() {
    let mut a = app();
    a.handle_key(key(KeyCode::Char('?')));
    assert!(a.help);
    a.handle_key(key(KeyCode::Char('?')));
    assert!(!a.help);
}

#[test]
fn command_keys() {
    let mut a = app();
    assert_eq!(
        a.handle_key(key(KeyCode::Char('e'))),
        vec![Action::Engine(Command::ForceEscalate)]
    );
    assert_eq!(
        a.handle_key(key(KeyCode::Char('k'))),
        vec![Action::Engine(Command::Ack {
            incident: None,
            by: "console".into()
        })]
    );
    assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
    assert_eq!(
        a.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
        vec![Action::Quit]
    );
    // `c` opens the calibration view; Esc goes back.
    assert!(a
        .handle_key(key(KeyCode::Char('c')))
        .contains(&Action::OpenCalibration));
    assert_eq!(a.screen, Screen::Calibration);
    assert!(a
        .handle_key(key(KeyCode::Char('r')))
        .contains(&Action::OpenCalibration));
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Monitor);
    // Plain letters without a meaning do nothing; keys work with help open.
    assert!(a.handle_key(key(KeyCode::Char('z'))).is_empty());
    a.handle_key(key(KeyCode::Char('?')));
    assert!(a
        .handle_key(key(KeyCode::Char('p')))
        .contains(&Action::Engine(Command::SetPaused(true))));
    assert!(a.paused);
    assert!(a
        .handle_key(key(KeyCode::Char('p')))
        .contains(&Action::Engine(Command::SetPaused(false))));
    let acts = a.handle_key(key(KeyCode::Char('u')));
    assert!(acts.contains(&Action::OpenUpskill));
    assert_eq!(a.screen, Screen::Upskill);
    assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Monitor);
    // Key releases are ignored.
    let mut release = key(KeyCode::Char('q'));
    release.kind = KeyEventKind::Release;
    release.state = KeyEventState::NONE;
    assert!(a.handle_key(release).is_empty());
}

#[test]
fn teacher_states_attach_to_the_right_entry() {
    let mut a = filled(4);
    a.handle_event(Event::Escalated {
        seq: 2,
        reasons: vec![Reason::Forced],
        queue_len: 1,
        frame_path: None,
    });
    a.handle_event(Event::Escalated {
        seq: 3,
        reasons: vec![Reason::NoConfidence],
        queue_len: 2,
        frame_path: None,
    });
    a.handle_event(Event::Escalated {
        seq: 4,
        reasons: vec![Reason::Audit],
        queue_len: 3,
        frame_path: None,
    });
    assert_eq!(
        a.monitor.entry(3).unwrap().teacher,
        TeacherState::Queued { pos: 2 }
    );
    assert_eq!(a.monitor.entry(2).unwrap().reasons, vec![Reason::Forced]);
    a.handle_event(Event::TeacherDropped {
        seq: 4,
        reasons: vec![Reason::Audit],
    });
    a.handle_event(Event::TeacherStarted {
        seq: 2,
        queue_len: 1,
    });
    assert_eq!(a.monitor.entry(2).unwrap().teacher, TeacherState::Reviewing);
    assert_eq!(
        a.monitor.entry(3).unwrap().teacher,
        TeacherState::Queued { pos: 1 }
    );
    assert_eq!(a.monitor.entry(4).unwrap().teacher, TeacherState::Dropped);
    assert!(a.busy());
    let v = Verdict {
        agrees: Some(false),
        summary: "it is a dog".into(),
        ..Verdict::default()
    };
    a.handle_event(Event::TeacherVerdict {
        seq: 2,
        verdict: v.clone(),
        latency_ms: 8100,
    });
    assert_eq!(
        a.monitor.entry(2).unwrap().teacher,
        TeacherState::Verdict(v, 8100)
    );
    assert_eq!(a.monitor.entry(1).unwrap().teacher, TeacherState::None);
    assert_eq!(a.disagreements, 1);
    assert!(!a.busy());
    a.handle_event(Event::TeacherStarted {
        seq: 3,
        queue_len: 0,
    });
    a.handle_event(Event::TeacherFailed {
        seq: 3,
        error: "connection refused".into(),
    });
    assert_eq!(
        a.monitor.entry(3).unwrap().teacher,
        TeacherState::Failed("connection refused".into())
    );
    assert_eq!(a.teacher_queue, 0);
    // Live teacher pane: the newest entry the teacher touched.
    assert_eq!(a.monitor.teacher_entry().map(|e| e.seq), Some(4));
    // `s` saves the newest reviewed entry when nothing is selected.
    assert_eq!(
        a.handle_key(key(KeyCode::Char('s'))),
        vec![Action::SaveEntry(2)]
    );
}

#[test]
fn learn_key_opens_the_editor_on_a_reviewed_entry() {
    let mut a = filled(3);
    // Nothing reviewed: a warning, no editor.
    a.handle_key(key(KeyCode::Char('a')));
    assert!(a.learn.is_none());
    assert!(a
        .active_notice(Instant::now())
        .is_some_and(|n| n.warning && n.text.starts_with("nothing to learn from")));
    // Entry 2 reviewed and has its frame.
    a.monitor.entries[1].frame = Some(crate::tui::images::tests::test_frame(8, 8));
    a.handle_event(Event::TeacherVerdict {
        seq: 2,
        verdict: crate::tui::popups::learn_editor::state::tests::verdict(),
        latency_ms: 5,
    });
    assert_eq!(a.monitor.entry_to_learn().map(|e| e.seq), Ok(2));
    // A selected entry without a verdict is refused, by number.
    a.monitor.selected = Some(3);
    assert!(a
        .monitor
        .entry_to_learn()
        .unwrap_err()
        .starts_with("#3 cannot become a case"));
    a.monitor.selected = None;
    a.handle_key(key(KeyCode::Char('a')));
    let ed = a.learn.as_ref().expect("editor open");
    assert_eq!(ed.seq, 2);
    // Keys go to the editor: `q` is typed, not quit.
    assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Redraw]);
    assert!(a.learn.as_ref().unwrap().fields[0].ends_with('q'));
    a.handle_key(key(KeyCode::Esc));
    assert!(a.learn.is_none());
    assert_eq!(a.monitor.selected, None);
}

#[test]
fn save_with_nothing_reviewed_warns() {
    let mut a = filled(2);
    assert_eq!(a.handle_key(key(KeyCode::Char('s'))), vec![Action::Redraw]);
    assert!(a.active_notice(Instant::now()).is_some_and(|n| n.warning));
}

#[test]
fn student_failure_and_health_and_started() {
    let mut a = app();
    a.handle_event(Event::Started {
        at: Utc::now(),
        student: "gemma4:e2b".into(),
        teacher: "gemma4:26b@mac".into(),
        source: "camera 0".into(),
        skill: "skill.txt".into(),
    });
    assert_eq!(a.student.name, "gemma4:e2b@127.0.0.1");
    assert_eq!(a.teacher.name, "gemma4:26b@mac");
    a.handle_event(frame(1));
    a.handle_event(Event::StudentFailed {
        seq: 1,
        error: "timeout".into(),
    });
    assert_eq!(a.monitor.entries[0].failed.as_deref(), Some("timeout"));
    assert!(!a.busy());
    a.handle_event(Event::Health {
        role: Role::Teacher,
        health: Health::Offline {
            reason: "connection refused".into(),
            hint: "start ollama".into(),
        },
    });
    assert!(matches!(a.health(Role::Teacher), Health::Offline { .. }));
    a.handle_event(Event::Warning {
        message: "camera lost".into(),
    });
    assert_eq!(a.active_notice(Instant::now()).unwrap().text, "camera lost");
    assert!(a.needs_tick());
    assert!(a
        .active_notice(Instant::now() + NOTICE_FOR + Duration::from_millis(1))
        .is_none());
}

#[test]
fn mouse_click_selects_and_wheel_moves() {
    let mut a = filled(5);
    let inner = layout::panes(Rect::new(0, 0, 80, 24)).unwrap().log_inner();
    // 5 entries in a taller log: entry #2 is on the second row.
    a.handle_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: inner.x + 3,
        row: inner.y + 1,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(a.monitor.selected, Some(2));
    a.handle_mouse(MouseEvent {
        kind: MouseEventKind::ScrollDown,
        column: 0,
        row: 0,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(a.monitor.cursor, Some(3));
    // A click below the last entry selects nothing new.
    a.handle_mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: inner.x + 3,
        row: inner.y + 7,
        modifiers: KeyModifiers::NONE,
    });
    assert_eq!(a.monitor.selected, Some(2));
}

#[test]
fn an_early_verdict_before_the_answer_is_kept_with_the_full_answer() {
    use crate::tui::render_tests::{render, text};
    let mut a = app();
    a.set_size(120, 40);
    a.handle_event(frame(1));
    a.handle_event(Event::StudentToken {
        seq: 1,
        text: "Smoke rises ".into(),
    });
    let early = |needed| Reason::SafetyEarly {
        keyword: "smoke".into(),
        needed,
    };
    // The keyword went to the teacher mid-answer, whose verdict comes first.
    a.handle_event(Event::Escalated {
        seq: 1,
        reasons: vec![early(None)],
        queue_len: 1,
        frame_path: None,
    });
    a.handle_event(Event::TeacherStarted {
        seq: 1,
        queue_len: 0,
    });
    let v = Verdict {
        agrees: Some(true),
        safety_relevant: Some(true),
        summary: "a pan smokes on the stove".into(),
        ..Verdict::default()
    };
    a.handle_event(Event::TeacherVerdict {
        seq: 1,
        verdict: v.clone(),
        latency_ms: 2000,
    });
    let shown = text(&render(&a, 120, 40));
    assert!(
        shown.contains("EARLY review (smoke): sent mid-answer"),
        "{shown}"
    );
    assert!(shown.contains("EARLY:smoke"), "the log badge: {shown}");
    // The answer completes after the verdict: both stay, the early mark too.
    a.handle_event(answer(
        1,
        "Smoke rises from a pan on the stove.",
        Some(0.9),
        vec![early(Some(true))],
    ));
    let e = a.monitor.entry(1).unwrap();
    assert_eq!(e.teacher, TeacherState::Verdict(v, 2000));
    assert_eq!(e.answer, "Smoke rises from a pan on the stove.");
    assert_eq!(e.early(), Some(("smoke", Some(true))));
    let shown = text(&render(&a, 120, 40));
    assert!(
        shown.contains("EARLY review (smoke): the verdict is about the"),
        "{shown}"
    );
    assert!(
        shown.contains("Smoke rises from a pan on the stove."),
        "{shown}"
    );
}
