//! The student loop: the steps a frame goes through, each its own function — take the
//! newest frame ([`Run::take`]), gate it ([`Run::gate`]: skip it when nothing changed),
//! show it, ask the student ([`Run::ask`]), then the answer's steps in `student_answer.rs`:
//! read and decide ([`Run::read`]: parse the answer, apply the policy), hand it on
//! ([`Run::hand_on`]: the teacher queue). A frame the
//! student cannot answer (offline, loading, refused) is still taken and shown, and the log
//! says why (`Run::unanswered`); while the student is down the teacher watches alone
//! (`student_down.rs`). Unanswered and failed frames are `student_failure.rs`'.

use super::escalation::Escalator;
use super::shared::Shared;
use super::student_down::DownWatch;
use crate::event::Event;
use crate::frame::slot::{SlotReader, Taken};
use crate::frame::{dhash, prep, PreparedFrame};
use crate::model::{ChatReply, ChatRequest, ModelClient, ModelError};
use crate::policy::calibration::CalibrationStore;
use crate::policy::escalation_rate::EscalationRate;
use crate::policy::{Policy, Reason};
use crate::reading::confidence::ParsedAnswer;
use crate::roles::skill::SkillStore;
use crate::roles::student;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A still scene is sent to the student at least this often, changed or not.
const MAX_UNCHANGED: Duration = Duration::from_secs(60);
/// While the student cannot answer, the newest frame is still shown, this often at most.
pub(super) const UNANSWERED_EVERY: Duration = Duration::from_secs(1);

/// What the change gate decided for a taken frame.
pub(super) enum Gate {
    Send { prepared: PreparedFrame, hash: u64 },
    Unchanged { change: f64 },
}

/// Why the student cannot be asked about a frame now (said in the log beside the frame).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotAsked {
    /// Its server cannot be reached, or its last call failed for good (backing off).
    Offline,
    /// Its start warm-up is under way.
    Loading,
    /// Its model cannot do the job (takes no images).
    Refused,
}

impl NotAsked {
    pub(super) fn says(self) -> &'static str {
        match self {
            NotAsked::Offline => "student offline",
            NotAsked::Loading => "student loading",
            NotAsked::Refused => "student refused (see the status bar)",
        }
    }
}

/// What the student loop works with.
pub(super) struct StudentLoop {
    pub(super) shared: Arc<Shared>,
    pub(super) client: ModelClient,
    pub(super) reader: SlotReader,
    pub(super) skills: SkillStore,
    pub(super) max_frames: Option<u64>,
    pub(super) escalator: Arc<Escalator>,
    /// Answers per skill, for calibration.
    pub(super) calibration: Arc<Mutex<CalibrationStore>>,
    /// The student's start warm-up is over (or there is none).
    pub(super) ready: watch::Receiver<bool>,
    /// A safety keyword appeared in the streamed answer to this frame: the teacher's warm
    /// loop makes sure it is loaded.
    pub(super) teacher_keyword: mpsc::UnboundedSender<(u64, String)>,
    /// Frames answered, for `Event::Stopped`.
    pub(super) answered: Arc<AtomicU64>,
}

/// What the loop carries from one frame to the next.
pub(super) struct LoopState {
    pub(super) policy: Policy,
    /// The last answered frame's hash and when it was answered (the change gate).
    pub(super) last_hash: Option<u64>,
    pub(super) last_answered_at: Option<Instant>,
    pub(super) unchanged_total: u64,
    /// Frames taken (answered, failed, skipped as unchanged, or not asked): `max_frames`
    /// counts these, so a run ends when every answer fails or the scene is still.
    pub(super) frames_taken: u64,
    /// Why the loop ended by itself (the source ended): a service exits non-zero on it.
    pub(super) failure: Option<String>,
    /// Consecutive permanent failures (a 400, a missing model), and when to try again.
    pub(super) permanent_failures: u32,
    pub(super) retry_at: Option<Instant>,
    pub(super) vision_checked: bool,
    pub(super) refused: bool,
    /// The warm-up's sender is gone without saying ready: nobody will, so it is.
    pub(super) warm_gone: bool,
    pub(super) recent: EscalationRate,
    pub(super) storm_warned: bool,
    pub(super) down: DownWatch,
    /// When the last frame was shown unanswered (the pace while the student cannot answer).
    pub(super) last_unanswered: Instant,
}

/// The loop at work: its parts, the gates it watches, and its state.
pub(super) struct Run {
    pub(super) parts: StudentLoop,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) online: watch::Receiver<bool>,
    pub(super) teacher_online: watch::Receiver<bool>,
    pub(super) st: LoopState,
}

/// What happened to one frame: go on with the next, or stop the loop.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Flow {
    Next,
    Stop,
}

/// The student's reply to one frame, and how long it took.
pub(super) struct Asked {
    pub(super) result: Result<ChatReply, ModelError>,
    pub(super) latency: Duration,
    /// A face forced this frame (`e`) while it was being answered.
    pub(super) forced: bool,
    /// The safety keyword that sent the frame to the teacher mid-answer
    /// (`policy.early_escalation`).
    pub(super) early: Option<String>,
}

/// An answer read: what the student said and what the policy made of it.
pub(super) struct Read {
    pub(super) parsed: ParsedAnswer,
    pub(super) reasons: Vec<Reason>,
    /// A watch's state changed with this answer (said after the answer).
    pub(super) watches: Option<Event>,
}

impl StudentLoop {
    /// Runs until stopped, `max_frames` taken, or the source ends; the last is returned
    /// as a failure (a service exits non-zero on it, so systemd restarts it).
    pub(super) async fn run(self) -> Option<String> {
        let mut run = Run::new(self);
        while run.next_frame().await == Flow::Next {}
        run.st.failure.take()
    }
}

impl Run {
    pub(super) fn new(parts: StudentLoop) -> Self {
        let shared = &parts.shared;
        let policy = &shared.config.policy;
        let st = LoopState {
            policy: Policy::new(policy.clone()),
            last_hash: None,
            last_answered_at: None,
            unchanged_total: 0,
            frames_taken: 0,
            failure: None,
            permanent_failures: 0,
            retry_at: None,
            vision_checked: parts.client.config().text_only,
            refused: false,
            warm_gone: false,
            recent: EscalationRate::default(),
            storm_warned: false,
            down: DownWatch::new(policy.student_down_secs, policy.fallback_every_secs),
            // The first unanswered frame waits this long: a quick warm-up leaves none.
            last_unanswered: Instant::now(),
        };
        Run {
            stop: shared.stop.subscribe(),
            online: shared.student_health.online.subscribe(),
            teacher_online: shared.teacher_health.online.subscribe(),
            parts,
            st,
        }
    }

    pub(super) fn shared(&self) -> &Shared {
        &self.parts.shared
    }

    /// One frame through every step.
    pub(super) async fn next_frame(&mut self) -> Flow {
        if self
            .parts
            .max_frames
            .is_some_and(|m| self.st.frames_taken >= m)
        {
            return Flow::Stop;
        }
        if let Some(why) = self.not_asked() {
            if self.wait_while_not_asked(why).await == Flow::Stop {
                return Flow::Stop;
            }
            if self.not_asked().is_none() {
                // It can answer now: the next frame is asked.
                return Flow::Next;
            }
        } else if !self.st.vision_checked {
            self.st.vision_checked = true;
            if !super::vision_check::check_vision(self.shared(), &self.parts.client).await {
                self.st.refused = true;
                self.st.down.down(Instant::now());
                return Flow::Next;
            }
        }
        let Some(taken) = self.take().await else {
            return Flow::Stop;
        };
        self.st.frames_taken += 1;
        // Asked for: the state may have changed while the frame was awaited.
        if let Some(why) = self.not_asked() {
            return self.unanswered(taken, why).await;
        }
        let Some(prepared) = self.gate(&taken).await else {
            return Flow::Next;
        };
        let (prepared, hash) = (Arc::new(prepared.0), prepared.1);
        self.show(&taken, &prepared, hash);
        let seq = taken.frame.seq;
        let (skill, request) = self.request(&prepared);
        let Some(asked) = self.ask(seq, &request, &prepared).await else {
            return Flow::Stop;
        };
        match asked.result {
            Ok(reply) => {
                let early = asked.early.as_deref();
                let read = self.read(seq, &request, &reply, asked.forced, early);
                self.answered(seq, &reply, &read, asked.latency, &skill);
                self.hand_on(seq, reply, read, prepared, hash);
                Flow::Next
            }
            Err(e) => self.failed(seq, e, asked.forced, prepared).await,
        }
    }

    /// Why the student cannot be asked now (None: it can).
    pub(super) fn not_asked(&self) -> Option<NotAsked> {
        if self.st.refused {
            return Some(NotAsked::Refused);
        }
        if !*self.online.borrow() || self.st.retry_at.is_some_and(|t| Instant::now() < t) {
            return Some(NotAsked::Offline);
        }
        if !*self.parts.ready.borrow() && !self.st.warm_gone {
            return Some(NotAsked::Loading);
        }
        None
    }

    /// The student cannot answer: wait until it can, or until the next frame is due to be
    /// shown anyway.
    async fn wait_while_not_asked(&mut self, why: NotAsked) -> Flow {
        if why != NotAsked::Loading {
            self.st.down.down(Instant::now());
        }
        let due = self.st.last_unanswered + UNANSWERED_EVERY;
        let retry_at = self.st.retry_at;
        let loading = why == NotAsked::Loading;
        let offline = !*self.online.borrow();
        let (stop, online, ready) = (&mut self.stop, &mut self.online, &mut self.parts.ready);
        tokio::select! {
            _ = tokio::time::sleep_until(due.into()) => Flow::Next,
            r = ready.wait_for(|v| *v), if loading => {
                if r.is_err() {
                    self.st.warm_gone = true;
                }
                Flow::Next
            }
            _ = online.wait_for(|v| *v), if offline => Flow::Next,
            _ = tokio::time::sleep_until(retry_at.unwrap_or(due).into()), if retry_at.is_some() => {
                Flow::Next
            }
            _ = stop.wait_for(|s| *s) => Flow::Stop,
        }
    }

    /// Take: the newest frame from the source (None: the source ended or the engine stops).
    pub(super) async fn take(&mut self) -> Option<Taken> {
        let taken = tokio::select! {
            t = self.parts.reader.take() => t,
            _ = self.stop.wait_for(|s| *s) => return None,
        };
        if taken.is_none() && !*self.stop.borrow() {
            self.shared().emitter.emit(Event::Warning {
                message: "the frame source ended; stopping".into(),
            });
            self.st.failure = Some("the frame source ended".to_string());
        }
        taken
    }

    /// Gate: decode the frame and compare it with the last answered one; a frame that
    /// barely changed is skipped (said), but a still scene goes through at least every
    /// `MAX_UNCHANGED`. Some(prepared frame, its hash) when it goes to the student.
    pub(super) async fn gate(&mut self, taken: &Taken) -> Option<(PreparedFrame, u64)> {
        let min_change = self.shared().config.source.min_change;
        let compare_with = self.st.last_hash.filter(|_| {
            min_change > 0.0
                && self
                    .st
                    .last_answered_at
                    .is_some_and(|t| t.elapsed() < MAX_UNCHANGED)
        });
        let seq = taken.frame.seq;
        match self
            .prepare(taken, compare_with.map(|h| (h, min_change)))
            .await
        {
            Ok(Gate::Send { prepared, hash }) => Some((prepared, hash)),
            Ok(Gate::Unchanged { change }) => {
                self.st.unchanged_total += 1;
                self.shared().emitter.emit(Event::FrameUnchanged {
                    seq,
                    superseded: taken.superseded,
                    change,
                    unchanged_total: self.st.unchanged_total,
                });
                None
            }
            Err(error) => {
                self.shared()
                    .emitter
                    .emit(Event::StudentFailed { seq, error });
                None
            }
        }
    }

    /// Decode and prepare a frame off the async threads; with `compare` (a hash and the
    /// least change), a frame that changed less is not prepared.
    pub(super) async fn prepare(
        &self,
        taken: &Taken,
        compare: Option<(u64, f64)>,
    ) -> Result<Gate, String> {
        let raw = taken.frame.raw.clone();
        let cfg = self.shared().config.frame.clone();
        let gated = tokio::task::spawn_blocking(move || -> Result<Gate, prep::PrepError> {
            let pixels = prep::decode(&raw, cfg.max_side)?;
            let hash = pixels.dhash();
            if let Some((prev, min_change)) = compare {
                let change = dhash::difference(prev, hash);
                if change < min_change {
                    return Ok(Gate::Unchanged { change });
                }
            }
            Ok(Gate::Send {
                prepared: prep::prepare_pixels(&pixels, &cfg)?,
                hash,
            })
        })
        .await;
        match gated {
            Ok(Ok(g)) => Ok(g),
            Ok(Err(e)) => Err(format!("frame {}: {e}", taken.frame.label)),
            Err(e) => Err(format!("frame preparation crashed: {e}")),
        }
    }

    /// The frame is on its way: every face shows it.
    pub(super) fn show(&self, taken: &Taken, prepared: &Arc<PreparedFrame>, hash: u64) {
        let frame = &taken.frame;
        self.shared().emitter.emit(Event::FrameTaken {
            seq: frame.seq,
            captured_at: frame.captured_at,
            label: frame.label.clone(),
            width: prepared.width,
            height: prepared.height,
            jpeg_bytes: prepared.jpeg.len(),
            superseded: taken.superseded,
            dhash: Some(format!("{hash:016x}")),
            image: Some(prepared.clone()),
        });
    }

    /// The current skill (said when it changed) and the student's request for the frame.
    fn request(&mut self, prepared: &PreparedFrame) -> (String, ChatRequest) {
        let skills = &mut self.parts.skills;
        let (skill, changed) = skills.current();
        if changed {
            self.parts.shared.emitter.emit(Event::SkillLoaded {
                name: skills.name(),
                chars: skill.chars().count(),
            });
        }
        let name = skills.name();
        // The watches file is re-read like the skill: a new list is said and asked now.
        let mut watches = self.parts.shared.watches();
        if let Some(ev) = watches.refresh() {
            self.parts.shared.emitter.emit(ev);
        }
        let specs = watches.specs();
        drop(watches);
        let request = student::frame_request_watching(&skill, &specs, prepared.base64.clone());
        (name, request)
    }

    /// Ask: stream the student's answer (tokens to the faces). A safety keyword complete
    /// mid-answer sends the frame to the teacher at once with the answer so far
    /// (`policy.early_escalation`; else it warms the teacher). None when the engine stops
    /// first.
    pub(super) async fn ask(
        &mut self,
        seq: u64,
        request: &ChatRequest,
        prepared: &Arc<PreparedFrame>,
    ) -> Option<Asked> {
        let parts = &self.parts;
        let shared = &parts.shared;
        parts.escalator.answering(seq);
        let began = Instant::now();
        let emitter = &shared.emitter;
        let prompt = request.system.as_deref().unwrap_or("");
        let mut keywords =
            crate::policy::early::KeywordWatch::new(&shared.config.policy.safety_keywords, prompt);
        let early_on = shared.config.policy.early_escalation;
        let teacher_keyword = &parts.teacher_keyword;
        let mut early: Option<String> = None;
        let mut on_token = |t: &str| {
            emitter.token(seq, t);
            let Some(kw) = keywords.push(t) else {
                return;
            };
            if early_on {
                // The review itself loads the teacher: no warm-up beside it.
                let skill = parts.skills.name();
                let so_far = keywords.so_far().to_string();
                parts
                    .escalator
                    .escalate_early(seq, so_far, kw, skill, prepared.clone());
                early = Some(kw.to_string());
            } else {
                // The teacher will be asked: make sure it is loaded.
                let _ = teacher_keyword.send((seq, kw.to_string()));
            }
        };
        let result = tokio::select! {
            r = parts.client.chat(request, &mut on_token) => r,
            _ = self.stop.wait_for(|s| *s) => {
                emitter.emit(Event::StudentFailed {
                    seq,
                    error: "stopped before the answer was complete".into(),
                });
                return None;
            }
        };
        Some(Asked {
            result,
            latency: began.elapsed(),
            forced: parts.escalator.answer_done(),
            early,
        })
    }
}
