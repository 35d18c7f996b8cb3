//! Home Assistant discovery against a real Mosquitto: ids that stay distinct when a device
//! name loses characters (issue 33), the alert binary sensor's retained state topic, the
//! description without the output contract's lines, and discovery said again when Home
//! Assistant announces itself `online` (issue 30); a watch's binary sensor and its state
//! appear, and disappear when the watch is removed (issue 26).

mod support;

use chrono::Utc;
use gemmaedge_tui::config::Config;
use gemmaedge_tui::event::Event;
use gemmaedge_tui::history::incident::Tracker;
use gemmaedge_tui::mqtt::{Bridge, BridgeHandle};
use gemmaedge_tui::roles::verdict::Verdict;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use support::engine_config;
use support::mosquitto::{Broker, Sub};

const USERS: &[(&str, &str)] = &[("dev", "dev-pw"), ("homeassistant", "ha-pw")];
/// `dev` stands for every device (one user keeps the test about ids, not the ACL);
/// `homeassistant` as in the README: reads, presses the button, says `online`.
const ACL: &str = "user dev\ntopic readwrite gemmaedge/#\ntopic readwrite homeassistant/#\n\n\
user homeassistant\ntopic read gemmaedge/#\ntopic read homeassistant/#\n\
topic write gemmaedge/+/cmd/escalate\ntopic write homeassistant/status\n";

fn config(dir: &Path, broker: &Broker, device: &str) -> Config {
    let mut c = engine_config(dir, "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
    c.device.name = device.into();
    c.mqtt.url = broker.url();
    c.mqtt.username = "dev".into();
    c.mqtt.password = "dev-pw".into();
    c
}

fn start(dir: &Path, broker: &Broker, device: &str) -> BridgeHandle {
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    Bridge::start(&config(dir, broker, device), cmd_tx).unwrap()
}

fn verdict(seq: u64, safety: bool) -> Event {
    Event::TeacherVerdict {
        seq,
        verdict: Verdict {
            agrees: Some(true),
            safety_relevant: Some(safety),
            summary: if safety {
                "Smoke over the pan."
            } else {
                "A quiet kitchen."
            }
            .into(),
            ..Default::default()
        },
        latency_ms: 100,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_names_that_lose_characters_keep_their_own_discovery_configs() {
    let broker = Broker::start(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let names = ["厨房", "客厅", "pi 1", "pi.1", "pi_1"];
    let mut bridges = Vec::new();
    for n in names {
        bridges.push(start(dir.path(), &broker, n));
    }
    // A late subscriber sees what is retained: every device's five configs, none
    // overwritten by another's.
    let sub = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &["homeassistant/+/+/+/config"],
    )
    .await;
    sub.wait_for(15, "6 retained configs per device", |g| {
        g.iter().map(|m| &m.topic).collect::<BTreeSet<_>>().len() == 6 * names.len()
    })
    .await;
    let mut by_device: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
    for m in sub.all() {
        let v = m.json();
        let id = v["device"]["identifiers"][0].as_str().unwrap().to_string();
        let name = v["device"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            v["availability_topic"],
            format!("gemmaedge/{name}/available")
        );
        let e = by_device
            .entry(id)
            .or_insert((name.clone(), BTreeSet::new()));
        assert_eq!(e.0, name, "one id, one device");
        e.1.insert(v["unique_id"].as_str().unwrap().to_string());
    }
    assert_eq!(by_device.len(), names.len(), "{by_device:?}");
    for (id, (name, uniques)) in &by_device {
        assert_eq!(uniques.len(), 6, "{name}: {uniques:?}");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{id}"
        );
    }
    // A name that is already an id keeps its plain id.
    assert!(by_device.contains_key("gemmaedge_pi_1"), "{by_device:?}");
    for b in bridges {
        b.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_state_is_retained_on_while_an_incident_is_open_and_said_again_when_ha_comes_online()
{
    let broker = Broker::start(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), &broker, "kitchen");
    let sub = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &[
            "gemmaedge/kitchen/alert_state",
            "gemmaedge/kitchen/state",
            "homeassistant/#",
        ],
    )
    .await;
    sub.wait_for(10, "OFF before any alert (retained)", |g| {
        g.iter()
            .any(|m| m.topic.ends_with("/alert_state") && m.payload == b"OFF")
    })
    .await;
    // The discovery config points the binary sensor at it, beside object_id the new key.
    let cfg = sub
        .all()
        .into_iter()
        .find(|m| m.topic == "homeassistant/binary_sensor/gemmaedge_kitchen/alert/config")
        .expect("the alert's config")
        .json();
    assert_eq!(cfg["state_topic"], "gemmaedge/kitchen/alert_state");
    assert_eq!(
        cfg["default_entity_id"],
        "binary_sensor.gemmaedge_kitchen_alert"
    );
    assert_eq!(cfg["object_id"], "gemmaedge_kitchen_alert");

    b.send(&Event::StudentAnswer {
        seq: 1,
        at: Utc::now(),
        answer: "Smoke rises over a pan.\nSafety: smoke over the stove.\nCONFIDENCE: 0.90".into(),
        confidence: Some(0.9),
        measured_confidence: None,
        latency_ms: 800,
        reasons: vec![],
        skill: "built-in".into(),
    });
    // The engine's incident tracker (the production rule) turns verdicts into incident
    // changes; the bridge sees both, as from the engine.
    let mut incidents = Tracker::new(120, 1, Vec::new());
    let t0 = Utc::now();
    let send_verdict = |seq: u64, safety: bool, tracker: &mut Tracker| {
        let v = verdict(seq, safety);
        b.send(&v);
        let Event::TeacherVerdict { verdict, .. } = v else {
            unreachable!()
        };
        for inc in tracker.on_verdict(seq, t0 + chrono::Duration::seconds(seq as i64), &verdict) {
            b.send(&Event::Incident(inc));
        }
    };
    send_verdict(1, true, &mut incidents);
    sub.wait_for(10, "ON after a confirmed alert opened an incident", |g| {
        g.iter()
            .any(|m| m.topic.ends_with("/alert_state") && m.payload == b"ON")
    })
    .await;
    // A subscriber that comes later (Home Assistant after a restart) reads ON, retained.
    let late = Sub::connect(&broker, "homeassistant", "ha-pw", &["gemmaedge/kitchen/+"]).await;
    late.wait_for(10, "retained ON and the state", |g| {
        g.iter()
            .any(|m| m.topic.ends_with("/alert_state") && m.retain && m.payload == b"ON")
            && g.iter()
                .any(|m| m.topic.ends_with("/state") && m.json()["last_answer"].is_object())
    })
    .await;
    let state = late.on("gemmaedge/kitchen/state").last().unwrap().json();
    assert_eq!(
        state["last_answer"]["text"], "Smoke rises over a pan. Safety: smoke over the stove.",
        "the contract's confidence line is not part of the description"
    );
    assert_eq!(
        state["last_answer"]["confidence"]
            .as_f64()
            .map(|c| (c * 100.0).round()),
        Some(90.0)
    );

    // The teacher finds a later frame safe: the incident stays open (a quiet frame in the
    // middle of a fire is not its end), and so does the alert.
    send_verdict(2, false, &mut incidents);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let states = |g: &[support::mosquitto::Got]| {
        g.iter()
            .filter(|m| m.topic.ends_with("/alert_state"))
            .map(|m| m.payload.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(states(&sub.all()), [b"OFF".to_vec(), b"ON".to_vec()]);
    // `gap_secs` after its last confirmed frame the incident closes: the alert ends.
    for inc in incidents.tick(t0 + chrono::Duration::hours(1)) {
        b.send(&Event::Incident(inc));
    }
    sub.wait_for(10, "OFF after the incident closed", |g| {
        g.iter()
            .filter(|m| m.topic.ends_with("/alert_state"))
            .map(|m| m.payload.as_slice())
            .collect::<Vec<_>>()
            == [b"OFF".as_slice(), b"ON", b"OFF"]
    })
    .await;

    // Home Assistant's birth message: the configs and the retained states come again.
    let before = sub.all().len();
    let ha = Sub::connect(&broker, "homeassistant", "ha-pw", &["homeassistant/status"]).await;
    ha.publish("homeassistant/status", "online").await;
    sub.wait_for(10, "configs and alert state again after HA's online", |g| {
        let again = &g[before..];
        again
            .iter()
            .filter(|m| m.topic.ends_with("/config"))
            .count()
            == 6
            && again
                .iter()
                .any(|m| m.topic.ends_with("/alert_state") && m.payload == b"OFF")
    })
    .await;
    // `offline` from Home Assistant (its last will) asks for nothing.
    let before = sub.all().len();
    ha.publish("homeassistant/status", "offline").await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(
        !sub.all()[before..]
            .iter()
            .any(|m| m.topic.ends_with("/config")),
        "nothing republished on offline"
    );
    b.stop().await;
}

fn watches(board: &gemmaedge_tui::watch::WatchBoard) -> Event {
    Event::Watches(gemmaedge_tui::event::WatchesEvent {
        watches: board.statuses(),
        changes: Vec::new(),
        removed: Vec::new(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_appears_as_a_binary_sensor_with_its_state_and_disappears_when_removed() {
    use gemmaedge_tui::watch::{WatchAnswer, WatchBoard, WatchSpec};
    let broker = Broker::start(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), &broker, "garage");
    let mut board = WatchBoard::new(&[WatchSpec::new("garage_door", "Is the garage door open?")]);
    b.send(&watches(&board));
    let config_topic = "homeassistant/binary_sensor/gemmaedge_garage/watch_garage_door/config";
    let state_topic = "gemmaedge/garage/watch/garage_door";
    // A late subscriber (Home Assistant starting later) gets both, retained.
    let sub = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &[
            "homeassistant/binary_sensor/+/+/config",
            "gemmaedge/garage/watch/+",
        ],
    )
    .await;
    sub.wait_for(15, "the watch's config and state", |g| {
        g.iter().any(|m| m.topic == config_topic) && g.iter().any(|m| m.topic == state_topic)
    })
    .await;
    let cfg = sub.on(config_topic)[0].json();
    assert_eq!(cfg["name"], "Is the garage door open?");
    assert_eq!(cfg["state_topic"], state_topic);
    assert_eq!(cfg["availability_topic"], "gemmaedge/garage/available");
    assert_eq!(cfg["payload_on"], "ON");
    assert_eq!(sub.on(state_topic)[0].text(), "unknown");
    // The door opens (two frames in a row): ON.
    for seq in 1..=2 {
        board.on_student(seq, Utc::now(), &[WatchAnswer::Yes]);
    }
    b.send(&watches(&board));
    sub.wait_for(10, "ON", |g| {
        g.iter().any(|m| m.topic == state_topic && m.text() == "ON")
    })
    .await;
    // Retained: a subscriber coming now gets the config and the ON state.
    let mid = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &[
            "homeassistant/binary_sensor/+/+/config",
            "gemmaedge/garage/watch/+",
        ],
    )
    .await;
    mid.wait_for(10, "the retained config and ON", |g| {
        g.iter().any(|m| m.topic == config_topic && m.retain)
            && g.iter()
                .any(|m| m.topic == state_topic && m.retain && m.text() == "ON")
    })
    .await;
    // Removed: empty retained messages clear the config and the state.
    board.set_specs(&[]);
    b.send(&watches(&board));
    sub.wait_for(10, "the config cleared", |g| {
        g.iter()
            .any(|m| m.topic == config_topic && m.payload.is_empty())
    })
    .await;
    // Home Assistant starting now finds no watch: nothing retained is left of it.
    let late = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &[
            "homeassistant/binary_sensor/+/+/config",
            "gemmaedge/garage/watch/+",
        ],
    )
    .await;
    late.wait_for(10, "the alert sensor's config", |g| {
        g.iter().any(|m| m.topic.ends_with("/alert/config"))
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let left: Vec<String> = late
        .all()
        .iter()
        .filter(|m| m.topic.contains("watch"))
        .map(|m| m.topic.clone())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    b.stop().await;
}
