//! Frame prep timed per frame, outside criterion, for `benches/compare.sh` and
//! `benches/whole_program.sh`.
//!
//! ```text
//! cargo bench --bench prep_cli -- make OUTDIR        # 1280x720 JPEGs (q90, 4:4:4) from eval/images
//! cargo bench --bench prep_cli -- time DIR [FRAMES]  # ms/frame of our prep on DIR's JPEGs
//! cargo bench --bench prep_cli -- modes DIR [FRAMES] # ms/frame per webcam mode (below)
//! ```
//!
//! `modes` makes, from DIR's photos (`../shared/frames`), webcam-like MJPEG frames (q85,
//! libjpeg-turbo) at the sizes a USB webcam offers, 640x480, 800x600, 1280x720 and
//! 1920x1080, and times the full prep to the 768 px model frame for each: what choosing
//! the camera mode by `frame.max_side` saves (BENCHMARKS.md, "Camera modes").
//!
//! `time` loads every image of DIR into memory (as the camera hands us MJPEG bytes), then
//! runs FRAMES frames (default 300) through each step, cycling over the images, and prints
//! ms/frame: the full prep (decode → 768 px Hamming → JPEG q80 → base64), the same without
//! the downscale (what the seed's Python does), each step alone (planar, as the engine runs
//! them, then the RGB way and the image crate's encoder we used before), and the RGB resize
//! with fast_image_resize's SIMD forced off (`CpuExtensions::None`, the scalar fallback).
//! `JSIMD_FORCENONE=1` in the environment turns libjpeg-turbo's SIMD off the same way.
//! Lines starting with `RESULT ` are for scripts: `RESULT name ms_per_frame`.

use base64::Engine as _;
use fast_image_resize::{CpuExtensions, FilterType, ResizeAlg, ResizeOptions, Resizer};
use gemmaedge_tui::config::FrameConfig;
use gemmaedge_tui::frame::pixels::{Pixels, Planes};
use gemmaedge_tui::frame::{prep, turbo, RawImage};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

const W: u32 = 1280;
const H: u32 = 720;

fn images_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png"))
        })
        .collect();
    v.sort();
    if v.is_empty() {
        return Err(format!("no images in {}", dir.display()));
    }
    Ok(v)
}

/// Every eval photo stretched to 1280x720 (Catmull-Rom) and saved as a q90 JPEG, like a
/// webcam's MJPEG frame.
fn make(out: &Path) -> Result<(), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/images");
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    for p in images_in(&src)? {
        let img = image::open(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let img = image::imageops::resize(
            &img.to_rgb8(),
            W,
            H,
            image::imageops::FilterType::CatmullRom,
        );
        let jpeg = image_crate_jpeg(&img, 90)?;
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("frame");
        let dst = out.join(format!("{stem}.jpg"));
        std::fs::write(&dst, &jpeg).map_err(|e| format!("{}: {e}", dst.display()))?;
        println!("{} ({} KB)", dst.display(), jpeg.len() / 1024);
    }
    Ok(())
}

/// The image crate's (pure Rust, 4:4:4) JPEG encoder: what made the benchmark frames
/// from the start (so figures stay comparable across versions), and what our prep used
/// before libjpeg-turbo.
fn image_crate_jpeg(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Mean ms per call of `f(i)` over `frames` calls, after a short warm-up.
fn ms_per_frame(frames: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..frames.min(10) {
        f(i);
    }
    let t0 = Instant::now();
    for i in 0..frames {
        f(i);
    }
    t0.elapsed().as_secs_f64() * 1000.0 / frames as f64
}

fn report(name: &str, what: &str, ms: f64) {
    println!("{what:<62} {ms:8.3} ms/frame");
    println!("RESULT {name} {ms:.4}");
}

fn time(dir: &Path, frames: usize) -> Result<(), String> {
    let raws: Vec<RawImage> = images_in(dir)?
        .iter()
        .map(|p| {
            std::fs::read(p)
                .map(|b| RawImage::Encoded(b.into()))
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect::<Result<_, _>>()?;
    let n = raws.len();
    let (w, h) = prep::decode(&raws[0], 0)
        .map_err(|e| e.to_string())?
        .dimensions();
    println!(
        "{n} images from {} ({w}x{h}), {frames} frames per line",
        dir.display()
    );
    let cfg = FrameConfig {
        max_side: 768,
        jpeg_quality: 80,
    };
    let full = FrameConfig {
        max_side: 0,
        jpeg_quality: 80,
    };
    let prepared = prep::prepare(&raws[0], &cfg).map_err(|e| e.to_string())?;
    println!(
        "model frame: {}x{}, {} KB JPEG, {} KB base64",
        prepared.width,
        prepared.height,
        prepared.jpeg.len() / 1024,
        prepared.base64.len() / 1024
    );

    let ours = ms_per_frame(frames, |i| {
        black_box(prep::prepare(&raws[i % n], &cfg).expect("prepare"));
    });
    report(
        "ours_full_prep_768",
        "ours: decode -> 768 px (Hamming) -> JPEG q80 -> base64",
        ours,
    );
    let ours_full = ms_per_frame(frames, |i| {
        black_box(prep::prepare(&raws[i % n], &full).expect("prepare"));
    });
    report(
        "ours_no_downscale",
        "ours without downscale: decode -> JPEG q80 -> base64",
        ours_full,
    );

    // Each step alone, as the engine runs them: JPEG -> planes (libjpeg-turbo) -> planes
    // resized -> JPEG from the planes.
    let planes: Vec<Planes> = raws
        .iter()
        .map(|r| match prep::decode(r, 768) {
            Ok(Pixels::Planar(p)) => Ok(p),
            Ok(Pixels::Rgb(_)) => Err("expected a YCbCr JPEG".to_string()),
            Err(e) => Err(e.to_string()),
        })
        .collect::<Result<_, _>>()?;
    let t = ms_per_frame(frames, |i| {
        black_box(prep::decode(&raws[i % n], 768).expect("decode"));
    });
    report(
        "step_decode",
        "  step: JPEG decode to YCbCr planes (libjpeg-turbo)",
        t,
    );
    let (tw, th) = prep::fit_max_side(planes[0].width, planes[0].height, 768);
    let small_planes: Vec<Planes> = planes
        .iter()
        .map(|p| prep::fit_420(p, tw, th).map(|c| c.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let t = ms_per_frame(frames, |i| {
        black_box(prep::fit_420(&planes[i % n], tw, th).expect("resize"));
    });
    report(
        "step_resize",
        "  step: resize the planes to 768 px (fast_image_resize)",
        t,
    );
    let jpegs: Vec<Vec<u8>> = small_planes
        .iter()
        .map(|p| turbo::encode_planes(p, 80).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let t = ms_per_frame(frames, |i| {
        black_box(turbo::encode_planes(&small_planes[i % n], 80).expect("encode"));
    });
    report(
        "step_encode_768",
        "  step: JPEG q80 encode of the 768 px planes (libjpeg-turbo)",
        t,
    );
    let t = ms_per_frame(frames, |i| {
        black_box(base64::engine::general_purpose::STANDARD.encode(&jpegs[i % n]));
    });
    report("step_base64", "  step: base64 of the 768 px JPEG", t);

    // The RGB way (PNG files, RGB buffers), and the image crate's encoder we used before.
    let decoded: Vec<image::RgbImage> = raws
        .iter()
        .map(|r| match r {
            RawImage::Encoded(b) => prep::decode_rgb(b).map_err(|e| e.to_string()),
            _ => Err("expected JPEG files".to_string()),
        })
        .collect::<Result<_, _>>()?;
    let small: Vec<image::RgbImage> = decoded
        .iter()
        .map(|d| prep::downscale_rgb(d, 768).map(|c| c.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let t = ms_per_frame(frames, |i| {
        let RawImage::Encoded(b) = &raws[i % n] else {
            unreachable!("checked above")
        };
        black_box(prep::decode_rgb(b).expect("decode"));
    });
    report("rgb_decode", "  rgb: JPEG decode to RGB (libjpeg-turbo)", t);
    let t = ms_per_frame(frames, |i| {
        black_box(prep::downscale_rgb(&decoded[i % n], 768).expect("resize"));
    });
    report(
        "rgb_resize",
        "  rgb: resize RGB to 768 px (fast_image_resize)",
        t,
    );
    let t = ms_per_frame(frames, |i| {
        black_box(prep::encode_jpeg(&small[i % n], 80).expect("encode"));
    });
    report(
        "rgb_encode_768",
        "  rgb: JPEG q80 encode of 768 px RGB (libjpeg-turbo)",
        t,
    );
    let t = ms_per_frame(frames, |i| {
        black_box(image_crate_jpeg(&small[i % n], 80).expect("encode"));
    });
    report(
        "image_crate_encode_768",
        "  before: image crate JPEG q80 encode of 768 px RGB",
        t,
    );
    let t = ms_per_frame(frames, |i| {
        black_box(prep::encode_jpeg(&decoded[i % n], 80).expect("encode"));
    });
    report(
        "rgb_encode_1280",
        "  rgb: JPEG q80 encode at 1280x720 (libjpeg-turbo)",
        t,
    );

    // The resize step with and without SIMD.
    let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Hamming));
    let (sw, sh) = (small[0].width(), small[0].height());
    let mut dst = image::RgbImage::new(sw, sh);
    let mut simd = Resizer::new();
    let exts = simd.cpu_extensions();
    let t = ms_per_frame(frames, |i| {
        simd.resize(&decoded[i % n], &mut dst, &opts)
            .expect("resize");
        black_box(&dst);
    });
    report(
        "resize_simd",
        &format!("resize 1280x720 -> {sw}x{sh}, default ({exts:?})"),
        t,
    );
    let mut scalar = Resizer::new();
    // SAFETY: `None` (plain Rust, no CPU extension) is supported on every CPU.
    unsafe { scalar.set_cpu_extensions(CpuExtensions::None) };
    let t = ms_per_frame(frames, |i| {
        scalar
            .resize(&decoded[i % n], &mut dst, &opts)
            .expect("resize");
        black_box(&dst);
    });
    report(
        "resize_scalar",
        &format!("resize 1280x720 -> {sw}x{sh}, CpuExtensions::None"),
        t,
    );
    Ok(())
}

/// Full prep per frame for each webcam mode, from DIR's photos.
fn modes(dir: &Path, frames: usize) -> Result<(), String> {
    let photos: Vec<image::RgbImage> = images_in(dir)?
        .iter()
        .map(|p| {
            image::open(p)
                .map(|i| i.to_rgb8())
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect::<Result<_, _>>()?;
    let cfg = FrameConfig {
        max_side: 768,
        jpeg_quality: 80,
    };
    println!(
        "{} photos from {}, {frames} frames per mode, to max_side {}",
        photos.len(),
        dir.display(),
        cfg.max_side
    );
    for (w, h) in [(640, 480), (800, 600), (1280, 720), (1920, 1080)] {
        let frames_of_mode: Vec<RawImage> = photos
            .iter()
            .map(|p| {
                let img = image::imageops::resize(p, w, h, image::imageops::FilterType::CatmullRom);
                turbo::encode_rgb(&img, 85)
                    .map(|j| RawImage::Encoded(j.into()))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let kb = frames_of_mode
            .iter()
            .map(|r| match r {
                RawImage::Encoded(b) => b.len(),
                _ => 0,
            })
            .sum::<usize>()
            / frames_of_mode.len()
            / 1024;
        let n = frames_of_mode.len();
        let out = prep::prepare(&frames_of_mode[0], &cfg).map_err(|e| e.to_string())?;
        let ms = ms_per_frame(frames, |i| {
            black_box(prep::prepare(&frames_of_mode[i % n], &cfg).expect("prepare"));
        });
        report(
            &format!("mode_{w}x{h}"),
            &format!("MJPEG {w}x{h} ({kb} KB) -> {}x{}", out.width, out.height),
            ms,
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; ignore every flag.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["make", out] => make(Path::new(out)),
        ["time", dir] => time(Path::new(dir), 300),
        ["time", dir, frames] => match frames.parse::<usize>() {
            Ok(f) if f > 0 => time(Path::new(dir), f),
            _ => Err(format!("FRAMES must be a positive number, got {frames}")),
        },
        ["modes", dir] => modes(Path::new(dir), 300),
        ["modes", dir, frames] => match frames.parse::<usize>() {
            Ok(f) if f > 0 => modes(Path::new(dir), f),
            _ => Err(format!("FRAMES must be a positive number, got {frames}")),
        },
        ["make", ..] | ["time", ..] | ["modes", ..] => Err(
            "usage: prep_cli make OUTDIR | prep_cli time DIR [FRAMES] | prep_cli modes DIR [FRAMES]"
                .into(),
        ),
        _ => {
            // Plain `cargo bench` (maybe with criterion's options) runs every bench
            // target: say how to use this one and succeed.
            println!("prep_cli: usage: make OUTDIR | time DIR [FRAMES] | modes DIR [FRAMES] (see benches/compare.sh)");
            return ExitCode::SUCCESS;
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("prep_cli: {e}");
            ExitCode::FAILURE
        }
    }
}
