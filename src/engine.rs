//! The engine: frames → student → policy → teacher → events. No terminal code here.
//!
//! Tasks: a capture thread feeds the latest-frame slot; the student loop takes the newest
//! frame, streams the student's answer and applies the policy; escalated frames wait in
//! a bounded priority queue for the teacher worker, so teacher calls never block the
//! student; a health monitor per server retries an offline server with backoff. Every
//! event goes to the session log and to the face.

use crate::calibration::{CalibrationStore, Sample};
use crate::confidence::parse_answer;
use crate::config::Config;
use crate::event::{Command, Event, Health, Role};
use crate::frame::slot::{slot, SlotReader};
use crate::frame::source::{open_source, spawn_capture, CaptureNotice};
use crate::frame::PreparedFrame;
use crate::frame::{dhash, prep};
use crate::notify::{Alert, Notifier, RateLimit};
use crate::ollama::{ModelClient, ModelError};
use crate::policy::{effective_confidence, priority_of, Observation, Policy, Reason};
use crate::session_log::SessionLog;
use crate::skill::SkillStore;
use crate::teacher_queue::TeacherQueue;
use crate::{student, teacher};
use chrono::Utc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Notify};

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

/// A still scene is sent to the student at least this often, changed or not.
const MAX_UNCHANGED: Duration = Duration::from_secs(60);

/// What the change gate decided for a taken frame.
enum Gate {
    Send { prepared: PreparedFrame, hash: u64 },
    Unchanged { change: f64 },
}

/// Longest wait between retries of an offline server.
const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// How often a healthy server is re-checked.
const HEALTHY_RECHECK: Duration = Duration::from_secs(30);

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

/// One server's reachability: a gate the callers wait on, and the last health shown.
struct HealthGate {
    role: Role,
    online: watch::Sender<bool>,
    shown: Mutex<Health>,
    recheck: Notify,
}

impl HealthGate {
    fn new(role: Role) -> Self {
        HealthGate {
            role,
            online: watch::channel(true).0,
            shown: Mutex::new(Health::Unknown),
            recheck: Notify::new(),
        }
    }

    /// Show a health state if it differs in kind or reason from the last one shown.
    fn set(&self, emitter: &Emitter, health: Health) {
        let online = matches!(health, Health::Ok { .. } | Health::Slow { .. });
        self.online.send_replace(online);
        let mut shown = self.shown.lock().unwrap_or_else(|e| e.into_inner());
        let same = match (&*shown, &health) {
            (Health::Ok { .. }, Health::Ok { .. }) | (Health::Slow { .. }, Health::Slow { .. }) => {
                true
            }
            (a, b) => a == b,
        };
        if !same {
            *shown = health.clone();
            drop(shown);
            emitter.emit(Event::Health {
                role: self.role,
                health,
            });
        }
    }

    fn offline(&self, emitter: &Emitter, error: &ModelError, model: &str) {
        self.set(
            emitter,
            Health::Offline {
                reason: error.to_string(),
                hint: error.hint(self.role, model),
            },
        );
        self.recheck.notify_one();
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
    /// The teacher worker is reviewing a frame.
    teacher_busy: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    fn queue_len(&self) -> usize {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// A confirmed safety-relevant frame: alert whoever the config names (rate-limited,
    /// sent on its own task so the teacher worker never waits for a webhook).
    fn notify(self: &Arc<Self>, job: &TeacherJob, verdict: &crate::verdict::Verdict) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        let Some(suppressed) = self
            .notify_limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now())
        else {
            return;
        };
        let alert = Alert {
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
            match notifier.send(&alert).await {
                Ok(via) => shared.emitter.emit(Event::Notified {
                    seq: alert.seq,
                    via: via.iter().map(|s| s.to_string()).collect(),
                    suppressed,
                }),
                Err(e) => shared.emitter.emit(Event::Warning {
                    message: format!("notification for frame #{} failed: {e}", alert.seq),
                }),
            }
        });
    }

    /// Every verdict labels the student's answer: keep it for calibration.
    fn record_calibration(&self, job: &TeacherJob, verdict: &crate::verdict::Verdict) {
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
        if let Err(e) = store.save(&self.config.paths.logs) {
            drop(store);
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
        notifier: Notifier::new(&config.notify),
        notify_limit: Mutex::new(RateLimit::new(Duration::from_secs(
            config.notify.min_interval_secs,
        ))),
        teacher_busy: std::sync::atomic::AtomicBool::new(false),
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
            health_s.abort();
            health_t.abort();
            commands.abort();
            let _ = tokio::task::spawn_blocking(move || capture.join()).await;
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

async fn student_loop(
    shared: Arc<Shared>,
    client: ModelClient,
    reader: SlotReader,
    mut skills: SkillStore,
    max_frames: Option<u64>,
) {
    let mut policy = Policy::new(shared.config.policy.clone());
    let mut stop = shared.stop.subscribe();
    let mut held = shared.held.subscribe();
    let mut online = shared.student_health.online.subscribe();
    let frame_cfg = shared.config.frame.clone();
    let slow_after = Duration::from_secs(client.config().timeout_secs) / 2;
    let min_change = shared.config.source.min_change;
    let mut last_hash: Option<u64> = None;
    let mut last_answered_at: Option<Instant> = None;
    let mut unchanged_total = 0u64;
    loop {
        if !wait_gate(&shared, &mut held, false, &mut stop).await
            || !wait_gate(&shared, &mut online, true, &mut stop).await
        {
            break;
        }
        let taken = tokio::select! {
            t = reader.take() => t,
            _ = stop.wait_for(|s| *s) => break,
        };
        let Some(taken) = taken else {
            shared.emitter.emit(Event::Warning {
                message: "the frame source ended; stopping".into(),
            });
            break;
        };
        let frame = taken.frame;
        let seq = frame.seq;
        let raw = frame.raw.clone();
        let cfg = frame_cfg.clone();
        // The change gate compares with the last answered frame, but lets a frame
        // through at least every `MAX_UNCHANGED` so a still scene is still watched.
        let compare_with = last_hash.filter(|_| {
            min_change > 0.0 && last_answered_at.is_some_and(|t| t.elapsed() < MAX_UNCHANGED)
        });
        let gated = tokio::task::spawn_blocking(move || -> Result<Gate, prep::PrepError> {
            let rgb = prep::decode(&raw)?;
            let hash = dhash::dhash(&rgb);
            if let Some(prev) = compare_with {
                let change = dhash::difference(prev, hash);
                if change < min_change {
                    return Ok(Gate::Unchanged { change });
                }
            }
            Ok(Gate::Send {
                prepared: prep::prepare_rgb(&rgb, &cfg)?,
                hash,
            })
        })
        .await;
        let (prepared, hash) = match gated {
            Ok(Ok(Gate::Send { prepared, hash })) => (Arc::new(prepared), hash),
            Ok(Ok(Gate::Unchanged { change })) => {
                unchanged_total += 1;
                shared.emitter.emit(Event::FrameUnchanged {
                    seq,
                    superseded: taken.superseded,
                    change,
                    unchanged_total,
                });
                continue;
            }
            Ok(Err(e)) => {
                shared.emitter.emit(Event::StudentFailed {
                    seq,
                    error: format!("frame {}: {e}", frame.label),
                });
                continue;
            }
            Err(e) => {
                shared.emitter.emit(Event::StudentFailed {
                    seq,
                    error: format!("frame preparation crashed: {e}"),
                });
                continue;
            }
        };
        shared.emitter.emit(Event::FrameTaken {
            seq,
            captured_at: frame.captured_at,
            label: frame.label.clone(),
            width: prepared.width,
            height: prepared.height,
            jpeg_bytes: prepared.jpeg.len(),
            superseded: taken.superseded,
            image: Some(prepared.clone()),
        });
        let (skill, changed) = skills.current();
        if changed {
            shared.emitter.emit(Event::SkillLoaded {
                name: skills.name(),
                chars: skill.chars().count(),
            });
        }
        {
            let mut c = shared.current.lock().unwrap_or_else(|e| e.into_inner());
            c.answering = Some(seq);
            c.force_current = false;
        }
        let request = student::frame_request(&skill, prepared.base64.clone());
        let began = Instant::now();
        let result = {
            let emitter = &shared.emitter;
            let mut on_token = |t: &str| emitter.token(seq, t);
            tokio::select! {
                r = client.chat(&request, &mut on_token) => r,
                _ = stop.wait_for(|s| *s) => {
                    shared.emitter.emit(Event::StudentFailed { seq, error: "stopped before the answer was complete".into() });
                    break;
                }
            }
        };
        let latency = began.elapsed();
        let forced = {
            let mut c = shared.current.lock().unwrap_or_else(|e| e.into_inner());
            c.answering = None;
            std::mem::take(&mut c.force_current)
        };
        match result {
            Ok(reply) => {
                if reply.truncated {
                    shared.emitter.emit(Event::Warning {
                        message: format!("frame #{seq}: the student's reply was cut (too long)"),
                    });
                }
                let parsed = parse_answer(&reply.content);
                let confidence = effective_confidence(
                    shared.config.policy.confidence,
                    parsed.confidence,
                    reply.measured_confidence,
                );
                let reasons = policy.decide(Observation {
                    answer: &parsed.description,
                    confidence,
                    forced,
                });
                shared.student_health.set(
                    &shared.emitter,
                    if latency > slow_after {
                        Health::Slow {
                            latency_ms: latency.as_millis() as u64,
                        }
                    } else {
                        Health::Ok {
                            latency_ms: latency.as_millis() as u64,
                        }
                    },
                );
                shared.emitter.emit(Event::StudentAnswer {
                    seq,
                    at: Utc::now(),
                    answer: reply.content.clone(),
                    confidence: parsed.confidence,
                    measured_confidence: reply.measured_confidence,
                    latency_ms: latency.as_millis() as u64,
                    reasons: reasons.clone(),
                    skill: skills.name(),
                });
                shared
                    .calibration
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .count_answer(&skills.name());
                let job = TeacherJob {
                    seq,
                    answer: reply.content,
                    confidence: parsed.confidence,
                    measured: reply.measured_confidence,
                    skill: skills.name(),
                    reasons: reasons.clone(),
                    image: prepared,
                    frame_path: None,
                };
                shared
                    .current
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .last = Some(job.clone());
                if !reasons.is_empty() {
                    shared.escalate(job);
                }
                last_hash = Some(hash);
                last_answered_at = Some(Instant::now());
                let n = shared.answered.fetch_add(1, Ordering::Relaxed) + 1;
                if max_frames.is_some_and(|m| n >= m) {
                    break;
                }
            }
            Err(e) => {
                shared.emitter.emit(Event::StudentFailed {
                    seq,
                    error: e.to_string(),
                });
                if e.is_unreachable() || e.is_missing_model() {
                    shared
                        .student_health
                        .offline(&shared.emitter, &e, client.model());
                }
                if forced {
                    shared.escalate(TeacherJob {
                        seq,
                        answer: format!("(the student gave no answer: {e})"),
                        confidence: None,
                        measured: None,
                        skill: skills.name(),
                        reasons: vec![Reason::Forced],
                        image: prepared,
                        frame_path: None,
                    });
                }
            }
        }
    }
}

async fn teacher_loop(shared: Arc<Shared>, client: ModelClient) {
    let mut stop = shared.stop.subscribe();
    let mut online = shared.teacher_health.online.subscribe();
    let max_retries = client.config().max_retries;
    let max_per_minute = client.config().max_per_minute as usize;
    let device = shared.config.device.name.clone();
    let mut recent: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    loop {
        if !wait_gate(&shared, &mut online, true, &mut stop).await {
            return;
        }
        let job = {
            let mut q = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            let job = q.pop();
            // Set while holding the lock, so "queue empty and not busy" is never seen
            // between the pop and the review.
            shared.teacher_busy.store(job.is_some(), Ordering::Release);
            job
        };
        let Some(job) = job else {
            tokio::select! {
                _ = shared.queue_notify.notified() => continue,
                _ = stop.wait_for(|s| *s) => return,
            }
        };
        shared.emitter.emit(Event::TeacherStarted {
            seq: job.seq,
            queue_len: shared.queue_len(),
        });
        let mut request =
            teacher::review_request(&job.answer, &job.reasons, job.image.base64.clone());
        request.user = format!("Frame from device {}.\n\n{}", device, request.user);
        // Many devices may share one teacher: keep to this device's share.
        if max_per_minute > 0 {
            let minute = Duration::from_secs(60);
            while recent.front().is_some_and(|t| t.elapsed() >= minute) {
                recent.pop_front();
            }
            if recent.len() >= max_per_minute {
                let wait = minute.saturating_sub(recent.front().map_or(minute, |t| t.elapsed()));
                shared.emitter.emit(Event::Warning {
                    message: format!(
                        "teacher limit {max_per_minute}/min reached; frame #{} waits {:.0} s",
                        job.seq,
                        wait.as_secs_f64()
                    ),
                });
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                recent.pop_front();
            }
            recent.push_back(Instant::now());
        }
        let mut attempt = 0;
        loop {
            let began = Instant::now();
            let mut ignore_tokens = |_: &str| {};
            let result = tokio::select! {
                r = client.chat(&request, &mut ignore_tokens) => r,
                _ = stop.wait_for(|s| *s) => return,
            };
            match result {
                Ok(reply) => {
                    let latency_ms = began.elapsed().as_millis() as u64;
                    shared
                        .teacher_health
                        .set(&shared.emitter, Health::Ok { latency_ms });
                    let verdict = teacher::parse_verdict(&reply.content);
                    shared.record_calibration(&job, &verdict);
                    if verdict.safety_relevant == Some(true) {
                        shared.notify(&job, &verdict);
                    }
                    shared.emitter.emit(Event::TeacherVerdict {
                        seq: job.seq,
                        verdict,
                        latency_ms,
                    });
                    break;
                }
                Err(e) if e.is_unreachable() => {
                    // Keep the frame: it goes first once the teacher is back.
                    let priority =
                        priority_of(&job.reasons).unwrap_or(crate::policy::Priority::Audit);
                    let seq = job.seq;
                    let back = shared
                        .queue
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push_front(priority, job.clone());
                    if let Some(d) = back {
                        shared.emitter.emit(Event::TeacherDropped {
                            seq: d.seq,
                            reasons: d.reasons,
                        });
                    }
                    shared.emitter.emit(Event::Warning {
                        message: format!(
                            "teacher unreachable; frame #{seq} waits in the queue: {e}"
                        ),
                    });
                    shared
                        .teacher_health
                        .offline(&shared.emitter, &e, client.model());
                    break;
                }
                Err(e) if e.is_transient() && attempt < max_retries => {
                    attempt += 1;
                    shared.emitter.emit(Event::Warning {
                        message: format!(
                            "teacher: {e}; retry {attempt} of {max_retries} for frame #{}",
                            job.seq
                        ),
                    });
                    let wait = backoff(attempt);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
                Err(e) => {
                    if e.is_missing_model() {
                        shared
                            .teacher_health
                            .offline(&shared.emitter, &e, client.model());
                    }
                    shared.emitter.emit(Event::TeacherFailed {
                        seq: job.seq,
                        error: e.to_string(),
                    });
                    break;
                }
            }
        }
    }
}

/// Exponential backoff with jitter: 1, 2, 4 … 30 s (±20%).
pub fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(BACKOFF_CAP);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = (nanos % 400) as f64 / 1000.0 - 0.2; // -0.2 .. +0.2
    base.mul_f64(1.0 + jitter).min(BACKOFF_CAP)
}

/// Check a server's reachability and model; retry with backoff while it is offline.
async fn health_loop(shared: Arc<Shared>, client: ModelClient) {
    let gate = match client.role() {
        Role::Student => &shared.student_health,
        Role::Teacher => &shared.teacher_health,
    };
    let mut failures = 0u32;
    loop {
        let began = Instant::now();
        let health = match client.list_models().await {
            Ok(models) if model_listed(&models, client.model()) => {
                failures = 0;
                Health::Ok {
                    latency_ms: began.elapsed().as_millis() as u64,
                }
            }
            Ok(_) => {
                failures += 1;
                let e = client.missing_model_error();
                Health::Offline {
                    reason: e.to_string(),
                    hint: e.hint(client.role(), client.model()),
                }
            }
            Err(e) => {
                failures += 1;
                Health::Offline {
                    reason: e.to_string(),
                    hint: e.hint(client.role(), client.model()),
                }
            }
        };
        gate.set(&shared.emitter, health);
        let wait = if failures == 0 {
            HEALTHY_RECHECK
        } else {
            backoff(failures)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = gate.recheck.notified() => {
                // A call just failed: look again soon, but not in a tight loop.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Ollama lists `gemma4:latest` for a model pulled as `gemma4`.
pub fn model_listed(models: &[String], model: &str) -> bool {
    models
        .iter()
        .any(|m| m == model || (!model.contains(':') && *m == format!("{model}:latest")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert!(backoff(1) <= Duration::from_millis(1200));
        assert!(backoff(3) >= Duration::from_millis(3200));
        assert!(backoff(20) <= BACKOFF_CAP);
        assert!(backoff(20) >= Duration::from_secs(24));
    }

    #[test]
    fn model_name_matching() {
        let m = vec!["gemma4:e2b".to_string(), "llava:latest".to_string()];
        assert!(model_listed(&m, "gemma4:e2b"));
        assert!(model_listed(&m, "llava"));
        assert!(!model_listed(&m, "gemma4:26b"));
    }
}
