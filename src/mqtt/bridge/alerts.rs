//! What the bridge says about safety: the alert state topic (`ON` while an incident is
//! open), the retained snapshot of an escalated frame, the incident topic and the alerts
//! incident changes make (held to the rate limit, a close always goes).

use super::Run;
use crate::mqtt::incidents::alert_state_payload;
use crate::mqtt::outbox::Msg;
use crate::mqtt::payload::{alert_payload, LastAlert};
use crate::record::notify::Alert;
use chrono::Utc;
use std::time::Instant;

impl Run {
    /// Publish the alert binary sensor's state when it changed: `ON` while an incident is
    /// open (retained, and kept to be sent again after a reconnect or Home Assistant's
    /// `online`).
    pub(super) fn update_alert_state(&mut self) {
        let on = self.incidents.any_open();
        if on == self.alert_on {
            return;
        }
        self.alert_on = on;
        let m = Msg::new(self.topics.alert_state(), alert_state_payload(on), true);
        self.publish_retained(m);
    }

    pub(super) fn snapshot(&mut self, seq: u64, saved: Option<&std::path::Path>) {
        let jpeg = self
            .frames
            .iter()
            .find(|f| f.0 == seq)
            .and_then(|f| f.2.as_ref().map(|i| i.jpeg.to_vec()))
            .or_else(|| {
                saved.and_then(|p| crate::files::bounded_read::read_regular(p, 8 << 20).ok())
            });
        if let Some(jpeg) = jpeg {
            let m = Msg::new(self.topics.snapshot(), jpeg, true);
            self.publish_retained(m);
        }
    }

    /// An incident changed: the retained `incident` topic, and an alert when `notify.on`
    /// names the change (open and raise held to the rate limit; a close always goes).
    pub(super) fn incident(&mut self, inc: &crate::event::IncidentEvent) {
        let draft = self.incidents.apply(inc);
        let m = Msg::new(self.topics.incident(), self.incidents.payload(), true);
        self.publish_retained(m);
        self.update_alert_state();
        let Some(draft) = draft else { return };
        let now = Instant::now();
        let suppressed = if draft.limited {
            let Some(held) = self.limit.allow(now) else {
                return;
            };
            held
        } else {
            0
        };
        let seq = draft.seq;
        let at = self
            .frames
            .iter()
            .find(|f| f.0 == seq)
            .map_or_else(Utc::now, |f| f.1);
        let reasons = self
            .escalated
            .iter()
            .find(|e| e.0 == seq)
            .map(|e| e.1.clone())
            .unwrap_or_default();
        let alert = Alert {
            device: self.device.clone(),
            seq,
            at,
            summary: draft.summary.clone(),
            missed: draft.missed,
            wrong: draft.wrong,
            reasons,
            frame_path: None,
            suppressed,
            incident: Some(draft.incident),
        };
        self.queue(Msg::new(self.topics.alert(), alert_payload(&alert), false));
        // Queued is as good as sent: the buffer delivers it when the broker is there.
        if draft.limited {
            self.limit.sent(now);
        }
        self.state.counters.alerts += 1;
        self.state.last_alert = Some(LastAlert {
            seq,
            summary: crate::mqtt::payload::state_text(&draft.summary),
            at,
        });
        self.state_dirty = true;
    }
}
