//! Tests of the run loop's actions against the engine and the disk (`run.rs`'s `tests`).

#[cfg(test)]
use super::*;
use crate::tui::action::Screen;
use crate::tui::app::tests::{answer, app, frame, key};
use crate::tui::images::tests::test_frame;
use crate::tui::screens::upskill::RunStatus;
use crossterm::event::KeyCode;

const CASES: &str = "[[case]]\nid = \"lighter\"\ntext = \"A person holds a lighter.\"\nexpect = [\"person\"]\nsafety = false\n\n[[case]]\nid = \"stairs\"\ntext = \"Someone falls down the stairs.\"\nexpect = [\"fall\"]\nsafety = true\nsplit = \"holdout\"\n";

fn config_in(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.paths.logs = dir.join("logs");
    config.paths.skills = dir.join("skills");
    config.paths.eval = dir.join("eval");
    std::fs::create_dir_all(&config.paths.skills).unwrap();
    std::fs::create_dir_all(&config.paths.eval).unwrap();
    std::fs::write(config.skill_path(), "Describe the scene.").unwrap();
    std::fs::write(config.paths.eval.join("cases.toml"), CASES).unwrap();
    config
}

#[test]
fn actions_reach_the_engine_and_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut console, _urx) = Console::new(&config, tx);
    let mut a = app();

    assert!(!perform(
        &mut a,
        Action::Engine(Command::ForceEscalate),
        &mut console
    ));
    assert_eq!(rx.try_recv().unwrap(), Command::ForceEscalate);

    let mut ev = frame(3);
    if let Event::FrameTaken { image, .. } = &mut ev {
        *image = Some(test_frame(16, 9));
    }
    a.handle_event(ev);
    a.handle_event(answer(3, "A desk.", Some(0.9), vec![]));
    assert!(!perform(&mut a, Action::SaveEntry(3), &mut console));
    let saved: Vec<_> = std::fs::read_dir(dir.path().join("logs/saved"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(saved.len(), 2, "{saved:?}");
    let n = a.notice.as_ref().unwrap();
    assert!(!n.warning && n.text.starts_with("saved "), "{}", n.text);

    assert!(!perform(&mut a, Action::SaveEntry(99), &mut console));
    assert!(a.notice.as_ref().unwrap().warning);

    // Calibration with no file yet: an empty report, not an error.
    assert!(!perform(&mut a, Action::OpenCalibration, &mut console));
    assert_eq!(a.calibration.as_ref().unwrap().report.samples, 0);

    drop(rx);
    assert!(!perform(
        &mut a,
        Action::Engine(Command::Shutdown),
        &mut console
    ));
    assert_eq!(a.notice.as_ref().unwrap().text, "the engine is not running");
    assert!(perform(&mut a, Action::Quit, &mut console));
}

#[test]
fn learned_case_is_appended_with_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let (tx, _rx) = mpsc::unbounded_channel();
    let (mut console, _urx) = Console::new(&config, tx);
    let mut a = app();
    let mut ev = frame(4);
    if let Event::FrameTaken { image, .. } = &mut ev {
        *image = Some(test_frame(32, 18));
    }
    a.handle_event(ev);
    a.handle_event(answer(4, "Smoke on the stove.", Some(0.4), vec![]));
    a.handle_event(Event::Escalated {
        seq: 4,
        reasons: vec![],
        queue_len: 1,
        frame_path: None,
    });
    a.handle_event(Event::TeacherVerdict {
        seq: 4,
        verdict: crate::tui::popups::learn_editor::state::tests::verdict(),
        latency_ms: 10,
    });
    a.handle_key(key(KeyCode::Char('a')));
    assert!(a.learn.is_some());
    let acts = a.handle_key(key(KeyCode::Enter));
    assert!(a.learn.is_none());
    for act in acts {
        perform(&mut a, act, &mut console);
    }
    let n = a.notice.clone().unwrap();
    assert!(!n.warning, "{}", n.text);
    assert!(n.text.starts_with("added case learned-"), "{}", n.text);
    assert!(
        n.text.ends_with("-4 to ") || n.text.contains("learned.toml"),
        "{}",
        n.text
    );
    let toml = std::fs::read_to_string(config.paths.eval.join("learned.toml")).unwrap();
    assert!(
        toml.contains("expect = [\"kettle\", \"steam\", \"rises\", \"stove\"]"),
        "{toml}"
    );
    assert!(toml.contains("split = \"train\""), "{toml}");
    assert!(
        toml.contains("# source: console, frame #4, student"),
        "{toml}"
    );
    let (ids, count) = crate::learn::existing(&config.paths.eval);
    assert_eq!(count, 1);
    let id = ids.into_iter().next().unwrap();
    let jpg = config.paths.eval.join(format!("images/learned/{id}.jpg"));
    assert_eq!(
        std::fs::read(&jpg).unwrap(),
        a.monitor
            .entry(4)
            .unwrap()
            .frame
            .as_ref()
            .unwrap()
            .jpeg
            .to_vec()
    );
    // The learned set still loads with the hand-written one.
    let set = load_eval_set(&config.paths.eval).unwrap();
    assert_eq!(set.cases.len(), 3);
    // The same frame again: already there, said so.
    a.handle_key(key(KeyCode::Char('a')));
    for act in a.handle_key(key(KeyCode::Enter)) {
        perform(&mut a, act, &mut console);
    }
    assert!(a.notice.as_ref().unwrap().text.contains("already in"));
}

#[tokio::test]
async fn upskill_refuses_a_bad_eval_set_or_unwritable_skills() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    std::fs::write(config.paths.eval.join("cases.toml"), "[[case]]\nid = 3\n").unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut a = app();
    {
        let (mut console, _urx) = Console::new(&config, tx.clone());
        a.handle_key(key(KeyCode::Char('u')));
        perform(&mut a, Action::OpenUpskill, &mut console);
    }
    assert!(rx.try_recv().is_err(), "the student is not held");
    let RunStatus::Refused(why) = &a.upskill.status else {
        panic!("{:?}", a.upskill.status)
    };
    assert!(why.starts_with("cannot load the eval set"), "{why}");
    std::fs::write(config.paths.eval.join("cases.toml"), CASES).unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    config.paths.skills = blocker;
    let (mut console, _urx) = Console::new(&config, tx);
    perform(&mut a, Action::OpenUpskill, &mut console);
    let RunStatus::Refused(why) = &a.upskill.status else {
        panic!("{:?}", a.upskill.status)
    };
    assert!(why.contains("is not writable"), "{why}");
    assert!(rx.try_recv().is_err());
    // Esc goes back: nothing is running.
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Monitor);
}

#[tokio::test]
async fn upskill_holds_the_student_and_cancel_releases_it() {
    // A server that accepts and never answers: every call hangs until cancelled.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.student.host = format!("http://{addr}");
    config.teacher.host = format!("http://{addr}");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut console, mut urx) = Console::new(&config, tx);
    let mut a = app();
    for act in a.handle_key(key(KeyCode::Char('u'))) {
        perform(&mut a, act, &mut console);
    }
    assert_eq!(rx.try_recv().unwrap(), Command::HoldStudent(true));
    assert!(a.upskill.running() && console.upskill_active());
    let wait = Duration::from_secs(10);
    let ev = tokio::time::timeout(wait, urx.recv())
        .await
        .unwrap()
        .unwrap();
    a.handle_upskill_event(ev);
    assert_eq!(a.upskill.columns.len(), 2);
    // `u` again while running does not start a second run.
    assert!(!a
        .handle_key(key(KeyCode::Char('r')))
        .contains(&Action::OpenUpskill));
    let acts = a.handle_key(key(KeyCode::Esc));
    assert!(acts.contains(&Action::CancelUpskill));
    assert_eq!(a.screen, Screen::Upskill, "Esc cancels and stays");
    for act in acts {
        perform(&mut a, act, &mut console);
    }
    while a.upskill.running() {
        let ev = tokio::time::timeout(wait, urx.recv())
            .await
            .expect("the run stops promptly")
            .unwrap();
        for act in a.handle_upskill_event(ev) {
            perform(&mut a, act, &mut console);
        }
    }
    console.reap(&a);
    assert_eq!(a.upskill.status, RunStatus::Cancelled);
    assert_eq!(rx.try_recv().unwrap(), Command::HoldStudent(false));
    assert!(!console.upskill_active());
    // Stopped: Esc now goes back to the monitor.
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Monitor);
    server.abort();
}

#[tokio::test]
async fn quitting_mid_run_cancels_and_releases() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = config_in(dir.path());
    config.student.host = format!("http://{addr}");
    config.teacher.host = format!("http://{addr}");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut console, _urx) = Console::new(&config, tx);
    let mut a = app();
    perform(&mut a, Action::OpenUpskill, &mut console);
    assert_eq!(rx.try_recv().unwrap(), Command::HoldStudent(true));
    let t0 = Instant::now();
    console.stop_upskill().await;
    assert!(t0.elapsed() < UPSKILL_STOP_WAIT, "{:?}", t0.elapsed());
    assert_eq!(rx.try_recv().unwrap(), Command::HoldStudent(false));
    assert!(!console.upskill_active());
    server.abort();
}
