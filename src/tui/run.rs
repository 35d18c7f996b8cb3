//! The run loop: terminal events and the engine link's messages in, one redraw per
//! change; `perform` carries out the `Action`s that need more than the app's own state.
//!
//! The engine is at the other end of an [`EngineLink`]: the service this console is
//! attached to, or a hub of its own in this process. Either way engine commands, upskill
//! runs and learned cases are requests to it, so every key does the same thing attached
//! or not; only reading the disk (calibration, the last upskill report) and saving an
//! entry (`s`, this console's own copy) happen here.

use crate::config::Config;
use crate::event::Command;
use crate::service::attach::EngineLink;
use crate::service::protocol::{ClientMsg, ServerMsg};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::images::{self, ImageState};
use crate::tui::screens::calibration;
use crate::tui::{export, terminal, ui};
use color_eyre::eyre::WrapErr;
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Spinner speed while something is in flight.
const TICK: Duration = Duration::from_millis(150);

/// What the run loop owns besides the app: the config, and the requests for the engine
/// (forwarded to the link by the loop).
pub struct Console<'a> {
    pub config: &'a Config,
    pub requests: mpsc::UnboundedSender<ClientMsg>,
}

impl<'a> Console<'a> {
    /// A console and the receiving end of its requests.
    pub fn new(config: &'a Config) -> (Self, mpsc::UnboundedReceiver<ClientMsg>) {
        let (requests, rx) = mpsc::unbounded_channel();
        (Console { config, requests }, rx)
    }

    fn request(&self, app: &mut App, msg: ClientMsg) {
        if self.requests.send(msg).is_err() {
            app.notify("the engine is not running", true);
        }
    }
}

/// The request an engine command from a key is.
fn command_request(cmd: Command) -> Option<ClientMsg> {
    match cmd {
        Command::ForceEscalate => Some(ClientMsg::Escalate),
        Command::SetPaused(paused) => Some(ClientMsg::SetPaused { paused }),
        Command::Ack { incident, .. } => Some(ClientMsg::Ack { incident }),
        Command::SetWatches(watches) => Some(ClientMsg::SetWatches { watches }),
        Command::Warn(_) | Command::Shutdown => None,
    }
}

/// Carry out one action that needs more than the app's own state. True means quit.
pub fn perform(app: &mut App, action: Action, console: &mut Console) -> bool {
    let config = console.config;
    match action {
        Action::Quit => return true,
        Action::Redraw => {}
        Action::HistoryQuery {
            filter,
            after,
            limit,
        } => console.request(
            app,
            ClientMsg::History {
                filter,
                after,
                limit,
            },
        ),
        Action::HistoryDetail(incident) => {
            console.request(app, ClientMsg::HistoryDetail { incident })
        }
        Action::HistoryFrame(id) => console.request(app, ClientMsg::HistoryFrame { id }),
        Action::Notice(text) => app.notify(text, true),
        Action::Engine(cmd) => {
            if let Some(msg) = command_request(cmd) {
                console.request(app, msg);
            }
        }
        Action::OpenUpskill => {
            if !app.upskill.running() {
                app.upskill.begin(Instant::now());
                console.request(
                    app,
                    ClientMsg::UpskillStart {
                        candidates: None,
                        auto_apply: true,
                    },
                );
            }
        }
        Action::CancelUpskill => console.request(app, ClientMsg::UpskillCancel),
        Action::ApplyUpskill(row) => console.request(app, ClientMsg::UpskillApply { row }),
        Action::OpenUpskillReport => {
            app.upskill.report_text =
                Some(match crate::upskill::report::latest(&config.paths.logs) {
                    None => format!(
                        "no upskill report under {} yet",
                        config.paths.logs.display()
                    ),
                    Some(p) => match crate::files::bounded_read::read_regular(&p, 16 * 1024 * 1024)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    {
                        Some(v) => format!(
                            "report {}\n{}",
                            p.display(),
                            crate::upskill::report::summary_text(&v)
                        ),
                        None => format!("cannot read the report {}", p.display()),
                    },
                });
        }
        Action::OpenCalibration => {
            app.calibration = Some(calibration::load(
                &config.paths.logs,
                &app.skill,
                config.policy.confidence_threshold,
            ));
        }
        Action::SaveLearned(edit) => console.request(
            app,
            ClientMsg::SaveLearned {
                seq: edit.seq,
                captured_at: edit.captured_at,
                expect: edit.expect,
                forbid: edit.forbid,
                safety: edit.safety,
            },
        ),
        Action::SaveEntry(seq) => {
            let dir = config.paths.logs.join("saved");
            let (msg, warning) = match app.monitor.entry(seq) {
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
/// On the way out an attached console just closes; an engine of its own is stopped (a
/// running upskill cancelled, the log flushed). Then the terminal is restored.
pub async fn run(config: &Config, mut link: EngineLink) -> color_eyre::Result<()> {
    // main installed it already; a library caller gets it here (the first call wins).
    crate::hooks::install(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;
    let mut guard = terminal::enter().wrap_err("cannot set up the terminal")?;
    // Query the image protocol before anything reads terminal events.
    let mut images = ImageState::new(images::pick());
    let mut app = App::new(config);
    app.attached = link.attached().map(|(info, _)| info.clone());
    let (mut console, mut requests) = Console::new(config);
    if let Ok(size) = guard.terminal.size() {
        app.set_size(size.width, size.height);
    }
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whoever runs the engine keeps when this user's consoles were last seen: ask for the
    // "while you were away" summary now, say we are here every minute, and once more on
    // a clean quit.
    link.send(ClientMsg::Away);
    let mut here = tokio::time::interval_at(
        tokio::time::Instant::now() + crate::history::presence::HERE_EVERY,
        crate::history::presence::HERE_EVERY,
    );
    here.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut quit = false;
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
            batch = link.recv(), if engine_open => match batch {
                Some(batch) => {
                    for m in batch {
                        actions.extend(app.handle_message(m));
                    }
                    // Take whatever else is waiting (token bursts) before one redraw.
                    while let Some(more) = link.try_recv() {
                        for m in more {
                            actions.extend(app.handle_message(m));
                        }
                    }
                    dirty = true;
                }
                None => {
                    engine_open = false;
                    app.stopped = true;
                    if app.attached.is_some() {
                        app.notify("the service has gone: q to quit, then start it again", true);
                    }
                    dirty = true;
                }
            },
            Some(req) = requests.recv() => {
                if !link.send(req) {
                    app.notify("the engine is not running", true);
                    dirty = true;
                }
            }
            _ = tick.tick(), if ticking => dirty |= app.tick(),
            _ = here.tick(), if engine_open => {
                link.send(ClientMsg::Here);
            }
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
            if perform(&mut app, action, &mut console) {
                quit = true;
                break 'main;
            }
        }
    }

    if quit && engine_open {
        say_leaving(&mut link).await;
    }
    link.close().await;
    let restored = terminal::restore();
    drop(guard);
    if !hung_up && result.is_ok() {
        restored.wrap_err("cannot restore the terminal")?;
    }
    result
}

/// A clean quit: record that this user's console left now, waiting (at most a second)
/// for the engine's side to say it has.
async fn say_leaving(link: &mut EngineLink) {
    if !link.send(ClientMsg::Here) {
        return;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(batch) = link.recv().await {
            if batch.iter().any(|m| matches!(m, ServerMsg::Here)) {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
