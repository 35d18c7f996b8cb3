//! Render tests of the upskill screen (`view.rs`'s `tests`).

#[cfg(test)]
use super::*;
use crate::eval::cases::Split;
use crate::tui::action::Screen;
use crate::tui::app::tests::key;
use crate::tui::app::App;
use crate::tui::render_tests::{find, render, rows, sample, text};
use crate::tui::screens::upskill::state::tests::{finished, mid_run};
use crossterm::event::KeyCode;
use ratatui::style::{Color, Modifier};

fn on_screen(st: UpskillState) -> App {
    let mut a = sample();
    a.screen = Screen::Upskill;
    a.upskill = st;
    a
}

#[test]
fn overconfident_cases_are_marked_and_counted() {
    use crate::tui::screens::upskill::state::tests::result;
    use crate::upskill::pipeline::UpskillEvent;
    let mut st = mid_run();
    // Candidate 2 fails case 2 while saying it is sure.
    let mut r = result("coffee-cup", Split::Train, 0.0, None);
    r.score.safety_ok = false;
    r.score.calibration_penalty = 0.29;
    st.handle_event(
        UpskillEvent::CaseScored {
            row: 2,
            column: 1,
            result: r,
            done_calls: 12,
            total_calls: 25,
        },
        Instant::now(),
    );
    st.selected = 2;
    let a = on_screen(st);
    for (w, h) in [(80, 24), (160, 48)] {
        let buf = render(&a, w, h);
        let t = text(&buf);
        assert!(
            t.contains(
                "▶ cand 2         —     — 100%                     │0.40 0.00!   · │   ·    ·"
            ),
            "{w}x{h}\n{t}"
        );
        let (x, y) = find(&buf, "0.00!").unwrap();
        assert_eq!(buf[(x + 4, y)].fg, Color::Magenta);
        assert!(
            t.contains("! wrong but stated confidence > 0.5"),
            "{w}x{h}\n{t}"
        );
        assert!(
            t.contains("prompt · cand 2 · overconfident on 1 case"),
            "{w}x{h}\n{t}"
        );
    }
}

#[test]
fn mid_run_matrix_at_80x24_and_160x48() {
    let a = on_screen(mid_run());
    for (w, h) in [(80, 24), (160, 48)] {
        let buf = render(&a, w, h);
        let t = text(&buf);
        assert!(t.contains("upskill · running"), "{t}");
        assert!(t.contains("phase: scoring candidate 2 of 2"), "{t}");
        assert!(t.contains("11/15 calls · 0:00 elapsed"), "{t}");
        assert!(
            t.contains(
                "skill      train  hold  fmt gain (90% interval) │   1    2    3 │   4    5"
            ),
            "{w}x{h}\n{t}"
        );
        assert!(
            t.contains(
                "▶ current     0.58  0.63  60%                     │0.50 0.25 1.00 │0.50 0.75"
            ),
            "{w}x{h}\n{t}"
        );
        assert!(
            t.contains(
                "  cand 1      0.70  0.90 100% +0.12 [+0.03,+0.20] │0.90 0.90    E │0.90 0.90"
            ),
            "{w}x{h}\n{t}"
        );
        assert!(
            t.contains(
                "  cand 2         —     — 100%                     │0.40    ·    · │   ·    ·"
            ),
            "{w}x{h}\n{t}"
        );
        assert!(
            t.contains("cases 1-5 of 5 · train 1-3, holdout 4-5 · 1 lighter-flame 2 coffee-cup"),
            "{w}x{h}\n{t}"
        );
        assert!(t.contains("prompt · current"), "{t}");
        assert!(t.contains("Describe the scene."), "{t}");
        assert!(t.contains("Esc cancel the run"), "{t}");
        let (x, y) = find(&buf, "0.25").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(&buf, "1.00").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Green);
        let (x, y) = find(&buf, "   E").unwrap();
        assert_eq!(buf[(x + 3, y)].fg, Color::Red);
        let (x, y) = find(&buf, "▶ current").unwrap();
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
        // The frame stays whole: right border on every body row.
        for y in 2..h - 1 {
            assert_eq!(buf[(w - 1, y)].symbol(), "│", "{w}x{h} y={y}\n{t}");
        }
    }
    // Wide: the prompt pane sits beside the matrix.
    let buf = render(&a, 160, 48);
    let (px, py) = find(&buf, "prompt · current").unwrap();
    let (mx, my) = find(&buf, "▶ current").unwrap();
    assert!(
        px > mx + 60 && py < my,
        "prompt at {px},{py}; matrix at {mx},{my}"
    );
    // Narrow: below it.
    let buf = render(&a, 80, 24);
    let (_, py) = find(&buf, "prompt · current").unwrap();
    let (_, my) = find(&buf, "▶ current").unwrap();
    assert!(py > my);
}

#[test]
fn finished_run_shows_the_decision_and_winner() {
    let mut a = on_screen(finished());
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(&render(&a, w, h));
        assert!(t.contains("upskill · finished"), "{t}");
        assert!(t.contains("▶ cand 1 ★"), "{t}");
        assert!(
            t.contains("applied candidate 1: saved skills/skill.txt; used from the next"),
            "{w}x{h}\n{t}"
        );
        assert!(t.contains("prompt · cand 1"), "{t}");
        assert!(t.contains("Candidate prompt 1: name every object"), "{t}");
        assert!(t.contains("Enter apply row"), "{t}");
    }
    a.handle_key(key(KeyCode::Down));
    a.handle_key(key(KeyCode::Enter));
    let t = text(&render(&a, 80, 24));
    assert!(
        t.contains("apply cand 2 as the skill (saves skills/skill.txt)? y/n"),
        "{t}"
    );
    assert!(t.contains("y apply · n cancel"), "{t}");
}

#[test]
fn many_cases_scroll_and_refusal_shows() {
    let mut st = mid_run();
    st.columns = (0..25)
        .map(|i| {
            (
                format!("case-{i}"),
                if i < 18 { Split::Train } else { Split::Holdout },
            )
        })
        .collect();
    let a = on_screen(st.clone());
    let t = text(&render(&a, 80, 24));
    assert!(t.contains("cases 1-5 of 25 (←/→)"), "{t}");
    let t = text(&render(&a, 160, 48));
    assert!(t.contains("cases 1-"), "{t}");
    st.col_offset = 20;
    let t = text(&render(&on_screen(st.clone()), 80, 24));
    assert!(t.contains("cases 21-25 of 25"), "{t}");
    assert!(t.contains("  21   22   23   24   25"), "{t}");
    let mut st = UpskillState::new("skills/skill.txt".into());
    st.refuse("the skills dir /ro is not writable (Permission denied)");
    let t = text(&render(&on_screen(st), 80, 24));
    assert!(t.contains("upskill · not started"), "{t}");
    assert!(
        t.contains("not started: the skills dir /ro is not writable"),
        "{t}"
    );
    // Every size keeps the first row readable and nothing panics.
    for (w, h) in [(60, 16), (61, 17), (100, 30), (300, 100)] {
        let r = rows(&render(&a, w, h));
        assert!(r.len() == h as usize);
    }
}

#[test]
fn prompt_text_is_sanitized() {
    let mut st = mid_run();
    st.rows[0].prompt = "Be brief.\x1b]0;pwned\x07 \x1b[2J\u{9b}1m".into();
    let t = text(&render(&on_screen(st), 80, 24));
    assert!(t.contains("Be brief."), "{t}");
    for bad in ['\x1b', '\x07', '\u{9b}'] {
        assert!(!t.contains(bad));
    }
}

#[test]
fn the_format_warning_and_share_show_when_most_answers_lack_the_line() {
    use crate::tui::screens::upskill::state::tests::result;
    use crate::upskill::pipeline::UpskillEvent;
    let mut st = UpskillState::new("skills/skill.txt".into());
    let now = Instant::now();
    st.begin(now);
    let cols = crate::tui::screens::upskill::state::tests::columns();
    st.handle_event(
        UpskillEvent::Started {
            cases: cols.clone(),
            total_calls: 15,
        },
        now,
    );
    st.handle_event(
        UpskillEvent::Row {
            row: 0,
            label: "current skill".into(),
            prompt: "Describe the scene.".into(),
        },
        now,
    );
    for (c, (id, split)) in cols.iter().enumerate() {
        let mut r = result(id, *split, 0.5, None);
        r.score.format_ok = false;
        st.handle_event(
            UpskillEvent::CaseScored {
                row: 0,
                column: c,
                result: r,
                done_calls: c + 1,
                total_calls: 15,
            },
            now,
        );
    }
    st.handle_event(
        UpskillEvent::Warning(
            "0 of 5 answers ended with a confidence line: every live frame would escalate".into(),
        ),
        now,
    );
    let a = on_screen(st);
    for (w, h) in [(80, 24), (160, 48)] {
        let buf = render(&a, w, h);
        let t = text(&buf);
        assert!(t.contains("▶ current        —     —   0%"), "{w}x{h}\n{t}");
        assert!(
            t.contains("warning: 0 of 5 answers ended with a confidence line: every live"),
            "{w}x{h}\n{t}"
        );
        let (x, y) = find(&buf, "  0%").unwrap();
        assert_eq!(buf[(x + 3, y)].fg, Color::Red, "most without the line: red");
        let (x, y) = find(&buf, "warning: 0 of 5").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
    }
}

#[test]
fn the_fine_tune_verdict_and_past_runs_show_when_no_run_is_going() {
    let mut st = finished();
    st.finetune = Some("not yet: 37 distinct labelled frames (want ≥ 100)".into());
    st.past_runs = vec![
        "2026-12-02 10:00  +0.061  skill switched  gemma4:e2b".into(),
        "2026-12-03 10:00  +0.000  skill kept      gemma-edge-ft  (student switched from gemma4:e2b)".into(),
    ];
    let t = text(&render(&on_screen(st.clone()), 160, 48));
    assert!(
        t.contains("fine-tune: not yet: 37 distinct labelled frames (want ≥ 100)"),
        "{t}"
    );
    // The run history shows the model switch beside the skill switches.
    assert!(t.contains("past runs (newest last):"), "{t}");
    assert!(
        t.contains("+0.000  skill kept      gemma-edge-ft  (student switched from gemma4:e2b)"),
        "{t}"
    );
    // Kept when the next run begins, hidden while it runs.
    st.begin(Instant::now());
    assert!(st.finetune.is_some() && st.past_runs.len() == 2);
    let t = text(&render(&on_screen(st), 160, 48));
    assert!(!t.contains("fine-tune:"), "{t}");
    assert!(!t.contains("past runs"), "{t}");
}
