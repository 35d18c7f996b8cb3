//! Fine-tune readiness and export on a big store (BENCHMARKS.md, "Fine-tune readiness"),
//! not criterion:
//!
//! - a store with `--verdicts N` judged frames (default 50 000: what 30 days at 0.4 fps hold
//!   with every 20th frame escalated, as in the history bench), one in ten a near-duplicate;
//! - `finetune status`'s work (`gather::readiness`: read, parse, dedupe, assess), timed;
//! - near-duplicate removal alone, the index against a plain scan;
//! - `finetune export` of `--export N` frames (default 5 000; small JPEGs), hf format.
//!
//! `cargo test --bench finetune_store -- [--verdicts N] [--export N]` (the test profile: an upper
//! bound) or `cargo bench --bench finetune_store`.

use chrono::{DateTime, Duration, Utc};
use gemmaedge_tui::config::Config;
use gemmaedge_tui::event::Event;
use gemmaedge_tui::finetune::{example::Only, export, gather, readiness};
use gemmaedge_tui::history::rows::{apply, Origin, Spans};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::verdict::Verdict;
use std::path::Path;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let a: Vec<String> = std::env::args().collect();
    a.iter()
        .position(|x| x == name)
        .and_then(|i| a.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn hash(i: u64) -> u64 {
    (i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `n` judged frames; frames below `with_images` get a small JPEG on disk.
fn fill(dir: &Path, n: usize, with_images: usize) {
    let logs = dir.join("logs");
    std::fs::create_dir_all(logs.join("frames")).unwrap();
    let mut jpeg = Vec::new();
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8, y as u8, 90]));
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&img)
        .unwrap();
    let mut conn = gemmaedge_tui::history::schema::open(&logs.join("history.db"))
        .unwrap()
        .conn;
    let origin = Origin {
        session: "20261101-000000".into(),
        device: "kitchen".into(),
    };
    let t0: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    let mut spans = Spans::default();
    for chunk in (0..n).collect::<Vec<_>>().chunks(20_000) {
        let tx = conn.transaction().unwrap();
        for &i in chunk {
            let seq = i as u64 + 1;
            let at = t0 + Duration::seconds(i as i64 * 50);
            // One in ten is a near-duplicate of the frame before it.
            let h = if i % 10 == 9 {
                hash(i as u64 - 1) ^ 0b11
            } else {
                hash(i as u64)
            };
            let path = logs.join(format!("frames/20261101-000000-{seq:06}.jpg"));
            if i < with_images {
                std::fs::write(&path, &jpeg).unwrap();
            }
            let v = Verdict {
                agrees: Some(i % 3 != 0),
                safety_relevant: Some(i % 10 == 0),
                summary: "A kitchen with a stove and a kettle; a pan smokes a little.".into(),
                missed: vec!["the kettle".into()],
                level: Some(u8::from(i % 10 == 0)),
                title: "Pan smoking".into(),
                ..Verdict::default()
            };
            for ev in [
                Event::FrameTaken {
                    seq,
                    captured_at: at,
                    label: "camera 0".into(),
                    width: 96,
                    height: 64,
                    jpeg_bytes: jpeg.len(),
                    superseded: 0,
                    dhash: Some(format!("{h:016x}")),
                    image: None,
                },
                Event::Escalated {
                    seq,
                    reasons: vec![Reason::Forced],
                    queue_len: 1,
                    frame_path: Some(path),
                },
                Event::TeacherVerdict {
                    seq,
                    verdict: v,
                    latency_ms: 2000,
                },
            ] {
                apply(&tx, &origin, at, &ev, &mut spans).unwrap();
            }
        }
        tx.commit().unwrap();
    }
}

fn main() {
    let n = arg("--verdicts", 50_000);
    let n_export = arg("--export", 5_000).min(n);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    fill(dir.path(), n, n_export);
    println!(
        "fill: {n} judged frames ({n_export} with images) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut config = Config::default();
    config.paths.logs = dir.path().join("logs");
    config.paths.skills = dir.path().join("skills");
    config.paths.eval = dir.path().join("eval");
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t = Instant::now();
        last = Some(gather::readiness(&config).unwrap());
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let r = last.unwrap();
    println!(
        "readiness (finetune status's work): median {:.0} ms of 3 ({:.0}–{:.0}); {} distinct of {}",
        times[1], times[0], times[2], r.frames.distinct, r.frames.total
    );
    let hashes: Vec<Option<u64>> = gather::labelled_rows(&config, None)
        .unwrap()
        .iter()
        .map(|x| x.label.dhash)
        .collect();
    let t = Instant::now();
    let a = readiness::distinct(&hashes, 4);
    let indexed = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    let mut kept: Vec<u64> = Vec::new();
    for h in hashes.iter().flatten() {
        if kept.iter().all(|k| (k ^ h).count_ones() > 4) {
            kept.push(*h);
        }
    }
    let plain = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(a.len(), kept.len());
    println!(
        "near-duplicates of {} hashes (4 bits): index {indexed:.0} ms, plain scan {plain:.0} ms",
        hashes.len()
    );
    // Export: only the frames with images are there; the rest are counted missing.
    let out = dir.path().join("set");
    let t = Instant::now();
    let s = export::export(
        &config,
        &export::ExportOptions {
            dir: out,
            since: None,
            format: export::Format::Hf,
            only: Only::All,
            holdout: 0.1,
            force: false,
        },
    )
    .unwrap();
    println!(
        "export hf: {} examples ({} train, {} test; {} missing skipped) in {:.1} s",
        s.train + s.test,
        s.train,
        s.test,
        s.missing,
        t.elapsed().as_secs_f64()
    );
}
