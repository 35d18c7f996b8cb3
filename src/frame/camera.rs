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

/// The resolution and rate we ask for: enough detail for a vision model, light on a Pi.
const TARGET_WIDTH: u32 = 1280;
const TARGET_HEIGHT: u32 = 720;
const TARGET_FPS: u32 = 30;
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

/// Pick the capture format: a usable format no smaller than 640x480 if there is one, MJPEG
/// before YUYV before the rest, then the resolution closest to 1280x720, then the frame
/// rate closest to 30.
pub fn choose_format(formats: &[CameraFormat]) -> Option<CameraFormat> {
    const TARGET_AREA: u64 = TARGET_WIDTH as u64 * TARGET_HEIGHT as u64;
    formats
        .iter()
        .copied()
        .filter_map(|f| format_rank(f.format()).map(|rank| (f, rank)))
        .filter(|(f, _)| f.width() > 0 && f.height() > 0)
        .min_by_key(|(f, rank)| {
            let area = u64::from(f.width()) * u64::from(f.height());
            (
                area < 640 * 480,
                *rank,
                area.abs_diff(TARGET_AREA),
                f.frame_rate().abs_diff(TARGET_FPS),
            )
        })
        .map(|(f, _)| f)
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

fn describe_format(f: &CameraFormat) -> String {
    format!(
        "{} {}x{} @{}fps",
        f.format(),
        f.width(),
        f.height(),
        f.frame_rate()
    )
}

enum Phase {
    Opening,
    Streaming(CameraFormat),
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
    fn spawn(index: u32) -> Result<Worker, String> {
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
            .spawn(move || worker_main(index, s))
            .map_err(|e| format!("camera {index}: cannot start its thread: {e}"))?;
        Ok(Worker { shared, handle })
    }

    fn signal_shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.cv.notify_all();
    }
}

fn worker_main(index: u32, shared: Arc<Shared>) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        stream_frames(index, &shared)
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

/// Open the device with the best format on offer and start streaming.
fn open_camera(index: u32) -> Result<Camera, String> {
    let err = |e: nokhwa::NokhwaError| format!("camera {index}: {e}");
    let any = RequestedFormat::with_formats(RequestedFormatType::None, &USABLE_FORMATS);
    let mut cam = Camera::new(CameraIndex::Index(index), any).map_err(err)?;
    // The first usable format the driver listed is what we have; look for a better one.
    // Failing to switch is not fatal: the format we already have works.
    if let Ok(list) = cam.compatible_camera_formats() {
        if let Some(best) = choose_format(&list) {
            if best != cam.camera_format() {
                let only = [best.format()];
                let _ = cam.set_camera_requset(RequestedFormat::with_formats(
                    RequestedFormatType::Exact(best),
                    &only,
                ));
            }
        }
    }
    cam.open_stream().map_err(err)?;
    Ok(cam)
}

/// The worker's life: open, then dequeue frames until shutdown (Ok) or an error.
fn stream_frames(index: u32, shared: &Shared) -> Result<(), String> {
    let mut cam = open_camera(index)?;
    let fmt = cam.camera_format();
    shared.lock().phase = Phase::Streaming(fmt);
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
    worker: Option<Worker>,
    /// A worker told to shut down, possibly still inside a blocking dequeue.
    retiring: Option<JoinHandle<()>>,
    /// Why there is no worker.
    closed_reason: String,
    format: Option<CameraFormat>,
    stop: Option<watch::Receiver<bool>>,
    /// Broken frames in a row (reported at 1, 10, 100 …).
    bad_streak: u64,
}

impl CameraSource {
    /// Open camera `index` and start streaming; the error says why it cannot.
    pub fn open(index: u32) -> Result<Self, String> {
        let mut cam = Self::closed(index, String::new());
        cam.start()?;
        Ok(cam)
    }

    /// A camera that is not open yet: `next` reports `Unavailable(reason)` until `reopen`
    /// works, so the capture loop keeps retrying with backoff.
    pub fn closed(index: u32, reason: String) -> Self {
        CameraSource {
            index,
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
        let worker = Worker::spawn(self.index)?;
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let result = {
            let mut st = worker.shared.lock();
            loop {
                match &st.phase {
                    Phase::Streaming(fmt) => break Ok(*fmt),
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
            (Some(_), Some(f)) => format!("camera {} ({})", self.index, describe_format(f)),
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
mod tests {
    use super::*;

    fn f(fmt: FrameFormat, w: u32, h: u32, fps: u32) -> CameraFormat {
        CameraFormat::new_from(w, h, fmt, fps)
    }

    #[test]
    fn broken_frames_are_reported_at_powers_of_ten() {
        let hits: Vec<u64> = (0..2000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(hits, [1, 10, 100, 1000]);
    }

    #[test]
    fn camera_source_is_send() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<CameraSource>();
    }

    #[test]
    fn choose_prefers_mjpeg_near_720p_at_30fps() {
        use FrameFormat::*;
        let list = [
            f(YUYV, 1280, 720, 10),
            f(MJPEG, 1920, 1080, 30),
            f(MJPEG, 1280, 720, 15),
            f(MJPEG, 1280, 720, 30),
            f(MJPEG, 640, 480, 30),
        ];
        assert_eq!(choose_format(&list), Some(f(MJPEG, 1280, 720, 30)));
        // No MJPEG: YUYV near 720p.
        let list = [
            f(YUYV, 640, 480, 30),
            f(YUYV, 1280, 720, 10),
            f(GRAY, 1280, 720, 30),
        ];
        assert_eq!(choose_format(&list), Some(f(YUYV, 1280, 720, 10)));
        // A tiny MJPEG loses to a usable YUYV.
        let list = [f(MJPEG, 320, 240, 30), f(YUYV, 800, 600, 20)];
        assert_eq!(choose_format(&list), Some(f(YUYV, 800, 600, 20)));
        // Only tiny ones: still pick something.
        let list = [f(YUYV, 160, 120, 30), f(MJPEG, 320, 240, 30)];
        assert_eq!(choose_format(&list), Some(f(MJPEG, 320, 240, 30)));
        assert_eq!(choose_format(&[]), None);
    }

    #[test]
    fn frames_become_the_right_raw_kind() {
        use FrameFormat::*;
        let jpeg = [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        match frame_to_raw(f(MJPEG, 2, 2, 30), &jpeg).unwrap() {
            RawImage::Encoded(b) => assert_eq!(&b[..], &jpeg[..]),
            other => panic!("{other:?}"),
        }
        assert!(frame_to_raw(f(MJPEG, 2, 2, 30), b"junk").is_err());
        match frame_to_raw(f(YUYV, 2, 1, 30), &[16, 128, 235, 128, 99]).unwrap() {
            RawImage::Yuyv {
                width: 2,
                height: 1,
                data,
            } => assert_eq!(&data[..], &[16, 128, 235, 128]),
            other => panic!("{other:?}"),
        }
        assert!(frame_to_raw(f(YUYV, 2, 2, 30), &[0; 4]).is_err());
        match frame_to_raw(f(GRAY, 2, 1, 30), &[10, 200]).unwrap() {
            RawImage::Rgb { data, .. } => assert_eq!(&data[..], &[10, 10, 10, 200, 200, 200]),
            other => panic!("{other:?}"),
        }
        match frame_to_raw(f(RAWBGR, 1, 1, 30), &[1, 2, 3]).unwrap() {
            RawImage::Rgb { data, .. } => assert_eq!(&data[..], &[3, 2, 1]),
            other => panic!("{other:?}"),
        }
        assert!(frame_to_raw(f(RAWRGB, 2, 2, 30), &[0; 3]).is_err());
    }

    #[test]
    fn opening_a_missing_camera_is_an_error_not_a_panic() {
        let t0 = Instant::now();
        let err = match CameraSource::open(9_999) {
            Ok(_) => panic!("camera 9999 should not exist"),
            Err(e) => e,
        };
        assert!(err.starts_with("camera 9999"), "{err}");
        assert!(t0.elapsed() < OPEN_TIMEOUT, "took {:?}", t0.elapsed());
    }

    #[test]
    fn a_closed_camera_is_unavailable_until_reopened() {
        let mut cam = CameraSource::closed(9_998, "camera 9998: gone".into());
        match cam.next() {
            Err(SourceError::Unavailable(m)) => assert_eq!(m, "camera 9998: gone"),
            Err(e) => panic!("expected Unavailable, got {e:?}"),
            Ok(_) => panic!("expected Unavailable"),
        }
        // Reopening a device that does not exist fails cleanly, again and again.
        for _ in 0..3 {
            assert!(matches!(cam.reopen(), Err(SourceError::Unavailable(_))));
        }
        assert!(cam
            .describe()
            .starts_with("camera 9998 (not open: camera 9998"));
    }
}
