//! Tests of turning escalations into eval cases: untrusted logs, images, the appended file.

use super::*;

fn verdict() -> Verdict {
    Verdict {
        level: None,
        title: String::new(),
        watches: Default::default(),
        truncated: false,
        agrees: Some(false),
        safety_relevant: Some(true),
        summary: "A person cooking while smoke rises from a pan.".into(),
        missed: vec!["smoke".into(), "the frying pan on the stove".into()],
        wrong: vec!["says the kitchen is empty".into(), "cat".into()],
        raw: None,
    }
}

#[test]
fn words_from_verdict() {
    let e = expect_words(&verdict());
    assert_eq!(&e[..2], &["smoke".to_string(), "stove".to_string()]);
    assert!(e.contains(&"person".to_string()));
    assert!(!e.iter().any(|w| w == "the" || w == "while"));
    let f = forbid_words(&verdict(), &e);
    assert_eq!(f, vec!["empty".to_string(), "cat".to_string()]);
}

#[test]
fn raw_verdict_gives_no_case() {
    let v = Verdict {
        raw: Some("text".into()),
        ..Verdict::default()
    };
    assert!(case_from_verdict("x", "images/x.jpg", &v, Split::Train, "s").is_none());
}

#[test]
fn appends_without_touching_existing_text_and_loads() {
    let d = tempfile::tempdir().unwrap();
    let eval = d.path();
    let hand = "# my notes\n[[case]]\nid = \"hand\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n";
    std::fs::write(eval.join(LEARNED_FILE), hand).unwrap();
    let jpeg_path = d.path().join("f.jpg");
    image::RgbImage::new(8, 8).save(&jpeg_path).unwrap();
    let jpeg: Arc<[u8]> = std::fs::read(&jpeg_path).unwrap().into();
    let c = case_from_verdict(
        "learned-a-1",
        "images/learned/a-1.jpg",
        &verdict(),
        Split::Holdout,
        "test",
    )
    .unwrap();
    assert_eq!(append_cases(eval, &[(c.clone(), jpeg.clone())]).unwrap(), 1);
    // Same id again: skipped.
    assert_eq!(append_cases(eval, &[(c, jpeg)]).unwrap(), 0);
    let text = std::fs::read_to_string(eval.join(LEARNED_FILE)).unwrap();
    assert!(text.starts_with(hand));
    assert!(text.contains("# source: test"));
    let set = crate::eval::cases::load_eval_set(eval).unwrap();
    let learned = set.cases.iter().find(|c| c.id == "learned-a-1").unwrap();
    assert_eq!(learned.split, Split::Holdout);
    assert!(learned.expectation.safety);
    assert!(learned
        .expectation
        .expect
        .iter()
        .any(|g| g == &vec!["smoke".to_string()]));
    assert_eq!(learned.expectation.forbid, vec!["empty", "cat"]);
    assert!(eval.join("images/learned/a-1.jpg").is_file());
}

#[test]
fn session_id_shape() {
    assert!(is_session_id("20261128-093012"));
    for bad in [
        "",
        "a/../../../../tmp/x",
        "20261128-09301",
        "20261128_093012",
        "2026112a-093012",
        "20261128-093012/..",
        "20261128-\u{1b}]0;x\u{7}",
        "２0261128-093012",
    ] {
        assert!(!is_session_id(bad), "{bad:?}");
    }
}

#[test]
fn destinations_stay_in_images_learned() {
    let d = tempfile::tempdir().unwrap();
    let eval = d.path().join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    let ok = learned_dest(&eval, "images/learned/learned-20261128-093012-000002.jpg").unwrap();
    assert_eq!(
        ok,
        eval.canonicalize()
            .unwrap()
            .join("images/learned/learned-20261128-093012-000002.jpg")
    );
    for bad in [
        "images/learned/learned-a/../../../../tmp/x-000002.jpg",
        "images/learned/../x.jpg",
        "/tmp/x.jpg",
        "images/other/x.jpg",
        "images/learned/.hidden.jpg",
        "images/learned/x.png",
        "images/learned/a\u{1b}b.jpg",
    ] {
        let e = learned_dest(&eval, bad).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{bad:?}: {e}");
    }
    // images/learned itself a link out of the eval dir: refused.
    #[cfg(unix)]
    {
        let eval2 = d.path().join("eval2");
        let outside = d.path().join("outside");
        std::fs::create_dir_all(eval2.join("images")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, eval2.join("images/learned")).unwrap();
        let e = learned_dest(&eval2, "images/learned/x.jpg").unwrap_err();
        assert!(e.to_string().contains("outside the eval dir"), "{e}");
    }
}

#[test]
fn frames_only_jpegs_under_the_frames_dir() {
    let d = tempfile::tempdir().unwrap();
    let frames = d.path().join("logs/frames");
    std::fs::create_dir_all(&frames).unwrap();
    let roots = vec![frames.canonicalize().unwrap()];
    let jpeg = frames.join("20261128-093012-000001.jpg");
    std::fs::write(&jpeg, [0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).unwrap();
    assert!(read_frame(&jpeg, &roots).unwrap().is_some());
    // Gone: skipped, not refused.
    assert!(read_frame(&frames.join("gone.jpg"), &roots)
        .unwrap()
        .is_none());
    let secret = d.path().join("secret.txt");
    std::fs::write(&secret, "password").unwrap();
    let e = read_frame(&secret, &roots).unwrap_err();
    assert!(e.contains("not in the logs' frames directory"), "{e}");
    let e = read_frame(&frames.join("../../secret.txt"), &roots).unwrap_err();
    assert!(e.contains("not in the logs' frames directory"), "{e}");
    let text = frames.join("text.jpg");
    std::fs::write(&text, "not a jpeg").unwrap();
    assert!(read_frame(&text, &roots)
        .unwrap_err()
        .contains("not a JPEG"));
    #[cfg(unix)]
    {
        let link = frames.join("link.jpg");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let e = read_frame(&link, &roots).unwrap_err();
        assert!(e.contains("not in the logs' frames directory"), "{e}");
        let fifo = frames.join("fifo.jpg");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_frame(&fifo, &roots).unwrap_err();
        assert!(e.contains("not a regular file"), "{e}");
    }
    let big = frames.join("big.jpg");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_FRAME_BYTES + 1).unwrap();
    assert!(read_frame(&big, &roots)
        .unwrap_err()
        .contains("larger than"));
}

#[test]
fn append_refuses_a_non_jpeg() {
    let d = tempfile::tempdir().unwrap();
    let c = case_from_verdict(
        "learned-a-1",
        "images/learned/a-1.jpg",
        &verdict(),
        Split::Train,
        "test",
    )
    .unwrap();
    let png: Arc<[u8]> = b"\x89PNG\r\n".to_vec().into();
    assert!(append_cases(d.path(), &[(c, png)]).is_err());
    assert!(!d.path().join(LEARNED_FILE).exists());
}

#[test]
fn the_log_counts_early_reviews_the_full_answer_would_not_have_made() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("session-20260101.jsonl");
    let answer = |seq: u64, reasons: serde_json::Value| {
        serde_json::json!({
            "type": "student_answer", "session": "20260101-120000", "seq": seq,
            "answer": "Smoke: none.", "confidence": 0.9, "latency_ms": 10,
            "reasons": reasons, "skill": "skill.txt", "at": "2026-01-01T12:00:00Z"
        })
        .to_string()
    };
    let lines = [
        answer(
            1,
            serde_json::json!([{"kind": "safety_early", "keyword": "smoke", "needed": false}]),
        ),
        answer(
            2,
            serde_json::json!([{"kind": "safety_early", "keyword": "smoke", "needed": true}]),
        ),
        answer(
            3,
            serde_json::json!([{"kind": "safety_early", "keyword": "fire", "needed": false}]),
        ),
        answer(
            4,
            serde_json::json!([{"kind": "safety_early", "keyword": "smoke", "needed": false}]),
        ),
        answer(5, serde_json::json!([])),
    ];
    std::fs::write(&log, lines.join("\n")).unwrap();
    let summary = read_log(&log).unwrap();
    let counts = &summary.early_unneeded["skill.txt"];
    assert_eq!(counts.get("smoke"), Some(&2));
    assert_eq!(counts.get("fire"), Some(&1));
}
