//! The capture thread: offers frames at `fps` into the latest-frame slot, waits while
//! paused, and reopens a lost device with backoff (`reconnect`).

use super::contract::{stop_requested, CaptureNotice, FrameSource, SourceError};
use crate::frame::slot::SlotWriter;
use crate::frame::Frame;
use crate::model::backoff::CAMERA_REOPEN;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Granularity of every wait in the capture loop: stop is seen within this.
const TICK: Duration = Duration::from_millis(50);

/// Sleep until `deadline` in short slices; false when stop was requested meanwhile.
fn sleep_until(deadline: Instant, stop: &watch::Receiver<bool>) -> bool {
    loop {
        if stop_requested(stop) {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(TICK));
    }
}

/// Time between frames; a bad fps (0, negative, NaN) means one per second.
fn frame_period(fps: f64) -> Duration {
    if fps.is_finite() && fps > 0.0 {
        Duration::from_secs_f64((1.0 / fps).min(3600.0))
    } else {
        Duration::from_secs(1)
    }
}

/// Run the capture loop on its own thread until `stop` is set: offers frames at `fps`
/// into the slot (numbered from 1), waits while `paused`, reports warnings.
pub fn spawn_capture(
    source: Box<dyn FrameSource>,
    fps: f64,
    writer: SlotWriter,
    paused: tokio::sync::watch::Receiver<bool>,
    stop: tokio::sync::watch::Receiver<bool>,
    notices: tokio::sync::mpsc::UnboundedSender<CaptureNotice>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || capture_loop(source, fps, writer, paused, stop, notices))
        .expect("the OS refused to start the capture thread")
}

fn capture_loop(
    mut source: Box<dyn FrameSource>,
    fps: f64,
    writer: SlotWriter,
    paused: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    notices: tokio::sync::mpsc::UnboundedSender<CaptureNotice>,
) {
    let warn = |m: String| {
        let _ = notices.send(CaptureNotice::Warning(m));
    };
    let period = frame_period(fps);
    source.watch_stop(stop.clone());
    let mut seq: u64 = 0;
    let mut deadline = Instant::now();
    while !stop_requested(&stop) {
        if *paused.borrow() {
            std::thread::sleep(TICK);
            // After a pause the next frame comes at once, not in a burst of missed ones.
            deadline = Instant::now();
            continue;
        }
        let got = source.next();
        if got.is_err() && stop_requested(&stop) {
            break; // an error while stopping (e.g. a camera interrupted) is no news
        }
        match got {
            Ok(c) => {
                seq += 1;
                writer.put(Frame {
                    seq,
                    captured_at: chrono::Utc::now(),
                    label: c.label,
                    raw: c.raw,
                });
                // Deadline clock: the schedule does not drift with the time `next` takes;
                // when we fall behind we skip the missed slots instead of bursting.
                deadline += period;
                let now = Instant::now();
                if deadline < now {
                    deadline = now;
                }
                if !sleep_until(deadline, &stop) {
                    break;
                }
            }
            Err(SourceError::Skipped(m)) => warn(m),
            Err(SourceError::Fatal(m)) => {
                warn(format!("capture stopped: {m}"));
                break;
            }
            Err(SourceError::Unavailable(m)) => {
                if !reconnect(source.as_mut(), &m, &stop, &warn) {
                    break;
                }
                deadline = Instant::now();
            }
        }
    }
    drop(writer); // the last writer closes the slot: the student sees the end
}

/// Reopen with exponential backoff (1, 2, 4 … 30 s, plus jitter) until it works (true) or
/// stop is requested or the source says it is hopeless (false).
fn reconnect(
    source: &mut dyn FrameSource,
    first_error: &str,
    stop: &watch::Receiver<bool>,
    warn: &dyn Fn(String),
) -> bool {
    let mut attempt = 1;
    warn(format!(
        "camera lost: {first_error} (retrying in {}s)",
        CAMERA_REOPEN.nominal(attempt).as_secs()
    ));
    let mut last_error = first_error.to_string();
    loop {
        if !sleep_until(Instant::now() + CAMERA_REOPEN.delay(attempt), stop) {
            return false;
        }
        match source.reopen() {
            Ok(()) => {
                warn(format!("camera back: {}", source.describe()));
                return true;
            }
            Err(SourceError::Fatal(m)) => {
                warn(format!("capture stopped: {m}"));
                return false;
            }
            Err(SourceError::Skipped(m)) | Err(SourceError::Unavailable(m)) => {
                attempt += 1;
                // Say it again only when the reason changes: a missing camera at a 30 s
                // retry pace must not flood the warning list.
                if m != last_error {
                    warn(format!(
                        "camera still unavailable: {m} (retrying in {}s)",
                        CAMERA_REOPEN.nominal(attempt).as_secs()
                    ));
                    last_error = m;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::slot::slot;
    use crate::frame::source::files::FolderSource;
    use crate::frame::source::test_support::{folder_with, png};
    use crate::frame::source::Capture;
    use crate::frame::RawImage;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    struct Channels {
        paused: watch::Sender<bool>,
        stop: watch::Sender<bool>,
        notices: tokio::sync::mpsc::UnboundedReceiver<CaptureNotice>,
    }

    fn start(
        src: Box<dyn FrameSource>,
        fps: f64,
    ) -> (
        std::thread::JoinHandle<()>,
        crate::frame::slot::SlotReader,
        Channels,
    ) {
        let (w, r) = slot();
        let (paused_tx, paused_rx) = watch::channel(false);
        let (stop_tx, stop_rx) = watch::channel(false);
        let (n_tx, n_rx) = tokio::sync::mpsc::unbounded_channel();
        let h = spawn_capture(src, fps, w, paused_rx, stop_rx, n_tx);
        (
            h,
            r,
            Channels {
                paused: paused_tx,
                stop: stop_tx,
                notices: n_rx,
            },
        )
    }

    fn join_within(h: std::thread::JoinHandle<()>, limit: Duration) -> Duration {
        let t0 = Instant::now();
        while !h.is_finished() {
            assert!(
                t0.elapsed() < limit,
                "capture thread did not stop in {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        h.join().unwrap();
        t0.elapsed()
    }

    #[test]
    fn capture_loop_numbers_frames_pauses_and_stops_quickly() {
        let p = png(2, 2);
        let dir = folder_with(&[("a.png", &p), ("b.png", &p), ("c.png", &p)]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, ch) = start(src, 200.0);
        let mut seqs = Vec::new();
        let t0 = Instant::now();
        while seqs.len() < 10 && t0.elapsed() < Duration::from_secs(5) {
            if let Some(t) = r.try_take() {
                seqs.push(t.frame.seq);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(seqs.len() >= 10, "only {seqs:?}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        assert!(seqs[0] >= 1);

        // Paused: the sequence stops moving.
        ch.paused.send(true).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        let at_pause = r.latest_seq();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(r.latest_seq(), at_pause, "frames kept coming while paused");
        ch.paused.send(false).unwrap();
        let t0 = Instant::now();
        while r.latest_seq() == at_pause && t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(r.latest_seq() > at_pause, "no frames after resume");

        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        // The writer is gone with the thread: the slot is closed.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            while r.try_take().is_some() {}
            assert!(r.take().await.is_none());
        });
    }

    #[test]
    fn capture_paces_to_fps_without_drift() {
        let dir = folder_with(&[("a.png", &png(2, 2))]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, ch) = start(src, 20.0);
        std::thread::sleep(Duration::from_millis(1000));
        let n = r.latest_seq();
        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        // 20 fps for one second: 21 frames at most (one at t=0), and not far fewer.
        assert!((15..=22).contains(&n), "{n} frames in 1 s at 20 fps");
    }

    #[test]
    fn skipped_and_fatal_are_reported_and_fatal_closes_the_slot() {
        let dir = folder_with(&[("a.png", b""), ("b.png", b"junk")]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, r, mut ch) = start(src, 1000.0);
        join_within(h, Duration::from_secs(2));
        let mut got = Vec::new();
        while let Ok(CaptureNotice::Warning(m)) = ch.notices.try_recv() {
            got.push(m);
        }
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].contains("a.png") && got[1].contains("b.png"),
            "{got:?}"
        );
        assert!(
            got[2].starts_with("capture stopped: none of the 2"),
            "{got:?}"
        );
        assert_eq!(r.latest_seq(), 0);
    }

    /// A fake device: frame number `unavailable_at` is Unavailable, and `reopen` fails
    /// `reopen_failures` times before working.
    struct Flaky {
        unavailable_at: u64,
        n: u64,
        reopen_failures: Arc<AtomicUsize>,
        reopens: Arc<Mutex<Vec<Instant>>>,
    }

    impl FrameSource for Flaky {
        fn next(&mut self) -> Result<Capture, SourceError> {
            self.n += 1;
            if self.n == self.unavailable_at {
                return Err(SourceError::Unavailable("unplugged".into()));
            }
            Ok(Capture {
                label: "camera 0".into(),
                raw: RawImage::Encoded(Arc::from(&b"jpeg"[..])),
            })
        }
        fn reopen(&mut self) -> Result<(), SourceError> {
            self.reopens.lock().unwrap().push(Instant::now());
            if self.reopen_failures.load(Ordering::SeqCst) > 0 {
                self.reopen_failures.fetch_sub(1, Ordering::SeqCst);
                return Err(SourceError::Unavailable("still unplugged".into()));
            }
            Ok(())
        }
        fn describe(&self) -> String {
            "camera 0".into()
        }
    }

    #[test]
    fn unavailable_reopens_with_backoff_and_reports_recovery() {
        let reopens = Arc::new(Mutex::new(Vec::new()));
        let src = Box::new(Flaky {
            unavailable_at: 3,
            n: 0,
            reopen_failures: Arc::new(AtomicUsize::new(1)),
            reopens: reopens.clone(),
        });
        let t0 = Instant::now();
        let (h, r, mut ch) = start(src, 100.0);
        // Loss at frame 3, retry after ~1 s (fails), then after ~2 s more (works).
        let deadline = Instant::now() + Duration::from_secs(6);
        while r.latest_seq() < 5 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        ch.stop.send(true).unwrap();
        join_within(h, Duration::from_millis(300));
        let times = reopens.lock().unwrap().clone();
        assert_eq!(times.len(), 2, "{times:?}");
        let first = times[0] - t0;
        let second = times[1] - times[0];
        assert!(first >= Duration::from_millis(1000) && first < Duration::from_millis(1400));
        assert!(second >= Duration::from_millis(2000) && second < Duration::from_millis(2400));
        let mut got = Vec::new();
        while let Ok(CaptureNotice::Warning(m)) = ch.notices.try_recv() {
            got.push(m);
        }
        assert_eq!(
            got,
            [
                "camera lost: unplugged (retrying in 1s)",
                "camera still unavailable: still unplugged (retrying in 2s)",
                "camera back: camera 0",
            ]
        );
        assert!(r.latest_seq() >= 5);
    }

    #[test]
    fn stop_interrupts_the_backoff_wait() {
        let src = Box::new(Flaky {
            unavailable_at: 1,
            n: 0,
            reopen_failures: Arc::new(AtomicUsize::new(100)),
            reopens: Arc::new(Mutex::new(Vec::new())),
        });
        let (h, _r, ch) = start(src, 10.0);
        std::thread::sleep(Duration::from_millis(200)); // now in the 1 s backoff sleep
        ch.stop.send(true).unwrap();
        let took = join_within(h, Duration::from_millis(300));
        assert!(took < Duration::from_millis(200), "{took:?}");
    }

    #[test]
    fn dropping_the_stop_sender_ends_the_loop() {
        let dir = folder_with(&[("a.png", &png(2, 2))]);
        let src = Box::new(FolderSource::open(dir.path()).unwrap());
        let (h, _r, ch) = start(src, 5.0);
        drop(ch.stop);
        join_within(h, Duration::from_millis(300));
    }

    #[test]
    fn bad_fps_values_do_not_panic() {
        assert_eq!(frame_period(0.0), Duration::from_secs(1));
        assert_eq!(frame_period(f64::NAN), Duration::from_secs(1));
        assert_eq!(frame_period(-3.0), Duration::from_secs(1));
        assert_eq!(frame_period(4.0), Duration::from_millis(250));
        assert!(frame_period(1e-9) <= Duration::from_secs(3600));
    }
}
