//! The run loop: terminal events, engine events and upskill events in, one redraw per
//! change; `perform` carries out the `Action`s that need more than the app's own state
//! (the engine, the disk, upskill runs).

use crate::config::Config;
use crate::engine::EngineHandle;
use crate::eval::cases::load_eval_set;
use crate::event::{Command, Event};
use crate::skill::ensure_writable;
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::images::{self, ImageState};
use crate::tui::learn_case::{self, LearnEdit};
use crate::tui::screens::calibration;
use crate::tui::{export, terminal, ui};
use crate::upskill::pipeline::{self, UpskillContext, UpskillEvent, UpskillOutcome};
use color_eyre::eyre::WrapErr;
use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Spinner speed while something is in flight.
const TICK: Duration = Duration::from_millis(150);
/// How long to wait for the engine's `Stopped` on quit.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// How long quitting waits for a cancelled upskill run to stop.
const UPSKILL_STOP_WAIT: Duration = Duration::from_secs(2);

/// An upskill run in progress.
struct UpskillRun {
    cancel: watch::Sender<bool>,
    task: JoinHandle<Option<UpskillOutcome>>,
}

/// What the run loop owns besides the app: the engine's commands, the config, and the
/// upskill run (its events come back on `upskill_tx`'s channel).
pub struct Console<'a> {
    pub config: &'a Config,
    pub commands: mpsc::UnboundedSender<Command>,
    pub upskill_tx: mpsc::UnboundedSender<UpskillEvent>,
    run: Option<UpskillRun>,
    /// The last run's context, kept to apply one of its rows later.
    last_ctx: Option<UpskillContext>,
}

impl<'a> Console<'a> {
    /// A console and the receiving end of its upskill events.
    pub fn new(
        config: &'a Config,
        commands: mpsc::UnboundedSender<Command>,
    ) -> (Self, mpsc::UnboundedReceiver<UpskillEvent>) {
        let (upskill_tx, upskill_rx) = mpsc::unbounded_channel();
        (
            Console {
                config,
                commands,
                upskill_tx,
                run: None,
                last_ctx: None,
            },
            upskill_rx,
        )
    }

    /// A run task is alive.
    pub fn upskill_active(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.task.is_finished())
    }

    /// Forget a run the app saw end.
    fn reap(&mut self, app: &App) {
        if !app.upskill.running() {
            self.run = None;
        }
    }

    /// Quitting mid-run: cancel, wait briefly, release the student.
    pub async fn stop_upskill(&mut self) {
        if let Some(run) = self.run.take() {
            let _ = run.cancel.send(true);
            let _ = tokio::time::timeout(UPSKILL_STOP_WAIT, run.task).await;
            let _ = self.commands.send(Command::HoldStudent(false));
        }
    }
}

/// Start an upskill run, or say on the screen why it cannot start.
fn start_upskill(app: &mut App, console: &mut Console) {
    if console.upskill_active() {
        return;
    }
    let config = console.config;
    let eval = match load_eval_set(&config.paths.eval) {
        Ok(e) => Arc::new(e),
        Err(e) => {
            app.upskill.refuse(format!(
                "cannot load the eval set ({}): {e}",
                config.paths.eval.display()
            ));
            return;
        }
    };
    // Refuse to start rather than lose the results at the end.
    if let Err(e) = ensure_writable(&config.paths.skills) {
        app.upskill.refuse(format!(
            "the skills dir {} is not writable ({e}): a better skill could not be saved",
            config.paths.skills.display()
        ));
        return;
    }
    let ctx = match UpskillContext::from_config(config, eval, config.upskill.candidates, true) {
        Ok(c) => c,
        Err(e) => {
            app.upskill
                .refuse(format!("cannot set up the model clients: {e}"));
            return;
        }
    };
    // The Pi cannot run the live feed and the eval at once.
    if console.commands.send(Command::HoldStudent(true)).is_err() {
        app.notify("the engine is not running", true);
    }
    let (cancel, cancel_rx) = watch::channel(false);
    let task = tokio::spawn(pipeline::run(
        ctx.clone(),
        console.upskill_tx.clone(),
        cancel_rx,
    ));
    app.upskill.begin(Instant::now());
    console.run = Some(UpskillRun { cancel, task });
    console.last_ctx = Some(ctx);
}

fn apply_upskill_row(app: &mut App, console: &Console, row: usize) {
    let (Some(ctx), Some(outcome)) = (&console.last_ctx, &app.upskill.outcome) else {
        app.notify("no finished upskill run to apply", true);
        return;
    };
    let skill = console.config.skill_path();
    match pipeline::apply(ctx, outcome, row, "applied by user") {
        Ok(history) => {
            app.upskill.applied = Some((row, Ok(history.display().to_string())));
            app.notify(
                format!("saved {}; used from the next frame", skill.display()),
                false,
            );
        }
        Err(e) => {
            app.upskill.applied = Some((row, Err(e.to_string())));
            app.notify(format!("could not save the skill: {e}"), true);
        }
    }
}

/// Append the edited case to `eval/learned.toml`, with the frame the model saw.
fn save_learned(app: &mut App, config: &Config, edit: &LearnEdit) {
    let eval = &config.paths.eval;
    let learned = eval.join(crate::learn::LEARNED_FILE);
    let Some(frame) = app.monitor.entry(edit.seq).and_then(|e| e.frame.clone()) else {
        app.notify(
            format!("#{} is no longer in the log: not added", edit.seq),
            true,
        );
        return;
    };
    let (_, count) = crate::learn::existing(eval);
    let case = learn_case::learned_case(edit, count, &config.student.model, &config.teacher.model);
    // The frame the model saw, handed over as bytes (no temp file in a shared /tmp).
    match crate::learn::append_cases(eval, &[(case.clone(), frame.jpeg.clone())]) {
        Ok(0) => app.notify(
            format!("case {} is already in {}", case.id, learned.display()),
            true,
        ),
        Ok(_) => app.notify(
            format!("added case {} to {}", case.id, learned.display()),
            false,
        ),
        Err(e) => app.notify(
            format!("cannot add the case to {}: {e}", learned.display()),
            true,
        ),
    }
}

/// Carry out one action that needs more than the app's own state. True means quit.
pub fn perform(app: &mut App, action: Action, console: &mut Console) -> bool {
    let config = console.config;
    match action {
        Action::Quit => return true,
        Action::Redraw => {}
        Action::Engine(cmd) => {
            if console.commands.send(cmd).is_err() {
                app.notify("the engine is not running", true);
            }
        }
        Action::OpenUpskill => start_upskill(app, console),
        Action::CancelUpskill => match &console.run {
            Some(run) => {
                let _ = run.cancel.send(true);
            }
            // Nothing is running after all: settle the screen.
            None => {
                for a in app.handle_upskill_event(UpskillEvent::Cancelled) {
                    if let Action::Engine(cmd) = a {
                        let _ = console.commands.send(cmd);
                    }
                }
            }
        },
        Action::ApplyUpskill(row) => apply_upskill_row(app, console, row),
        Action::OpenUpskillReport => {
            app.upskill.report_text =
                Some(match crate::upskill::report::latest(&config.paths.logs) {
                    None => format!(
                        "no upskill report under {} yet",
                        config.paths.logs.display()
                    ),
                    Some(p) => match crate::bounded_read::read_regular(&p, 16 * 1024 * 1024)
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
        Action::SaveLearned(edit) => save_learned(app, config, &edit),
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
/// On the way out: `Shutdown` to the engine, wait up to 2 s for `Stopped`, restore.
pub async fn run(config: &Config, mut engine: EngineHandle) -> color_eyre::Result<()> {
    terminal::install_hooks();
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut sighup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;
    let mut guard = terminal::enter().wrap_err("cannot set up the terminal")?;
    // Query the image protocol before anything reads terminal events.
    let mut images = ImageState::new(images::pick());
    let mut app = App::new(config);
    let (mut console, mut upskill_rx) = Console::new(config, engine.commands.clone());
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
            Some(ev) = upskill_rx.recv() => {
                actions = app.handle_upskill_event(ev);
                while let Ok(more) = upskill_rx.try_recv() {
                    actions.extend(app.handle_upskill_event(more));
                }
                console.reap(&app);
                dirty = true;
            }
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
            if perform(&mut app, action, &mut console) {
                break 'main;
            }
        }
    }

    // A run in progress is cancelled first (and the student released).
    console.stop_upskill().await;

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
#[path = "run_tests.rs"]
mod tests;
