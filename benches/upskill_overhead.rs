//! Upskill overhead: the whole pipeline (`upskill::pipeline::run`) against an in-process
//! fake Ollama whose student answers every call in a fixed 50 ms (the teacher answers at
//! once), 4 candidates x 16 text cases, at concurrency 1 and 4. The run must finish
//! within 10% of `student calls x 50 ms / concurrency`: everything that is not waiting
//! for the student (scheduling, HTTP, scoring, bootstrap, saving) must be small.
//!
//! `cargo bench --bench upskill_overhead`

#[path = "../tests/support/ollama_server.rs"]
mod ollama_server;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::eval::cases::load_eval_set;
use gemmaedge_tui::event::Role;
use gemmaedge_tui::model::ModelClient;
use gemmaedge_tui::upskill::pipeline::{self, UpskillContext, UpskillEvent};
use ollama_server::{OllamaTestServer, Reply};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";
const CALL: Duration = Duration::from_millis(50);
const CASES: usize = 16;
const CANDIDATES: usize = 4;

/// 16 text cases, the last 4 held out.
fn cases_toml() -> String {
    let scenes = [
        (
            "lighter",
            "A person is holding a lighter with a visible flame.",
            "person",
            true,
        ),
        (
            "desk",
            "A laptop and coffee mug are on a desk.",
            "laptop",
            false,
        ),
        (
            "smoke",
            "There is smoke near the kitchen area.",
            "smoke",
            true,
        ),
        ("dog", "A dog sleeps on a rug.", "dog", false),
        (
            "ladder",
            "A man stands on the top step of a wobbly ladder.",
            "ladder",
            true,
        ),
        ("office", "An empty office at night.", "office", false),
        (
            "knife",
            "A knife lies at the edge of a table near a toddler.",
            "knife",
            true,
        ),
        ("cat", "A cat sits on a windowsill.", "cat", false),
    ];
    let mut s = String::new();
    for i in 0..CASES {
        let (id, text, word, safety) = scenes[i % scenes.len()];
        let split = if i >= CASES - 4 { "holdout" } else { "train" };
        let _ = write!(
            s,
            "[[case]]\nid = \"{id}-{i}\"\ntext = \"{text}\"\nexpect = [\"{word}\"]\n\
             safety = {safety}\nsplit = \"{split}\"\n\n"
        );
    }
    s
}

fn teacher_reply() -> String {
    let prompts: Vec<String> = (1..=CANDIDATES)
        .map(|i| {
            format!(
                "Candidate {i}: name every person and object, say plainly whether anything is \
                 unsafe, and end with CONFIDENCE: <0.0-1.0>."
            )
        })
        .collect();
    serde_json::json!({ "prompts": prompts }).to_string()
}

fn main() {
    // `cargo bench` passes `--bench`; criterion options are not ours: ignore all flags.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Its own runtime (one thread), as a separate server would be.
    let server = OllamaTestServer::start_in_thread(&[STUDENT, TEACHER]);
    server.set_recording(false);
    let teacher = teacher_reply();
    let student_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = student_calls.clone();
    server.set_handler(move |req| {
        if req.model == TEACHER {
            Reply::text(teacher.clone())
        } else {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Reply::text("A person at a desk. No safety concerns.\nCONFIDENCE: 0.8").after(CALL)
        }
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.student.host = server.url();
    config.student.model = STUDENT.into();
    config.teacher.host = server.url();
    config.teacher.model = TEACHER.into();
    config.paths.eval = dir.path().join("eval");
    config.paths.skills = dir.path().join("skills");
    config.paths.logs = dir.path().join("logs");
    std::fs::create_dir_all(&config.paths.eval).expect("eval dir");
    std::fs::create_dir_all(&config.paths.skills).expect("skills dir");
    std::fs::write(config.paths.eval.join("cases.toml"), cases_toml()).expect("cases");
    std::fs::write(config.skill_path(), "Describe the scene.\n").expect("skill");
    let eval = Arc::new(load_eval_set(&config.paths.eval).expect("eval set loads"));
    assert_eq!(eval.cases.len(), CASES);

    let mut missed = false;
    for concurrency in [1usize, 4] {
        let mut cfg = config.clone();
        cfg.upskill.concurrency = concurrency;
        cfg.upskill.candidates = CANDIDATES;
        let ctx = UpskillContext {
            student: ModelClient::new(&cfg.student, Role::Student).expect("student client"),
            teacher: ModelClient::new(&cfg.teacher, Role::Teacher).expect("teacher client"),
            eval: eval.clone(),
            current_skill: "Describe the scene.".into(),
            candidates: CANDIDATES,
            auto_apply: false,
            config: cfg,
        };
        student_calls.store(0, std::sync::atomic::Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_cancel_tx, cancel_rx) = watch::channel(false);
        let t0 = Instant::now();
        let outcome = runtime.block_on(pipeline::run(ctx, tx, cancel_rx));
        let wall = t0.elapsed();
        let mut failed = None;
        while let Ok(ev) = rx.try_recv() {
            if let UpskillEvent::Failed(m) = ev {
                failed = Some(m);
            }
        }
        let outcome = match (outcome, failed) {
            (Some(o), _) => o,
            (None, why) => {
                eprintln!("upskill run failed: {why:?}");
                std::process::exit(1);
            }
        };
        let calls = student_calls.load(std::sync::atomic::Ordering::Relaxed);
        let ideal = CALL.mul_f64(calls as f64 / concurrency as f64);
        let limit = ideal.mul_f64(1.10);
        let ok = wall <= limit;
        missed |= !ok;
        println!(
            "upskill {} rows x {CASES} cases, concurrency {concurrency}: {calls} student calls, \
             wall {:.3} s, ideal {:.3} s (calls x 50 ms / {concurrency}), overhead {:+.1}% \
             (target <= +10%): {}",
            outcome.rows.len(),
            wall.as_secs_f64(),
            ideal.as_secs_f64(),
            (wall.as_secs_f64() / ideal.as_secs_f64() - 1.0) * 100.0,
            if ok { "ok" } else { "MISSED" }
        );
        println!(
            "RESULT upskill_c{concurrency} wall_s={:.4} ideal_s={:.4} calls={calls}",
            wall.as_secs_f64(),
            ideal.as_secs_f64()
        );
    }
    if missed {
        println!("upskill overhead target missed (see above)");
    }
}
