//! Early escalation (issue 29): a safety keyword complete in the student's stream sends
//! the frame to the teacher at once, before the answer ends. The engine and the
//! production client against the Ollama test server, the student's answer paced (tokens
//! spread over it). Assertions are on the order of events and requests, never on how long
//! something took.

mod support;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event, Role, WarmReason};
use gemmaedge_tui::policy::calibration::CalibrationStore;
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::teacher::CUT_MARK;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, STUDENT, TEACHER};

const CALM: &str = "A kitchen counter with a kettle.\nCONFIDENCE: 0.9";
/// The keyword first, then a long tail (description and the confidence line).
const HAZARD: &str = "Smoke rises from a pan on the stove. The rest of the kitchen is \
                      tidy: a kettle, a cutting board, a window with blinds half down.\n\
                      CONFIDENCE: 0.9";
/// The keyword, then its negation after a colon: only the full answer says "none".
const NEGATED_LATER: &str = "Smoke: none. A tidy kitchen counter with a kettle and a lamp \
                             by the window.\nCONFIDENCE: 0.9";
const SKILL: &str = "Watch for safety-relevant activity: fire, flame, smoke, a person who \
                     has fallen. Describe the frame in one or two sentences.";

fn verdict() -> String {
    json!({
        "agrees": true, "safety_relevant": true, "summary": "A pan smokes on the stove.",
        "missed": [], "wrong": []
    })
    .to_string()
}

/// A paced stream: 4 characters a token, 40 ms apart (the hazard's ~150 characters take
/// about 1.5 s), so the teacher's quick verdict can come before the last token.
fn paced(text: &str) -> Reply {
    Reply::text(text)
        .token_chars(4)
        .delay_per_token(Duration::from_millis(40))
}

struct Run {
    events: Vec<Event>,
    /// When each event arrived.
    at: Vec<Instant>,
    /// Kept running until the run is checked.
    _student: OllamaTestServer,
    teacher: OllamaTestServer,
    dir: tempfile::TempDir,
}

/// The student answers `first` (paced) to the first frame, then calm; the engine stops
/// after `frames` frames.
async fn run(first: &'static str, frames: u64, tweak: impl FnOnce(&mut Config)) -> Run {
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let asked = Arc::new(AtomicUsize::new(0));
    student.set_handler(move |_| {
        if asked.fetch_add(1, Ordering::SeqCst) == 0 {
            paced(first)
        } else {
            Reply::text(CALM)
        }
    });
    teacher.set_handler(|_| Reply::text(verdict()));
    let dir = tempfile::tempdir().unwrap();
    let mut c = engine_config(dir.path(), &student.url(), &teacher.url(), 30);
    std::fs::create_dir_all(&c.paths.skills).unwrap();
    std::fs::write(c.skill_path(), SKILL).unwrap();
    c.notify.command = "true".into();
    tweak(&mut c);
    let h = engine::start(
        c,
        EngineOptions {
            max_frames: Some(frames),
        },
    )
    .unwrap();
    let (events, at) = collect(h).await;
    Run {
        events,
        at,
        _student: student,
        teacher,
        dir,
    }
}

async fn collect(mut h: EngineHandle) -> (Vec<Event>, Vec<Instant>) {
    let (mut events, mut at) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
        let stop = matches!(ev, Event::Stopped { .. });
        events.push(ev);
        at.push(Instant::now());
        if stop {
            break;
        }
    }
    let _ = h.commands.send(Command::Shutdown);
    let _ = h.task.await;
    assert!(
        matches!(events.last(), Some(Event::Stopped { .. })),
        "the engine stops"
    );
    (events, at)
}

impl Run {
    fn position(&self, f: impl Fn(&Event) -> bool) -> Option<usize> {
        self.events.iter().position(f)
    }

    /// The first frame's answer event's index, its seq and its reasons.
    fn answer(&self) -> (usize, u64, Vec<Reason>) {
        let i = self
            .position(|e| matches!(e, Event::StudentAnswer { .. }))
            .expect("an answer");
        match &self.events[i] {
            Event::StudentAnswer { seq, reasons, .. } => (i, *seq, reasons.clone()),
            _ => unreachable!(),
        }
    }

    fn escalations(&self) -> Vec<(u64, Vec<Reason>)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Escalated { seq, reasons, .. } => Some((*seq, reasons.clone())),
                _ => None,
            })
            .collect()
    }

    /// The teacher's chats (not its warm-ups): their user prompts and when they came.
    fn reviews(&self) -> Vec<(String, Instant)> {
        self.teacher
            .served()
            .into_iter()
            .filter(|s| !s.load_request)
            .map(|s| (s.user.unwrap_or_default(), s.arrived))
            .collect()
    }
}

fn early(keyword: &str, needed: Option<bool>) -> Reason {
    Reason::SafetyEarly {
        keyword: keyword.into(),
        needed,
    }
}

#[tokio::test]
async fn the_review_starts_before_the_students_last_token() {
    let r = run(HAZARD, 2, |_| {}).await;
    let (answered, seq, reasons) = r.answer();
    // Escalated at once, as an early safety job, with the answer so far.
    assert_eq!(r.escalations(), vec![(seq, vec![early("smoke", None)])]);
    let escalated = r
        .position(|e| matches!(e, Event::Escalated { .. }))
        .unwrap();
    let started = r
        .position(|e| matches!(e, Event::TeacherStarted { seq: s, .. } if *s == seq))
        .expect("reviewed");
    let verdict = r
        .position(|e| matches!(e, Event::TeacherVerdict { seq: s, .. } if *s == seq))
        .expect("a verdict");
    assert!(
        escalated < started && started < answered && verdict < answered,
        "the review started and ended while the student was answering: {:#?}",
        r.events
    );
    let reviews = r.reviews();
    assert_eq!(reviews.len(), 1, "reviewed once: {reviews:?}");
    let (prompt, arrived) = &reviews[0];
    assert!(
        *arrived < r.at[answered],
        "the request came before the answer"
    );
    assert!(prompt.contains("Smoke"), "{prompt}");
    assert!(prompt.contains(CUT_MARK), "marked as cut: {prompt}");
    assert!(
        !prompt.contains("CONFIDENCE"),
        "only the answer so far: {prompt}"
    );
    assert!(prompt.contains("safety keyword (early): smoke"), "{prompt}");
    assert_eq!(
        r.teacher.chat_requests()[0].all_images().len(),
        1,
        "the teacher looks at the image itself"
    );
    // The finished answer: the early reason, needed (it says smoke too), and no second
    // review for it; the alert went as for any confirmed frame.
    assert_eq!(reasons, vec![early("smoke", Some(true))]);
    assert!(r.events.iter().any(|e| matches!(e, Event::Notified { .. })));
    // The review itself loaded the teacher: no keyword warm-up beside it.
    assert!(!r.events.iter().any(|e| matches!(
        e,
        Event::WarmUp {
            reason: WarmReason::Keyword { .. },
            ..
        }
    )));
}

#[tokio::test]
async fn a_negated_keyword_starts_no_review() {
    let r = run(
        "No smoke or fire here. A tidy kitchen counter with a kettle and a lamp by the window.\n\
         CONFIDENCE: 0.9",
        2,
        |_| {},
    )
    .await;
    assert!(r.escalations().is_empty(), "{:#?}", r.events);
    assert!(r.reviews().is_empty());
    assert_eq!(r.answer().2, vec![]);
}

#[tokio::test]
async fn an_echoed_keyword_starts_no_review() {
    let r = run(
        "I watch for safety-relevant activity: fire, flame, smoke, a person who has fallen. \
         A desk and a lamp, nothing else.\nCONFIDENCE: 0.9",
        2,
        |_| {},
    )
    .await;
    let (answered, seq, reasons) = r.answer();
    // Nothing went mid-answer; the finished answer escalates as today (the echo).
    assert!(
        !r.escalations()
            .iter()
            .any(|(_, rs)| rs.iter().any(|r| matches!(r, Reason::SafetyEarly { .. }))),
        "{:#?}",
        r.events
    );
    assert!(
        reasons
            .iter()
            .any(|r| matches!(r, Reason::EchoesPrompt { .. })),
        "{reasons:?}"
    );
    let escalated = r
        .position(|e| matches!(e, Event::Escalated { seq: s, .. } if *s == seq))
        .expect("the echo escalates when the answer is complete");
    assert!(answered < escalated);
}

#[tokio::test]
async fn an_early_review_the_full_answer_would_not_have_made_goes_on_and_is_counted() {
    let r = run(NEGATED_LATER, 2, |_| {}).await;
    let (answered, seq, reasons) = r.answer();
    assert_eq!(r.escalations(), vec![(seq, vec![early("smoke", None)])]);
    assert_eq!(reasons, vec![early("smoke", Some(false))]);
    let escalated = r
        .position(|e| matches!(e, Event::Escalated { .. }))
        .unwrap();
    assert!(escalated < answered);
    assert!(
        r.events
            .iter()
            .any(|e| matches!(e, Event::TeacherVerdict { seq: s, .. } if *s == seq)),
        "the review went on"
    );
    assert_eq!(r.reviews().len(), 1, "and only once");
    let store = CalibrationStore::load(&r.dir.path().join("logs"));
    assert_eq!(
        store.skills["skill.txt"].early_unneeded.get("smoke"),
        Some(&1),
        "{store:?}"
    );
}

#[tokio::test]
async fn with_early_escalation_off_the_order_is_as_before() {
    let r = run(HAZARD, 2, |c| c.policy.early_escalation = false).await;
    let (answered, seq, reasons) = r.answer();
    let smoke = Reason::Safety {
        keyword: "smoke".into(),
    };
    assert_eq!(reasons, vec![smoke.clone()]);
    assert_eq!(r.escalations(), vec![(seq, vec![smoke])]);
    let escalated = r
        .position(|e| matches!(e, Event::Escalated { .. }))
        .unwrap();
    assert!(
        answered < escalated,
        "escalated once the answer was complete"
    );
    let reviews = r.reviews();
    assert_eq!(reviews.len(), 1);
    assert!(reviews[0].0.contains("CONFIDENCE: 0.9"), "the full answer");
    assert!(!reviews[0].0.contains(CUT_MARK));
    // The keyword mid-answer still warms the teacher, as before.
    let warm = r
        .position(|e| {
            matches!(e, Event::WarmUp { role: Role::Teacher, reason: WarmReason::Keyword { seq: s, .. } } if *s == seq)
        })
        .expect("a keyword warm-up");
    assert!(warm < answered);
}
