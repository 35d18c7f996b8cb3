//! Snapshot tests (insta) of every screen and popup at 80×24 and 120×40, drawn on
//! ratatui's TestBackend from the sample states the render tests use. Clock times are
//! masked so the snapshots hold on any machine and in any time zone.

use crate::event::Event;
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use crate::tui::action::Screen;
use crate::tui::app::tests::key;
use crate::tui::app::App;
use crate::tui::images::ImageState;
use crate::tui::popups::learn_editor::state::tests::editor;
use crate::tui::render_tests::{rows, sample};
use crate::tui::screens::calibration::tests::store;
use crate::tui::screens::calibration::{from_store, CalibrationData};
use crate::tui::screens::upskill::state::tests::{finished, mid_run};
use crate::tui::ui::draw_at;
use crossterm::event::KeyCode;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use ratatui_image::picker::Picker;
use std::time::Instant;

const SIZES: [(u16, u16); 2] = [(80, 24), (120, 40)];

/// `12:34:56` → `hh:mm:ss`, `1:23 elapsed` → `m:ss elapsed` (and `left`).
fn mask_clocks(line: &str) -> String {
    let c: Vec<char> = line.chars().collect();
    let d = |i: usize| c.get(i).is_some_and(|x| x.is_ascii_digit());
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        let hms = d(i) && d(i + 1) && c.get(i + 2) == Some(&':') && d(i + 3) && d(i + 4);
        if hms && c.get(i + 5) == Some(&':') && d(i + 6) && d(i + 7) {
            out.push_str("hh:mm:ss");
            i += 8;
            continue;
        }
        let rest: String = c[(i + 4).min(c.len())..].iter().collect();
        let clock = rest.starts_with(" elapsed") || rest.starts_with(" left");
        if clock && d(i) && c.get(i + 1) == Some(&':') && d(i + 2) && d(i + 3) {
            out.push_str("m:ss");
            i += 4;
            continue;
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// The screen as text, clocks masked, drawn at `now`.
fn screen_at(app: &App, w: u16, h: u16, now: Instant) -> String {
    let mut app_sized = Terminal::new(TestBackend::new(w, h)).unwrap();
    let mut images = ImageState::inline(Picker::halfblocks());
    app_sized
        .draw(|f| draw_at(f, app, &mut images, now))
        .unwrap();
    let buf = app_sized.backend().buffer().clone();
    rows(&buf)
        .iter()
        .map(|r| mask_clocks(r.trim_end()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn snap(name: &str, app: &mut App, now: Instant) {
    for (w, h) in SIZES {
        app.set_size(w, h);
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), screen_at(app, w, h, now));
    }
}

/// The sample log with the teacher's verdict on #3 (the README's picture).
fn monitor() -> App {
    let mut a = sample();
    a.handle_event(Event::TeacherVerdict {
        seq: 3,
        verdict: Verdict {
            level: None,
            title: String::new(),
            watches: Default::default(),
            truncated: false,
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "Steam from a kettle on the stove, not smoke.".into(),
            missed: vec!["a kettle".into()],
            wrong: vec!["smoke".into()],
            raw: None,
        },
        latency_ms: 8100,
    });
    a.handle_event(Event::Escalated {
        seq: 4,
        reasons: vec![Reason::Audit],
        queue_len: 1,
        frame_path: None,
    });
    a
}

fn calibration(data: CalibrationData) -> App {
    let mut a = sample();
    a.screen = Screen::Calibration;
    a.calibration = Some(data);
    a
}

#[test]
fn monitor_screen() {
    snap("monitor", &mut monitor(), Instant::now());
}

#[test]
fn monitor_scrolled_back_and_pinned() {
    let mut a = monitor();
    a.set_size(80, 24);
    for _ in 0..3 {
        a.handle_key(key(KeyCode::Up));
    }
    a.handle_key(key(KeyCode::Enter));
    snap("monitor_pinned", &mut a, Instant::now());
}

#[test]
fn help_popup() {
    let mut a = monitor();
    a.handle_key(key(KeyCode::Char('?')));
    snap("help", &mut a, Instant::now());
}

#[test]
fn learn_editor_popup() {
    let mut a = monitor();
    a.learn = Some(editor());
    snap("learn_editor", &mut a, Instant::now());
}

#[test]
fn upskill_screen_mid_run() {
    let mut a = sample();
    a.screen = Screen::Upskill;
    a.upskill = mid_run();
    let now = a.upskill.started_at.unwrap();
    snap("upskill_running", &mut a, now);
}

#[test]
fn upskill_screen_finished() {
    let mut a = sample();
    a.screen = Screen::Upskill;
    a.upskill = finished();
    let now = a.upskill.ended_at.unwrap();
    snap("upskill_finished", &mut a, now);
}

#[test]
fn confirm_popup() {
    let mut a = sample();
    a.screen = Screen::Upskill;
    a.upskill = finished();
    a.upskill.selected = 2;
    a.handle_key(key(KeyCode::Enter));
    assert_eq!(a.upskill.confirm, Some(2));
    let now = a.upskill.ended_at.unwrap();
    snap("confirm", &mut a, now);
}

#[test]
fn calibration_screen() {
    snap(
        "calibration",
        &mut calibration(from_store(&store(), "skill.txt", 0.55)),
        Instant::now(),
    );
}

#[test]
fn calibration_screen_empty() {
    snap(
        "calibration_empty",
        &mut calibration(from_store(&Default::default(), "skill.txt", 0.55)),
        Instant::now(),
    );
}

/// The history screen showing its sample list (times at UTC).
fn history() -> App {
    let mut a = sample();
    a.screen = Screen::History;
    a.history = crate::tui::screens::history::state::tests::loaded();
    a
}

#[test]
fn history_list() {
    let mut a = history();
    a.history.selected = 1;
    snap("history_list", &mut a, Instant::now());
}

#[test]
fn history_item() {
    use crate::history::paged::Detail;
    use crate::tui::screens::history::state::tests::{frame_row, incident};
    let mut a = history();
    a.handle_key(key(KeyCode::Enter));
    let mut second = frame_row(
        31,
        12,
        "2026-12-05T02:11:00Z",
        "Smoke rises from a pan on the stove; nobody is in the kitchen.\nCONFIDENCE: 0.42",
    );
    second.verdict = Some(Verdict {
        level: Some(2),
        title: "Pan smoking on the stove".into(),
        truncated: false,
        agrees: Some(true),
        safety_relevant: Some(true),
        summary: "A pan smokes on a lit hob, unattended.".into(),
        missed: vec!["nobody in the room".into()],
        wrong: vec![],
        raw: None,
        ..Verdict::default()
    });
    second.agrees = Some(true);
    second.level = Some(2);
    second.title = Some("Pan smoking on the stove".into());
    a.history.detail(Ok(Detail {
        incident: incident(7, 2, "Pan smoking on the stove", "2026-12-05T02:10:00Z"),
        frames: vec![
            frame_row(30, 11, "2026-12-05T02:10:00Z", "Smoke."),
            second,
            frame_row(32, 13, "2026-12-05T02:12:00Z", "Flames."),
        ],
        more: 0,
    }));
    let jpeg = crate::tui::images::tests::test_frame(160, 90).jpeg.clone();
    a.history.frame(31, Ok(jpeg));
    snap("history_item", &mut a, Instant::now());
}

#[test]
fn away_summary() {
    use crate::history::query::{AwaySummary, NoteRow};
    use crate::tui::screens::history::state::tests::{incident, t};
    let mut a = monitor();
    a.history.offset = chrono::FixedOffset::east_opt(0).unwrap();
    let mut acked = incident(8, 1, "Someone at the back door", "2026-12-05T04:30:00Z");
    acked.acked_by = Some("mqtt".into());
    a.away = Some(Box::new(AwaySummary {
        from: t("2026-12-05T00:30:00Z"),
        until: t("2026-12-05T07:45:00Z"),
        incidents: vec![
            incident(7, 2, "Pan smoking on the stove", "2026-12-05T02:10:00Z"),
            acked,
        ],
        answers: 10_412,
        escalations: vec![
            ("safety".into(), 14),
            ("audit".into(), 9),
            ("low_confidence".into(), 3),
        ],
        disagreements: 4,
        offline_secs: vec![("student".into(), 0), ("teacher".into(), 1260)],
        skill_changes: vec![NoteRow {
            id: 3,
            at: t("2026-12-05T03:00:00Z"),
            kind: "skill".into(),
            seq: None,
            text: "skill.txt reloaded (812 chars)".into(),
        }],
    }));
    snap("away", &mut a, Instant::now());
}

#[test]
fn clocks_are_masked() {
    assert_eq!(mask_clocks("│ 02:51:11 #1"), "│ hh:mm:ss #1");
    assert_eq!(
        mask_clocks("11/15 calls · 3:21 elapsed · ~1:13 left"),
        "11/15 calls · m:ss elapsed · ~m:ss left"
    );
    assert_eq!(mask_clocks("0.82 1.2s"), "0.82 1.2s");
    assert_eq!(mask_clocks("teacher gemma4:26b"), "teacher gemma4:26b");
}
