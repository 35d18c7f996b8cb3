//! The error of frame prep and the decode limits every decoder checks (`prep`, `pixels`,
//! `turbo`): its own file so the decoders and prep all depend on it, not on each other.

#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
}

/// Largest width or height we agree to decode (a 16k photo is already absurd for this).
pub(crate) const MAX_DECODE_SIDE: u32 = 16_384;
/// Most pixels we agree to decode: about twice the largest camera frame we expect (the Pi
/// HQ camera's 12.3 MP, a phone's 12 MP photo; a 4K webcam is 8.3 MP), 75 MB as RGB.
/// Checked from the header, before anything is allocated: a decompression bomb (a
/// 13000x13000 PNG of a few hundred KB) is refused with its size, not decoded.
pub const MAX_DECODE_PIXELS: u64 = 25_000_000;

/// Whether we agree to decode a `width x height` image; the reason completes "image …"
/// ("empty (0x5)", "too large: 13000x13000 is 169.0 MP, the limit is 25 MP …").
pub fn check_dimensions(width: u32, height: u32) -> Result<(), String> {
    if width == 0 || height == 0 {
        return Err(format!("empty ({width}x{height})"));
    }
    let pixels = u64::from(width) * u64::from(height);
    if width > MAX_DECODE_SIDE || height > MAX_DECODE_SIDE || pixels > MAX_DECODE_PIXELS {
        return Err(format!(
            "too large: {width}x{height} is {:.1} MP, the limit is {} MP and {MAX_DECODE_SIDE} px a side \
             (scale it down first)",
            pixels as f64 / 1e6,
            MAX_DECODE_PIXELS / 1_000_000
        ));
    }
    Ok(())
}

/// Bytes needed for `width x height` pixels of `bpp` bytes, refusing empty or absurd sizes.
pub(crate) fn checked_len(width: u32, height: u32, bpp: u64) -> Result<usize, PrepError> {
    check_dimensions(width, height).map_err(|why| PrepError::Decode(format!("image {why}")))?;
    usize::try_from(u64::from(width) * u64::from(height) * bpp)
        .map_err(|_| PrepError::Decode("image too large for this platform".into()))
}
