//! The real console in a pseudo-terminal: it starts, shows the student's answer, `e`
//! reaches the teacher, `q` quits with status 0 and leaves the alternate screen; and the
//! same console attached to a running `serve`, where `q` closes only the console; and the
//! first run with no model reachable, where the sample photos show and change.

mod support;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::Session;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";
/// Generous: a loaded CI box may be slow to start the binary and draw.
const WAIT: Duration = Duration::from_secs(60);
const LEAVE_ALT_SCREEN: &[u8] = b"\x1b[?1049l";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_config(dir: &Path, student: &str, teacher: &str) -> PathBuf {
    let p = dir.join("config.toml");
    let text = format!(
        r#"[student]
host = "{student}"
model = "{STUDENT}"
timeout_secs = 10
[teacher]
host = "{teacher}"
model = "{TEACHER}"
timeout_secs = 10
[source]
kind = "folder"
path = "{photos}"
fps = 2.0
[policy]
audit_every = 0
[paths]
skills = "{skills}"
eval = "{eval}"
logs = "{logs}"
"#,
        photos = repo().join("eval/images").display(),
        skills = dir.join("skills").display(),
        eval = repo().join("eval").display(),
        logs = dir.join("logs").display(),
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Everything the console wrote, read without blocking so it never stalls on a full pty.
struct Screen {
    session: OsSession,
    out: Vec<u8>,
    eof: bool,
}

impl Screen {
    /// Read what is there; true when something was read.
    fn drain(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        let mut any = false;
        while !self.eof {
            match self.session.try_read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.out.extend_from_slice(&buf[..n]);
                    any = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // EIO: the child closed its side.
                Err(_) => self.eof = true,
            }
        }
        any
    }

    /// Keep reading until `done` holds, or fail after `WAIT` showing the tail.
    fn until(&mut self, what: &str, mut done: impl FnMut(&mut Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.drain();
            if done(self) {
                return;
            }
            assert!(
                Instant::now() < deadline && !self.eof,
                "timed out (eof {}) waiting for {what}; output tail:\n{}",
                self.eof,
                self.tail()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn contains(&self, needle: &[u8]) -> bool {
        self.out.windows(needle.len()).any(|w| w == needle)
    }

    fn tail(&self) -> String {
        let from = self.out.len().saturating_sub(3000);
        String::from_utf8_lossy(&self.out[from..])
            .escape_debug()
            .to_string()
    }

    fn press(&mut self, key: &str) {
        self.session.write_all(key.as_bytes()).unwrap();
        self.session.flush().unwrap();
    }
}

#[test]
fn console_shows_answers_escalates_and_quits_cleanly() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student.set_handler(|_| Reply::text("A zebra poster on a wall.\nCONFIDENCE: 0.9"));
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    teacher.set_handler(|_| {
        Reply::text(
            serde_json::json!({
                "agrees": true, "safety_relevant": false,
                "summary": "A poster of a zebra.", "missed": [], "wrong": []
            })
            .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &student.url(), &teacher.url());

    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        // No service there: the console runs the engine itself.
        .arg("--socket")
        .arg(dir.path().join("no-service.sock"))
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env("GEMMAEDGE_HALFBLOCKS", "1")
        .env_remove("NO_COLOR")
        .env_remove("TMUX");
    let mut session = Session::spawn(cmd).expect("spawn the console in a pty");
    session
        .get_process_mut()
        .set_window_size(120, 40)
        .expect("set the pty size");
    let mut screen = Screen {
        session,
        out: Vec::new(),
        eof: false,
    };

    // The console is up and the student's answer is on screen.
    screen.until("the student's answer", |s| s.contains(b"zebra poster"));
    // Forced reviews (the `e` key) say so; other escalations (low or no confidence)
    // may happen on their own.
    let forced = |t: &OllamaTestServer| {
        t.chat_requests()
            .iter()
            .filter(|r| {
                r.last_content("user")
                    .is_some_and(|u| u.contains("escalated to you because: forced"))
            })
            .count()
    };
    assert_eq!(forced(&teacher), 0, "nothing forced before `e`");

    // `e` escalates the current frame: the teacher gets a chat request about it.
    let chats_before = teacher.chat_count();
    screen.press("e");
    let deadline = Instant::now() + WAIT;
    while forced(&teacher) < 1 {
        screen.drain();
        assert!(
            Instant::now() < deadline,
            "the teacher never got the forced review; tail:\n{}",
            screen.tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(teacher.wait_for_chats_blocking(chats_before + 1, Duration::from_secs(1)));
    // Its verdict shows (agrees: ✓ mark and the AGREES head in the teacher pane).
    screen.until("the teacher's verdict", |s| s.contains(b"AGREES"));

    // `q` quits: status 0, and the terminal is restored after the last draw.
    let before_quit = screen.out.len();
    screen.press("q");
    screen.until("the console to exit", |s| s.eof);
    let status = screen
        .session
        .get_process()
        .wait()
        .expect("wait for the console");
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}; tail:\n{}",
        screen.tail()
    );
    let after = &screen.out[before_quit..];
    let leave = after
        .windows(LEAVE_ALT_SCREEN.len())
        .rposition(|w| w == LEAVE_ALT_SCREEN)
        .unwrap_or_else(|| panic!("no leave-alternate-screen; tail:\n{}", screen.tail()));
    // Nothing is drawn after leaving: no more cursor moves onto the (restored) screen.
    let rest = String::from_utf8_lossy(&after[leave + LEAVE_ALT_SCREEN.len()..]).to_string();
    assert!(
        !rest.contains("\x1b[?1049h") && !rest.contains("zebra"),
        "drawn after leaving the alternate screen: {rest:?}"
    );
}

#[test]
fn an_attached_console_says_so_escalates_and_q_leaves_the_service_running() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student.set_handler(|_| Reply::text("A zebra poster on a wall.\nCONFIDENCE: 0.9"));
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    teacher.set_handler(|_| {
        Reply::text(
            serde_json::json!({
                "agrees": true, "safety_relevant": false,
                "summary": "A poster of a zebra.", "missed": [], "wrong": []
            })
            .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &student.url(), &teacher.url());
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");
    let mut service = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(began.elapsed() < WAIT, "serve never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env("GEMMAEDGE_HALFBLOCKS", "1")
        .env_remove("NO_COLOR")
        .env_remove("TMUX");
    let mut session = Session::spawn(cmd).expect("spawn the console in a pty");
    session
        .get_process_mut()
        .set_window_size(160, 40)
        .expect("set the pty size");
    let mut screen = Screen {
        session,
        out: Vec::new(),
        eof: false,
    };
    let pid = format!("attached · serve pid {}", service.id());
    screen.until("the attached status", |s| s.contains(pid.as_bytes()));
    screen.until("the student's answer", |s| s.contains(b"zebra poster"));
    let forced = |t: &OllamaTestServer| {
        t.chat_requests()
            .iter()
            .filter(|r| {
                r.last_content("user")
                    .is_some_and(|u| u.contains("escalated to you because: forced"))
            })
            .count()
    };
    screen.press("e");
    let deadline = Instant::now() + WAIT;
    while forced(&teacher) < 1 {
        screen.drain();
        assert!(
            Instant::now() < deadline,
            "the teacher never got the forced review; tail:\n{}",
            screen.tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    screen.until("the teacher's verdict", |s| s.contains(b"AGREES"));
    screen.press("q");
    screen.until("the console to exit", |s| s.eof);
    let status = screen.session.get_process().wait().unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    // The service watches on.
    let answers = || {
        std::fs::read_dir(dir.path().join("logs"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
            .map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .matches("\"type\":\"student_answer\"")
                    .count()
            })
            .sum::<usize>()
    };
    let before = answers();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(service.try_wait().unwrap().is_none(), "serve still runs");
    assert!(answers() > before, "and still answers frames");
    unsafe {
        libc::kill(service.id() as i32, libc::SIGTERM);
    }
    let status = service.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

/// A port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The FrameTaken labels and the FrameUnanswered reasons of the session logs under `logs`.
fn logged_frames(logs: &Path) -> (Vec<String>, Vec<String>) {
    let (mut labels, mut why) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(logs).into_iter().flatten().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(e.path())
            .unwrap_or_default()
            .lines()
        {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            match v["type"].as_str() {
                Some("frame_taken") => labels.push(field("label")),
                Some("frame_unanswered") => why.push(field("why")),
                _ => {}
            }
        }
    }
    (labels, why)
}

/// The README's first run: no webcam and no Ollama at all. The console shows the sample
/// photos within 5 s, and they change, each logged as not answered (`student offline`)
/// while the status bar says the student is offline and how to start it.
#[test]
fn the_first_run_with_no_model_reachable_shows_the_sample_photos_cycling() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.toml");
    // Only what a fresh clone does not have: no server on either port, no camera 99. The
    // source, its pace and the fallback to the sample photos are the defaults.
    std::fs::write(
        &p,
        format!(
            r#"[student]
host = "http://127.0.0.1:{s}"
[teacher]
host = "http://127.0.0.1:{t}"
[source]
camera_index = 99
fallback_path = "{photos}"
[paths]
skills = "{skills}"
eval = "{eval}"
logs = "{logs}"
"#,
            s = closed_port(),
            t = closed_port(),
            photos = repo().join("eval/images").display(),
            skills = dir.path().join("skills").display(),
            eval = repo().join("eval").display(),
            logs = dir.path().join("logs").display(),
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&p)
        .arg("--socket")
        .arg(dir.path().join("no-service.sock"))
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env("GEMMAEDGE_HALFBLOCKS", "1")
        .env_remove("NO_COLOR")
        .env_remove("TMUX");
    let began = Instant::now();
    let mut session = Session::spawn(cmd).expect("spawn the console in a pty");
    session
        .get_process_mut()
        .set_window_size(160, 40)
        .expect("set the pty size");
    let mut screen = Screen {
        session,
        out: Vec::new(),
        eof: false,
    };
    // A frame within 5 s: the frame pane's title names it (`#N · live · photo.png`).
    screen.until("the first frame", |s| s.contains(" · live · ".as_bytes()));
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the first frame took {:?}",
        began.elapsed()
    );
    screen.until("the offline hint", |s| {
        s.contains(b"offline: connection refused")
    });
    screen.until("the reason beside the frame", |s| {
        s.contains(b"not answered")
    });
    // The photos change: the console shows each frame it is given (the session log holds
    // the same events it drew).
    let logs = dir.path().join("logs");
    let deadline = Instant::now() + WAIT;
    loop {
        screen.drain();
        let (labels, why) = logged_frames(&logs);
        let distinct: std::collections::HashSet<_> = labels.iter().collect();
        if distinct.len() >= 3 && !why.is_empty() {
            assert!(why.iter().all(|w| w == "student offline"), "{why:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the photos did not change: {labels:?} {why:?}; tail:\n{}",
            screen.tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    screen.press("q");
    screen.until("the console to exit", |s| s.eof);
    let status = screen.session.get_process().wait().unwrap();
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "{status:?}; tail:\n{}",
        screen.tail()
    );
}

/// Issue 24's console side, attached to `serve`: the console of a user whose last console
/// left an hour ago (in the store) opens with the "while you were away" summary naming the
/// incident; `h` opens the history at that span, where the incident is; Enter opens it
/// (its frames, the student's answer, the verdict); `k` acknowledges it; `q` records in
/// the store that this user's console left.
#[test]
fn an_attached_console_shows_the_away_summary_and_opens_an_incident_from_history() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    student.set_handler(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) < 3 {
            Reply::text("Smoke rises from a pan on the stove.\nCONFIDENCE: 0.9")
        } else {
            Reply::text("A quiet kitchen.\nCONFIDENCE: 0.9")
        }
    });
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    teacher.set_handler(|_| {
        Reply::text(
            serde_json::json!({
                "agrees": true, "safety_relevant": true, "level": 2,
                "title": "Pan smoking on the stove",
                "summary": "Smoke rises from a pan.", "missed": [], "wrong": []
            })
            .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &student.url(), &teacher.url());
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");
    let mut service = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // The incident is in the store (the writer commits every second).
    let store = dir.path().join("logs/history.db");
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&store)
            .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let began = Instant::now();
    while count("SELECT count(*) FROM incidents") < 1
        || count("SELECT count(*) FROM frames WHERE incident_id IS NOT NULL") < 1
    {
        assert!(began.elapsed() < WAIT, "no incident in the store");
        assert!(service.try_wait().unwrap().is_none(), "serve exited");
        std::thread::sleep(Duration::from_millis(100));
    }
    // This user's last console left an hour ago.
    let uid = unsafe { libc::getuid() };
    let key = format!("console_left:{uid}");
    let an_hour_ago = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let c = rusqlite::Connection::open(&store).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [&key, &an_hour_ago],
    )
    .unwrap();
    drop(c);
    let service = Kill(service);

    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(&socket)
        .current_dir(dir.path())
        .env("TERM", "xterm-256color")
        .env("GEMMAEDGE_HALFBLOCKS", "1")
        .env_remove("NO_COLOR")
        .env_remove("TMUX");
    let mut session = Session::spawn(cmd).expect("spawn the console in a pty");
    session
        .get_process_mut()
        .set_window_size(120, 40)
        .expect("set the pty size");
    let mut screen = Screen {
        session,
        out: Vec::new(),
        eof: false,
    };
    let pid = format!("attached · serve pid {}", service.0.id());
    screen.until("the attached status", |s| s.contains(pid.as_bytes()));
    screen.until("the away summary", |s| s.contains(b"while you were away"));
    screen.until("the incident in it", |s| s.contains(b"urgent"));
    // `h`: the history at that span, with the incident.
    let at = screen.out.len();
    screen.press("h");
    let since = |s: &Screen, at: usize, needle: &[u8]| {
        s.out[at..].windows(needle.len()).any(|w| w == needle)
    };
    // Only the cells that change are redrawn (a space is often a cursor move): look for
    // single words nothing before had there.
    screen.until("the incident listed", |s| since(s, at, b"INCIDENT #1"));
    // `i` (incidents only: its frames are newer than its start, so they list above it),
    // then Enter: the incident with its frames, the student's answer and the verdict.
    screen.press("i");
    let began = Instant::now();
    while began.elapsed() < Duration::from_millis(1500) {
        screen.drain();
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = screen.out.len();
    screen.press("\r");
    screen.until("the opened incident", |s| since(s, at, b"LEVEL 2"));
    screen.until("its frames", |s| since(s, at, b"frame"));
    screen.until("the student's answer", |s| since(s, at, b"student:"));
    screen.until("the verdict", |s| since(s, at, b"AGREES"));
    // `k` acknowledges it: the store says so, and so does the screen.
    screen.press("k");
    let began = Instant::now();
    while count("SELECT count(*) FROM incidents WHERE acked_ms IS NOT NULL") < 1 {
        screen.drain();
        assert!(
            began.elapsed() < WAIT,
            "never acknowledged; tail:\n{}",
            screen.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    screen.until("acknowledged on screen", |s| since(s, at, b"console"));
    // `q`: this user's console left now, in the store.
    screen.press("q");
    screen.until("the console to exit", |s| s.eof);
    let status = screen.session.get_process().wait().unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    let left: String = rusqlite::Connection::open(&store)
        .unwrap()
        .query_row("SELECT value FROM meta WHERE key = ?1", [&key], |r| {
            r.get(0)
        })
        .unwrap();
    let left = chrono::DateTime::parse_from_rfc3339(&left).unwrap();
    assert!(
        (chrono::Utc::now() - left.with_timezone(&chrono::Utc)).num_seconds() < 30,
        "the clean quit was recorded: {left}"
    );
}
