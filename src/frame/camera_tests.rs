//! The camera's pure parts: the format asked for, frames to raw images, errors.

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

fn req(max_side: u32, forced: Option<(u32, u32)>) -> ModeRequest {
    ModeRequest {
        max_side,
        fps: 1.0,
        forced,
    }
}

#[test]
fn the_format_asked_for_fits_max_side() {
    use FrameFormat::*;
    let list = [
        f(YUYV, 1280, 720, 10),
        f(MJPEG, 1920, 1080, 30),
        f(MJPEG, 1280, 720, 15),
        f(MJPEG, 1280, 720, 30),
        f(MJPEG, 800, 600, 30),
        f(MJPEG, 800, 600, 5),
        f(MJPEG, 640, 480, 30),
    ];
    // Not 1280x720 whatever max_side is: 800x600 covers 768, at the rate nearest 1.
    let (fmt, why) = choose_format(&list, &req(768, None)).unwrap();
    assert_eq!(fmt, f(MJPEG, 800, 600, 5));
    assert!(why.contains("max_side 768"), "{why}");
    assert_eq!(describe_format(&fmt), "MJPEG 800x600 @5fps");
    assert_eq!(
        choose_format(&list, &req(1100, None)).unwrap().0,
        f(MJPEG, 1280, 720, 15)
    );
    assert_eq!(
        choose_format(&list, &req(512, None)).unwrap().0,
        f(MJPEG, 640, 480, 30)
    );
    // Forced.
    let (fmt, why) = choose_format(&list, &req(768, Some((1280, 720)))).unwrap();
    assert_eq!(fmt, f(MJPEG, 1280, 720, 15));
    assert_eq!(why, "camera_mode = \"1280x720\"");
    let e = choose_format(&list, &req(768, Some((1024, 768)))).unwrap_err();
    assert!(e.contains("640x480, 800x600, 1280x720, 1920x1080"), "{e}");
    assert!(choose_format(&[], &req(768, None)).is_err());
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
    let err = match CameraSource::open(9_999, req(768, None)) {
        Ok(_) => panic!("camera 9999 should not exist"),
        Err(e) => e,
    };
    assert!(err.starts_with("camera 9999"), "{err}");
    assert!(t0.elapsed() < OPEN_TIMEOUT, "took {:?}", t0.elapsed());
}

#[test]
fn a_closed_camera_is_unavailable_until_reopened() {
    let mut cam = CameraSource::closed(9_998, req(768, None), "camera 9998: gone".into());
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
