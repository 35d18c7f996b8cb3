//! Escalations: the job a frame becomes for the teacher, putting it in the teacher queue
//! (saving the frame first when the config says so) and saying so, and the forced
//! escalation of the frame being answered or the last one answered.

use super::emitter::Emitter;
use crate::engine::teacher_queue::{Escalation, TeacherQueue};
use crate::event::Event;
use crate::frame::PreparedFrame;
use crate::policy::Reason;
use std::sync::{Arc, Mutex, MutexGuard};

/// A frame waiting for (or with) the teacher.
#[derive(Debug, Clone)]
pub(super) struct TeacherJob {
    pub(super) seq: u64,
    pub(super) answer: String,
    pub(super) confidence: Option<f32>,
    pub(super) measured: Option<f32>,
    pub(super) skill: String,
    pub(super) reasons: Vec<Reason>,
    pub(super) image: Arc<PreparedFrame>,
    /// Where the frame was saved, once escalated (and saving is on).
    pub(super) frame_path: Option<std::path::PathBuf>,
}

impl Escalation for TeacherJob {
    fn reasons(&self) -> &[Reason] {
        &self.reasons
    }
}

/// What the student is doing, for forced escalation.
#[derive(Default)]
struct Current {
    answering: Option<u64>,
    force_current: bool,
    last: Option<TeacherJob>,
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
    pub(super) fn new(queue_cap: usize, save_frames: bool, emitter: Arc<Emitter>) -> Self {
        Escalator {
            queue: TeacherQueue::new(queue_cap),
            current: Mutex::new(Current::default()),
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

    /// The last frame answered, for a forced escalation after the fact.
    pub(super) fn remember(&self, job: TeacherJob) {
        self.current().last = Some(job);
    }

    /// A face forces an escalation: the frame being answered (once its answer is in),
    /// else the last one answered.
    pub(super) fn force(&self) {
        let last = {
            let mut c = self.current();
            if c.answering.is_some() {
                c.force_current = true;
                return;
            }
            c.last.clone()
        };
        match last {
            Some(mut job) => {
                job.reasons = vec![Reason::Forced];
                self.escalate(job);
            }
            None => self.emitter.emit(Event::Warning {
                message: "nothing to escalate yet: no frame answered".into(),
            }),
        }
    }
}
