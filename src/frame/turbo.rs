//! libjpeg-turbo (its TurboJPEG 3 API) behind a small safe interface: read a JPEG's
//! header, decode it — optionally DCT-scaled by 1/2, 1/4 or 1/8 — into its own planar
//! YCbCr or into RGB, and encode planar YCbCr or RGB as a baseline JPEG.
//!
//! Why libjpeg-turbo: it is the JPEG codec of Pillow, browsers and most camera tooling,
//! with hand-written SIMD for x86-64 (SSE2/AVX2) and for the Pi's ARM cores (NEON), picked
//! at run time. The image crate's pure-Rust encoder took 9.4 ms for a 768×432 frame where
//! libjpeg-turbo takes about 1 ms (see BENCHMARKS.md). The library is built from the source
//! bundled with `turbojpeg-sys` (needs `cmake`, and `nasm` on x86-64), so no system
//! libjpeg-turbo version matters.
//!
//! Decoding to planes skips the YCbCr→RGB conversion and the chroma upsampling, and encoding
//! from planes skips RGB→YCbCr and the chroma downsampling: a JPEG from the camera becomes
//! the model's JPEG without ever being RGB.
//!
//! Each thread keeps one decoder and one encoder handle (they hold scratch memory), like the
//! resizer in `prep`.

use super::pixels::{Chroma, Planes};
use super::prep_error::PrepError;
use std::cell::RefCell;
use std::ffi::CStr;
use turbojpeg_sys as tj;

/// Most memory (MB) libjpeg-turbo may use for one image (progressive JPEGs buffer all
/// their coefficients): protects a Pi from a crafted file.
const MAX_MEMORY_MB: i32 = 512;

/// What a JPEG's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub width: u32,
    pub height: u32,
    /// A `TJSAMP_*` value; `TJSAMP_UNKNOWN` (-1) for unusual sampling factors.
    subsamp: i32,
    /// A `TJCS_*` value.
    colorspace: i32,
    lossless: bool,
}

impl Header {
    /// Whether [`decode_planes`] can hand out this image's own planes: lossy 8-bit YCbCr
    /// or grayscale with a sampling layout libjpeg-turbo knows (lossless JPEGs decode to
    /// RGB only).
    pub fn planar(&self) -> bool {
        !self.lossless
            && self.subsamp != tj::TJSAMP_TJSAMP_UNKNOWN
            && (self.colorspace == tj::TJCS_TJCS_YCbCr as i32
                || self.colorspace == tj::TJCS_TJCS_GRAY as i32)
    }

    /// Whether libjpeg-turbo can decode it to RGB (not CMYK/YCCK, which only decode to CMYK).
    pub fn rgb_decodable(&self) -> bool {
        self.colorspace != tj::TJCS_TJCS_CMYK as i32 && self.colorspace != tj::TJCS_TJCS_YCCK as i32
    }

    /// Size after decoding at `1/denom` scale (libjpeg's rounding: up).
    pub fn scaled(&self, denom: u32) -> (u32, u32) {
        (self.width.div_ceil(denom), self.height.div_ceil(denom))
    }
}

/// The DCT scale (denominator 1, 2, 4 or 8) that decodes a `width x height` JPEG to the
/// smallest size still at least `min_w x min_h`: decoding at 1/2 skips most of the inverse
/// DCT and colour work, and the resize after it has less to do.
pub fn scale_for(width: u32, height: u32, min_w: u32, min_h: u32) -> u32 {
    [8, 4, 2]
        .into_iter()
        .find(|&d| width.div_ceil(d) >= min_w && height.div_ceil(d) >= min_h)
        .unwrap_or(1)
}

/// An owned TurboJPEG instance.
struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init, is non-null and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

impl Handle {
    fn new(kind: tj::TJINIT) -> Result<Self, String> {
        // SAFETY: plain constructor; a null result is handled.
        let h = unsafe { tj::tj3Init(kind as libc::c_int) };
        if h.is_null() {
            return Err("cannot initialise libjpeg-turbo".into());
        }
        Ok(Handle(h))
    }

    fn set(&self, param: tj::TJPARAM, value: i32) -> Result<(), String> {
        // SAFETY: valid handle; an unknown parameter is reported as an error, not UB.
        if unsafe { tj::tj3Set(self.0, param as libc::c_int, value) } != 0 {
            return Err(self.error_message());
        }
        Ok(())
    }

    fn get(&self, param: tj::TJPARAM) -> i32 {
        // SAFETY: valid handle.
        unsafe { tj::tj3Get(self.0, param as libc::c_int) }
    }

    fn error_message(&self) -> String {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated string owned by the handle,
        // valid until the next call on it; we copy it at once.
        unsafe { CStr::from_ptr(tj::tj3GetErrorStr(self.0)) }
            .to_string_lossy()
            .into_owned()
    }

    /// After a decode call returned -1: `Ok` for a warning the image survived (e.g. the
    /// "extraneous bytes before marker" many webcams produce on every frame), `Err` for a
    /// fatal error or a truncated frame (its missing part would reach the model as grey).
    fn decode_outcome(&self) -> Result<(), String> {
        let msg = self.error_message();
        // SAFETY: valid handle.
        let code = unsafe { tj::tj3GetErrorCode(self.0) };
        if code == tj::TJERR_TJERR_WARNING as libc::c_int && !msg.contains("Premature end") {
            return Ok(());
        }
        Err(msg)
    }
}

thread_local! {
    /// Worst-case-sized output buffer for the encoder (about 1 MB for a 768 px frame).
    static JPEG_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static DECODER: RefCell<Option<Handle>> = const { RefCell::new(None) };
    static ENCODER: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

fn with_handle<R>(
    slot: &'static std::thread::LocalKey<RefCell<Option<Handle>>>,
    kind: tj::TJINIT,
    f: impl FnOnce(&Handle) -> Result<R, String>,
) -> Result<R, String> {
    slot.with(|cell| {
        let mut cell = cell.borrow_mut();
        let h = match &mut *cell {
            Some(h) => h,
            empty @ None => {
                let h = Handle::new(kind)?;
                if kind == tj::TJINIT_TJINIT_DECOMPRESS {
                    h.set(tj::TJPARAM_TJPARAM_MAXMEMORY, MAX_MEMORY_MB)?;
                }
                empty.insert(h)
            }
        };
        f(h)
    })
}

fn decoder<R>(f: impl FnOnce(&Handle) -> Result<R, String>) -> Result<R, PrepError> {
    with_handle(&DECODER, tj::TJINIT_TJINIT_DECOMPRESS, f).map_err(PrepError::Decode)
}

fn encoder<R>(f: impl FnOnce(&Handle) -> Result<R, String>) -> Result<R, PrepError> {
    with_handle(&ENCODER, tj::TJINIT_TJINIT_COMPRESS, f).map_err(PrepError::Encode)
}

fn c_int(v: u32) -> Result<libc::c_int, String> {
    libc::c_int::try_from(v).map_err(|_| format!("{v} is too large"))
}

/// Parse the header (size, sampling, colour space) without decoding anything.
pub fn read_header(jpeg: &[u8]) -> Result<Header, PrepError> {
    decoder(|h| read_header_with(h, jpeg))
}

fn read_header_with(h: &Handle, jpeg: &[u8]) -> Result<Header, String> {
    if jpeg.is_empty() {
        return Err("no bytes".into());
    }
    // SAFETY: valid handle; the buffer pointer and length describe `jpeg`.
    let rc = unsafe { tj::tj3DecompressHeader(h.0, jpeg.as_ptr(), jpeg.len() as tj::size_t) };
    if rc != 0 {
        return Err(h.error_message());
    }
    let dim = |p| u32::try_from(h.get(p)).map_err(|_| "bad image size in header".to_string());
    let header = Header {
        width: dim(tj::TJPARAM_TJPARAM_JPEGWIDTH)?,
        height: dim(tj::TJPARAM_TJPARAM_JPEGHEIGHT)?,
        subsamp: h.get(tj::TJPARAM_TJPARAM_SUBSAMP),
        colorspace: h.get(tj::TJPARAM_TJPARAM_COLORSPACE),
        lossless: h.get(tj::TJPARAM_TJPARAM_LOSSLESS) == 1,
    };
    if header.width == 0 || header.height == 0 {
        return Err("empty image in header".into());
    }
    if h.get(tj::TJPARAM_TJPARAM_PRECISION) > 8 {
        return Err("12- and 16-bit JPEGs are not supported".into());
    }
    Ok(header)
}

/// Decode the next image at `1/denom` scale (full size for a lossless JPEG, which cannot
/// be scaled); returns the size it will decode to.
fn set_scale(h: &Handle, header: &Header, denom: u32) -> Result<(u32, u32), String> {
    let denom = if header.lossless { 1 } else { denom };
    let factor = tj::tjscalingfactor {
        num: 1,
        denom: denom as libc::c_int,
    };
    // SAFETY: valid handle; 1/1, 1/2, 1/4 and 1/8 are always supported.
    if unsafe { tj::tj3SetScalingFactor(h.0, factor) } != 0 {
        return Err(h.error_message());
    }
    Ok(header.scaled(denom))
}

fn plane_size(component: i32, width: u32, height: u32, subsamp: i32) -> Result<(u32, u32), String> {
    // SAFETY: pure functions of their arguments.
    let (w, h) = unsafe {
        (
            tj::tj3YUVPlaneWidth(component, c_int(width)?, subsamp),
            tj::tj3YUVPlaneHeight(component, c_int(height)?, subsamp),
        )
    };
    match (u32::try_from(w), u32::try_from(h)) {
        (Ok(w), Ok(h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err("cannot size the image planes".into()),
    }
}

/// Decode into the JPEG's own planes at `1/denom` scale (1, 2, 4 or 8). Fails for a
/// JPEG that is not [`Header::planar`].
pub fn decode_planes(jpeg: &[u8], denom: u32) -> Result<Planes, PrepError> {
    decoder(|h| {
        let header = &read_header_with(h, jpeg)?;
        if !header.planar() {
            return Err("not a YCbCr or grayscale JPEG".into());
        }
        let (width, height) = set_scale(h, header, denom)?;
        let gray = header.subsamp == tj::TJSAMP_TJSAMP_GRAY;
        let (yw, yh) = plane_size(0, width, height, header.subsamp)?;
        let mut y = vec![0u8; yw as usize * yh as usize];
        let mut chroma = if gray {
            None
        } else {
            let (cw, ch) = plane_size(1, width, height, header.subsamp)?;
            let len = cw as usize * ch as usize;
            Some(Chroma {
                width: cw,
                height: ch,
                cb: vec![0u8; len],
                cr: vec![0u8; len],
            })
        };
        let mut planes: [*mut u8; 3] = [y.as_mut_ptr(), std::ptr::null_mut(), std::ptr::null_mut()];
        let mut strides: [libc::c_int; 3] = [c_int(yw)?, 0, 0];
        if let Some(c) = chroma.as_mut() {
            planes[1] = c.cb.as_mut_ptr();
            planes[2] = c.cr.as_mut_ptr();
            strides[1] = c_int(c.width)?;
            strides[2] = c_int(c.width)?;
        }
        // SAFETY: each plane buffer is exactly stride × plane height bytes as libjpeg-turbo
        // computes them for this (scaled) size and sampling; grayscale uses plane 0 only.
        let rc = unsafe {
            tj::tj3DecompressToYUVPlanes8(
                h.0,
                jpeg.as_ptr(),
                jpeg.len() as tj::size_t,
                planes.as_mut_ptr(),
                strides.as_mut_ptr(),
            )
        };
        if rc != 0 {
            h.decode_outcome()?;
        }
        Ok(Planes {
            width,
            height,
            y_stride: yw,
            y,
            chroma,
        })
    })
}

/// Decode to packed RGB at `1/denom` scale (1, 2, 4 or 8).
pub fn decode_rgb(jpeg: &[u8], denom: u32) -> Result<image::RgbImage, PrepError> {
    decoder(|h| {
        let header = &read_header_with(h, jpeg)?;
        if !header.rgb_decodable() {
            return Err("CMYK JPEGs are not supported".into());
        }
        let (width, height) = set_scale(h, header, denom)?;
        let mut rgb = vec![0u8; width as usize * height as usize * 3];
        // SAFETY: the buffer holds width × height RGB pixels with pitch width × 3.
        let rc = unsafe {
            tj::tj3Decompress8(
                h.0,
                jpeg.as_ptr(),
                jpeg.len() as tj::size_t,
                rgb.as_mut_ptr(),
                c_int(width * 3)?,
                tj::TJPF_TJPF_RGB,
            )
        };
        if rc != 0 {
            h.decode_outcome()?;
        }
        image::RgbImage::from_raw(width, height, rgb).ok_or_else(|| "RGB size mismatch".into())
    })
}

/// Run one compress call writing into a buffer of libjpeg-turbo's worst-case size.
fn compress(
    h: &Handle,
    width: u32,
    height: u32,
    subsamp: i32,
    quality: u8,
    call: impl FnOnce(*mut *mut u8, *mut tj::size_t) -> libc::c_int,
) -> Result<Vec<u8>, String> {
    h.set(
        tj::TJPARAM_TJPARAM_QUALITY,
        i32::from(quality.clamp(1, 100)),
    )?;
    h.set(tj::TJPARAM_TJPARAM_SUBSAMP, subsamp)?;
    h.set(tj::TJPARAM_TJPARAM_NOREALLOC, 1)?;
    // SAFETY: pure function of its arguments.
    let cap = unsafe { tj::tj3JPEGBufSize(c_int(width)?, c_int(height)?, subsamp) };
    let cap = usize::try_from(cap).map_err(|_| "image too large to encode".to_string())?;
    if cap == 0 {
        return Err(h.error_message());
    }
    JPEG_BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        // Kept between frames: zeroed only when it grows.
        if buf.len() < cap {
            buf.resize(cap, 0);
        }
        let mut ptr = buf.as_mut_ptr();
        let mut len = cap as tj::size_t;
        if call(&mut ptr, &mut len) != 0 {
            return Err(h.error_message());
        }
        // With NOREALLOC libjpeg-turbo writes into our buffer (sized for the worst case).
        if ptr != buf.as_mut_ptr() || len as usize > cap {
            return Err("libjpeg-turbo did not write into the given buffer".into());
        }
        Ok(buf[..len as usize].to_vec())
    })
}

/// Encode planes as a baseline JPEG at `quality` (1..=100). The planes must be laid out
/// for 4:2:0 (chroma `ceil(w/2) x ceil(h/2)`, luma padded to even sizes) or be grayscale;
/// `pixels::fit_420` makes them so.
pub fn encode_planes(planes: &Planes, quality: u8) -> Result<Vec<u8>, PrepError> {
    encoder(|h| {
        let subsamp = if planes.chroma.is_some() {
            tj::TJSAMP_TJSAMP_420
        } else {
            tj::TJSAMP_TJSAMP_GRAY
        };
        let (yw, yh) = plane_size(0, planes.width, planes.height, subsamp)?;
        if planes.y_stride < yw || planes.y.len() < planes.y_stride as usize * yh as usize {
            return Err("luma plane too small for its size".into());
        }
        let mut ptrs: [*const u8; 3] = [planes.y.as_ptr(), std::ptr::null(), std::ptr::null()];
        let mut strides: [libc::c_int; 3] = [c_int(planes.y_stride)?, 0, 0];
        if let Some(c) = &planes.chroma {
            let (cw, ch) = plane_size(1, planes.width, planes.height, subsamp)?;
            let len = c.width as usize * ch as usize;
            if c.width < cw || c.height < ch || c.cb.len() < len || c.cr.len() < len {
                return Err("chroma planes are not laid out for 4:2:0".into());
            }
            ptrs[1] = c.cb.as_ptr();
            ptrs[2] = c.cr.as_ptr();
            strides[1] = c_int(c.width)?;
            strides[2] = c_int(c.width)?;
        }
        let (w, ht) = (c_int(planes.width)?, c_int(planes.height)?);
        compress(
            h,
            planes.width,
            planes.height,
            subsamp,
            quality,
            |buf, len| {
                // SAFETY: the planes were checked above to cover the plane sizes libjpeg-turbo
                // reads for this size and sampling; `buf`/`len` describe a buffer of
                // tj3JPEGBufSize bytes and NOREALLOC is set.
                unsafe {
                    tj::tj3CompressFromYUVPlanes8(
                        h.0,
                        ptrs.as_ptr(),
                        w,
                        strides.as_ptr(),
                        ht,
                        buf,
                        len,
                    )
                }
            },
        )
    })
}

/// Encode packed RGB as a baseline 4:2:0 JPEG at `quality` (1..=100).
pub fn encode_rgb(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, PrepError> {
    encode_rgb_sampled(img, quality, tj::TJSAMP_TJSAMP_420)
}

/// A webcam's MJPEG layout (4:2:2), for tests of the decoding side.
#[cfg(test)]
pub(crate) fn encode_rgb_422(img: &image::RgbImage, quality: u8) -> Result<Vec<u8>, PrepError> {
    encode_rgb_sampled(img, quality, tj::TJSAMP_TJSAMP_422)
}

fn encode_rgb_sampled(
    img: &image::RgbImage,
    quality: u8,
    subsamp: i32,
) -> Result<Vec<u8>, PrepError> {
    encoder(|h| {
        let (w, ht) = (c_int(img.width())?, c_int(img.height())?);
        if w == 0 || ht == 0 {
            return Err("empty image".into());
        }
        let pitch = c_int(img.width() * 3)?;
        compress(
            h,
            img.width(),
            img.height(),
            subsamp,
            quality,
            |buf, len| {
                // SAFETY: `img` holds width × height RGB pixels with pitch width × 3; `buf`/`len`
                // describe a buffer of tj3JPEGBufSize bytes and NOREALLOC is set.
                unsafe {
                    tj::tj3Compress8(
                        h.0,
                        img.as_raw().as_ptr(),
                        w,
                        pitch,
                        ht,
                        tj::TJPF_TJPF_RGB,
                        buf,
                        len,
                    )
                }
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        })
    }

    #[test]
    fn scale_is_the_smallest_power_of_two_that_still_covers_the_target() {
        assert_eq!(scale_for(1280, 720, 768, 432), 1);
        assert_eq!(scale_for(1920, 1080, 768, 432), 2);
        assert_eq!(scale_for(3840, 2160, 768, 432), 4);
        assert_eq!(scale_for(8000, 4500, 768, 432), 8);
        assert_eq!(scale_for(640, 480, 640, 480), 1);
        assert_eq!(
            scale_for(1536, 864, 768, 432),
            2,
            "exactly half still covers"
        );
    }

    #[test]
    fn rgb_round_trip_keeps_size_and_colour() {
        let img = gradient(101, 37);
        let jpeg = encode_rgb(&img, 90).unwrap();
        let header = read_header(&jpeg).unwrap();
        assert_eq!((header.width, header.height), (101, 37));
        assert!(header.planar());
        let back = decode_rgb(&jpeg, 1).unwrap();
        assert_eq!(back.dimensions(), (101, 37));
        let d = back.get_pixel(90, 30).0[0].abs_diff(img.get_pixel(90, 30).0[0]);
        assert!(d < 8, "red channel off by {d}");
    }

    #[test]
    fn planes_decode_at_a_scale_and_encode_again() {
        let jpeg = encode_rgb(&gradient(640, 360), 90).unwrap();
        assert_eq!(read_header(&jpeg).unwrap().scaled(2), (320, 180));
        let planes = decode_planes(&jpeg, 2).unwrap();
        assert_eq!((planes.width, planes.height), (320, 180));
        let c = planes.chroma.as_ref().unwrap();
        assert_eq!((c.width, c.height), (160, 90), "4:2:0 chroma");
        let again = encode_planes(&planes, 80).unwrap();
        let back = decode_rgb(&again, 1).unwrap();
        assert_eq!(back.dimensions(), (320, 180));
        // Left edge dark red, right edge bright red: the picture survived both trips.
        assert!(back.get_pixel(2, 90).0[0] < 30 && back.get_pixel(317, 90).0[0] > 220);
    }

    #[test]
    fn garbage_and_truncated_frames_are_decode_errors() {
        assert!(matches!(read_header(b""), Err(PrepError::Decode(_))));
        assert!(matches!(
            read_header(b"not a jpeg"),
            Err(PrepError::Decode(_))
        ));
        let jpeg = encode_rgb(&gradient(320, 240), 90).unwrap();
        let cut = &jpeg[..jpeg.len() / 2];
        assert!(read_header(cut).is_ok(), "the header is intact");
        let err = decode_planes(cut, 1).unwrap_err();
        assert!(err.to_string().contains("Premature end"), "{err}");
        assert!(decode_rgb(cut, 1).is_err());
    }

    #[test]
    fn a_warning_the_image_survives_is_not_an_error() {
        // Junk between the entropy data and the EOI marker: libjpeg warns about
        // "extraneous bytes before marker 0xd9", as many webcams' MJPEG frames do.
        let mut jpeg = encode_rgb(&gradient(64, 48), 90).unwrap();
        let eoi = jpeg.split_off(jpeg.len() - 2);
        jpeg.extend_from_slice(&[0x12, 0x34, 0x56]);
        jpeg.extend_from_slice(&eoi);
        let img = decode_rgb(&jpeg, 1).unwrap();
        assert_eq!(img.dimensions(), (64, 48));
        assert!(img.get_pixel(60, 10).0[0] > 200);
    }
}
