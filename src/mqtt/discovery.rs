//! Home Assistant MQTT discovery: one device with its entities (safety alert, last
//! description, confidence, snapshot, escalate button), each naming the availability topic.

use super::topics::{slug, Cmd, Topics};
use serde_json::{json, Value};

/// How long the alert binary sensor stays on after a confirmed alert.
pub const ALERT_ON_SECS: u64 = 300;

/// The retained config messages: `(topic, payload)`, none when `discovery_prefix` is empty.
pub fn messages(discovery_prefix: &str, topics: &Topics, device: &str) -> Vec<(String, String)> {
    if discovery_prefix.is_empty() {
        return Vec::new();
    }
    let id = format!("gemmaedge_{}", slug(device));
    let dev = json!({
        "identifiers": [id],
        "name": device,
        "manufacturer": "gemmaedge",
        "model": "gemmaedge-tui",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let common = |object: &str, name: &str| -> Value {
        json!({
            "name": name,
            "unique_id": format!("{id}_{object}"),
            "object_id": format!("{id}_{object}"),
            "device": dev,
            "availability_topic": topics.available(),
            "payload_available": "online",
            "payload_not_available": "offline",
            "origin": {"name": "gemmaedge-tui", "sw_version": env!("CARGO_PKG_VERSION")},
        })
    };
    let with = |mut base: Value, extra: Value| -> Value {
        if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        base
    };
    let entities = [
        (
            "binary_sensor",
            "alert",
            with(
                common("alert", "Safety alert"),
                json!({
                    "state_topic": topics.alert(),
                    "value_template": "ON",
                    "payload_on": "ON",
                    "off_delay": ALERT_ON_SECS,
                    "device_class": "safety",
                    "json_attributes_topic": topics.alert(),
                }),
            ),
        ),
        (
            "sensor",
            "description",
            with(
                common("description", "Last description"),
                json!({
                    "state_topic": topics.state(),
                    "value_template": "{{ value_json.last_answer.text if value_json.last_answer else '' }}",
                    "icon": "mdi:text-box-outline",
                }),
            ),
        ),
        (
            "sensor",
            "confidence",
            with(
                common("confidence", "Confidence"),
                json!({
                    "state_topic": topics.state(),
                    "value_template": "{{ value_json.last_answer.confidence if value_json.last_answer else None }}",
                    "state_class": "measurement",
                    "icon": "mdi:gauge",
                }),
            ),
        ),
        (
            "image",
            "snapshot",
            with(
                common("snapshot", "Last escalated frame"),
                json!({
                    "image_topic": topics.snapshot(),
                    "content_type": "image/jpeg",
                }),
            ),
        ),
        (
            "button",
            "escalate",
            with(
                common("escalate", "Escalate to the teacher"),
                json!({
                    "command_topic": topics.cmd(Cmd::Escalate),
                    "payload_press": "PRESS",
                    "icon": "mdi:account-school",
                }),
            ),
        ),
        (
            "sensor",
            "incident_level",
            with(
                common("incident_level", "Incident level"),
                json!({
                    "state_topic": topics.incident(),
                    "value_template": "{{ value_json.highest_level }}",
                    "json_attributes_topic": topics.incident(),
                    "icon": "mdi:alert-octagon-outline",
                }),
            ),
        ),
    ];
    entities
        .into_iter()
        .map(|(component, object, cfg)| {
            (
                format!("{discovery_prefix}/{component}/{id}/{object}/config"),
                cfg.to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_device_five_entities_all_with_availability() {
        let t = Topics::new("gemmaedge", "pi kitchen");
        let m = messages("homeassistant", &t, "pi kitchen");
        assert_eq!(m.len(), 6);
        for (topic, payload) in &m {
            assert!(topic.starts_with("homeassistant/"), "{topic}");
            assert!(topic.ends_with("/config"));
            assert!(topic.contains("/gemmaedge_pi_kitchen/"), "{topic}");
            let v: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(v["availability_topic"], "gemmaedge/pi kitchen/available");
            assert_eq!(v["device"]["identifiers"][0], "gemmaedge_pi_kitchen");
            assert!(v["unique_id"]
                .as_str()
                .unwrap()
                .starts_with("gemmaedge_pi_kitchen_"));
        }
        assert!(m[4].0.starts_with("homeassistant/button/"));
        assert!(m[4].1.contains("gemmaedge/pi kitchen/cmd/escalate"));
        assert!(messages("", &t, "pi").is_empty());
    }

    #[test]
    fn a_sensor_for_the_highest_open_incident_level() {
        let t = Topics::new("gemmaedge", "pi");
        let m = messages("homeassistant", &t, "pi");
        let (topic, payload) = m.last().unwrap();
        assert_eq!(
            topic,
            "homeassistant/sensor/gemmaedge_pi/incident_level/config"
        );
        let v: Value = serde_json::from_str(payload).unwrap();
        assert_eq!(v["state_topic"], "gemmaedge/pi/incident");
        assert_eq!(v["value_template"], "{{ value_json.highest_level }}");
    }
}
