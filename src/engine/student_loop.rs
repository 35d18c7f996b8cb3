//! The student loop: take the newest frame, skip it when nothing changed, stream the
//! student's answer, apply the policy, and hand escalations to the teacher queue.

use super::escalation::{Escalator, TeacherJob};
use super::shared::{wait_gate, Shared};
use crate::event::{Event, Health};
use crate::frame::slot::SlotReader;
use crate::frame::{dhash, prep, PreparedFrame};
use crate::model::backoff;
use crate::model::{ModelClient, ModelError};
use crate::policy::calibration::CalibrationStore;
use crate::policy::{effective_confidence, Observation, Policy, Reason};
use crate::reading::confidence::parse_answer;
use crate::roles::skill::SkillStore;
use crate::roles::student;
use chrono::Utc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// A still scene is sent to the student at least this often, changed or not.
const MAX_UNCHANGED: Duration = Duration::from_secs(60);

/// What the change gate decided for a taken frame.
enum Gate {
    Send { prepared: PreparedFrame, hash: u64 },
    Unchanged { change: f64 },
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

/// The gates in front of the student's model.
struct Gates {
    stop: watch::Receiver<bool>,
    online: watch::Receiver<bool>,
}

impl Gates {
    /// The one place the student loop waits before it calls its model: until its server
    /// is online. (Its turn on the model is the client's: eval and upskill calls share the
    /// student through `crate::model::scheduler`, live frames first.) False when the engine stops
    /// meanwhile.
    async fn model_turn(&mut self, shared: &Shared) -> bool {
        wait_gate(shared, &mut self.online, true, &mut self.stop).await
    }
}

impl StudentLoop {
    pub(super) async fn run(self) {
        let StudentLoop {
            shared,
            client,
            reader,
            mut skills,
            max_frames,
            escalator,
            calibration,
            mut ready,
            teacher_keyword,
            answered,
        } = self;
        let mut gates = Gates {
            stop: shared.stop.subscribe(),
            online: shared.student_health.online.subscribe(),
        };
        let mut policy = Policy::new(shared.config.policy.clone());
        let frame_cfg = shared.config.frame.clone();
        let slow_after = Duration::from_secs(client.config().timeout_secs) / 2;
        let min_change = shared.config.source.min_change;
        let mut last_hash: Option<u64> = None;
        let mut last_answered_at: Option<Instant> = None;
        let mut unchanged_total = 0u64;
        // Frames taken from the source: answered, failed or skipped as unchanged.
        let mut frames_taken = 0u64;
        // Consecutive permanent failures (a 400, a missing model, a text-only model).
        let mut permanent_failures = 0u32;
        let mut vision_checked = client.config().text_only;
        let mut recent = crate::policy::escalation_rate::EscalationRate::default();
        let mut storm_warned = false;
        // The start warm-up first: the first answer is then about a frame taken once the model
        // is in memory, and its latency is an answer's, not a load's.
        if !wait_gate(&shared, &mut ready, true, &mut gates.stop).await {
            return;
        }
        loop {
            if max_frames.is_some_and(|m| frames_taken >= m) {
                break;
            }
            if !gates.model_turn(&shared).await {
                break;
            }
            if !vision_checked {
                vision_checked = true;
                if !check_vision(&shared, &client).await {
                    // Refused: stay (the faces show why) until the engine stops.
                    let _ = gates.stop.wait_for(|s| *s).await;
                    break;
                }
            }
            let taken = tokio::select! {
                t = reader.take() => t,
                _ = gates.stop.wait_for(|s| *s) => break,
            };
            let Some(taken) = taken else {
                shared.emitter.emit(Event::Warning {
                    message: "the frame source ended; stopping".into(),
                });
                break;
            };
            frames_taken += 1;
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
                let pixels = prep::decode(&raw, cfg.max_side)?;
                let hash = pixels.dhash();
                if let Some(prev) = compare_with {
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
                dhash: Some(format!("{hash:016x}")),
                image: Some(prepared.clone()),
            });
            let (skill, changed) = skills.current();
            if changed {
                shared.emitter.emit(Event::SkillLoaded {
                    name: skills.name(),
                    chars: skill.chars().count(),
                });
            }
            escalator.answering(seq);
            let request = student::frame_request(&skill, prepared.base64.clone());
            let began = Instant::now();
            let result = {
                let emitter = &shared.emitter;
                // A safety keyword mid-answer: the teacher will be asked, make sure it is loaded.
                let mut keywords =
                    super::warm::KeywordWatch::new(&shared.config.policy.safety_keywords);
                let mut on_token = |t: &str| {
                    emitter.token(seq, t);
                    if let Some(kw) = keywords.push(t) {
                        let _ = teacher_keyword.send((seq, kw.to_string()));
                    }
                };
                tokio::select! {
                    r = client.chat(&request, &mut on_token) => r,
                    _ = gates.stop.wait_for(|s| *s) => {
                        shared.emitter.emit(Event::StudentFailed { seq, error: "stopped before the answer was complete".into() });
                        break;
                    }
                }
            };
            let latency = began.elapsed();
            let forced = escalator.answer_done();
            match result {
                Ok(reply) => {
                    if reply.truncated {
                        shared.emitter.emit(Event::Warning {
                            message: format!(
                                "frame #{seq}: the student's reply was cut (too long)"
                            ),
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
                        prompt: request.system.as_deref().unwrap_or(""),
                        cut_at: reply
                            .hit_token_cap()
                            .then(|| request.max_tokens(client.config()).unwrap_or(0)),
                    });
                    permanent_failures = 0;
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
                    calibration
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
                    escalator.remember(job.clone());
                    if !reasons.is_empty() {
                        escalator.escalate(job);
                    }
                    storm_warned = storm_check(&shared, &mut recent, &reasons, storm_warned);
                    last_hash = Some(hash);
                    last_answered_at = Some(Instant::now());
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    shared.emitter.emit(Event::StudentFailed {
                        seq,
                        error: e.to_string(),
                    });
                    if e.is_permanent() {
                        // Trying again every frame cannot help: say what to fix, and wait
                        // longer after each failure (capped) until someone fixes it.
                        permanent_failures += 1;
                        shared
                            .student_health
                            .failing(&shared.emitter, &e, client.model());
                        let wait = backoff::SERVER.delay(permanent_failures);
                        if permanent_failures == 1 {
                            shared.emitter.emit(Event::Warning {
                                message: format!(
                                "student: {} — retrying with backoff (up to {} s between tries)",
                                crate::model::error::with_hint(
                                    &e.to_string(),
                                    &e.hint(crate::event::Role::Student, client.model())
                                ),
                                backoff::SERVER.cap.as_secs()
                            ),
                            });
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(wait) => {}
                            _ = gates.stop.wait_for(|s| *s) => break,
                        }
                    } else if e.is_unreachable() {
                        shared
                            .student_health
                            .offline(&shared.emitter, &e, client.model());
                    }
                    if forced {
                        escalator.escalate(TeacherJob {
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
}

/// Ask the server whether the student model takes images. A model known to be text-only
/// is refused (unless `text_only` is set): every answer would be about no image at all.
/// Returns false when refused.
async fn check_vision(shared: &Shared, client: &ModelClient) -> bool {
    match client.vision().await {
        Ok(Some(false)) => {
            let e = ModelError::text_only_model(client.model());
            let hint = e.hint(crate::event::Role::Student, client.model());
            shared
                .student_health
                .failing(&shared.emitter, &e, client.model());
            shared.emitter.emit(Event::StudentRefused {
                reason: e.to_string(),
                hint,
            });
            false
        }
        Ok(None) => {
            shared.emitter.emit(Event::Warning {
                message: format!(
                    "cannot verify that the student model {} accepts images (the server does \
                     not say); its first answers will show",
                    client.model()
                ),
            });
            true
        }
        // Unknown (an older server, a passing failure): the answers will tell.
        Ok(Some(true)) | Err(_) => true,
    }
}

/// Count this answer in the recent escalation rate; warn once when it passes
/// `policy.storm_share` (again only after it fell back below 80% of the limit). Returns
/// whether a storm is being warned about.
fn storm_check(
    shared: &Shared,
    recent: &mut crate::policy::escalation_rate::EscalationRate,
    reasons: &[crate::policy::Reason],
    warned: bool,
) -> bool {
    let now = Instant::now();
    recent.record(now, reasons);
    let limit = shared.config.policy.storm_share;
    let Some(share) = recent.share(now).filter(|_| limit > 0.0) else {
        return warned;
    };
    if share > limit && !warned {
        shared.emitter.emit(Event::Warning {
            message: crate::policy::escalation_rate::storm_warning(
                share,
                limit,
                recent,
                shared.config.policy.confidence_threshold,
            ),
        });
        return true;
    }
    warned && share >= limit * 0.8
}
