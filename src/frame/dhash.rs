//! Perceptual difference hash (dHash): 64 bits from a 9×8 grayscale thumbnail, one bit
//! per horizontal neighbour comparison. Frames of the same scene hash alike, so a webcam
//! watching an empty room can skip the student for frames that have not changed.

use image::RgbImage;

/// The 64-bit dHash of an RGB image.
pub fn dhash(img: &RgbImage) -> u64 {
    let (w, h) = img.dimensions();
    hash_with(w, h, |x, y| {
        let [r, g, b] = img.get_pixel(x, y).0;
        299 * r as u64 + 587 * g as u64 + 114 * b as u64
    })
}

/// The 64-bit dHash of a luma plane (`stride` bytes per row, at least `height` rows).
/// JPEG luma is the same weighting of RGB as [`dhash`] uses, so both agree on a picture.
pub fn dhash_luma(y: &[u8], stride: u32, width: u32, height: u32) -> u64 {
    if (stride as usize) < width as usize || y.len() < stride as usize * height as usize {
        return 0;
    }
    hash_with(width, height, |x, row| {
        1000 * y[row as usize * stride as usize + x as usize] as u64
    })
}

/// dHash over `luma(x, y)` (any fixed scale) of a `w x h` picture.
fn hash_with(w: u32, h: u32, luma: impl Fn(u32, u32) -> u64) -> u64 {
    if w == 0 || h == 0 {
        return 0;
    }
    // Average luma into a 9×8 grid, sampling about 16k pixels whatever the frame size
    // (no resize, no allocation).
    let step = (((w as u64 * h as u64) / 16_384) as f64).sqrt().max(1.0) as usize;
    let mut sum = [[0u64; 9]; 8];
    let mut count = [[0u64; 9]; 8];
    for y in (0..h).step_by(step) {
        let cy = (y as u64 * 8 / h as u64) as usize;
        for x in (0..w).step_by(step) {
            let cx = (x as u64 * 9 / w as u64) as usize;
            sum[cy][cx] += luma(x, y);
            count[cy][cx] += 1;
        }
    }
    let mut bits = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            let a = sum[y][x] / count[y][x].max(1);
            let b = sum[y][x + 1] / count[y][x + 1].max(1);
            bits = (bits << 1) | u64::from(a > b);
        }
    }
    bits
}

/// Share of differing bits, 0..1.
pub fn difference(a: u64, b: u64) -> f64 {
    (a ^ b).count_ones() as f64 / 64.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32, flip: bool) -> RgbImage {
        RgbImage::from_fn(w, h, |x, _| {
            let v = (x * 255 / w.max(1)) as u8;
            let v = if flip { 255 - v } else { v };
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn same_scene_same_hash_across_sizes() {
        let a = dhash(&gradient(640, 480, false));
        let b = dhash(&gradient(320, 240, false));
        assert!(difference(a, b) < 0.05);
    }

    #[test]
    fn different_scene_differs() {
        let a = dhash(&gradient(64, 48, false));
        let b = dhash(&gradient(64, 48, true));
        assert!(difference(a, b) > 0.5, "{}", difference(a, b));
    }

    #[test]
    fn real_photos_differ_and_noise_does_not() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/images");
        let cat = image::open(dir.join("chelsea.png")).unwrap().to_rgb8();
        let cup = image::open(dir.join("coffee.png")).unwrap().to_rgb8();
        assert!(difference(dhash(&cat), dhash(&cup)) > 0.2);
        // Sensor noise: ±2 on every channel.
        let mut noisy = cat.clone();
        for (i, p) in noisy.pixels_mut().enumerate() {
            let d: i16 = if i % 2 == 0 { 2 } else { -2 };
            for c in p.0.iter_mut() {
                *c = (*c as i16 + d).clamp(0, 255) as u8;
            }
        }
        assert!(difference(dhash(&cat), dhash(&noisy)) < 0.05);
    }
}
