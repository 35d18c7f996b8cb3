//! The learning loop from a recorded session: `learn --only-disagreements` picks exactly
//! the frames the teacher disagreed on, the next eval includes them, and `calibrate`
//! reads the same log.

mod support;

use gemmaedge_tui::config::{Config, SourceKind};
use gemmaedge_tui::engine::{self, EngineOptions};
use gemmaedge_tui::event::Event;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use support::ollama_server::{OllamaTestServer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

#[tokio::test]
async fn learn_only_disagreements_from_a_recorded_log_then_eval_and_calibrate() {
    let student = OllamaTestServer::start(&["gemma4:e2b"]).await;
    let teacher = OllamaTestServer::start(&["gemma4:26b"]).await;
    student.set_handler(|_| Reply::text("A blurry thing.\nCONFIDENCE: 0.3"));
    // The teacher disagrees on every other review.
    let n = Arc::new(AtomicU64::new(0));
    teacher.set_handler(move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst);
        Reply::text(if i % 2 == 0 {
            r#"{"agrees":false,"safety_relevant":false,"summary":"A cat on a sofa.","missed":["cat"],"wrong":["blurry thing"]}"#
        } else {
            r#"{"agrees":true,"safety_relevant":false,"summary":"A cat sleeping on a sofa.","missed":[],"wrong":[]}"#
        })
    });
    let dir = tempfile::tempdir().unwrap();
    let eval = dir.path().join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"hand\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n",
    )
    .unwrap();
    let mut c = Config::default();
    c.student.host = student.url();
    c.teacher.host = teacher.url();
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = 20.0;
    c.source.min_change = 0.0;
    c.paths.logs = dir.path().join("logs");
    c.paths.eval = eval.clone();
    c.paths.skills = dir.path().join("skills");
    let h = engine::start(
        c.clone(),
        EngineOptions {
            max_frames: Some(4),
        },
    )
    .unwrap();
    let mut h = h;
    let mut verdicts = Vec::new();
    while let Some(ev) = h.events.recv().await {
        match ev {
            Event::TeacherVerdict { seq, verdict, .. } => verdicts.push((seq, verdict.agrees)),
            Event::Stopped { .. } => break,
            _ => {}
        }
    }
    assert_eq!(verdicts.len(), 4);
    let disagreed: Vec<u64> = verdicts
        .iter()
        .filter(|v| v.1 == Some(false))
        .map(|v| v.0)
        .collect();
    assert_eq!(disagreed.len(), 2);

    let log = std::fs::read_dir(&c.paths.logs)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[student]\nhost = \"{}\"\n[paths]\neval = \"{}\"\nlogs = \"{}\"\nskills = \"{}\"\n",
            student.url(),
            eval.display(),
            c.paths.logs.display(),
            c.paths.skills.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["learn", "--only-disagreements", "--from"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added 2 case(s)"));

    let learned = std::fs::read_to_string(eval.join("learned.toml")).unwrap();
    let ids: Vec<String> = learned
        .lines()
        .filter_map(|l| l.strip_prefix("id = "))
        .map(|s| s.trim_matches('"').to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    for (id, seq) in ids.iter().zip(&disagreed) {
        assert!(id.ends_with(&format!("-{seq:06}")), "{id} for #{seq}");
    }
    assert!(learned.contains("\"cat\""));
    assert!(learned.contains("forbid = [\"blurry thing\"]"), "{learned}");
    // The hand-written file is untouched, and the next eval includes the learned cases.
    let set = gemmaedge_tui::eval::cases::load_eval_set(&eval).unwrap();
    assert_eq!(set.cases.len(), 3);
    for id in &ids {
        let case = set.cases.iter().find(|c| &c.id == id).unwrap();
        match &case.input {
            gemmaedge_tui::eval::cases::CaseInput::Image(p) => assert!(p.is_file()),
            other => panic!("{other:?}"),
        }
    }
    // Learning everything now adds only the two agreements: the ids already there are skipped.
    let again = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["learn", "--from"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).contains("added 2 case(s)"));
    assert_eq!(
        gemmaedge_tui::eval::cases::load_eval_set(&eval)
            .unwrap()
            .cases
            .len(),
        5
    );

    let cal = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["calibrate", "--from"])
        .arg(&log)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&cal.stdout);
    assert_eq!(cal.status.code(), Some(0));
    // All four answers said 0.3: one bin with 4 reviews, half agreed.
    let bin = text.lines().find(|l| l.starts_with("0.3-0.4")).unwrap();
    assert!(bin.contains(" 4 ") && bin.contains("50%"), "{text}");
    assert!(text.contains("low confidence"), "{text}");
}

/// A recorded session of `frames` reviewed frames (the teacher disagrees on each), with
/// its frames saved: (config file for the binary, the log, the eval dir).
async fn recorded_session(
    dir: &Path,
    frames: u64,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let student = OllamaTestServer::start(&["gemma4:e2b"]).await;
    let teacher = OllamaTestServer::start(&["gemma4:26b"]).await;
    student.set_handler(|_| Reply::text("A blurry thing.\nCONFIDENCE: 0.3"));
    teacher.set_handler(|_| {
        Reply::text(
            r#"{"agrees":false,"safety_relevant":false,"summary":"A cat on a sofa.","missed":["cat"],"wrong":["blurry thing"]}"#,
        )
    });
    let eval = dir.join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    let mut c = Config::default();
    c.student.host = student.url();
    c.teacher.host = teacher.url();
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = 20.0;
    c.source.min_change = 0.0;
    c.paths.logs = dir.join("logs");
    c.paths.eval = eval.clone();
    c.paths.skills = dir.join("skills");
    let mut h = engine::start(
        c.clone(),
        EngineOptions {
            max_frames: Some(frames),
        },
    )
    .unwrap();
    let mut verdicts = 0;
    while let Some(ev) = h.events.recv().await {
        match ev {
            Event::TeacherVerdict { .. } => verdicts += 1,
            Event::Stopped { .. } => break,
            _ => {}
        }
    }
    assert_eq!(verdicts, frames);
    let log = std::fs::read_dir(&c.paths.logs)
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[paths]\neval = \"{}\"\nlogs = \"{}\"\nskills = \"{}\"\n",
            eval.display(),
            c.paths.logs.display(),
            c.paths.skills.display()
        ),
    )
    .unwrap();
    (cfg, log, eval)
}

/// The frame paths the log's answers name, in order.
fn frame_paths(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["frame_path"].as_str().map(str::to_string))
        .collect()
}

fn learn(cfg: &Path, log: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .args(["learn", "--from"])
        .arg(log)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn learn_that_adds_some_frames_exits_0_and_says_what_it_skipped_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, log, eval) = recorded_session(dir.path(), 4).await;
    let frames = frame_paths(&log);
    assert_eq!(frames.len(), 4, "every reviewed frame was saved");
    // One saved frame is gone since (skipped); another is named outside the frames
    // directory (refused); two are fine.
    std::fs::remove_file(&frames[0]).unwrap();
    let outside = dir.path().join("elsewhere.jpg");
    std::fs::copy(&frames[1], &outside).unwrap();
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace(&frames[1], &outside.display().to_string());
    std::fs::write(&log, text).unwrap();

    let (code, out, err) = learn(&cfg, &log);
    assert_eq!(code, Some(0), "some were added: exit 0\n{out}\n{err}");
    assert!(
        out.contains("added 2 case(s)")
            && out.contains("1 reviewed frame(s) skipped: no saved frame or no structured verdict")
            && out.contains("1 refused"),
        "{out}"
    );
    assert!(err.contains("refused session"), "why it was refused: {err}");
    assert!(
        err.contains("is not in the logs' frames directory"),
        "{err}"
    );
    assert_eq!(
        gemmaedge_tui::eval::cases::load_eval_set(&eval)
            .unwrap()
            .cases
            .len(),
        2
    );

    // A log whose every frame is refused or gone: nothing could be added, exit 2.
    let dir2 = tempfile::tempdir().unwrap();
    let (cfg2, log2, _) = recorded_session(dir2.path(), 2).await;
    let frames2 = frame_paths(&log2);
    std::fs::remove_file(&frames2[0]).unwrap();
    let outside2 = dir2.path().join("elsewhere.jpg");
    std::fs::copy(&frames2[1], &outside2).unwrap();
    let text = std::fs::read_to_string(&log2)
        .unwrap()
        .replace(&frames2[1], &outside2.display().to_string());
    std::fs::write(&log2, text).unwrap();
    let (code, out, err) = learn(&cfg2, &log2);
    assert_eq!(code, Some(2), "none could be added\n{out}\n{err}");
    assert!(out.contains("added 0 case(s)"), "{out}");
    assert!(out.ends_with(": nothing could be added\n"), "{out}");
}
