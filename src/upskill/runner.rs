//! One upskill run at a time, owned by whoever runs the engine (the service, or the
//! console when it runs the engine itself): start with the checks that would otherwise
//! lose the result at the end, cancel, apply a finished run's row.

use super::pipeline::{self, UpskillContext, UpskillEvent, UpskillOutcome};
use crate::config::Config;
use crate::engine::ModelGates;
use crate::roles::skill::ensure_writable;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long stopping waits for a cancelled run to end.
const STOP_WAIT: Duration = Duration::from_secs(2);

struct Run {
    cancel: watch::Sender<bool>,
    task: JoinHandle<Option<UpskillOutcome>>,
}

/// The run in progress and the last finished one.
pub struct UpskillRunner {
    config: Config,
    /// The engine's schedulers: the run's calls take background turns on them.
    gates: Option<ModelGates>,
    run: Option<Run>,
    last_ctx: Option<UpskillContext>,
    last_outcome: Option<UpskillOutcome>,
}

impl UpskillRunner {
    /// A runner whose calls share the models through `gates` (None: calls go straight to
    /// the servers, as `upskill` from a shell does with no service running).
    pub fn new(config: Config, gates: Option<ModelGates>) -> Self {
        UpskillRunner {
            config,
            gates,
            run: None,
            last_ctx: None,
            last_outcome: None,
        }
    }

    /// A run task is alive.
    pub fn active(&self) -> bool {
        self.run.as_ref().is_some_and(|r| !r.task.is_finished())
    }

    /// Start a run whose events go to `events`; `Err` says why it cannot start.
    pub fn start(
        &mut self,
        candidates: Option<usize>,
        auto_apply: bool,
        events: mpsc::UnboundedSender<UpskillEvent>,
    ) -> Result<(), String> {
        if self.active() {
            return Err("an upskill run is already under way".into());
        }
        let config = &self.config;
        let eval = crate::eval::cases::load_for(config).map_err(|e| {
            format!(
                "cannot load the eval set ({}): {e}",
                config.paths.eval.display()
            )
        })?;
        // Refuse to start rather than lose the results at the end.
        ensure_writable(&config.paths.skills).map_err(|e| {
            format!(
                "the skills dir {} is not writable ({e}): a better skill could not be saved",
                config.paths.skills.display()
            )
        })?;
        let n = candidates.unwrap_or(config.upskill.candidates);
        let mut ctx = UpskillContext::from_config(config, Arc::new(eval), n, auto_apply)
            .map_err(|e| format!("cannot set up the model clients: {e}"))?;
        if let Some(g) = &self.gates {
            ctx.student = g.background(ctx.student);
            ctx.teacher = g.background(ctx.teacher);
        }
        let (cancel, cancel_rx) = watch::channel(false);
        let task = tokio::spawn(pipeline::run(ctx.clone(), events, cancel_rx));
        self.run = Some(Run { cancel, task });
        self.last_ctx = Some(ctx);
        self.last_outcome = None;
        Ok(())
    }

    /// Ask the run to stop (in-flight calls stop promptly). False: nothing was running.
    pub fn cancel(&self) -> bool {
        match &self.run {
            Some(run) if !run.task.is_finished() => run.cancel.send(true).is_ok(),
            _ => false,
        }
    }

    /// Keep what a run reports that a later `apply` needs.
    pub fn observe(&mut self, ev: &UpskillEvent) {
        match ev {
            UpskillEvent::Finished(outcome) => self.last_outcome = Some(outcome.clone()),
            UpskillEvent::Failed(_) | UpskillEvent::Cancelled => self.last_outcome = None,
            _ => {}
        }
    }

    /// Save row `row` of the finished run as the skill; the history copy's path.
    pub fn apply(&self, row: usize) -> Result<PathBuf, String> {
        let (Some(ctx), Some(outcome)) = (&self.last_ctx, &self.last_outcome) else {
            return Err("no finished upskill run to apply".into());
        };
        pipeline::apply(ctx, outcome, row, "applied by user").map_err(|e| e.to_string())
    }

    /// Cancel a run in progress and wait (briefly) for it to end.
    pub async fn stop(&mut self) {
        if let Some(run) = self.run.take() {
            let _ = run.cancel.send(true);
            let _ = tokio::time::timeout(STOP_WAIT, run.task).await;
        }
    }
}
