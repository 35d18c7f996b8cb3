//! Tests of frame prep: decode, downscale, the 4:2:0 fit and the JPEG sent to a model.

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
    for name in ["rocket.jpg", "grace_hopper.jpg", "chelsea.png"] {
        let bytes = eval_image(name);
        let full = decode_rgb(&bytes).unwrap();
        let p = prepare(&RawImage::Encoded(bytes.into()), &cfg(256)).unwrap();
        assert_eq!(p.width.max(p.height), 256, "{name}");
        // The aspect ratio is kept to the pixel (a DCT-scaled decode may round the
        // short side differently by one).
        let (w, h) = fit_max_side(full.width(), full.height(), 256);
        assert!(
            p.width.abs_diff(w) <= 1 && p.height.abs_diff(h) <= 1,
            "{name}"
        );
        let back = decode_rgb(&p.jpeg).unwrap();
        assert_eq!(back.dimensions(), (p.width, p.height), "{name}");
    }
}

/// A 1280x720 JPEG of the gradient, with the given chroma sampling.
fn jpeg_1280x720(sampling: i32) -> Vec<u8> {
    let img = gradient(1280, 720);
    match sampling {
        420 => return encode_jpeg(&img, 90).unwrap(),
        422 => return turbo::encode_rgb_422(&img, 90).unwrap(),
        _ => {}
    }
    // 4:4:4 through the image crate's encoder (it does not subsample), like the
    // q90 frames in the benchmarks.
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode(img.as_raw(), 1280, 720, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

#[test]
fn halving_averages_blocks_and_keeps_odd_edges() {
    // 3x2 plane: 2x2 blocks -> 2x1; the odd last column pairs with itself.
    let p = [10, 20, 30, 50, 60, 70];
    assert_eq!(halve(&p, (3, 2), (true, true)), (vec![35, 50], (2, 1)));
    assert_eq!(halve(&p, (3, 2), (false, true)), (vec![30, 40, 50], (3, 1)));
    assert_eq!(
        halve(&p, (3, 2), (true, false)),
        (vec![15, 30, 55, 70], (2, 2))
    );
    // 4:4:4 chroma of a 1280x720 frame for a 768x432 model frame: halved, then boxed.
    let big = vec![77u8; 1280 * 720];
    let small = fit_chroma(&big, (1280, 720), (384, 216)).unwrap();
    assert_eq!(small.len(), 384 * 216);
    assert!(small.iter().all(|&v| v == 77));
}

#[test]
fn jpeg_frames_stay_planar_and_large_ones_decode_scaled() {
    for sampling in [420, 422, 444] {
        let raw = RawImage::Encoded(jpeg_1280x720(sampling).into());
        // 1280x720 for 768 px: full size (half would be 640, too small).
        let Pixels::Planar(full) = decode(&raw, 768).unwrap() else {
            panic!("a colour JPEG decodes to planes");
        };
        assert_eq!((full.width, full.height), (1280, 720));
        let c = full.chroma.as_ref().expect("colour");
        let want_chroma = match sampling {
            420 => (640, 360),
            422 => (640, 720),
            _ => (1280, 720),
        };
        assert_eq!((c.width, c.height), want_chroma, "{sampling}");
        // For 600 px, half size (640) still covers it: decoded at 1/2; for 320 px a
        // quarter does, exactly.
        for (max_side, want) in [(600, (640, 360)), (320, (320, 180))] {
            let Pixels::Planar(scaled) = decode(&raw, max_side).unwrap() else {
                panic!("planes");
            };
            assert_eq!((scaled.width, scaled.height), want, "{sampling}");
        }
        for (max_side, want) in [
            (768, (768, 432)),
            (600, (600, 338)),
            (320, (320, 180)),
            (0, (1280, 720)),
        ] {
            let p = prepare(&raw, &cfg(max_side)).unwrap();
            assert_eq!((p.width, p.height), want, "{sampling} {max_side}");
            let back = decode_rgb(&p.jpeg).unwrap();
            assert_eq!(back.dimensions(), want);
            // The red ramp survived: dark on the left, bright on the right.
            let (l, r) = (
                back.get_pixel(1, want.1 / 2).0[0],
                back.get_pixel(want.0 - 2, want.1 / 2).0[0],
            );
            assert!(l < 30 && r > 220, "{sampling} {max_side}: {l} {r}");
        }
    }
}

#[test]
fn odd_sizes_are_padded_for_420_and_come_back_at_their_size() {
    // 4:2:0 needs even luma sizes; 1001x563 -> 767x431 (odd both ways).
    let img = gradient(1001, 563);
    let raw = RawImage::Encoded(encode_jpeg(&img, 90).unwrap().into());
    let p = prepare(&raw, &cfg(767)).unwrap();
    assert_eq!((p.width, p.height), (767, 431));
    let back = decode_rgb(&p.jpeg).unwrap();
    assert_eq!(back.dimensions(), (767, 431));
    // The last column and row are picture, not padding garbage.
    let px = back.get_pixel(766, 430).0;
    assert!(px[0] > 220 && px[1] > 220, "{px:?}");
}

#[test]
fn a_grayscale_jpeg_stays_grayscale() {
    let grey = image::GrayImage::from_fn(640, 480, |x, _| image::Luma([(x * 255 / 640) as u8]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(grey.as_raw(), 640, 480, image::ExtendedColorType::L8)
        .unwrap();
    let raw = RawImage::Encoded(jpeg.into());
    let Pixels::Planar(planes) = decode(&raw, 320).unwrap() else {
        panic!("planes");
    };
    assert!(planes.chroma.is_none());
    let p = prepare(&raw, &cfg(320)).unwrap();
    assert_eq!((p.width, p.height), (320, 240));
    let back = image::load_from_memory(&p.jpeg).unwrap();
    assert_eq!(back.color(), image::ColorType::L8);
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
    assert!(matches!(decode(&raw, 768), Err(PrepError::Decode(_))));
    let raw = RawImage::Rgb {
        width: 0,
        height: 10,
        data: vec![].into(),
    };
    assert!(matches!(decode(&raw, 768), Err(PrepError::Decode(_))));
}

/// A YUYV frame of one colour (BT.601 limited range Y, U, V).
fn yuyv_solid(w: u32, h: u32, [y, u, v]: [u8; 3]) -> RawImage {
    RawImage::Yuyv {
        width: w,
        height: h,
        data: [y, u, y, v].repeat((w * h / 2) as usize).into(),
    }
}

#[test]
fn yuyv_colours_reach_the_model_jpeg_right() {
    // Limited-range black, white, pure red (Y=81 U=90 V=240), pure blue (41, 240, 110).
    for (yuv, want) in [
        ([16, 128, 128], [0, 0, 0]),
        ([235, 128, 128], [255, 255, 255]),
        ([81, 90, 240], [255, 0, 0]),
        ([41, 240, 110], [0, 0, 255]),
    ] {
        let p = prepare(&yuyv_solid(64, 32, yuv), &cfg(768)).unwrap();
        assert_eq!((p.width, p.height), (64, 32));
        let back = decode_rgb(&p.jpeg).unwrap();
        let got = back.get_pixel(20, 10).0;
        for c in 0..3 {
            assert!(
                got[c].abs_diff(want[c]) <= 6,
                "{yuv:?}: got {got:?}, want {want:?}"
            );
        }
    }
    // Wrong length or odd width is an error, not a panic.
    let bad = RawImage::Yuyv {
        width: 3,
        height: 1,
        data: vec![0u8; 6].into(),
    };
    assert!(matches!(
        prepare(&bad, &cfg(768)),
        Err(PrepError::Decode(_))
    ));
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
