//! Tests of the run loop's actions against the engine and the disk (`run.rs`'s `tests`).

#[cfg(test)]
use super::*;
use crate::event::Event;
use crate::service::protocol::ClientMsg;
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
    let (mut console, mut rx) = Console::new(&config);
    let mut a = app();

    assert!(!perform(
        &mut a,
        Action::Engine(Command::ForceEscalate),
        &mut console
    ));
    assert_eq!(rx.try_recv().unwrap(), ClientMsg::Escalate);
    perform(
        &mut a,
        Action::Engine(Command::SetPaused(true)),
        &mut console,
    );
    assert_eq!(
        rx.try_recv().unwrap(),
        ClientMsg::SetPaused { paused: true }
    );

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
        Action::Engine(Command::ForceEscalate),
        &mut console
    ));
    assert_eq!(a.notice.as_ref().unwrap().text, "the engine is not running");
    assert!(perform(&mut a, Action::Quit, &mut console));
}

#[test]
fn a_learned_case_is_a_request_to_the_engine_with_the_edited_fields() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let (mut console, mut rx) = Console::new(&config);
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
    let ClientMsg::SaveLearned {
        seq,
        expect,
        safety,
        ..
    } = rx.try_recv().unwrap()
    else {
        panic!("not a learned case")
    };
    assert_eq!(seq, 4);
    assert_eq!(expect, ["kettle", "steam", "rises", "stove"]);
    assert!(safety);
    // Whoever runs the engine writes it (and says so): see `learn_console`.
    // Nothing was written by the console itself.
    assert!(!config.paths.eval.join("learned.toml").exists());
}

#[test]
fn upskill_keys_are_requests_and_a_refusal_shows_on_the_screen() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_in(dir.path());
    let (mut console, mut rx) = Console::new(&config);
    let mut a = app();
    for act in a.handle_key(key(KeyCode::Char('u'))) {
        perform(&mut a, act, &mut console);
    }
    assert_eq!(a.screen, Screen::Upskill);
    assert_eq!(
        rx.try_recv().unwrap(),
        ClientMsg::UpskillStart {
            candidates: None,
            auto_apply: true
        }
    );
    assert!(a.upskill.running());
    // `r` while running does not start a second run.
    assert!(!a
        .handle_key(key(KeyCode::Char('r')))
        .contains(&Action::OpenUpskill));
    let acts = a.handle_key(key(KeyCode::Esc));
    assert!(acts.contains(&Action::CancelUpskill));
    for act in acts {
        perform(&mut a, act, &mut console);
    }
    assert_eq!(rx.try_recv().unwrap(), ClientMsg::UpskillCancel);
    // The engine says it could not start: the screen says why.
    a.handle_message(crate::service::protocol::ServerMsg::UpskillRefused(
        "cannot load the eval set (eval): bad".into(),
    ));
    let RunStatus::Refused(why) = &a.upskill.status else {
        panic!("{:?}", a.upskill.status)
    };
    assert!(why.starts_with("cannot load the eval set"), "{why}");
    a.handle_key(key(KeyCode::Esc));
    assert_eq!(a.screen, Screen::Monitor);
}
