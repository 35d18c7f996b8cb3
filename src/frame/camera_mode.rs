//! Which capture mode to ask a camera for (pure): the smallest one that still gives the
//! model its `frame.max_side`, so no frame is decoded at a size only to be thrown away.
//!
//! The rule, in order:
//! 1. `[source] camera_mode = "WxH"` forces that size (an error naming what the camera
//!    offers when it has no such mode);
//! 2. otherwise the modes whose longer side is at least `max_side`, smallest first (longer
//!    side, then area); when none is that large, the largest there is (the nearest to
//!    `max_side`);
//! 3. among modes of that size, MJPEG before YUYV before the raw formats;
//! 4. then the frame rate nearest the configured `fps` (a mode whose rate the driver does
//!    not list, like libcamera's V4L2 compat layer, after those that list one).
//!
//! Size goes before format: a small YUYV mode costs one cheap conversion, a large MJPEG
//! one a full JPEG decode of pixels the model never sees (BENCHMARKS.md, "Camera modes").

use std::fmt;

/// A pixel format a camera may deliver, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pixels {
    Mjpeg,
    Yuyv,
    Nv12,
    Rgb,
    Bgr,
    Gray,
}

impl fmt::Display for Pixels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pixels::Mjpeg => "MJPEG",
            Pixels::Yuyv => "YUYV",
            Pixels::Nv12 => "NV12",
            Pixels::Rgb => "RGB",
            Pixels::Bgr => "BGR",
            Pixels::Gray => "GRAY",
        })
    }
}

/// One mode a camera offers. `fps` 0: the driver does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mode {
    pub pixels: Pixels,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Mode {
    pub fn new(pixels: Pixels, width: u32, height: u32, fps: u32) -> Mode {
        Mode {
            pixels,
            width,
            height,
            fps,
        }
    }

    fn longer(&self) -> u32 {
        self.width.max(self.height)
    }

    fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}x{}", self.pixels, self.width, self.height)?;
        if self.fps > 0 {
            write!(f, " @{}fps", self.fps)?;
        }
        Ok(())
    }
}

/// What the config asks of the camera.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeRequest {
    /// `frame.max_side`: the longest side the model gets.
    pub max_side: u32,
    /// `source.fps`: frames offered per second.
    pub fps: f64,
    /// `source.camera_mode`, parsed.
    pub forced: Option<(u32, u32)>,
}

/// The chosen mode and why, for `check` and the frame pane.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub mode: Mode,
    pub why: String,
}

/// `"1280x720"` → `Some((1280, 720))`; `""` → `None` (choose by `max_side`).
pub fn parse_camera_mode(text: &str) -> Result<Option<(u32, u32)>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || {
        format!(
            "source.camera_mode must be WIDTHxHEIGHT like \"1280x720\" (or \"\" to choose by frame.max_side), got {t:?}"
        )
    };
    let (w, h) = t.split_once(['x', 'X']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if !(16..=16384).contains(&w) || !(16..=16384).contains(&h) {
        return Err(bad());
    }
    Ok(Some((w, h)))
}

/// Pick the mode (see the module docs). Errors: no usable mode, or a forced size the
/// camera does not offer (the message lists the sizes it does).
pub fn choose_mode(modes: &[Mode], req: &ModeRequest) -> Result<Choice, String> {
    let usable: Vec<Mode> = modes
        .iter()
        .copied()
        .filter(|m| m.width > 0 && m.height > 0)
        .collect();
    if usable.is_empty() {
        return Err("the camera lists no mode this program can read".into());
    }
    // Ties at one size: format, then the rate nearest the configured one.
    let fps_key = |m: &Mode| {
        if m.fps == 0 {
            (true, u64::MAX)
        } else {
            (false, ((f64::from(m.fps) - req.fps).abs() * 1000.0) as u64)
        }
    };
    let best_of = |same_size: Vec<Mode>| {
        same_size
            .into_iter()
            .min_by_key(|m| (m.pixels, fps_key(m)))
            .expect("not empty")
    };
    if let Some((w, h)) = req.forced {
        let exact: Vec<Mode> = usable
            .iter()
            .copied()
            .filter(|m| m.width == w && m.height == h)
            .collect();
        if exact.is_empty() {
            return Err(format!(
                "the camera has no {w}x{h} mode (source.camera_mode); it offers {}: set one of them, or camera_mode = \"\" to choose by frame.max_side",
                offered_sizes(&usable)
            ));
        }
        return Ok(Choice {
            mode: best_of(exact),
            why: format!("camera_mode = \"{w}x{h}\""),
        });
    }
    let fits: Vec<Mode> = usable
        .iter()
        .copied()
        .filter(|m| m.longer() >= req.max_side)
        .collect();
    let (size, why) = match fits.iter().min_by_key(|m| (m.longer(), m.area())) {
        Some(m) => (
            (m.width, m.height),
            format!("the smallest mode ≥ frame.max_side {}", req.max_side),
        ),
        None => {
            let m = usable
                .iter()
                .max_by_key(|m| (m.longer(), m.area()))
                .expect("not empty");
            (
                (m.width, m.height),
                format!(
                    "the largest mode; none reaches frame.max_side {}",
                    req.max_side
                ),
            )
        }
    };
    let same: Vec<Mode> = usable
        .into_iter()
        .filter(|m| (m.width, m.height) == size)
        .collect();
    Ok(Choice {
        mode: best_of(same),
        why,
    })
}

/// `640x480, 800x600, …` (distinct sizes, small to large).
pub fn offered_sizes(modes: &[Mode]) -> String {
    let mut sizes: Vec<(u32, u32)> = modes.iter().map(|m| (m.width, m.height)).collect();
    sizes.sort_by_key(|&(w, h)| (w.max(h), u64::from(w) * u64::from(h)));
    sizes.dedup();
    sizes
        .iter()
        .map(|(w, h)| format!("{w}x{h}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[path = "camera_mode_tests.rs"]
mod tests;
