//! The student could not answer a frame: say why, mark it offline or failing, back off
//! after a permanent failure (frames are still shown meanwhile), and send a frame the
//! user forced to the teacher on its own.

use super::escalation::TeacherJob;
use super::student_loop::{Flow, Run};
use crate::event::{Event, Role};
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
}
