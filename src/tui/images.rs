//! The frame thumbnail: JPEG decode, resize and terminal encoding (sixel / kitty / iTerm2 /
//! halfblocks) happen on a worker thread, so a slow Pi never stalls keys or redraws. Work is
//! only redone when the shown frame or the pane size changes.

use crate::frame::PreparedFrame;
use image::DynamicImage;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::protocol::StatefulProtocol;
use ratatui_image::{Resize, ResizeEncodeRender};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Pick the terminal's image protocol. Call after entering the alternate screen and before
/// reading terminal events. Inside tmux, or when the query fails, use halfblocks.
pub fn pick() -> Picker {
    let in_tmux = std::env::var_os("TMUX").is_some_and(|v| !v.is_empty())
        || std::env::var("TERM").is_ok_and(|t| t.starts_with("tmux") || t.starts_with("screen"));
    if in_tmux || std::env::var_os("GEMMAEDGE_HALFBLOCKS").is_some() {
        return Picker::halfblocks();
    }
    Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks())
}

/// What is on screen, encoded for one pane size.
struct Shown {
    frame: Arc<PreparedFrame>,
    /// The pane area it was encoded for.
    area: Rect,
    /// The cells the encoded image covers.
    rect: Rect,
    proto: StatefulProtocol,
}

struct Job {
    gen: u64,
    frame: Arc<PreparedFrame>,
    area: Rect,
}

struct Done {
    gen: u64,
    frame: Arc<PreparedFrame>,
    area: Rect,
    result: Result<(Rect, StatefulProtocol), String>,
}

enum Mode {
    /// A worker thread does the work; results come back on `rx`.
    Worker {
        tx: std_mpsc::Sender<Job>,
        rx: mpsc::UnboundedReceiver<Done>,
    },
    /// The work is done inside `render` (tests).
    Inline,
}

/// The thumbnail's state across redraws.
pub struct ImageState {
    picker: Picker,
    mode: Mode,
    shown: Option<Shown>,
    /// The last (frame, area) asked of the worker, and its generation.
    requested: Option<(Arc<PreparedFrame>, Rect)>,
    gen: u64,
    error: Option<String>,
}

fn same(a: &Arc<PreparedFrame>, b: &Arc<PreparedFrame>) -> bool {
    Arc::ptr_eq(a, b)
}

fn decode(frame: &PreparedFrame) -> Result<DynamicImage, String> {
    crate::frame::prep::decode_rgb(&frame.jpeg)
        .map(DynamicImage::ImageRgb8)
        .map_err(|e| format!("cannot decode frame: {e}"))
}

/// Decode (or reuse) and encode the image for `area`.
fn encode(
    picker: &Picker,
    frame: &PreparedFrame,
    decoded: Option<DynamicImage>,
    area: Rect,
) -> Result<(Rect, StatefulProtocol), String> {
    let img = match decoded {
        Some(i) => i,
        None => decode(frame)?,
    };
    let mut proto = picker.new_resize_protocol(img);
    let resize = Resize::Fit(None);
    let rect = proto.needs_resize(&resize, area).unwrap_or(area);
    proto.resize_encode(&resize, rect);
    match proto.last_encoding_result() {
        Some(Err(e)) => Err(format!("cannot show frame: {e}")),
        _ => Ok((rect, proto)),
    }
}

fn worker(picker: Picker, jobs: std_mpsc::Receiver<Job>, done: mpsc::UnboundedSender<Done>) {
    let mut cache: Option<(Arc<PreparedFrame>, DynamicImage)> = None;
    while let Ok(mut job) = jobs.recv() {
        // Only the newest request matters.
        while let Ok(newer) = jobs.try_recv() {
            job = newer;
        }
        let decoded = match &cache {
            Some((f, img)) if same(f, &job.frame) => Ok(img.clone()),
            _ => decode(&job.frame),
        };
        let result = decoded.and_then(|img| {
            cache = Some((job.frame.clone(), img.clone()));
            encode(&picker, &job.frame, Some(img), job.area)
        });
        let reply = Done {
            gen: job.gen,
            frame: job.frame,
            area: job.area,
            result,
        };
        if done.send(reply).is_err() {
            break;
        }
    }
}

impl ImageState {
    /// With a worker thread (the console).
    pub fn new(picker: Picker) -> Self {
        let (tx, jobs) = std_mpsc::channel();
        let (done_tx, rx) = mpsc::unbounded_channel();
        let p = picker.clone();
        let spawned = std::thread::Builder::new()
            .name("frame-encode".into())
            .spawn(move || worker(p, jobs, done_tx));
        let mode = match spawned {
            Ok(_) => Mode::Worker { tx, rx },
            Err(_) => Mode::Inline,
        };
        Self::with_mode(picker, mode)
    }

    /// Doing the work inside `render` (tests, and the fallback when no thread starts).
    pub fn inline(picker: Picker) -> Self {
        Self::with_mode(picker, Mode::Inline)
    }

    fn with_mode(picker: Picker, mode: Mode) -> Self {
        ImageState {
            picker,
            mode,
            shown: None,
            requested: None,
            gen: 0,
            error: None,
        }
    }

    pub fn protocol(&self) -> ProtocolType {
        self.picker.protocol_type()
    }

    /// The last decode/encode error, if the shown frame could not be drawn.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Wait for the worker to finish an image; true when the screen should be redrawn.
    /// Never returns in inline mode (use it as one arm of a `select!`).
    pub async fn ready(&mut self) -> bool {
        let done = match &mut self.mode {
            Mode::Worker { rx, .. } => rx.recv().await,
            Mode::Inline => None,
        };
        match done {
            Some(d) => self.install(d),
            None => std::future::pending().await,
        }
    }

    fn install(&mut self, d: Done) -> bool {
        if d.gen != self.gen {
            return false;
        }
        match d.result {
            Ok((rect, proto)) => {
                self.error = None;
                self.shown = Some(Shown {
                    frame: d.frame,
                    area: d.area,
                    rect,
                    proto,
                });
            }
            Err(e) => {
                self.error = Some(e);
                self.shown = None;
            }
        }
        true
    }

    /// Draw `frame` into `area`. Returns false when nothing could be drawn yet (the
    /// caller shows a placeholder). Asks the worker for a new encoding when the frame or
    /// the area changed.
    pub fn render(
        &mut self,
        frame: Option<&Arc<PreparedFrame>>,
        area: Rect,
        buf: &mut Buffer,
    ) -> bool {
        let Some(frame) = frame else {
            self.shown = None;
            self.requested = None;
            self.error = None;
            return false;
        };
        if area.width == 0 || area.height == 0 {
            return false;
        }
        let current = self
            .shown
            .as_ref()
            .is_some_and(|s| same(&s.frame, frame) && s.area == area);
        if !current {
            let already = self
                .requested
                .as_ref()
                .is_some_and(|(f, a)| same(f, frame) && *a == area);
            if !already {
                self.gen = self.gen.wrapping_add(1);
                self.requested = Some((frame.clone(), area));
                match &self.mode {
                    Mode::Worker { tx, .. } => {
                        let job = Job {
                            gen: self.gen,
                            frame: frame.clone(),
                            area,
                        };
                        if tx.send(job).is_err() {
                            self.mode = Mode::Inline;
                        }
                    }
                    Mode::Inline => {}
                }
                if matches!(self.mode, Mode::Inline) {
                    let result = encode(&self.picker, frame, None, area);
                    self.install(Done {
                        gen: self.gen,
                        frame: frame.clone(),
                        area,
                        result,
                    });
                }
            }
        }
        // Draw what we have if it fits: the current frame, or the previous one until the
        // new one is ready (no blinking placeholder on every new frame).
        match &mut self.shown {
            Some(s) if s.rect.width <= area.width && s.rect.height <= area.height => {
                let x = area.x + (area.width - s.rect.width) / 2;
                let target = Rect::new(x, area.y, s.rect.width, s.rect.height);
                s.proto.render(target, buf);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use base64::Engine as _;
    use std::time::Duration;

    pub fn test_frame(w: u32, h: u32) -> Arc<PreparedFrame> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128])
        });
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img)
            .write_to(
                &mut std::io::Cursor::new(&mut jpeg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&jpeg);
        Arc::new(PreparedFrame {
            width: w,
            height: h,
            jpeg: jpeg.into(),
            base64: b64.into(),
        })
    }

    fn painted(buf: &Buffer, area: Rect) -> usize {
        let mut n = 0;
        for y in area.top()..area.bottom() {
            for x in area.left()..area.right() {
                if buf[(x, y)].symbol() != " " {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn inline_renders_halfblocks_within_area() {
        let mut st = ImageState::inline(Picker::halfblocks());
        let f = test_frame(160, 90);
        let full = Rect::new(0, 0, 40, 20);
        let area = Rect::new(2, 2, 20, 6);
        let mut buf = Buffer::empty(full);
        assert!(st.render(Some(&f), area, &mut buf));
        assert!(painted(&buf, area) > 20);
        assert_eq!(
            painted(&buf, full),
            painted(&buf, area),
            "nothing outside the pane"
        );
    }

    #[test]
    fn bad_jpeg_reports_error() {
        let mut st = ImageState::inline(Picker::halfblocks());
        let f = Arc::new(PreparedFrame {
            width: 1,
            height: 1,
            jpeg: vec![1u8, 2, 3].into(),
            base64: "".into(),
        });
        let mut buf = Buffer::empty(Rect::new(0, 0, 10, 10));
        assert!(!st.render(Some(&f), Rect::new(0, 0, 10, 10), &mut buf));
        assert!(st.error().unwrap().contains("decode"));
    }

    #[tokio::test]
    async fn worker_encodes_off_thread_and_only_once_per_frame_and_size() {
        let mut st = ImageState::new(Picker::halfblocks());
        let f = test_frame(160, 90);
        let area = Rect::new(0, 0, 20, 6);
        let mut buf = Buffer::empty(area);
        assert!(
            !st.render(Some(&f), area, &mut buf),
            "not ready on first draw"
        );
        let gen = st.gen;
        assert!(!st.render(Some(&f), area, &mut buf));
        assert_eq!(st.gen, gen, "no second request for the same frame and size");
        let ok = tokio::time::timeout(Duration::from_secs(10), st.ready())
            .await
            .unwrap();
        assert!(ok);
        assert!(st.render(Some(&f), area, &mut buf));
        assert_eq!(st.gen, gen);
        // A new frame keeps showing the old one until the new one is ready.
        let g = test_frame(90, 160);
        assert!(st.render(Some(&g), area, &mut buf));
        assert_eq!(st.gen, gen + 1);
    }
}
