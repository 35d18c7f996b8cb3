//! Eval-case images: a path resolved against the eval dir, kept inside it, and checked
//! from its header (a size we agree to decode) before anything is decoded.

use std::path::{Path, PathBuf};

/// Resolves an image path against the eval dir (`real_dir`: the same, symlinks followed)
/// and checks its header decodes to a size we agree to decode. The path must stay inside
/// the eval dir: no `..`, and no symlink leading out. Only a regular file is opened, without
/// blocking. Returns the reason (completing "image <rel> ...") on failure.
pub(super) fn check_image(dir: &Path, real_dir: &Path, rel: &str) -> Result<PathBuf, String> {
    use std::path::Component;
    if rel.trim().is_empty() {
        return Err("is an empty path".into());
    }
    let relp = Path::new(rel);
    if relp.is_absolute() {
        return Err("must be relative to the eval dir".into());
    }
    if relp.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("must not contain `..`: images live under the eval dir".into());
    }
    let path = dir.join(relp);
    let real = match path.canonicalize() {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("not found".into()),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    if !real.starts_with(real_dir) {
        return Err(format!(
            "leads outside the eval dir (a symlink to {}): copy the image into the eval dir",
            real.display()
        ));
    }
    let file = crate::files::bounded_read::open_regular(&path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let (w, h) = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|e| format!("cannot be read: {e}"))?
        .into_dimensions()
        .map_err(|e| format!("is not a readable image: {e}"))?;
    crate::frame::prep::check_dimensions(w, h).map_err(|why| format!("is {why}"))?;
    Ok(path)
}
