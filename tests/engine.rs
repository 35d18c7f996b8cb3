//! The engine end to end against the Ollama test server (real HTTP, real NDJSON), with
//! the folder source on the shipped photos.

mod support;

use gemmaedge_tui::config::{Config, SourceKind};
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, Health, Role};
use gemmaedge_tui::policy::Reason;
use std::path::Path;
use std::time::Duration;
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, photos, STUDENT, TEACHER};

fn config(dir: &Path, student: &str, teacher: &str) -> Config {
    engine_config(dir, student, teacher, 10)
}

fn verdict_json(agrees: bool) -> String {
    serde_json::json!({
        "agrees": agrees, "safety_relevant": false, "summary": "A scene.",
        "missed": ["spoon"], "wrong": []
    })
    .to_string()
}

/// Collect events until the engine stops (or the timeout passes).
async fn run_to_end(mut h: EngineHandle, timeout: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(ev)) => {
                let stop = matches!(ev, Event::Stopped { .. });
                events.push(ev);
                if stop {
                    break;
                }
            }
            Ok(None) => break,
            Err(_) => panic!("engine did not stop in time; events: {events:#?}"),
        }
    }
    let _ = h.task.await;
    events
}

fn answers(events: &[Event]) -> Vec<(u64, String, Option<f32>, Vec<Reason>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::StudentAnswer {
                seq,
                answer,
                confidence,
                reasons,
                ..
            } => Some((*seq, answer.clone(), *confidence, reasons.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn student_gets_skill_as_system_prompt_and_a_small_jpeg() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.frame.max_side = 256;
    std::fs::create_dir_all(&c.paths.skills).unwrap();
    std::fs::write(c.skill_path(), "  SKILL-MARKER: describe what you see.\n").unwrap();
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(2),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    assert_eq!(answers(&events).len(), 2);

    let reqs = student.chat_requests();
    assert!(reqs.len() >= 2);
    for r in &reqs {
        assert_eq!(r.model, STUDENT);
        assert_eq!(r.messages[0].role, "system");
        // The skill's instructions, then the fixed output contract.
        assert_eq!(
            r.messages[0].content,
            gemmaedge_tui::roles::output_contract::compose("SKILL-MARKER: describe what you see.")
        );
        assert!(r.messages[0]
            .content
            .starts_with("SKILL-MARKER: describe what you see.\n\n"));
        assert_eq!(r.think, Some(false), "thinking must be off for the student");
        assert!(r.stream, "the student's answer is streamed");
        let user = r.messages.last().unwrap();
        assert!(user.content.contains("CONFIDENCE"));
        let imgs = user.decoded_images();
        assert_eq!(imgs.len(), 1);
        assert_eq!(&imgs[0][..2], &[0xFF, 0xD8], "a JPEG");
        let img = image::load_from_memory(&imgs[0]).unwrap();
        assert!(
            img.width().max(img.height()) <= 256,
            "{}x{}",
            img.width(),
            img.height()
        );
    }
    // Nothing escalated (default reply is confident and calm): the teacher was not called.
    assert!(teacher.chat_requests().is_empty());
}

#[tokio::test]
async fn policy_reasons_drive_exactly_the_right_teacher_calls() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    for r in [
        "A desk with a laptop.\nCONFIDENCE: 0.9",
        "A blurry shape.\nCONFIDENCE: 0.3",
        "A room with a chair.",
        "Smoke is rising near the stove.\nCONFIDENCE: 0.9",
        "An office. No smoke or fire visible.\nCONFIDENCE: 0.9",
        "A man holds a firearm case.\nConfidence: 85%",
    ] {
        student.push_reply(Reply::text(r));
    }
    teacher.set_handler(|_| Reply::text(verdict_json(false)));
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student.url(), &teacher.url());
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(6),
        },
    )
    .unwrap();
    // Give the teacher time to review before the engine stops.
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let a = answers(&events);
    assert_eq!(a.len(), 6);
    assert!(a[0].3.is_empty());
    assert_eq!(
        a[1].3,
        vec![Reason::LowConfidence {
            confidence: 0.3,
            threshold: 0.55
        }]
    );
    assert_eq!(a[2].3, vec![Reason::NoConfidence]);
    assert_eq!(
        a[3].3,
        vec![Reason::Safety {
            keyword: "smoke".into()
        }]
    );
    assert!(a[4].3.is_empty(), "negated safety words: {:?}", a[4].3);
    assert!(a[5].3.is_empty(), "firearm is not fire: {:?}", a[5].3);
    assert_eq!(a[5].2, Some(0.85));

    let escalated: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Escalated { seq, .. } => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(escalated, vec![a[1].0, a[2].0, a[3].0]);
    assert!(teacher.wait_for_chats(3, Duration::from_secs(5)).await);
    let treqs = teacher.chat_requests();
    assert_eq!(treqs.len(), 3);
    for r in &treqs {
        assert_eq!(r.model, TEACHER);
        assert!(
            r.format.is_some(),
            "the verdict is asked for with a JSON schema"
        );
        assert_eq!(r.messages.last().unwrap().decoded_images().len(), 1);
    }
    assert!(treqs[2]
        .messages
        .last()
        .unwrap()
        .content
        .contains("safety keyword: smoke"));
}

#[tokio::test]
async fn teacher_verdict_arrives_as_an_event() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| Reply::text("Something.\nCONFIDENCE: 0.1"));
    teacher.set_handler(|_| Reply::text(verdict_json(false)));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.source.fps = 2.0;
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut verdict = None;
    while verdict.is_none() {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(Event::TeacherVerdict {
                seq, verdict: v, ..
            })) => verdict = Some((seq, v)),
            Ok(Some(_)) => {}
            other => panic!("no verdict: {other:?}"),
        }
    }
    let (_, v) = verdict.unwrap();
    assert_eq!(v.agrees, Some(false));
    assert_eq!(v.missed, vec!["spoon"]);
    h.commands.send(Command::Shutdown).unwrap();
    let rest = run_to_end(h, Duration::from_secs(5)).await;
    assert!(matches!(rest.last(), Some(Event::Stopped { .. })));
}

#[tokio::test]
async fn audit_every_third_quiet_frame() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| Reply::text("A calm office.\nCONFIDENCE: 0.9"));
    teacher.set_handler(|_| Reply::text(verdict_json(true)));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.policy.audit_every = 3;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(9),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let a = answers(&events);
    let audited: Vec<usize> = a
        .iter()
        .enumerate()
        .filter(|(_, x)| x.3 == vec![Reason::Audit])
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(audited, vec![3, 6, 9]);
}

#[tokio::test]
async fn forced_escalation_of_the_frame_being_answered() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| {
        Reply::Delayed(
            Duration::from_millis(400),
            Box::new(Reply::text("A calm office.\nCONFIDENCE: 0.9")),
        )
    });
    teacher.set_handler(|_| Reply::text(verdict_json(true)));
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student.url(), &teacher.url());
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    // Wait until the student takes a frame, then press `e`.
    let forced_seq = loop {
        match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
            Ok(Some(Event::FrameTaken { seq, .. })) => break seq,
            Ok(Some(_)) => {}
            other => panic!("no frame: {other:?}"),
        }
    };
    h.commands.send(Command::ForceEscalate).unwrap();
    let mut got = None;
    while got.is_none() {
        match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
            Ok(Some(Event::Escalated { seq, reasons, .. })) => got = Some((seq, reasons)),
            Ok(Some(_)) => {}
            other => panic!("no escalation: {other:?}"),
        }
    }
    let (seq, reasons) = got.unwrap();
    assert_eq!(seq, forced_seq);
    assert_eq!(reasons, vec![Reason::Forced]);
    assert!(teacher.wait_for_chats(1, Duration::from_secs(5)).await);
    h.commands.send(Command::Shutdown).unwrap();
    run_to_end(h, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_stale_frame_is_never_answered() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| {
        Reply::Delayed(
            Duration::from_millis(150),
            Box::new(Reply::text("A calm office.\nCONFIDENCE: 0.9")),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.source.fps = 100.0;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(5),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let taken: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            Event::FrameTaken {
                seq, superseded, ..
            } => Some((*seq, *superseded)),
            _ => None,
        })
        .collect();
    assert!(taken.len() >= 5);
    // Strictly newer each time, and frames captured while the student was busy were
    // skipped over (superseded), not queued up.
    for w in taken.windows(2) {
        assert!(w[1].0 > w[0].0);
        assert_eq!(
            w[1].0 - w[0].0 - 1,
            w[1].1,
            "every skipped frame is accounted for"
        );
    }
    let skipped: u64 = taken.iter().skip(1).map(|t| t.1).sum();
    assert!(
        skipped >= 4,
        "at 100 fps and 150 ms per answer frames must be skipped: {taken:?}"
    );
    // Answers are about the frame taken just before them.
    let a = answers(&events);
    for (seq, ..) in &a {
        assert!(taken.iter().any(|t| t.0 == *seq));
    }
}

#[tokio::test]
async fn session_log_holds_one_line_per_event() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.push_reply(Reply::text("A blurry shape.\nCONFIDENCE: 0.2"));
    teacher.set_handler(|_| Reply::text(verdict_json(false)));
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student.url(), &teacher.url());
    let logs = c.paths.logs.clone();
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(3),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let logged: Vec<&Event> = events.iter().filter(|e| e.is_logged()).collect();
    let file = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("session-"))
        .expect("a session log")
        .path();
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), logged.len());
    for (line, ev) in lines.iter().zip(&logged) {
        let ev_json = serde_json::to_value(ev).unwrap();
        assert_eq!(line["type"], ev_json["type"]);
    }
    assert!(!text.contains("\"student_token\""));
    assert!(!text.contains("/9j/"), "no image bytes in the log");
    // The escalated frame's JPEG was saved with its sequence number.
    let saved: Vec<_> = std::fs::read_dir(logs.join("frames"))
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(saved.len(), 1);
}

#[tokio::test]
async fn split_utf8_and_thinking_are_handled() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let answer = "Un café fumant, 20°C, et un chat 🐈 sur la table.\nCONFIDENCE: 0.8";
    student.push_reply(Reply::Full {
        content: answer.into(),
        thinking: Some("Let me look at the image carefully…".into()),
        token_chars: 7,
        delay_per_token: Duration::ZERO,
        first_byte_delay: Duration::ZERO,
        split_utf8: true,
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    // Thinking on: the server streams thinking chunks first; they are not the answer.
    c.student.think = true;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(1),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let a = answers(&events);
    assert_eq!(a[0].1, answer);
    assert_eq!(a[0].2, Some(0.8));
    let tokens: String = events
        .iter()
        .filter_map(|e| match e {
            Event::StudentToken { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        tokens, answer,
        "tokens carry the answer only, never the thinking"
    );
}

#[tokio::test]
async fn offline_servers_do_not_stop_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on these ports.
    let c = config(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9");
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let mut offline = std::collections::HashSet::new();
    while offline.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), h.events.recv()).await {
            Ok(Some(Event::Health {
                role,
                health: Health::Offline { reason, hint },
            })) => {
                assert!(reason.contains("connection refused"), "{reason}");
                if role == Role::Student {
                    assert!(hint.contains("ollama serve"), "{hint}");
                } else {
                    assert!(hint.contains("OLLAMA_HOST=0.0.0.0"), "{hint}");
                }
                offline.insert(role);
            }
            Ok(Some(_)) => {}
            other => panic!("no offline status: {other:?}"),
        }
    }
    h.commands.send(Command::Shutdown).unwrap();
    let rest = run_to_end(h, Duration::from_secs(5)).await;
    assert!(matches!(rest.last(), Some(Event::Stopped { .. })));
}

#[tokio::test]
async fn unchanged_frames_are_not_sent_but_forced_escalation_still_works() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    teacher.set_handler(|_| Reply::text(verdict_json(true)));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    // One image repeated: a webcam watching an empty room.
    c.source.kind = SourceKind::File;
    c.source.path = photos().join("coffee.png").to_string_lossy().into_owned();
    c.source.fps = 20.0;
    c.source.min_change = 0.05;
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let mut unchanged = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while unchanged < 5 {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(Event::FrameUnchanged { change, .. })) => {
                assert!(change < 0.05);
                unchanged += 1;
            }
            Ok(Some(_)) => {}
            other => panic!("no unchanged frames: {other:?}"),
        }
    }
    assert_eq!(
        student.chat_requests().len(),
        1,
        "only the first frame was sent"
    );
    h.commands.send(Command::ForceEscalate).unwrap();
    assert!(teacher.wait_for_chats(1, Duration::from_secs(5)).await);
    h.commands.send(Command::Shutdown).unwrap();
    run_to_end(h, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn measured_confidence_from_logprobs_drives_the_policy_when_asked() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    teacher.set_handler(|_| Reply::text(verdict_json(true)));
    // The model says it is certain; its tokens say otherwise (p = 0.3 each).
    student.set_handler(|_| Reply::text("A shape on a table.\nCONFIDENCE: 1.0"));
    student.set_logprob(Some(0.3f64.ln()));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.policy.confidence = gemmaedge_tui::config::ConfidenceMode::Measured;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(1),
        },
    )
    .unwrap();
    let events = run_to_end(h, Duration::from_secs(20)).await;
    let (measured, reasons) = events
        .iter()
        .find_map(|e| match e {
            Event::StudentAnswer {
                measured_confidence,
                confidence,
                reasons,
                ..
            } => {
                assert_eq!(*confidence, Some(1.0));
                Some((*measured_confidence, reasons.clone()))
            }
            _ => None,
        })
        .unwrap();
    assert!((measured.unwrap() - 0.3).abs() < 1e-4, "{measured:?}");
    assert!(
        matches!(reasons[0], Reason::LowConfidence { .. }),
        "{reasons:?}"
    );
    assert_eq!(student.chat_requests()[0].raw["logprobs"], true);
    // The verdict went into calibration with both confidences.
    let store =
        gemmaedge_tui::policy::calibration::CalibrationStore::load(&dir.path().join("logs"));
    let sample = &store.skills.values().next().unwrap().samples[0];
    assert_eq!(sample.confidence, Some(1.0));
    assert!(sample.measured.is_some());
}

#[tokio::test]
async fn servers_without_logprobs_fall_back_to_the_stated_confidence() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| Reply::text("A desk.\nCONFIDENCE: 0.9"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.policy.confidence = gemmaedge_tui::config::ConfidenceMode::Min;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(1),
        },
    )
    .unwrap();
    let a = answers(&run_to_end(h, Duration::from_secs(20)).await);
    assert!(a[0].3.is_empty(), "stated 0.9 is used: {:?}", a[0].3);
}

#[tokio::test]
async fn the_device_is_named_and_its_teacher_share_is_limited() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| Reply::text("Unclear.\nCONFIDENCE: 0.1"));
    teacher.set_handler(|_| Reply::text(verdict_json(true)));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.device.name = "garage-pi".into();
    c.teacher.max_per_minute = 2;
    let logs = c.paths.logs.clone();
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let mut limited = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        if let Event::Warning { message } = ev {
            limited |= message.contains("teacher limit 2/min");
        }
    }
    assert!(limited, "the limit is reported");
    assert_eq!(
        teacher.chat_requests().len(),
        2,
        "two calls in the first minute"
    );
    assert!(teacher.chat_requests()[0]
        .messages
        .last()
        .unwrap()
        .content
        .starts_with("Frame from device garage-pi."));
    h.commands.send(Command::Shutdown).unwrap();
    run_to_end(h, Duration::from_secs(5)).await;
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["device"] == "garage-pi"));
}
