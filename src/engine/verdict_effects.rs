//! What a teacher verdict sets off: the calibration sample it labels, the alert for a
//! confirmed safety-relevant frame (rate-limited, retried, on its own task), and the
//! verdict event itself (face and session log).

use super::emitter::Emitter;
use super::escalation::TeacherJob;
use crate::config::Config;
use crate::event::Event;
use crate::policy::calibration::{CalibrationStore, Sample};
use crate::record::notify::{Alert, Notifier, RateLimit};
use crate::roles::verdict::Verdict;
use chrono::Utc;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Sends of one alert before giving up, and the wait between them.
const NOTIFY_TRIES: u32 = 3;
const NOTIFY_RETRY: Duration = Duration::from_secs(5);

pub(super) struct VerdictEffects {
    emitter: Arc<Emitter>,
    stop: watch::Receiver<bool>,
    device: String,
    logs: PathBuf,
    notifier: Option<Notifier>,
    notify_limit: Mutex<RateLimit>,
    /// Confidence vs teacher agreement per skill (`logs/calibration.json`).
    calibration: Arc<Mutex<CalibrationStore>>,
    /// The last calibration save failed (reported once).
    calibration_failing: AtomicBool,
}

impl VerdictEffects {
    pub(super) fn new(
        config: &Config,
        emitter: Arc<Emitter>,
        stop: watch::Receiver<bool>,
        calibration: Arc<Mutex<CalibrationStore>>,
    ) -> Self {
        VerdictEffects {
            emitter,
            stop,
            device: config.device.name.clone(),
            logs: config.paths.logs.clone(),
            notifier: Notifier::new(&config.notify),
            notify_limit: Mutex::new(RateLimit::new(Duration::from_secs(
                config.notify.min_interval_secs,
            ))),
            calibration,
            calibration_failing: AtomicBool::new(false),
        }
    }

    /// The teacher judged `job`: record, alert, report.
    pub(super) fn apply(self: &Arc<Self>, job: &TeacherJob, verdict: Verdict, latency_ms: u64) {
        self.record_calibration(job, &verdict);
        if crate::record::notify::is_alert(&verdict) {
            self.notify(job, &verdict);
        }
        self.emitter.emit(Event::TeacherVerdict {
            seq: job.seq,
            verdict,
            latency_ms,
        });
    }

    fn limit(&self) -> MutexGuard<'_, RateLimit> {
        self.notify_limit.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Every verdict labels the student's answer: keep it for calibration.
    fn record_calibration(&self, job: &TeacherJob, verdict: &Verdict) {
        // A cut verdict is not a label: what it would have said next is unknown.
        if verdict.truncated {
            return;
        }
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
        let saved = store.save(&self.logs);
        drop(store);
        // Like the session log: say it once, not on every verdict, until it works again.
        let was_failing = self
            .calibration_failing
            .swap(saved.is_err(), Ordering::Relaxed);
        if let (Err(e), false) = (saved, was_failing) {
            self.emitter.emit(Event::Warning {
                message: format!("cannot save calibration: {e}"),
            });
        }
    }

    /// A confirmed safety-relevant frame: alert whoever the config names (rate-limited,
    /// sent on its own task so the teacher worker never waits for a webhook). Only a send
    /// that worked uses up the interval; a failed one is retried (NOTIFY_TRIES in all,
    /// NOTIFY_RETRY apart) unless a newer alert took the freed slot meanwhile.
    fn notify(self: &Arc<Self>, job: &TeacherJob, verdict: &Verdict) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        let Some(suppressed) = self.limit().allow(Instant::now()) else {
            return;
        };
        let mut alert = Alert {
            device: self.device.clone(),
            seq: job.seq,
            at: Utc::now(),
            summary: verdict.summary.clone(),
            missed: verdict.missed.clone(),
            wrong: verdict.wrong.clone(),
            reasons: job.reasons.iter().map(|r| r.to_string()).collect(),
            frame_path: job.frame_path.clone(),
            suppressed,
        };
        let this = self.clone();
        tokio::spawn(async move {
            let mut ways = notifier.ways();
            // Someone was told: the interval runs from then, and only what failed is retried.
            let mut delivered = false;
            for attempt in 1..=NOTIFY_TRIES {
                let (sent, failed) = notifier.send_by(&alert, &ways).await;
                if !sent.is_empty() && !delivered {
                    delivered = true;
                    this.limit().sent(Instant::now());
                }
                if !sent.is_empty() {
                    this.emitter.emit(Event::Notified {
                        seq: alert.seq,
                        via: sent.iter().map(|w| w.name().to_string()).collect(),
                        suppressed: alert.suppressed,
                    });
                }
                if failed.is_empty() {
                    return;
                }
                let last = attempt == NOTIFY_TRIES;
                if !delivered {
                    // Free the slot at once; an alert given up on counts as held back.
                    this.limit().failed(alert.suppressed + u64::from(last));
                }
                let why = failed.iter().map(|f| f.1.as_str()).collect::<Vec<_>>();
                this.emitter.emit(Event::Warning {
                    message: format!(
                        "notification for frame #{} failed: {}{}",
                        alert.seq,
                        why.join("; "),
                        if last {
                            " (gave up)".to_string()
                        } else {
                            format!(" (retrying in {} s)", NOTIFY_RETRY.as_secs())
                        }
                    ),
                });
                if last {
                    return;
                }
                ways = failed.into_iter().map(|f| f.0).collect();
                tokio::time::sleep(NOTIFY_RETRY).await;
                if this.stopping() {
                    return;
                }
                if !delivered {
                    match this.limit().allow(Instant::now()) {
                        Some(held) => alert.suppressed = held,
                        // A newer alert took the slot (and reports this one as held back).
                        None => return,
                    }
                }
            }
        });
    }
}
