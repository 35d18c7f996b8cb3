//! Issue 33 against a real Mosquitto and the real `serve` binary: a flood of
//! `cmd/escalate` never costs a safety review (point 1), and a message bigger than the
//! client reads is skipped instead of making the device (or the fleet console) reconnect
//! in a loop (point 4).

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::mosquitto::{Broker, Sub};
use support::ollama_server::{OllamaTestServer, Reply};
use support::{STUDENT, TEACHER};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const USERS: &[(&str, &str)] = &[("pi", "pi-pw"), ("homeassistant", "ha-pw")];
/// The README's ACL: the device writes its topics and reads its commands; Home Assistant
/// reads everything and may press the escalate button (of any device).
const ACL: &str = "\
pattern write gemmaedge/%u/#
pattern read gemmaedge/%u/cmd/#

user homeassistant
topic read gemmaedge/#
topic write gemmaedge/+/cmd/#
";

fn write_config(dir: &Path, student: &str, teacher: &str, broker: &Broker, fps: f64) -> PathBuf {
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "[student]\nhost = \"{student}\"\nmodel = \"{STUDENT}\"\ntimeout_secs = 5\n\
             [teacher]\nhost = \"{teacher}\"\nmodel = \"{TEACHER}\"\ntimeout_secs = 5\n\
             [source]\nkind = \"folder\"\npath = \"{}\"\nfps = {fps}\nmin_change = 0.0\n\
             [policy]\naudit_every = 0\n[paths]\nskills = \"{d}/skills\"\neval = \"{d}/eval\"\nlogs = \"{d}/logs\"\n\
             [privacy]\nsave_frames = false\n\
             [device]\nname = \"pi\"\n[mqtt]\nurl = \"{}\"\nusername = \"pi\"\npassword = \"pi-pw\"\n",
            support::photos().display(),
            broker.url(),
            d = dir.display(),
        ),
    )
    .unwrap();
    p
}

struct Serve {
    child: Child,
    socket: PathBuf,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, cfg: &Path) -> Serve {
    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(cfg)
        .arg("--socket")
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Serve { child, socket }
}

fn log_lines(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".jsonl") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
        }
    }
    out
}

fn has_reason(v: &Value, kind: &str) -> bool {
    v["reasons"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x["kind"] == kind))
}

/// A safety job: a safety keyword in the finished answer, or one that came in mid-stream
/// (`safety_early`, `policy.early_escalation`).
fn is_safety(v: &Value) -> bool {
    has_reason(v, "safety") || has_reason(v, "safety_early")
}

/// A client that may publish big payloads (the test's own, as `user`).
async fn publisher(broker: &Broker, user: &str, pw: &str) -> rumqttc::AsyncClient {
    let mut o = rumqttc::MqttOptions::new(format!("test-pub-{user}"), "127.0.0.1", broker.port);
    o.set_credentials(user, pw);
    o.set_max_packet_size(64 * 1024 * 1024, 64 * 1024 * 1024);
    let (client, mut el) = rumqttc::AsyncClient::new(o, 1000);
    tokio::spawn(async move {
        loop {
            if el.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    client
}

/// Point 1: 200 `cmd/escalate` a second from the user the README lets press the button.
/// Before the fix forced jobs outranked safety jobs and pushed them out of the 8-slot
/// queue; now every frame the student called fire is reviewed, the forced escalations
/// are merged and rate-limited, and the refusals are counted where people look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_escalate_flood_never_costs_a_safety_review() {
    let broker = Broker::start(USERS, ACL);
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    student.set_handler(|_| {
        Reply::delayed(
            Duration::from_millis(80),
            Reply::text("Flames rise from a pan on the stove: fire.\nCONFIDENCE: 0.9"),
        )
    });
    teacher.set_handler(|_| {
        Reply::delayed(
            Duration::from_millis(20),
            Reply::json(&serde_json::json!({
                "agrees": true, "safety_relevant": true,
                "summary": "A pan is on fire.", "missed": [], "wrong": []
            })),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &student.url(), &teacher.url(), &broker, 20.0);
    let sub = Sub::connect(&broker, "homeassistant", "ha-pw", &["gemmaedge/pi/#"]).await;
    let mut svc = serve(dir.path(), &cfg);
    sub.wait_for(20, "online and a safety escalation", |g| {
        g.iter().any(|m| m.payload == b"online")
            && g.iter()
                .any(|m| m.topic.ends_with("/events") && m.text().contains("\"escalated\""))
    })
    .await;

    let ha = publisher(&broker, "homeassistant", "ha-pw").await;
    let answers = |d: &Path| {
        log_lines(d)
            .iter()
            .filter(|v| v["type"] == "student_answer")
            .count()
    };
    let pid = svc.child.id();
    let b0 = answers(dir.path());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = (answers(dir.path()) - b0) as f64 / 2.0;
    let a0 = answers(dir.path());
    let began = Instant::now();
    let mut sent = 0u64;
    while began.elapsed() < Duration::from_secs(3) {
        for _ in 0..10 {
            ha.publish(
                "gemmaedge/pi/cmd/escalate",
                rumqttc::QoS::AtMostOnce,
                false,
                "PRESS",
            )
            .await
            .unwrap();
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flood_secs = began.elapsed().as_secs_f64();
    let live = (answers(dir.path()) - a0) as f64 / flood_secs;
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_string()))
        .unwrap_or_default();
    eprintln!(
        "flood: {:.0} escalates/s for {flood_secs:.1} s; {live:.1} answers/s meanwhile ({baseline:.1}/s before); RSS {rss}",
        sent as f64 / flood_secs
    );
    // Stop the frames so the queue can drain, then look.
    ha.publish(
        "gemmaedge/pi/cmd/pause",
        rumqttc::QoS::AtLeastOnce,
        false,
        "x",
    )
    .await
    .unwrap();
    sub.wait_for(10, "paused", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/state" && m.json()["paused"] == true)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // `check` reads the service's totals.
    let check = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(&svc.socket)
        .output()
        .unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).to_string();

    unsafe { libc::kill(svc.child.id() as i32, libc::SIGTERM) };
    assert_eq!(svc.child.wait().unwrap().code(), Some(0));
    let log = log_lines(dir.path());
    fn of<'a>(log: &'a [Value], t: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        log.iter().filter(move |v| v["type"] == t)
    }
    let safety: Vec<u64> = of(&log, "escalated")
        .filter(|v| is_safety(v))
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    let reviewed: std::collections::HashSet<u64> = of(&log, "teacher_verdict")
        .map(|v| v["seq"].as_u64().unwrap())
        .collect();
    let dropped_safety = of(&log, "teacher_dropped").filter(|v| is_safety(v)).count();
    let unreviewed: Vec<_> = safety.iter().filter(|s| !reviewed.contains(s)).collect();
    let forced_only = of(&log, "escalated")
        .filter(|v| has_reason(v, "forced") && !is_safety(v))
        .count();
    let refused = of(&log, "escalation_refused")
        .filter_map(|v| v["refused"].as_u64())
        .max()
        .unwrap_or(0);
    eprintln!(
        "sent {sent} escalates; safety escalations {}, unreviewed {}, safety dropped {dropped_safety}, \
         forced-only jobs {forced_only}, refused {refused}",
        safety.len(),
        unreviewed.len()
    );
    assert!(
        safety.len() >= 10,
        "the student called fire: {}",
        safety.len()
    );
    assert_eq!(dropped_safety, 0, "a forced job pushed out a safety job");
    assert!(
        unreviewed.is_empty(),
        "safety frames never reviewed: {unreviewed:?}"
    );
    // One per frame and at most policy.forced_per_minute (10): the rest refused.
    assert!(forced_only <= 10, "{forced_only} forced-only jobs");
    // The count is said at most once a second, so the last second may be missing.
    assert!(refused >= sent / 2, "refused {refused} of {sent}");
    // Said at most once a second, not once per command.
    assert!(of(&log, "escalation_refused").count() <= 8);
    // Shown: in `check` (the service's totals) and in the state topic.
    assert!(
        check_out.contains("forced escalations refused"),
        "{check_out}"
    );
    sub.wait_for(5, "escalations_refused in the state", |g| {
        g.iter().any(|m| {
            m.topic == "gemmaedge/pi/state"
                && m.json()["counters"]["escalations_refused"]
                    .as_u64()
                    .unwrap_or(0)
                    > 0
        })
    })
    .await;
}

/// Point 4: a 5 MB retained message on the device's `cmd/pause` (over the 4 MB the client
/// used to read) made it reconnect about once a second. Now it is skipped (counted, said
/// once), the connection stays up, and a real command still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_message_is_skipped_not_a_reconnect_loop() {
    let broker = Broker::start(
        USERS,
        "user pi\ntopic readwrite gemmaedge/#\n\nuser homeassistant\ntopic readwrite gemmaedge/#\n",
    );
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &student.url(), &teacher.url(), &broker, 5.0);
    let big = vec![b'x'; 5 * 1024 * 1024];
    let ha = publisher(&broker, "homeassistant", "ha-pw").await;
    ha.publish(
        "gemmaedge/pi/cmd/pause",
        rumqttc::QoS::AtLeastOnce,
        true,
        big.clone(),
    )
    .await
    .unwrap();
    let sub = Sub::connect(
        &broker,
        "homeassistant",
        "ha-pw",
        &["gemmaedge/pi/events", "gemmaedge/pi/state"],
    )
    .await;
    // Retained and 5 MB: give the broker a moment to hold it before the device subscribes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _svc = serve(dir.path(), &cfg);
    sub.wait_for(20, "the device online", |g| {
        g.iter().any(|m| m.topic == "gemmaedge/pi/state")
    })
    .await;
    // Six seconds: the old client reconnected at 1, 2 and 4 s (its backoff reset at each
    // connect); ours stays connected.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let connects = broker.log().matches(" as pi (").count();
    assert_eq!(connects, 1, "the device reconnected:\n{}", broker.log());
    sub.wait_for(5, "the oversize message counted in the state", |g| {
        g.iter().any(|m| {
            m.topic == "gemmaedge/pi/state"
                && m.json()["counters"]["oversize_skipped"]
                    .as_u64()
                    .unwrap_or(0)
                    >= 1
        })
    })
    .await;
    // The link works: a real command is obeyed.
    ha.publish(
        "gemmaedge/pi/cmd/pause",
        rumqttc::QoS::AtLeastOnce,
        false,
        "now",
    )
    .await
    .unwrap();
    sub.wait_for(10, "paused by a real command", |g| {
        g.iter()
            .any(|m| m.topic == "gemmaedge/pi/state" && m.json()["paused"] == true)
    })
    .await;
    // Said once, in the log as a warning.
    let warned = log_lines(dir.path())
        .into_iter()
        .filter(|v| {
            v["type"] == "warning"
                && v["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("skipped a 5120 KB message")
        })
        .count();
    assert_eq!(warned, 1);
}

/// Point 4, the fleet console: a 5 MB retained `state` of a (fake) device must not make
/// the console loop on reconnects and miss another device's live alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_console_skips_an_oversize_state_and_sees_the_alert() {
    use gemmaedge_tui::fleet::Incoming;
    let broker = Broker::start(
        USERS,
        "user pi\ntopic readwrite gemmaedge/#\n\nuser homeassistant\ntopic readwrite gemmaedge/#\n",
    );
    let ha = publisher(&broker, "homeassistant", "ha-pw").await;
    ha.publish(
        "gemmaedge/fake/state",
        rumqttc::QoS::AtLeastOnce,
        true,
        vec![b'{'; 5 * 1024 * 1024],
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config =
        support::engine_config(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
    config.mqtt.url = broker.url();
    config.mqtt.username = "homeassistant".into();
    config.mqtt.password = "ha-pw".into();
    let (_client, mut rx) = gemmaedge_tui::fleet::connect(&config).unwrap();
    let mut statuses = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    // Connected (the retained 5 MB state arrives right after the subscription).
    while !statuses.iter().any(|s: &String| s.ends_with("connected")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Incoming::Status(s))) => statuses.push(s),
            Ok(Some(Incoming::Message { .. })) => {}
            _ => panic!("never connected: {statuses:?}"),
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    ha.publish(
        "gemmaedge/pi/alert",
        rumqttc::QoS::AtLeastOnce,
        false,
        r#"{"device":"pi","seq":3,"summary":"Smoke in the attic","at":"2026-12-02T06:00:00Z"}"#,
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(Incoming::Status(s))) => statuses.push(s),
            Ok(Some(Incoming::Message { topic, .. })) if topic == "gemmaedge/pi/alert" => break,
            Ok(Some(_)) => {}
            _ => panic!("the alert never came: {statuses:?}"),
        }
    }
    assert!(
        !statuses.iter().any(|s| s.contains("retrying")),
        "the console lost its connection: {statuses:?}"
    );
    // The skipped message was said (once).
    while let Ok(m) = rx.try_recv() {
        if let Incoming::Status(s) = m {
            statuses.push(s);
        }
    }
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s.contains("skipped a 5120 KB message"))
            .count(),
        1,
        "{statuses:?}"
    );
}
