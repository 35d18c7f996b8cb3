//! Incidents over MQTT: which incident changes alert on `<prefix>/D/alert` (`notify.on`,
//! the same rule as `[notify]`), and the retained `<prefix>/D/incident` with the open
//! incidents and the highest open level (Home Assistant's incident level sensor reads it),
//! and the retained `<prefix>/D/alert_state` (the alert binary sensor): `ON` while an
//! incident is open, `OFF` when none is.

use crate::event::{IncidentChange, IncidentEvent};
use crate::history::incident::duration;
use crate::record::notify::IncidentAlert;
use crate::roles::verdict::Verdict;
use serde_json::json;
use std::collections::VecDeque;

/// Verdicts remembered for the alert that follows them.
const VERDICTS_KEPT: usize = 32;

/// What an incident change should say on the alert topic.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    pub seq: u64,
    pub summary: String,
    pub missed: Vec<String>,
    pub wrong: Vec<String>,
    pub incident: IncidentAlert,
    /// Held to `min_interval_secs` (open and raise; a close always goes).
    pub limited: bool,
}

pub struct Incidents {
    open: Vec<IncidentEvent>,
    verdicts: VecDeque<(u64, Verdict)>,
    alert_on: Vec<String>,
}

impl Incidents {
    pub fn new(alert_on: &[String]) -> Self {
        Incidents {
            open: Vec::new(),
            verdicts: VecDeque::new(),
            alert_on: alert_on.to_vec(),
        }
    }

    pub fn verdict(&mut self, seq: u64, v: &Verdict) {
        if self.verdicts.len() == VERDICTS_KEPT {
            self.verdicts.pop_front();
        }
        self.verdicts.push_back((seq, v.clone()));
    }

    /// Take an incident change: the alert it makes, if any.
    pub fn apply(&mut self, inc: &IncidentEvent) -> Option<AlertDraft> {
        self.open.retain(|o| o.id != inc.id);
        if inc.change != IncidentChange::Close {
            self.open.push(inc.clone());
            self.open.sort_by_key(|o| o.id);
        }
        if !self.alert_on.iter().any(|c| c == inc.change.as_str()) {
            return None;
        }
        let verdict = inc
            .seq
            .and_then(|s| self.verdicts.iter().rev().find(|v| v.0 == s))
            .map(|v| &v.1);
        let summary = match (inc.change, verdict) {
            (IncidentChange::Close, _) => crate::history::incident::close_summary(inc),
            (_, Some(v)) => v.summary.clone(),
            _ => inc.title.clone(),
        };
        Some(AlertDraft {
            seq: inc.seq.or(inc.key_seq).unwrap_or(0),
            summary,
            missed: verdict.map(|v| v.missed.clone()).unwrap_or_default(),
            wrong: verdict.map(|v| v.wrong.clone()).unwrap_or_default(),
            incident: IncidentAlert {
                id: inc.id,
                change: inc.change.as_str().to_string(),
                level: inc.level,
                title: inc.title.clone(),
                frames: inc.frames,
                duration_secs: duration(inc).num_seconds(),
            },
            limited: inc.change != IncidentChange::Close,
        })
    }

    /// Whether an incident is open: the alert binary sensor's state.
    pub fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// The retained `incident` payload: the open incidents and the highest open level.
    pub fn payload(&self) -> String {
        let open: Vec<_> = self
            .open
            .iter()
            .map(|i| {
                json!({
                    "id": i.id,
                    "level": i.level,
                    "title": crate::record::notify::one_line(&i.title),
                    "opened_at": i.opened_at,
                    "last_at": i.last_at,
                    "frames": i.frames,
                    "acknowledged": i.acked_at.is_some(),
                    "acked_by": i.acked_by.as_deref().map(crate::record::notify::one_line),
                })
            })
            .collect();
        let highest = self.open.iter().map(|i| i.level).max().unwrap_or(0);
        crate::reading::sanitize::escape_json_invisibles(
            json!({"highest_level": highest, "open": open}).to_string(),
        )
    }
}

/// The retained payload of the alert state topic.
pub fn alert_state_payload(on: bool) -> &'static str {
    if on {
        "ON"
    } else {
        "OFF"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::incident::Tracker;
    use chrono::{DateTime, Duration, Utc};

    fn v(level: u8) -> Verdict {
        Verdict {
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "Smoke rises from a pan.".into(),
            level: Some(level),
            title: "Pan smoking".into(),
            ..Verdict::default()
        }
    }

    #[test]
    fn forty_frames_alert_twice_and_the_retained_state_follows() {
        let on = ["open".to_string(), "raise".into(), "close".into()];
        let mut m = Incidents::new(&on);
        let mut tr = Tracker::new(120, 1, Vec::new());
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut drafts = Vec::new();
        for seq in 0..40u64 {
            let verdict = v(1);
            m.verdict(seq, &verdict);
            for inc in tr.on_verdict(seq, t0 + Duration::seconds(seq as i64), &verdict) {
                drafts.extend(m.apply(&inc));
            }
        }
        let p: serde_json::Value = serde_json::from_str(&m.payload()).unwrap();
        assert_eq!(p["highest_level"], 1);
        assert_eq!(p["open"][0]["frames"], 40);
        assert!(m.any_open(), "the alert stands while the incident is open");
        for inc in tr.tick(t0 + Duration::hours(1)) {
            drafts.extend(m.apply(&inc));
        }
        let changes: Vec<_> = drafts.iter().map(|d| d.incident.change.as_str()).collect();
        assert_eq!(changes, ["open", "close"]);
        assert_eq!(drafts[0].summary, "Smoke rises from a pan.");
        assert!(drafts[0].limited && !drafts[1].limited);
        assert_eq!(
            drafts[1].summary,
            "closed after 159 s, 40 confirmed frames: Pan smoking"
        );
        let p: serde_json::Value = serde_json::from_str(&m.payload()).unwrap();
        assert_eq!(p, serde_json::json!({"highest_level": 0, "open": []}));
        assert!(!m.any_open(), "and ends when it closes");
        // notify.on without "close": no close alert.
        let mut m = Incidents::new(&["open".to_string()]);
        let mut tr = Tracker::new(120, 1, Vec::new());
        let e = tr.on_verdict(1, Utc::now(), &v(2));
        assert!(m.apply(&e[0]).is_some());
        let c = tr.tick(Utc::now() + Duration::hours(1));
        assert!(m.apply(&c[0]).is_none());
    }
}
