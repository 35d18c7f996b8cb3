//! USB webcams through nokhwa (V4L2 on Linux): opened once and streamed.
//!
//! How it works:
//! - nokhwa's `Camera` is not `Send` (its backend is a `Box<dyn CaptureBackendTrait>`
//!   without a `Send` bound), so it lives its whole life on one worker thread: created,
//!   streamed and dropped there. [`CameraSource`] only holds the shared state to talk to
//!   that thread, so it is `Send` without any `unsafe`.
//! - The worker dequeues every frame the driver delivers, keeping V4L2's buffer queue
//!   drained, but copies a frame out only when [`CameraSource::next`] asked for one. Pulling
//!   one buffer per second from an idle queue instead would hand out frames several seconds
//!   old (the driver fills the free buffers right after each dequeue, then stalls).
//! - Format: the camera's own list is searched for MJPEG near 1280x720 (kept as JPEG bytes,
//!   `RawImage::Encoded`, no decode per frame), else YUYV (kept raw, `RawImage::Yuyv`,
//!   converted in `prep`), else anything nokhwa can turn into RGB.
//! - The worker also fences off panics in the driver stack (v4l's stream `Drop` panics on
//!   unexpected ioctl errors): a panic becomes an "unavailable" error, never a crash.
//!
//! Honest status: the machine this was written on has no camera. Opening a missing
//! device (`/dev/videoN` absent) is tested and gives a clean error; the streaming path
//! compiles against nokhwa 0.10 / nokhwa-bindings-linux 0.1 but has not met real hardware.

use super::camera_mode::{choose_mode, Mode, ModeRequest, Pixels};
use super::source::contract::{stop_requested, Capture, FrameSource, SourceError};
use super::RawImage;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
use nokhwa::{Camera, FormatDecoder};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Formats we can use, best first.
const USABLE_FORMATS: [FrameFormat; 6] = [
    FrameFormat::MJPEG,
    FrameFormat::YUYV,
    FrameFormat::NV12,
    FrameFormat::RAWRGB,
    FrameFormat::RAWBGR,
    FrameFormat::GRAY,
];
/// Longest wait for the device to open and start streaming.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// No frame for this long while streaming: the camera counts as lost.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// Granularity of waits (stop is noticed within this).
const TICK: Duration = Duration::from_millis(50);

/// Lower is better; `None` for formats we cannot use.
fn format_rank(f: FrameFormat) -> Option<u8> {
    USABLE_FORMATS.iter().position(|&u| u == f).map(|p| p as u8)
}

/// nokhwa's format as a [`Pixels`] (None: one we cannot read).
fn pixels_of(f: FrameFormat) -> Option<Pixels> {
    Some(match f {
        FrameFormat::MJPEG => Pixels::Mjpeg,
        FrameFormat::YUYV => Pixels::Yuyv,
        FrameFormat::NV12 => Pixels::Nv12,
        FrameFormat::RAWRGB => Pixels::Rgb,
        FrameFormat::RAWBGR => Pixels::Bgr,
        FrameFormat::GRAY => Pixels::Gray,
    })
    .filter(|_| format_rank(f).is_some())
}

fn mode_of(f: &CameraFormat) -> Option<Mode> {
    pixels_of(f.format()).map(|p| Mode::new(p, f.width(), f.height(), f.frame_rate()))
}

/// Pick the capture format from the camera's list by [`choose_mode`]: the smallest mode
/// that covers `frame.max_side` (or the forced `camera_mode`), MJPEG first, the rate
/// nearest `fps`. Returns nokhwa's format and why it was chosen.
pub fn choose_format(
    formats: &[CameraFormat],
    req: &ModeRequest,
) -> Result<(CameraFormat, String), String> {
    let modes: Vec<Mode> = formats.iter().filter_map(mode_of).collect();
    let choice = choose_mode(&modes, req)?;
    let fmt = formats
        .iter()
        .copied()
        .find(|f| mode_of(f) == Some(choice.mode))
        .expect("the choice is one of the formats");
    Ok((fmt, choice.why))
}

/// Turn one driver buffer into a frame: MJPEG stays encoded, YUYV stays raw, anything
/// else becomes RGB. The error is a reason to skip this frame.
pub fn frame_to_raw(fmt: CameraFormat, data: &[u8]) -> Result<RawImage, String> {
    let (w, h) = (fmt.width(), fmt.height());
    let pixels = u64::from(w) * u64::from(h);
    match fmt.format() {
        FrameFormat::MJPEG => {
            if data.len() < 4 || data[0] != 0xFF || data[1] != 0xD8 {
                return Err(format!(
                    "camera sent a broken MJPEG frame ({} bytes)",
                    data.len()
                ));
            }
            Ok(RawImage::Encoded(Arc::from(data)))
        }
        FrameFormat::YUYV => {
            let need = usize::try_from(pixels * 2).map_err(|e| e.to_string())?;
            if data.len() < need || w % 2 != 0 {
                return Err(format!(
                    "camera sent a short YUYV frame ({} of {need} bytes for {w}x{h})",
                    data.len()
                ));
            }
            Ok(RawImage::Yuyv {
                width: w,
                height: h,
                data: Arc::from(&data[..need]),
            })
        }
        other => {
            let rgb = RgbFormat::write_output(other, fmt.resolution(), data)
                .map_err(|e| format!("cannot convert {other} frame: {e}"))?;
            if rgb.len() as u64 != pixels * 3 {
                return Err(format!(
                    "{other} frame converted to {} bytes, expected {} for {w}x{h}",
                    rgb.len(),
                    pixels * 3
                ));
            }
            Ok(RawImage::Rgb {
                width: w,
                height: h,
                data: rgb.into(),
            })
        }
    }
}

/// 1, 10, 100, …
fn is_power_of_ten(mut n: u64) -> bool {
    while n >= 10 && n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

/// `MJPEG 800x448 @5fps` (the mode as `check` and the frame pane show it).
fn describe_format(f: &CameraFormat) -> String {
    match mode_of(f) {
        Some(m) => m.to_string(),
        None => format!(
            "{} {}x{} @{}fps",
            f.format(),
            f.width(),
            f.height(),
            f.frame_rate()
        ),
    }
}

enum Phase {
    Opening,
    /// The format streaming, and why it was chosen.
    Streaming(CameraFormat, String),
    Failed(String),
}

struct State {
    phase: Phase,
    /// `next` is waiting: copy out the next frame the driver delivers.
    want: bool,
    delivered: Option<Result<RawImage, String>>,
}

struct Shared {
    state: Mutex<State>,
    cv: Condvar,
    /// Tells the worker to stop streaming and drop the camera.
    shutdown: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running worker thread and its shared state.
struct Worker {
    shared: Arc<Shared>,
    handle: JoinHandle<()>,
}

impl Worker {
    fn spawn(index: u32, req: ModeRequest) -> Result<Worker, String> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                phase: Phase::Opening,
                want: false,
                delivered: None,
            }),
            cv: Condvar::new(),
            shutdown: AtomicBool::new(false),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name(format!("camera {index}"))
            .spawn(move || worker_main(index, req, s))
            .map_err(|e| format!("camera {index}: cannot start its thread: {e}"))?;
        Ok(Worker { shared, handle })
    }

    fn signal_shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.cv.notify_all();
    }
}

fn worker_main(index: u32, req: ModeRequest, shared: Arc<Shared>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stream_frames(index, &req, &shared)
    }));
    let reason = match outcome {
        Ok(Ok(())) => return, // asked to shut down
        Ok(Err(e)) => e,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            format!("camera {index}: camera driver failed ({what})")
        }
    };
    shared.lock().phase = Phase::Failed(reason);
    shared.cv.notify_all();
}

/// Open the device in the mode [`choose_format`] picks and start streaming; also says
/// why that mode.
fn open_camera(index: u32, req: &ModeRequest) -> Result<(Camera, String), String> {
    let err = |e: nokhwa::NokhwaError| format!("camera {index}: {e}");
    let any = RequestedFormat::with_formats(RequestedFormatType::None, &USABLE_FORMATS);
    let mut cam = Camera::new(CameraIndex::Index(index), any).map_err(err)?;
    // The first usable format the driver listed is what we have; switch to the chosen
    // one. A forced camera_mode the camera lacks is an error (it names what there is);
    // failing to switch otherwise is not fatal: the format we already have works.
    let mut why = "the driver's first mode (it lists no others)".to_string();
    if let Ok(list) = cam.compatible_camera_formats() {
        let (best, reason) =
            choose_format(&list, req).map_err(|e| format!("camera {index}: {e}"))?;
        why = reason;
        if best != cam.camera_format() {
            let only = [best.format()];
            if let Err(e) = cam.set_camera_requset(RequestedFormat::with_formats(
                RequestedFormatType::Exact(best),
                &only,
            )) {
                why = format!(
                    "{} was chosen but the driver refused it: {e}",
                    describe_format(&best)
                );
            }
        }
    }
    cam.open_stream().map_err(err)?;
    Ok((cam, why))
}

/// The worker's life: open, then dequeue frames until shutdown (Ok) or an error.
fn stream_frames(index: u32, req: &ModeRequest, shared: &Shared) -> Result<(), String> {
    let (mut cam, why) = open_camera(index, req)?;
    let fmt = cam.camera_format();
    shared.lock().phase = Phase::Streaming(fmt, why);
    shared.cv.notify_all();
    while !shared.shutdown.load(Ordering::SeqCst) {
        // Blocks until the driver has a frame (one frame period).
        let data = cam
            .frame_raw()
            .map_err(|e| format!("camera {index}: {e}"))?;
        if shared.lock().want {
            let raw = frame_to_raw(fmt, &data);
            let mut st = shared.lock();
            st.delivered = Some(raw);
            st.want = false;
            drop(st);
            shared.cv.notify_all();
        }
    }
    Ok(())
}

/// A USB camera, streamed by its own thread. `Send`; see the module docs.
pub struct CameraSource {
    index: u32,
    /// What mode to ask for (`frame.max_side`, `fps`, `camera_mode`).
    request: ModeRequest,
    worker: Option<Worker>,
    /// A worker told to shut down, possibly still inside a blocking dequeue.
    retiring: Option<JoinHandle<()>>,
    /// Why there is no worker.
    closed_reason: String,
    /// The mode streaming and why it was chosen.
    format: Option<(CameraFormat, String)>,
    stop: Option<watch::Receiver<bool>>,
    /// Broken frames in a row (reported at 1, 10, 100 …).
    bad_streak: u64,
}

impl CameraSource {
    /// Open camera `index` in the mode `request` asks for and start streaming; the error
    /// says why it cannot.
    pub fn open(index: u32, request: ModeRequest) -> Result<Self, String> {
        let mut cam = Self::closed(index, request, String::new());
        cam.start()?;
        Ok(cam)
    }

    /// A camera that is not open yet: `next` reports `Unavailable(reason)` until `reopen`
    /// works, so the capture loop keeps retrying with backoff.
    pub fn closed(index: u32, request: ModeRequest, reason: String) -> Self {
        CameraSource {
            index,
            request,
            worker: None,
            retiring: None,
            closed_reason: reason,
            format: None,
            stop: None,
            bad_streak: 0,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(stop_requested)
    }

    /// Stop the worker (without waiting: it may be inside a dequeue) and remember why.
    fn close(&mut self, reason: String) {
        if let Some(w) = self.worker.take() {
            w.signal_shutdown();
            self.retiring = Some(w.handle);
        }
        self.closed_reason = reason;
        self.format = None;
    }

    /// Spawn a worker and wait until it streams or fails.
    fn start(&mut self) -> Result<(), String> {
        self.close(String::new());
        if let Some(h) = self.retiring.take() {
            if !h.is_finished() {
                self.retiring = Some(h);
                let reason = format!(
                    "camera {}: the previous stream has not closed yet",
                    self.index
                );
                self.closed_reason = reason.clone();
                return Err(reason);
            }
            let _ = h.join();
        }
        let worker = Worker::spawn(self.index, self.request)?;
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let result = {
            let mut st = worker.shared.lock();
            loop {
                match &st.phase {
                    Phase::Streaming(fmt, why) => break Ok((*fmt, why.clone())),
                    Phase::Failed(e) => break Err(e.clone()),
                    Phase::Opening => {}
                }
                if self.stopping() {
                    break Err(format!("camera {}: stopped while opening", self.index));
                }
                if Instant::now() >= deadline {
                    break Err(format!(
                        "camera {}: did not start streaming within {} s",
                        self.index,
                        OPEN_TIMEOUT.as_secs()
                    ));
                }
                st = worker
                    .shared
                    .cv
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        self.worker = Some(worker);
        match result {
            Ok(fmt) => {
                self.format = Some(fmt);
                Ok(())
            }
            Err(e) => {
                self.close(e.clone());
                Err(e)
            }
        }
    }
}

impl FrameSource for CameraSource {
    fn next(&mut self) -> Result<Capture, SourceError> {
        let Some(worker) = &self.worker else {
            return Err(SourceError::Unavailable(self.closed_reason.clone()));
        };
        let shared = worker.shared.clone();
        let mut deadline = Instant::now() + FRAME_TIMEOUT;
        let mut st = shared.lock();
        st.delivered = None;
        st.want = true;
        let outcome = loop {
            match st.delivered.take() {
                Some(Ok(raw)) => {
                    self.bad_streak = 0;
                    break Ok(raw);
                }
                Some(Err(e)) => {
                    // Report a run of broken frames at 1, 10, 100 … in a row, not every
                    // one: a camera sending junk at 30 fps must not flood the warnings.
                    self.bad_streak += 1;
                    let n = self.bad_streak;
                    if is_power_of_ten(n) {
                        break Err(SourceError::Skipped(if n == 1 {
                            e
                        } else {
                            format!("{e} ({n} broken frames in a row)")
                        }));
                    }
                    st.want = true; // wait for the next frame instead
                    deadline = Instant::now() + FRAME_TIMEOUT;
                }
                None => {}
            }
            if let Phase::Failed(e) = &st.phase {
                break Err(SourceError::Unavailable(e.clone()));
            }
            if self.stopping() {
                break Err(SourceError::Skipped(format!(
                    "camera {}: stopping",
                    self.index
                )));
            }
            if Instant::now() >= deadline {
                break Err(SourceError::Unavailable(format!(
                    "camera {}: no frame for {} s",
                    self.index,
                    FRAME_TIMEOUT.as_secs()
                )));
            }
            st = shared
                .cv
                .wait_timeout(st, TICK)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        st.want = false;
        drop(st);
        match outcome {
            Ok(raw) => Ok(Capture {
                label: format!("camera {}", self.index),
                raw,
            }),
            Err(SourceError::Unavailable(e)) => {
                self.close(e.clone());
                Err(SourceError::Unavailable(e))
            }
            Err(e) => Err(e),
        }
    }

    fn reopen(&mut self) -> Result<(), SourceError> {
        self.start().map_err(SourceError::Unavailable)
    }

    fn describe(&self) -> String {
        match (&self.worker, &self.format) {
            (Some(_), Some((f, why))) => {
                format!("camera {} ({}: {why})", self.index, describe_format(f))
            }
            _ if self.closed_reason.is_empty() => format!("camera {} (not open)", self.index),
            _ => format!("camera {} (not open: {})", self.index, self.closed_reason),
        }
    }

    fn watch_stop(&mut self, stop: watch::Receiver<bool>) {
        self.stop = Some(stop);
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        // The worker notices within one frame period and drops the camera itself.
        if let Some(w) = self.worker.take() {
            w.signal_shutdown();
        }
    }
}

#[cfg(test)]
#[path = "camera_tests.rs"]
mod tests;
