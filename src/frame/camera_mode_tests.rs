//! The mode choice over the mode lists real cameras give (`v4l2-ctl --list-formats-ext`,
//! as nokhwa reads them: whole frame rates only, so 7.5 fps is missing).

use super::*;
use Pixels::*;

/// Every size at every rate.
fn modes(pixels: Pixels, sizes: &[(u32, u32)], rates: &[u32]) -> Vec<Mode> {
    sizes
        .iter()
        .flat_map(|&(w, h)| rates.iter().map(move |&r| Mode::new(pixels, w, h, r)))
        .collect()
}

/// Logitech C270 (046d:0825): MJPEG and YUYV at 640x480 … 1280x960; YUYV's rate falls
/// with size (USB 2 bandwidth).
fn c270() -> Vec<Mode> {
    let sizes = [
        (640, 480),
        (160, 120),
        (176, 144),
        (320, 176),
        (320, 240),
        (352, 288),
        (432, 240),
        (544, 288),
        (640, 360),
        (752, 416),
        (800, 448),
        (800, 600),
        (864, 480),
        (960, 544),
        (960, 720),
        (1024, 576),
        (1184, 656),
        (1280, 720),
        (1280, 960),
    ];
    let mut v = modes(Mjpeg, &sizes, &[30, 25, 20, 15, 10, 5]);
    v.extend(modes(Yuyv, &sizes[..10], &[30, 25, 20, 15, 10, 5]));
    v.extend(modes(Yuyv, &sizes[10..13], &[20, 15, 10, 5]));
    v.extend(modes(Yuyv, &sizes[13..], &[10, 5]));
    v
}

/// Logitech C920 (046d:082d): MJPEG 160x90 … 1920x1080 at up to 30 fps; YUYV up to
/// 2304x1536 (2 fps). Its H.264 mode is not one nokhwa reads.
fn c920() -> Vec<Mode> {
    let sizes = [
        (640, 480),
        (160, 90),
        (160, 120),
        (176, 144),
        (320, 180),
        (320, 240),
        (352, 288),
        (432, 240),
        (640, 360),
        (800, 448),
        (800, 600),
        (864, 480),
        (960, 720),
        (1024, 576),
        (1280, 720),
        (1600, 896),
        (1920, 1080),
    ];
    let mut v = modes(Mjpeg, &sizes, &[30, 24, 20, 15, 10, 5]);
    v.extend(modes(Yuyv, &sizes[..10], &[30, 24, 20, 15, 10, 5]));
    v.extend(modes(Yuyv, &[(800, 600), (864, 480)], &[24, 20, 15, 10, 5]));
    v.extend(modes(Yuyv, &[(960, 720), (1024, 576)], &[15, 10, 5]));
    v.extend(modes(Yuyv, &[(1280, 720)], &[10, 5]));
    v.extend(modes(Yuyv, &[(1920, 1080)], &[5]));
    v.extend(modes(Yuyv, &[(2304, 1296), (2304, 1536)], &[2]));
    v
}

/// A Raspberry Pi Camera Module 3 (imx708, 4608x2592) through libcamera's V4L2 compat
/// layer (`libcamerify`): the ISP's formats, each with the common sizes libcamera lists
/// inside its range, and no frame rates (the layer has no VIDIOC_ENUM_FRAMEINTERVALS).
fn pi_camera_v4l2_compat() -> Vec<Mode> {
    let sizes = [
        (160, 120),
        (240, 160),
        (320, 240),
        (400, 240),
        (480, 320),
        (640, 360),
        (640, 480),
        (720, 480),
        (720, 576),
        (768, 480),
        (800, 600),
        (854, 480),
        (960, 540),
        (960, 640),
        (1024, 576),
        (1024, 600),
        (1024, 768),
        (1152, 864),
        (1280, 1024),
        (1280, 1080),
        (1280, 720),
        (1280, 800),
        (1360, 768),
        (1366, 768),
        (1400, 1050),
        (1440, 900),
        (1536, 864),
        (1600, 1200),
        (1600, 900),
        (1680, 1050),
        (1920, 1080),
        (1920, 1200),
        (2048, 1080),
        (2048, 1152),
        (2048, 1536),
        (2160, 1080),
        (2560, 1080),
        (2560, 1440),
        (2560, 1600),
        (2560, 2048),
        (2960, 1440),
        (3200, 1800),
        (3200, 2048),
        (3200, 2400),
        (3440, 1440),
        (3840, 1080),
        (3840, 1600),
        (3840, 2160),
        (3840, 2400),
        (4096, 2160),
    ];
    let mut v = Vec::new();
    for p in [Yuyv, Nv12, Rgb, Bgr] {
        v.extend(modes(p, &sizes, &[0]));
    }
    v
}

fn auto(max_side: u32, fps: f64) -> ModeRequest {
    ModeRequest {
        max_side,
        fps,
        forced: None,
    }
}

fn pick(list: &[Mode], req: ModeRequest) -> Mode {
    choose_mode(list, &req).unwrap().mode
}

#[test]
fn c270_gets_the_smallest_mode_that_covers_max_side() {
    let cam = c270();
    // The shipped max_side 768 at 1 fps: 800x448 (the smallest with a side ≥ 768), MJPEG,
    // at the slowest rate (nearest 1). Before this choice it was MJPEG 1280x720 @30.
    assert_eq!(pick(&cam, auto(768, 1.0)), Mode::new(Mjpeg, 800, 448, 5));
    assert_eq!(pick(&cam, auto(512, 1.0)), Mode::new(Mjpeg, 544, 288, 5));
    assert_eq!(pick(&cam, auto(640, 2.0)), Mode::new(Mjpeg, 640, 360, 5));
    assert_eq!(
        pick(&cam, auto(1024, 12.0)),
        Mode::new(Mjpeg, 1024, 576, 10)
    );
    assert_eq!(
        pick(&cam, auto(1280, 30.0)),
        Mode::new(Mjpeg, 1280, 720, 30)
    );
    // Nothing reaches 1600: the largest it has.
    let c = choose_mode(&cam, &auto(1600, 1.0)).unwrap();
    assert_eq!(c.mode, Mode::new(Mjpeg, 1280, 960, 5));
    assert!(
        c.why.contains("none reaches frame.max_side 1600"),
        "{}",
        c.why
    );
}

#[test]
fn c920_modes_for_several_max_sides() {
    let cam = c920();
    let c = choose_mode(&cam, &auto(768, 30.0)).unwrap();
    assert_eq!(c.mode, Mode::new(Mjpeg, 800, 448, 30));
    assert!(
        c.why.contains("smallest mode ≥ frame.max_side 768"),
        "{}",
        c.why
    );
    assert_eq!(pick(&cam, auto(320, 1.0)), Mode::new(Mjpeg, 320, 180, 5));
    assert_eq!(pick(&cam, auto(896, 1.0)), Mode::new(Mjpeg, 960, 720, 5));
    assert_eq!(pick(&cam, auto(1920, 1.0)), Mode::new(Mjpeg, 1920, 1080, 5));
    // Beyond MJPEG's largest: only YUYV goes that far.
    assert_eq!(pick(&cam, auto(2000, 1.0)), Mode::new(Yuyv, 2304, 1296, 2));
}

#[test]
fn a_pi_camera_through_the_compat_layer_has_no_rates() {
    let cam = pi_camera_v4l2_compat();
    let c = choose_mode(&cam, &auto(768, 1.0)).unwrap();
    assert_eq!(c.mode, Mode::new(Yuyv, 768, 480, 0));
    assert_eq!(
        c.mode.to_string(),
        "YUYV 768x480",
        "no rate shown when unknown"
    );
    assert_eq!(pick(&cam, auto(640, 1.0)), Mode::new(Yuyv, 640, 360, 0));
    assert_eq!(pick(&cam, auto(1024, 1.0)), Mode::new(Yuyv, 1024, 576, 0));
    assert_eq!(pick(&cam, auto(5000, 1.0)), Mode::new(Yuyv, 4096, 2160, 0));
}

#[test]
fn size_goes_before_format_and_rate_before_an_unknown_rate() {
    // A small YUYV beats a large MJPEG: the model needs 768.
    let list = [
        Mode::new(Mjpeg, 1280, 720, 30),
        Mode::new(Yuyv, 800, 600, 20),
        Mode::new(Yuyv, 640, 480, 30),
    ];
    assert_eq!(pick(&list, auto(768, 1.0)), Mode::new(Yuyv, 800, 600, 20));
    // At one size: MJPEG first, then the nearest rate; a listed rate before none.
    let list = [
        Mode::new(Yuyv, 800, 600, 1),
        Mode::new(Mjpeg, 800, 600, 0),
        Mode::new(Mjpeg, 800, 600, 30),
        Mode::new(Mjpeg, 800, 600, 15),
    ];
    assert_eq!(pick(&list, auto(768, 10.0)), Mode::new(Mjpeg, 800, 600, 15));
    // A portrait mode counts by its longer side.
    let list = [
        Mode::new(Mjpeg, 480, 800, 30),
        Mode::new(Mjpeg, 1280, 720, 30),
    ];
    assert_eq!(pick(&list, auto(768, 30.0)), Mode::new(Mjpeg, 480, 800, 30));
    // Zero-sized junk is ignored; nothing usable is an error.
    assert!(choose_mode(&[Mode::new(Mjpeg, 0, 0, 30)], &auto(768, 1.0)).is_err());
    assert!(choose_mode(&[], &auto(768, 1.0)).is_err());
}

#[test]
fn camera_mode_forces_a_size_or_says_what_there_is() {
    let cam = c270();
    let req = ModeRequest {
        max_side: 768,
        fps: 1.0,
        forced: Some((1280, 720)),
    };
    let c = choose_mode(&cam, &req).unwrap();
    assert_eq!(c.mode, Mode::new(Mjpeg, 1280, 720, 5));
    assert_eq!(c.why, "camera_mode = \"1280x720\"");
    let req = ModeRequest {
        forced: Some((1920, 1080)),
        ..req
    };
    let e = choose_mode(&cam, &req).unwrap_err();
    assert!(e.contains("no 1920x1080 mode"), "{e}");
    assert!(
        e.contains("160x120, 176x144, ")
            && e.ends_with("camera_mode = \"\" to choose by frame.max_side"),
        "{e}"
    );
    assert!(e.contains("1280x720, 1280x960"), "{e}");
}

#[test]
fn camera_mode_is_parsed() {
    assert_eq!(parse_camera_mode(""), Ok(None));
    assert_eq!(parse_camera_mode(" 1280x720 "), Ok(Some((1280, 720))));
    assert_eq!(parse_camera_mode("640X480"), Ok(Some((640, 480))));
    for bad in [
        "1280",
        "1280x",
        "x720",
        "720p",
        "1280x720x3",
        "0x0",
        "-5x3",
        "99999x2",
    ] {
        let e = parse_camera_mode(bad).unwrap_err();
        assert!(e.contains("WIDTHxHEIGHT"), "{bad}: {e}");
    }
}
