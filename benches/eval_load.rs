//! Loading a large eval set: 100,000 text cases in one file, and 10,000 learned image
//! cases (each with its own small JPEG, as `learned.toml` grows to). Loading used to be
//! quadratic (each case's line found by rescanning the file: 19.6 s for 20k cases); it
//! should now take about a second for 100k.
//!
//! `cargo bench --bench eval_load -- --warm-up-time 1 --measurement-time 10`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gemmaedge_tui::eval::cases::load_eval_set;
use std::fmt::Write;
use std::hint::black_box;
use std::path::Path;

const TEXT_CASES: usize = 100_000;
const IMAGE_CASES: usize = 10_000;

const SCENES: &[(&str, &str, bool)] = &[
    (
        "A person is holding a lighter with a visible flame.",
        r#"["person", ["flame", "fire"]]"#,
        true,
    ),
    (
        "A laptop and coffee mug are on a desk.",
        r#"["laptop", ["mug", "cup"]]"#,
        false,
    ),
    (
        "There is smoke visible near the kitchen area.",
        r#"["smoke", "kitchen"]"#,
        true,
    ),
    ("A dog sleeps on a rug.", r#"["dog", "rug"]"#, false),
    (
        "A man stands on the top step of a wobbly ladder.",
        r#"["man", "ladder"]"#,
        true,
    ),
];

fn text_set(dir: &Path) {
    let mut s = String::with_capacity(TEXT_CASES * 160);
    for i in 0..TEXT_CASES {
        let (text, expect, safety) = SCENES[i % SCENES.len()];
        let _ = write!(
            s,
            "[[case]]\nid = \"case-{i:06}\"\ntext = \"{text}\"\nexpect = {expect}\nforbid = [\"cat\"]\nsafety = {safety}\nsplit = \"{}\"\n\n",
            if i % 5 == 0 { "holdout" } else { "train" }
        );
    }
    std::fs::write(dir.join("cases.toml"), s).unwrap();
}

fn image_set(dir: &Path) {
    let images = dir.join("images/learned");
    std::fs::create_dir_all(&images).unwrap();
    let mut jpeg = Vec::new();
    image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 200]))
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let mut s = String::new();
    for i in 0..IMAGE_CASES {
        let id = format!("learned-20261128-093012-{i:06}");
        // Each image differs (its hash is part of the set's hash).
        let mut bytes = jpeg.clone();
        bytes.extend_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(images.join(format!("{id}.jpg")), &bytes).unwrap();
        let _ = write!(
            s,
            "\n# source: bench\n[[case]]\nid = \"{id}\"\nimage = \"images/learned/{id}.jpg\"\nexpect = [\"cat\", \"sofa\"]\nforbid = [\"dog\"]\nsafety = false\nsplit = \"train\"\n"
        );
    }
    std::fs::write(dir.join("learned.toml"), s).unwrap();
}

fn benches(c: &mut Criterion) {
    let text = tempfile::tempdir().unwrap();
    text_set(text.path());
    let images = tempfile::tempdir().unwrap();
    image_set(images.path());
    let mut g = c.benchmark_group("eval_load");
    g.sample_size(10);
    g.throughput(Throughput::Elements(TEXT_CASES as u64));
    g.bench_function("100k text cases", |b| {
        b.iter(|| {
            let set = load_eval_set(black_box(text.path())).unwrap();
            assert_eq!(set.cases.len(), TEXT_CASES);
            set
        })
    });
    g.throughput(Throughput::Elements(IMAGE_CASES as u64));
    g.bench_function("10k learned image cases", |b| {
        b.iter(|| {
            let set = load_eval_set(black_box(images.path())).unwrap();
            assert_eq!(set.cases.len(), IMAGE_CASES);
            set
        })
    });
    g.finish();
}

criterion_group!(eval_load, benches);
criterion_main!(eval_load);
