//! Preparing a frame for a model: decode, downscale to `max_side` keeping aspect ratio,
//! JPEG at `jpeg_quality`, base64.
//! PLACEHOLDER body: replaced by the full implementation.

use super::{PreparedFrame, RawImage};
use crate::config::FrameConfig;

#[derive(Debug, thiserror::Error)]
pub enum PrepError {
    #[error("cannot decode image: {0}")]
    Decode(String),
    #[error("cannot encode JPEG: {0}")]
    Encode(String),
}

/// Decode a raw frame to RGB.
pub fn decode(raw: &RawImage) -> Result<image::RgbImage, PrepError> {
    match raw {
        RawImage::Encoded(b) => image::load_from_memory(b)
            .map(|i| i.to_rgb8())
            .map_err(|e| PrepError::Decode(e.to_string())),
        RawImage::Rgb { width, height, data } => {
            image::RgbImage::from_raw(*width, *height, data.to_vec())
                .ok_or_else(|| PrepError::Decode("RGB buffer size does not match".into()))
        }
    }
}

pub fn prepare(raw: &RawImage, cfg: &FrameConfig) -> Result<PreparedFrame, PrepError> {
    use base64::Engine;
    let img = decode(raw)?;
    let img = image::DynamicImage::ImageRgb8(img).resize(
        cfg.max_side,
        cfg.max_side,
        image::imageops::FilterType::Triangle,
    );
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, cfg.jpeg_quality)
        .encode_image(&img.to_rgb8())
        .map_err(|e| PrepError::Encode(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
    Ok(PreparedFrame {
        width: img.width(),
        height: img.height(),
        jpeg: jpeg.into(),
        base64: b64.into(),
    })
}
