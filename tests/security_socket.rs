//! Issue 33 against the real `serve` binary on its control socket: a connection flood
//! from a group member with few file descriptors (point 2), a planted fake service
//! (point 3), an `eval` flood (point 5), oversized learned cases (point 7) and
//! out-of-range fields (point 9).

mod support;

use serde_json::json;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::ollama_server::OllamaTestServer;
use support::serve::{servers, Client, Service, BIN};

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// A temp dir others may enter (not write), with `run/` for the socket.
fn open_dirs() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750)).unwrap();
    (dir, run)
}

/// Run a Python script as uid/gid 65534 (nobody/nogroup); its stdout.
fn as_nobody(script: &str) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Answers per second over the next `secs` seconds.
fn answer_rate(svc: &Service, secs: u64) -> f64 {
    let a = svc.answers_in_log();
    std::thread::sleep(Duration::from_secs(secs));
    (svc.answers_in_log() - a) as f64 / secs as f64
}

fn wait_answers(svc: &Service, n: usize, what: &str) {
    let began = Instant::now();
    while svc.answers_in_log() < n {
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{what}: {} answers",
            svc.answers_in_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Point 2: `[service] group` set, `ulimit -n 64`, and a group member opens 200
/// connections that each say hello. Before: the service ran out of descriptors, logged
/// `accept failed` in a loop, its capture failed and it exited 0. Now the connections
/// over `max_clients` are refused with a reason, the engine goes on, the log stays
/// quiet, a console still attaches afterwards, and an idle connection is closed.
#[test]
fn a_connection_flood_is_capped_and_the_engine_goes_on() {
    if !is_root() {
        eprintln!("not root: the flood needs a second user; covered by server's unit tests");
        return;
    }
    let (student, teacher) = servers();
    let (dir, run) = open_dirs();
    std::os::unix::fs::chown(&run, None, Some(65534)).unwrap();
    let socket = run.join("g.sock");
    let mut svc = Service::start_limited(
        dir,
        socket.clone(),
        &student,
        &teacher,
        // The default max_clients (32).
        "[service]\ngroup = \"nogroup\"\n",
        Some(64),
    );
    wait_answers(&svc, 2, "before the flood");
    let script = format!(
        r#"
import socket, json, time
socks, answers = [], []
for i in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect({path:?})
    try:
        s.sendall(b'{{"type":"hello","protocol":1,"client":"flood"}}\n')
    except OSError:
        pass  # refused and closed before the hello: the reason is still there to read
    socks.append(s)
for s in socks:
    s.settimeout(5)
    try:
        answers.append(s.makefile().readline().strip())
    except OSError as e:
        answers.append("read failed: " + str(e))
time.sleep(1)
print(json.dumps(answers))
"#,
        path = socket.display().to_string()
    );
    let pid = svc.child.id();
    let baseline = answer_rate(&svc, 2);
    let (a0, t0, rss0) = (svc.answers_in_log(), Instant::now(), rss_kb(pid));
    let out = as_nobody(&script);
    let (a1, secs, rss1) = (
        svc.answers_in_log(),
        t0.elapsed().as_secs_f64(),
        rss_kb(pid),
    );
    let answers: Vec<String> = serde_json::from_str(out.trim()).unwrap();
    let hellos = answers.iter().filter(|a| a.contains("\"hello\"")).count();
    let refused = answers
        .iter()
        .filter(|a| a.contains("[service] max_clients"))
        .count();
    eprintln!(
        "200 connections in {secs:.1} s: {hellos} attached, {refused} refused with the reason; \
         {:.1} answers/s meanwhile ({baseline:.1}/s before); RSS {} → {} MB",
        (a1 - a0) as f64 / secs,
        rss0 / 1024,
        rss1 / 1024
    );
    assert!(hellos <= 32, "{hellos} attached over max_clients 32");
    assert!(refused >= 160, "{refused} refusals: {answers:?}");
    assert!(svc.running(), "the service died");
    // The engine still answers.
    let before = svc.answers_in_log();
    wait_answers(&svc, before + 3, "after the flood");
    // A console attaches once the flood has gone.
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    drop(c);
    // A connection that never says hello is closed, with the reason.
    let mut idle = Client::connect(&svc.socket);
    let began = Instant::now();
    let m = idle.next().expect("the idle connection is told");
    assert!(m["message"].as_str().unwrap().contains("no hello"), "{m}");
    assert!(began.elapsed() < Duration::from_secs(7));
    svc.signal(libc::SIGTERM);
    assert_eq!(svc.wait_exit(Duration::from_secs(15)), Some(0));
    let mut err = String::new();
    svc.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let noisy = err
        .lines()
        .filter(|l| l.contains("refused") || l.contains("accept failed"))
        .count();
    assert!(noisy <= 3, "the log was flooded ({noisy} lines):\n{err}");
    assert!(err.contains("max_clients"), "{err}");
}

/// Point 2: the engine stopping by itself (here the frame source ends: its folder is
/// emptied) is a failure: `serve` exits 1, so `Restart=on-failure` restarts it.
#[test]
fn serve_exits_non_zero_when_the_engine_stops_by_itself() {
    let (student, teacher) = servers();
    let dir = tempfile::tempdir().unwrap();
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    let one = std::fs::read_dir(support::photos())
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .unwrap()
        .path();
    std::fs::copy(&one, photos.join("a.jpg")).unwrap();
    let cfg = support::serve::write_config(dir.path(), &student.url(), &teacher.url(), "");
    let sock2 = dir.path().join("h.sock");
    let mut child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--socket")
        .arg(&sock2)
        .arg("--source")
        .arg(&photos)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !sock2.exists() {
        assert!(began.elapsed() < Duration::from_secs(20));
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    std::fs::remove_file(photos.join("a.jpg")).unwrap();
    let began = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "serve did not stop when its source ended"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("stopped by itself"), "{err}");
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn eval_calls(student: &OllamaTestServer) -> usize {
    student
        .chat_requests()
        .iter()
        .filter(|r| r.raw.to_string().contains("Flames rise from a pan"))
        .count()
}

/// Point 5: 2000 `eval` lines in one write. Before: every one ran at once (memory grew
/// to a GB in the report, live answers stopped) and they ran on after the client left.
/// Now one runs, four wait, the rest are refused with the reason, live answers go on,
/// and nothing of the client's runs once it has gone.
#[test]
fn an_eval_flood_is_queued_bounded_and_cancelled_with_its_client() {
    let (student, teacher) = servers();
    let mut svc = Service::start(&student, &teacher, "");
    wait_answers(&svc, 2, "before the flood");
    let pid = svc.child.id();
    let baseline = answer_rate(&svc, 2);
    let rss_before = rss_kb(pid);
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    let flood = "{\"type\":\"eval\"}\n".repeat(2000);
    c.send_raw(&flood);
    let began = Instant::now();
    let answers_before = svc.answers_in_log();
    let mut refused = 0;
    let mut rss_most = rss_before;
    while began.elapsed() < Duration::from_secs(3) {
        if let Some(m) = c.next() {
            // Refused by the eval queue, or earlier by the bounded request queue.
            if (m["type"] == "eval_done"
                && m["error"]
                    .as_str()
                    .unwrap_or("")
                    .contains("one eval at a time"))
                || (m["type"] == "notice"
                    && m["text"]
                        .as_str()
                        .unwrap_or("")
                        .contains("the service is busy"))
            {
                refused += 1;
            }
        }
        rss_most = rss_most.max(rss_kb(pid));
    }
    let live = svc.answers_in_log() - answers_before;
    eprintln!(
        "eval flood: {refused} refused in 3 s, {live} live answers meanwhile ({baseline:.1}/s before), RSS {} → {} MB",
        rss_before / 1024,
        rss_most / 1024
    );
    assert!(refused >= 1900, "{refused} refused");
    // Not stalled (the report saw none for ~25 s); loose, as the machine may be busy.
    assert!(live >= 3, "live answers stalled: {live} in 3 s");
    drop(c);
    std::thread::sleep(Duration::from_millis(500));
    let after_leave = eval_calls(&student);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        eval_calls(&student),
        after_leave,
        "evals ran on after their client left"
    );
    assert!(svc.running());
}

/// Point 7: `save_learned` flooded with junk. Before: 60 KB of U+007F per field was
/// accepted and written six times larger (`\u007F`), and nothing limited how many came, so
/// `learned.toml` grew until eval refused to run. Now an entry over 200 characters is
/// refused, control characters are dropped (not escaped), and at most 20 cases a minute
/// are saved.
#[test]
fn saved_cases_are_capped_cleaned_and_rate_limited() {
    let (student, teacher) = servers();
    let svc = Service::start(&student, &teacher, "");
    wait_answers(&svc, 2, "a frame to learn from");
    let (mut c, _) = Client::attach(&svc.socket);
    let (msgs, _) = c.snapshot();
    let seq = msgs
        .iter()
        .find(|m| support::serve::event_type(m) == "frame_taken")
        .map(|m| m["event"]["seq"].as_u64().unwrap())
        .expect("a frame in the snapshot");
    let case = |expect: Vec<String>, minute: u32| {
        json!({"type": "save_learned", "seq": seq,
               "captured_at": format!("2026-12-05T10:{minute:02}:00Z"),
               "expect": expect, "forbid": [], "safety": false})
    };
    // 60 000 DELs in one entry: refused by the protocol's range check.
    c.send(&case(vec!["\u{7f}".repeat(60_000)], 0));
    let m = c
        .until(Duration::from_secs(5), "the refusal", |m| {
            m["type"] == "error"
        })
        .to_string();
    assert!(m.contains("at most 200 characters"), "{m}");
    assert!(c.next().is_none(), "closed after saying so");
    // 25 small cases, each with a DEL inside a word (the same frame, as the report did).
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    for i in 0..25 {
        c.send(&case(vec!["ket\u{7f}tle".into(), "a mug".into()], i + 1));
    }
    let (mut added, mut limited) = (0, 0);
    while added + limited < 25 {
        let m = c.until(Duration::from_secs(10), "a notice", |m| {
            m["type"] == "notice"
        });
        let text = m["text"].as_str().unwrap();
        if text.contains("added case") {
            added += 1;
        } else if text.contains("cases a minute") {
            limited += 1;
        } else {
            panic!("unexpected: {text}");
        }
    }
    assert_eq!((added, limited), (20, 5));
    let toml = std::fs::read_to_string(svc.dir.path().join("eval/learned.toml")).unwrap();
    assert!(toml.contains("\"kettle\""), "{toml}");
    assert!(
        !toml.to_lowercase().contains("\\u007f"),
        "escaped, not dropped"
    );
    assert!(toml.len() < 20 * 1024, "{} bytes", toml.len());
}

/// Point 9: a device name with an invisible character is a config error naming it, and a
/// socket field out of the config's range is refused (`candidates: 500`; 1–32).
#[test]
fn invisible_names_and_out_of_range_socket_fields_are_refused() {
    let (student, teacher) = servers();
    let dir = tempfile::tempdir().unwrap();
    let cfg = support::serve::write_config(dir.path(), &student.url(), &teacher.url(), "");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("name = \"testpi\"", "name = \"kitchen\u{200b}\"");
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(BIN)
        .args(["check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("device.name") && err.contains("U+200B"),
        "{err}"
    );

    let svc = Service::start(&student, &teacher, "");
    let (mut c, _) = Client::attach(&svc.socket);
    c.snapshot();
    c.send(&json!({"type": "upskill_start", "candidates": 500}));
    let m = c.until(Duration::from_secs(5), "the refusal", |m| {
        m["type"] == "error"
    });
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("candidates must be between 1 and 32"),
        "{m}"
    );
    assert!(c.next().is_none(), "closed after saying so");
    // Nothing started: a new console sees no upskill run.
    let (mut c, _) = Client::attach(&svc.socket);
    let (msgs, _) = c.snapshot();
    assert!(!msgs.iter().any(|m| m["type"] == "upskill"), "{msgs:?}");
}

/// Point 3: with no `XDG_RUNTIME_DIR`, another user makes `$TMPDIR/gemmaedge-0/` first and
/// serves a fake service there. Before: root's console attached to it (`serve pid 4242`,
/// a spoofed log, its keys sent there) and root's own `serve` refused to start. Now the
/// planted directory is passed over (the socket goes to `$HOME/.cache/gemmaedge/`), and a
/// console pointed at the fake one refuses, naming the uid, before sending anything.
#[test]
fn a_planted_fake_service_is_not_attached_to() {
    if !is_root() {
        eprintln!("not root: a second user is needed; covered by service::socket's unit tests");
        return;
    }
    let (student, teacher) = servers();
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A /tmp of our own: sticky and writable by all, like the real one.
    let tmp = base.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let home = base.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let planted = tmp.join("gemmaedge-0");
    let fake_sock = planted.join("gemmaedge.sock");
    // nobody plants a directory and a fake service that logs what it is sent.
    let got = tmp.join("got.txt");
    let script = format!(
        r#"
import os, socket
os.mkdir({dir:?}, 0o755)
s = socket.socket(socket.AF_UNIX)
s.bind({sock:?})
os.chmod({sock:?}, 0o777)
s.listen(8)
while True:
    c, _ = s.accept()
    try:
        c.sendall(b'{{"type":"hello","protocol":1,"pid":4242,"started_at":"2026-12-05T10:00:00Z","device":"fake","version":"0.1.0","capabilities":[]}}\n{{"type":"snapshot_begin","resync":false}}\n{{"type":"snapshot_end","counters":{{}}}}\n')
    except OSError:
        pass
    c.settimeout(0.5)
    try:
        data = c.recv(4096)
        with open({got:?}, "ab") as f:
            f.write(data)
    except OSError:
        pass
    c.close()
"#,
        dir = planted.display().to_string(),
        sock = fake_sock.display().to_string(),
        got = got.display().to_string(),
    );
    let mut fake = Command::new("python3")
        .arg("-c")
        .arg(script)
        .uid(65534)
        .gid(65534)
        .spawn()
        .unwrap();
    let began = Instant::now();
    while !fake_sock.exists() {
        assert!(
            began.elapsed() < Duration::from_secs(10),
            "the fake never listened"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = support::serve::write_config(cfg_dir.path(), &student.url(), &teacher.url(), "");
    let run = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.args(args)
            .arg("--config")
            .arg(&cfg)
            .env_remove("XDG_RUNTIME_DIR")
            .env("TMPDIR", &tmp)
            .env("HOME", &home);
        c
    };
    // `check` by default: does not attach to the fake; says where it looked instead.
    let out = run(&["check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains("4242"), "attached to the fake:\n{text}");
    assert!(text.contains(".cache/gemmaedge"), "{text}");
    // Pointed at the fake explicitly: refused, with the reason, and nothing sent to it.
    let out = run(&["check", "--socket", fake_sock.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!text.contains("4242"), "attached to the fake:\n{text}");
    assert!(
        text.contains("not attaching") && text.contains("uid 65534"),
        "{text}"
    );
    assert!(
        std::fs::read(&got).unwrap_or_default().is_empty(),
        "the console said something to the fake"
    );
    // Our own service starts (beside the planted directory) and check finds it.
    let mut serve = run(&["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ours = home.join(".cache/gemmaedge/gemmaedge.sock");
    let began = Instant::now();
    while !ours.exists() {
        if let Some(st) = serve.try_wait().unwrap() {
            let mut err = String::new();
            serve
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("serve exited {st}: {err}");
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(&["check"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains(&format!("serve pid {}", serve.id())),
        "{text}"
    );
    unsafe { libc::kill(serve.id() as i32, libc::SIGTERM) };
    let _ = serve.wait();
    let mut err = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        err.contains("not using") && err.contains("gemmaedge-0"),
        "{err}"
    );
    let _ = fake.kill();
    let _ = fake.wait();
}
