//! The engine: frames → student → policy → teacher → events. No terminal code here.
//!
//! This file is the wiring: `start` builds the parts and spawns their tasks, the command
//! loop turns a face's commands into their effects, and the stop drains the teacher queue.
//! A capture thread feeds the latest-frame slot; the student loop (`student_loop.rs`) takes
//! the newest frame, streams the student's answer and applies the policy; escalated frames
//! (`escalation.rs`) wait in the bounded priority queue for the teacher worker
//! (`teacher_worker.rs`), so teacher calls never block the student; each verdict's side
//! effects are `verdict_effects.rs`'; a health monitor per server (`health.rs`) retries
//! an offline server with backoff; `warm.rs` keeps the models loaded. Every event goes to
//! the session log and to the face (`emitter.rs`).

use crate::config::Config;
use crate::event::{Command, Event, Role};
use crate::frame::slot::slot;
use crate::frame::source::{open_source, spawn_capture, CaptureNotice};
use crate::history::incident::Tracker;
use crate::history::rows::Origin;
use crate::history::{HistoryHandle, Resume};
use crate::model::scheduler::{Priority, Scheduler};
use crate::model::{ModelClient, ModelError};
use crate::policy::calibration::CalibrationStore;
use crate::record::session_log::SessionLog;
use crate::roles::skill::SkillStore;
use chrono::Utc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

mod emitter;
mod escalation;
mod health;
mod monitor;
mod shared;
mod student_answer;
mod student_down;
mod student_failure;
mod student_loop;
pub mod teacher_queue;
mod teacher_worker;
mod verdict_effects;
mod vision_check;
mod warm;
mod watches;

use emitter::Emitter;
use escalation::Escalator;
pub use health::model_listed;
use health::HealthGate;
use monitor::health_loop;
use shared::Shared;
use student_loop::StudentLoop;
use teacher_worker::TeacherWorker;
use verdict_effects::VerdictEffects;

/// What a face holds: the engine's events, a way to send it commands, its task, and the
/// schedulers in front of both models (for eval and upskill calls that must share them).
pub struct EngineHandle {
    pub events: mpsc::UnboundedReceiver<Event>,
    pub commands: mpsc::UnboundedSender<Command>,
    pub task: tokio::task::JoinHandle<()>,
    pub gates: ModelGates,
}

/// One scheduler per model: the engine's calls go first (`Priority::Live`), others take
/// `Priority::Background` turns between them.
#[derive(Debug, Clone)]
pub struct ModelGates {
    pub student: Scheduler,
    pub teacher: Scheduler,
}

impl ModelGates {
    /// From `upskill.concurrency` (the student's calls at a time) and
    /// `upskill.calls_between_frames`; the teacher takes one call at a time, reviews first.
    pub fn new(config: &Config) -> Self {
        ModelGates {
            student: Scheduler::new(
                config.upskill.concurrency,
                config.upskill.calls_between_frames,
            ),
            teacher: Scheduler::new(1, 1),
        }
    }

    /// `client` taking background turns on its role's scheduler.
    pub fn background(&self, client: ModelClient) -> ModelClient {
        let s = match client.role() {
            Role::Student => self.student.clone(),
            Role::Teacher => self.teacher.clone(),
        };
        client.with_gate(s, Priority::Background)
    }
}

/// Knobs a face sets that are not in the config.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Stop after this many student answers.
    pub max_frames: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("frame source: {0}")]
    Source(String),
    #[error("{role} client: {error}")]
    Client { role: Role, error: ModelError },
}

/// What the command loop acts on.
struct Controls {
    shared: Arc<Shared>,
    effects: Arc<VerdictEffects>,
    escalator: Arc<Escalator>,
    paused: watch::Sender<bool>,
}

/// How long the shutdown waits for the capture thread (it sees the stop within 50 ms
/// unless a read is stuck).
const CAPTURE_JOIN_LIMIT: Duration = Duration::from_secs(1);

/// Start the engine (inside a tokio runtime). Fails only when no frame source can be
/// opened at all or a client cannot be built; an offline server is not a failure.
pub fn start(config: Config, options: EngineOptions) -> Result<EngineHandle, EngineError> {
    let client = |role: Role| {
        let host = match role {
            Role::Student => &config.student,
            Role::Teacher => &config.teacher,
        };
        ModelClient::new(host, role).map_err(|error| EngineError::Client { role, error })
    };
    let student = client(Role::Student)?;
    let teacher = client(Role::Teacher)?;
    let gates = ModelGates::new(&config);
    let (source, notices) = open_source(&config.source, config.frame.max_side)
        .map_err(|e| EngineError::Source(e.to_string()))?;
    let source_desc = source.describe();

    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let started = Utc::now();
    let log = SessionLog::new(&config.paths.logs, started).with_device(&config.device.name);
    let (history, resume, history_problem) = open_history(&config, started);
    let skills = SkillStore::open(&config.skill_path());
    let (watches, watches_problem) = watches::EngineWatches::open(&config);
    let watches = Arc::new(Mutex::new(watches));
    let (keyword_tx, keyword_rx) = mpsc::unbounded_channel();

    let emitter = Arc::new(Emitter::new(ev_tx, log, history));
    let stop = watch::channel(false).0;
    let calibration = Arc::new(Mutex::new(CalibrationStore::load(&config.paths.logs)));
    let escalator = Arc::new(Escalator::new(
        config.policy.teacher_queue,
        config.policy.forced_per_minute,
        config.privacy.save_frames,
        emitter.clone(),
    ));
    let effects = Arc::new(VerdictEffects::new(
        &config,
        emitter.clone(),
        stop.subscribe(),
        calibration.clone(),
        watches.clone(),
        Tracker::new(
            config.incidents.gap_secs,
            resume.next_incident_id,
            resume.open_incidents,
        ),
    ));
    let controls = Controls {
        effects: effects.clone(),
        shared: Arc::new(Shared {
            config,
            emitter,
            stop,
            student_health: HealthGate::new(Role::Student),
            teacher_health: HealthGate::new(Role::Teacher),
            watches,
        }),
        escalator: escalator.clone(),
        paused: watch::channel(false).0,
    };
    let shared = controls.shared.clone();
    let student_ready = watch::channel(false).0;
    let answered = Arc::new(AtomicU64::new(0));

    shared.emitter.emit(Event::Started {
        at: started,
        student: format!("{} @ {}", student.model(), student.host()),
        teacher: format!("{} @ {}", teacher.model(), teacher.host()),
        source: source_desc,
        skill: skills.name(),
    });
    for CaptureNotice::Warning(message) in notices {
        shared.emitter.emit(Event::Warning { message });
    }
    {
        let watches = shared.watches();
        if !watches.is_empty() {
            shared.emitter.emit(watches.event(Vec::new(), Vec::new()));
        }
    }
    for message in resume
        .notices
        .into_iter()
        .chain(history_problem)
        .chain(watches_problem.map(|w| format!("watches file not used: {w}")))
    {
        shared.emitter.emit(Event::Warning { message });
    }
    effects.resume();

    let (writer, reader) = slot();
    let (notice_tx, mut notice_rx) = mpsc::unbounded_channel();
    let capture = spawn_capture(
        source,
        shared.config.source.fps,
        writer,
        controls.paused.subscribe(),
        shared.stop.subscribe(),
        notice_tx,
    );
    let student_loop = StudentLoop {
        shared: shared.clone(),
        client: student
            .clone()
            .with_gate(gates.student.clone(), Priority::Live),
        reader,
        skills,
        max_frames: options.max_frames,
        escalator: escalator.clone(),
        calibration: calibration.clone(),
        ready: student_ready.subscribe(),
        teacher_keyword: keyword_tx,
        answered: answered.clone(),
    };
    let teacher_worker = TeacherWorker {
        shared: shared.clone(),
        client: teacher
            .clone()
            .with_gate(gates.teacher.clone(), Priority::Live),
        escalator: escalator.clone(),
        effects,
    };

    let task = tokio::spawn(async move {
        let notices = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Some(CaptureNotice::Warning(message)) = notice_rx.recv().await {
                    shared.emitter.emit(Event::Warning { message });
                }
            }
        });
        let ticks = tokio::spawn(tick_loop(shared.clone(), controls.effects.clone()));
        let commands = tokio::spawn(command_loop(controls, cmd_rx));
        let health_s = tokio::spawn(health_loop(shared.clone(), student.clone()));
        let health_t = tokio::spawn(health_loop(shared.clone(), teacher.clone()));
        let warm_s = tokio::spawn(warm::warm_loop(
            shared.clone(),
            student,
            None,
            Some(student_ready),
        ));
        let warm_t = tokio::spawn(warm::warm_loop(
            shared.clone(),
            teacher,
            Some(keyword_rx),
            None,
        ));
        let teacher_task = tokio::spawn(teacher_worker.run());
        let mut student_task = tokio::spawn(student_loop.run());

        let mut stop = shared.stop.subscribe();
        let (student_finished, failure) = tokio::select! {
            _ = stop.wait_for(|s| *s) => (false, None),
            r = &mut student_task => (true, match r {
                Ok(failure) => failure,
                Err(e) => Some(format!("the student loop failed: {e}")),
            }),
        };
        let queue = escalator.queue();
        if student_finished && !shared.stopping() {
            // `max_frames` reached or the source ended: let the teacher finish what
            // is queued (bounded), so every escalation gets its verdict.
            let limit = Duration::from_secs(shared.config.teacher.timeout_secs);
            let drained = async {
                while !queue.is_idle() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(limit, drained) => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        }
        shared.stop.send_replace(true);
        // Let the loops see the stop; in-flight calls are abandoned, not awaited.
        let grace = Duration::from_millis(1500);
        if !student_finished {
            let _ = tokio::time::timeout(grace, student_task).await;
        }
        let _ = tokio::time::timeout(Duration::from_millis(300), teacher_task).await;
        // Escalations the teacher did not get to: said, not silently forgotten.
        for job in queue.drain() {
            shared.emitter.emit(Event::TeacherFailed {
                seq: job.seq,
                error: "not reviewed: the engine stopped first".into(),
            });
        }
        health_s.abort();
        health_t.abort();
        warm_s.abort();
        warm_t.abort();
        commands.abort();
        ticks.abort();
        // A capture stuck in a read (a device that never answers) must not hold up the
        // shutdown: wait a little, then leave the thread behind (it ends with the process).
        let waited = Instant::now();
        while !capture.is_finished() && waited.elapsed() < CAPTURE_JOIN_LIMIT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if capture.is_finished() {
            let _ = capture.join();
        }
        notices.abort();
        let _ = calibration
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .save(&shared.config.paths.logs);
        let frames_answered = answered.load(Ordering::Relaxed);
        shared.emitter.emit(Event::Stopped {
            frames_answered,
            failure,
        });
        shared.emitter.sync();
    });

    Ok(EngineHandle {
        events: ev_rx,
        commands: cmd_tx,
        task,
        gates,
    })
}

/// Open the history store; a store that cannot be used leaves history off (monitoring
/// goes on) and says why.
fn open_history(
    config: &Config,
    started: chrono::DateTime<Utc>,
) -> (Option<HistoryHandle>, Resume, Option<String>) {
    let path = config.history.resolved(&config.paths.logs);
    let origin = Origin {
        session: started.format("%Y%m%d-%H%M%S").to_string(),
        device: config.device.name.clone(),
    };
    let retention = crate::history::retention::Retention {
        keep_days: config.history.keep_days,
        max_bytes: config.history.max_mb << 20,
        logs: config.paths.logs.clone(),
    };
    match HistoryHandle::start_with(&path, origin, Some(retention)) {
        Ok((h, resume)) => (Some(h), resume, None),
        Err(e) => (
            None,
            Resume::default(),
            Some(format!("history is off (monitoring goes on): {e}")),
        ),
    }
}

/// Every second: close incidents whose gap has passed; pass on what the history writer
/// has to say (paused, resumed, drops).
async fn tick_loop(shared: Arc<Shared>, effects: Arc<VerdictEffects>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        effects.tick();
        if let Some(h) = shared.emitter.history() {
            for message in h.take_notices() {
                shared.emitter.emit(Event::Warning { message });
            }
        }
    }
}

async fn command_loop(controls: Controls, mut rx: mpsc::UnboundedReceiver<Command>) {
    let Controls {
        shared,
        effects,
        escalator,
        paused,
    } = controls;
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::ForceEscalate => escalator.force(),
            Command::SetPaused(p) => {
                if *paused.borrow() != p {
                    paused.send_replace(p);
                    shared.emitter.emit(Event::Paused { paused: p });
                }
            }
            Command::Warn(message) => shared.emitter.emit(Event::Warning { message }),
            Command::Ack { incident, by } => effects.ack(incident, &by),
            Command::SetWatches(list) => {
                let events = shared.watches().set(&list);
                for ev in events {
                    shared.emitter.emit(ev);
                }
            }
            Command::Shutdown => {
                shared.stop.send_replace(true);
            }
        }
    }
    // Every face has gone: stop.
    shared.stop.send_replace(true);
}
