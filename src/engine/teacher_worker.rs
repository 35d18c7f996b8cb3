//! The teacher worker: reviews queued frames one at a time, highest priority first,
//! retrying passing failures and keeping frames while the teacher is unreachable; each
//! verdict's side effects are `VerdictEffects`'.

use super::escalation::{Escalator, TeacherJob};
use super::shared::Shared;
use super::verdict_effects::VerdictEffects;
use crate::event::{Event, Health, Role};
use crate::model::backoff;
use crate::model::ModelClient;
use crate::roles::teacher;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the worker works with.
pub(super) struct TeacherWorker {
    pub(super) shared: Arc<Shared>,
    pub(super) client: ModelClient,
    pub(super) escalator: Arc<Escalator>,
    pub(super) effects: Arc<VerdictEffects>,
}

impl TeacherWorker {
    pub(super) async fn run(self) {
        let TeacherWorker {
            shared,
            client,
            escalator,
            effects,
        } = self;
        let queue = escalator.queue();
        let mut stop = shared.stop.subscribe();
        let mut online = shared.teacher_health.online.subscribe();
        let max_retries = client.config().max_retries;
        let max_per_minute = client.config().max_per_minute as usize;
        let device = shared.config.device.name.clone();
        let mut recent: VecDeque<Instant> = VecDeque::new();
        // Consecutive permanent failures: each waits longer before the next review.
        let mut permanent_failures = 0u32;
        // Each arm that gives up on a job while the engine stops puts it back, where the
        // engine's stop reports every job left (nothing vanishes from the log).
        macro_rules! or_stop {
            ($fut:expr, $job:expr) => {
                tokio::select! {
                    r = $fut => r,
                    _ = stop.wait_for(|s| *s) => return escalator.put_back($job),
                }
            };
        }
        loop {
            // The next job once the teacher is online.
            let job = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => return,
                job = queue.pop(&mut online) => job,
            };
            shared.emitter.emit(Event::TeacherStarted {
                seq: job.seq,
                queue_len: queue.len(),
            });
            // The answer so far for an early review (marked as cut), the whole answer, or
            // none (the teacher reviews the frame alone).
            let answer = job.answer.as_deref().map(|a| (a, job.answer_cut()));
            let watches = shared.watches().specs();
            let request = teacher::review_request_at(
                teacher::Place {
                    device: Some(&device),
                    context: &shared.config.device.context,
                    watches: &watches,
                },
                answer,
                &job.reasons,
                job.image.base64.clone(),
            );
            // Many devices may share one teacher: keep to this device's share.
            if max_per_minute > 0 {
                let minute = Duration::from_secs(60);
                while recent.front().is_some_and(|t| t.elapsed() >= minute) {
                    recent.pop_front();
                }
                if recent.len() >= max_per_minute {
                    let wait =
                        minute.saturating_sub(recent.front().map_or(minute, |t| t.elapsed()));
                    shared.emitter.emit(Event::Warning {
                        message: format!(
                            "teacher limit {max_per_minute}/min reached; frame #{} waits {:.0} s",
                            job.seq,
                            wait.as_secs_f64()
                        ),
                    });
                    or_stop!(tokio::time::sleep(wait), job);
                    recent.pop_front();
                }
                recent.push_back(Instant::now());
            }
            let mut attempt = 0;
            loop {
                let began = Instant::now();
                let mut ignore_tokens = |_: &str| {};
                let result = or_stop!(client.chat(&request, &mut ignore_tokens), job);
                match result {
                    Ok(reply) => {
                        let latency_ms = began.elapsed().as_millis() as u64;
                        shared
                            .teacher_health
                            .set(&shared.emitter, Health::Ok { latency_ms });
                        permanent_failures = 0;
                        let mut verdict = teacher::parse_verdict(&reply.content);
                        if job.answer.is_none() {
                            // No student answer: nothing to agree or disagree with.
                            verdict.agrees = None;
                        }
                        if reply.hit_token_cap() {
                            shared.emitter.emit(Event::Warning {
                                message: format!(
                                    "frame #{}: the teacher's verdict hit its token cap \
                                     (teacher.max_tokens = {}){}",
                                    job.seq,
                                    client.config().max_tokens,
                                    if verdict.truncated {
                                        "; what was complete is kept, marked partial"
                                    } else {
                                        ""
                                    }
                                ),
                            });
                        }
                        effects.apply(&job, verdict, latency_ms);
                        break;
                    }
                    Err(e) if e.is_unreachable() => {
                        // Keep the frame: it goes first once the teacher is back.
                        let seq = job.seq;
                        escalator.put_back(job.clone());
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
                        or_stop!(tokio::time::sleep(backoff::SERVER.delay(attempt)), job);
                    }
                    Err(e) => {
                        if e.is_missing_model() {
                            shared
                                .teacher_health
                                .offline(&shared.emitter, &e, client.model());
                        } else if e.is_permanent() {
                            shared
                                .teacher_health
                                .failing(&shared.emitter, &e, client.model());
                        }
                        failed(&shared, &job, &e, &client);
                        if e.is_permanent() {
                            // The next review would fail the same way: wait (capped, growing).
                            permanent_failures += 1;
                            let wait = backoff::SERVER.delay(permanent_failures);
                            or_stop!(tokio::time::sleep(wait), job);
                        }
                        break;
                    }
                }
            }
        }
    }
}

/// The review failed for good: say why and what to do.
fn failed(shared: &Shared, job: &TeacherJob, e: &crate::model::ModelError, client: &ModelClient) {
    shared.emitter.emit(Event::TeacherFailed {
        seq: job.seq,
        error: crate::model::error::with_hint(
            &e.to_string(),
            &e.hint(Role::Teacher, client.model()),
        ),
    });
}
