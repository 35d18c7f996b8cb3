//! The engine: frames → student → policy → teacher → events. No terminal code here.
//!
//! Tasks: a capture thread feeds the latest-frame slot; the student loop takes the newest
//! frame, streams the student's answer and applies the policy; escalated frames wait in
//! a bounded priority queue for the teacher worker, so teacher calls never block the
//! student; a health monitor per server retries an offline server with backoff. Every
//! event goes to the session log and to the face.

use crate::calibration::{CalibrationStore, Sample};
use crate::config::Config;
use crate::event::{Command, Event, Role};
use crate::frame::slot::slot;
use crate::frame::source::{open_source, spawn_capture, CaptureNotice};
use crate::frame::PreparedFrame;
use crate::model::{ModelClient, ModelError};
use crate::notify::{Alert, Notifier, RateLimit};
use crate::policy::{priority_of, Reason};
use crate::session_log::SessionLog;
use crate::skill::SkillStore;
use crate::teacher_queue::TeacherQueue;
use chrono::Utc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

mod health;
mod student_loop;
mod teacher_worker;
mod warm;

pub use health::model_listed;
use health::{health_loop, HealthGate};
use student_loop::student_loop;
use teacher_worker::teacher_loop;

/// What a face holds: the engine's events, a way to send it commands, and its task.
pub struct EngineHandle {
    pub events: mpsc::UnboundedReceiver<Event>,
    pub commands: mpsc::UnboundedSender<Command>,
    pub task: tokio::task::JoinHandle<()>,
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

/// A frame waiting for (or with) the teacher.
#[derive(Debug, Clone)]
struct TeacherJob {
    seq: u64,
    answer: String,
    confidence: Option<f32>,
    measured: Option<f32>,
    skill: String,
    reasons: Vec<Reason>,
    image: Arc<PreparedFrame>,
    /// Where the frame was saved, once escalated (and saving is on).
    frame_path: Option<std::path::PathBuf>,
}

/// Sends events to the face and the session log.
struct Emitter {
    tx: mpsc::UnboundedSender<Event>,
    log: Mutex<SessionLog>,
}

impl Emitter {
    fn emit(&self, ev: Event) {
        let failure = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .append(&ev)
            .err();
        let _ = self.tx.send(ev);
        if let Some(message) = failure {
            let _ = self.tx.send(Event::Warning { message });
        }
    }

    fn token(&self, seq: u64, text: &str) {
        let _ = self.tx.send(Event::StudentToken {
            seq,
            text: text.to_string(),
        });
    }
}

/// What the student is doing, for forced escalation.
#[derive(Default)]
struct Current {
    answering: Option<u64>,
    force_current: bool,
    last: Option<TeacherJob>,
}

struct Shared {
    config: Config,
    emitter: Emitter,
    queue: Mutex<TeacherQueue<TeacherJob>>,
    queue_notify: Notify,
    current: Mutex<Current>,
    stop: watch::Sender<bool>,
    held: watch::Sender<bool>,
    paused: watch::Sender<bool>,
    student_health: HealthGate,
    teacher_health: HealthGate,
    answered: AtomicU64,
    notifier: Option<Notifier>,
    notify_limit: Mutex<RateLimit>,
    /// Confidence vs teacher agreement per skill (`logs/calibration.json`).
    calibration: Mutex<CalibrationStore>,
    /// The last calibration save failed (reported once).
    calibration_failing: std::sync::atomic::AtomicBool,
    /// The teacher worker is reviewing a frame.
    teacher_busy: std::sync::atomic::AtomicBool,
    /// A safety keyword appeared in the student's streamed answer to this frame: the
    /// teacher's warm loop makes sure it is loaded.
    teacher_keyword: mpsc::UnboundedSender<(u64, String)>,
    /// The student's start warm-up is over (or there is none): its first frame may go.
    student_ready: watch::Sender<bool>,
}

impl Shared {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn queue_len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn limit(&self) -> std::sync::MutexGuard<'_, RateLimit> {
        self.notify_limit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A confirmed safety-relevant frame: alert whoever the config names (rate-limited,
    /// sent on its own task so the teacher worker never waits for a webhook). Only a send
    /// that worked uses up the interval; a failed one is retried (NOTIFY_TRIES in all,
    /// NOTIFY_RETRY apart) unless a newer alert took the freed slot meanwhile.
    fn notify(self: &Arc<Self>, job: &TeacherJob, verdict: &crate::verdict::Verdict) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        let Some(suppressed) = self.limit().allow(Instant::now()) else {
            return;
        };
        let mut alert = Alert {
            device: self.config.device.name.clone(),
            seq: job.seq,
            at: Utc::now(),
            summary: verdict.summary.clone(),
            missed: verdict.missed.clone(),
            wrong: verdict.wrong.clone(),
            reasons: job.reasons.iter().map(|r| r.to_string()).collect(),
            frame_path: job.frame_path.clone(),
            suppressed,
        };
        let shared = self.clone();
        tokio::spawn(async move {
            let mut ways = notifier.ways();
            // Someone was told: the interval runs from then, and only what failed is retried.
            let mut delivered = false;
            for attempt in 1..=NOTIFY_TRIES {
                let (sent, failed) = notifier.send_by(&alert, &ways).await;
                if !sent.is_empty() && !delivered {
                    delivered = true;
                    shared.limit().sent(Instant::now());
                }
                if !sent.is_empty() {
                    shared.emitter.emit(Event::Notified {
                        seq: alert.seq,
                        via: sent.iter().map(|w| w.name().to_string()).collect(),
                        suppressed: alert.suppressed,
                    });
                }
                if failed.is_empty() {
                    return;
                }
                let last = attempt == NOTIFY_TRIES;
                if !delivered {
                    // Free the slot at once; an alert given up on counts as held back.
                    shared.limit().failed(alert.suppressed + u64::from(last));
                }
                let why = failed.iter().map(|f| f.1.as_str()).collect::<Vec<_>>();
                shared.emitter.emit(Event::Warning {
                    message: format!(
                        "notification for frame #{} failed: {}{}",
                        alert.seq,
                        why.join("; "),
                        if last {
                            " (gave up)".to_string()
                        } else {
                            format!(" (retrying in {} s)", NOTIFY_RETRY.as_secs())
                        }
                    ),
                });
                if last {
                    return;
                }
                ways = failed.into_iter().map(|f| f.0).collect();
                tokio::time::sleep(NOTIFY_RETRY).await;
                if shared.stopping() {
                    return;
                }
                if !delivered {
                    match shared.limit().allow(Instant::now()) {
                        Some(held) => alert.suppressed = held,
                        // A newer alert took the slot (and reports this one as held back).
                        None => return,
                    }
                }
            }
        });
    }

    /// Every verdict labels the student's answer: keep it for calibration.
    fn record_calibration(&self, job: &TeacherJob, verdict: &crate::verdict::Verdict) {
        // A cut verdict is not a label: what it would have said next is unknown.
        if verdict.truncated {
            return;
        }
        let Some(agrees) = verdict.agrees else { return };
        let mut store = self.calibration.lock().unwrap_or_else(|e| e.into_inner());
        store.add(
            &job.skill,
            Sample {
                confidence: job.confidence,
                measured: job.measured,
                agrees,
                safety_relevant: verdict.safety_relevant.unwrap_or(false),
                reasons: job.reasons.clone(),
            },
        );
        let saved = store.save(&self.config.paths.logs);
        drop(store);
        // Like the session log: say it once, not on every verdict, until it works again.
        let was_failing = self
            .calibration_failing
            .swap(saved.is_err(), Ordering::Relaxed);
        if let (Err(e), false) = (saved, was_failing) {
            self.emitter.emit(Event::Warning {
                message: format!("cannot save calibration: {e}"),
            });
        }
    }

    /// Queue a frame for the teacher and say so.
    fn escalate(&self, mut job: TeacherJob) {
        let frame_path = if self.config.privacy.save_frames {
            let saved = self
                .emitter
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .save_frame(job.seq, &job.image.jpeg);
            match saved {
                Ok(p) => Some(p),
                Err(e) => {
                    self.emitter.emit(Event::Warning {
                        message: format!("cannot save frame #{}: {e}", job.seq),
                    });
                    None
                }
            }
        } else {
            None
        };
        job.frame_path = frame_path.clone();
        let priority = priority_of(&job.reasons).unwrap_or(crate::policy::Priority::Audit);
        let (seq, reasons) = (job.seq, job.reasons.clone());
        let (dropped, queue_len) = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let d = q.push(priority, job);
            (d, q.len())
        };
        self.emitter.emit(Event::Escalated {
            seq,
            reasons,
            queue_len,
            frame_path,
        });
        if let Some(d) = dropped {
            self.emitter.emit(Event::TeacherDropped {
                seq: d.seq,
                reasons: d.reasons,
            });
        }
        self.queue_notify.notify_one();
    }
}

/// Sends of one alert before giving up, and the wait between them.
const NOTIFY_TRIES: u32 = 3;
const NOTIFY_RETRY: Duration = Duration::from_secs(5);

/// How long the shutdown waits for the capture thread (it sees the stop within 50 ms
/// unless a read is stuck).
const CAPTURE_JOIN_LIMIT: Duration = Duration::from_secs(1);

/// Start the engine (inside a tokio runtime). Fails only when no frame source can be
/// opened at all or a client cannot be built; an offline server is not a failure.
pub fn start(config: Config, options: EngineOptions) -> Result<EngineHandle, EngineError> {
    let student =
        ModelClient::new(&config.student, Role::Student).map_err(|error| EngineError::Client {
            role: Role::Student,
            error,
        })?;
    let teacher =
        ModelClient::new(&config.teacher, Role::Teacher).map_err(|error| EngineError::Client {
            role: Role::Teacher,
            error,
        })?;
    let (source, notices) =
        open_source(&config.source).map_err(|e| EngineError::Source(e.to_string()))?;
    let source_desc = source.describe();

    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let started = Utc::now();
    let log = SessionLog::new(&config.paths.logs, started).with_device(&config.device.name);
    let skills = SkillStore::open(&config.skill_path());
    let (keyword_tx, keyword_rx) = mpsc::unbounded_channel();

    let shared = Arc::new(Shared {
        emitter: Emitter {
            tx: ev_tx,
            log: Mutex::new(log),
        },
        queue: Mutex::new(TeacherQueue::new(config.policy.teacher_queue)),
        queue_notify: Notify::new(),
        current: Mutex::new(Current::default()),
        stop: watch::channel(false).0,
        held: watch::channel(false).0,
        paused: watch::channel(false).0,
        student_health: HealthGate::new(Role::Student),
        teacher_health: HealthGate::new(Role::Teacher),
        answered: AtomicU64::new(0),
        calibration: Mutex::new(CalibrationStore::load(&config.paths.logs)),
        calibration_failing: std::sync::atomic::AtomicBool::new(false),
        notifier: Notifier::new(&config.notify),
        notify_limit: Mutex::new(RateLimit::new(Duration::from_secs(
            config.notify.min_interval_secs,
        ))),
        teacher_busy: std::sync::atomic::AtomicBool::new(false),
        teacher_keyword: keyword_tx,
        student_ready: watch::channel(false).0,
        config,
    });

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

    let (writer, reader) = slot();
    let (notice_tx, mut notice_rx) = mpsc::unbounded_channel();
    let capture = spawn_capture(
        source,
        shared.config.source.fps,
        writer,
        shared.paused.subscribe(),
        shared.stop.subscribe(),
        notice_tx,
    );

    let task = tokio::spawn({
        let shared = shared.clone();
        async move {
            let notices = tokio::spawn({
                let shared = shared.clone();
                async move {
                    while let Some(CaptureNotice::Warning(message)) = notice_rx.recv().await {
                        shared.emitter.emit(Event::Warning { message });
                    }
                }
            });
            let commands = tokio::spawn(command_loop(shared.clone(), cmd_rx));
            let health_s = tokio::spawn(health_loop(shared.clone(), student.clone()));
            let health_t = tokio::spawn(health_loop(shared.clone(), teacher.clone()));
            let warm_s = tokio::spawn(warm::warm_loop(
                shared.clone(),
                student.clone(),
                None,
                Some(shared.student_ready.clone()),
            ));
            let warm_t = tokio::spawn(warm::warm_loop(
                shared.clone(),
                teacher.clone(),
                Some(keyword_rx),
                None,
            ));
            let teacher_task = tokio::spawn(teacher_loop(shared.clone(), teacher));
            let student_task = tokio::spawn(student_loop(
                shared.clone(),
                student,
                reader,
                skills,
                options.max_frames,
            ));

            let mut stop = shared.stop.subscribe();
            let mut student_task = student_task;
            let student_finished = tokio::select! {
                _ = stop.wait_for(|s| *s) => false,
                _ = &mut student_task => true,
            };
            if student_finished && !shared.stopping() {
                // `max_frames` reached or the source ended: let the teacher finish what
                // is queued (bounded), so every escalation gets its verdict.
                let limit = Duration::from_secs(shared.config.teacher.timeout_secs);
                let drained = async {
                    while shared.queue_len() > 0 || shared.teacher_busy.load(Ordering::Acquire) {
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
            loop {
                let left = shared.queue.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let Some(job) = left else { break };
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
            let _ = shared
                .calibration
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .save(&shared.config.paths.logs);
            let frames_answered = shared.answered.load(Ordering::Relaxed);
            shared.emitter.emit(Event::Stopped { frames_answered });
            shared
                .emitter
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .sync();
        }
    });

    Ok(EngineHandle {
        events: ev_rx,
        commands: cmd_tx,
        task,
    })
}

async fn command_loop(shared: Arc<Shared>, mut rx: mpsc::UnboundedReceiver<Command>) {
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::ForceEscalate => {
                let last = {
                    let mut c = shared.current.lock().unwrap_or_else(|e| e.into_inner());
                    if c.answering.is_some() {
                        c.force_current = true;
                        None
                    } else {
                        Some(c.last.clone())
                    }
                };
                match last {
                    None => {}
                    Some(Some(mut job)) => {
                        job.reasons = vec![Reason::Forced];
                        shared.escalate(job);
                    }
                    Some(None) => shared.emitter.emit(Event::Warning {
                        message: "nothing to escalate yet: no frame answered".into(),
                    }),
                }
            }
            Command::SetPaused(p) => {
                if *shared.paused.borrow() != p {
                    shared.paused.send_replace(p);
                    shared.emitter.emit(Event::Paused { paused: p });
                }
            }
            Command::HoldStudent(h) => {
                shared.held.send_replace(h);
            }
            Command::Shutdown => {
                shared.stop.send_replace(true);
            }
        }
    }
    // Every face has gone: stop.
    shared.stop.send_replace(true);
}

/// Wait until `cond` holds on `rx`, or the engine stops (returns false then).
async fn wait_gate(
    shared: &Shared,
    rx: &mut watch::Receiver<bool>,
    want: bool,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    tokio::select! {
        r = rx.wait_for(|v| *v == want) => r.is_ok() && !shared.stopping(),
        _ = stop.wait_for(|s| *s) => false,
    }
}
