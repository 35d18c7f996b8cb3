//! Render tests of the whole console (TestBackend): the sample states every screen's
//! tests reuse, and the monitor's and status bar's assertions.

use crate::event::{Event, Health, ModelLoad, Role};
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use crate::tui::app::tests::{answer, app, frame, key};
use crate::tui::app::App;
use crate::tui::images::tests::test_frame;
use crate::tui::images::ImageState;
use crate::tui::keys;
use crate::tui::layout;
use crate::tui::theme::Theme;
use crate::tui::ui::draw;
use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};
use ratatui::Terminal;
use ratatui_image::picker::Picker;

pub(crate) fn render(app: &App, w: u16, h: u16) -> Buffer {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut images = ImageState::inline(Picker::halfblocks());
    term.draw(|f| draw(f, app, &mut images)).unwrap();
    term.backend().buffer().clone()
}

pub(crate) fn rows(buf: &Buffer) -> Vec<String> {
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

pub(crate) fn text(buf: &Buffer) -> String {
    rows(buf).join("\n")
}

/// Position of the first cell where `needle` starts.
pub(crate) fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    for (y, row) in rows(buf).iter().enumerate() {
        // Cells hold one symbol each; map byte offset back to column.
        if let Some(off) = row.find(needle) {
            let col = row[..off].chars().count();
            return Some((col as u16, y as u16));
        }
    }
    None
}

pub(crate) fn sample() -> App {
    let mut a = app();
    a.handle_event(Event::Started {
        at: chrono::Utc::now(),
        student: "gemma4:e2b".into(),
        teacher: "gemma4:26b".into(),
        source: "camera 0".into(),
        skill: "skill.txt".into(),
    });
    a.handle_event(Event::Health {
        role: Role::Student,
        health: Health::Ok { latency_ms: 900 },
    });
    a.handle_event(Event::Health {
        role: Role::Teacher,
        health: Health::Offline {
            reason: "connection refused".into(),
            hint: "is ollama running on the teacher?".into(),
        },
    });
    a.handle_event(frame(1));
    a.handle_event(answer(
        1,
        "A cat on a sofa.\nCONFIDENCE: 0.82",
        Some(0.82),
        vec![],
    ));
    a.handle_event(frame(2));
    a.handle_event(answer(
        2,
        "A blurry clock.",
        Some(0.42),
        vec![Reason::LowConfidence {
            confidence: 0.42,
            threshold: 0.55,
        }],
    ));
    a.handle_event(frame(3));
    a.handle_event(answer(
        3,
        "Smoke near the stove.",
        None,
        vec![
            Reason::NoConfidence,
            Reason::Safety {
                keyword: "smoke".into(),
            },
        ],
    ));
    a.handle_event(Event::Escalated {
        seq: 3,
        reasons: vec![
            Reason::NoConfidence,
            Reason::Safety {
                keyword: "smoke".into(),
            },
        ],
        queue_len: 2,
        frame_path: None,
    });
    a.handle_event(frame(4));
    a.handle_event(answer(4, "A hallway.", Some(0.7), vec![]));
    a
}

#[test]
fn log_shows_confidence_badges_and_dash() {
    let a = sample();
    let buf = render(&a, 80, 24);
    let t = text(&buf);
    assert!(t.contains("#1 0.82 A cat on a sofa."), "{t}");
    assert!(t.contains("#2 0.42 A blurry clock. [LOW]"), "{t}");
    assert!(
        t.contains("#3 —    Smoke near the stove. [NOCONF] [SAFETY:smoke] ⧗2"),
        "{t}"
    );
    assert!(t.contains("#4 0.70 A hallway."), "{t}");
    // Colours: red below the threshold, yellow below 0.8, green above.
    let (x, y) = find(&buf, "0.42").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let (x, y) = find(&buf, "0.70").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    let (x, y) = find(&buf, "0.82").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Green);
    let (x, y) = find(&buf, "[SAFETY:smoke]").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    let (x, y) = find(&buf, "[LOW]").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
}

#[test]
fn an_escalation_storm_shows_in_the_status_bar() {
    let mut a = sample();
    for seq in 10..22 {
        a.handle_event(Event::StudentAnswer {
            seq,
            at: chrono::Utc::now(),
            answer: "A blurry shape.".into(),
            confidence: None,
            measured_confidence: None,
            latency_ms: 900,
            reasons: vec![Reason::NoConfidence],
            skill: "skill.txt".into(),
        });
    }
    let buf = render(&a, 300, 40);
    let status = &rows(&buf)[0];
    // 14 of the 16 answers (the sample's 4 and these 12) escalated.
    assert!(status.contains("esc 88% storm!"), "{status}");
    let (x, y) = find(&buf, "storm!").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
}

#[test]
fn status_bar_content() {
    let mut a = sample();
    a.handle_event(Event::StudentAnswer {
        seq: 4,
        at: chrono::Utc::now(),
        answer: "A hallway.".into(),
        confidence: Some(0.7),
        measured_confidence: None,
        latency_ms: 1200,
        reasons: vec![],
        skill: "skill.txt".into(),
    });
    let buf = render(&a, 300, 40);
    let status = &rows(&buf)[0];
    assert!(
        status.contains(
            "student gemma4:e2b@127.0.0.1 ok 1.2s (med 1.2s) | teacher gemma4:26b@mac-mini.local offline: connection refused | frames 4 esc 20% | queue 2 | skill skill.txt | ? help"
        ),
        "{status}"
    );
    // At 80 columns it is cut, and nothing spills into the next row.
    let buf = render(&a, 80, 24);
    let r = rows(&buf);
    assert!(
        r[0].starts_with("student gemma4:e2b@127.0.0.1 ok 1.2s"),
        "{}",
        r[0]
    );
    assert!(r[1].starts_with('┌'), "{}", r[1]);
}

#[test]
fn status_bar_shows_model_load_state() {
    let mut a = sample();
    a.student.health = Health::Ok { latency_ms: 1200 };
    a.teacher.health = Health::Ok { latency_ms: 2000 };
    let status = |a: &App| rows(&render(a, 300, 40))[0].clone();
    assert!(
        !status(&a).contains("loaded") && !status(&a).contains("loading"),
        "unknown (OpenAI-compatible hosts): nothing shown: {}",
        status(&a)
    );
    a.handle_event(Event::ModelLoad {
        role: crate::event::Role::Student,
        state: ModelLoad::Loaded,
        took_ms: Some(900),
    });
    a.handle_event(Event::ModelLoad {
        role: crate::event::Role::Teacher,
        state: ModelLoad::Loading,
        took_ms: None,
    });
    let s = status(&a);
    assert!(
        s.contains("student gemma4:e2b@127.0.0.1 ok 1.2s (med 1.2s) loaded |"),
        "{s}"
    );
    assert!(
        s.contains("teacher gemma4:26b@mac-mini.local ok 2.0s loading… |"),
        "{s}"
    );
    let buf = render(&a, 300, 40);
    let (x, y) = find(&buf, "loading…").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Yellow);
    // A review during the load says so.
    a.handle_event(Event::TeacherStarted {
        seq: 3,
        queue_len: 0,
    });
    let t = text(&render(&a, 160, 48));
    assert!(
        t.contains("reviewing… (the teacher model is loading)"),
        "{t}"
    );
    a.handle_event(Event::ModelLoad {
        role: crate::event::Role::Teacher,
        state: ModelLoad::NotLoaded,
        took_ms: None,
    });
    assert!(
        status(&a).contains("ok 2.0s not loaded |"),
        "{}",
        status(&a)
    );
}

#[test]
fn an_unanswered_frame_says_why_and_the_status_bar_says_the_teacher_watches_alone() {
    let mut a = sample();
    a.handle_event(frame(7));
    a.handle_event(Event::FrameUnanswered {
        seq: 7,
        why: "student offline".into(),
    });
    a.handle_event(Event::TeacherAlone {
        on: true,
        every_secs: 20,
    });
    let t = text(&render(&a, 200, 48));
    assert!(t.contains("#7 —    not answered: student offline"), "{t}");
    assert!(
        !a.monitor.entry(7).unwrap().in_flight(),
        "no spinner for it"
    );
    let s = rows(&render(&a, 300, 40))[0].clone();
    assert!(
        s.contains("| teacher watches alone, 1 frame / 20 s (student down) |"),
        "{s}"
    );
    a.handle_event(Event::TeacherAlone {
        on: false,
        every_secs: 20,
    });
    let s = rows(&render(&a, 300, 40))[0].clone();
    assert!(!s.contains("watches alone"), "{s}");
}

#[test]
fn an_unreachable_model_shows_no_load_state() {
    let mut a = sample();
    a.handle_event(Event::ModelLoad {
        role: crate::event::Role::Student,
        state: ModelLoad::Loading,
        took_ms: None,
    });
    a.handle_event(Event::Health {
        role: crate::event::Role::Student,
        health: Health::Offline {
            reason: "connection refused (http://127.0.0.1:11434)".into(),
            hint: "start it: ollama serve".into(),
        },
    });
    let s = rows(&render(&a, 300, 40))[0].clone();
    assert!(s.contains("offline: connection refused (http"), "{s}");
    assert!(!s.contains("loading"), "offline and loading together: {s}");
    // Back online, the load state shows again.
    a.handle_event(Event::Health {
        role: crate::event::Role::Student,
        health: Health::Ok { latency_ms: 800 },
    });
    let s = rows(&render(&a, 300, 40))[0].clone();
    assert!(s.contains("loading…"), "{s}");
}

#[test]
fn an_offline_student_says_what_to_do_in_the_log_pane() {
    let mut a = sample();
    a.handle_event(Event::Health {
        role: crate::event::Role::Student,
        health: crate::event::Health::Offline {
            reason: "connection refused (http://127.0.0.1:11434)".into(),
            hint: "start it: `ollama serve`, then `ollama pull gemma4:e2b`".into(),
        },
    });
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(&render(&a, w, h));
        assert!(t.contains("student offline: connection refused"), "{t}");
        assert!(t.contains("ollama serve"), "{t}");
    }
}

#[test]
fn paused_and_warning_show_in_status() {
    let mut a = sample();
    a.handle_event(Event::Paused { paused: true });
    a.handle_event(Event::Warning {
        message: "camera \x1b[31mlost".into(),
    });
    let buf = render(&a, 160, 48);
    let status = &rows(&buf)[0];
    assert!(status.starts_with("PAUSED | ⚠ camera"), "{status}");
    assert!(status.contains("lost"), "{status}");
}

#[test]
fn teacher_pane_states() {
    let mut a = sample();
    let t = text(&render(&a, 80, 24));
    assert!(t.contains("waiting for teacher (queued #2)"), "{t}");
    assert!(t.contains("teacher offline: connection refused"), "{t}");
    a.handle_event(Event::TeacherStarted {
        seq: 3,
        queue_len: 0,
    });
    assert!(text(&render(&a, 80, 24)).contains("reviewing…"));
    a.handle_event(Event::TeacherVerdict {
        seq: 3,
        verdict: Verdict {
            level: None,
            title: String::new(),
            watches: Default::default(),
            truncated: false,
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "Steam from a kettle, not smoke.".into(),
            missed: vec!["a kettle".into()],
            wrong: vec!["smoke".into()],
            raw: None,
        },
        latency_ms: 8100,
    });
    a.teacher.health = Health::Ok { latency_ms: 8100 };
    let buf = render(&a, 160, 48);
    let t = text(&buf);
    assert!(t.contains("DISAGREES  SAFETY RELEVANT  8.1s"), "{t}");
    assert!(t.contains("Steam from a kettle, not smoke."), "{t}");
    assert!(t.contains("missed: a kettle"), "{t}");
    assert!(t.contains("wrong: smoke"), "{t}");
    assert!(
        t.contains("why: no confidence reported, safety keyword: smoke"),
        "{t}"
    );
    let (x, y) = find(&buf, "DISAGREES").unwrap();
    assert_eq!(buf[(x, y)].fg, Color::Red);
    // An unreadable verdict shows the raw reply.
    a.handle_event(Event::TeacherVerdict {
        seq: 3,
        verdict: Verdict {
            raw: Some("I think it is fine".into()),
            ..Verdict::default()
        },
        latency_ms: 100,
    });
    let t = text(&render(&a, 80, 24));
    assert!(t.contains("verdict not readable"), "{t}");
    assert!(t.contains("I think it is fine"), "{t}");
    a.handle_event(Event::TeacherFailed {
        seq: 3,
        error: "HTTP 500".into(),
    });
    let t = text(&render(&a, 80, 24));
    assert!(
        t.contains("teacher failed:") && t.contains("HTTP 500"),
        "{t}"
    );
    a.handle_event(Event::TeacherDropped {
        seq: 3,
        reasons: vec![],
    });
    assert!(text(&render(&a, 80, 24)).contains("dropped: the teacher queue was full"));
}

#[test]
fn selecting_an_entry_shows_it() {
    let mut a = sample();
    for _ in 0..4 {
        a.handle_key(key(KeyCode::Up));
    }
    a.handle_key(key(KeyCode::Enter));
    assert_eq!(a.monitor.selected, Some(1));
    let buf = render(&a, 80, 24);
    let t = text(&buf);
    assert!(t.contains("teacher · #1"), "{t}");
    assert!(t.contains("not sent to the teacher"), "{t}");
    assert!(t.contains("student (0.82):"), "{t}");
    assert!(t.contains("▶"), "{t}");
    let (x, y) = find(&buf, "#1 0.82").unwrap();
    assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
    assert!(t.contains("log · #1 · End/Esc: live"), "{t}");
}

#[test]
fn frame_pane_shows_thumbnail_and_size() {
    let mut a = app();
    a.handle_event(Event::FrameTaken {
        dhash: None,
        seq: 9,
        captured_at: chrono::Utc::now(),
        label: "kitchen.jpg".into(),
        width: 768,
        height: 432,
        jpeg_bytes: 1,
        superseded: 0,
        image: Some(test_frame(768, 432)),
    });
    for (w, h) in [(80, 24), (160, 48)] {
        let buf = render(&a, w, h);
        let t = text(&buf);
        assert!(t.contains("768×432 px, "), "{t}");
        assert!(t.contains("KB"), "{t}");
        assert!(t.contains("#9 · live · kitchen.jpg"), "{t}");
        let p = layout::panes(buf.area).unwrap();
        let inner = layout::inner(p.frame);
        let blocks = (inner.top()..inner.bottom())
            .flat_map(|y| (inner.left()..inner.right()).map(move |x| (x, y)))
            .filter(|&(x, y)| matches!(buf[(x, y)].symbol(), "▀" | "▄"))
            .count();
        assert!(blocks > 20, "{w}x{h}: {blocks} halfblocks\n{t}");
    }
}

#[test]
fn help_overlay_lists_keys() {
    let mut a = sample();
    a.handle_key(key(KeyCode::Char('?')));
    let t = text(&render(&a, 80, 24));
    for (k, d) in keys::overlay_rows_for(&[keys::Context::Monitor, keys::Context::All]) {
        assert!(t.contains(k.as_str()), "{k} missing\n{t}");
        assert!(t.contains(d), "{d} missing\n{t}");
    }
    // Fits at the minimum size too.
    let t = text(&render(&a, 60, 16));
    assert!(t.contains("quit"), "{t}");
}

#[test]
fn small_terminal_notice() {
    let a = sample();
    let buf = render(&a, 59, 20);
    assert!(rows(&buf)[0].starts_with("terminal too small (59x20): need at least 60x16"));
    let buf = render(&a, 100, 15);
    assert!(rows(&buf)[0].starts_with("terminal too small (100x15)"));
    assert_eq!(rows(&render(&a, 1, 1))[0], "t");
}

#[test]
fn terminal_escapes_in_model_text_never_reach_the_buffer() {
    let mut a = sample();
    let evil = "owned \x1b]0;pwned\x07 \x1b[2J\x1b[31mred\u{9b}1m";
    a.handle_event(frame(5));
    a.handle_event(Event::StudentToken {
        seq: 5,
        text: evil.into(),
    });
    let t = text(&render(&a, 80, 24));
    assert!(!t.contains('\x1b') && !t.contains('\x07') && !t.contains('\u{9b}'));
    a.handle_event(answer(5, evil, Some(0.9), vec![]));
    a.handle_event(Event::Escalated {
        seq: 5,
        reasons: vec![Reason::Forced],
        queue_len: 1,
        frame_path: None,
    });
    a.handle_event(Event::TeacherVerdict {
        seq: 5,
        verdict: Verdict {
            agrees: Some(true),
            summary: evil.into(),
            missed: vec![evil.into()],
            wrong: vec![evil.into()],
            raw: Some(evil.into()),
            ..Verdict::default()
        },
        latency_ms: 1,
    });
    a.handle_event(Event::Warning {
        message: evil.into(),
    });
    for (w, h) in [(80, 24), (160, 48)] {
        let t = text(&render(&a, w, h));
        assert!(t.contains("owned"), "{t}");
        for bad in ['\x1b', '\x07', '\u{9b}'] {
            assert!(!t.contains(bad), "{bad:?} at {w}x{h}:\n{t}");
        }
    }
}

#[test]
fn long_answers_stay_inside_their_panes() {
    let mut a = sample();
    let long = format!("{} {}", "word ".repeat(3000), "X".repeat(5000));
    a.handle_event(frame(5));
    a.handle_event(answer(
        5,
        &long,
        Some(0.9),
        vec![Reason::Safety {
            keyword: "fire".into(),
        }],
    ));
    a.handle_event(Event::Escalated {
        seq: 5,
        reasons: vec![Reason::Forced],
        queue_len: 1,
        frame_path: None,
    });
    a.handle_event(Event::TeacherVerdict {
        seq: 5,
        verdict: Verdict {
            agrees: Some(true),
            summary: long.clone(),
            ..Verdict::default()
        },
        latency_ms: 1,
    });
    for (w, h) in [(60, 16), (80, 24), (160, 48)] {
        let buf = render(&a, w, h);
        let p = layout::panes(buf.area).unwrap();
        // Every pane's border is intact: no text ran over it.
        for r in [p.frame, p.log, p.teacher] {
            for y in r.top() + 1..r.bottom() - 1 {
                assert_eq!(buf[(r.left(), y)].symbol(), "│", "{w}x{h} {r:?} y={y}");
                assert_eq!(buf[(r.right() - 1, y)].symbol(), "│", "{w}x{h} {r:?} y={y}");
            }
            for x in r.left() + 1..r.right() - 1 {
                let s = buf[(x, r.bottom() - 1)].symbol();
                assert_eq!(s, "─", "{w}x{h} {r:?} x={x}");
            }
        }
        // The badge survives the cut.
        let t = text(&buf);
        assert!(t.contains("… [FORCED] ✓"), "{w}x{h}\n{t}");
    }
}

#[test]
fn no_color_keeps_reverse_and_drops_colours() {
    let mut a = sample();
    a.theme = Theme { color: false };
    a.handle_key(key(KeyCode::Up));
    let buf = render(&a, 80, 24);
    for c in buf.content() {
        assert_eq!(c.fg, Color::Reset, "{c:?}");
        assert_eq!(c.bg, Color::Reset, "{c:?}");
    }
    let (x, y) = find(&buf, "#3 —").unwrap();
    assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn never_panics_at_any_size() {
    let mut a = sample();
    a.handle_event(Event::FrameTaken {
        dhash: None,
        seq: 6,
        captured_at: chrono::Utc::now(),
        label: "x".repeat(500),
        width: 64,
        height: 36,
        jpeg_bytes: 5000,
        superseded: 0,
        image: Some(test_frame(64, 36)),
    });
    a.handle_event(Event::StudentToken {
        seq: 6,
        text: "streaming".into(),
    });
    let sizes = [
        1u16, 2, 3, 10, 15, 16, 17, 23, 24, 59, 60, 61, 79, 80, 119, 120, 121, 200, 300,
    ];
    for &w in &sizes {
        for &h in &[1u16, 2, 5, 15, 16, 17, 24, 48, 100] {
            for help in [false, true] {
                a.help = help;
                a.set_size(w, h);
                a.handle_key(key(KeyCode::PageUp));
                render(&a, w, h);
                a.handle_key(key(KeyCode::End));
                render(&a, w, h);
            }
        }
    }
}
