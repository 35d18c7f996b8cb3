//! Time to alert: from the student call that saw the hazard to the notification, the
//! seed's behaviour (no keep_alive sent, no warm-up) and ours, side by side in one run.
//!
//! ```text
//! cargo bench --bench time_to_alert [-- --student-ms 1000 --teacher-ms 2000 --load-ms 8000
//!                                       --keep-alive-ms 5000 --calm-ms 12000 --runs 1
//!                                       --scenario calm|evicted]
//! ```
//!
//! The engine (library, production client) against two in-process Ollama test servers
//! (`tests/support/ollama_server.rs`: a cold model costs the load time, and a model is
//! unloaded keep_alive after its last request ends). The student answers every frame in
//! `student-ms` (streamed), calmly, until `calm-ms` after its first answer; the next
//! answer is the hazard ("Smoke and flames …"); the teacher answers in `teacher-ms` that it
//! is safety-relevant; the alert is a `notify.command`. The servers' default keep_alive
//! (what the seed gets, sending none) is `keep-alive-ms`, standing in for Ollama's 5
//! minutes; ours sends the same value as its `keep_alive`, so the calm spell is longer
//! than keep_alive for both. Scenarios:
//!
//! * calm: the calm spell, then the hazard.
//! * evicted: the same, but the teacher is evicted (another model took its memory) as the
//!   hazard frame reaches the student: what the mid-stream keyword warm-up can still save.
//! * early (issue 29): a longer answer (`--early-student-ms`, default 1.5 s, streamed)
//!   with the safety word in its first fifth, the teacher warm: ours without and with
//!   `policy.early_escalation` (the calm and evicted scenarios run with it off, so their
//!   figures stay comparable), against the sequential floor (student + teacher; goal
//!   ≤ 0.8x).
//!
//! Prints each time to alert, which requests paid for a load, the ratio seed / ours and
//! ours / (student + warm teacher) (target ≤ 1.2); then what early escalation costs: the
//! extra teacher calls per 1000 frames on the stand-in answers (`STAND_IN`).

#[path = "../tests/support/ollama_server.rs"]
mod ollama_server;

use gemmaedge_tui::config::{Config, KeepAlive, SourceKind};
use gemmaedge_tui::engine::{self, EngineOptions};
use gemmaedge_tui::event::{Command, Event};
use ollama_server::{OllamaTestServer, Reply, Session};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";
const CALM: &str = "A kitchen counter with a kettle and two cups.\nCONFIDENCE: 0.9";
const HAZARD: &str = "Smoke and flames rise from a pan on the stove.\nCONFIDENCE: 0.9";
/// The early scenario's hazard: the keyword in the first fifth, then a long tail.
const HAZARD_LONG: &str = "Smoke and flames rise from a pan on the stove. The rest of the \
                           kitchen is tidy: a kettle, a cutting board and two cups on the \
                           counter, a window with the blinds half down, a towel on a hook by \
                           the fridge and a clock on the wall.\nCONFIDENCE: 0.9";
/// The student answers the stand-in servers give in the tests and benches (scripted, not
/// a model's): what early escalation costs on them.
const STAND_IN: &[&str] = &[
    CALM,
    HAZARD,
    HAZARD_LONG,
    "A person at a desk.\nCONFIDENCE: 0.9",
    "A person sits at a desk with a laptop and a coffee mug.\nCONFIDENCE: 0.86",
    "A blurry clock on a wall.\nCONFIDENCE: 0.41",
    "Smoke near the stove; a pot is on the burner.",
    "An empty hallway with the lights on.\nCONFIDENCE: 0.7",
    "A dog sleeps on a rug by the door. Nothing unusual.\nCONFIDENCE: 0.93",
    "A kitchen counter with a kettle.\nCONFIDENCE: 0.9",
    "Smoke rises from a pan on the stove. The rest of the kitchen is tidy: a kettle, a \
     cutting board, a window with blinds half down.\nCONFIDENCE: 0.9",
    "Smoke: none. A tidy kitchen counter with a kettle and a lamp by the window.\n\
     CONFIDENCE: 0.9",
    "No smoke or fire here. A tidy kitchen counter with a kettle and a lamp by the window.\n\
     CONFIDENCE: 0.9",
    "I watch for safety-relevant activity: fire, flame, smoke, a person who has fallen. A \
     desk and a lamp, nothing else.\nCONFIDENCE: 0.9",
];
const TOKEN_CHARS: usize = 4;

#[derive(Clone, Copy)]
struct Params {
    student: Duration,
    teacher: Duration,
    load: Duration,
    keep_alive: Duration,
    calm: Duration,
    runs: usize,
    /// The student's answer time in the early scenario.
    early_student: Duration,
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Seed,
    Ours,
    /// Ours with `policy.early_escalation`.
    Early,
}

#[derive(Clone, Copy, PartialEq)]
enum Scenario {
    Calm,
    Evicted,
    Early,
}

struct Outcome {
    alert: Duration,
    /// The teacher's review of the hazard waited for a load.
    review_cold: bool,
    first_answer_ms: u64,
    first_answer_cold: bool,
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} wants a whole number"))
        })
        .unwrap_or(default)
}

/// A streamed reply whose tokens together take `total`.
fn streamed(text: &str, total: Duration) -> Reply {
    let tokens = text.chars().count().div_ceil(TOKEN_CHARS).max(1) as u32;
    Reply::text(text)
        .token_chars(TOKEN_CHARS)
        .delay_per_token(total / tokens)
}

fn config(dir: &Path, student: &str, teacher: &str, p: Params, v: Variant) -> Config {
    let mut c = Config::default();
    c.student.host = student.into();
    c.student.model = STUDENT.into();
    c.teacher.host = teacher.into();
    c.teacher.model = TEACHER.into();
    for h in [&mut c.student, &mut c.teacher] {
        h.timeout_secs = 120;
        match v {
            Variant::Seed => {
                h.keep_alive = KeepAlive::Text(String::new());
                h.warm_up = false;
            }
            Variant::Ours | Variant::Early => {
                h.keep_alive = KeepAlive::Seconds(p.keep_alive.as_secs_f64());
                h.warm_up = true;
            }
        }
    }
    c.source.kind = SourceKind::Folder;
    c.source.path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("eval/images")
        .to_string_lossy()
        .into_owned();
    c.source.fps = 5.0;
    c.source.min_change = 0.0;
    c.policy.audit_every = 0;
    c.policy.early_escalation = v == Variant::Early;
    c.notify.command = "true".into();
    c.privacy.save_frames = false;
    c.paths.logs = dir.join("logs");
    c.paths.skills = dir.join("skills");
    c.paths.eval = dir.join("eval");
    c
}

async fn run(p: Params, v: Variant, scenario: Scenario) -> Outcome {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = Arc::new(OllamaTestServer::start(&[TEACHER]).await);
    for s in [&student, &*teacher] {
        s.set_load_time(p.load);
        s.set_default_keep_alive(Session::For(p.keep_alive));
    }
    let verdict = serde_json::json!({
        "agrees": true, "safety_relevant": true, "summary": "A pan is on fire.",
        "missed": [], "wrong": []
    })
    .to_string();
    let teacher_time = p.teacher;
    teacher.set_handler(move |_| Reply::text(verdict.clone()).after(teacher_time));

    // Calm answers until `calm` after the first one, then the hazard once.
    let first_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let hazard_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let sent = Arc::new(AtomicBool::new(false));
    {
        let (first_at, hazard_at, sent) = (first_at.clone(), hazard_at.clone(), sent.clone());
        let (student_time, calm, hazard_text) = match scenario {
            // A short calm spell: the teacher stays warm (ours re-warms it anyway).
            Scenario::Early => (p.early_student, Duration::from_secs(3), HAZARD_LONG),
            _ => (p.student, p.calm, HAZARD),
        };
        let teacher = teacher.clone();
        student.set_handler(move |_| {
            let now = Instant::now();
            let first = *first_at.lock().unwrap().get_or_insert(now);
            if now.duration_since(first) >= calm && !sent.swap(true, Ordering::SeqCst) {
                *hazard_at.lock().unwrap() = Some(now);
                if scenario == Scenario::Evicted {
                    // Another model takes the teacher's memory as the hazard appears: only
                    // the answer's own words can start the reload before the review.
                    teacher.evict(TEACHER);
                }
                return streamed(hazard_text, student_time);
            }
            streamed(CALM, student_time)
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student.url(), &teacher.url(), p, v);
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    let limit = p.load * 3 + p.calm + p.student * 4 + p.teacher * 2 + Duration::from_secs(30);
    let deadline = tokio::time::Instant::now() + limit;
    let mut first_answer_ms = None;
    let notified = loop {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(Event::StudentAnswer { latency_ms, .. })) => {
                first_answer_ms.get_or_insert(latency_ms);
            }
            Ok(Some(Event::Notified { .. })) => break Instant::now(),
            Ok(Some(ev)) => {
                if std::env::var_os("TTA_DEBUG").is_some()
                    && !matches!(ev, Event::StudentToken { .. } | Event::FrameTaken { .. })
                {
                    eprintln!(
                        "{:?} {}",
                        Instant::now(),
                        serde_json::to_string(&ev).unwrap_or_default()
                    );
                }
            }
            Ok(None) | Err(_) => panic!("no alert within {limit:?}"),
        }
    };
    let _ = h.commands.send(Command::Shutdown);
    let _ = tokio::time::timeout(Duration::from_secs(5), h.task).await;
    let hazard = hazard_at.lock().unwrap().expect("the hazard was answered");
    let review_cold = teacher
        .served()
        .iter()
        .find(|s| !s.load_request && s.user.as_deref().is_some_and(|u| u.contains("Smoke")))
        .is_some_and(|s| s.cold);
    let first_answer_cold = student
        .served()
        .iter()
        .find(|s| !s.load_request)
        .is_some_and(|s| s.cold);
    Outcome {
        alert: notified.duration_since(hazard),
        review_cold,
        first_answer_ms: first_answer_ms.unwrap_or(0),
        first_answer_cold,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ms = |name: &str, d: u64| Duration::from_millis(arg(&args, name, d));
    let p = Params {
        student: ms("--student-ms", 1000),
        teacher: ms("--teacher-ms", 2000),
        load: ms("--load-ms", 8000),
        keep_alive: ms("--keep-alive-ms", 5000),
        calm: ms("--calm-ms", 12000),
        runs: arg(&args, "--runs", 1).max(1) as usize,
        early_student: ms("--early-student-ms", 1500),
    };
    let floor = p.student + p.teacher;
    println!(
        "time to alert: student call that saw the hazard -> notification\n\
         student {}, warm teacher {}, load {}, keep_alive {} (server default and ours), \
         calm spell {}, {} run(s), {} cores",
        secs(p.student),
        secs(p.teacher),
        secs(p.load),
        secs(p.keep_alive),
        secs(p.calm),
        p.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let only = args
        .iter()
        .position(|a| a == "--scenario")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let scenarios = [Scenario::Calm, Scenario::Evicted, Scenario::Early]
        .into_iter()
        .filter(|s| match only.as_deref() {
            None => true,
            Some("calm") => *s == Scenario::Calm,
            Some("evicted") => *s == Scenario::Evicted,
            Some("early") => *s == Scenario::Early,
            Some(other) => panic!("--scenario calm|evicted|early, not {other}"),
        });
    for scenario in scenarios {
        println!(
            "\n{}",
            match scenario {
                Scenario::Calm => "calm spell longer than keep_alive, then the hazard:",
                Scenario::Evicted =>
                    "the same, the teacher evicted (another model) as the hazard reaches the student:",
                Scenario::Early =>
                    "early escalation: a longer answer, the safety word in its first fifth, the teacher warm:",
            }
        );
        let variants = match scenario {
            Scenario::Early => [Variant::Ours, Variant::Early],
            _ => [Variant::Seed, Variant::Ours],
        };
        let mut medians = Vec::new();
        for v in variants {
            let outcomes: Vec<Outcome> = (0..p.runs)
                .map(|_| rt.block_on(run(p, v, scenario)))
                .collect();
            let m = median(outcomes.iter().map(|o| o.alert).collect());
            let cold = outcomes.iter().filter(|o| o.review_cold).count();
            let first = &outcomes[0];
            println!(
                "  {:<34} {:>8}   review waited on a load: {cold}/{}   first answer {} ms{}",
                match v {
                    Variant::Seed => "seed (no keep_alive, no warm-up)",
                    Variant::Ours => "ours (keep_alive, warm-ups)",
                    Variant::Early => "ours + early escalation",
                },
                secs(m),
                p.runs,
                first.first_answer_ms,
                if first.first_answer_cold {
                    " (a load inside it)"
                } else {
                    ""
                },
            );
            medians.push(m);
        }
        if scenario == Scenario::Early {
            let floor = p.early_student + p.teacher;
            println!(
                "  floor (student + warm teacher)     {:>8}\n  early / floor {:.2}x (goal <= 0.80x)   \
                 sequential / floor {:.2}x",
                secs(floor),
                medians[1].as_secs_f64() / floor.as_secs_f64(),
                medians[0].as_secs_f64() / floor.as_secs_f64(),
            );
            continue;
        }
        println!(
            "  floor (student + warm teacher)     {:>8}\n  seed / ours {:.2}x   ours / floor {:.2}x (target <= 1.20x){}",
            secs(floor),
            medians[0].as_secs_f64() / medians[1].as_secs_f64(),
            medians[1].as_secs_f64() / floor.as_secs_f64(),
            if scenario == Scenario::Evicted {
                "  [not a target: the load is in the path]"
            } else {
                ""
            }
        );
    }
    let config = gemmaedge_tui::config::PolicyConfig::default();
    let prompt = gemmaedge_tui::roles::skill::DEFAULT_SKILL;
    let cost = gemmaedge_tui::policy::early::early_cost(STAND_IN, prompt, &config, TOKEN_CHARS);
    println!(
        "\nearly escalation cost on the {} stand-in answers (default skill, {TOKEN_CHARS}-character \
         tokens): {} escalate early, {} of them the full answer would not have escalated: \
         {:.0} extra teacher calls per 1000 frames of this mix",
        cost.answers,
        cost.early,
        cost.unneeded,
        cost.extra_per_1000()
    );
}
