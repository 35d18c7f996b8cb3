//! `gemmaedge-tui serve` (the real binary) and consoles attached over its socket: the
//! snapshot, commands, several clients, a stalled one, bad lines, versions, permissions,
//! a stale socket, and signals.

mod support;

use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};
use support::ollama_server::Reply;
// The harness (a config, the serve process, a raw client) is shared with the security tests.
use support::serve::{event_type, servers, write_config, Client, Service, BIN};

#[test]
fn attach_gets_the_snapshot_then_live_events_and_e_reaches_the_teacher() {
    let (student, teacher) = servers();
    let svc = Service::start(&student, &teacher, "");
    // Let some answers happen before anyone attaches.
    let began = Instant::now();
    while svc.answers_in_log() < 3 {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut c, hello) = Client::attach(&svc.socket);
    assert_eq!(hello["protocol"], 1);
    assert_eq!(hello["device"], "testpi");
    assert_eq!(hello["pid"], svc.child.id());
    let (msgs, end) = c.snapshot();
    let answers = msgs
        .iter()
        .filter(|m| event_type(m) == "student_answer")
        .count();
    assert!(answers >= 3, "{msgs:#?}");
    assert!(msgs.iter().any(|m| event_type(m) == "started"));
    assert!(msgs.iter().any(|m| event_type(m) == "health"));
    // The newest frames carry their JPEG.
    assert!(msgs
        .iter()
        .any(|m| event_type(m) == "frame_taken" && m["frame"]["jpeg"].is_string()));
    assert!(end["counters"]["answers"].as_u64().unwrap() >= answers as u64);
    // Live events follow.
    c.until(Duration::from_secs(10), "a live answer", |m| {
        event_type(m) == "student_answer"
    });
    // `e` from this console reaches the teacher.
    let before = teacher.chat_requests().len();
    c.send(&json!({"type": "escalate"}));
    let esc = c.until(Duration::from_secs(10), "the forced escalation", |m| {
        event_type(m) == "escalated"
    });
    assert!(
        esc["event"]["reasons"].to_string().contains("forced"),
        "{esc}"
    );
    c.until(Duration::from_secs(10), "the verdict", |m| {
        event_type(m) == "teacher_verdict"
    });
    assert!(teacher.chat_requests().len() > before);
}

#[test]
fn a_killed_client_leaves_the_service_and_the_other_client_running() {
    let (student, teacher) = servers();
    let mut svc = Service::start(&student, &teacher, "");
    let (mut a, _) = Client::attach(&svc.socket);
    let (mut b, _) = Client::attach(&svc.socket);
    a.snapshot();
    b.snapshot();
    a.until(Duration::from_secs(10), "an answer", |m| {
        event_type(m) == "student_answer"
    });
    // Gone mid-stream, without a goodbye.
    drop(a);
    for _ in 0..3 {
        b.until(
            Duration::from_secs(10),
            "answers after the other left",
            |m| event_type(m) == "student_answer",
        );
    }
    assert!(svc.running());
}

#[test]
fn a_reattached_client_sees_what_happened_while_none_was_attached() {
    let (student, teacher) = servers();
    let svc = Service::start(&student, &teacher, "");
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    let last = c.until(Duration::from_secs(10), "an answer", |m| {
        event_type(m) == "student_answer"
    })["event"]["seq"]
        .as_u64()
        .unwrap();
    drop(c);
    let began = Instant::now();
    while svc.answers_in_log() < last as usize + 5 {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    let (mut c, _) = Client::attach(&svc.socket);
    let (msgs, _) = c.snapshot();
    let newer = msgs
        .iter()
        .filter(|m| event_type(m) == "student_answer")
        .filter(|m| m["event"]["seq"].as_u64().unwrap() > last)
        .count();
    assert!(
        newer >= 3,
        "entries made while detached are in the snapshot"
    );
}

#[test]
fn an_upskill_started_from_one_client_finishes_after_it_quits() {
    let (student, teacher) = servers();
    // Eval calls (text cases, no image) take a while, so the run outlives the console.
    student.set_handler(|req| {
        let delay = if req.all_images().is_empty() { 400 } else { 30 };
        Reply::delayed(
            Duration::from_millis(delay),
            Reply::text("A coffee mug on a desk. No safety concerns.\nCONFIDENCE: 0.9"),
        )
    });
    // Asked only for candidates here (no escalations: confident, no keywords).
    teacher.set_handler(|_| {
        Reply::text(
            r#"{"prompts": ["Describe every person, object and hazard; name mugs and fire."]}"#,
        )
    });
    let svc = Service::start(
        &student,
        &teacher,
        "[upskill]\ncandidates = 1\nbootstrap_samples = 100\n",
    );
    let (mut a, _) = Client::attach(&svc.socket);
    a.snapshot();
    a.send(&json!({"type": "upskill_start"}));
    let first = a.until(Duration::from_secs(10), "the run's start", |m| {
        m["type"] == "upskill" || m["type"] == "upskill_refused" || m["type"] == "error"
    });
    assert_eq!(first["event"]["kind"], "started", "{first}");
    drop(a);
    // A console attaching later sees the run, and its end.
    std::thread::sleep(Duration::from_millis(200));
    let (mut b, _) = Client::attach(&svc.socket);
    let (msgs, _) = b.snapshot();
    assert!(
        msgs.iter()
            .any(|m| m["type"] == "upskill" && m["event"]["kind"] == "started"),
        "the running upskill is in the snapshot"
    );
    let ended = |m: &Value| {
        m["type"] == "upskill"
            && ["finished", "failed", "cancelled"]
                .contains(&m["event"]["kind"].as_str().unwrap_or(""))
    };
    assert!(
        !msgs.iter().any(ended),
        "still running when the first console had gone"
    );
    let end = b.until(Duration::from_secs(60), "the run's end", ended);
    assert_eq!(end["event"]["kind"], "finished", "{end}");
}

#[test]
fn a_stalled_client_does_not_slow_the_engine() {
    let (student, teacher) = servers();
    student.set_handler(|_| Reply::text("A coffee mug on a desk.\nCONFIDENCE: 0.9"));
    // A short queue per console, so that falling behind happens within the test.
    let svc = Service::start(&student, &teacher, "[service]\nclient_queue = 32\n");
    let rate = |secs: u64| {
        let a = svc.answers_in_log();
        std::thread::sleep(Duration::from_secs(secs));
        (svc.answers_in_log() - a) as f64 / secs as f64
    };
    std::thread::sleep(Duration::from_millis(500));
    let alone = rate(2);
    // Says hello, never reads again.
    let mut stalled = Client::connect(&svc.socket);
    stalled.send(&json!({"type": "hello", "protocol": 1, "client": "stalled"}));
    std::thread::sleep(Duration::from_secs(2)); // its socket buffer and queue fill
    let with_stalled = rate(2);
    assert!(alone > 3.0, "baseline {alone}/s");
    assert!(
        with_stalled > alone * 0.6,
        "{with_stalled}/s with a stalled console, {alone}/s without"
    );
    // Another console is served normally, and the stalled one gets a fresh snapshot
    // once it reads again (not the backlog).
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    c.until(Duration::from_secs(5), "a live answer", |m| {
        event_type(m) == "student_answer"
    });
    stalled
        .r
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stalled.until(Duration::from_secs(20), "a resync", |m| {
        m["type"] == "snapshot_begin" && m["resync"] == true
    });
}

#[test]
fn bad_lines_get_an_error_and_close_only_that_connection() {
    let (student, teacher) = servers();
    let mut svc = Service::start(&student, &teacher, "");
    let cases: Vec<(String, &str)> = vec![
        ("{not json\n".into(), "not a message"),
        ("{\"type\":\"format_disk\"}\n".into(), "not a message"),
        (
            format!(
                "{{\"type\":\"escalate\",\"x\":\"{}\"}}\n",
                "a".repeat(100_000)
            ),
            "too long",
        ),
    ];
    for (line, want) in cases {
        let (mut c, _) = Client::attach(&svc.socket);
        c.snapshot();
        c.send_raw(&line);
        let err = c.until(Duration::from_secs(5), "an error", |m| m["type"] == "error");
        assert!(
            err["message"].as_str().unwrap().contains(want),
            "{err} for {}",
            &line[..line.len().min(40)]
        );
        // Then the connection closes.
        let began = Instant::now();
        while c.next().is_some() {
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "closed after the error"
            );
        }
    }
    // A first line that is not a hello.
    let mut c = Client::connect(&svc.socket);
    c.send(&json!({"type": "escalate"}));
    let err = c.next().unwrap();
    assert_eq!(err["type"], "error");
    assert!(err["message"].as_str().unwrap().contains("hello"));
    assert!(svc.running());
    let (mut ok, _) = Client::attach(&svc.socket);
    ok.snapshot();
}

#[test]
fn a_protocol_mismatch_is_a_clear_message() {
    let (student, teacher) = servers();
    let svc = Service::start(&student, &teacher, "");
    let mut c = Client::connect(&svc.socket);
    c.send(&json!({"type": "hello", "protocol": 99, "client": "future"}));
    let err = c.next().unwrap();
    assert_eq!(err["type"], "error", "{err}");
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("version 99") && msg.contains("speaks 1"),
        "{msg}"
    );
    assert!(c.next().is_none(), "closed after saying so");
}

#[test]
fn the_socket_is_owner_only_and_a_foreign_peer_is_refused() {
    let (student, teacher) = servers();
    let dir = tempfile::tempdir().unwrap();
    // A directory others may enter (not write), so that a second user can reach the
    // socket once its mode is widened: then only the peer check stands in the way.
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = run.join("g.sock");
    let svc = Service::start_at(dir, socket.clone(), &student, &teacher, "");
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "owner-only socket");
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the foreign-peer check is covered by service::socket's unit tests");
        return;
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // uid 65534 (nobody) connects and says hello.
    let script = format!(
        "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect({:?})\nsys.stdout.write(s.makefile().readline())\n",
        socket.display().to_string()
    );
    use std::os::unix::process::CommandExt;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("no answer: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(v["type"], "error", "{v}");
    assert!(v["message"].as_str().unwrap().contains("uid 65534"), "{v}");
    drop(svc);
}

#[test]
fn a_stale_socket_is_replaced_and_a_second_serve_refuses() {
    let (student, teacher) = servers();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");
    // What a crashed service leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let svc = Service::start_at(dir, socket.clone(), &student, &teacher, "");
    let (mut c, _) = Client::attach(&socket);
    c.snapshot();
    // A second service on the live socket refuses to start, and says why.
    let d2 = tempfile::tempdir().unwrap();
    let cfg = write_config(d2.path(), &student.url(), &teacher.url(), "");
    let out = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("another gemmaedge-tui serve is running"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", svc.child.id())), "{err}");
    // The first one is untouched.
    c.until(Duration::from_secs(10), "an answer", |m| {
        event_type(m) == "student_answer"
    });
}

#[test]
fn sigterm_flushes_the_log_and_sighup_does_not_stop_it() {
    let (student, teacher) = servers();
    let mut svc = Service::start(&student, &teacher, "");
    let began = Instant::now();
    while svc.answers_in_log() < 2 {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    svc.signal(libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(500));
    assert!(svc.running(), "SIGHUP does not stop the service");
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    svc.signal(libc::SIGTERM);
    assert_eq!(svc.wait_exit(Duration::from_secs(10)), Some(0));
    // The attached console saw the end.
    c.until(Duration::from_secs(5), "stopped", |m| {
        event_type(m) == "stopped"
    });
    let lines = svc.log_lines();
    assert_eq!(
        lines.last().unwrap()["type"],
        "stopped",
        "the log's last line"
    );
    assert!(!svc.socket.exists(), "the socket file is removed");
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(svc.stderr.as_mut().unwrap(), &mut err);
    assert!(err.contains("SIGHUP ignored"), "{err}");
}

#[test]
fn eval_and_upskill_from_a_shell_go_through_the_running_service() {
    let (student, teacher) = servers();
    teacher.set_handler(|_| {
        Reply::text(r#"{"prompts": ["Describe every mug and every fire you see."]}"#)
    });
    let svc = Service::start(
        &student,
        &teacher,
        "[upskill]\ncandidates = 1\nbootstrap_samples = 100\n",
    );
    let cfg = svc.dir.path().join("config.toml");
    let out = Command::new(BIN)
        .arg("eval")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(&svc.socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("through the service"), "{stderr}");
    assert!(
        stdout.contains("mug") && stdout.contains("train"),
        "{stdout}"
    );
    // The service made the eval calls (text cases: no image).
    let eval_calls = student
        .chat_requests()
        .iter()
        .filter(|r| r.all_images().is_empty())
        .count();
    assert!(eval_calls >= 2, "{eval_calls} eval calls at the student");

    let out = Command::new(BIN)
        .args(["upskill", "--yes", "--config"])
        .arg(&cfg)
        .arg("--socket")
        .arg(&svc.socket)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("in the service on"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("gain vs current"), "{stdout}");
    // Monitoring went on meanwhile.
    assert!(svc.answers_in_log() > 0);
    // `check` names the service it found.
    let out = Command::new(BIN)
        .arg("check")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(&svc.socket)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("serve pid {}", svc.child.id())),
        "{stdout}"
    );
}

#[test]
fn a_console_reads_history_pages_from_the_service() {
    let (student, teacher) = servers();
    let svc = Service::start(&student, &teacher, "");
    let began = Instant::now();
    while svc.answers_in_log() < 5 {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    // The writer commits once a second.
    std::thread::sleep(Duration::from_millis(1500));
    let (mut c, hello) = Client::attach(&svc.socket);
    assert!(
        hello["capabilities"].to_string().contains("history"),
        "{hello}"
    );
    let _ = c.snapshot();
    c.send(&json!({"type": "history", "filter": {"notable_only": false}, "limit": 2}));
    let page = c.until(Duration::from_secs(10), "a history page", |m| {
        m["type"] == "history"
    });
    let items = page["page"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"));
    assert_eq!(items.len(), 2, "{page}");
    assert!(page["page"]["next"].is_object(), "more pages: {page}");
    // The next page starts where this one ended, older.
    let after = page["page"]["next"].clone();
    c.send(&json!({"type": "history", "filter": {}, "after": after, "limit": 10000}));
    let older = c.until(Duration::from_secs(10), "the next page", |m| {
        m["type"] == "history"
    });
    let more = older["page"]["items"].as_array().unwrap();
    assert!(
        !more.is_empty() && more.len() <= 200,
        "bounded: {}",
        more.len()
    );
    // Search text with SQL in it is only text.
    c.send(&json!({"type": "history", "filter": {"text": "'); DROP TABLE frames; --"}}));
    let none = c.until(Duration::from_secs(10), "an empty page", |m| {
        m["type"] == "history"
    });
    assert_eq!(none["page"]["items"], json!([]), "{none}");
    // The engine went on meanwhile.
    c.until(Duration::from_secs(10), "a live answer", |m| {
        event_type(m) == "student_answer"
    });
}
