//! Escalations: the job a frame becomes for the teacher, putting it in the teacher queue
//! (saving the frame first when the config says so) and saying so, and the forced
//! escalation of the frame being answered or the last one answered: at most one per
//! frame and `policy.forced_per_minute`, the rest refused, counted and said (at most once
//! a second), so a flood of `escalate` commands cannot crowd out safety reviews.

use super::emitter::Emitter;
use crate::engine::teacher_queue::{Escalation, TeacherQueue};
use crate::event::Event;
use crate::frame::PreparedFrame;
use crate::policy::per_minute::PerMinute;
use crate::policy::Reason;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A frame waiting for (or with) the teacher.
#[derive(Debug, Clone)]
pub(super) struct TeacherJob {
    pub(super) seq: u64,
    /// The student's answer; None when it gave none (down, failed): the teacher reviews
    /// the frame alone.
    pub(super) answer: Option<String>,
    pub(super) confidence: Option<f32>,
    pub(super) measured: Option<f32>,
    pub(super) skill: String,
    pub(super) reasons: Vec<Reason>,
    pub(super) image: Arc<PreparedFrame>,
    /// Where the frame was saved, once escalated (and saving is on).
    pub(super) frame_path: Option<std::path::PathBuf>,
}

impl TeacherJob {
    /// Escalated early (`policy.early_escalation`): `answer` is the answer so far, cut
    /// while the student was still answering.
    pub(super) fn answer_cut(&self) -> bool {
        self.reasons
            .iter()
            .any(|r| matches!(r, Reason::SafetyEarly { needed: None, .. }))
    }
}

impl Escalation for TeacherJob {
    fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
}

/// What the student is doing, for forced escalation.
struct Current {
    answering: Option<u64>,
    force_current: bool,
    last: Option<TeacherJob>,
    gate: ForcedGate,
}

/// Why a forced escalation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForcedRefusal {
    /// This frame is already forced (merged into that one).
    Merged(u64),
    /// More than `policy.forced_per_minute` in the last minute.
    RateLimited(u32),
}

impl std::fmt::Display for ForcedRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ForcedRefusal::Merged(seq) => write!(f, "frame #{seq} is already forced"),
            ForcedRefusal::RateLimited(n) => write!(
                f,
                "more than {n} forced escalations a minute (policy.forced_per_minute)"
            ),
        }
    }
}

/// The rule for forced escalations (pure, given the time): one per frame, at most
/// `per_minute` in any minute; refusals counted, said at most once a second.
#[derive(Debug)]
pub(crate) struct ForcedGate {
    per_minute: u32,
    last_forced: Option<u64>,
    recent: PerMinute,
    pub(crate) refused: u64,
    said_at: Option<Instant>,
}

impl ForcedGate {
    pub(crate) fn new(per_minute: u32) -> Self {
        ForcedGate {
            per_minute,
            last_forced: None,
            recent: PerMinute::new(per_minute as usize),
            refused: 0,
            said_at: None,
        }
    }

    /// May frame `seq` be forced now? Counts it when yes.
    pub(crate) fn admit(&mut self, seq: u64, now: Instant) -> Result<(), ForcedRefusal> {
        let refusal = if self.last_forced == Some(seq) {
            Some(ForcedRefusal::Merged(seq))
        } else {
            (!self.recent.admit(now)).then_some(ForcedRefusal::RateLimited(self.per_minute))
        };
        match refusal {
            Some(r) => {
                self.refused += 1;
                Err(r)
            }
            None => {
                self.last_forced = Some(seq);
                Ok(())
            }
        }
    }

    /// Whether a refusal is said now (the first, then at most once a second).
    pub(crate) fn say(&mut self, now: Instant) -> bool {
        if self
            .said_at
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        self.said_at = Some(now);
        true
    }
}

/// The way into the teacher queue, for the student loop, the teacher worker and the
/// command loop.
pub(super) struct Escalator {
    queue: TeacherQueue<TeacherJob>,
    current: Mutex<Current>,
    emitter: Arc<Emitter>,
    /// `privacy.save_frames`: keep escalated frames under `logs/frames/`.
    save_frames: bool,
}

impl Escalator {
    pub(super) fn new(
        queue_cap: usize,
        forced_per_minute: u32,
        save_frames: bool,
        emitter: Arc<Emitter>,
    ) -> Self {
        Escalator {
            queue: TeacherQueue::new(queue_cap),
            current: Mutex::new(Current {
                answering: None,
                force_current: false,
                last: None,
                gate: ForcedGate::new(forced_per_minute),
            }),
            emitter,
            save_frames,
        }
    }

    pub(super) fn queue(&self) -> &TeacherQueue<TeacherJob> {
        &self.queue
    }

    fn current(&self) -> MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue a frame for the teacher and say so.
    pub(super) fn escalate(&self, mut job: TeacherJob) {
        let frame_path = if self.save_frames {
            match self.emitter.save_frame(job.seq, &job.image.jpeg) {
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
        let (seq, reasons) = (job.seq, job.reasons.clone());
        let pushed = self.queue.push(job);
        self.emitter.emit(Event::Escalated {
            seq,
            reasons,
            queue_len: pushed.len,
            frame_path,
        });
        if let Some(d) = pushed.dropped {
            self.dropped(d);
        }
    }

    /// A safety keyword completed mid-answer (`policy.early_escalation`): queue the frame
    /// at once with the answer so far (the teacher is told it is cut there).
    pub(super) fn escalate_early(
        &self,
        seq: u64,
        so_far: String,
        keyword: &str,
        skill: String,
        image: Arc<PreparedFrame>,
    ) {
        self.escalate(TeacherJob {
            seq,
            answer: Some(so_far),
            confidence: None,
            measured: None,
            skill,
            reasons: vec![Reason::SafetyEarly {
                keyword: keyword.to_string(),
                needed: None,
            }],
            image,
            frame_path: None,
        });
    }

    /// A job the teacher could not review yet goes back to the front of its priority;
    /// a full queue pushes out its lowest-priority, oldest entry: said, as always.
    pub(super) fn put_back(&self, job: TeacherJob) {
        if let Some(d) = self.queue.put_back(job) {
            self.dropped(d);
        }
    }

    fn dropped(&self, job: TeacherJob) {
        self.emitter.emit(Event::TeacherDropped {
            seq: job.seq,
            reasons: job.reasons,
        });
    }

    /// The student starts answering frame `seq`.
    pub(super) fn answering(&self, seq: u64) {
        let mut c = self.current();
        c.answering = Some(seq);
        c.force_current = false;
    }

    /// The student's answer is over: whether a face forced this frame meanwhile.
    pub(super) fn answer_done(&self) -> bool {
        let mut c = self.current();
        c.answering = None;
        std::mem::take(&mut c.force_current)
    }

    /// The last frame taken (answered or not), for a forced escalation after the fact.
    pub(super) fn remember(&self, job: TeacherJob) {
        self.current().last = Some(job);
    }

    /// A face forces an escalation: the frame being answered (once its answer is in),
    /// else the last one taken (answered or not: the teacher reviews an unanswered one
    /// alone).
    pub(super) fn force(&self) {
        let now = Instant::now();
        let last = {
            let mut c = self.current();
            let target = c.answering.or(c.last.as_ref().map(|j| j.seq));
            let Some(seq) = target else {
                drop(c);
                return self.emitter.emit(Event::Warning {
                    message: "nothing to escalate yet: no frame taken".into(),
                });
            };
            if let Err(why) = c.gate.admit(seq, now) {
                if c.gate.say(now) {
                    let refused = c.gate.refused;
                    drop(c);
                    self.emitter.emit(Event::EscalationRefused {
                        seq,
                        why: why.to_string(),
                        refused,
                    });
                }
                return;
            }
            if c.answering.is_some() {
                c.force_current = true;
                return;
            }
            c.last.clone()
        };
        if let Some(mut job) = last {
            job.reasons = vec![Reason::Forced];
            self.escalate(job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_forced_escalation_per_frame_and_a_rate_limit() {
        let t0 = Instant::now();
        let mut g = ForcedGate::new(3);
        assert_eq!(g.admit(1, t0), Ok(()));
        assert_eq!(g.admit(1, t0), Err(ForcedRefusal::Merged(1)));
        assert_eq!(g.admit(2, t0), Ok(()));
        assert_eq!(g.admit(3, t0), Ok(()));
        assert_eq!(g.admit(4, t0), Err(ForcedRefusal::RateLimited(3)));
        assert_eq!(g.refused, 2);
        // A minute later the window has room again.
        assert_eq!(g.admit(4, t0 + Duration::from_secs(60)), Ok(()));
        assert!(ForcedGate::new(0).admit(1, t0).is_err(), "0 = none");
        assert!(ForcedRefusal::RateLimited(3)
            .to_string()
            .contains("policy.forced_per_minute"));
    }

    #[test]
    fn refusals_are_said_at_most_once_a_second() {
        let t0 = Instant::now();
        let mut g = ForcedGate::new(1);
        assert!(g.say(t0));
        assert!(!g.say(t0 + Duration::from_millis(500)));
        assert!(g.say(t0 + Duration::from_millis(1000)));
    }
}
