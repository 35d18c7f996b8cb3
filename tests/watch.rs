//! Watches with the real binary and the stand-in model servers (issue 26): a watch flips
//! after `debounce` frames and not before, the flip goes to the teacher, its confirmed
//! `yes` opens one incident with one alert; an `unsure` escalates; the teacher overrules
//! the student; a list saved from a face persists across a restart.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::ollama_server::{OllamaTestServer, Reply};
use support::serve::{file_lines, headless, output, stop, wait_until, write_config, BIN};
use support::{STUDENT, TEACHER};

fn answer(n: usize, door: &str) -> String {
    format!("Frame {n}. A garage with a car.\nNo safety concerns.\nWATCH garage_door: {door}\nCONFIDENCE: 0.9")
}

fn verdict(door: bool) -> String {
    format!(
        r#"{{"agrees":true,"safety_relevant":false,"summary":"A garage.","missed":[],"wrong":[],"level":0,"title":"","watches":{{"garage_door":{door}}}}}"#
    )
}

const DOOR: &str =
    "[[watch]]\nid = \"garage_door\"\nquestion = \"Is the garage door open?\"\nlevel = 2\n";

#[test]
fn a_watch_flips_after_debounce_frames_and_its_confirmed_yes_is_one_incident_with_one_alert() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    // Five frames say the door is shut, every one after says it is open.
    student.set_handler(move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        Reply::text(answer(i, if i <= 5 { "no" } else { "Yes." }))
    });
    teacher.set_handler(|_| Reply::text(verdict(true)));
    let d = tempfile::tempdir().unwrap();
    let extra = format!(
        "{DOOR}debounce = 3\n[incidents]\ngap_secs = 60\n[notify]\nmin_interval_secs = 0\n\
         command = \"echo \\\"$GEMMAEDGE_CHANGE $GEMMAEDGE_INCIDENT $GEMMAEDGE_LEVEL $GEMMAEDGE_TITLE\\\" >> {}\"\n",
        d.path().join("alerts.txt").display()
    );
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), &extra);
    let child = headless(&cfg, &[]);
    let file = d.path().join("alerts.txt");
    let alerted = wait_until(Duration::from_secs(30), || {
        !file_lines(&file).is_empty() && calls.load(Ordering::SeqCst) > 20
    });
    let out = stop(child);
    assert!(alerted, "no alert: {out}");
    // The student was asked every watch, its question quoted, on every frame.
    let asked = student.chat_requests();
    let system = asked[0].first_content("system").unwrap_or_default();
    assert!(
        system.contains("- garage_door: \"Is the garage door open?\""),
        "{system}"
    );
    // One review: the frame of the third `yes` in a row (frame 8), for the watch's change.
    let reviews = teacher.chat_requests();
    assert_eq!(reviews.len(), 1, "{out}");
    let user = reviews[0].last_content("user").unwrap_or_default();
    assert!(user.contains("Frame 8."), "{user}");
    assert!(user.contains("watch: garage_door \u{2192} yes"), "{user}");
    assert!(
        user.contains("\"watches\": {\"garage_door\": bool}"),
        "{user}"
    );
    // The log: a quiet first `no`, the student's flip, the teacher's confirmation.
    assert!(
        out.contains("watch garage_door: unknown \u{2192} no (student)"),
        "{out}"
    );
    assert!(
        out.contains("watch garage_door: no \u{2192} yes (student)"),
        "{out}"
    );
    assert!(
        !out.contains("escalated: watch: garage_door \u{2192} no"),
        "a first no asks nobody: {out}"
    );
    // One incident, urgent (the watch's level), titled by the question; one alert.
    assert_eq!(
        file_lines(&file),
        vec!["open 1 2 Is the garage door open? Yes.".to_string()],
        "{out}"
    );
}

#[test]
fn unsure_escalates_and_the_teacher_overrules_the_student() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    // Frame 1 has no watch line (unsure); frames 2 and 3 say yes, after the teacher's
    // first verdict is in.
    student.set_handler(move |_| {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        if i == 1 {
            Reply::text("Frame 1. A dark garage.\nCONFIDENCE: 0.9")
        } else {
            Reply::text(answer(i, "yes")).after(Duration::from_millis(700))
        }
    });
    teacher.set_handler(|_| Reply::text(verdict(false)));
    let d = tempfile::tempdir().unwrap();
    let extra = format!("{DOOR}notify = \"never\"\n");
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), &extra);
    let out = output(headless(&cfg, &["--max-frames", "3"]));
    let reviews = teacher.chat_requests();
    assert_eq!(reviews.len(), 2, "{out}");
    let first = reviews[0].last_content("user").unwrap_or_default();
    assert!(first.contains("watch: garage_door unsure"), "{first}");
    assert!(
        out.contains("#1 escalated: watch: garage_door unsure"),
        "{out}"
    );
    let second = reviews[1].last_content("user").unwrap_or_default();
    assert!(second.contains("Frame 3."), "{second}");
    assert!(
        out.contains("watch garage_door: unknown \u{2192} no (teacher)"),
        "{out}"
    );
    assert!(
        out.contains("watch garage_door: no \u{2192} yes (student)"),
        "{out}"
    );
    assert!(
        out.contains("watch garage_door: yes \u{2192} no (teacher)"),
        "{out}"
    );
}

#[test]
fn watches_set_from_an_attached_console_are_saved_and_survive_a_restart() {
    use serde_json::json;
    use support::serve::{event_type, Client, Service};
    let (student, teacher) = support::serve::servers();
    let mut svc = Service::start(&student, &teacher, DOOR);
    let (mut c, _) = Client::attach(&svc.socket);
    // The snapshot says how the configured watch stands.
    let (snap, _) = c.snapshot();
    let watches: Vec<&serde_json::Value> =
        snap.iter().filter(|m| event_type(m) == "watches").collect();
    assert_eq!(watches.len(), 1, "{snap:?}");
    assert_eq!(watches[0]["event"]["watches"][0]["id"], "garage_door");
    // A list the config would refuse is refused, with the entry and the reason.
    c.send(&json!({"type": "set_watches", "watches": [
        {"id": "garage_door", "question": "Is the garage door open?"},
        {"id": "garage_door", "question": "Again?"}
    ]}));
    let warn = c.until(Duration::from_secs(10), "the refusal", |m| {
        event_type(m) == "warning"
    });
    let msg = warn["event"]["message"].as_str().unwrap();
    assert!(
        msg.contains("watches not saved")
            && msg.contains("watch[2] (id \"garage_door\"): duplicate id"),
        "{msg}"
    );
    let file = svc.dir.path().join("skills/watches.toml");
    assert!(!file.exists());
    // A good list: saved, said to every console, asked from the next frame.
    c.send(&json!({"type": "set_watches", "watches": [
        {"id": "garage_door", "question": "Is the garage door open?"},
        {"id": "stove_on", "question": "Is the stove on with nobody in the room?", "level": 2, "notify": "on_change"}
    ]}));
    let ev = c.until(Duration::from_secs(10), "the new list", |m| {
        event_type(m) == "watches"
            && m["event"]["watches"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    });
    assert_eq!(ev["event"]["watches"][1]["level"], 2);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("id = \"stove_on\""), "{text}");
    let asked = || {
        student.chat_requests().iter().any(|r| {
            r.first_content("system")
                .unwrap_or_default()
                .contains("- stove_on: ")
        })
    };
    assert!(
        wait_until(Duration::from_secs(10), asked),
        "the student was never asked the new watch"
    );
    drop(c);
    svc.signal(libc::SIGTERM);
    svc.wait_exit(Duration::from_secs(20));
    // Restarted (the same config, which still has only the garage door): the saved list.
    let cfg = svc.dir.path().join("config.toml");
    let out = output(headless(&cfg, &["--max-frames", "1"]));
    assert!(
        out.contains("watching garage_door (unknown), stove_on (unknown)"),
        "{out}"
    );
}

#[test]
fn eval_scores_each_watch_beside_the_description_and_says_it_in_json() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    // A student that always sees the door open.
    student.set_handler(|_| {
        Reply::text(
            "A garage with a car.\nNo safety concerns.\nWATCH garage_door: yes\nCONFIDENCE: 0.9",
        )
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), DOOR);
    std::fs::write(
        d.path().join("eval/cases.toml"),
        "[[case]]\nid = \"open\"\ntext = \"A garage, its door up.\"\nexpect = [\"garage\"]\nsafety = false\n\
         watch = { garage_door = true }\n\n\
         [[case]]\nid = \"shut\"\ntext = \"A garage, its door down.\"\nexpect = [\"garage\"]\nsafety = false\n\
         watch = { garage_door = false }\n\n\
         [[case]]\nid = \"mug\"\ntext = \"A mug.\"\nexpect = [\"mug\"]\nsafety = false\n",
    )
    .unwrap();
    let eval = |json: bool| {
        let mut c = Command::new(BIN);
        c.arg("eval");
        if json {
            c.arg("--json");
        }
        let out = c.arg("--config").arg(&cfg).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = eval(false);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("watch garage_door: 1/2 answered right (50%)"),
        "{out}"
    );
    let (code, out, err) = eval(true);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["watches"]["garage_door"],
        serde_json::json!({"right": 1, "of": 2})
    );
    let open = &v["cases"][0]["score"]["watches"][0];
    assert_eq!(
        (open["answered"].as_str(), open["ok"].as_bool()),
        (Some("yes"), Some(true))
    );
    // The watch lines are not the description: the description scores as without them.
    assert_eq!(v["cases"][2]["score"]["watches"], serde_json::Value::Null);
    // The student was asked the watch on every case.
    assert!(student.chat_requests().iter().all(|r| r
        .first_content("system")
        .unwrap_or_default()
        .contains("- garage_door: \"Is the garage door open?\"")));
    // A case that expects a watch nobody configured: bad input, named.
    std::fs::write(
        d.path().join("eval/cases.toml"),
        "[[case]]\nid = \"stove\"\ntext = \"A stove.\"\nsafety = false\nwatch = { stove_on = true }\n",
    )
    .unwrap();
    let (code, _, err) = eval(false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("case \"stove\" expects watch stove_on but no such watch is configured"),
        "{err}"
    );
}

#[test]
fn a_bad_watch_in_the_config_is_exit_2_naming_the_entry() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        &format!("{DOOR}[[watch]]\nid = \"Garage Door\"\nquestion = \"\"\n"),
    );
    let out = Command::new(BIN)
        .args(["--headless", "--max-frames", "1", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("watch[2] (id \"Garage Door\"): id must be a slug")
            && err.contains("for example \"garage_door\""),
        "{err}"
    );
    assert!(
        err.contains("watch[2] (id \"Garage Door\"): question must not be empty"),
        "{err}"
    );
}
