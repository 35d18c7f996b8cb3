//! Watches over MQTT (pure): each watch's retained `<prefix>/D/watch/<id>` (`ON`, `OFF`,
//! `unknown`) and, with discovery on, its Home Assistant binary sensor; a removed watch's
//! config and state are cleared with empty retained messages, so the entity disappears.

use super::outbox::Msg;
use super::topics::Topics;
use crate::event::WatchesEvent;
use crate::watch::{WatchState, WatchStatus};

/// The state topic's payload.
pub fn payload(s: WatchState) -> &'static str {
    match s {
        WatchState::Yes => "ON",
        WatchState::No => "OFF",
        WatchState::Unknown => "unknown",
    }
}

/// The watches the broker was last told about.
#[derive(Debug, Default)]
pub struct WatchTopics {
    known: Vec<WatchStatus>,
}

impl WatchTopics {
    /// What a `watches` event changes on the broker: configs of new (or re-worded) watches,
    /// states that changed, and empty retained messages for the removed ones. All retained.
    pub fn apply(
        &mut self,
        ev: &WatchesEvent,
        discovery_prefix: &str,
        topics: &Topics,
        device: &str,
    ) -> Vec<Msg> {
        let mut out = Vec::new();
        for w in &ev.watches {
            let before = self.known.iter().find(|k| k.id == w.id);
            if !discovery_prefix.is_empty() && before.is_none_or(|b| b.question != w.question) {
                let (t, p) = super::discovery::watch_config(discovery_prefix, topics, device, w);
                out.push(Msg::new(t, p, true));
            }
            if before.is_none_or(|b| b.state != w.state) {
                out.push(Msg::new(topics.watch(&w.id), payload(w.state), true));
            }
        }
        for gone in self
            .known
            .iter()
            .filter(|k| !ev.watches.iter().any(|w| w.id == k.id))
        {
            if !discovery_prefix.is_empty() {
                let t = super::discovery::watch_config_topic(discovery_prefix, device, &gone.id);
                out.push(Msg::new(t, "", true));
            }
            out.push(Msg::new(topics.watch(&gone.id), "", true));
        }
        self.known = ev.watches.clone();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::{WatchBoard, WatchSpec};

    fn ev(b: &WatchBoard) -> WatchesEvent {
        WatchesEvent {
            watches: b.statuses(),
            changes: Vec::new(),
            removed: Vec::new(),
        }
    }

    fn topics_of(m: &[Msg]) -> Vec<(String, String)> {
        m.iter()
            .map(|m| {
                (
                    m.topic.clone(),
                    String::from_utf8_lossy(&m.payload)
                        .chars()
                        .take(20)
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn configs_states_and_removal() {
        let t = Topics::new("gemmaedge", "pi");
        let mut w = WatchTopics::default();
        let mut b = WatchBoard::new(&[WatchSpec::new("garage_door", "Is the garage door open?")]);
        let m = w.apply(&ev(&b), "homeassistant", &t, "pi");
        assert!(m.iter().all(|m| m.retain));
        let m = topics_of(&m);
        assert_eq!(m.len(), 2, "{m:?}");
        assert_eq!(
            m[0].0,
            "homeassistant/binary_sensor/gemmaedge_pi/watch_garage_door/config"
        );
        assert_eq!(
            m[1],
            ("gemmaedge/pi/watch/garage_door".into(), "unknown".into())
        );
        // A state change: the state only.
        b.on_student(1, chrono::Utc::now(), &[crate::watch::WatchAnswer::Yes]);
        b.on_student(2, chrono::Utc::now(), &[crate::watch::WatchAnswer::Yes]);
        let m = topics_of(&w.apply(&ev(&b), "homeassistant", &t, "pi"));
        assert_eq!(
            m,
            vec![("gemmaedge/pi/watch/garage_door".into(), "ON".into())]
        );
        // Nothing changed: nothing sent.
        assert!(w.apply(&ev(&b), "homeassistant", &t, "pi").is_empty());
        // Removed: its config and state cleared.
        b.set_specs(&[]);
        let m = topics_of(&w.apply(&ev(&b), "homeassistant", &t, "pi"));
        assert_eq!(
            m,
            vec![
                (
                    "homeassistant/binary_sensor/gemmaedge_pi/watch_garage_door/config".into(),
                    String::new()
                ),
                ("gemmaedge/pi/watch/garage_door".into(), String::new())
            ]
        );
        // Without discovery, states only.
        let mut w = WatchTopics::default();
        let b = WatchBoard::new(&[WatchSpec::new("a", "A?")]);
        assert_eq!(topics_of(&w.apply(&ev(&b), "", &t, "pi")).len(), 1);
    }
}
