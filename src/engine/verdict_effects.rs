//! What a teacher verdict sets off: the calibration sample it labels, the verdict event
//! itself (face, session log, history), the incident it opens, joins or raises, and the
//! alert per incident change (open, raise, close; rate-limited, retried, on its own task).

use super::emitter::Emitter;
use super::escalation::TeacherJob;
use super::watches::EngineWatches;
use crate::config::Config;
use crate::event::{Event, IncidentChange, IncidentEvent};
use crate::history::incident::{self, Tracker};
use crate::policy::calibration::{CalibrationStore, Sample};
use crate::record::notify::{Alert, IncidentAlert, Notifier, RateLimit};
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
    /// Confirmed frames grouped into incidents.
    incidents: Mutex<Tracker>,
    /// Which incident changes alert (`notify.on`).
    alert_on: Vec<String>,
    /// The watches the teacher's answers decide.
    watches: Arc<Mutex<EngineWatches>>,
}

impl VerdictEffects {
    pub(super) fn new(
        config: &Config,
        emitter: Arc<Emitter>,
        stop: watch::Receiver<bool>,
        calibration: Arc<Mutex<CalibrationStore>>,
        watches: Arc<Mutex<EngineWatches>>,
        incidents: Tracker,
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
            incidents: Mutex::new(incidents),
            alert_on: config.notify.on.clone(),
            watches,
        }
    }

    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Close the incidents whose gap has passed (called every second).
    pub(super) fn tick(self: &Arc<Self>) {
        let closed = self.tracker().tick(Utc::now());
        for inc in closed {
            self.incident(inc, None);
        }
    }

    /// Say the incidents still open from before a restart (as `join`s with no frame: no
    /// alert, the store unchanged), so the faces and MQTT's alert state know them.
    pub(super) fn resume(&self) {
        let open: Vec<IncidentEvent> = self.tracker().open_incidents().to_vec();
        for inc in open {
            self.emitter.emit(Event::Incident(IncidentEvent {
                change: IncidentChange::Join,
                seq: None,
                ..inc
            }));
        }
    }

    /// Acknowledge an open incident (or all), from a console or MQTT.
    pub(super) fn ack(&self, id: Option<u64>, by: &str) {
        let acked = self.tracker().ack(id, by, Utc::now());
        if acked.is_empty() {
            self.emitter.emit(Event::Warning {
                message: match id {
                    Some(id) => format!("no open incident #{id} to acknowledge"),
                    None => "no open incident to acknowledge".into(),
                },
            });
        }
        for inc in acked {
            self.emitter.emit(Event::Incident(inc));
        }
    }

    /// Tell the faces and the store about an incident change, and alert when `notify.on`
    /// names it.
    fn incident(self: &Arc<Self>, inc: IncidentEvent, job: Option<(&TeacherJob, &Verdict)>) {
        self.emitter.emit(Event::Incident(inc.clone()));
        if !self.alert_on.iter().any(|c| c == inc.change.as_str()) {
            return;
        }
        let summary = match (inc.change, job) {
            (IncidentChange::Close, _) => crate::history::incident::close_summary(&inc),
            (_, Some((_, v))) => v.summary.clone(),
            _ => inc.title.clone(),
        };
        let alert = Alert {
            device: self.device.clone(),
            seq: inc.seq.or(inc.key_seq).unwrap_or(0),
            at: Utc::now(),
            summary,
            missed: job.map(|(_, v)| v.missed.clone()).unwrap_or_default(),
            wrong: job.map(|(_, v)| v.wrong.clone()).unwrap_or_default(),
            reasons: job
                .map(|(j, _)| j.reasons.iter().map(|r| r.to_string()).collect())
                .unwrap_or_default(),
            frame_path: job.and_then(|(j, _)| j.frame_path.clone()),
            suppressed: 0,
            incident: Some(IncidentAlert {
                id: inc.id,
                change: inc.change.as_str().to_string(),
                level: inc.level,
                title: inc.title.clone(),
                frames: inc.frames,
                duration_secs: incident::duration(&inc).num_seconds(),
            }),
        };
        // A close ends what an open said: it is never held back by the rate limit.
        self.notify(alert, inc.change != IncidentChange::Close);
    }

    /// The teacher judged `job`: record, alert, report.
    pub(super) fn apply(self: &Arc<Self>, job: &TeacherJob, verdict: Verdict, latency_ms: u64) {
        self.record_calibration(job, &verdict);
        let (watched, watch_event) = self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .on_teacher(job.seq, &verdict);
        // The frame counts for an incident at the higher of its verdict's level and its
        // confirmed `on_yes` watches' (titled by the watch when that is higher).
        let (level, title) = watch_incident(&verdict, &watched.confirmed_yes);
        let changes =
            self.tracker()
                .on_confirmed(job.seq, Utc::now(), level, title, !verdict.truncated);
        self.emitter.emit(Event::TeacherVerdict {
            seq: job.seq,
            verdict: verdict.clone(),
            latency_ms,
        });
        if let Some(ev) = watch_event {
            self.emitter.emit(ev);
        }
        for change in &watched.changes {
            self.watch_alert(job, change);
        }
        for inc in changes {
            self.incident(inc, Some((job, &verdict)));
        }
    }

    /// A teacher-decided change of a watch with `notify = "on_change"`: alert it.
    fn watch_alert(self: &Arc<Self>, job: &TeacherJob, change: &crate::watch::WatchChange) {
        let spec = self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spec(&change.id);
        let Some(spec) = spec.filter(|s| s.notify == crate::watch::Notify::OnChange) else {
            return;
        };
        let question = crate::reading::sanitize::for_screen(&spec.question, 200);
        let alert = Alert {
            device: self.device.clone(),
            seq: job.seq,
            at: Utc::now(),
            summary: format!("{} ({question})", crate::watch::change_line(change)),
            missed: Vec::new(),
            wrong: Vec::new(),
            reasons: job.reasons.iter().map(|r| r.to_string()).collect(),
            frame_path: job.frame_path.clone(),
            suppressed: 0,
            incident: None,
        };
        self.notify(alert, true);
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
        // No student answer (the teacher reviewed the frame alone): nothing to label.
        if job.answer.is_none() {
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
    fn notify(self: &Arc<Self>, mut alert: Alert, limited: bool) {
        let Some(notifier) = self.notifier.clone() else {
            return;
        };
        if limited {
            let Some(suppressed) = self.limit().allow(Instant::now()) else {
                return;
            };
            alert.suppressed = suppressed;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut ways = notifier.ways();
            // Someone was told: the interval runs from then, and only what failed is retried.
            let mut delivered = false;
            for attempt in 1..=NOTIFY_TRIES {
                let (sent, failed) = notifier.send_by(&alert, &ways).await;
                if !sent.is_empty() && !delivered {
                    delivered = true;
                    if limited {
                        this.limit().sent(Instant::now());
                    }
                }
                if !sent.is_empty() {
                    this.emitter.emit(Event::Notified {
                        seq: alert.seq,
                        via: sent.iter().map(|w| w.name().to_string()).collect(),
                        suppressed: alert.suppressed,
                        incident: alert.incident.as_ref().map(|i| i.id),
                        change: alert.incident.as_ref().map(|i| i.change.clone()),
                    });
                }
                if failed.is_empty() {
                    return;
                }
                let last = attempt == NOTIFY_TRIES;
                if !delivered && limited {
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
                if !delivered && limited {
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

/// The level and title a reviewed frame counts for in incidents: its verdict's, raised to
/// the highest level among the `on_yes` watches the teacher confirmed (then titled by that
/// watch's question). A cut verdict stays at most 1, as `verdict::level` says for it.
pub(super) fn watch_incident(
    v: &Verdict,
    confirmed_yes: &[crate::watch::WatchSpec],
) -> (u8, String) {
    let level = crate::roles::verdict::level(v);
    let watch = confirmed_yes
        .iter()
        .filter(|w| w.notify == crate::watch::Notify::OnYes)
        .max_by_key(|w| w.level);
    match watch {
        Some(w) if w.level > level && v.raw.is_none() => {
            let cap = if v.truncated { 1 } else { 2 };
            let title = crate::roles::verdict::title(&Verdict {
                title: format!("{} Yes.", w.question.trim()),
                ..Verdict::default()
            });
            (w.level.min(cap).max(level), title)
        }
        _ => (level, crate::roles::verdict::title(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{Notify, WatchSpec};

    #[test]
    fn a_confirmed_on_yes_watch_raises_the_frame_to_its_level() {
        let calm = Verdict {
            agrees: Some(true),
            safety_relevant: Some(false),
            summary: "A garage, the door open.".into(),
            level: Some(0),
            ..Verdict::default()
        };
        let mut door = WatchSpec::new("garage_door", "Is the garage door open?");
        door.level = 2;
        assert_eq!(
            watch_incident(&calm, &[door.clone()]),
            (2, "Is the garage door open? Yes.".to_string())
        );
        // `on_change` and `never` watches open no incident.
        door.notify = Notify::OnChange;
        assert_eq!(watch_incident(&calm, &[door.clone()]).0, 0);
        door.notify = Notify::Never;
        assert_eq!(watch_incident(&calm, &[door.clone()]).0, 0);
        // A higher verdict keeps its own title.
        door.notify = Notify::OnYes;
        door.level = 1;
        let fire = Verdict {
            level: Some(2),
            title: "Fire in the garage".into(),
            ..calm.clone()
        };
        assert_eq!(
            watch_incident(&fire, &[door.clone()]),
            (2, "Fire in the garage".into())
        );
        // A cut verdict never makes anything urgent.
        door.level = 2;
        let cut = Verdict {
            truncated: true,
            ..calm
        };
        assert_eq!(watch_incident(&cut, &[door]).0, 1);
    }
}
