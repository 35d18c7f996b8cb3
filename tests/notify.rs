//! Alerts: a teacher-confirmed safety frame reaches a local webhook receiver and a
//! command, rate-limited; the student's word alone never alerts.

mod support;

use gemmaedge_tui::config::{Config, SourceKind};
use gemmaedge_tui::engine::{self, EngineOptions};
use gemmaedge_tui::event::{Command, Event};
use std::path::Path;
use std::time::Duration;
use support::ollama_server::{OllamaTestServer, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// A local HTTP receiver: every POST body goes to the channel, answered with 200.
async fn receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/alerts", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len: usize = text[..i]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            let body = &buf[i + 4..i + 4 + len];
                            let _ = tx.send(serde_json::from_slice(body).unwrap());
                            let _ = sock
                                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                                .await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, rx)
}

fn config(dir: &Path, student: &str, teacher: &str) -> Config {
    let mut c = Config::default();
    c.student.host = student.into();
    c.teacher.host = teacher.into();
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = 20.0;
    c.source.min_change = 0.0;
    c.policy.audit_every = 0;
    c.paths.logs = dir.join("logs");
    c.paths.skills = dir.join("skills");
    c.device.name = "kitchen-pi".into();
    c
}

#[tokio::test]
async fn confirmed_safety_frames_alert_once_per_interval() {
    let student = OllamaTestServer::start(&["gemma4:e2b"]).await;
    let teacher = OllamaTestServer::start(&["gemma4:26b"]).await;
    student.set_handler(|_| Reply::text("Smoke near the stove.\nCONFIDENCE: 0.9"));
    teacher.set_handler(|_| {
        Reply::text(r#"{"agrees":false,"safety_relevant":true,"summary":"Smoke rises from a pan.","missed":["pan"],"wrong":[]}"#)
    });
    let (url, mut posts) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.notify.webhook = url;
    c.notify.min_interval_secs = 3600;
    let flag = dir.path().join("alert.txt");
    c.notify.command = format!(
        "printf '%s|%s' \"$GEMMAEDGE_DEVICE\" \"$GEMMAEDGE_SUMMARY\" > {}",
        flag.display()
    );
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let body = tokio::time::timeout(Duration::from_secs(10), posts.recv())
        .await
        .expect("an alert")
        .unwrap();
    assert_eq!(body["device"], "kitchen-pi");
    assert_eq!(body["summary"], "Smoke rises from a pan.");
    // Sent mid-answer (early escalation): the alert is the same as for any confirmed frame.
    assert_eq!(body["reasons"][0], "safety keyword (early): smoke");
    let frame = body["frame_path"].as_str().unwrap();
    assert!(
        Path::new(frame).is_file(),
        "the alert points at the saved frame"
    );
    // More safety verdicts arrive, but the interval holds them back.
    assert!(teacher.wait_for_chats(3, Duration::from_secs(10)).await);
    let mut notified = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        if let Event::Notified { via, .. } = ev {
            assert_eq!(via, vec!["webhook", "command"]);
            notified += 1;
        }
    }
    assert!(notified <= 1);
    assert!(posts.try_recv().is_err(), "rate-limited: one alert");
    assert_eq!(
        std::fs::read_to_string(&flag).unwrap(),
        "kitchen-pi|Smoke rises from a pan."
    );
    h.commands.send(Command::Shutdown).unwrap();
    let _ = h.task.await;
}

#[tokio::test]
async fn the_students_word_alone_never_alerts() {
    let student = OllamaTestServer::start(&["gemma4:e2b"]).await;
    let teacher = OllamaTestServer::start(&["gemma4:26b"]).await;
    student.set_handler(|_| Reply::text("Fire! Smoke everywhere.\nCONFIDENCE: 0.9"));
    teacher.set_handler(|_| {
        Reply::text(r#"{"agrees":false,"safety_relevant":false,"summary":"A red lamp, no fire.","missed":[],"wrong":["fire"]}"#)
    });
    let (url, mut posts) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student.url(), &teacher.url());
    c.notify.webhook = url;
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(3),
        },
    )
    .unwrap();
    let _ = h.task.await;
    assert!(teacher.chat_requests().len() >= 3);
    assert!(
        posts.try_recv().is_err(),
        "no alert without the teacher's confirmation"
    );
}
