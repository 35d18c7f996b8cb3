//! The history store's figures (BENCHMARKS.md, "History store"), not criterion:
//!
//! - a store with 1 million frames (30 days at ~0.4 fps, 5% escalated with verdicts, an
//!   incident a day): `history --since 24h` with the real binary, and the query the history
//!   screen opens with (the first page of notable items), timed, and the screen itself
//!   opened as the console does it (key, page from the store, drawn);
//! - the writer's CPU per frame (events through `HistoryHandle`, process CPU time);
//! - bytes per day at 1 fps with and without frames;
//! - retention holding a `max_mb` cap.
//!
//! `cargo bench --bench history` (optimised) or `cargo test --bench history --
//! --entries N` (the test profile: unoptimised SQLite, an upper bound).

use chrono::{DateTime, Duration, Utc};
use gemmaedge_tui::event::{Event, IncidentChange, IncidentEvent};
use gemmaedge_tui::history::query::{self, Filter};
use gemmaedge_tui::history::retention::{self, Retention};
use gemmaedge_tui::history::rows::{self, Origin, Spans};
use gemmaedge_tui::history::{schema, HistoryHandle};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::verdict::Verdict;
use std::path::Path;
use std::time::Instant;

fn cpu_secs() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// The events of one frame: taken, answered, and every 20th escalated and judged.
fn frame_events(seq: u64, at: DateTime<Utc>, frame_path: Option<String>) -> Vec<Event> {
    let mut v = vec![
        Event::FrameTaken {
            seq,
            captured_at: at,
            label: format!("camera 0 #{seq}"),
            width: 768,
            height: 432,
            jpeg_bytes: 41_000,
            superseded: 0,
            dhash: Some(format!("{:016x}", seq.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
            image: None,
        },
        Event::StudentAnswer {
            seq,
            at,
            answer: "A kitchen with a stove, a kettle and a window; nobody is in the room. \
                     No safety concerns.\nCONFIDENCE: 0.82"
                .into(),
            confidence: Some(0.82),
            measured_confidence: Some(0.77),
            latency_ms: 1100,
            reasons: Vec::new(),
            skill: "skill.txt".into(),
        },
    ];
    if seq % 20 == 0 {
        v.push(Event::Escalated {
            seq,
            reasons: vec![Reason::LowConfidence {
                confidence: 0.4,
                threshold: 0.6,
            }],
            queue_len: 1,
            frame_path: frame_path.map(Into::into),
        });
        v.push(Event::TeacherVerdict {
            seq,
            verdict: Verdict {
                agrees: Some(seq % 60 != 0),
                safety_relevant: Some(false),
                summary: "A kitchen with a kettle on the stove; nothing needs attention.".into(),
                missed: vec!["a kettle".into()],
                wrong: Vec::new(),
                level: Some(0),
                title: "Kitchen, kettle on".into(),
                ..Verdict::default()
            },
            latency_ms: 3000,
        });
    }
    v
}

fn fill(path: &Path, entries: u64, now: DateTime<Utc>) {
    let mut conn = schema::open(path).unwrap().conn;
    let origin = Origin {
        session: "20260101-000000".into(),
        device: "pi".into(),
    };
    let step = Duration::milliseconds(2500); // 0.4 fps
    let start = now - step * entries as i32;
    let mut spans = Spans::default();
    let t = Instant::now();
    for chunk in (0..entries).collect::<Vec<_>>().chunks(20_000) {
        let tx = conn.transaction().unwrap();
        for &seq in chunk {
            let at = start + step * seq as i32;
            for ev in frame_events(seq, at, None) {
                rows::apply(&tx, &origin, at, &ev, &mut spans).unwrap();
            }
            // An incident a day.
            if seq % 34_560 == 17_000 {
                let inc = IncidentEvent {
                    change: IncidentChange::Close,
                    id: seq / 34_560 + 1,
                    seq: Some(seq),
                    level: 1,
                    title: "Pan smoking on the stove".into(),
                    opened_at: at,
                    last_at: at + Duration::seconds(60),
                    closed_at: Some(at + Duration::seconds(180)),
                    frames: 12,
                    key_seq: Some(seq),
                    acked_at: None,
                    acked_by: None,
                };
                rows::apply(&tx, &origin, at, &Event::Incident(inc), &mut spans).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    println!(
        "filled {entries} frames in {:.1} s ({} MB)",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) >> 20
    );
}

/// Opening the history screen as the console does: `h` → the page request the service (or
/// the console's own hub) answers from the store (`paged::page`: its own read-only
/// connection, the first 100 incidents and notable entries of all time) → the answer into
/// the app → the screen drawn (120×40). Five opens; the first is cold.
fn screen_open(db: &Path, logs: &Path) {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use gemmaedge_tui::service::protocol::ServerMsg;
    use gemmaedge_tui::tui::{action::Action, ui, App, ImageState};
    let config = gemmaedge_tui::config::Config {
        paths: gemmaedge_tui::config::PathsConfig {
            logs: logs.to_path_buf(),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut app = App::new(&config);
        app.set_size(120, 40);
        let acts = app.handle_key(KeyEvent::new(KeyCode::Char('h'), KeyModifiers::NONE));
        let Some(Action::HistoryQuery {
            filter,
            after,
            limit,
        }) = acts.into_iter().next()
        else {
            panic!("h asked for no page")
        };
        let result = gemmaedge_tui::history::paged::page(db, &filter, after, limit);
        let n = result.as_ref().map(|p| p.items.len()).unwrap_or(0);
        app.handle_message(ServerMsg::History { result });
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 40)).unwrap();
        let mut images = ImageState::inline(ratatui_image::picker::Picker::halfblocks());
        term.draw(|f| ui::draw(f, &app, &mut images)).unwrap();
        times.push((t.elapsed().as_secs_f64() * 1e3, n));
    }
    println!(
        "history screen opened (h → page of {} items from the store → drawn 120x40): {} ms",
        times[0].1,
        times
            .iter()
            .map(|(ms, _)| format!("{ms:.1}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entries: u64 = args
        .iter()
        .position(|a| a == "--entries")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let d = tempfile::tempdir().unwrap();
    let logs = d.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let db = logs.join("history.db");
    let now = Utc::now();

    // 1. The big store and its queries.
    fill(&db, entries, now);
    let conn = schema::open_read(&db).unwrap();
    let since = Some(now - Duration::hours(24));
    for (what, filter) in [
        (
            "screen: first page of notable items, last 24 h",
            Filter {
                since,
                notable_only: true,
                ..Filter::default()
            },
        ),
        (
            "incidents, all time",
            Filter {
                incidents_only: true,
                ..Filter::default()
            },
        ),
        (
            "search \"kettle\", last 24 h",
            Filter {
                since,
                notable_only: true,
                text: Some("kettle".into()),
                ..Filter::default()
            },
        ),
    ] {
        let t = Instant::now();
        let n = query::items(&conn, &filter, None, 50).unwrap().len();
        println!(
            "{what}: {n} items in {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
    }
    let t = Instant::now();
    let s = query::away_summary(&conn, now - Duration::hours(12), now).unwrap();
    println!(
        "away summary, 12 h: {} answers in {:.1} ms",
        s.answers,
        t.elapsed().as_secs_f64() * 1e3
    );
    screen_open(&db, &logs);
    // The real binary, as a user runs it (process start included).
    let cfg = d.path().join("config.toml");
    std::fs::write(&cfg, format!("[paths]\nlogs = \"{}\"\n", logs.display())).unwrap();
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join(if cfg!(debug_assertions) {
        "target/debug/gemmaedge-tui"
    } else {
        "target/release/gemmaedge-tui"
    });
    if bin.exists() {
        for args in [
            vec!["history", "--since", "24h", "--json"],
            vec![
                "history", "--since", "24h", "--all", "--json", "--limit", "100000",
            ],
        ] {
            let t = Instant::now();
            let out = std::process::Command::new(&bin)
                .arg("--config")
                .arg(&cfg)
                .args(&args)
                .output()
                .unwrap();
            println!(
                "`gemmaedge-tui {}`: {} lines in {:.0} ms",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout).lines().count(),
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    } else {
        println!(
            "(no binary at {}: build it to time `history`)",
            bin.display()
        );
    }
    drop(conn);

    // 2. The writer's CPU per frame, and 3. bytes per day at 1 fps.
    let wdir = d.path().join("w");
    std::fs::create_dir_all(wdir.join("frames")).unwrap();
    let wdb = wdir.join("history.db");
    let (h, _) = HistoryHandle::start(
        &wdb,
        Origin {
            session: "20260102-000000".into(),
            device: "pi".into(),
        },
    )
    .unwrap();
    let frames = 3600u64; // one hour at 1 fps
    let jpeg = vec![0u8; 41_000];
    let mut jpeg_bytes = 0u64;
    let mut events = Vec::new();
    for seq in 0..frames {
        let path = (seq % 20 == 0).then(|| {
            let p = wdir.join(format!("frames/{seq:06}.jpg"));
            std::fs::write(&p, &jpeg).unwrap();
            jpeg_bytes += jpeg.len() as u64;
            p.to_string_lossy().into_owned()
        });
        events.extend(frame_events(seq, now + Duration::seconds(seq as i64), path));
    }
    let cpu = cpu_secs();
    let t = Instant::now();
    for ev in &events {
        h.send(ev);
    }
    assert!(h.flush(std::time::Duration::from_secs(60)));
    let cpu = cpu_secs() - cpu;
    h.stop();
    println!(
        "writer: {frames} frames ({} events) in {:.2} s wall, {:.1} µs CPU per frame (send + write), {} dropped",
        events.len(),
        t.elapsed().as_secs_f64(),
        cpu / frames as f64 * 1e6,
        h.status().dropped
    );
    let store = std::fs::metadata(&wdb).unwrap().len();
    println!(
        "bytes per day at 1 fps (5% escalated): store {:.1} MB without frames, {:.1} MB with the escalated frames (41 KB each)",
        (store * 24) as f64 / 1_048_576.0,
        ((store + jpeg_bytes) * 24) as f64 / 1_048_576.0
    );

    // 4. Retention holding a cap on the big store.
    let mut conn = schema::open(&db).unwrap().conn;
    let before = retention::used_bytes(&conn, &logs);
    let cap = before / 2;
    let r = Retention {
        keep_days: 3650,
        max_bytes: cap,
        logs: logs.clone(),
    };
    let t = Instant::now();
    let p = retention::prune(&mut conn, &r, now.timestamp_millis()).unwrap();
    println!(
        "retention: {} MB → {} MB under a {} MB cap in {:.1} s ({} rows removed, still over: {})",
        before >> 20,
        retention::used_bytes(&conn, &logs) >> 20,
        cap >> 20,
        t.elapsed().as_secs_f64(),
        p.rows,
        p.still_over
    );
}
