//! Monitoring during upskill: an upskill run's wall time with and without live traffic
//! on the shared student, and the largest gap between live answers during the run.
//!
//! ```text
//! cargo bench --bench upskill_live [-- --student-ms 300 --cases 16 --candidates 2 --fps 2 --share 1]
//! ```
//!
//! The engine's hub (library, production client) against an Ollama test server whose
//! student runs one call at a time (a Pi): every call, live or eval, holds the one
//! "model" for `student-ms`. Live frames come at `fps` from the sample photos; the eval
//! set is `cases` text cases. Variants: capture paused (no live traffic), and live
//! traffic with `upskill.calls_between_frames = share`.

#[path = "../tests/support/ollama_server.rs"]
mod ollama_server;

use gemmaedge_tui::config::{Config, SourceKind};
use gemmaedge_tui::engine::EngineOptions;
use gemmaedge_tui::event::Event;
use gemmaedge_tui::service::hub::Hub;
use gemmaedge_tui::service::protocol::{ClientMsg, ServerMsg};
use gemmaedge_tui::upskill::pipeline::UpskillEvent;
use ollama_server::{OllamaTestServer, Reply};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

struct Result {
    wall: Duration,
    live_answers: usize,
    largest_gap: Option<Duration>,
}

async fn one_run(
    student_ms: u64,
    cases: usize,
    candidates: usize,
    fps: f64,
    share: usize,
    live: bool,
) -> Result {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    // One call at a time on the student: a lock held for the call's duration.
    let model = Arc::new(Mutex::new(()));
    let m = model.clone();
    student.set_handler(move |req| {
        let _one_at_a_time = m.lock().unwrap();
        std::thread::sleep(Duration::from_millis(student_ms));
        if req.all_images().is_empty() {
            Reply::text("A mug on a desk.\nCONFIDENCE: 0.8")
        } else {
            Reply::text("A kitchen with a kettle.\nCONFIDENCE: 0.9")
        }
    });
    teacher.set_handler(move |_| {
        let prompts: Vec<String> = (0..candidates)
            .map(|i| format!("Describe the scene, variant {i}; name every mug."))
            .collect();
        Reply::text(serde_json::json!({ "prompts": prompts }).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    let eval = dir.path().join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    let mut text = String::new();
    for i in 0..cases {
        let split = if i % 4 == 3 { "holdout" } else { "train" };
        text.push_str(&format!(
            "[[case]]\nid = \"c{i}\"\ntext = \"Scene {i}: a mug on a desk.\"\nexpect = [\"mug\"]\nsafety = false\nsplit = \"{split}\"\n\n"
        ));
    }
    std::fs::write(eval.join("cases.toml"), text).unwrap();
    std::fs::create_dir_all(dir.path().join("skills")).unwrap();
    std::fs::write(dir.path().join("skills/skill.txt"), "Describe the scene.").unwrap();
    let mut c = Config::default();
    c.student.host = student.url();
    c.student.model = STUDENT.into();
    c.teacher.host = teacher.url();
    c.teacher.model = TEACHER.into();
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = fps;
    c.source.min_change = 0.0;
    c.policy.audit_every = 0;
    c.paths.logs = dir.path().join("logs");
    c.paths.skills = dir.path().join("skills");
    c.paths.eval = eval;
    c.upskill.candidates = candidates;
    c.upskill.bootstrap_samples = 200;
    c.upskill.calls_between_frames = share;
    let (hub, _task) = Hub::start(c, EngineOptions::default()).unwrap();
    let mut link = hub.connect("bench");
    if !live {
        link.send(ClientMsg::SetPaused { paused: true });
    }
    // Let the engine settle (health, warm-up) before the run.
    tokio::time::sleep(Duration::from_secs(2)).await;
    link.send(ClientMsg::UpskillStart {
        candidates: Some(candidates),
        auto_apply: false,
    });
    let mut started = None;
    let mut answers = Vec::new();
    let ended = loop {
        let batch = link.recv().await.expect("hub alive");
        let mut end = None;
        for m in batch {
            match m {
                ServerMsg::Upskill(UpskillEvent::Started { .. }) => started = Some(Instant::now()),
                ServerMsg::Upskill(
                    UpskillEvent::Finished(_) | UpskillEvent::Failed(_) | UpskillEvent::Cancelled,
                ) => end = Some(Instant::now()),
                ServerMsg::UpskillRefused(why) => panic!("{why}"),
                ServerMsg::Event(Event::StudentAnswer { .. }) if started.is_some() => {
                    answers.push(Instant::now())
                }
                _ => {}
            }
        }
        if let Some(e) = end {
            break e;
        }
    };
    let started = started.unwrap();
    let mut gaps: Vec<Duration> = answers.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(first) = answers.first() {
        gaps.push(*first - started);
        gaps.push(ended - *answers.last().unwrap());
    }
    hub.shutdown().await;
    Result {
        wall: ended - started,
        live_answers: answers.len(),
        largest_gap: gaps.into_iter().max(),
    }
}

fn main() {
    let student_ms: u64 = arg("--student-ms", "300").parse().unwrap();
    let cases: usize = arg("--cases", "16").parse().unwrap();
    let candidates: usize = arg("--candidates", "2").parse().unwrap();
    let fps: f64 = arg("--fps", "2").parse().unwrap();
    let share: usize = arg("--share", "1").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let calls = cases * (candidates + 1);
    println!(
        "upskill with live traffic: student {student_ms} ms one call at a time, {cases} cases × {} rows = {calls} eval calls, live at {fps} fps, share {share}",
        candidates + 1
    );
    println!(
        "variant | run wall time | live answers during the run | largest gap between live answers"
    );
    for (name, live) in [("no live traffic", false), ("live traffic", true)] {
        let r = rt.block_on(one_run(student_ms, cases, candidates, fps, share, live));
        println!(
            "{name} | {:.1} s | {} | {}",
            r.wall.as_secs_f64(),
            r.live_answers,
            r.largest_gap
                .map_or("—".into(), |g| format!("{:.2} s", g.as_secs_f64()))
        );
    }
    println!(
        "promised: a live answer at least every max(1/fps, (share + 1) × call) = {:.2} s",
        (1.0 / fps).max((share as f64 + 1.0) * student_ms as f64 / 1000.0)
    );
}
