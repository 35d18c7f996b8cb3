//! Test helpers shared by the source tests: tiny PNGs, a folder of files, labels taken.

use super::contract::FrameSource;

/// A tiny valid PNG of the given size.
pub(super) fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 200, 30]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub(super) fn folder_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

pub(super) fn labels(src: &mut dyn FrameSource, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| match src.next() {
            Ok(c) => c.label,
            Err(e) => format!("ERR {e}"),
        })
        .collect()
}
