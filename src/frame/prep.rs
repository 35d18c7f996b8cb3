//! Preparing a frame for a model: decode, downscale to `max_side` keeping aspect ratio,
//! JPEG at `jpeg_quality`, base64.
//!
//! Only the frame the student actually takes goes through here, so capture stays cheap.
//!
//! **JPEG in (camera MJPEG, JPEG files):** libjpeg-turbo (`turbo.rs`) decodes straight into
//! the JPEG's own YCbCr planes, DCT-scaled by 1/2, 1/4 or 1/8 when the frame is at least that
//! much larger than the target (a 1920×1080 frame for 768 px decodes at 960×540); the luma
//! and chroma planes are resized separately and encoded back as a 4:2:0 JPEG from the planes.
//! No RGB on the way, so no colour conversion, chroma upsampling or downsampling, and with
//! a camera's 4:2:0 or 4:2:2 sampling a half to two thirds of the samples to resize. **YUYV camera frames** become planes the
//! same way (limited to full range), **PNG files and RGB buffers** go the RGB way: resize,
//! then libjpeg-turbo encodes RGB.
//!
//! Resizing uses `fast_image_resize` (SIMD: AVX2/SSE4.1 on x86_64, NEON on aarch64, picked
//! at run time) with the **Hamming** convolution filter: it costs the same as bilinear
//! (2x2 minimal kernel, scaled with the reduction) but its downscaling quality is close to
//! the bicubic filters (Catmull-Rom / Mitchell), and we only ever downscale here. A model
//! reading a 768 px image cares about edges and small text, so a box/nearest filter
//! (aliasing) would be a false economy. `benches/frame_prep.rs` compares it with the
//! image crate's `resize` (Triangle).

use super::pixels::{Chroma, Pixels, Planes};
pub use super::prep_error::{check_dimensions, PrepError, MAX_DECODE_PIXELS};
use super::prep_error::{checked_len, MAX_DECODE_SIDE};
use super::{turbo, PreparedFrame, RawImage};
use crate::config::FrameConfig;
use fast_image_resize::images::{TypedImage, TypedImageRef};
use fast_image_resize::pixels::{U8x3, U8};
use fast_image_resize::{FilterType, PixelTrait, ResizeAlg, ResizeOptions, Resizer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::io::Cursor;

/// Most memory a decoder may allocate: the pixel limit at 8 bytes a pixel (16-bit RGBA
/// PNG, the widest), with room to spare.
const MAX_DECODE_ALLOC: u64 = 256 * 1024 * 1024;

/// Filter for the model frame (RGB, or its luma plane): see the module docs.
const MODEL_FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::Hamming);
/// Filter for the chroma planes: area averaging, as libjpeg's own chroma downsampling does.
/// Colour carries little detail (the JPEG halves its resolution anyway) and the box kernel
/// has half the taps of Hamming's.
const CHROMA_FILTER: ResizeAlg = ResizeAlg::Convolution(FilterType::Box);

thread_local! {
    /// One resizer per thread: it keeps its scratch buffers between frames.
    static RESIZER: RefCell<Resizer> = RefCell::new(Resizer::new());
}

/// Decode a raw frame for a model frame of at most `max_side` px (0: full size). A JPEG
/// larger than twice the target is decoded DCT-scaled, so the result can be smaller than
/// the source, but never smaller than the model frame it is for.
pub fn decode(raw: &RawImage, max_side: u32) -> Result<Pixels, PrepError> {
    match raw {
        RawImage::Encoded(b) if is_jpeg(b) => decode_jpeg(b, max_side),
        RawImage::Encoded(b) => decode_other(b).map(Pixels::Rgb),
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
                .map(Pixels::Rgb)
                .ok_or_else(|| PrepError::Decode("RGB buffer size does not match".into()))
        }
        RawImage::Yuyv {
            width,
            height,
            data,
        } => Planes::from_yuyv(*width, *height, data).map(Pixels::Planar),
    }
}

/// Decode encoded bytes (JPEG, PNG) to full-size RGB: for previews and tools.
pub fn decode_rgb(bytes: &[u8]) -> Result<image::RgbImage, PrepError> {
    if is_jpeg(bytes) {
        let header = turbo::read_header(bytes)?;
        check_size(header.width, header.height)?;
        if header.rgb_decodable() {
            return turbo::decode_rgb(bytes, 1);
        }
    }
    decode_other(bytes)
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8])
}

fn decode_jpeg(bytes: &[u8], max_side: u32) -> Result<Pixels, PrepError> {
    // `turbo` parses the header again in the call that sizes its buffers (a few µs), so the
    // buffers can never disagree with the bytes; this read only picks the way and the scale.
    let header = turbo::read_header(bytes)?;
    check_size(header.width, header.height)?;
    let denom = if max_side == 0 {
        1
    } else {
        let (tw, th) = fit_max_side(header.width, header.height, max_side);
        turbo::scale_for(header.width, header.height, tw, th)
    };
    if header.planar() {
        turbo::decode_planes(bytes, denom).map(Pixels::Planar)
    } else if header.rgb_decodable() {
        turbo::decode_rgb(bytes, denom).map(Pixels::Rgb)
    } else {
        // CMYK/YCCK (some scanners and print workflows): the image crate converts those.
        decode_other(bytes).map(Pixels::Rgb)
    }
}

fn check_size(width: u32, height: u32) -> Result<(), PrepError> {
    checked_len(width, height, 3).map(|_| ())
}

/// Anything the image crate reads (PNG, CMYK JPEG), to RGB.
fn decode_other(bytes: &[u8]) -> Result<image::RgbImage, PrepError> {
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
    let decoder = reader
        .into_decoder()
        .map_err(|e| PrepError::Decode(e.to_string()))?;
    // The header's size, before the decoder allocates anything.
    let (w, h) = image::ImageDecoder::dimensions(&decoder);
    check_size(w, h)?;
    let img =
        image::DynamicImage::from_decoder(decoder).map_err(|e| PrepError::Decode(e.to_string()))?;
    // Already RGB8 for colour images: `into_rgb8` then moves the buffer without copying.
    Ok(img.into_rgb8())
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

/// Resize `src` (`dims` pixels of type `P`, `bpp` bytes each; `crop` = the part that is
/// picture, from the top left) into a new `size` image of the same type. Typed, so only
/// the pixel types we use are compiled in (fast_image_resize's dynamic entry point would
/// bring every pixel type for every CPU extension: megabytes of binary).
fn resize<P: PixelTrait>(
    src: &[u8],
    dims: (u32, u32),
    bpp: usize,
    crop: (u32, u32),
    size: (u32, u32),
    filter: ResizeAlg,
) -> Result<Vec<u8>, PrepError> {
    // Only reachable with impossible sizes; not a decode problem, so reported with the
    // encoding step that could not happen.
    let fail = |e: &dyn std::fmt::Display| PrepError::Encode(format!("resize failed: {e}"));
    let src = TypedImageRef::<P>::from_buffer(dims.0, dims.1, src).map_err(|e| fail(&e))?;
    let mut out = vec![0u8; size.0 as usize * size.1 as usize * bpp];
    let mut dst = TypedImage::<P>::from_buffer(size.0, size.1, &mut out).map_err(|e| fail(&e))?;
    let options = ResizeOptions::new().resize_alg(filter).crop(
        0.0,
        0.0,
        f64::from(crop.0),
        f64::from(crop.1),
    );
    RESIZER
        .with(|r| r.borrow_mut().resize_typed(&src, &mut dst, &options))
        .map_err(|e| fail(&e))?;
    Ok(out)
}

/// Resize one plane (`stride` bytes per row, `rows` rows, picture `crop`) to `size`.
fn resize_plane(
    plane: &[u8],
    (stride, rows): (u32, u32),
    crop: (u32, u32),
    size: (u32, u32),
    filter: ResizeAlg,
) -> Result<Vec<u8>, PrepError> {
    resize::<U8>(plane, (stride, rows), 1, crop, size, filter)
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
    let dims = img.dimensions();
    let out = resize::<U8x3>(img.as_raw(), dims, 3, dims, (w, h), MODEL_FILTER)?;
    image::RgbImage::from_raw(w, h, out)
        .map(Cow::Owned)
        .ok_or_else(|| PrepError::Encode("resize size mismatch".into()))
}

/// `plane` (`w x h`, tight rows) grown to `pw x ph` by repeating its last column and row:
/// a 4:2:0 JPEG needs even luma sizes.
fn pad_plane(plane: Vec<u8>, (w, h): (u32, u32), (pw, ph): (u32, u32)) -> Vec<u8> {
    if (w, h) == (pw, ph) {
        return plane;
    }
    let (w, h, pw, ph) = (w as usize, h as usize, pw as usize, ph as usize);
    let mut out = Vec::with_capacity(pw * ph);
    for row in plane.chunks_exact(w).take(h) {
        out.extend_from_slice(row);
        let last = row[w - 1];
        out.resize(out.len() + (pw - w), last);
    }
    let last_row = out[(h - 1) * pw..h * pw].to_vec();
    for _ in h..ph {
        out.extend_from_slice(&last_row);
    }
    out
}

/// A chroma plane (`w x h`, tight) resized to `target`: first halved by 2x2 (or 2x1, 1x2)
/// averaging where it is at least twice the target — the cheap part of a big reduction, as
/// libjpeg downsamples chroma — then the box filter for the rest.
fn fit_chroma(plane: &[u8], (w, h): (u32, u32), target: (u32, u32)) -> Result<Vec<u8>, PrepError> {
    let (hx, hy) = (w >= 2 * target.0, h >= 2 * target.1);
    if !(hx || hy) {
        return resize_plane(plane, (w, h), (w, h), target, CHROMA_FILTER);
    }
    let (half, dims) = halve(plane, (w, h), (hx, hy));
    if dims == target {
        return Ok(half);
    }
    resize_plane(&half, dims, dims, target, CHROMA_FILTER)
}

/// Average 2x2 blocks (`hx && hy`), horizontal pairs or vertical pairs of a tight `w x h`
/// plane; an odd last column or row is paired with itself.
fn halve(plane: &[u8], (w, h): (u32, u32), (hx, hy): (bool, bool)) -> (Vec<u8>, (u32, u32)) {
    let (w, h) = (w as usize, h as usize);
    let nw = if hx { w.div_ceil(2) } else { w };
    let nh = if hy { h.div_ceil(2) } else { h };
    let mut out = vec![0u8; nw * nh];
    for (y, dst) in out.chunks_exact_mut(nw).enumerate() {
        let (y0, y1) = if hy {
            (2 * y, (2 * y + 1).min(h - 1))
        } else {
            (y, y)
        };
        let (r0, r1) = (&plane[y0 * w..][..w], &plane[y1 * w..][..w]);
        if hx {
            // Whole pairs in a form the compiler vectorises; an odd last column after.
            let pairs = w / 2;
            for ((d, a), b) in dst
                .iter_mut()
                .zip(r0.chunks_exact(2))
                .zip(r1.chunks_exact(2))
            {
                let sum = u16::from(a[0]) + u16::from(a[1]) + u16::from(b[0]) + u16::from(b[1]);
                *d = ((sum + 2) >> 2) as u8;
            }
            if w % 2 == 1 {
                dst[pairs] = ((u16::from(r0[w - 1]) + u16::from(r1[w - 1]) + 1) >> 1) as u8;
            }
        } else {
            for ((d, &a), &b) in dst.iter_mut().zip(r0).zip(r1) {
                *d = ((u16::from(a) + u16::from(b) + 1) >> 1) as u8;
            }
        }
    }
    (out, (nw as u32, nh as u32))
}

/// `p` as a `tw x th` image laid out for a 4:2:0 JPEG (grayscale stays grayscale): luma
/// resized and padded to even sizes, chroma resized to half of that. Borrowed when `p` is
/// already exactly that (a 4:2:0 camera frame at the model's size).
pub fn fit_420(p: &Planes, tw: u32, th: u32) -> Result<Cow<'_, Planes>, PrepError> {
    let (pw, ph) = match p.chroma {
        Some(_) => (tw.next_multiple_of(2), th.next_multiple_of(2)),
        None => (tw, th),
    };
    let (cw, ch) = (pw / 2, ph / 2);
    let same_size = (p.width, p.height) == (tw, th);
    let luma_fits = same_size && p.y_stride >= pw && p.y_rows() >= ph;
    let chroma_fits = p
        .chroma
        .as_ref()
        .is_none_or(|c| (c.width, c.height) == (cw, ch));
    if luma_fits && chroma_fits {
        return Ok(Cow::Borrowed(p));
    }
    let (y, y_stride) = if luma_fits {
        (p.y.clone(), p.y_stride)
    } else {
        let y = resize_plane(
            &p.y,
            (p.y_stride, p.y_rows()),
            (p.width, p.height),
            (tw, th),
            MODEL_FILTER,
        )?;
        (pad_plane(y, (tw, th), (pw, ph)), pw)
    };
    let chroma = match &p.chroma {
        None => None,
        Some(c) if chroma_fits => Some(c.clone()),
        Some(c) => {
            let plane = |v: &[u8]| fit_chroma(v, (c.width, c.height), (cw, ch));
            Some(Chroma {
                width: cw,
                height: ch,
                cb: plane(&c.cb)?,
                cr: plane(&c.cr)?,
            })
        }
    };
    Ok(Cow::Owned(Planes {
        width: tw,
        height: th,
        y_stride,
        y,
        chroma,
    }))
}

/// Encode RGB as baseline 4:2:0 JPEG at `quality` (clamped to 1..=100).
pub fn encode_jpeg(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, PrepError> {
    turbo::encode_rgb(img, quality)
}

fn finish(jpeg: Vec<u8>, width: u32, height: u32) -> PreparedFrame {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    PreparedFrame {
        width,
        height,
        jpeg: jpeg.into(),
        base64: b64.into(),
    }
}

/// Downscale, JPEG-encode and base64 an RGB image for a model.
pub fn prepare_rgb(img: &image::RgbImage, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    if img.width() == 0 || img.height() == 0 {
        return Err(PrepError::Decode("empty image".into()));
    }
    let small = downscale_rgb(img, cfg.max_side)?;
    let jpeg = encode_jpeg(&small, cfg.jpeg_quality)?;
    Ok(finish(jpeg, small.width(), small.height()))
}

/// Downscale, JPEG-encode and base64 a decoded frame for a model.
pub fn prepare_pixels(px: &Pixels, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    match px {
        Pixels::Rgb(img) => prepare_rgb(img, cfg),
        Pixels::Planar(p) => {
            let (tw, th) = fit_max_side(p.width, p.height, cfg.max_side);
            let planes = fit_420(p, tw, th)?;
            let jpeg = turbo::encode_planes(&planes, cfg.jpeg_quality)?;
            Ok(finish(jpeg, tw, th))
        }
    }
}

/// Decode, downscale to `cfg.max_side`, JPEG at `cfg.jpeg_quality`, base64
/// (standard alphabet, padded, no `data:` prefix).
pub fn prepare(raw: &RawImage, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    prepare_pixels(&decode(raw, cfg.max_side)?, cfg)
}

#[cfg(test)]
#[cfg(test)]
#[path = "prep_tests.rs"]
mod tests;
