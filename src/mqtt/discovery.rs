//! Home Assistant MQTT discovery: one device with its entities (safety alert, last
//! description, confidence, snapshot, escalate button), each naming the availability topic.

use super::topics::{slug, Cmd, Topics};
use serde_json::{json, Value};

/// The device's id in Home Assistant (`gemmaedge_<name>`): the name as `[a-zA-Z0-9_-]`,
/// and when that loses characters a short stable hash of the raw name, so `厨房` and
/// `客厅`, or `pi 1`, `pi.1` and `pi_1`, stay distinct devices.
pub fn device_id(device: &str) -> String {
    let s = slug(device);
    if s == device {
        format!("gemmaedge_{s}")
    } else {
        format!("gemmaedge_{s}_{:08x}", fnv1a32(device.as_bytes()))
    }
}

/// FNV-1a, 32 bits: small, stable across versions and platforms (ids must not change).
fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// What every entity's config holds: its name and ids, the device, the availability topic.
/// `object_id` for Home Assistant before 2025.10; `default_entity_id` (with the domain) for
/// later ones, which log a deprecation for `object_id` alone.
fn entity_base(topics: &Topics, device: &str, component: &str, object: &str, name: &str) -> Value {
    let id = device_id(device);
    json!({
        "name": name,
        "unique_id": format!("{id}_{object}"),
        "object_id": format!("{id}_{object}"),
        "default_entity_id": format!("{component}.{id}_{object}"),
        "device": {
            "identifiers": [id],
            "name": device,
            "manufacturer": "gemmaedge",
            "model": "gemmaedge-tui",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "availability_topic": topics.available(),
        "payload_available": "online",
        "payload_not_available": "offline",
        "origin": {"name": "gemmaedge-tui", "sw_version": env!("CARGO_PKG_VERSION")},
    })
}

/// The discovery topic of watch `id`'s binary sensor.
pub fn watch_config_topic(discovery_prefix: &str, device: &str, watch_id: &str) -> String {
    format!(
        "{discovery_prefix}/binary_sensor/{}/watch_{watch_id}/config",
        device_id(device)
    )
}

/// A watch's binary sensor: named after its question (cleaned, bounded), its state on
/// `<prefix>/D/watch/<id>` (`ON`, `OFF`, `unknown` read as Home Assistant's unknown).
pub fn watch_config(
    discovery_prefix: &str,
    topics: &Topics,
    device: &str,
    w: &crate::watch::WatchStatus,
) -> (String, String) {
    let name = crate::reading::sanitize::for_screen(w.question.trim(), 120);
    let mut cfg = entity_base(
        topics,
        device,
        "binary_sensor",
        &format!("watch_{}", w.id),
        &name,
    );
    if let Some(o) = cfg.as_object_mut() {
        o.insert("state_topic".into(), topics.watch(&w.id).into());
        o.insert("payload_on".into(), "ON".into());
        o.insert("payload_off".into(), "OFF".into());
        o.insert(
            "value_template".into(),
            "{{ 'None' if value == 'unknown' else value }}".into(),
        );
        o.insert("icon".into(), "mdi:eye-check-outline".into());
    }
    (
        watch_config_topic(discovery_prefix, device, &w.id),
        cfg.to_string(),
    )
}

/// The retained config messages: `(topic, payload)`, none when `discovery_prefix` is empty.
pub fn messages(discovery_prefix: &str, topics: &Topics, device: &str) -> Vec<(String, String)> {
    if discovery_prefix.is_empty() {
        return Vec::new();
    }
    let id = device_id(device);
    let common = |component: &str, object: &str, name: &str| -> Value {
        entity_base(topics, device, component, object, name)
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
                common("binary_sensor", "alert", "Safety alert"),
                json!({
                    "state_topic": topics.alert_state(),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": "safety",
                    "json_attributes_topic": topics.alert(),
                }),
            ),
        ),
        (
            "sensor",
            "description",
            with(
                common("sensor", "description", "Last description"),
                json!({
                    "state_topic": topics.state(),
                    "value_template": "{{ value_json.last_answer.text if value_json.last_answer else '' }}",
                    "json_attributes_topic": topics.state(),
                    "json_attributes_template": "{{ {'full_text': value_json.last_answer.full_text if value_json.last_answer else ''} | tojson }}",
                    "icon": "mdi:text-box-outline",
                }),
            ),
        ),
        (
            "sensor",
            "confidence",
            with(
                common("sensor", "confidence", "Confidence"),
                json!({
                    "state_topic": topics.state(),
                    "value_template": "{{ value_json.last_answer.confidence if value_json.last_answer else None }}",
                    "state_class": "measurement",
                    "suggested_display_precision": 2,
                    "icon": "mdi:gauge",
                }),
            ),
        ),
        (
            "image",
            "snapshot",
            with(
                common("image", "snapshot", "Last escalated frame"),
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
                common("button", "escalate", "Escalate to the teacher"),
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
                common("sensor", "incident_level", "Incident level"),
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
            assert!(
                topic.contains(&format!("/{}/", device_id("pi kitchen"))),
                "{topic}"
            );
            let v: Value = serde_json::from_str(payload).unwrap();
            assert_eq!(v["availability_topic"], "gemmaedge/pi kitchen/available");
            assert_eq!(v["device"]["identifiers"][0], device_id("pi kitchen"));
            assert!(v["unique_id"]
                .as_str()
                .unwrap()
                .starts_with("gemmaedge_pi_kitchen_"));
        }
        for (topic, payload) in &m {
            // default_entity_id beside object_id, with the component as its domain.
            let v: Value = serde_json::from_str(payload).unwrap();
            let component = topic.split('/').nth(1).unwrap();
            assert_eq!(
                v["default_entity_id"],
                format!("{component}.{}", v["object_id"].as_str().unwrap())
            );
        }
        let alert: Value = serde_json::from_str(&m[0].1).unwrap();
        assert_eq!(alert["state_topic"], "gemmaedge/pi kitchen/alert_state");
        assert!(
            alert.get("off_delay").is_none(),
            "the program manages the state"
        );
        assert!(m[4].0.starts_with("homeassistant/button/"));
        assert!(m[4].1.contains("gemmaedge/pi kitchen/cmd/escalate"));
        assert!(messages("", &t, "pi").is_empty());
    }

    #[test]
    fn ids_that_lose_characters_carry_a_hash_of_the_name() {
        assert_eq!(device_id("kitchen"), "gemmaedge_kitchen");
        assert_eq!(device_id("pi_1"), "gemmaedge_pi_1");
        let ids: Vec<String> = ["pi 1", "pi.1", "pi_1", "厨房", "客厅", "pi-1"]
            .iter()
            .map(|d| device_id(d))
            .collect();
        for (i, a) in ids.iter().enumerate() {
            assert!(
                a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{a}"
            );
            for b in &ids[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // Stable: the same name gives the same id in every run and version.
        assert_eq!(device_id("厨房"), device_id("厨房"));
        assert_eq!(fnv1a32(b"a"), 0xe40c_292c);
        assert!(device_id("pi 1").starts_with("gemmaedge_pi_1_"));
    }

    #[test]
    fn a_watch_is_a_binary_sensor_named_after_its_question() {
        let t = Topics::new("gemmaedge", "pi");
        let board = crate::watch::WatchBoard::new(&[crate::watch::WatchSpec::new(
            "garage_door",
            "Is the garage door open?\u{1b}[2J",
        )]);
        let (topic, payload) = watch_config("homeassistant", &t, "pi", &board.statuses()[0]);
        assert_eq!(
            topic,
            "homeassistant/binary_sensor/gemmaedge_pi/watch_garage_door/config"
        );
        let v: Value = serde_json::from_str(&payload).unwrap();
        assert_eq!(v["name"], "Is the garage door open?");
        assert_eq!(v["state_topic"], "gemmaedge/pi/watch/garage_door");
        assert_eq!(v["availability_topic"], "gemmaedge/pi/available");
        assert_eq!(v["unique_id"], "gemmaedge_pi_watch_garage_door");
        assert_eq!(v["device"]["identifiers"][0], "gemmaedge_pi");
        assert_eq!(
            v["default_entity_id"],
            "binary_sensor.gemmaedge_pi_watch_garage_door"
        );
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
