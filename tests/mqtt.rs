//! MQTT against a real Mosquitto (started by the tests: password file, ACL, one with TLS):
//! availability and the last will, event / alert / snapshot / state payloads, Home
//! Assistant discovery, broker commands and the ACL, a broker that is down or restarts,
//! and wrong credentials.

mod support;

use chrono::Utc;
use gemmaedge_tui::config::Config;
use gemmaedge_tui::event::{Command, Event, IncidentChange, IncidentEvent};
use gemmaedge_tui::frame::PreparedFrame;
use gemmaedge_tui::mqtt::{Bridge, BridgeHandle, LinkState};
use gemmaedge_tui::policy::Reason;
use gemmaedge_tui::roles::verdict::Verdict;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::mosquitto::{Broker, Sub};
use support::ollama_server::{OllamaTestServer, Reply};
use support::{engine_config, STUDENT, TEACHER};

const USERS: &[(&str, &str)] = &[
    ("pi", "pi-pw"),
    ("admin", "admin-pw"),
    ("viewer", "viewer-pw"),
];
/// The device writes its own topics and discovery; admin may command; viewer only reads.
const ACL: &str = "user pi\ntopic readwrite gemmaedge/pi/#\ntopic readwrite homeassistant/#\n\n\
user admin\ntopic readwrite gemmaedge/#\ntopic read homeassistant/#\n\n\
user viewer\ntopic read gemmaedge/#\ntopic read homeassistant/#\n";

fn mqtt_config(dir: &Path, broker: &Broker, password: &str) -> Config {
    let mut c = engine_config(dir, "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
    c.device.name = "pi".into();
    c.mqtt.url = broker.url();
    c.mqtt.username = "pi".into();
    c.mqtt.password = password.into();
    if broker.tls {
        c.mqtt.ca_file = broker.ca_file();
    }
    c
}

fn jpeg() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([200, 10, 10]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut out),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    out
}

fn frame(seq: u64, at: chrono::DateTime<Utc>, jpeg: &[u8]) -> Event {
    Event::FrameTaken {
        dhash: None,
        seq,
        captured_at: at,
        label: "img.jpg".into(),
        width: 16,
        height: 16,
        jpeg_bytes: jpeg.len(),
        superseded: 0,
        image: Some(Arc::new(PreparedFrame {
            width: 16,
            height: 16,
            jpeg: Arc::from(jpeg),
            base64: Arc::from(""),
        })),
    }
}

fn answer(seq: u64, text: &str) -> Event {
    Event::StudentAnswer {
        seq,
        at: Utc::now(),
        answer: text.into(),
        confidence: Some(0.9),
        measured_confidence: None,
        latency_ms: 800,
        reasons: vec![],
        skill: "built-in".into(),
    }
}

async fn wait_state(b: &BridgeHandle, secs: u64, what: &str, cond: impl Fn(LinkState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond(b.status().state) {
        assert!(
            Instant::now() < deadline,
            "bridge never {what}: {:?}",
            b.status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_events_alert_snapshot_state_discovery_then_offline() {
    let broker = Broker::start(USERS, ACL);
    let sub = Sub::connect(
        &broker,
        "admin",
        "admin-pw",
        &["gemmaedge/#", "homeassistant/#"],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&mqtt_config(dir.path(), &broker, "pi-pw"), cmd_tx).unwrap();
    sub.wait_for(10, "online", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/available" && m.payload == b"online")
    })
    .await;
    assert_eq!(b.status().state, LinkState::Connected);

    let shot = jpeg();
    let taken = Utc::now() - chrono::Duration::seconds(3);
    b.send(&Event::Started {
        at: Utc::now(),
        student: "gemma4:e2b @ s".into(),
        teacher: "gemma4:26b @ t".into(),
        source: "folder".into(),
        skill: "built-in".into(),
    });
    b.send(&frame(1, taken, &shot));
    b.send(&Event::StudentToken {
        seq: 1,
        text: "Smoke".into(),
    });
    b.send(&answer(1, "Smoke near the stove."));
    b.send(&Event::Escalated {
        seq: 1,
        reasons: vec![Reason::Safety {
            keyword: "smoke".into(),
        }],
        queue_len: 1,
        frame_path: None,
    });
    b.send(&Event::TeacherVerdict {
        seq: 1,
        verdict: Verdict {
            agrees: Some(true),
            safety_relevant: Some(true),
            summary: "A pan is on fire.\u{1b}[2J".into(),
            ..Default::default()
        },
        latency_ms: 2000,
    });
    // The engine's incident tracker opens an incident on it; the alert goes per incident.
    b.send(&Event::Incident(incident(
        1,
        IncidentChange::Open,
        Some(1),
        2,
    )));
    sub.wait_for(
        10,
        "four events, an alert, a snapshot, a state with the verdict",
        |g| {
            g.iter()
                .filter(|m| m.topic == "gemmaedge/pi/events")
                .count()
                == 4
                && g.iter().any(|m| m.topic == "gemmaedge/pi/alert")
                && g.iter().any(|m| m.topic == "gemmaedge/pi/snapshot")
                && g.iter().any(|m| {
                    m.topic == "gemmaedge/pi/state" && m.json()["counters"]["verdicts"] == 1
                })
        },
    )
    .await;
    let events: Vec<_> = sub
        .on("gemmaedge/pi/events")
        .iter()
        .map(|m| m.json())
        .collect();
    let types: Vec<_> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        ["student_answer", "escalated", "teacher_verdict", "incident"]
    );
    for e in &events {
        assert_eq!(e["device"], "pi");
        assert_eq!(e["seq"], 1);
        assert!(e["ts"].is_string() && e["session"].is_string());
        assert!(e.get("image").is_none());
    }
    assert_eq!(events[0]["answer"], "Smoke near the stove.");
    let alert = sub.on("gemmaedge/pi/alert")[0].json();
    assert_eq!(alert["summary"], "A pan is on fire.", "cleaned: {alert}");
    assert_eq!(alert["device"], "pi");
    assert_eq!(alert["seq"], 1);
    assert_eq!(
        alert["at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<Utc>>()
            .unwrap(),
        taken,
        "the frame's time"
    );
    assert_eq!(alert["reasons"][0], "safety keyword: smoke");
    assert_eq!(alert["incident"]["change"], "open");
    assert_eq!(alert["incident"]["level"], 2);
    assert_eq!(sub.on("gemmaedge/pi/snapshot")[0].payload, shot);
    let inc = sub.on("gemmaedge/pi/incident")[0].json();
    assert_eq!(inc["highest_level"], 2);
    assert_eq!(inc["open"][0]["title"], "Pan on fire");

    // Discovery: one device, its entities, each naming the availability topic.
    let configs: Vec<_> = sub
        .all()
        .into_iter()
        .filter(|m| m.topic.starts_with("homeassistant/") && m.topic.ends_with("/config"))
        .collect();
    let kinds: Vec<&str> = configs
        .iter()
        .map(|m| m.topic.split('/').nth(1).unwrap())
        .collect();
    for k in ["binary_sensor", "sensor", "image", "button"] {
        assert!(kinds.contains(&k), "{kinds:?}");
    }
    for m in &configs {
        let v = m.json();
        assert_eq!(
            v["availability_topic"], "gemmaedge/pi/available",
            "{}",
            m.topic
        );
        assert_eq!(v["device"]["identifiers"][0], "gemmaedge_pi");
    }

    // A late subscriber gets the retained ones.
    let late = Sub::connect(&broker, "viewer", "viewer-pw", &["gemmaedge/pi/+"]).await;
    late.wait_for(5, "retained snapshot, state, online, incident", |g| {
        ["snapshot", "state", "available", "incident"]
            .iter()
            .all(|k| {
                g.iter()
                    .any(|m| m.topic == format!("gemmaedge/pi/{k}") && m.retain)
            })
    })
    .await;
    let state = late.on("gemmaedge/pi/state")[0].json();
    assert_eq!(state["counters"]["answers"], 1);
    assert_eq!(state["counters"]["alerts"], 1);
    assert_eq!(state["counters"]["agreements"], 1);
    assert_eq!(state["last_answer"]["text"], "Smoke near the stove.");
    assert_eq!(state["student"]["model"], "gemma4:e2b @ s");
    assert!(
        late.on("gemmaedge/pi/events").is_empty(),
        "events are not retained"
    );

    b.stop().await;
    sub.wait_for(5, "offline on a clean stop", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/available" && m.payload == b"offline")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_snapshot_without_save_frames_and_alerts_rate_limited() {
    let broker = Broker::start(USERS, ACL);
    let sub = Sub::connect(&broker, "admin", "admin-pw", &["gemmaedge/#"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut c = mqtt_config(dir.path(), &broker, "pi-pw");
    c.privacy.save_frames = false;
    c.notify.min_interval_secs = 300;
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&c, cmd_tx).unwrap();
    let shot = jpeg();
    for seq in 1..=3 {
        b.send(&frame(seq, Utc::now(), &shot));
        b.send(&Event::Escalated {
            seq,
            reasons: vec![Reason::Forced],
            queue_len: 1,
            frame_path: None,
        });
        b.send(&Event::TeacherVerdict {
            seq,
            verdict: Verdict {
                agrees: Some(false),
                safety_relevant: Some(true),
                summary: "Fire.".into(),
                ..Default::default()
            },
            latency_ms: 1,
        });
        // Open, join, raise: two alert-worthy changes within min_interval_secs.
        let (change, level) = match seq {
            1 => (IncidentChange::Open, 1),
            2 => (IncidentChange::Join, 1),
            _ => (IncidentChange::Raise, 2),
        };
        b.send(&Event::Incident(incident(1, change, Some(seq), level)));
    }
    sub.wait_for(10, "the state with 3 verdicts", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/state" && m.json()["counters"]["verdicts"] == 3)
    })
    .await;
    assert!(sub.on("gemmaedge/pi/snapshot").is_empty());
    assert_eq!(
        sub.on("gemmaedge/pi/alert").len(),
        1,
        "the raise is held back: one per min_interval_secs"
    );
    b.stop().await;
}

fn incident(id: u64, change: IncidentChange, seq: Option<u64>, level: u8) -> IncidentEvent {
    let now = Utc::now();
    IncidentEvent {
        change,
        id,
        seq,
        level,
        title: "Pan on fire".into(),
        opened_at: now,
        last_at: now,
        closed_at: None,
        frames: seq.unwrap_or(1),
        key_seq: seq,
        acked_at: None,
        acked_by: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_alerts_once_stays_retained_and_is_acknowledged_from_the_broker() {
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| Reply::text("Smoke rises from a pan.\nCONFIDENCE: 0.9"));
    teacher.set_handler(|_| {
        Reply::text(
            r#"{"agrees": true, "safety_relevant": true, "summary": "A pan is on fire.", "missed": [], "wrong": [], "level": 2, "title": "Pan on fire"}"#,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = mqtt_config(dir.path(), &broker, "pi-pw");
    c.student.host = student.url();
    c.teacher.host = teacher.url();
    c.source.fps = 10.0;
    c.notify.min_interval_secs = 0;
    let h = gemmaedge_tui::engine::start(c.clone(), Default::default()).unwrap();
    let commands = h.commands.clone();
    let b = Bridge::start(&c, commands.clone()).unwrap();
    let admin = Sub::connect(&broker, "admin", "admin-pw", &["gemmaedge/pi/#"]).await;
    let running = pump(h, b);
    admin
        .wait_for(20, "an open incident, retained, at level 2", |g| {
            g.iter()
                .any(|m| m.topic == "gemmaedge/pi/incident" && m.json()["highest_level"] == 2)
        })
        .await;
    // More confirmed frames join it: no more alerts.
    assert!(teacher.wait_for_chats(6, Duration::from_secs(20)).await);
    admin.publish("gemmaedge/pi/cmd/ack", "1").await;
    admin
        .wait_for(
            10,
            "the acknowledgement, by mqtt, in events and the retained state",
            |g| {
                g.iter().any(|m| {
                    m.topic == "gemmaedge/pi/events"
                        && m.json()["type"] == "incident"
                        && m.json()["change"] == "ack"
                        && m.json()["acked_by"] == "mqtt"
                }) && g.iter().any(|m| {
                    m.topic == "gemmaedge/pi/incident"
                        && m.json()["open"][0]["acknowledged"] == true
                })
            },
        )
        .await;
    let alerts = admin.on("gemmaedge/pi/alert");
    assert_eq!(
        alerts.len(),
        1,
        "one alert for the incident, not one per frame"
    );
    assert_eq!(alerts[0].json()["incident"]["change"], "open");
    let _ = commands.send(Command::Shutdown);
    let b = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    b.stop().await;
    // The store keeps who acknowledged it.
    let db = rusqlite::Connection::open(dir.path().join("logs/history.db")).unwrap();
    let by: String = db
        .query_row("SELECT acked_by FROM incidents WHERE id = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(by, "mqtt");
}

/// Run the engine with a bridge, the way headless does: every event to the bridge.
fn pump(
    mut h: gemmaedge_tui::engine::EngineHandle,
    b: BridgeHandle,
) -> tokio::task::JoinHandle<BridgeHandle> {
    tokio::spawn(async move {
        while let Some(ev) = h.events.recv().await {
            b.send(&ev);
            if matches!(ev, Event::Stopped { .. }) {
                break;
            }
        }
        b
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalate_command_reaches_the_teacher_only_from_a_user_the_acl_allows() {
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    teacher.set_handler(|_| {
        Reply::text(
            r#"{"agrees": true, "safety_relevant": false, "summary": "A desk.", "missed": [], "wrong": []}"#,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let mut c = mqtt_config(dir.path(), &broker, "pi-pw");
    c.student.host = student.url();
    c.teacher.host = teacher.url();
    c.source.fps = 5.0;
    let h = gemmaedge_tui::engine::start(c.clone(), Default::default()).unwrap();
    let commands = h.commands.clone();
    let b = Bridge::start(&c, commands.clone()).unwrap();
    let admin = Sub::connect(&broker, "admin", "admin-pw", &["gemmaedge/pi/events"]).await;
    let viewer = Sub::connect(&broker, "viewer", "viewer-pw", &["gemmaedge/pi/events"]).await;
    let running = pump(h, b);
    admin
        .wait_for(15, "a student answer", |g| {
            g.iter().any(|m| m.json()["type"] == "student_answer")
        })
        .await;
    // Calm, confident answers: nothing escalates by itself.
    viewer.publish("gemmaedge/pi/cmd/escalate", "PRESS").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        teacher.chat_count(),
        0,
        "the ACL must stop the viewer's command"
    );
    admin.publish("gemmaedge/pi/cmd/escalate", "PRESS").await;
    assert!(
        teacher.wait_for_chats(1, Duration::from_secs(10)).await,
        "cmd/escalate never reached the teacher"
    );
    admin
        .wait_for(10, "the forced escalation and its verdict", |g| {
            let e: Vec<_> = g.iter().map(|m| m.json()).collect();
            e.iter()
                .any(|v| v["type"] == "escalated" && v["reasons"][0]["kind"] == "forced")
                || e.iter().any(|v| {
                    v["type"] == "escalated" && v["reasons"].to_string().contains("forced")
                })
        })
        .await;
    admin
        .wait_for(10, "the verdict", |g| {
            g.iter().any(|m| m.json()["type"] == "teacher_verdict")
        })
        .await;
    let _ = commands.send(Command::Shutdown);
    let b = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .unwrap()
        .unwrap();
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_at_start_then_restarted_mid_run() {
    let mut broker = Broker::configured(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let mut c = mqtt_config(dir.path(), &broker, "pi-pw");
    c.mqtt.buffer_messages = 10;
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&c, cmd_tx).unwrap();
    wait_state(&b, 10, "down", |s| s == LinkState::Down).await;
    assert!(
        b.status().detail.contains("nothing listens"),
        "{:?}",
        b.status()
    );
    for seq in 1..=30 {
        b.send(&answer(seq, &format!("answer {seq}")));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.status().dropped < 20 {
        assert!(Instant::now() < deadline, "{:?}", b.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let st = b.status();
    assert_eq!(st.buffered, 10, "{st:?}");

    broker.restart();
    let sub = Sub::connect(&broker, "admin", "admin-pw", &["gemmaedge/#"]).await;
    wait_state(&b, 20, "reconnected", |s| s == LinkState::Connected).await;
    sub.wait_for(
        10,
        "the newest buffered answers and the state with the drop count",
        |g| {
            g.iter()
                .any(|m| m.topic == "gemmaedge/pi/events" && m.json()["seq"] == 30)
                && g.iter().any(|m| {
                    m.topic == "gemmaedge/pi/state"
                        && m.json()["counters"]["dropped_messages"].as_u64() >= Some(20)
                })
        },
    )
    .await;
    let seqs: Vec<u64> = sub
        .on("gemmaedge/pi/events")
        .iter()
        .map(|m| m.json()["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.iter().all(|s| *s > 20),
        "oldest dropped first: {seqs:?}"
    );
    assert_eq!(b.status().buffered, 0);

    // Restarted mid-run: what happens meanwhile waits and goes out after the reconnect.
    broker.stop();
    wait_state(&b, 10, "down after the kill", |s| s != LinkState::Connected).await;
    for seq in 31..=35 {
        b.send(&answer(seq, "meanwhile"));
    }
    broker.restart();
    sub.wait_subscribed(2).await;
    wait_state(&b, 20, "reconnected again", |s| s == LinkState::Connected).await;
    sub.wait_for(10, "the answers made while the broker was away", |g| {
        (31..=35).all(|s| {
            g.iter()
                .any(|m| m.topic == "gemmaedge/pi/events" && m.json()["seq"] == s)
        })
    })
    .await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_refused_with_the_fix() {
    let broker = Broker::start(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&mqtt_config(dir.path(), &broker, "wrong-secret"), cmd_tx).unwrap();
    wait_state(&b, 10, "refused", |s| s == LinkState::Refused).await;
    let st = b.status();
    assert!(
        st.detail
            .contains("refused the credentials for user \"pi\"")
            && st.detail.contains("[mqtt] username/password"),
        "{st:?}"
    );
    assert!(!st.detail.contains("wrong-secret"));
    // Still takes events (never blocks), and says how many wait.
    for seq in 1..=5 {
        b.send(&answer(seq, "x"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b.status().buffered >= 5, "{:?}", b.status());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let broker = Broker::start_tls(USERS, ACL);
    let sub = Sub::connect(&broker, "admin", "admin-pw", &["gemmaedge/pi/available"]).await;
    let dir = tempfile::tempdir().unwrap();
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&mqtt_config(dir.path(), &broker, "pi-pw"), cmd_tx).unwrap();
    sub.wait_for(10, "online over TLS", |g| {
        g.iter().any(|m| m.payload == b"online")
    })
    .await;
    b.stop().await;
    // Without the CA the certificate is not trusted: a clear TLS error.
    let mut c = mqtt_config(dir.path(), &broker, "pi-pw");
    c.mqtt.ca_file = PathBuf::new();
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&c, cmd_tx).unwrap();
    wait_state(&b, 10, "unreachable", |s| s == LinkState::Unreachable).await;
    assert!(
        b.status().detail.contains("[mqtt] ca_file"),
        "{:?}",
        b.status()
    );
    b.stop().await;
}

// ---- the real binary -------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

fn frames_dir() -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/frames");
    if shared.is_dir() {
        shared
    } else {
        support::photos()
    }
}

fn write_config(dir: &Path, student: &str, teacher: &str, broker: &Broker, pw: &str) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "[student]\nhost = \"{student}\"\nmodel = \"{STUDENT}\"\ntimeout_secs = 5\n\
             [teacher]\nhost = \"{teacher}\"\nmodel = \"{TEACHER}\"\ntimeout_secs = 5\n\
             [source]\nkind = \"folder\"\npath = \"{}\"\nfps = 5.0\nmin_change = 0.0\n\
             [policy]\naudit_every = 0\n[paths]\nskills = \"{d}/skills\"\neval = \"{d}/eval\"\nlogs = \"{d}/logs\"\n\
             [device]\nname = \"pi\"\n[mqtt]\nurl = \"{}\"\nusername = \"pi\"\npassword = \"{pw}\"\n",
            frames_dir().display(),
            broker.url(),
            d = dir.display(),
        ),
    )
    .unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_says_offline_when_the_process_is_killed() {
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &student.url(), &teacher.url(), &broker, "pi-pw");
    let sub = Sub::connect(
        &broker,
        "admin",
        "admin-pw",
        &["gemmaedge/pi/available", "gemmaedge/pi/events"],
    )
    .await;
    let mut child = std::process::Command::new(BIN)
        .args(["--headless", "--config"])
        .arg(&cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    sub.wait_for(20, "online and an answer", |g| {
        g.iter().any(|m| m.payload == b"online") && g.iter().any(|m| m.topic.ends_with("/events"))
    })
    .await;
    child.kill().unwrap(); // SIGKILL: no goodbye, only the will
    let _ = child.wait();
    sub.wait_for(10, "offline from the last will", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/available" && m.payload == b"offline")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_check_fails_clearly_and_monitoring_goes_on() {
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &student.url(),
        &teacher.url(),
        &broker,
        "not-the-pw",
    );
    let out = tokio::process::Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("mqtt broker (refused)"), "{text}");
    assert!(
        text.contains("refused the credentials for user \"pi\""),
        "{text}"
    );
    assert!(
        !text.contains("not-the-pw"),
        "the password must never show: {text}"
    );

    let out = tokio::process::Command::new(BIN)
        .args(["--headless", "--max-frames", "3", "--config"])
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches(" student 0.90").count(), 3, "{text}");
    assert!(text.contains("mqtt refused: "), "{text}");
    assert!(!text.contains("not-the-pw"));

    // And with the right password `check` says connected.
    let cfg = write_config(dir.path(), &student.url(), &teacher.url(), &broker, "pi-pw");
    let out = tokio::process::Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("ok") && l.contains("mqtt broker") && l.contains("connected")),
        "{text}"
    );
    assert!(!text.contains("pi-pw"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_never_waits_and_every_message_is_counted() {
    let broker = Broker::configured(USERS, ACL);
    let dir = tempfile::tempdir().unwrap();
    let (cmd_tx, _cmd_rx) = tokio::sync::mpsc::unbounded_channel();
    let b = Bridge::start(&mqtt_config(dir.path(), &broker, "pi-pw"), cmd_tx).unwrap();
    wait_state(&b, 10, "down", |s| s == LinkState::Down).await;
    let n = 20_000u64;
    let began = Instant::now();
    for seq in 1..=n {
        b.send(&answer(seq, "A desk."));
    }
    let took = began.elapsed();
    assert!(took < Duration::from_secs(2), "20000 sends took {took:?}");
    // Each answer is one events message: waiting, dropped from the buffer, or not taken.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = b.status();
        if st.dropped + st.buffered as u64 >= n {
            assert!(st.buffered <= 1000, "{st:?}");
            break;
        }
        assert!(Instant::now() < deadline, "not all counted: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_publishes_tells_its_consoles_and_says_offline_on_sigterm() {
    use std::io::{BufRead, Write};
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &student.url(), &teacher.url(), &broker, "pi-pw");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");
    let sub = Sub::connect(
        &broker,
        "admin",
        "admin-pw",
        &["gemmaedge/pi/available", "gemmaedge/pi/events"],
    )
    .await;
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .arg("--socket")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    sub.wait_for(20, "online and an answer from the service", |g| {
        g.iter().any(|m| m.payload == b"online") && g.iter().any(|m| m.topic.ends_with("/events"))
    })
    .await;
    // An attached console hears the broker's state (in its snapshot or just after).
    let sock = socket.clone();
    let label = tokio::task::spawn_blocking(move || {
        let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut w = s.try_clone().unwrap();
        w.write_all(b"{\"type\":\"hello\",\"protocol\":1,\"client\":\"t\"}\n")
            .unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return None;
            }
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            if v["type"] == "broker" {
                return Some(v);
            }
        }
    })
    .await
    .unwrap()
    .expect("a broker message");
    assert_eq!(label["connected"], true, "{label}");
    assert!(label["label"].as_str().unwrap().contains("mqtt"), "{label}");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    sub.wait_for(10, "offline on the clean stop", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/available" && m.payload == b"offline")
    })
    .await;
    // A clean stop at the broker: the DISCONNECT was read before the socket closed, so
    // Mosquitto logs a plain disconnect and publishes no last will (one `offline`, ours).
    let log = wait_log(&broker, "Client pi disconnected").await;
    let line = log
        .lines()
        .find(|l| l.contains("Client pi ") && l.contains("disconnected"))
        .unwrap_or_default()
        .to_string();
    assert!(
        line.trim_end().ends_with("Client pi disconnected."),
        "not a clean disconnect: {line}\n{log}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offline = sub
        .all()
        .iter()
        .filter(|m| m.topic == "gemmaedge/pi/available" && m.payload == b"offline")
        .count();
    assert_eq!(offline, 1, "offline arrived {offline} times");
}

/// The broker's log once it holds `what` (10 s at most).
async fn wait_log(broker: &Broker, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = broker.log();
        if log.contains(what) || Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
