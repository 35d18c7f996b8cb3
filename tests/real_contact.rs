//! What the first contact with a real model server showed, each point against the
//! in-process test servers (exact, deterministic): `--max-frames` counts frames taken,
//! permanent errors back off with their fix, text-only models are refused, token caps and
//! scoring settings go on the wire, a cut answer says so, and `kind = "ollama"` at an
//! OpenAI-compatible server names the fix. `tests/real_model.rs` meets the real server.

mod support;

use gemmaedge_tui::config::{Config, HostKind};
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, Health, Role};
use gemmaedge_tui::policy::Reason;
use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};
use support::openai_server::OpenAiTestServer;
use support::{engine_config, STUDENT, TEACHER};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

fn config(dir: &Path, student: &str, teacher: &str) -> Config {
    engine_config(dir, student, teacher, 5)
}

/// Every event until `Stopped`, or panic after `secs`.
async fn collect(mut h: EngineHandle, secs: u64) -> Vec<Event> {
    let mut events = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(ev) = h.events.recv().await {
            let stop = matches!(ev, Event::Stopped { .. });
            events.push(ev);
            if stop {
                break;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "engine stopped in time: {events:#?}");
    events
}

/// Events for `run_for`, then shut down and collect the rest.
async fn run_for(mut h: EngineHandle, run_for: Duration) -> Vec<Event> {
    let mut events = Vec::new();
    let _ = tokio::time::timeout(run_for, async {
        while let Some(ev) = h.events.recv().await {
            events.push(ev);
        }
    })
    .await;
    h.commands.send(Command::Shutdown).unwrap();
    events.extend(collect(h, 5).await);
    events
}

/// The Ollama test servers for the student and the teacher.
async fn servers() -> (OllamaTestServer, OllamaTestServer) {
    (
        OllamaTestServer::start(&[STUDENT]).await,
        OllamaTestServer::start(&[TEACHER]).await,
    )
}

/// Run the engine for `frames` frames taken and collect every event.
async fn run_frames(c: Config, frames: u64) -> Vec<Event> {
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(frames),
        },
    )
    .unwrap();
    collect(h, 20).await
}

fn count(events: &[Event], f: impl Fn(&Event) -> bool) -> usize {
    events.iter().filter(|e| f(e)).count()
}

#[tokio::test]
async fn max_frames_counts_frames_taken_even_when_every_answer_fails() {
    let (s, t) = servers().await;
    // A passing failure on every call (transient: retried on the next frame).
    s.set_handler(|_| Reply::error(503, "server busy"));
    let dir = tempfile::tempdir().unwrap();
    let events = run_frames(config(dir.path(), &s.url(), &t.url()), 3).await;
    assert_eq!(
        count(&events, |e| matches!(e, Event::StudentFailed { .. })),
        3
    );
    assert_eq!(
        count(&events, |e| matches!(e, Event::StudentAnswer { .. })),
        0
    );
}

#[tokio::test]
async fn max_frames_ends_a_still_scene_behind_the_change_gate() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("A still room.\nCONFIDENCE: 0.9"));
    let dir = tempfile::tempdir().unwrap();
    let still = dir.path().join("still");
    std::fs::create_dir_all(&still).unwrap();
    std::fs::copy(support::photos().join("coffee.png"), still.join("a.png")).unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.source.path = still.to_string_lossy().into_owned();
    c.source.min_change = 0.05;
    let events = run_frames(c, 4).await;
    assert_eq!(
        count(&events, |e| matches!(e, Event::StudentAnswer { .. })),
        1
    );
    assert_eq!(
        count(&events, |e| matches!(e, Event::FrameUnchanged { .. })),
        3
    );
}

#[tokio::test]
async fn a_permanent_error_backs_off_and_says_what_to_fix() {
    let (s, t) = servers().await;
    // What llama.cpp answers a text-only model that is sent an image; here the server
    // does not say up front (no capabilities), so only the answer tells.
    s.set_capabilities(None);
    s.set_handler(|_| {
        Reply::error(
            500,
            "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj",
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let events = run_for(h, Duration::from_secs(4)).await;
    // Frames come at 50 fps; retried as a passing 500 this was ~one call per frame.
    let calls = s.chat_count();
    assert!(
        (2..=4).contains(&calls),
        "backoff 1 s, 2 s, …: {calls} calls in 4 s"
    );
    let offline = events.iter().find_map(|e| match e {
        Event::Health {
            role: Role::Student,
            health: Health::Offline { reason, hint },
        } => Some((reason.clone(), hint.clone())),
        _ => None,
    });
    let (reason, hint) = offline.expect("the student shows the failure");
    assert!(reason.contains("cannot take images"), "{reason}");
    assert!(hint.contains("student.text_only = true"), "{hint}");
    let warnings: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { message } if message.contains("retrying with backoff") => {
                Some(message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "said once, not per try: {warnings:?}");
}

#[tokio::test]
async fn a_model_that_says_it_is_text_only_is_refused_before_any_frame() {
    let (s, t) = servers().await;
    s.set_capabilities(Some(&["completion"]));
    let dir = tempfile::tempdir().unwrap();
    let h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let events = run_for(h, Duration::from_secs(2)).await;
    assert_eq!(s.chat_count(), 0, "no frame sent to a text-only student");
    let refused = events.iter().find_map(|e| match e {
        Event::StudentRefused { reason, hint } => Some((reason.clone(), hint.clone())),
        _ => None,
    });
    let (reason, hint) = refused.expect("a StudentRefused event");
    assert!(reason.contains("cannot take images"), "{reason}");
    assert!(hint.contains("text_only"), "{hint}");
}

#[tokio::test]
async fn text_only_sends_no_image_and_a_note_instead() {
    let (s, t) = servers().await;
    s.set_capabilities(Some(&["completion"]));
    s.set_handler(|_| Reply::text("I cannot see the frame.\nCONFIDENCE: 0.2"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.student.text_only = true;
    let events = run_frames(c, 1).await;
    assert_eq!(
        count(&events, |e| matches!(e, Event::StudentAnswer { .. })),
        1
    );
    let chat = &s.chat_requests()[0];
    assert!(chat.all_images().is_empty(), "no image sent");
    assert!(chat
        .last_content("user")
        .unwrap()
        .contains("reads text only"));
}

#[tokio::test]
async fn caps_are_sent_and_a_cut_answer_is_shown_as_cut() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("A cat on a sofa, a cat on a sofa, a cat on a"));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.student.max_tokens = 64;
    let events = run_frames(c, 1).await;
    let chat = &s.chat_requests()[0];
    assert_eq!(chat.options.as_ref().unwrap()["num_predict"], 64);
    // The test server says `done_reason: "stop"`: not cut.
    let reasons = events
        .iter()
        .find_map(|e| match e {
            Event::StudentAnswer { reasons, .. } => Some(reasons.clone()),
            _ => None,
        })
        .unwrap();
    assert!(!reasons.iter().any(|r| matches!(r, Reason::Cut { .. })));

    // An OpenAI-compatible server that stops at the cap: `finish_reason: "length"`.
    let s = OpenAiTestServer::start(&["m"]).await;
    s.set_handler(|_| {
        support::openai_server::Reply::full("A cat on a sofa, a cat on a").finish_reason("length")
    });
    let mut c = config(dir.path(), &s.url(), &t.url());
    c.student.kind = HostKind::Openai;
    c.student.model = "m".into();
    c.student.max_tokens = 64;
    let events = run_frames(c, 1).await;
    let chat = &s.chat_requests()[0];
    assert_eq!(chat.raw["max_tokens"], 64);
    assert_eq!(chat.raw["logprobs"], true);
    assert_eq!(chat.raw["chat_template_kwargs"]["enable_thinking"], false);
    let reasons = events
        .iter()
        .find_map(|e| match e {
            Event::StudentAnswer { reasons, .. } => Some(reasons.clone()),
            _ => None,
        })
        .unwrap();
    assert!(
        reasons.contains(&Reason::Cut { max_tokens: 64 }),
        "{reasons:?}"
    );
}

/// `eval` with a config pointing at the test server; (exit code, stdout).
fn eval_run(dir: &Path, url: &str) -> (Option<i32>, String) {
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[student]\nhost = \"{url}\"\nmodel = \"{STUDENT}\"\ntimeout_secs = 5\n\
             [eval]\ntemperature = 0.0\nseed = 7\n[paths]\neval = \"{}\"\nskills = \"{}\"\n",
            support::photos().parent().unwrap().display(),
            dir.join("skills").display()
        ),
    )
    .unwrap();
    let out = Process::new(BIN)
        .args(["eval", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn eval_sends_temperature_zero_and_the_seed_on_every_call() {
    let s = OllamaTestServer::start_in_thread(&[STUDENT]);
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = eval_run(dir.path(), &s.url());
    assert_eq!(code, Some(0), "{out}");
    let chats = s.chat_requests();
    assert_eq!(chats.len(), 25);
    for c in &chats {
        let o = c.options.as_ref().expect("options sent");
        assert_eq!(o["temperature"], 0.0);
        assert_eq!(o["seed"], 7);
    }
}

#[test]
fn check_with_kind_ollama_at_an_openai_server_names_the_fix_once() {
    let s = OpenAiTestServer::start_in_thread(&["m"]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[student]\nhost = \"{}\"\nmodel = \"m\"\nkind = \"ollama\"\n",
            s.url()
        ),
    )
    .unwrap();
    let began = Instant::now();
    let out = Process::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(30));
    let out = String::from_utf8_lossy(&out.stdout);
    let line = out
        .lines()
        .find(|l| l.contains("student m @"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("speaks the OpenAI-compatible API"), "{line}");
    assert_eq!(line.matches("kind = \"openai\"").count(), 1, "{line}");
}

#[tokio::test]
async fn escalations_left_when_the_engine_stops_are_reported_not_lost() {
    let (s, t) = servers().await;
    s.set_handler(|_| Reply::text("A blurry shape.\nCONFIDENCE: 0.2"));
    // A teacher slower than the run: one review in flight, the rest queued.
    t.set_handler(|_| Reply::delayed(Duration::from_secs(30), Reply::text("{}")));
    let dir = tempfile::tempdir().unwrap();
    let h = engine::start(
        config(dir.path(), &s.url(), &t.url()),
        EngineOptions::default(),
    )
    .unwrap();
    let events = run_for(h, Duration::from_millis(800)).await;
    let escalated = count(&events, |e| matches!(e, Event::Escalated { .. }));
    let ended = count(&events, |e| {
        matches!(
            e,
            Event::TeacherVerdict { .. }
                | Event::TeacherFailed { .. }
                | Event::TeacherDropped { .. }
        )
    });
    assert!(escalated >= 2, "{escalated}");
    assert_eq!(escalated, ended, "every escalation has an end");
    assert!(events.iter().any(|e| matches!(e,
        Event::TeacherFailed { error, .. } if error == "not reviewed: the engine stopped first")));
}
