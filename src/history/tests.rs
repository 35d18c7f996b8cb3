//! The writer and the queries against a real SQLite store: events in, history out.

use super::query::{self, Filter, Item};
use super::rows::Origin;
use super::HistoryHandle;
use crate::event::{Event, Health, IncidentEvent, Role};
use crate::history::incident::Tracker;
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use chrono::{DateTime, Duration, Utc};
use std::time::Duration as StdDuration;

fn origin() -> Origin {
    Origin {
        session: "20260101-000000".into(),
        device: "pi".into(),
    }
}

fn answer(seq: u64, at: DateTime<Utc>, text: &str) -> Event {
    Event::StudentAnswer {
        seq,
        at,
        answer: text.into(),
        confidence: Some(0.9),
        measured_confidence: None,
        latency_ms: 900,
        reasons: Vec::new(),
        skill: "skill.txt".into(),
    }
}

fn verdict(level: u8, title: &str, agrees: bool) -> Verdict {
    Verdict {
        agrees: Some(agrees),
        safety_relevant: Some(level > 0),
        summary: format!("{title}."),
        level: Some(level),
        title: title.into(),
        ..Verdict::default()
    }
}

/// A store with a calm hour, a smoking pan (an incident over 40 frames) and a skill change.
fn filled(dir: &std::path::Path) -> (HistoryHandle, DateTime<Utc>) {
    let (h, resume) = HistoryHandle::start(&dir.join("history.db"), origin()).unwrap();
    assert!(resume.open_incidents.is_empty());
    let t0 = Utc::now() - Duration::hours(2);
    let mut tracker = Tracker::new(120, resume.next_incident_id, Vec::new());
    for seq in 1..=20u64 {
        h.send(&answer(
            seq,
            t0 + Duration::seconds(seq as i64),
            "A quiet kitchen.",
        ));
    }
    h.send(&Event::Health {
        role: Role::Teacher,
        health: Health::Offline {
            reason: "connection refused".into(),
            hint: "start it".into(),
        },
    });
    for seq in 21..=60u64 {
        let at = t0 + Duration::seconds(seq as i64 * 2);
        h.send(&answer(
            seq,
            at,
            "Smoke rises from a pan; 50% of the stove's 'top'.",
        ));
        h.send(&Event::Escalated {
            seq,
            reasons: vec![Reason::Safety {
                keyword: "smoke".into(),
            }],
            queue_len: 1,
            frame_path: Some(format!("logs/frames/x-{seq:06}.jpg").into()),
        });
        let v = verdict(
            if seq > 40 { 2 } else { 1 },
            "Pan smoking on the stove",
            false,
        );
        h.send(&Event::TeacherVerdict {
            seq,
            verdict: v.clone(),
            latency_ms: 3000,
        });
        for inc in tracker.on_verdict(seq, at, &v) {
            h.send(&Event::Incident(inc));
        }
    }
    for inc in tracker.tick(t0 + Duration::hours(1)) {
        h.send(&Event::Incident(inc));
    }
    h.send(&Event::SkillLoaded {
        name: "skill.txt".into(),
        chars: 300,
    });
    assert!(h.flush(StdDuration::from_secs(10)));
    (h, t0)
}

#[test]
fn events_become_rows_and_come_back_filtered() {
    let d = tempfile::tempdir().unwrap();
    let (h, t0) = filled(d.path());
    assert_eq!(h.status().dropped, 0);
    let conn = super::schema::open_read(h.path()).unwrap();
    // Everything, newest first.
    let all = query::items(&conn, &Filter::default(), None, 1000).unwrap();
    assert!(all.windows(2).all(|w| w[0].cursor() > w[1].cursor()));
    let frames = all.iter().filter(|i| matches!(i, Item::Frame(_))).count();
    assert_eq!(frames, 60);
    // One incident: open + joins + a raise + a close, stored as one row.
    let inc = query::items(
        &conn,
        &Filter {
            incidents_only: true,
            ..Filter::default()
        },
        None,
        100,
    )
    .unwrap();
    assert_eq!(inc.len(), 1);
    let Item::Incident(i) = &inc[0] else { panic!() };
    assert_eq!((i.level, i.frames), (2, 40));
    assert!(i.closed_at.is_some());
    let its = query::incident_frames(&conn, i.id).unwrap();
    assert_eq!(its.len(), 40);
    assert!(its.iter().all(|f| f.verdict.is_some() && f.escalated));
    assert_eq!(its[0].triggers, vec!["safety"]);
    // Filters.
    let n = |f: Filter| query::items(&conn, &f, None, 1000).unwrap().len();
    assert_eq!(
        n(Filter {
            notable_only: true,
            ..Filter::default()
        }),
        40 + 1 + 1 + 1,
        "escalated frames, the incident, the skill note, the offline span"
    );
    assert_eq!(
        n(Filter {
            trigger: Some("safety".into()),
            ..Filter::default()
        }),
        40
    );
    assert_eq!(
        n(Filter {
            trigger: Some("audit".into()),
            ..Filter::default()
        }),
        0
    );
    assert_eq!(
        n(Filter {
            disagreed: true,
            ..Filter::default()
        }),
        40
    );
    assert_eq!(
        n(Filter {
            min_level: Some(2),
            ..Filter::default()
        }),
        20 + 1
    );
    // Search text is data: quotes, % and _ match themselves.
    let search = |t: &str| {
        n(Filter {
            text: Some(t.into()),
            ..Filter::default()
        })
    };
    assert_eq!(search("quiet"), 20);
    assert_eq!(search("50%"), 40);
    assert_eq!(search("stove's 'top'"), 40);
    assert_eq!(search("%"), 40, "a % only matches a %");
    assert_eq!(search("'; DROP TABLE frames; --"), 0);
    assert_eq!(search("_"), 0);
    assert!(n(Filter::default()) > 60, "the table is still there");
    // Time span.
    assert_eq!(
        n(Filter {
            since: Some(t0 + Duration::seconds(42)),
            until: Some(t0 + Duration::seconds(60)),
            ..Filter::default()
        }),
        // Frames 21..=29 (at t0 + 2 × seq s) and the incident they opened at t0 + 42 s.
        9 + 1,
    );
}

#[test]
fn paging_walks_everything_once() {
    let d = tempfile::tempdir().unwrap();
    let (h, _) = filled(d.path());
    let conn = super::schema::open_read(h.path()).unwrap();
    let all = query::items(&conn, &Filter::default(), None, 10_000).unwrap();
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = query::items(&conn, &Filter::default(), after, 7).unwrap();
        if page.is_empty() {
            break;
        }
        after = Some(page.last().unwrap().cursor());
        paged.extend(page);
    }
    assert_eq!(paged, all);
}

#[test]
fn the_away_summary_counts_the_span() {
    let d = tempfile::tempdir().unwrap();
    let (h, t0) = filled(d.path());
    let conn = super::schema::open_read(h.path()).unwrap();
    let s = query::away_summary(&conn, t0, Utc::now() + Duration::seconds(1)).unwrap();
    assert_eq!(s.answers, 60);
    assert_eq!(s.incidents.len(), 1);
    assert_eq!(s.incidents[0].title, "Pan smoking on the stove");
    assert_eq!(s.escalations, vec![("safety".to_string(), 40)]);
    assert_eq!(s.disagreements, 40);
    assert_eq!(s.skill_changes.len(), 1);
    assert_eq!(s.offline_secs.len(), 1);
    assert_eq!(s.offline_secs[0].0, "teacher");
}

#[test]
fn open_incidents_survive_a_restart() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("history.db");
    let (h, resume) = HistoryHandle::start(&path, origin()).unwrap();
    let mut tracker = Tracker::new(120, resume.next_incident_id, resume.open_incidents);
    let now = Utc::now();
    let opened: Vec<IncidentEvent> = tracker.on_verdict(1, now, &verdict(2, "A fall", false));
    for i in &opened {
        h.send(&Event::Incident(i.clone()));
    }
    assert!(h.flush(StdDuration::from_secs(10)));
    drop(h);
    let (_h2, resume) = HistoryHandle::start(&path, origin()).unwrap();
    assert_eq!(resume.open_incidents.len(), 1);
    assert_eq!(resume.open_incidents[0].title, "A fall");
    assert_eq!(resume.next_incident_id, opened[0].id + 1);
    let mut again = Tracker::new(120, resume.next_incident_id, resume.open_incidents);
    let e = again.on_verdict(2, now + Duration::seconds(10), &verdict(2, "A fall", false));
    assert_eq!(
        e[0].id, opened[0].id,
        "joins the incident from before the restart"
    );
}

#[test]
fn a_full_queue_drops_and_counts_never_waits() {
    let d = tempfile::tempdir().unwrap();
    let (h, _) = HistoryHandle::start(&d.path().join("history.db"), origin()).unwrap();
    // Hold the writer busy so the queue fills.
    let (release, wait) = std::sync::mpsc::channel::<()>();
    std::thread::spawn({
        let h = h.clone();
        move || {
            h.run(move |_| {
                let _ = wait.recv();
            })
        }
    });
    std::thread::sleep(StdDuration::from_millis(100));
    let t = std::time::Instant::now();
    let n = super::writer::QUEUE as u64 + 500;
    for seq in 0..n {
        h.send(&answer(seq, Utc::now(), "x"));
    }
    assert!(t.elapsed() < StdDuration::from_secs(2), "send never waits");
    assert!(h.status().dropped >= 500, "{:?}", h.status());
    release.send(()).unwrap();
    assert!(h.flush(StdDuration::from_secs(20)));
    let s = h.status();
    assert_eq!(s.written + s.dropped, n);
}

#[test]
fn a_full_store_pauses_history_and_it_resumes_when_space_returns() {
    let d = tempfile::tempdir().unwrap();
    let (h, _) = HistoryHandle::start(&d.path().join("history.db"), origin()).unwrap();
    // SQLite's own "database or disk is full": the store may not grow past its pages now.
    let pages: i64 = h
        .run(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap())
        .unwrap();
    h.run(move |c| {
        c.pragma_update(None, "max_page_count", pages).unwrap();
    });
    let big = "smoke ".repeat(600);
    for seq in 0..50 {
        h.send(&answer(seq, Utc::now(), &big));
    }
    assert!(h.flush(StdDuration::from_secs(10)));
    let s = h.status();
    assert_eq!(s.paused.as_deref(), Some("the disk is full"), "{s:?}");
    assert!(s.dropped >= 40 && s.dropped + s.written == 50, "{s:?}");
    let (lost, before) = (s.dropped, s.written);
    let notices = h.take_notices();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("history paused: the disk is full; monitoring goes on")),
        "{notices:?}"
    );
    // Space returns: the next batch goes in and history says it resumed.
    h.run(|c| {
        c.pragma_update(None, "max_page_count", 1_000_000_000i64)
            .unwrap();
    });
    h.send(&answer(99, Utc::now(), "A quiet kitchen."));
    assert!(h.flush(StdDuration::from_secs(10)));
    let s = h.status();
    assert_eq!(s.paused, None);
    assert_eq!(s.written, before + 1);
    let notices = h.take_notices();
    assert!(
        notices
            .iter()
            .any(|n| n.contains(&format!("history resumed ({lost} entries lost"))),
        "{notices:?}"
    );
}
