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

/// Spinner speed while something is in flight.
const TICK: Duration = Duration::from_millis(150);
/// How long to wait for the engine's `Stopped` on quit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Run the console until the user quits or a signal arrives.
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
    let saved_dir = config.paths.logs.join("saved");
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut engine_open = true;
    let mut input_open = true;
    let mut dirty = true;
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
            ev = input.next(), if input_open => match ev {
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
                None => {
                    input_open = false;
                    break 'main;
                }
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
                    app.notify("the engine stopped", true);
                    dirty = true;
                }
            },
            _ = tick.tick(), if ticking => {
                app.tick();
                dirty = true;
            }
            redraw = images.ready() => dirty |= redraw,
            _ = sigterm.recv() => break 'main,
            _ = sighup.recv() => break 'main,
        }
        for action in actions {
            dirty = true;
            match action {
                Action::Quit => break 'main,
                Action::Redraw => {}
                Action::Engine(cmd) => {
                    if engine.commands.send(cmd).is_err() {
                        app.notify("the engine is not running", true);
                    }
                }
                Action::OpenUpskill => {
                    // Hook for the upskill screen; for now show the current skill.
                    app.skill_text = Some(match std::fs::read_to_string(config.skill_path()) {
                        Ok(s) => s,
                        Err(e) => format!("cannot read {}: {e}", config.skill_path().display()),
                    });
                }
                Action::SaveEntry(seq) => {
                    let msg = match app.entry(seq) {
                        Some(entry) => match export::save_entry(&saved_dir, entry) {
                            Ok((jpg, _)) => (format!("saved {}", jpg.display()), false),
                            Err(e) => (format!("cannot save #{seq}: {e}"), true),
                        },
                        None => (format!("entry #{seq} is no longer in the log"), true),
                    };
                    app.notify(msg.0, msg.1);
                }
            }
        }
    }
    let _ = input_open;

    // Ask the engine to stop and wait (briefly) for it to say so.
    let _ = engine.commands.send(Command::Shutdown);
    if engine_open {
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, async {
            while let Some(ev) = engine.events.recv().await {
                if matches!(ev, Event::Stopped { .. }) {
                    break;
                }
            }
        })
        .await;
    }
    drop(guard);
    terminal::restore().wrap_err("cannot restore the terminal")?;
    result
}
