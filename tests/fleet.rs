//! The fleet console: its screen (TestBackend) with two devices and an alert, and the
//! whole path against a real Mosquitto: two device bridges publish, the console shows
//! them, and `e` on a device reaches that device as an escalation command; each device's
//! watches in its row.

mod support;

use chrono::Utc;
use gemmaedge_tui::event::{Command, Event};
use gemmaedge_tui::fleet::{self, Fleet, Key};
use gemmaedge_tui::mqtt::Bridge;
use gemmaedge_tui::roles::verdict::Verdict;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::Duration;
use support::mosquitto::Broker;

/// The README's ACL: each device writes only its own topics and reads its own commands;
/// the fleet console reads everything and may command.
pub const README_ACL: &str = "\
pattern write gemmaedge/%u/#
pattern read gemmaedge/%u/cmd/#
pattern write homeassistant/+/gemmaedge_%u/+/config

user fleet
topic read gemmaedge/#
topic write gemmaedge/+/cmd/#
";

fn screen(t: &Terminal<TestBackend>) -> String {
    let b = t.backend().buffer();
    let w = b.area.width as usize;
    b.content
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn two_devices_and_an_alert_on_screen() {
    let now = Utc::now();
    let mut f = Fleet::new("gemmaedge");
    f.broker = "mqtt://b:1883 connected".into();
    f.apply("gemmaedge/pi-kitchen/available", b"online", now);
    f.apply("gemmaedge/pi-garage/available", b"online", now);
    f.apply(
        "gemmaedge/pi-garage/events",
        br#"{"type":"student_answer","seq":7,"answer":"An empty garage.","confidence":0.91}"#,
        now,
    );
    f.apply(
        "gemmaedge/pi-kitchen/alert",
        br#"{"device":"pi-kitchen","seq":12,"summary":"A pan is on fire.\u001b]0;x\u0007","at":"2026-12-02T06:00:00Z"}"#,
        now,
    );
    let mut t = Terminal::new(TestBackend::new(120, 12)).unwrap();
    t.draw(|fr| fleet::view::draw(fr, &f, now)).unwrap();
    let s = screen(&t);
    assert!(s.contains("2 devices, 2 online, 1 with alerts"), "{s}");
    let kitchen = s.find("pi-kitchen").expect("kitchen row");
    let garage = s.find("pi-garage").expect("garage row");
    assert!(kitchen < garage, "alerts first:\n{s}");
    assert!(s.contains("1 ALERT"), "{s}");
    assert!(s.contains("0.91 An empty garage."), "{s}");
    // Enter on the first row: the kitchen's live log with the alert.
    f.key(Key::Enter);
    t.draw(|fr| fleet::view::draw(fr, &f, now)).unwrap();
    let s = screen(&t);
    assert!(s.contains("pi-kitchen · online · — · live log"), "{s}");
    assert!(s.contains("#12 SAFETY ALERT: A pan is on fire."), "{s}");
    assert!(!s.contains('\u{1b}'));
}

#[test]
fn each_devices_watches_show_before_its_last_answer_cleaned() {
    use gemmaedge_tui::mqtt::payload::DeviceState;
    use gemmaedge_tui::watch::{WatchBoard, WatchSpec, WatchState};
    let now = Utc::now();
    let mut f = Fleet::new("gemmaedge");
    f.apply("gemmaedge/pi-garage/available", b"online", now);
    // What the device publishes: its state with the watches.
    let mut state = DeviceState::new("pi-garage");
    let board = WatchBoard::new(&[
        WatchSpec::new("garage_door", "Is the garage door open?"),
        WatchSpec::new("stove_on", "Is the stove on?"),
    ]);
    let mut w = gemmaedge_tui::event::WatchesEvent {
        watches: board.statuses(),
        changes: Vec::new(),
        removed: Vec::new(),
    };
    w.watches[0].state = WatchState::Yes;
    assert!(state.apply(&Event::Watches(w)));
    let json = serde_json::to_string(&state).unwrap();
    f.apply("gemmaedge/pi-garage/state", json.as_bytes(), now);
    f.apply(
        "gemmaedge/pi-garage/events",
        br#"{"type":"student_answer","seq":7,"answer":"A garage.","confidence":0.91}"#,
        now,
    );
    let mut t = Terminal::new(TestBackend::new(120, 8)).unwrap();
    t.draw(|fr| fleet::view::draw(fr, &f, now)).unwrap();
    let s = screen(&t);
    assert!(
        s.contains("[garage_door YES, stove_on ?] 0.91 A garage."),
        "{s}"
    );
    // Another device's state is untrusted: an escape in a watch id never reaches the screen.
    let evil = json.replace("garage_door", "door\\u001b]0;x\\u0007");
    f.apply("gemmaedge/pi-garage/state", evil.as_bytes(), now);
    t.draw(|fr| fleet::view::draw(fr, &f, now)).unwrap();
    let s = screen(&t);
    assert!(!s.contains('\u{1b}') && !s.contains('\u{7}'), "{s}");
    assert!(s.contains("stove_on ?"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_console_over_a_real_broker() {
    let broker = Broker::start(
        &[("pi1", "pw1"), ("pi2", "pw2"), ("fleet", "fleet-pw")],
        README_ACL,
    );
    let dir = tempfile::tempdir().unwrap();
    let device = |name: &str, pw: &str| {
        let mut c =
            support::engine_config(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
        c.device.name = name.into();
        c.mqtt.url = broker.url();
        c.mqtt.username = name.into();
        c.mqtt.password = pw.into();
        c
    };
    let (tx1, mut cmds1) = tokio::sync::mpsc::unbounded_channel();
    let (tx2, _cmds2) = tokio::sync::mpsc::unbounded_channel();
    let b1 = Bridge::start(&device("pi1", "pw1"), tx1).unwrap();
    let b2 = Bridge::start(&device("pi2", "pw2"), tx2).unwrap();

    let mut fc = device("fleet", "fleet-pw");
    fc.mqtt.username = "fleet".into();
    let (client, mut incoming) = fleet::connect(&fc).unwrap();
    let (key_tx, mut key_rx) = tokio::sync::mpsc::unbounded_channel::<Key>();
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel((0usize, 0u32));
    let console = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(140, 14)).unwrap();
        let mut f = Fleet::new("gemmaedge");
        let mut keys = futures_util::stream::poll_fn(move |cx| key_rx.poll_recv(cx));
        fleet::run_loop(&mut t, &mut f, &client, &mut incoming, &mut keys, |f| {
            let online = f
                .devices
                .values()
                .filter(|d| d.online == Some(true))
                .count();
            let alerts = f.devices.values().map(|d| d.open_alerts).sum();
            seen_tx.send_replace((online, alerts));
        })
        .await
        .unwrap();
        screen(&t)
    });

    // Both devices are on screen (their retained `available`): the console's
    // subscriptions are in place, so the alert below cannot slip past them.
    tokio::time::timeout(Duration::from_secs(15), seen_rx.wait_for(|s| s.0 == 2))
        .await
        .expect("the console shows two online devices")
        .unwrap();
    // pi2 sees a fire and the teacher confirms it.
    b2.send(&Event::StudentAnswer {
        seq: 1,
        at: Utc::now(),
        answer: "Smoke by the stove.".into(),
        confidence: Some(0.7),
        measured_confidence: None,
        latency_ms: 900,
        reasons: vec![],
        skill: "built-in".into(),
    });
    b2.send(&Event::TeacherVerdict {
        seq: 1,
        verdict: Verdict {
            agrees: Some(true),
            safety_relevant: Some(true),
            summary: "Smoke from a pan.".into(),
            ..Default::default()
        },
        latency_ms: 1,
    });
    // The engine opens an incident on it: the alert goes per incident.
    b2.send(&Event::Incident(gemmaedge_tui::event::IncidentEvent {
        change: gemmaedge_tui::event::IncidentChange::Open,
        id: 1,
        seq: Some(1),
        level: 1,
        title: "Smoke from a pan".into(),
        opened_at: Utc::now(),
        last_at: Utc::now(),
        closed_at: None,
        frames: 1,
        key_seq: Some(1),
        acked_at: None,
        acked_by: None,
    }));
    tokio::time::timeout(Duration::from_secs(15), seen_rx.wait_for(|s| *s == (2, 1)))
        .await
        .expect("the console shows two online devices and one alert")
        .unwrap();

    // Down to pi1 (the alerting pi2 is first) and `e`: pi1 gets the escalation.
    key_tx.send(Key::Down).unwrap();
    key_tx.send(Key::Char('e')).unwrap();
    let cmd = tokio::time::timeout(Duration::from_secs(10), cmds1.recv())
        .await
        .expect("cmd/escalate reached pi1");
    assert_eq!(cmd, Some(Command::ForceEscalate));

    // pi1 goes away cleanly: shown offline.
    b1.stop().await;
    tokio::time::timeout(Duration::from_secs(10), seen_rx.wait_for(|s| s.0 == 1))
        .await
        .expect("pi1 offline")
        .unwrap();
    tokio::time::sleep(fleet::FRAME_EVERY * 2).await;
    key_tx.send(Key::Char('q')).unwrap();
    let s = tokio::time::timeout(Duration::from_secs(5), console)
        .await
        .unwrap()
        .unwrap();
    assert!(s.contains("2 devices, 1 online, 1 with alerts"), "{s}");
    let pi2 = s.find("pi2").unwrap();
    let pi1 = s.find("pi1").unwrap();
    assert!(pi2 < pi1, "alerts first:\n{s}");
    assert!(s.contains("offline"), "{s}");
    // pi2's open incident came over the broker (its retained `incident` topic): level 1,
    // one incident, not acknowledged.
    let pi2_row = s.lines().find(|l| l.contains("pi2")).unwrap();
    assert!(pi2_row.contains("▲1 ×1!"), "pi2's open incident:\n{s}");
    b2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_filled_with_fake_devices_still_shows_a_new_alert_and_counts_the_hidden() {
    let acl = format!("{README_ACL}\nuser mallory\ntopic write gemmaedge/#\n");
    let broker = Broker::start(
        &[("attic", "pw1"), ("fleet", "fleet-pw"), ("mallory", "m-pw")],
        &acl,
    );
    // Someone with write access fills the broker with retained fake devices, to the cap.
    let mallory =
        support::mosquitto::Sub::connect(&broker, "mallory", "m-pw", &["gemmaedge/none"]).await;
    for i in 0..fleet::state::MAX_DEVICES {
        mallory
            .client
            .publish(
                format!("gemmaedge/fake{i:04}/available"),
                rumqttc::QoS::AtLeastOnce,
                true,
                "online",
            )
            .await
            .unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut fc = support::engine_config(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
    fc.mqtt.url = broker.url();
    fc.mqtt.username = "fleet".into();
    fc.mqtt.password = "fleet-pw".into();
    let (client, mut incoming) = fleet::connect(&fc).unwrap();
    let (key_tx, mut key_rx) = tokio::sync::mpsc::unbounded_channel::<Key>();
    // (devices, open alerts, the attic shown, hidden)
    let (seen_tx, mut seen_rx) = tokio::sync::watch::channel((0usize, 0u32, false, 0usize));
    let console = tokio::spawn(async move {
        let mut t = Terminal::new(TestBackend::new(140, 8)).unwrap();
        let mut f = Fleet::new("gemmaedge");
        let mut keys = futures_util::stream::poll_fn(move |cx| key_rx.poll_recv(cx));
        fleet::run_loop(&mut t, &mut f, &client, &mut incoming, &mut keys, |f| {
            let alerts = f.devices.values().map(|d| d.open_alerts).sum();
            seen_tx.send_replace((
                f.devices.len(),
                alerts,
                f.devices.contains_key("attic"),
                f.hidden.len(),
            ));
        })
        .await
        .unwrap();
        screen(&t)
    });
    tokio::time::timeout(
        Duration::from_secs(20),
        seen_rx.wait_for(|s| s.0 == fleet::state::MAX_DEVICES),
    )
    .await
    .expect("the console holds the fake devices")
    .unwrap();

    // A real device comes: its `available` is not kept (the cap), but counted.
    let mut c = support::engine_config(dir.path(), "http://127.0.0.1:9", "http://127.0.0.1:9", 5);
    c.device.name = "attic".into();
    c.mqtt.url = broker.url();
    c.mqtt.username = "attic".into();
    c.mqtt.password = "pw1".into();
    let (tx, _cmds) = tokio::sync::mpsc::unbounded_channel();
    let attic = Bridge::start(&c, tx).unwrap();
    tokio::time::timeout(Duration::from_secs(15), seen_rx.wait_for(|s| s.3 == 1))
        .await
        .expect("the new device counted as hidden")
        .unwrap();
    // Its confirmed alert is never dropped.
    attic.send(&Event::TeacherVerdict {
        seq: 4,
        verdict: Verdict {
            agrees: Some(true),
            safety_relevant: Some(true),
            summary: "Smoke in the attic".into(),
            ..Default::default()
        },
        latency_ms: 1,
    });
    // The engine opens an incident on it: the alert goes per incident.
    attic.send(&Event::Incident(gemmaedge_tui::event::IncidentEvent {
        change: gemmaedge_tui::event::IncidentChange::Open,
        id: 1,
        seq: Some(4),
        level: 2,
        title: "Smoke in the attic".into(),
        opened_at: Utc::now(),
        last_at: Utc::now(),
        closed_at: None,
        frames: 1,
        key_seq: Some(4),
        acked_at: None,
        acked_by: None,
    }));
    tokio::time::timeout(
        Duration::from_secs(15),
        seen_rx.wait_for(|s| s.1 == 1 && s.2),
    )
    .await
    .expect("the attic's alert is shown")
    .unwrap();
    tokio::time::sleep(fleet::FRAME_EVERY * 2).await;
    key_tx.send(Key::Char('q')).unwrap();
    let s = tokio::time::timeout(Duration::from_secs(5), console)
        .await
        .unwrap()
        .unwrap();
    assert!(s.contains("1 with alerts · 1 hidden"), "{s}");
    let first_row = s.lines().nth(3).unwrap_or_default();
    assert!(
        first_row.contains("attic") && first_row.contains("1 ALERT"),
        "{s}"
    );
    attic.stop().await;
}

#[test]
fn fleet_without_a_broker_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[mqtt]\nurl = \"\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gemmaedge-tui"))
        .arg("fleet")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("set [mqtt] url"), "{err}");
}
