//! The student down, the teacher up (issue 34), against the Ollama test server: frames are
//! still taken and shown (the log says `student offline`), `e` sends the current frame to
//! the teacher, who reviews it alone, and after `policy.student_down_secs` the teacher
//! watches alone, one frame per `policy.fallback_every_secs`, until the student answers
//! again; with the teacher down too there is nothing to send to, said once.

mod support;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::engine::{self, EngineHandle, EngineOptions};
use gemmaedge_tui::event::{Command, Event};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::teacher::NO_STUDENT_ANSWER;
use std::path::Path;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, STUDENT, TEACHER};

const VERDICT: &str = r#"{"agrees":false,"safety_relevant":false,"summary":"A rocket on a pad.","missed":["rocket"],"wrong":[]}"#;

/// The student's port closed (every connection refused), the teacher up.
async fn servers() -> (OllamaTestServer, OllamaTestServer) {
    let s = OllamaTestServer::start(&[STUDENT]).await;
    s.set_keep_alive(false);
    s.set_handler(|_| Reply::text("A calm office.\nCONFIDENCE: 0.9"));
    s.stop_listening();
    let t = OllamaTestServer::start(&[TEACHER]).await;
    t.set_handler(|_| Reply::text(VERDICT));
    (s, t)
}

fn config(dir: &Path, s: &OllamaTestServer, t: &OllamaTestServer, every: u64) -> Config {
    let mut c = engine_config(dir, &s.url(), &t.url(), 5);
    c.policy.student_down_secs = 1;
    c.policy.fallback_every_secs = every;
    c
}

/// Every event until `f` says stop (true), or panic after `secs` showing what came.
async fn until(h: &mut EngineHandle, secs: u64, mut f: impl FnMut(&Event) -> bool) -> Vec<Event> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(ev)) => {
                let done = f(&ev);
                seen.push(ev);
                if done {
                    return seen;
                }
            }
            other => panic!("condition not met ({other:?}); saw {seen:#?}"),
        }
    }
}

/// Events for `d`, however many.
async fn during(h: &mut EngineHandle, d: Duration) -> Vec<(Instant, Event)> {
    let end = tokio::time::Instant::now() + d;
    let mut seen = Vec::new();
    while let Ok(Some(ev)) = tokio::time::timeout_at(end, h.events.recv()).await {
        seen.push((Instant::now(), ev));
    }
    seen
}

async fn shutdown(mut h: EngineHandle) {
    h.commands.send(Command::Shutdown).unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(ev) = h.events.recv().await {
            if matches!(ev, Event::Stopped { .. }) {
                break;
            }
        }
    })
    .await;
    assert!(end.is_ok(), "the engine stops within 5 s");
}

fn down_escalation(ev: &Event) -> Option<u64> {
    match ev {
        Event::Escalated { seq, reasons, .. } if reasons.contains(&Reason::StudentDown) => {
            Some(*seq)
        }
        _ => None,
    }
}

#[tokio::test]
async fn frames_are_shown_while_the_student_is_down_and_e_sends_one_to_the_teacher() {
    let (s, t) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    // The teacher-only watch off: only `e` sends a frame here.
    let mut h = engine::start(config(dir.path(), &s, &t, 0), EngineOptions::default()).unwrap();

    // Frames keep coming, each shown with its image and logged as not answered.
    let mut shown = Vec::new();
    let mut unanswered = Vec::new();
    until(&mut h, 15, |ev| {
        match ev {
            Event::FrameTaken {
                seq, image, label, ..
            } => {
                assert!(image.is_some(), "frame #{seq} is shown with its image");
                shown.push((*seq, label.clone()));
            }
            Event::FrameUnanswered { seq, why } => {
                assert_eq!(why, "student offline");
                unanswered.push(*seq);
            }
            _ => {}
        }
        unanswered.len() >= 3
    })
    .await;
    assert!(
        unanswered.iter().all(|u| shown.iter().any(|(s, _)| s == u)),
        "every unanswered frame was shown first: {shown:?} {unanswered:?}"
    );
    let labels: std::collections::HashSet<_> = shown.iter().map(|(_, l)| l).collect();
    assert!(labels.len() >= 2, "the sample photos change: {shown:?}");
    assert_eq!(t.chat_count(), 0, "nothing goes to the teacher by itself");

    // `e`: the current frame goes to the teacher, who reviews it alone.
    h.commands.send(Command::ForceEscalate).unwrap();
    let mut forced = None;
    let seen = until(&mut h, 10, |ev| match ev {
        Event::Escalated { seq, reasons, .. } if reasons == &[Reason::Forced] => {
            forced = Some(*seq);
            false
        }
        Event::TeacherVerdict { seq, .. } => Some(*seq) == forced,
        _ => false,
    })
    .await;
    let seq = forced.unwrap();
    assert!(unanswered.contains(&seq) || seq > *unanswered.last().unwrap());
    let Some(Event::TeacherVerdict { verdict, .. }) = seen.last() else {
        unreachable!()
    };
    assert_eq!(verdict.summary, "A rocket on a pad.");
    assert_eq!(verdict.agrees, None, "no student answer to agree with");
    let reqs = t.chat_requests();
    assert_eq!(reqs.len(), 1);
    let user = reqs[0].last_content("user").unwrap();
    assert!(user.contains(NO_STUDENT_ANSWER), "{user}");
    assert!(user.contains("because: forced"), "{user}");
    let imgs = reqs[0].all_images();
    assert_eq!(imgs.len(), 1);
    assert_eq!(&imgs[0][..2], &[0xFF, 0xD8], "the frame as a JPEG");
    shutdown(h).await;
}

#[tokio::test]
async fn the_teacher_watches_alone_one_frame_per_interval_until_the_student_is_back() {
    let (s, t) = servers().await;
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(config(dir.path(), &s, &t, 2), EngineOptions::default()).unwrap();

    // Down for a second: the teacher starts watching alone.
    until(&mut h, 15, |ev| {
        matches!(
            ev,
            Event::TeacherAlone {
                on: true,
                every_secs: 2
            }
        )
    })
    .await;
    let seen = during(&mut h, Duration::from_millis(6500)).await;
    let sent: Vec<Instant> = seen
        .iter()
        .filter_map(|(at, ev)| down_escalation(ev).map(|_| *at))
        .collect();
    // One frame per 2 s (the first may have gone with the start of the watch).
    assert!(
        (2..=4).contains(&sent.len()),
        "{} sent: {seen:#?}",
        sent.len()
    );
    for w in sent.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap >= Duration::from_millis(1800),
            "{gap:?} between two frames"
        );
    }
    // Each reached the teacher with the frame and no student answer.
    assert!(t.wait_for_chats(2, Duration::from_secs(5)).await);
    for r in t.chat_requests() {
        let user = r.last_content("user").unwrap();
        assert!(user.contains("because: student down"), "{user}");
        assert!(user.contains(NO_STUDENT_ANSWER), "{user}");
        assert_eq!(r.all_images().len(), 1);
    }

    // The student comes back: the watch stops as soon as it answers.
    s.resume_listening();
    let seen = until(&mut h, 30, |ev| matches!(ev, Event::StudentAnswer { .. })).await;
    assert!(
        matches!(seen[seen.len() - 2], Event::TeacherAlone { on: false, .. }),
        "the watch stops with the first answer: {:#?}",
        &seen[seen.len().saturating_sub(3)..]
    );
    let later = during(&mut h, Duration::from_millis(4500)).await;
    assert!(
        later.iter().all(|(_, ev)| down_escalation(ev).is_none()),
        "no fallback after the student answered: {later:#?}"
    );
    assert!(
        later
            .iter()
            .any(|(_, ev)| matches!(ev, Event::StudentAnswer { .. })),
        "answers flow again"
    );
    shutdown(h).await;
}

#[tokio::test]
async fn with_the_teacher_down_too_nothing_is_sent_and_that_is_said_once() {
    let (s, t) = servers().await;
    t.set_keep_alive(false);
    t.stop_listening();
    let dir = tempfile::tempdir().unwrap();
    let mut h = engine::start(config(dir.path(), &s, &t, 1), EngineOptions::default()).unwrap();
    let seen = during(&mut h, Duration::from_secs(5)).await;
    let both: Vec<_> = seen
        .iter()
        .filter(|(_, ev)| matches!(ev, Event::Warning { message } if message.contains("both down")))
        .collect();
    assert_eq!(both.len(), 1, "said once: {seen:#?}");
    assert!(
        seen.iter().all(|(_, ev)| down_escalation(ev).is_none()
            && !matches!(ev, Event::TeacherAlone { on: true, .. })),
        "nothing to send to: {seen:#?}"
    );
    let unanswered = seen
        .iter()
        .filter(|(_, ev)| matches!(ev, Event::FrameUnanswered { .. }))
        .count();
    assert!(unanswered >= 3, "frames are still shown: {unanswered}");
    shutdown(h).await;
}
