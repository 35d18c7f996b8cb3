//! Frame preparation cost: a 1280x720 camera-sized frame to the 768 px JPEG + base64 a
//! model gets, from JPEG bytes (MJPEG camera / photo folder), raw RGB and YUYV; and the
//! resize step alone with the image crate (Triangle) against fast_image_resize (SIMD as
//! detected, and forced scalar with `CpuExtensions::None`).
//!
//! `cargo bench --bench frame_prep -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use gemmaedge_tui::config::FrameConfig;
use gemmaedge_tui::frame::{prep, RawImage};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const W: u32 = 1280;
const H: u32 = 720;

/// A 1280x720 photo: eval/images/rocket.jpg stretched, or a synthetic pattern if missing.
fn frame_rgb() -> image::RgbImage {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/images/rocket.jpg");
    match image::open(path) {
        Ok(img) => image::imageops::resize(
            &img.to_rgb8(),
            W,
            H,
            image::imageops::FilterType::CatmullRom,
        ),
        Err(e) => {
            eprintln!("{path}: {e}; using a synthetic frame");
            image::RgbImage::from_fn(W, H, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8])
            })
        }
    }
}

/// q90 4:4:4 through the image crate's encoder: the same bench input as before
/// libjpeg-turbo, so figures stay comparable.
fn jpeg_of(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(img.as_raw(), W, H, image::ExtendedColorType::Rgb8)
        .expect("encode the bench frame");
    out
}

/// RGB to packed YUYV (BT.601 limited range), to feed the YUYV path a real picture.
fn yuyv_of(img: &image::RgbImage) -> Vec<u8> {
    let mut out = Vec::with_capacity((W * H * 2) as usize);
    for pair in img.as_raw().chunks_exact(6) {
        let yuv = |p: &[u8]| {
            let (r, g, b) = (f32::from(p[0]), f32::from(p[1]), f32::from(p[2]));
            let y = 16.0 + 0.257 * r + 0.504 * g + 0.098 * b;
            let u = 128.0 - 0.148 * r - 0.291 * g + 0.439 * b;
            let v = 128.0 + 0.439 * r - 0.368 * g - 0.071 * b;
            (y as u8, u, v)
        };
        let (y0, u0, v0) = yuv(&pair[..3]);
        let (y1, u1, v1) = yuv(&pair[3..]);
        out.extend_from_slice(&[y0, ((u0 + u1) / 2.0) as u8, y1, ((v0 + v1) / 2.0) as u8]);
    }
    out
}

fn fir_resize(r: &mut Resizer, src: &image::RgbImage, filter: FilterType) -> image::RgbImage {
    let mut dst = image::RgbImage::new(768, 432);
    r.resize(
        src,
        &mut dst,
        &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter)),
    )
    .expect("resize");
    dst
}

/// Mean time of `f` over a short run, for the side-by-side line printed before criterion's.
fn quick_ms(mut f: impl FnMut()) -> f64 {
    f();
    let n = 20;
    let t0 = Instant::now();
    for _ in 0..n {
        f();
    }
    t0.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

fn benches(c: &mut Criterion) {
    let cfg = FrameConfig {
        max_side: 768,
        jpeg_quality: 80,
    };
    let rgb = frame_rgb();
    let jpeg = RawImage::Encoded(Arc::from(jpeg_of(&rgb)));
    let raw_rgb = RawImage::Rgb {
        width: W,
        height: H,
        data: Arc::from(rgb.as_raw().as_slice()),
    };
    let yuyv = RawImage::Yuyv {
        width: W,
        height: H,
        data: Arc::from(yuyv_of(&rgb)),
    };

    let mut fir = Resizer::new();
    println!(
        "fast_image_resize CPU extensions: {:?}",
        fir.cpu_extensions()
    );
    let image_ms = quick_ms(|| {
        black_box(image::imageops::resize(
            &rgb,
            768,
            432,
            image::imageops::FilterType::Triangle,
        ));
    });
    let fir_ms = quick_ms(|| {
        black_box(fir_resize(&mut fir, &rgb, FilterType::Hamming));
    });
    println!(
        "resize 1280x720 -> 768x432: image crate Triangle {image_ms:.2} ms, \
         fast_image_resize Hamming {fir_ms:.2} ms ({:.1}x)",
        image_ms / fir_ms
    );

    let mut g = c.benchmark_group("prepare_1280x720");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    g.bench_function("from_jpeg", |b| {
        b.iter(|| prep::prepare(black_box(&jpeg), &cfg).expect("prepare"))
    });
    g.bench_function("from_rgb", |b| {
        b.iter(|| prep::prepare_rgb(black_box(&rgb), &cfg).expect("prepare"))
    });
    g.bench_function("from_raw_rgb", |b| {
        b.iter(|| prep::prepare(black_box(&raw_rgb), &cfg).expect("prepare"))
    });
    g.bench_function("from_yuyv", |b| {
        b.iter(|| prep::prepare(black_box(&yuyv), &cfg).expect("prepare"))
    });
    g.bench_function("decode_jpeg_to_planes_only", |b| {
        b.iter(|| prep::decode(black_box(&jpeg), 768).expect("decode"))
    });
    let jpeg_bytes = jpeg_of(&rgb);
    g.bench_function("decode_jpeg_to_rgb_only", |b| {
        b.iter(|| prep::decode_rgb(black_box(&jpeg_bytes)).expect("decode"))
    });
    g.finish();

    let mut g = c.benchmark_group("resize_1280x720_to_768x432");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    g.bench_function("image_crate_triangle", |b| {
        b.iter(|| {
            image::imageops::resize(
                black_box(&rgb),
                768,
                432,
                image::imageops::FilterType::Triangle,
            )
        })
    });
    for (name, filter) in [
        ("fast_image_resize_bilinear", FilterType::Bilinear),
        ("fast_image_resize_hamming (used)", FilterType::Hamming),
        ("fast_image_resize_catmullrom", FilterType::CatmullRom),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| fir_resize(&mut fir, black_box(&rgb), filter))
        });
    }
    // The scalar fallback (what a CPU without the SIMD paths gets): SIMD forced off.
    let mut scalar = Resizer::new();
    // SAFETY: `None` (plain Rust, no CPU extension) is supported on every CPU.
    unsafe { scalar.set_cpu_extensions(fast_image_resize::CpuExtensions::None) };
    g.bench_function(
        "fast_image_resize_hamming_scalar (CpuExtensions::None)",
        |b| b.iter(|| fir_resize(&mut scalar, black_box(&rgb), FilterType::Hamming)),
    );
    g.finish();
}

criterion_group!(frame_prep, benches);
criterion_main!(frame_prep);
