//! What the engine does with a student's answer: read it (parse, policy, the storm
//! warning), say it, and hand the frame on to the teacher queue when it escalates.

use super::escalation::TeacherJob;
use super::shared::Shared;
use super::student_loop::{Read, Run};
use crate::event::{Event, Health};
use crate::frame::PreparedFrame;
use crate::model::{ChatReply, ChatRequest};
use crate::policy::escalation_rate::EscalationRate;
use crate::policy::{effective_confidence, Observation, Reason};
use crate::reading::confidence::parse_answer;
use chrono::Utc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Run {
    /// Read and decide: parse the answer and apply the policy.
    pub(super) fn read(
        &mut self,
        seq: u64,
        request: &ChatRequest,
        reply: &ChatReply,
        forced: bool,
        early: Option<&str>,
    ) -> Read {
        let shared = &self.parts.shared;
        if reply.truncated {
            shared.emitter.emit(Event::Warning {
                message: format!("frame #{seq}: the student's reply was cut (too long)"),
            });
        }
        if let Some(secs) = reply.timed_out {
            shared.emitter.emit(Event::Warning {
                message: format!(
                    "frame #{seq}: the student's answer was cut by the {secs} s timeout \
                     (student.timeout_secs); what arrived is kept"
                ),
            });
        }
        // Watch lines are read apart; the description and the confidence come from the rest.
        let parsed = parse_answer(&crate::watch::without_watch_lines(&reply.content));
        let (watch_reasons, watches) = shared.watches().on_student(seq, &reply.content);
        let confidence = effective_confidence(
            shared.config.policy.confidence,
            parsed.confidence,
            reply.measured_confidence,
        );
        let reasons = self.st.policy.decide(Observation {
            answer: &parsed.description,
            confidence,
            forced,
            prompt: request.system.as_deref().unwrap_or(""),
            cut_at: reply
                .hit_token_cap()
                .then(|| request.max_tokens(self.parts.client.config()).unwrap_or(0)),
        });
        let mut reasons = match early {
            Some(kw) => crate::policy::after_early(kw, reasons),
            None => reasons,
        };
        // A watch's reason replaces a periodic audit: the frame goes to the teacher anyway.
        if !watch_reasons.is_empty() {
            reasons.retain(|r| *r != Reason::Audit);
            reasons.extend(watch_reasons);
        }
        Read {
            parsed,
            reasons,
            watches,
        }
    }

    /// The student answered: its health, the answer event, the calibration count, and
    /// the end of any teacher-only watch.
    pub(super) fn answered(
        &mut self,
        seq: u64,
        reply: &ChatReply,
        read: &Read,
        latency: Duration,
        skill: &str,
    ) {
        let shared = &self.parts.shared;
        let slow_after = Duration::from_secs(self.parts.client.config().timeout_secs) / 2;
        let latency_ms = latency.as_millis() as u64;
        self.st.permanent_failures = 0;
        self.st.retry_at = None;
        shared.student_health.set(
            &shared.emitter,
            if latency > slow_after {
                Health::Slow { latency_ms }
            } else {
                Health::Ok { latency_ms }
            },
        );
        if let Some(on) = self.st.down.answered() {
            self.teacher_alone(on);
        }
        shared.emitter.emit(Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: reply.content.clone(),
            confidence: read.parsed.confidence,
            measured_confidence: reply.measured_confidence,
            latency_ms,
            reasons: read.reasons.clone(),
            skill: skill.to_string(),
        });
        if let Some(ev) = &read.watches {
            shared.emitter.emit(ev.clone());
        }
        let mut calibration = self
            .parts
            .calibration
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        calibration.count_answer(skill);
        if let Some(kw) = crate::policy::unneeded_early(&read.reasons) {
            calibration.count_early_unneeded(skill, kw);
        }
        drop(calibration);
        self.parts.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Hand on: remember the frame for `e`, queue it for the teacher when the policy says
    /// so, watch the escalation rate, and keep its hash for the change gate.
    pub(super) fn hand_on(
        &mut self,
        seq: u64,
        reply: ChatReply,
        read: Read,
        prepared: Arc<PreparedFrame>,
        hash: u64,
    ) {
        let job = TeacherJob {
            seq,
            answer: Some(reply.content),
            confidence: read.parsed.confidence,
            measured: reply.measured_confidence,
            skill: self.parts.skills.name(),
            reasons: read.reasons,
            image: prepared,
            frame_path: None,
        };
        self.parts.escalator.remember(job.clone());
        let early = job
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::SafetyEarly { .. }));
        if early {
            // Reviewed early: only a face's `e` sends the frame again (its full answer).
            if job.reasons.contains(&Reason::Forced) {
                let mut forced = job.clone();
                forced.reasons = vec![Reason::Forced];
                self.parts.escalator.escalate(forced);
            }
        } else if !job.reasons.is_empty() {
            self.parts.escalator.escalate(job.clone());
        }
        self.st.storm_warned = storm_check(
            &self.parts.shared,
            &mut self.st.recent,
            &job.reasons,
            self.st.storm_warned,
        );
        self.st.last_hash = Some(hash);
        self.st.last_answered_at = Some(Instant::now());
    }
}

/// Count this answer in the recent escalation rate; warn once when it passes
/// `policy.storm_share` (again only after it fell back below 80% of the limit). Returns
/// whether a storm is being warned about.
fn storm_check(
    shared: &Shared,
    recent: &mut EscalationRate,
    reasons: &[Reason],
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
