//! The fault matrix: every fault a LAN, a model server, a camera and a user can throw,
//! each against the Ollama test server's fault replies.

mod support;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, Health, Role};
use gemmaedge_tui::policy::Reason;
use std::path::Path;
use std::time::Duration;
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, photos, STUDENT, TEACHER};

const CALM: &str = "A calm office.\nCONFIDENCE: 0.9";

/// Short request timeouts: several faults are only seen when a request times out.
fn config(dir: &Path, student: &str, teacher: &str) -> Config {
    engine_config(dir, student, teacher, 2)
}

/// Receive events until `f` returns Some, or panic after `secs`.
async fn wait_for<T>(h: &mut EngineHandle, secs: u64, mut f: impl FnMut(&Event) -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(ev)) => {
                if let Some(t) = f(&ev) {
                    return t;
                }
                seen.push(ev);
            }
            other => panic!("condition not met ({other:?}); saw {seen:#?}"),
        }
    }
}

async fn shutdown(mut h: EngineHandle) -> Vec<Event> {
    h.commands.send(Command::Shutdown).unwrap();
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(ev) = h.events.recv().await {
            let stop = matches!(ev, Event::Stopped { .. });
            rest.push(ev);
            if stop {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "engine stops within 3 s");
    rest
}

fn student_failed(ev: &Event) -> Option<String> {
    match ev {
        Event::StudentFailed { error, .. } => Some(error.clone()),
        _ => None,
    }
}

fn answered(ev: &Event) -> Option<(u64, String, Option<f32>, Vec<Reason>)> {
    match ev {
        Event::StudentAnswer {
            seq,
            answer,
            confidence,
            reasons,
            ..
        } => Some((*seq, answer.clone(), *confidence, reasons.clone())),
        _ => None,
    }
}

async fn servers() -> (OllamaTestServer, OllamaTestServer) {
    let s = OllamaTestServer::start(&[STUDENT]).await;
    let t = OllamaTestServer::start(&[TEACHER]).await;
    s.set_handler(|_| Reply::text(CALM));
    t.set_handler(|_| {
        Reply::text(
            r#"{"agrees":true,"safety_relevant":false,"summary":"ok","missed":[],"wrong":[]}"#,
        )
    });
    (s, t)
}

#[tokio::test]
async fn refused_at_start_then_recovers_by_itself() {
    let (s, t) = servers().await;
    s.stop_listening();
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let (reason, hint) = wait_for(&mut h, 10, |e| match e {
        Event::Health {
            role: Role::Student,
            health: Health::Offline { reason, hint },
        } => Some((reason.clone(), hint.clone())),
        _ => None,
    })
    .await;
    assert!(
        reason.starts_with("connection refused (http://127.0.0.1:"),
        "{reason}"
    );
    assert!(hint.contains("ollama serve"), "{hint}");
    s.resume_listening();
    // Backoff retries find the server again; answers flow.
    wait_for(&mut h, 15, answered).await;
    shutdown(h).await;
}

#[tokio::test]
async fn drop_mid_stream_fails_the_frame_and_the_next_one_works() {
    let (s, t) = servers().await;
    s.push_reply(Reply::DropMidStream {
        content_before: "A cat sits on".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let err = wait_for(&mut h, 10, student_failed).await;
    assert!(
        err.contains("ended before the answer was complete"),
        "{err}"
    );
    let (_, answer, ..) = wait_for(&mut h, 10, answered).await;
    assert_eq!(
        answer, CALM,
        "a partial answer is never treated as complete"
    );
    shutdown(h).await;
}

#[tokio::test]
async fn error_line_inside_a_200_stream_is_reported() {
    let (s, t) = servers().await;
    s.push_reply(Reply::ErrorLine {
        content_before: "A cat".into(),
        error: "model runner has unexpectedly stopped".into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let err = wait_for(&mut h, 10, student_failed).await;
    assert!(
        err.contains("model runner has unexpectedly stopped"),
        "{err}"
    );
    wait_for(&mut h, 10, answered).await;
    shutdown(h).await;
}

#[tokio::test]
async fn a_hanging_server_is_cut_by_the_timeout() {
    let (s, t) = servers().await;
    s.push_reply(Reply::Hang);
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.student.timeout_secs = 1;
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let err = wait_for(&mut h, 10, student_failed).await;
    assert!(err.contains("within 1 s"), "{err}");
    wait_for(&mut h, 10, answered).await;
    shutdown(h).await;
}

#[tokio::test]
async fn a_hanging_teacher_does_not_grow_the_queue() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("Something unclear.\nCONFIDENCE: 0.1"));
    t.set_handler(|_| Reply::Hang);
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.policy.teacher_queue = 3;
    c.teacher.timeout_secs = 30;
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let mut max_queue = 0;
    let mut dropped = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        match ev {
            Event::Escalated { queue_len, .. } => max_queue = max_queue.max(queue_len),
            Event::TeacherDropped { .. } => dropped += 1,
            _ => {}
        }
    }
    assert!(max_queue <= 3, "queue stays bounded: {max_queue}");
    assert!(dropped > 0, "old entries are dropped and reported");
    shutdown(h).await;
}

#[tokio::test]
async fn http_500_skips_the_student_frame_and_503_is_retried_for_the_teacher() {
    let (s, t) = servers().await;
    s.push_reply(Reply::Status {
        code: 500,
        body: r#"{"error":"out of memory"}"#.into(),
    });
    s.push_reply(Reply::text("Unclear.\nCONFIDENCE: 0.1"));
    t.push_reply(Reply::Status {
        code: 503,
        body: r#"{"error":"server busy"}"#.into(),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let err = wait_for(&mut h, 10, student_failed).await;
    assert_eq!(err, "HTTP 500: out of memory");
    wait_for(&mut h, 10, answered).await;
    let warning = wait_for(&mut h, 10, |e| match e {
        Event::Warning { message } if message.contains("retry") => Some(message.clone()),
        _ => None,
    })
    .await;
    assert!(warning.contains("HTTP 503: server busy"), "{warning}");
    wait_for(&mut h, 10, |e| {
        matches!(e, Event::TeacherVerdict { .. }).then_some(())
    })
    .await;
    assert_eq!(t.chat_requests().len(), 2, "one failure, one retry");
    shutdown(h).await;
}

#[tokio::test]
async fn model_not_pulled_is_a_clear_status_without_a_retry_storm() {
    let (s, t) = servers().await;
    s.set_models(&["llava:latest"]);
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let reason = wait_for(&mut h, 10, |e| match e {
        Event::Health {
            role: Role::Student,
            health: Health::Offline { reason, .. },
        } => Some(reason.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        reason,
        format!(
            "model {STUDENT} not found on {} — run: ollama pull {STUDENT}",
            s.url()
        )
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = s.requests().len();
    assert!(calls <= 6, "no retry storm: {calls} requests in 2 s");
    shutdown(h).await;
}

#[tokio::test]
async fn malformed_line_and_huge_reply_are_reported_and_bounded() {
    let (s, t) = servers().await;
    s.push_reply(Reply::Malformed {
        content_before: "A cat".into(),
    });
    s.push_reply(Reply::Huge { bytes: 3_000_000 });
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let err = wait_for(&mut h, 10, student_failed).await;
    assert!(err.contains("malformed"), "{err}");
    let (_, answer, ..) = wait_for(&mut h, 20, answered).await;
    assert!(
        answer.len() < 70 * 1024,
        "reply capped: {} bytes",
        answer.len()
    );
    assert!(answer.ends_with("[reply cut at 64 KiB]"));
    wait_for(&mut h, 10, answered).await;
    shutdown(h).await;
}

#[tokio::test]
async fn nonsense_confidence_is_no_confidence_never_full() {
    let (s, t) = servers().await;
    for r in [
        "A desk.\nCONFIDENCE: high",
        "A desk.\nCONFIDENCE: 7",
        "A desk.\nCONFIDENCE: -1",
        "A desk.\nCONFIDENCE: NaN",
    ] {
        s.push_reply(Reply::text(r));
    }
    let dir = tempfile::tempdir().unwrap();
    let h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions {
            max_frames: Some(4),
        },
    )
    .unwrap();
    let mut h = h;
    for _ in 0..4 {
        let (_, _, conf, reasons) = wait_for(&mut h, 10, answered).await;
        assert_eq!(conf, None);
        assert_eq!(reasons, vec![Reason::NoConfidence]);
    }
}

#[tokio::test]
async fn escapes_in_replies_never_reach_the_terminal_and_are_escaped_in_the_log() {
    let (s, t) = servers().await;
    let evil =
        "A cat\x1b]0;pwned\x07 \x1b]52;c;SGVsbG8=\x07\x1b[2J\x07\u{9b}31m sits.\nCONFIDENCE: 0.9";
    s.push_reply(Reply::text(evil));
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &s.url(), &t.url());
    let logs = c.paths.logs.clone();
    let mut h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(1),
        },
    )
    .unwrap();
    let ev = wait_for(&mut h, 10, |e| {
        matches!(e, Event::StudentAnswer { .. }).then(|| e.clone())
    })
    .await;
    let line = gemmaedge_tui::cli::headless::describe(&ev).unwrap();
    assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
    assert!(line.contains("A cat"), "{line}");
    assert!(
        !line.contains("pwned") && !line.contains("SGVsbG8"),
        "OSC payloads are dropped: {line}"
    );
    wait_for(&mut h, 10, |e| {
        matches!(e, Event::Stopped { .. }).then_some(())
    })
    .await;
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw controls in the log"
    );
    assert!(
        text.contains("\\u001b]0;pwned"),
        "the log keeps the text, escaped"
    );
}

#[tokio::test]
async fn bad_files_in_the_folder_are_skipped_with_a_warning() {
    let (s, t) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    let frames = dir.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(frames.join("a-empty.jpg"), b"").unwrap();
    std::fs::write(frames.join("b-text.png"), b"this is not a png").unwrap();
    std::fs::copy(photos().join("coffee.png"), frames.join("c-coffee.png")).unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.source.path = frames.to_string_lossy().into_owned();
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let w = wait_for(&mut h, 10, |e| match e {
        Event::Warning { message }
            if message.contains("a-empty.jpg") || message.contains("b-text.png") =>
        {
            Some(message.clone())
        }
        _ => None,
    })
    .await;
    assert!(w.contains("skipping"), "{w}");
    let label = wait_for(&mut h, 10, |e| match e {
        Event::FrameTaken { label, .. } => Some(label.clone()),
        _ => None,
    })
    .await;
    assert_eq!(label, "c-coffee.png");
    shutdown(h).await;
}

#[tokio::test]
async fn log_not_writable_warns_and_monitoring_continues() {
    let (s, t) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    c.paths.logs = blocker.join("logs");
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let w = wait_for(&mut h, 10, |e| match e {
        Event::Warning { message } if message.contains("not writable") => Some(message.clone()),
        _ => None,
    })
    .await;
    assert!(w.contains("monitoring continues"));
    wait_for(&mut h, 10, answered).await;
    wait_for(&mut h, 10, answered).await;
    shutdown(h).await;
}

#[tokio::test]
async fn bearer_key_and_headers_are_sent_but_never_logged() {
    let (s, t) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.student.api_key = Some("sekrit-key-123".into());
    c.student
        .headers
        .insert("X-Proxy-Token".into(), "hdr-secret-456".into());
    let logs = c.paths.logs.clone();
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(1),
        },
    )
    .unwrap();
    let mut h = h;
    wait_for(&mut h, 10, |e| {
        matches!(e, Event::Stopped { .. }).then_some(())
    })
    .await;
    let req = &s.chat_requests()[0];
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("authorization").as_deref(),
        Some("Bearer sekrit-key-123")
    );
    assert_eq!(header("x-proxy-token").as_deref(), Some("hdr-secret-456"));
    // Every file the engine wrote (the session log, the history store): bytes, not text.
    for e in std::fs::read_dir(&logs).unwrap().flatten() {
        if e.path().is_file() {
            let bytes = std::fs::read(e.path()).unwrap();
            for secret in [&b"sekrit"[..], b"hdr-secret"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret),
                    "{} holds a secret",
                    e.path().display()
                );
            }
        }
    }
}

#[tokio::test]
async fn privacy_save_frames_off_keeps_frames_off_disk() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("Unclear.\nCONFIDENCE: 0.1"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.privacy.save_frames = false;
    let logs = c.paths.logs.clone();
    let mut h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(2),
        },
    )
    .unwrap();
    let path = wait_for(&mut h, 10, |e| match e {
        Event::Escalated { frame_path, .. } => Some(frame_path.clone()),
        _ => None,
    })
    .await;
    assert!(path.is_none());
    wait_for(&mut h, 10, |e| {
        matches!(e, Event::Stopped { .. }).then_some(())
    })
    .await;
    assert!(!logs.join("frames").exists());
    // Frames went to the teacher only because they were escalated.
    assert_eq!(t.chat_requests().len(), 2);
}

#[tokio::test]
async fn an_unwritable_calibration_file_is_reported_once_not_per_verdict() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("Unclear.\nCONFIDENCE: 0.1"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    c.paths.logs = blocker.join("logs");
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let mut verdicts = 0;
    let mut warnings = 0;
    while verdicts < 4 {
        match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
            Ok(Some(Event::TeacherVerdict { .. })) => verdicts += 1,
            Ok(Some(Event::Warning { message })) if message.contains("cannot save calibration") => {
                warnings += 1
            }
            Ok(Some(_)) => {}
            other => panic!("no verdicts: {other:?}"),
        }
    }
    assert_eq!(warnings, 1, "reported once, monitoring continues");
    shutdown(h).await;
}

#[tokio::test]
async fn a_streamed_answer_cut_by_the_timeout_keeps_the_text_that_arrived() {
    use gemmaedge_tui::model::{ChatRequest, ModelClient, Sampling};
    let s = OllamaTestServer::start(&[STUDENT]).await;
    // 4 characters every 300 ms: about 12 characters in the 1 s the call may take.
    s.push_reply(
        Reply::text("A pan on the stove. Smoke rises from it.\nCONFIDENCE: 0.9")
            .delay_per_token(Duration::from_millis(300)),
    );
    let host = gemmaedge_tui::config::HostConfig {
        host: s.url(),
        model: STUDENT.into(),
        timeout_secs: 1,
        ..Default::default()
    };
    let client = ModelClient::new(&host, Role::Student).unwrap();
    let req = ChatRequest {
        system: None,
        user: "Describe the frame.".into(),
        images: vec![],
        format: None,
        stream: true,
        sampling: Sampling::default(),
    };
    let mut streamed = String::new();
    let reply = client
        .chat(&req, &mut |t: &str| streamed.push_str(t))
        .await
        .expect("what arrived is an answer, marked as cut");
    assert_eq!(reply.timed_out, Some(1));
    assert!(!streamed.is_empty() && streamed.len() < 40, "{streamed:?}");
    assert!(
        "A pan on the stove. Smoke rises from it.".starts_with(&streamed),
        "{streamed:?}"
    );
    assert_eq!(
        reply.content,
        format!("{streamed}\n[answer cut by the 1 s timeout]")
    );
    // Nothing arrived at all: still a timeout.
    s.push_reply(Reply::Hang);
    let e = client.chat(&req, &mut |_: &str| {}).await.unwrap_err();
    assert!(e.to_string().contains("within 1 s"), "{e}");
}
