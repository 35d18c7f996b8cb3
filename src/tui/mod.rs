//! The monitoring console: a thin face over the engine.
//!
//! `app` holds the state and turns keys and events into `Action`s; `ui` draws it;
//! `images` encodes the thumbnail off the UI thread; `terminal` enters and restores the
//! terminal; `export` saves an entry. `run` wires them to the engine.

pub mod app;
pub mod export;
pub mod images;
pub mod layout;
pub mod terminal;
pub mod ui;

pub use app::{Action, App, Entry, Notice, Screen, TeacherState, Theme};
pub use export::save_entry;
pub use images::ImageState;

use crate::config::Config;
use crate::engine::EngineHandle;
use crate::event::{Command, Event};
use color_eyre::eyre::WrapErr;
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Spinner speed while something is in flight.
const TICK: Duration = Duration::from_millis(150);
/// How long to wait for the engine's `Stopped` on quit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Carry out one action that needs more than the app's own state. True means quit.
pub fn perform(
    app: &mut App,
    action: Action,
    commands: &mpsc::UnboundedSender<Command>,
    config: &Config,
) -> bool {
    match action {
        Action::Quit => return true,
        Action::Redraw => {}
        Action::Engine(cmd) => {
            if commands.send(cmd).is_err() {
                app.notify("the engine is not running", true);
            }
        }
        Action::OpenUpskill => {
            // Hook for the upskill screen; until it lands, show the current skill.
            let path = config.skill_path();
            app.skill_text = Some(match std::fs::read_to_string(&path) {
                Ok(s) => s,
                Err(e) => format!("cannot read {}: {e}", path.display()),
            });
        }
        Action::SaveEntry(seq) => {
            let dir = config.paths.logs.join("saved");
            let (msg, warning) = match app.entry(seq) {
                Some(entry) => match export::save_entry(&dir, entry) {
                    Ok((jpg, _)) => (format!("saved {}", jpg.display()), false),
                    Err(e) => (format!("cannot save #{seq}: {e}"), true),
                },
                None => (format!("entry #{seq} is no longer in the log"), true),
            };
            app.notify(msg, warning);
        }
    }
    false
}

/// Run the console until the user quits, the terminal goes away, or SIGTERM/SIGHUP.
/// On the way out: `Shutdown` to the engine, wait up to 2 s for `Stopped`, restore.
pub async fn run(config: &Config, mut engine: EngineHandle) -> color_eyre::Result<()> {
    terminal::install_hooks();
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;
    let mut guard = terminal::enter().wrap_err("cannot set up the terminal")?;
    // Query the image protocol before anything reads terminal events.
    let mut images = ImageState::new(images::pick());
    let mut app = App::new(config);
    if let Ok(size) = guard.terminal.size() {
        app.set_size(size.width, size.height);
    }
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut engine_open = true;
    let mut dirty = true;
    let mut hung_up = false;
    let mut result: color_eyre::Result<()> = Ok(());

    'main: loop {
        if dirty {
            if let Err(e) = guard.terminal.draw(|f| ui::draw(f, &app, &mut images)) {
                result = Err(e).wrap_err("cannot draw to the terminal");
                break;
            }
            dirty = false;
        }
        let ticking = app.needs_tick();
        let mut actions = Vec::new();
        tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(k))) => actions = app.handle_key(k),
                Some(Ok(TermEvent::Mouse(m))) => actions = app.handle_mouse(m),
                Some(Ok(TermEvent::Resize(w, h))) => {
                    app.set_size(w, h);
                    dirty = true;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    result = Err(e).wrap_err("cannot read the terminal");
                    break 'main;
                }
                None => break 'main,
            },
            ev = engine.events.recv(), if engine_open => match ev {
                Some(ev) => {
                    app.handle_event(ev);
                    // Take whatever else is waiting (token bursts) before one redraw.
                    while let Ok(more) = engine.events.try_recv() {
                        app.handle_event(more);
                    }
                    dirty = true;
                }
                None => {
                    engine_open = false;
                    app.stopped = true;
                    dirty = true;
                }
            },
            _ = tick.tick(), if ticking => dirty |= app.tick(),
            redraw = images.ready() => dirty |= redraw,
            _ = sigterm.recv() => break 'main,
            _ = sighup.recv() => {
                // The terminal is gone: nothing to draw on or report to.
                hung_up = true;
                break 'main;
            }
        }
        for action in actions {
            dirty = true;
            if perform(&mut app, action, &engine.commands, config) {
                break 'main;
            }
        }
    }

    // Ask the engine to stop and wait (briefly) for it to say so.
    let _ = engine.commands.send(Command::Shutdown);
    if engine_open && !app.stopped {
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
            while let Some(ev) = engine.events.recv().await {
                if matches!(ev, Event::Stopped { .. }) {
                    break;
                }
            }
        })
        .await;
    }
    let restored = terminal::restore();
    drop(guard);
    if !hung_up && result.is_ok() {
        restored.wrap_err("cannot restore the terminal")?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::app::tests::{answer, app, frame};
    use crate::tui::images::tests::test_frame;

    #[test]
    fn actions_reach_the_engine_and_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.paths.logs = dir.path().join("logs");
        config.paths.skills = dir.path().join("skills");
        std::fs::create_dir_all(&config.paths.skills).unwrap();
        std::fs::write(config.skill_path(), "Describe the scene.").unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut a = app();

        assert!(!perform(
            &mut a,
            Action::Engine(Command::ForceEscalate),
            &tx,
            &config
        ));
        assert_eq!(rx.try_recv().unwrap(), Command::ForceEscalate);

        assert!(!perform(&mut a, Action::OpenUpskill, &tx, &config));
        assert_eq!(a.skill_text.as_deref(), Some("Describe the scene."));

        let mut ev = frame(3);
        if let Event::FrameTaken { image, .. } = &mut ev {
            *image = Some(test_frame(16, 9));
        }
        a.handle_event(ev);
        a.handle_event(answer(3, "A desk.", Some(0.9), vec![]));
        assert!(!perform(&mut a, Action::SaveEntry(3), &tx, &config));
        let saved: Vec<_> = std::fs::read_dir(dir.path().join("logs/saved"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(saved.len(), 2, "{saved:?}");
        let n = a.notice.as_ref().unwrap();
        assert!(!n.warning && n.text.starts_with("saved "), "{}", n.text);

        assert!(!perform(&mut a, Action::SaveEntry(99), &tx, &config));
        assert!(a.notice.as_ref().unwrap().warning);

        drop(rx);
        assert!(!perform(
            &mut a,
            Action::Engine(Command::Shutdown),
            &tx,
            &config
        ));
        assert_eq!(a.notice.as_ref().unwrap().text, "the engine is not running");
        assert!(perform(&mut a, Action::Quit, &tx, &config));
    }
}
