//! Preparing a frame for a model: decode, downscale to `max_side` keeping aspect ratio,
//! JPEG at `jpeg_quality`, base64.
//!
//! Only the frame the student actually takes goes through here, so capture stays cheap.
//!
//! Resizing uses `fast_image_resize` (SIMD: AVX2/SSE4.1 on x86_64, NEON on aarch64, picked
//! at run time) with the **Hamming** convolution filter: it costs the same as bilinear
//! (2x2 minimal kernel, scaled with the reduction) but its downscaling quality is close to
//! the bicubic filters (Catmull-Rom / Mitchell), and we only ever downscale here. A model
//! reading a 768 px image cares about edges and small text, so a box/nearest filter
//! (aliasing) would be a false economy. `benches/frame_prep.rs` compares it with the
//! image crate's `resize` (Triangle).
//!
//! JPEG DCT-domain downscaling (decode at 1/2, 1/4, 1/8 size) would save most of the
//! decode time for large photos, but neither image 0.25's `JpegDecoder` nor zune-jpeg 0.5
//! expose it, so a full-size decode is followed by the SIMD resize.

use super::{PreparedFrame, RawImage};
use crate::config::FrameConfig;
use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
}

/// Largest width or height we agree to decode (a 16k photo is already absurd for this).
const MAX_DECODE_SIDE: u32 = 16_384;
/// Most memory a decoder may allocate (protects the Pi from decompression bombs).
const MAX_DECODE_ALLOC: u64 = 512 * 1024 * 1024;

/// Filter for the model frame: see the module docs.
const MODEL_FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::Hamming);
/// Filter for the console preview: area averaging, the cheapest filter that does not alias.
const THUMB_FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::Box);

thread_local! {
    /// One resizer per thread: it keeps its scratch buffers between frames.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Decode a raw frame to RGB.
pub fn decode(raw: &RawImage) -> Result<image::RgbImage, PrepError> {
    match raw {
        RawImage::Encoded(b) => decode_encoded(b),
        RawImage::Rgb {
            width,
            height,
            data,
        } => {
            let expected = checked_len(*width, *height, 3)?;
            if data.len() != expected {
                return Err(PrepError::Decode(format!(
                    "RGB buffer is {} bytes, expected {expected} for {width}x{height}",
                    data.len()
                )));
            }
            image::RgbImage::from_raw(*width, *height, data.to_vec())
                .ok_or_else(|| PrepError::Decode("RGB buffer size does not match".into()))
        }
        RawImage::Yuyv {
            width,
            height,
            data,
        } => yuyv_to_rgb(*width, *height, data),
    }
}

/// Bytes needed for `width x height` pixels of `bpp` bytes, refusing empty or absurd sizes.
fn checked_len(width: u32, height: u32, bpp: u64) -> Result<usize, PrepError> {
    if width == 0 || height == 0 {
        return Err(PrepError::Decode(format!("empty image ({width}x{height})")));
    }
    if width > MAX_DECODE_SIDE || height > MAX_DECODE_SIDE {
        return Err(PrepError::Decode(format!(
            "image too large ({width}x{height}, limit {MAX_DECODE_SIDE})"
        )));
    }
    usize::try_from(u64::from(width) * u64::from(height) * bpp)
        .map_err(|_| PrepError::Decode("image too large for this platform".into()))
}

fn decode_encoded(bytes: &[u8]) -> Result<image::RgbImage, PrepError> {
    if bytes.is_empty() {
        return Err(PrepError::Decode("no bytes".into()));
    }
    let mut reader = image::ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| PrepError::Decode(e.to_string()))?;
    if reader.format().is_none() {
        return Err(PrepError::Decode("not a JPEG or PNG image".into()));
    }
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| PrepError::Decode(e.to_string()))?;
    // Already RGB8 for colour JPEGs: `into_rgb8` then moves the buffer without copying.
    Ok(img.into_rgb8())
}

/// Convert packed YUYV 4:2:2 (`Y0 U Y1 V`, BT.601 limited range as UVC webcams send it)
/// to RGB. The width must be even; `data` must be exactly `width * height * 2` bytes.
pub fn yuyv_to_rgb(width: u32, height: u32, data: &[u8]) -> Result<image::RgbImage, PrepError> {
    let expected = checked_len(width, height, 2)?;
    if width % 2 != 0 {
        return Err(PrepError::Decode(format!(
            "YUYV width must be even, got {width}"
        )));
    }
    if data.len() != expected {
        return Err(PrepError::Decode(format!(
            "YUYV buffer is {} bytes, expected {expected} for {width}x{height}",
            data.len()
        )));
    }
    let mut out = vec![0u8; expected / 2 * 3];
    for (src, dst) in data.chunks_exact(4).zip(out.chunks_exact_mut(6)) {
        let d = i32::from(src[1]) - 128;
        let e = i32::from(src[3]) - 128;
        // Fixed-point BT.601: 1.164, 1.596, 0.391, 0.813, 2.018 scaled by 256.
        let r_off = 409 * e + 128;
        let g_off = -100 * d - 208 * e + 128;
        let b_off = 516 * d + 128;
        for (k, y) in [src[0], src[2]].into_iter().enumerate() {
            let c = 298 * (i32::from(y) - 16);
            dst[k * 3] = clamp_u8((c + r_off) >> 8);
            dst[k * 3 + 1] = clamp_u8((c + g_off) >> 8);
            dst[k * 3 + 2] = clamp_u8((c + b_off) >> 8);
        }
    }
    image::RgbImage::from_raw(width, height, out)
        .ok_or_else(|| PrepError::Decode("YUYV conversion size mismatch".into()))
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Size after fitting the longest side into `max_side`, keeping the aspect ratio and never
/// upscaling. `max_side == 0` means no limit.
pub fn fit_max_side(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    fit_within(width, height, max_side, max_side)
}

/// Size after fitting into a `max_w x max_h` box, keeping the aspect ratio and never
/// upscaling. A zero bound means no limit on that axis. Sides are at least 1.
pub fn fit_within(width: u32, height: u32, max_w: u32, max_h: u32) -> (u32, u32) {
    let max_w = if max_w == 0 { width } else { max_w };
    let max_h = if max_h == 0 { height } else { max_h };
    if width <= max_w && height <= max_h {
        return (width, height);
    }
    let (w, h, mw, mh) = (
        u64::from(width),
        u64::from(height),
        u64::from(max_w),
        u64::from(max_h),
    );
    // Compare mw/w with mh/h without floats: the smaller ratio limits.
    let (nw, nh) = if mw * h <= mh * w {
        (mw, (h * mw + w / 2) / w)
    } else {
        ((w * mh + h / 2) / h, mh)
    };
    let clamp = |v: u64| v.clamp(1, u64::from(u32::MAX)) as u32;
    (clamp(nw), clamp(nh))
}

/// Resize with fast_image_resize (SIMD) into a new image of exactly `width x height`.
fn resize_rgb(
    img: &image::RgbImage,
    width: u32,
    height: u32,
    alg: ResizeAlg,
) -> Result<image::RgbImage, PrepError> {
    let mut dst = image::RgbImage::new(width, height);
    let options = ResizeOptions::new().resize_alg(alg);
    RESIZER
        .with(|r| r.borrow_mut().resize(img, &mut dst, &options))
        // Only reachable with impossible sizes; not a decode problem, so reported with
        // the encoding step that could not happen.
        .map_err(|e| PrepError::Encode(format!("resize failed: {e}")))?;
    Ok(dst)
}

/// Downscale `img` so its longest side is at most `max_side` (Hamming filter, SIMD).
/// Returns the image itself (borrowed) when it is small enough already.
pub fn downscale_rgb(
    img: &image::RgbImage,
    max_side: u32,
) -> Result<Cow<'_, image::RgbImage>, PrepError> {
    let (w, h) = fit_max_side(img.width(), img.height(), max_side);
    if (w, h) == img.dimensions() {
        return Ok(Cow::Borrowed(img));
    }
    resize_rgb(img, w, h, MODEL_FILTER).map(Cow::Owned)
}

/// Encode RGB as baseline JPEG at `quality` (clamped to 1..=100).
pub fn encode_jpeg(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, PrepError> {
    let mut jpeg = Vec::with_capacity(img.as_raw().len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality.clamp(1, 100))
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| PrepError::Encode(e.to_string()))?;
    Ok(jpeg)
}

/// Downscale, JPEG-encode and base64 an RGB image for a model.
pub fn prepare_rgb(img: &image::RgbImage, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    use base64::Engine;
    if img.width() == 0 || img.height() == 0 {
        return Err(PrepError::Decode("empty image".into()));
    }
    let small = downscale_rgb(img, cfg.max_side)?;
    let jpeg = encode_jpeg(&small, cfg.jpeg_quality)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    Ok(PreparedFrame {
        width: small.width(),
        height: small.height(),
        jpeg: jpeg.into(),
        base64: b64.into(),
    })
}

/// Decode, downscale to `cfg.max_side`, JPEG at `cfg.jpeg_quality`, base64
/// (standard alphabet, padded, no `data:` prefix).
pub fn prepare(raw: &RawImage, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    let img = decode(raw)?;
    prepare_rgb(&img, cfg)
}

/// A small RGB preview fitting in `max_w x max_h` (aspect ratio kept, never upscaled),
/// for the console. Box filter: cheap and free of aliasing at these sizes.
pub fn thumbnail_rgb(raw: &RawImage, max_w: u32, max_h: u32) -> Result<image::RgbImage, PrepError> {
    let img = decode(raw)?;
    let (w, h) = fit_within(img.width(), img.height(), max_w.max(1), max_h.max(1));
    if (w, h) == img.dimensions() {
        return Ok(img);
    }
    resize_rgb(&img, w, h, THUMB_FILTER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use std::sync::Arc;

    fn cfg(max_side: u32) -> FrameConfig {
        FrameConfig {
            max_side,
            jpeg_quality: 80,
        }
    }

    /// A gradient with some structure, so the JPEG is not trivial.
    fn gradient(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([
                (x * 255 / w) as u8,
                (y * 255 / h) as u8,
                ((x ^ y) & 0xff) as u8,
            ])
        })
    }

    fn eval_image(name: &str) -> Vec<u8> {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("eval/images")
            .join(name);
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn fit_keeps_aspect_and_never_upscales() {
        assert_eq!(fit_max_side(1280, 720, 768), (768, 432));
        assert_eq!(fit_max_side(720, 1280, 768), (432, 768));
        assert_eq!(fit_max_side(1920, 1080, 768), (768, 432));
        assert_eq!(fit_max_side(640, 480, 768), (640, 480));
        assert_eq!(fit_max_side(768, 10, 768), (768, 10));
        assert_eq!(fit_max_side(10_000, 3, 768), (768, 1));
        assert_eq!(fit_max_side(300, 200, 0), (300, 200));
        assert_eq!(fit_within(1280, 720, 100, 100), (100, 56));
        assert_eq!(fit_within(1280, 720, 400, 100), (178, 100));
    }

    #[test]
    fn prepare_rgb_downscales_to_768x432_and_output_is_that_jpeg() {
        let img = gradient(1280, 720);
        let p = prepare_rgb(&img, &cfg(768)).unwrap();
        assert_eq!((p.width, p.height), (768, 432));
        assert_eq!(&p.jpeg[..3], &[0xFF, 0xD8, 0xFF], "JPEG SOI marker");
        let back = image::load_from_memory_with_format(&p.jpeg, image::ImageFormat::Jpeg)
            .unwrap()
            .to_rgb8();
        assert_eq!(back.dimensions(), (768, 432));
        // The content survived: the left edge is dark red, the right edge bright red.
        let left = back.get_pixel(2, 216).0[0];
        let right = back.get_pixel(765, 216).0[0];
        assert!(left < 30 && right > 220, "left {left}, right {right}");
    }

    #[test]
    fn base64_is_standard_padded_and_round_trips() {
        let p = prepare_rgb(&gradient(101, 37), &cfg(768)).unwrap();
        assert!(!p.base64.starts_with("data:"));
        assert_eq!(p.base64.len() % 4, 0, "padded");
        assert!(p
            .base64
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'='));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(p.base64.as_bytes())
            .unwrap();
        assert_eq!(&bytes[..], &p.jpeg[..]);
    }

    #[test]
    fn small_images_are_not_upscaled() {
        let raw = RawImage::Rgb {
            width: 120,
            height: 80,
            data: gradient(120, 80).into_raw().into(),
        };
        let p = prepare(&raw, &cfg(768)).unwrap();
        assert_eq!((p.width, p.height), (120, 80));
        let back = image::load_from_memory(&p.jpeg).unwrap();
        assert_eq!((back.width(), back.height()), (120, 80));
    }

    #[test]
    fn real_photos_decode_and_shrink() {
        for name in ["rocket.jpg", "chelsea.png"] {
            let raw = RawImage::Encoded(eval_image(name).into());
            let full = decode(&raw).unwrap();
            let p = prepare(&raw, &cfg(256)).unwrap();
            assert_eq!(p.width.max(p.height), 256, "{name}");
            assert_eq!(
                (p.width, p.height),
                fit_max_side(full.width(), full.height(), 256),
                "{name}"
            );
        }
    }

    #[test]
    fn bad_bytes_are_a_decode_error() {
        for bytes in [
            &b""[..],
            &b"hello, not an image"[..],
            &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10][..],
        ] {
            let raw = RawImage::Encoded(Arc::from(bytes));
            assert!(
                matches!(prepare(&raw, &cfg(768)), Err(PrepError::Decode(_))),
                "{bytes:?}"
            );
        }
        let raw = RawImage::Rgb {
            width: 10,
            height: 10,
            data: vec![0u8; 299].into(),
        };
        assert!(matches!(decode(&raw), Err(PrepError::Decode(_))));
        let raw = RawImage::Rgb {
            width: 0,
            height: 10,
            data: vec![].into(),
        };
        assert!(matches!(decode(&raw), Err(PrepError::Decode(_))));
    }

    #[test]
    fn yuyv_2x1_converts_to_known_colours() {
        // Black and white share chroma (neutral U=V=128).
        let img = yuyv_to_rgb(2, 1, &[16, 128, 235, 128]).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(1, 0).0, [255, 255, 255]);
        // BT.601 limited-range pure red is Y=81 U=90 V=240; pure blue Y=41 U=240 V=110.
        let img = yuyv_to_rgb(2, 1, &[81, 90, 81, 240]).unwrap();
        for px in img.pixels() {
            let [r, g, b] = px.0;
            assert!(r >= 253 && g <= 2 && b <= 2, "{:?}", px.0);
        }
        let raw = RawImage::Yuyv {
            width: 2,
            height: 1,
            data: Arc::from(&[41u8, 240, 41, 110][..]),
        };
        let [r, g, b] = decode(&raw).unwrap().get_pixel(0, 0).0;
        assert!(r <= 2 && g <= 2 && b >= 253, "{r} {g} {b}");
        // Wrong length or odd width is an error, not a panic.
        assert!(yuyv_to_rgb(2, 1, &[1, 2, 3]).is_err());
        assert!(yuyv_to_rgb(3, 1, &[0; 6]).is_err());
    }

    #[test]
    fn yuyv_frame_prepares_like_any_other() {
        let (w, h) = (1280u32, 720u32);
        let data: Vec<u8> = (0..w * h / 2)
            .flat_map(|_| [128u8, 128, 128, 128])
            .collect();
        let p = prepare(
            &RawImage::Yuyv {
                width: w,
                height: h,
                data: data.into(),
            },
            &cfg(768),
        )
        .unwrap();
        assert_eq!((p.width, p.height), (768, 432));
    }

    #[test]
    fn simd_resize_matches_image_crate_closely_and_keeps_channels() {
        let img = gradient(640, 360);
        let ours = downscale_rgb(&img, 320).unwrap().into_owned();
        let theirs = image::imageops::resize(&img, 320, 180, image::imageops::FilterType::Triangle);
        assert_eq!(ours.dimensions(), theirs.dimensions());
        // Compare the smooth red and green ramps (the XOR pattern in blue is aliasing-prone).
        let diff: u64 = ours
            .pixels()
            .zip(theirs.pixels())
            .map(|(a, b)| u64::from(a.0[0].abs_diff(b.0[0])) + u64::from(a.0[1].abs_diff(b.0[1])))
            .sum();
        let mean = diff as f64 / (320.0 * 180.0 * 2.0);
        assert!(mean < 2.0, "mean channel difference {mean}");
    }

    #[test]
    fn thumbnail_fits_the_box() {
        let raw = RawImage::Encoded(eval_image("rocket.jpg").into());
        let full = decode(&raw).unwrap();
        let t = thumbnail_rgb(&raw, 80, 40).unwrap();
        assert!(t.width() <= 80 && t.height() <= 40);
        assert!(t.width() == 80 || t.height() == 40);
        assert_eq!(
            t.dimensions(),
            fit_within(full.width(), full.height(), 80, 40)
        );
        // A tiny image is returned as is.
        let raw = RawImage::Rgb {
            width: 4,
            height: 2,
            data: vec![7u8; 24].into(),
        };
        assert_eq!(thumbnail_rgb(&raw, 80, 40).unwrap().dimensions(), (4, 2));
    }
}
