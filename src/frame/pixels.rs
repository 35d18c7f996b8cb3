//! A decoded frame, in whichever layout was cheapest to get: the JPEG's own planar YCbCr
//! (camera MJPEG, JPEG files, YUYV camera frames) or packed RGB (PNG files, RGB buffers).

use super::dhash;
use super::prep_error::PrepError;

/// Planar 8-bit YCbCr, full range as in JPEG/JFIF. Rows are `y_stride` bytes (at least
/// `width`; libjpeg-turbo pads luma to whole chroma samples); chroma planes are tight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planes {
    pub width: u32,
    pub height: u32,
    pub y_stride: u32,
    /// Luma, `y_stride` bytes per row, at least `height` rows.
    pub y: Vec<u8>,
    /// Cb and Cr; `None` for a grayscale image.
    pub chroma: Option<Chroma>,
}

/// The two chroma planes, each `width x height` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chroma {
    pub width: u32,
    pub height: u32,
    pub cb: Vec<u8>,
    pub cr: Vec<u8>,
}

impl Planes {
    /// Rows of the luma plane (at least `height`).
    pub fn y_rows(&self) -> u32 {
        (self.y.len() / self.y_stride.max(1) as usize) as u32
    }

    /// Packed YUYV 4:2:2 (`Y0 U Y1 V`, BT.601 limited range, as UVC webcams send it) to
    /// full-range planes with 4:2:2 chroma (`width/2 x height`). The width must be even and
    /// `data` exactly `width * height * 2` bytes. No RGB on the way: the JPEG encoder takes
    /// the planes as they are.
    pub fn from_yuyv(width: u32, height: u32, data: &[u8]) -> Result<Planes, PrepError> {
        let expected = super::prep_error::checked_len(width, height, 2)?;
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
        let luma = range_table(16, 219);
        let chroma = range_table(16, 224);
        let n = expected / 2;
        let mut y = Vec::with_capacity(n);
        let mut cb = Vec::with_capacity(n / 2);
        let mut cr = Vec::with_capacity(n / 2);
        for px in data.chunks_exact(4) {
            y.push(luma[px[0] as usize]);
            cb.push(chroma[px[1] as usize]);
            y.push(luma[px[2] as usize]);
            cr.push(chroma[px[3] as usize]);
        }
        Ok(Planes {
            width,
            height,
            y_stride: width,
            y,
            chroma: Some(Chroma {
                width: width / 2,
                height,
                cb,
                cr,
            }),
        })
    }
}

/// Limited ("studio") range `low ..= low + span` stretched to 0..=255. Chroma (`span` 224
/// around 128) maps 128 to 128, luma (`span` 219 from 16) maps 16 to 0 and 235 to 255.
fn range_table(low: i32, span: i32) -> [u8; 256] {
    let mut t = [0u8; 256];
    for (v, out) in t.iter_mut().enumerate() {
        let v = v as i32 - low;
        *out = ((v * 255 + span / 2).div_euclid(span)).clamp(0, 255) as u8;
    }
    t
}

/// A decoded frame.
#[derive(Debug, Clone)]
pub enum Pixels {
    Planar(Planes),
    Rgb(image::RgbImage),
}

impl Pixels {
    pub fn dimensions(&self) -> (u32, u32) {
        match self {
            Pixels::Planar(p) => (p.width, p.height),
            Pixels::Rgb(img) => img.dimensions(),
        }
    }

    /// The change gate's perceptual hash, from luma.
    pub fn dhash(&self) -> u64 {
        match self {
            Pixels::Planar(p) => dhash::dhash_luma(&p.y, p.y_stride, p.width, p.height),
            Pixels::Rgb(img) => dhash::dhash(img),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuyv_becomes_full_range_planes() {
        // Black, white, and the chroma extremes of limited range.
        let p = Planes::from_yuyv(4, 1, &[16, 16, 235, 240, 128, 128, 128, 128]).unwrap();
        // Limited-range mid grey 128 is full-range 130 ((128 - 16) * 255 / 219).
        assert_eq!(p.y, vec![0, 255, 130, 130]);
        let c = p.chroma.unwrap();
        assert_eq!((c.width, c.height), (2, 1));
        assert_eq!(c.cb, vec![0, 128]);
        assert_eq!(c.cr, vec![255, 128]);
    }

    #[test]
    fn bad_yuyv_buffers_are_errors_not_panics() {
        assert!(Planes::from_yuyv(2, 1, &[1, 2, 3]).is_err());
        assert!(Planes::from_yuyv(3, 1, &[0; 6]).is_err());
        assert!(Planes::from_yuyv(0, 1, &[]).is_err());
    }

    #[test]
    fn luma_hash_matches_the_rgb_hash_of_the_same_grey_picture() {
        let (w, h) = (64u32, 48u32);
        let grey = |x: u32, y: u32| ((x * 4) ^ (y * 3)) as u8;
        let rgb = image::RgbImage::from_fn(w, h, |x, y| {
            let v = grey(x, y);
            image::Rgb([v, v, v])
        });
        let luma: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| grey(x, y)))
            .collect();
        let planes = Pixels::Planar(Planes {
            width: w,
            height: h,
            y_stride: w,
            y: luma,
            chroma: None,
        });
        assert_eq!(planes.dhash(), Pixels::Rgb(rgb).dhash());
    }
}
