//! The history screen's keys and filters, without a store: what each key asks for and
//! how the answers land.

use super::*;
use crate::history::query::NoteRow;
use crossterm::event::KeyModifiers;

pub fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn incident(id: u64, level: u8, title: &str, at: &str) -> IncidentEvent {
    IncidentEvent {
        change: IncidentChange::Close,
        id,
        seq: None,
        level,
        title: title.into(),
        opened_at: t(at),
        last_at: t(at) + chrono::Duration::minutes(4),
        closed_at: Some(t(at) + chrono::Duration::minutes(6)),
        frames: 3,
        key_seq: Some(12),
        acked_at: None,
        acked_by: None,
    }
}

pub fn frame_row(id: i64, seq: u64, at: &str, answer: &str) -> FrameRow {
    FrameRow {
        id,
        session: "20261205-010000".into(),
        seq,
        device: "pi".into(),
        at: t(at),
        label: Some(format!("cam-{seq}.jpg")),
        dhash: None,
        answer: Some(answer.into()),
        confidence: Some(0.42),
        measured: None,
        skill: Some("skill.txt".into()),
        failed: None,
        escalated: true,
        triggers: vec!["safety".into()],
        reasons: Some("safety keyword: smoke".into()),
        frame_path: Some(format!("logs/frames/x-{seq}.jpg")),
        verdict: None,
        agrees: None,
        level: None,
        title: None,
        teacher_error: None,
        incident_id: None,
    }
}

/// Three items over two days, newest first.
pub fn items() -> Vec<Item> {
    vec![
        Item::Incident(incident(
            7,
            2,
            "Pan smoking on the stove",
            "2026-12-05T02:10:00Z",
        )),
        Item::Frame(Box::new(frame_row(
            31,
            12,
            "2026-12-05T02:09:00Z",
            "Smoke rises from a pan.",
        ))),
        Item::Note(NoteRow {
            id: 1,
            at: t("2026-12-04T22:00:00Z"),
            kind: "skill".into(),
            seq: None,
            text: "skill.txt replaced by upskill".into(),
        }),
    ]
}

pub fn screen() -> HistoryScreen {
    HistoryScreen {
        offset: FixedOffset::east_opt(0).unwrap(),
        ..HistoryScreen::default()
    }
}

/// A screen showing `items()`.
pub fn loaded() -> HistoryScreen {
    let mut h = screen();
    h.open(None);
    h.page(Ok(Page {
        items: items(),
        next: None,
    }));
    h
}

fn query_of(acts: &[Action]) -> Option<(Filter, Option<Cursor>)> {
    acts.iter().find_map(|a| match a {
        Action::HistoryQuery { filter, after, .. } => Some((filter.clone(), *after)),
        _ => None,
    })
}

#[test]
fn opening_asks_for_notable_entries_newest_first_and_the_answer_fills_the_list() {
    let mut h = screen();
    let acts = h.open(None);
    let (f, after) = query_of(&acts).expect("a query");
    assert!(f.notable_only && !f.incidents_only && after.is_none());
    assert!(h.loading);
    h.page(Ok(Page {
        items: items(),
        next: None,
    }));
    assert_eq!(h.items.len(), 3);
    assert!(!h.loading);
    // An error is shown, cleaned.
    h.open(None);
    h.page(Err("no store\u{1b}[2J".into()));
    assert!(!h.error.as_ref().unwrap().contains('\u{1b}'));
}

#[test]
fn each_filter_key_asks_again_with_its_filter_and_x_clears_them() {
    let mut h = loaded();
    let f = |h: &mut HistoryScreen, c: char| {
        let acts = h.handle_key(&key(KeyCode::Char(c))).unwrap();
        let q = query_of(&acts).expect("a query").0;
        h.page(Ok(Page {
            items: items(),
            next: None,
        }));
        q
    };
    assert!(f(&mut h, 'i').incidents_only);
    assert_eq!(f(&mut h, 't').trigger.as_deref(), Some("safety"));
    assert_eq!(f(&mut h, 't').trigger.as_deref(), Some("safety_early"));
    assert!(f(&mut h, 'd').disagreed);
    assert_eq!(f(&mut h, 'l').min_level, Some(1));
    assert_eq!(f(&mut h, 'l').min_level, Some(2));
    let q = f(&mut h, 'l');
    assert_eq!(q.min_level, None);
    assert!(q.incidents_only && q.disagreed, "the others stay");
    assert_eq!(
        h.filter_label(),
        "incidents only · trigger safety_early · teacher disagreed"
    );
    let q = f(&mut h, 'x');
    assert_eq!(
        q,
        Filter {
            notable_only: true,
            ..Filter::default()
        }
    );
    // The trigger cycle ends with none.
    let mut tr = None;
    for _ in 0..TRIGGERS.len() {
        tr = next_trigger(tr.as_deref());
        assert!(tr.is_some());
    }
    assert_eq!(next_trigger(tr.as_deref()), None);
}

#[test]
fn search_takes_every_key_and_enter_applies_it() {
    let mut h = loaded();
    h.handle_key(&key(KeyCode::Char('/'))).unwrap();
    assert_eq!(h.context(), Context::Search);
    for c in "q%_x".chars() {
        // q and the SQL wildcards are text here, not quit.
        let acts = h.handle_key(&key(KeyCode::Char(c))).unwrap();
        assert!(!acts.contains(&Action::Quit));
    }
    h.handle_key(&key(KeyCode::Backspace)).unwrap();
    let acts = h.handle_key(&key(KeyCode::Enter)).unwrap();
    assert_eq!(query_of(&acts).unwrap().0.text.as_deref(), Some("q%_"));
    assert!(h.typing.is_none());
    // Esc leaves the search as it was.
    h.page(Ok(Page {
        items: items(),
        next: None,
    }));
    h.handle_key(&key(KeyCode::Char('/'))).unwrap();
    h.handle_key(&key(KeyCode::Char('z'))).unwrap();
    let acts = h.handle_key(&key(KeyCode::Esc)).unwrap();
    assert!(query_of(&acts).is_none());
    assert_eq!(h.filter.text.as_deref(), Some("q%_"));
    // Bounded.
    h.handle_key(&key(KeyCode::Char('/'))).unwrap();
    for _ in 0..500 {
        h.handle_key(&key(KeyCode::Char('a'))).unwrap();
    }
    assert_eq!(h.typing.as_ref().unwrap().chars().count(), MAX_SEARCH);
}

#[test]
fn a_filter_changed_while_a_query_is_out_drops_its_answer_and_asks_again() {
    let mut h = loaded();
    let first = h.handle_key(&key(KeyCode::Char('i'))).unwrap();
    assert!(query_of(&first).is_some());
    // Another change while the first is out: nothing sent yet (one query at a time) …
    let second = h.handle_key(&key(KeyCode::Char('d'))).unwrap();
    assert!(query_of(&second).is_none());
    // … the first answer is dropped and the current filter asked.
    let again = h.page(Ok(Page {
        items: vec![],
        next: None,
    }));
    let q = query_of(&again).expect("asked again").0;
    assert!(q.incidents_only && q.disagreed);
    assert_eq!(
        h.items.len(),
        3,
        "the stale answer did not replace the list"
    );
}

#[test]
fn moving_near_the_end_loads_the_next_page_once() {
    let mut h = screen();
    h.open(None);
    let cursor = Cursor {
        at_ms: 5,
        rank: 2,
        id: 9,
    };
    h.page(Ok(Page {
        items: items(),
        next: Some(cursor),
    }));
    let acts = h.handle_key(&key(KeyCode::Down)).unwrap();
    assert_eq!(query_of(&acts), Some((h.filter.clone(), Some(cursor))));
    let acts = h.handle_key(&key(KeyCode::Down)).unwrap();
    assert!(query_of(&acts).is_none(), "one at a time");
    h.page(Ok(Page {
        items: items(),
        next: None,
    }));
    assert_eq!(h.items.len(), 6, "appended");
    assert_eq!(h.selected, 2, "the selection stays");
    assert!(query_of(&h.handle_key(&key(KeyCode::End)).unwrap()).is_none());
    assert_eq!(h.selected, 5);
    h.handle_key(&key(KeyCode::Home)).unwrap();
    assert_eq!(h.selected, 0);
}

#[test]
fn enter_on_an_incident_asks_its_frames_and_steps_through_them_with_their_images() {
    let mut h = loaded();
    let acts = h.handle_key(&key(KeyCode::Enter)).unwrap();
    assert!(acts.contains(&Action::HistoryDetail(7)));
    assert_eq!(h.context(), Context::HistoryItem);
    let frames = vec![
        frame_row(30, 11, "2026-12-05T02:10:00Z", "Smoke."),
        frame_row(31, 12, "2026-12-05T02:11:00Z", "More smoke."),
        frame_row(32, 13, "2026-12-05T02:12:00Z", "Flames."),
    ];
    let acts = h.detail(Ok(Detail {
        incident: incident(7, 2, "Pan smoking on the stove", "2026-12-05T02:10:00Z"),
        frames,
        more: 0,
    }));
    // It starts at the key frame (seq 12) and asks for its image.
    let v = h.item.as_ref().unwrap();
    assert_eq!(v.current().unwrap().seq, 12);
    assert_eq!(acts, vec![Action::HistoryFrame(31)]);
    // Stepping while that is out asks nothing more; its answer then asks for the new one.
    let acts = h.handle_key(&key(KeyCode::Right)).unwrap();
    assert!(!acts.iter().any(|a| matches!(a, Action::HistoryFrame(_))));
    let acts = h.frame(31, Err("the frame is gone".into()));
    assert_eq!(acts, vec![Action::HistoryFrame(32)]);
    // A picture that is not a JPEG says so.
    h.frame(32, Ok(vec![1u8, 2, 3].into()));
    assert!(h.item.as_ref().unwrap().image().unwrap().is_err());
    // The last frame: → stays.
    h.handle_key(&key(KeyCode::Right)).unwrap();
    assert_eq!(h.item.as_ref().unwrap().at, 2);
    // Back to 12: its answer is known, nothing asked.
    h.handle_key(&key(KeyCode::Left)).unwrap();
    let acts = h.handle_key(&key(KeyCode::Char('k'))).unwrap();
    assert_eq!(
        acts,
        vec![Action::Engine(Command::Ack {
            incident: Some(7),
            by: "console".into()
        })]
    );
    // Esc: back to the list; Esc again: leave the screen.
    h.handle_key(&key(KeyCode::Esc)).unwrap();
    assert!(h.item.is_none());
    assert!(h.handle_key(&key(KeyCode::Esc)).is_none());
}

#[test]
fn k_acknowledges_the_selected_incident_or_says_why_not() {
    let mut h = loaded();
    // The frame of an incident acknowledges its incident.
    h.items[1] = Item::Frame(Box::new(FrameRow {
        incident_id: Some(7),
        ..frame_row(31, 12, "2026-12-05T02:09:00Z", "Smoke.")
    }));
    for (sel, want) in [(0, Some(7)), (1, Some(7)), (2, None)] {
        h.selected = sel;
        let acts = h.handle_key(&key(KeyCode::Char('k'))).unwrap();
        match want {
            Some(id) => assert_eq!(acts, vec![ack(id)]),
            None => assert!(matches!(acts[0], Action::Notice(_))),
        }
    }
    // The acknowledgement comes back as an event and shows.
    h.incident_changed(&IncidentEvent {
        change: IncidentChange::Ack,
        acked_by: Some("console".into()),
        acked_at: Some(t("2026-12-05T08:00:00Z")),
        ..incident(7, 2, "", "2026-12-05T02:10:00Z")
    });
    let Item::Incident(i) = &h.items[0] else {
        panic!()
    };
    assert_eq!(i.acked_by.as_deref(), Some("console"));
    assert_eq!(
        i.title, "Pan smoking on the stove",
        "an ack keeps the title"
    );
}

#[test]
fn a_span_limits_the_list_and_shows_in_the_title() {
    let mut h = screen();
    let acts = h.open(Some((t("2026-12-05T01:00:00Z"), t("2026-12-05T07:00:00Z"))));
    let f = query_of(&acts).unwrap().0;
    assert_eq!(f.since, Some(t("2026-12-05T01:00:00Z")));
    assert_eq!(f.until, Some(t("2026-12-05T07:00:00Z")));
    assert_eq!(h.filter_label(), "Sat 01:00 – Sat 07:00");
}

#[test]
fn model_text_is_cleaned_and_cut_to_its_line() {
    use crate::tui::screens::history::view::{item_line, item_text};
    use crate::tui::theme::Theme;
    let evil = format!("\u{1b}[2J\u{202e}Smoke\u{7}\n{}", "very long ".repeat(400));
    let mut f = frame_row(1, 1, "2026-12-05T02:09:00Z", &evil);
    f.title = Some(evil.clone());
    let offset = FixedOffset::east_opt(0).unwrap();
    for it in [
        Item::Frame(Box::new(f.clone())),
        Item::Incident(incident(1, 2, &evil, "2026-12-05T02:10:00Z")),
    ] {
        let line = item_line(&it, &Theme::default(), &offset, 60);
        assert!(line.width() <= 60, "{}", line.width());
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert!(
            !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{text:?}"
        );
    }
    let v = ItemView {
        frames: vec![f],
        ..ItemView::default()
    };
    for l in item_text(&v, &Theme::default(), &offset).lines {
        for s in l.spans {
            assert!(!s.content.chars().any(|c| c.is_control() || c == '\u{202e}'));
        }
    }
}
