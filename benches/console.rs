//! Console drawing cost: the frame pane (a 768x432 model frame encoded for 60x30 cells
//! with ratatui-image half blocks) and a full redraw at 160x48 with a full log.
//!
//! `cargo bench --bench console -- --warm-up-time 1 --measurement-time 3`
//!
//! The app state is built the way the console builds it: events through
//! `App::handle_event` (1000 answers, the default `console.history`, with escalations,
//! verdicts and a frame image on every entry).

use base64::Engine as _;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use gemmaedge_tui::config::{Config, FrameConfig};
use gemmaedge_tui::event::{Event, Health, Role};
use gemmaedge_tui::frame::{prep, PreparedFrame};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::verdict::Verdict;
use gemmaedge_tui::tui::{ui, App, ImageState, Theme};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::Terminal;
use ratatui_image::picker::Picker;
use std::hint::black_box;
use std::sync::Arc;

/// eval/images/rocket.jpg prepared as the engine prepares a frame (768 px, q80).
fn model_frame() -> Arc<PreparedFrame> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/images/rocket.jpg");
    let bytes = std::fs::read(path).expect("read eval/images/rocket.jpg");
    let img = prep::decode_rgb(&bytes).expect("decode");
    // Stretch to a camera's 16:9 first, so the model frame is 768x432 like a webcam's.
    let img = image::imageops::resize(&img, 1280, 720, image::imageops::FilterType::Triangle);
    let cfg = FrameConfig {
        max_side: 768,
        jpeg_quality: 80,
    };
    let p = prep::prepare_rgb(&img, &cfg).expect("prepare");
    assert_eq!((p.width, p.height), (768, 432));
    let b64 = base64::engine::general_purpose::STANDARD.encode(&p.jpeg);
    assert_eq!(*b64, *p.base64);
    Arc::new(p)
}

const ANSWERS: &[&str] = &[
    "A person sits at a desk with a laptop and a coffee mug.\nCONFIDENCE: 0.86",
    "A blurry clock on a wall.\nCONFIDENCE: 0.41",
    "Smoke near the stove; a pot is on the burner.",
    "An empty hallway with the lights on.\nCONFIDENCE: 0.7",
    "A dog sleeps on a rug by the door. Nothing unusual.\nCONFIDENCE: 0.93",
];

/// An app with a full log (`console.history` answers) fed through `handle_event`.
fn full_app(config: &Config, frame: &Arc<PreparedFrame>) -> App {
    let mut a = App::new(config);
    a.theme = Theme { color: true };
    a.set_size(160, 48);
    a.handle_event(Event::Started {
        at: Utc::now(),
        student: "gemma4:e2b @ http://127.0.0.1:11434".into(),
        teacher: "gemma4:26b @ http://mac-mini.local:11434".into(),
        source: "camera 0".into(),
        skill: "skill.txt".into(),
    });
    for role in [Role::Student, Role::Teacher] {
        a.handle_event(Event::Health {
            role,
            health: Health::Ok { latency_ms: 1200 },
        });
    }
    let n = config.console.history as u64 + 50; // more than fit: the oldest are dropped
    for seq in 1..=n {
        let text = ANSWERS[(seq % ANSWERS.len() as u64) as usize];
        a.handle_event(Event::FrameTaken {
            dhash: None,
            seq,
            captured_at: Utc::now(),
            label: "camera 0".into(),
            width: frame.width,
            height: frame.height,
            jpeg_bytes: frame.jpeg.len(),
            superseded: seq % 3,
            image: Some(frame.clone()),
        });
        for piece in text.split_inclusive(' ').take(4) {
            a.handle_event(Event::StudentToken {
                seq,
                text: piece.into(),
            });
        }
        let conf = gemmaedge_tui::reading::confidence::parse_answer(text).confidence;
        let reasons = match (conf, seq % 10) {
            (None, _) => vec![Reason::NoConfidence],
            (Some(c), _) if c < 0.55 => vec![Reason::LowConfidence {
                confidence: c,
                threshold: 0.55,
            }],
            (_, 0) => vec![Reason::Audit],
            _ => vec![],
        };
        let escalated = !reasons.is_empty();
        a.handle_event(Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: text.into(),
            confidence: conf,
            measured_confidence: None,
            latency_ms: 1100 + seq % 200,
            reasons: reasons.clone(),
            skill: "skill.txt".into(),
        });
        if escalated {
            a.handle_event(Event::Escalated {
                seq,
                reasons,
                queue_len: 1,
                frame_path: None,
            });
            a.handle_event(Event::TeacherStarted { seq, queue_len: 0 });
            a.handle_event(Event::TeacherVerdict {
                seq,
                verdict: Verdict {
                    level: None,
                    title: String::new(),
                    watches: Default::default(),
                    truncated: false,
                    agrees: Some(seq % 4 != 0),
                    safety_relevant: Some(text.contains("Smoke")),
                    summary: "Steam from a kettle on the stove, not smoke.".into(),
                    missed: vec!["a kettle".into()],
                    wrong: vec!["smoke".into()],
                    raw: None,
                },
                latency_ms: 8100,
            });
        }
    }
    a
}

fn benches(c: &mut Criterion) {
    let frame = model_frame();
    let pane = Rect::new(0, 0, 60, 30);

    let mut g = c.benchmark_group("console");
    // What the frame-encode worker does for a new frame: JPEG decode + resize + half blocks.
    g.bench_function("frame_pane_60x30_halfblocks_new_frame", |b| {
        b.iter(|| {
            let mut st = ImageState::inline(Picker::halfblocks());
            let mut buf = Buffer::empty(pane);
            assert!(st.render(Some(&frame), pane, &mut buf));
            black_box(buf);
        })
    });
    // The same frame again (any redraw between frames): only copying cells.
    g.bench_function("frame_pane_60x30_halfblocks_redraw", |b| {
        let mut st = ImageState::inline(Picker::halfblocks());
        let mut buf = Buffer::empty(pane);
        assert!(st.render(Some(&frame), pane, &mut buf));
        b.iter(|| {
            assert!(st.render(Some(&frame), pane, &mut buf));
            black_box(&buf);
        })
    });

    let config = Config::default();
    let app = full_app(&config, &frame);
    let mut term = Terminal::new(TestBackend::new(160, 48)).expect("test terminal");
    let mut images = ImageState::inline(Picker::halfblocks());
    term.draw(|f| ui::draw(f, &app, &mut images))
        .expect("first draw");
    let screen: String = {
        let buf = term.backend().buffer();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(screen.contains("#1050"), "the newest entry is on screen");
    // A full redraw: status, frame pane (image cached, as between frames), teacher pane and
    // the visible log, diffed against the previous buffer by ratatui.
    g.bench_function("full_redraw_160x48_full_log", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(f, black_box(&app), &mut images))
                .expect("draw");
        })
    });
    // The same after `clear` (every cell differs from the last frame: worst case diff).
    g.bench_function("full_redraw_160x48_full_log_after_clear", |b| {
        b.iter(|| {
            term.clear().expect("clear");
            term.draw(|f| ui::draw(f, black_box(&app), &mut images))
                .expect("draw");
        })
    });
    g.finish();
}

criterion_group!(console, benches);
criterion_main!(console);
