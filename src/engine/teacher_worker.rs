//! The teacher worker: reviews queued frames one at a time, highest priority first,
//! retrying passing failures and keeping frames while the teacher is unreachable.

use super::{wait_gate, Shared};
use crate::event::{Event, Health};
use crate::model::ModelClient;
use crate::policy::priority_of;
use crate::teacher;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(super) async fn teacher_loop(shared: Arc<Shared>, client: ModelClient) {
    let mut stop = shared.stop.subscribe();
    let mut online = shared.teacher_health.online.subscribe();
    let max_retries = client.config().max_retries;
    let max_per_minute = client.config().max_per_minute as usize;
    let device = shared.config.device.name.clone();
    let mut recent: std::collections::VecDeque<Instant> = std::collections::VecDeque::new();
    // Consecutive permanent failures: each waits longer before the next review.
    let mut permanent_failures = 0u32;
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
                    _ = stop.wait_for(|s| *s) => return requeue(&shared, job),
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
                _ = stop.wait_for(|s| *s) => return requeue(&shared, job),
            };
            match result {
                Ok(reply) => {
                    let latency_ms = began.elapsed().as_millis() as u64;
                    shared
                        .teacher_health
                        .set(&shared.emitter, Health::Ok { latency_ms });
                    permanent_failures = 0;
                    let verdict = teacher::parse_verdict(&reply.content);
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
                    let wait = crate::backoff::SERVER.delay(attempt);
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = stop.wait_for(|s| *s) => return requeue(&shared, job),
                    }
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
                    shared.emitter.emit(Event::TeacherFailed {
                        seq: job.seq,
                        error: crate::model::error::with_hint(
                            &e.to_string(),
                            &e.hint(crate::event::Role::Teacher, client.model()),
                        ),
                    });
                    if e.is_permanent() {
                        // The next review would fail the same way: wait (capped, growing).
                        permanent_failures += 1;
                        tokio::select! {
                            _ = tokio::time::sleep(crate::backoff::SERVER.delay(permanent_failures)) => {}
                            _ = stop.wait_for(|s| *s) => return requeue(&shared, job),
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// The engine stops with this job unreviewed: back into the queue, where the engine's stop
/// reports every job left (nothing vanishes from the log).
fn requeue(shared: &Shared, job: super::TeacherJob) {
    let priority = priority_of(&job.reasons).unwrap_or(crate::policy::Priority::Audit);
    let pushed_out = shared
        .queue
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push_front(priority, job);
    // A full queue pushes out its lowest-priority, oldest entry: say so, as always.
    if let Some(d) = pushed_out {
        shared.emitter.emit(Event::TeacherDropped {
            seq: d.seq,
            reasons: d.reasons,
        });
    }
}
