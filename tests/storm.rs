//! Escalation storms: a weak student whose every answer escalates floods the teacher
//! queue. The engine warns once with the likely cause, dropped frames are in the session
//! log with their reasons, and `calibrate` counts them per trigger.

mod support;

use gemmaedge_tui::engine::{self, EngineOptions};
use gemmaedge_tui::event::Event;
use std::process::Command;
use std::time::Duration;
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, STUDENT, TEACHER};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

#[tokio::test]
async fn a_storm_of_low_confidence_answers_is_warned_about_and_its_drops_counted() {
    let s = OllamaTestServer::start(&[STUDENT]).await;
    let t = OllamaTestServer::start(&[TEACHER]).await;
    s.set_handler(|_| Reply::text("A blurry shape.\nCONFIDENCE: 0.2"));
    // A slow teacher: the queue (2 places) fills and frames are dropped.
    t.set_handler(|_| {
        Reply::delayed(
            Duration::from_millis(400),
            Reply::text(r#"{"agrees": true, "safety_relevant": false, "summary": "A shape.", "missed": [], "wrong": []}"#),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = engine_config(dir.path(), &s.url(), &t.url(), 5);
    c.policy.teacher_queue = 2;
    c.privacy.save_frames = false;
    let logs = c.paths.logs.clone();
    let mut h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(30),
        },
    )
    .unwrap();
    let mut events = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(ev) = h.events.recv().await {
            let stop = matches!(ev, Event::Stopped { .. });
            events.push(ev);
            if stop {
                break;
            }
        }
    })
    .await
    .expect("the engine stopped");
    let storms: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } if message.starts_with("escalation storm") => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(storms.len(), 1, "warned once: {storms:?}");
    assert!(storms[0].contains("100% of the answers"), "{}", storms[0]);
    assert!(
        storms[0].contains("policy.confidence_threshold = 0.55"),
        "{}",
        storms[0]
    );
    let dropped = events
        .iter()
        .filter(|e| matches!(e, Event::TeacherDropped { .. }))
        .count();
    assert!(dropped >= 5, "the queue overflowed: {dropped} dropped");

    // The session log has every drop with its reasons; calibrate counts them.
    let log = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    let in_log = text
        .lines()
        .filter(|l| l.contains("\"type\":\"teacher_dropped\"") && l.contains("low_confidence"))
        .count();
    assert_eq!(in_log, dropped);
    let out = Command::new(BIN)
        .args(["calibrate", "--from"])
        .arg(&log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "dropped from the full teacher queue: {dropped} frame(s), by trigger: {dropped} low confidence"
        )),
        "{stdout}"
    );
}
