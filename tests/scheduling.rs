//! Monitoring never goes blind: live frames share the student with an upskill run
//! (through the hub a console or the service uses), against the Ollama test server with a
//! student that takes a few hundred ms per call.

mod support;

use gemmaedge_tui::engine::EngineOptions;
use gemmaedge_tui::event::Event;
use gemmaedge_tui::service::hub::{Hub, Link};
use gemmaedge_tui::service::protocol::{ClientMsg, ServerMsg};
use gemmaedge_tui::upskill::pipeline::UpskillEvent;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

const STUDENT_MS: u64 = 250;
const CASES: usize = 8;

/// Eight text cases (the student's answer depends only on the case's text).
fn eval_dir(dir: &Path) {
    let eval = dir.join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    let mut text = String::new();
    for i in 0..CASES {
        let split = if i % 4 == 3 { "holdout" } else { "train" };
        text.push_str(&format!(
            "[[case]]\nid = \"c{i}\"\ntext = \"Scene {i}: a mug on a desk.\"\nexpect = [\"mug\"]\nsafety = false\nsplit = \"{split}\"\n\n"
        ));
    }
    std::fs::write(eval.join("cases.toml"), text).unwrap();
    std::fs::create_dir_all(dir.join("skills")).unwrap();
    std::fs::write(dir.join("skills/skill.txt"), "Describe the scene.").unwrap();
}

struct Setup {
    student: OllamaTestServer,
    teacher: OllamaTestServer,
    dir: tempfile::TempDir,
}

/// Live frames have an image; eval cases here are text. The `fire_at`-th live frame
/// (1-based, counted from the first one after `arm`) is answered with a hazard.
fn setup() -> Setup {
    let student = OllamaTestServer::start_in_thread(&[support::STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[support::TEACHER]);
    let dir = tempfile::tempdir().unwrap();
    eval_dir(dir.path());
    Setup {
        student,
        teacher,
        dir,
    }
}

fn config(s: &Setup) -> gemmaedge_tui::config::Config {
    let mut c = support::engine_config(s.dir.path(), &s.student.url(), &s.teacher.url(), 10);
    c.source.fps = 10.0;
    c.upskill.candidates = 1;
    c.upskill.bootstrap_samples = 100;
    c
}

fn live_handler(student: &OllamaTestServer, hazard_after: Option<Instant>) {
    student.set_handler(move |req| {
        let live = !req.all_images().is_empty();
        let text = if live {
            match hazard_after {
                Some(t) if Instant::now() > t => {
                    "Flames rise from a pan on the stove. Fire.\nCONFIDENCE: 0.9".to_string()
                }
                _ => "A mug on a desk.\nCONFIDENCE: 0.9".to_string(),
            }
        } else {
            // Eval: the same case gets the same answer, whatever else is going on.
            let case = req.last_content("user").unwrap_or("").to_string();
            if case.contains("Scene 1") || case.contains("Scene 5") {
                "A desk.\nCONFIDENCE: 0.6".to_string()
            } else {
                "A mug on a desk.\nCONFIDENCE: 0.8".to_string()
            }
        };
        Reply::delayed(Duration::from_millis(STUDENT_MS), Reply::text(text))
    });
}

fn teacher_handler(teacher: &OllamaTestServer) {
    teacher.set_handler(|req| {
        let asks_for_prompts = req
            .last_content("user")
            .unwrap_or("")
            .contains("\"prompts\"");
        if asks_for_prompts {
            Reply::text(r#"{"prompts": ["Describe the scene; name every mug and cup."]}"#)
        } else {
            Reply::json(&json!({
                "agrees": true, "safety_relevant": true,
                "summary": "A fire on the stove.", "missed": [], "wrong": []
            }))
        }
    });
}

/// Everything the link says until `stop` returns true (or the limit).
async fn collect(
    link: &mut Link,
    limit: Duration,
    mut stop: impl FnMut(&ServerMsg) -> bool,
) -> Vec<(Instant, ServerMsg)> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let batch = match tokio::time::timeout_at(deadline, link.recv()).await {
            Ok(Some(b)) => b,
            _ => panic!("no end within {limit:?}; saw {} messages", out.len()),
        };
        for m in batch {
            if let ServerMsg::UpskillRefused(why) = &m {
                panic!("the run did not start: {why}");
            }
            let done = stop(&m);
            out.push((Instant::now(), m));
            if done {
                return out;
            }
        }
    }
}

fn run_ended(m: &ServerMsg) -> bool {
    matches!(
        m,
        ServerMsg::Upskill(
            UpskillEvent::Finished(_) | UpskillEvent::Failed(_) | UpskillEvent::Cancelled
        )
    )
}

fn scores(msgs: &[(Instant, ServerMsg)]) -> Vec<(Option<f64>, Option<f64>)> {
    msgs.iter()
        .find_map(|(_, m)| match m {
            ServerMsg::Upskill(UpskillEvent::Finished(o)) => {
                Some(o.rows.iter().map(|r| (r.train, r.holdout)).collect())
            }
            _ => None,
        })
        .expect("the run finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_frames_keep_their_rate_during_an_upskill_and_a_hazard_reaches_the_teacher() {
    let s = setup();
    let hazard_at = Instant::now() + Duration::from_secs(3);
    live_handler(&s.student, Some(hazard_at));
    teacher_handler(&s.teacher);
    let (hub, _task) = Hub::start(config(&s), EngineOptions::default()).unwrap();
    let mut link = hub.connect("test");
    assert!(link.send(ClientMsg::UpskillStart {
        candidates: Some(1),
        auto_apply: false,
    }));
    let mut started = None;
    let msgs = collect(&mut link, Duration::from_secs(90), |m| {
        if matches!(m, ServerMsg::Upskill(UpskillEvent::Started { .. })) {
            started = Some(Instant::now());
        }
        run_ended(m)
    })
    .await;
    let started = started.expect("the run started");
    let ended = msgs.last().unwrap().0;
    assert!(
        matches!(
            msgs.last().unwrap().1,
            ServerMsg::Upskill(UpskillEvent::Finished(_))
        ),
        "{:?}",
        msgs.last().unwrap().1
    );
    // Live answers during the run, and the largest gap between them.
    let answers: Vec<Instant> = msgs
        .iter()
        .filter(|(t, m)| {
            *t >= started && matches!(m, ServerMsg::Event(Event::StudentAnswer { .. }))
        })
        .map(|(t, _)| *t)
        .collect();
    let run = ended - started;
    assert!(
        run > Duration::from_millis(STUDENT_MS * (2 * CASES as u64)),
        "the run made its calls ({run:?})"
    );
    assert!(
        answers.len() >= 5,
        "{} live answers in {run:?}",
        answers.len()
    );
    let largest = answers
        .windows(2)
        .map(|w| w[1] - w[0])
        .chain(std::iter::once(answers[0] - started))
        .max()
        .unwrap();
    // max(1/fps, 2 × the student's call time), plus scheduling slack.
    let promised = Duration::from_millis(2 * STUDENT_MS).max(Duration::from_millis(100));
    assert!(
        largest <= promised + Duration::from_millis(250),
        "largest gap between live answers {largest:?}, promised about {promised:?}"
    );
    // The hazard was reviewed by the teacher before the run ended.
    let verdict = msgs.iter().find_map(|(t, m)| match m {
        ServerMsg::Event(Event::TeacherVerdict { .. }) => Some(*t),
        _ => None,
    });
    let verdict = verdict.expect("the hazard's verdict arrived during the run");
    assert!(verdict < ended);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduling_does_not_change_the_scores() {
    // With live traffic …
    let s = setup();
    live_handler(&s.student, None);
    teacher_handler(&s.teacher);
    let (hub, _task) = Hub::start(config(&s), EngineOptions::default()).unwrap();
    let mut link = hub.connect("test");
    link.send(ClientMsg::UpskillStart {
        candidates: Some(1),
        auto_apply: false,
    });
    let with_live = scores(&collect(&mut link, Duration::from_secs(90), run_ended).await);
    hub.shutdown().await;
    // … and with capture paused from the start.
    let s2 = setup();
    live_handler(&s2.student, None);
    teacher_handler(&s2.teacher);
    let (hub, _task) = Hub::start(config(&s2), EngineOptions::default()).unwrap();
    let mut link = hub.connect("test");
    link.send(ClientMsg::SetPaused { paused: true });
    link.send(ClientMsg::UpskillStart {
        candidates: Some(1),
        auto_apply: false,
    });
    let alone = scores(&collect(&mut link, Duration::from_secs(90), run_ended).await);
    hub.shutdown().await;
    assert_eq!(with_live.len(), 2);
    assert_eq!(with_live, alone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_run_leaves_monitoring_untouched() {
    let s = setup();
    live_handler(&s.student, None);
    teacher_handler(&s.teacher);
    let (hub, _task) = Hub::start(config(&s), EngineOptions::default()).unwrap();
    let mut link = hub.connect("test");
    link.send(ClientMsg::UpskillStart {
        candidates: Some(1),
        auto_apply: false,
    });
    collect(&mut link, Duration::from_secs(30), |m| {
        matches!(m, ServerMsg::Upskill(UpskillEvent::CaseScored { .. }))
    })
    .await;
    link.send(ClientMsg::UpskillCancel);
    collect(&mut link, Duration::from_secs(10), |m| {
        matches!(m, ServerMsg::Upskill(UpskillEvent::Cancelled))
    })
    .await;
    // Frames go on being answered at the live rate.
    let t0 = Instant::now();
    let mut n = 0;
    collect(&mut link, Duration::from_secs(10), |m| {
        if matches!(m, ServerMsg::Event(Event::StudentAnswer { .. })) {
            n += 1;
        }
        n >= 4
    })
    .await;
    assert!(
        t0.elapsed() < Duration::from_millis(4 * STUDENT_MS + 1500),
        "{:?} for 4 answers",
        t0.elapsed()
    );
    hub.shutdown().await;
}
