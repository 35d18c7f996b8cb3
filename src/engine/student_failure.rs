//! Frames the student does not answer. Not asked (offline, loading, refused): the frame
//! is shown all the same, the log says why, `e` can send it to the teacher, and while the
//! student is down the teacher watches alone. Failed: say why, mark the student offline
//! or failing, back off after a permanent failure (frames are still shown meanwhile), and
//! send a frame the user forced to the teacher on its own.

use super::escalation::TeacherJob;
use super::student_loop::{Flow, Gate, NotAsked, Run};
use crate::event::{Event, Role};
use crate::frame::slot::Taken;
use crate::frame::PreparedFrame;
use crate::model::{backoff, ModelError};
use crate::policy::Reason;
use std::sync::Arc;
use std::time::Instant;

impl Run {
    /// The student's call for frame `seq` failed with `e`.
    pub(super) async fn failed(
        &mut self,
        seq: u64,
        e: ModelError,
        forced: bool,
        prepared: Arc<PreparedFrame>,
    ) -> Flow {
        let shared = self.parts.shared.clone();
        let client = &self.parts.client;
        shared.emitter.emit(Event::StudentFailed {
            seq,
            error: e.to_string(),
        });
        let now = Instant::now();
        if e.is_permanent() {
            // Trying again every frame cannot help: say what to fix, and wait longer after
            // each failure (capped) until someone fixes it. Frames are shown meanwhile.
            self.st.permanent_failures += 1;
            self.st.down.down(now);
            shared
                .student_health
                .failing(&shared.emitter, &e, client.model());
            let wait = backoff::SERVER.delay(self.st.permanent_failures);
            self.st.retry_at = Some(now + wait);
            if self.st.permanent_failures == 1 {
                shared.emitter.emit(Event::Warning {
                    message: format!(
                        "student: {} — retrying with backoff (up to {} s between tries)",
                        crate::model::error::with_hint(
                            &e.to_string(),
                            &e.hint(Role::Student, client.model())
                        ),
                        backoff::SERVER.cap.as_secs()
                    ),
                });
            }
        } else if e.is_unreachable() {
            self.st.down.down(now);
            shared
                .student_health
                .offline(&shared.emitter, &e, client.model());
        }
        if forced {
            // The user asked for this frame: the teacher reviews it alone.
            self.parts.escalator.escalate(TeacherJob {
                seq,
                answer: None,
                confidence: None,
                measured: None,
                skill: self.parts.skills.name(),
                reasons: vec![Reason::Forced],
                image: prepared,
                frame_path: None,
            });
        }
        Flow::Next
    }

    /// A frame the student cannot answer: shown all the same, the log says why, `e` can
    /// send it to the teacher, and while the student is down the teacher watches alone.
    pub(super) async fn unanswered(&mut self, taken: Taken, why: NotAsked) -> Flow {
        self.st.last_unanswered = Instant::now();
        let seq = taken.frame.seq;
        let prepared = match self.prepare(&taken, None).await {
            Ok(Gate::Send { prepared, hash }) => (Arc::new(prepared), hash),
            Ok(Gate::Unchanged { .. }) => return Flow::Next,
            Err(error) => {
                self.shared()
                    .emitter
                    .emit(Event::StudentFailed { seq, error });
                return Flow::Next;
            }
        };
        let (prepared, hash) = prepared;
        self.show(&taken, &prepared, hash);
        self.shared().emitter.emit(Event::FrameUnanswered {
            seq,
            why: why.says().to_string(),
        });
        let job = TeacherJob {
            seq,
            answer: None,
            confidence: None,
            measured: None,
            skill: self.parts.skills.name(),
            reasons: Vec::new(),
            image: prepared,
            frame_path: None,
        };
        self.parts.escalator.remember(job.clone());
        if why == NotAsked::Loading {
            return Flow::Next;
        }
        let now = Instant::now();
        self.st.down.down(now);
        let step = self.st.down.frame(now, *self.teacher_online.borrow());
        if let Some(on) = step.alone {
            self.teacher_alone(on);
        }
        if step.both_down {
            self.shared().emitter.emit(Event::Warning {
                message: "the student and the teacher are both down: no frame can be \
                          reviewed until one of them is back"
                    .into(),
            });
        }
        if step.send {
            self.parts.escalator.escalate(TeacherJob {
                reasons: vec![Reason::StudentDown],
                ..job
            });
        }
        Flow::Next
    }

    /// The teacher starts or stops watching alone: every face says so.
    pub(super) fn teacher_alone(&self, on: bool) {
        let every_secs = self.shared().config.policy.fallback_every_secs;
        self.shared()
            .emitter
            .emit(Event::TeacherAlone { on, every_secs });
    }
}
