//! Time to alert (issue 12): no model load between a hazard on camera and its alert.
//! The engine and the production client against the Ollama test server, which models
//! loads: a cold model costs a load time, and a model is unloaded when its keep_alive runs
//! out after its last request ends. Assertions count the loads the server did and which
//! request paid for one, never how long something took.

mod support;

use gemmaedge_tui::config::{Config, KeepAlive};
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, ModelLoad, Role, WarmReason};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply, Served, Session};
use support::{engine_config, STUDENT, TEACHER};

const CALM: &str = "A kitchen counter with a kettle.\nCONFIDENCE: 0.9";
const HAZARD: &str = "Smoke and flames rise from a pan on the stove.\nCONFIDENCE: 0.9";

fn alarm_verdict() -> String {
    json!({
        "agrees": true, "safety_relevant": true, "summary": "A pan is on fire.",
        "missed": [], "wrong": []
    })
    .to_string()
}

/// Engine config with short keep_alives, an alert command, and 30 s timeouts (a load in a
/// request's path must not fail it: the tests count loads).
fn config(dir: &Path, student: &OllamaTestServer, teacher: &OllamaTestServer) -> Config {
    let mut c = engine_config(dir, &student.url(), &teacher.url(), 30);
    c.source.fps = 10.0;
    c.notify.command = "true".into();
    c.student.keep_alive = KeepAlive::Text("2s".into());
    c.teacher.keep_alive = KeepAlive::Text("2s".into());
    c
}

/// Servers that unload after 2 s idle (also without keep_alive) and load in `load`.
async fn servers(load: Duration) -> (OllamaTestServer, OllamaTestServer) {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    for s in [&student, &teacher] {
        s.set_load_time(load);
        s.set_default_keep_alive(Session::For(Duration::from_secs(2)));
    }
    teacher.set_handler(|_| Reply::text(alarm_verdict()));
    (student, teacher)
}

/// Collect events until `until` holds for one (or `limit` passes), then stop the engine
/// and collect the rest.
async fn run_until(
    mut h: EngineHandle,
    limit: Duration,
    until: impl Fn(&Event) -> bool,
) -> (Vec<Event>, bool) {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut hit = false;
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        hit = until(&ev);
        events.push(ev);
        if hit {
            break;
        }
    }
    // The engine may have stopped already (then the command channel is closed).
    let _ = h.commands.send(Command::Shutdown);
    let stopped = matches!(events.last(), Some(Event::Stopped { .. }));
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        if stopped {
            return;
        }
        while let Some(ev) = h.events.recv().await {
            let stop = matches!(ev, Event::Stopped { .. });
            events.push(ev);
            if stop {
                break;
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the engine stops");
    let _ = h.task.await;
    (events, hit)
}

fn chats(served: &[Served]) -> Vec<&Served> {
    served.iter().filter(|s| !s.load_request).collect()
}

/// The teacher's review of the hazard (its prompt carries the student's answer).
fn hazard_review(teacher: &OllamaTestServer) -> Served {
    teacher
        .served()
        .into_iter()
        .find(|s| !s.load_request && s.user.as_deref().is_some_and(|u| u.contains("flames")))
        .expect("the hazard was reviewed")
}

fn position(events: &[Event], f: impl Fn(&Event) -> bool) -> Option<usize> {
    events.iter().position(f)
}

/// Student answers calm until `hazard` is set, then the hazard once, then calm again.
fn student_script(student: &OllamaTestServer, hazard: Arc<AtomicBool>, hazard_reply: Reply) {
    let sent = Arc::new(AtomicBool::new(false));
    let hazard_reply = Arc::new(std::sync::Mutex::new(Some(hazard_reply)));
    student.set_handler(move |_| {
        if hazard.load(Ordering::SeqCst) && !sent.swap(true, Ordering::SeqCst) {
            if let Some(r) = hazard_reply.lock().unwrap().take() {
                return r;
            }
        }
        Reply::text(CALM).after(Duration::from_millis(100))
    });
}

#[tokio::test]
async fn the_first_answer_after_start_does_not_wait_on_a_load() {
    let (student, teacher) = servers(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student, &teacher);
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(2),
        },
    )
    .unwrap();
    let (events, _) = run_until(h, Duration::from_secs(30), |e| {
        matches!(e, Event::Stopped { .. })
    })
    .await;

    // One load of each model, by a load request at start, before any chat.
    let loads = student.loads();
    assert_eq!(loads.len(), 1, "{loads:?}");
    assert!(loads[0].by_load_request);
    let served = student.served();
    assert!(served[0].load_request, "{served:?}");
    let answers = chats(&served);
    assert!(!answers.is_empty());
    assert!(
        !answers[0].cold,
        "the first answer found the student loaded"
    );
    assert!(answers.iter().all(|s| !s.cold), "{served:?}");
    assert_eq!(teacher.load_count(TEACHER), 1);
    assert!(teacher.loads()[0].by_load_request);

    // The student's first frame was taken once the model was loaded, and the faces saw
    // the load as a load.
    let loading = position(&events, |e| {
        matches!(
            e,
            Event::ModelLoad {
                role: Role::Student,
                state: ModelLoad::Loading,
                ..
            }
        )
    })
    .expect("loading shown");
    let loaded = position(&events, |e| {
        matches!(
            e,
            Event::ModelLoad {
                role: Role::Student,
                state: ModelLoad::Loaded,
                took_ms: Some(_)
            }
        )
    })
    .expect("loaded shown, with how long it took");
    let first_frame = position(&events, |e| matches!(e, Event::FrameTaken { .. })).unwrap();
    assert!(loading < loaded && loaded < first_frame, "{events:#?}");
    assert!(events.iter().any(|e| matches!(
        e,
        Event::WarmUp {
            role: Role::Teacher,
            reason: WarmReason::Start
        }
    )));
}

#[tokio::test]
async fn a_hazard_after_a_calm_spell_longer_than_keep_alive_has_no_load_in_its_path() {
    let (student, teacher) = servers(Duration::from_secs(1)).await;
    let hazard = Arc::new(AtomicBool::new(false));
    student_script(&student, hazard.clone(), Reply::text(HAZARD));
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), &student, &teacher);
    let h = engine::start(c, EngineOptions::default()).unwrap();
    // A calm spell of 5 s: the teacher (keep_alive 2 s) sees no review in it.
    let calm = tokio::spawn({
        let hazard = hazard.clone();
        async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            hazard.store(true, Ordering::SeqCst);
        }
    });
    let (events, alerted) = run_until(h, Duration::from_secs(40), |e| {
        matches!(e, Event::Notified { .. })
    })
    .await;
    calm.await.unwrap();
    assert!(alerted, "the hazard reached the notification: {events:#?}");

    let review = hazard_review(&teacher);
    assert!(!review.cold, "the review found the teacher loaded");
    assert_eq!(
        teacher.load_count(TEACHER),
        1,
        "only the start warm-up loaded the teacher: {:?}",
        teacher.loads()
    );
    assert_eq!(student.load_count(STUDENT), 1, "{:?}", student.loads());
    // The calm spell was longer than keep_alive: warm-ups kept the teacher in memory.
    let first_chat = teacher
        .served()
        .iter()
        .find(|s| !s.load_request)
        .unwrap()
        .arrived;
    let rewarms = teacher
        .served()
        .iter()
        .filter(|s| s.load_request && s.arrived < first_chat)
        .count();
    assert!(
        rewarms >= 2,
        "start warm-up and re-warms before the review: {rewarms}"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::WarmUp {
            role: Role::Teacher,
            reason: WarmReason::KeepAlive
        }
    )));
}

/// The same hazard with the seed's behaviour (no keep_alive sent, no warm-up): the review
/// pays the teacher's cold start. Shows the test above can fail.
#[tokio::test]
async fn without_warm_up_the_same_hazard_waits_on_a_load() {
    let (student, teacher) = servers(Duration::from_secs(1)).await;
    let hazard = Arc::new(AtomicBool::new(false));
    student_script(&student, hazard.clone(), Reply::text(HAZARD));
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student, &teacher);
    for h in [&mut c.student, &mut c.teacher] {
        h.keep_alive = KeepAlive::Text(String::new());
        h.warm_up = false;
    }
    let h = engine::start(c, EngineOptions::default()).unwrap();
    let calm = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(4)).await;
        hazard.store(true, Ordering::SeqCst);
    });
    let (events, alerted) = run_until(h, Duration::from_secs(40), |e| {
        matches!(e, Event::Notified { .. })
    })
    .await;
    calm.await.unwrap();
    assert!(alerted, "{events:#?}");
    assert!(hazard_review(&teacher).cold, "the review waited on a load");
    assert!(teacher.load_requests().is_empty() && student.load_requests().is_empty());
    assert!(
        chats(&student.served())[0].cold,
        "and so did the first answer"
    );
    for s in student.served().iter().chain(teacher.served().iter()) {
        assert_eq!(s.keep_alive, None, "keep_alive = \"\" is not sent");
    }
}

#[tokio::test]
async fn a_keyword_mid_answer_loads_an_evicted_teacher_before_the_review() {
    let (student, teacher) = servers(Duration::from_millis(500)).await;
    let hazard = Arc::new(AtomicBool::new(false));
    // The keyword is the first word; the rest of the answer takes ~3 s more.
    student_script(
        &student,
        hazard.clone(),
        Reply::text(HAZARD)
            .token_chars(3)
            .delay_per_token(Duration::from_millis(180)),
    );
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), &student, &teacher);
    // Never unloaded for idleness: no re-warm timer, so only the keyword can reload it.
    c.teacher.keep_alive = KeepAlive::Seconds(-1.0);
    // The keyword warms the teacher (with early escalation on, the early review itself
    // would load it: `tests/early_escalation.rs`).
    c.policy.early_escalation = false;
    let mut h = engine::start(c, EngineOptions::default()).unwrap();
    // Wait for the teacher's start warm-up to finish.
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ev = tokio::time::timeout_at(deadline, h.events.recv())
            .await
            .expect("teacher loaded at start")
            .unwrap();
        let loaded = matches!(
            ev,
            Event::ModelLoad {
                role: Role::Teacher,
                state: ModelLoad::Loaded,
                ..
            }
        );
        events.push(ev);
        if loaded {
            break;
        }
    }
    // Another model takes the teacher's memory; the next frame is the hazard.
    assert!(teacher.evict(TEACHER));
    hazard.store(true, Ordering::SeqCst);
    let (rest, alerted) = run_until(h, Duration::from_secs(40), |e| {
        matches!(e, Event::Notified { .. })
    })
    .await;
    events.extend(rest);
    assert!(alerted, "{events:#?}");

    let review = hazard_review(&teacher);
    assert!(
        !review.cold,
        "reloaded during the answer, before the review"
    );
    let loads = teacher.loads();
    assert_eq!(loads.len(), 2, "{loads:?}");
    assert!(loads[1].by_load_request);
    let seq = events
        .iter()
        .find_map(|e| match e {
            Event::StudentAnswer { seq, answer, .. } if answer.contains("flames") => Some(*seq),
            _ => None,
        })
        .unwrap();
    let warm = position(&events, |e| {
        matches!(e, Event::WarmUp { role: Role::Teacher, reason: WarmReason::Keyword { seq: s, keyword } }
            if *s == seq && keyword == "smoke")
    })
    .expect("a keyword warm-up for the hazard frame");
    let answered = position(
        &events,
        |e| matches!(e, Event::StudentAnswer { seq: s, .. } if *s == seq),
    )
    .unwrap();
    assert!(warm < answered, "sent while the answer was still streaming");
}

#[tokio::test]
async fn keep_alive_is_sent_as_configured_on_every_call() {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.push_reply(Reply::text(HAZARD));
    teacher.set_handler(|_| Reply::text(alarm_verdict()));
    let dir = tempfile::tempdir().unwrap();
    let mut c = engine_config(dir.path(), &student.url(), &teacher.url(), 10);
    c.student.keep_alive = KeepAlive::Seconds(-1.0);
    c.teacher.keep_alive = KeepAlive::Text("45m".into());
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(3),
        },
    )
    .unwrap();
    let began = Instant::now();
    let (_, _) = run_until(h, Duration::from_secs(20), |e| {
        matches!(e, Event::Stopped { .. })
    })
    .await;
    assert!(began.elapsed() < Duration::from_secs(20));
    let check = |server: &OllamaTestServer, want: Value| {
        let served = server.served();
        assert!(served.iter().any(|s| s.load_request), "a warm-up");
        assert!(served.iter().any(|s| !s.load_request), "a chat");
        for s in &served {
            assert_eq!(s.keep_alive.as_ref(), Some(&want), "{s:?}");
        }
        for r in server.chat_requests() {
            assert_eq!(r.raw.get("keep_alive"), Some(&want));
        }
    };
    check(&student, json!(-1));
    check(&teacher, json!("45m"));
}
