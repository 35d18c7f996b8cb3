//! The change gate's cost per frame: dHash of a decoded 1280×720 frame (sampling ~16k
//! pixels) and the comparison with the last answered frame's hash. The decode itself is
//! shared with frame prep (the gate runs on the frame the student takes, which is decoded
//! anyway), so this is the gate's extra cost.
//!
//! `cargo bench --bench gate`

use criterion::{criterion_group, criterion_main, Criterion};
use gemmaedge_tui::frame::dhash::{dhash, difference};
use std::hint::black_box;

fn frame() -> image::RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/images/coffee.png");
    let img = image::open(path).expect("eval/images/coffee.png").to_rgb8();
    image::imageops::resize(&img, 1280, 720, image::imageops::FilterType::Triangle)
}

fn bench(c: &mut Criterion) {
    let img = frame();
    let last = dhash(&img) ^ 0b1011;
    c.bench_function("gate: dhash + compare, 1280x720", |b| {
        b.iter(|| {
            let h = dhash(black_box(&img));
            black_box(difference(h, last) < 0.05)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
