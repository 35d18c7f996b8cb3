//! The history store with the real binary: incidents with a stand-in teacher (one open and
//! one close alert for a pan smoking over 40 frames), a restart that resumes the open
//! incident, `history` and `history import` from a shell, a garbage file and a newer store
//! at the path, a SIGKILL loop that leaves a sound database, and a size limit on files
//! (RLIMIT_FSIZE) that pauses history while monitoring goes on.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

// A config against the Ollama test servers, as for the service tests (its own small eval
// set and skill under the test's directory).
use support::serve::{file_lines, headless, headless_to_end, stop, wait_until, write_config, BIN};
use support::{STUDENT, TEACHER};

const SMOKE_VERDICT: &str = r#"{"agrees":true,"safety_relevant":true,"summary":"Smoke rises from a pan on the stove.","missed":[],"wrong":[],"level":1,"title":"Pan smoking on the stove"}"#;

/// A student that sees smoke in its first `smoky` answers and a quiet kitchen after.
fn servers(smoky: usize) -> (OllamaTestServer, OllamaTestServer, Arc<AtomicUsize>) {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    student.set_handler(move |_| {
        if n.fetch_add(1, Ordering::SeqCst) < smoky {
            Reply::text("Smoke rises from a pan on the stove.\nCONFIDENCE: 0.9")
        } else {
            Reply::text("A quiet kitchen.\nCONFIDENCE: 0.9")
        }
    });
    teacher.set_handler(|_| Reply::text(SMOKE_VERDICT));
    (student, teacher, calls)
}

fn history(cfg: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(cfg)
        .arg("history")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn notify_config(dir: &Path) -> String {
    format!(
        "[incidents]\ngap_secs = 5\n[notify]\nmin_interval_secs = 0\ncommand = \"echo \\\"$GEMMAEDGE_CHANGE $GEMMAEDGE_INCIDENT $GEMMAEDGE_LEVEL $GEMMAEDGE_TITLE\\\" >> {}\"\n",
        dir.join("alerts.txt").display()
    )
}

#[test]
fn a_pan_smoking_over_40_frames_is_one_incident_with_one_open_and_one_close_alert() {
    let (_student, teacher, calls) = servers(40);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        &_student.url(),
        &teacher.url(),
        &notify_config(d.path()),
    );
    let child = headless(&cfg, &[]);
    let file = d.path().join("alerts.txt");
    let closed = wait_until(Duration::from_secs(40), || {
        file_lines(&file).iter().any(|l| l.starts_with("close"))
    });
    let out = stop(child);
    assert!(closed, "no close alert: {:?}\n{out}", file_lines(&file));
    assert!(
        calls.load(Ordering::SeqCst) > 40,
        "the quiet frames came after"
    );
    let verdicts = teacher.chat_requests().len();
    assert!(
        verdicts >= 20,
        "most smoky frames were reviewed: {verdicts}"
    );
    assert_eq!(
        file_lines(&file),
        vec![
            "open 1 1 Pan smoking on the stove".to_string(),
            "close 1 1 Pan smoking on the stove".to_string()
        ],
        "{out}"
    );
    assert!(
        out.contains("incident #1 opened (worth a look): Pan smoking on the stove"),
        "{out}"
    );
    // The store has it, from a shell.
    let (code, json, err) = history(&cfg, &["--incidents", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{json}");
    assert_eq!(lines[0]["item"], "incident");
    assert_eq!(lines[0]["level"], 1);
    assert!(lines[0]["closed_at"].is_string());
    assert!(lines[0]["frames"].as_u64().unwrap() >= 20);
    // Search is data: a quote and a % are just text.
    let (code, json, _) = history(&cfg, &["--search", "pan on the stove", "--json"]);
    assert_eq!(code, Some(0));
    assert!(json.lines().count() >= 20, "{json}");
    let (code, json, _) = history(&cfg, &["--search", "'; DROP TABLE frames; --", "--json"]);
    assert_eq!((code, json.as_str()), (Some(0), ""));
    let (code, table, _) = history(&cfg, &["--since", "1h"]);
    assert_eq!(code, Some(0));
    assert!(table.contains("incident #1"), "{table}");
    assert!(table.contains("teacher agrees"), "{table}");
    let (code, _, err) = history(&cfg, &["--since", "yesterday"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("12h"), "{err}");
}

#[test]
fn an_open_incident_survives_a_restart_and_closes_after_it() {
    let (student, teacher, _) = servers(usize::MAX);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &notify_config(d.path()),
    );
    let file = d.path().join("alerts.txt");
    let child = headless(&cfg, &[]);
    assert!(wait_until(Duration::from_secs(20), || !file_lines(&file).is_empty()));
    let _ = stop(child);
    assert_eq!(file_lines(&file), vec!["open 1 1 Pan smoking on the stove"]);
    // Restarted with a quiet kitchen: the incident from before goes on and closes once its
    // gap has passed — one close, no second open.
    let (student, teacher, _) = servers(0);
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &notify_config(d.path()),
    );
    let child = headless(&cfg, &[]);
    let closed = wait_until(Duration::from_secs(20), || file_lines(&file).len() >= 2);
    let out = stop(child);
    assert!(closed, "{out}");
    // The faces were told at start that it is still open (a `join` with no frame), so
    // MQTT's alert state and the console know it before it closes.
    let log = support::session_log(d.path());
    let restarted = log.iter().rposition(|e| e["type"] == "started").unwrap();
    let first_incident = log[restarted..]
        .iter()
        .find(|e| e["type"] == "incident")
        .unwrap_or_else(|| panic!("an incident event after the restart: {out}"));
    assert_eq!(first_incident["change"], "join", "{first_incident}");
    assert_eq!(first_incident["id"], 1);
    assert_eq!(
        file_lines(&file),
        vec![
            "open 1 1 Pan smoking on the stove",
            "close 1 1 Pan smoking on the stove"
        ]
    );
    let (_, json, _) = history(&cfg, &["--incidents", "--json"]);
    assert_eq!(json.lines().count(), 1, "{json}");
}

#[test]
fn a_garbage_file_is_moved_aside_and_a_newer_store_refused() {
    let (student, teacher, _) = servers(0);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let logs = d.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let db = logs.join("history.db");
    std::fs::write(&db, b"garbage, not a database\n".repeat(100)).unwrap();
    let (code, text) = headless_to_end(&cfg, &["--max-frames", "3"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("could not be read (not an SQLite database): moved aside to"),
        "{text}"
    );
    let aside: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("history.db.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let (code, json, err) = history(&cfg, &["--all", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        json.lines().count() >= 3,
        "a fresh store with this run: {json}"
    );

    // A store from a newer version: refused with its path and version, never rewritten;
    // monitoring goes on without history.
    {
        let c = rusqlite::Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA user_version = 42;").unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let (code, _, err) = history(&cfg, &[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("schema version 42") && err.contains(&db.display().to_string()),
        "{err}"
    );
    let (code, text) = headless_to_end(&cfg, &["--max-frames", "2"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("history is off (monitoring goes on)"),
        "{text}"
    );
    assert!(
        text.contains("newer gemmaedge-tui (schema version 42"),
        "{text}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "never rewritten");
}

#[test]
fn sigkill_while_writing_leaves_a_sound_store() {
    let (student, teacher, _) = servers(usize::MAX);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let db = d.path().join("logs/history.db");
    let mut last = 0i64;
    for round in 0..5u64 {
        let mut child = headless(&cfg, &[]);
        std::thread::sleep(Duration::from_millis(1200 + round * 300));
        child.kill().unwrap();
        let _ = child.wait();
        let c = rusqlite::Connection::open(&db).unwrap();
        let ok: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok", "round {round}");
        let n: i64 = c
            .query_row("SELECT count(*) FROM frames", [], |r| r.get(0))
            .unwrap();
        assert!(n >= last, "rows are never lost once committed");
        last = n;
    }
    assert!(last > 0, "each run committed its rows within a second");
}

#[test]
fn import_of_session_logs_is_idempotent() {
    let (student, teacher, _) = servers(2);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let out = Command::new(BIN)
        .args(["--headless", "--max-frames", "6", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    // Into another store, twice.
    let other = d.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let cfg2 = write_config(
        &other,
        &student.url(),
        &teacher.url(),
        &format!(
            "[history]\npath = \"{}\"\n",
            other.join("imported.db").display()
        ),
    );
    let run = || {
        let out = Command::new(BIN)
            .arg("--config")
            .arg(&cfg2)
            .args(["history", "import"])
            .arg(d.path().join("logs"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run();
    assert!(first.contains("6 new frames"), "{first}");
    let second = run();
    assert!(second.contains(", 0 new frames"), "{second}");
    let (_, a, _) = history(&cfg, &["--all", "--json"]);
    let (_, b, _) = history(&cfg2, &["--all", "--json"]);
    let frames = |s: &str| {
        s.lines()
            .filter(|l| l.contains("\"item\":\"frame\""))
            .count()
    };
    assert_eq!(frames(&a), 6);
    assert_eq!(frames(&b), 6);
}

#[test]
fn a_file_size_limit_pauses_history_and_monitoring_goes_on() {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let (student, _teacher, calls) = servers(0);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &_teacher.url(), "");
    // The store exists (made without a limit, closed cleanly).
    let out = Command::new(BIN)
        .args(["--headless", "--max-frames", "2", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !d.path().join("logs/history.db-wal").exists(),
        "closed: WAL checkpointed"
    );
    let mut cmd = Command::new(BIN);
    cmd.args(["--headless", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // No file may grow past 256 KiB (SIGXFSZ ignored, so a write fails with EFBIG as on a
    // full disk instead of killing the process): the store's WAL reaches it in seconds.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit {
                rlim_cur: 256 * 1024,
                rlim_max: 256 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    let paused = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(l) => {
                let hit = l.contains("history paused: ");
                seen.push(l);
                if hit {
                    break true;
                }
            }
            Err(_) if Instant::now() > deadline => break false,
            Err(_) => {}
        }
    };
    let at_pause = calls.load(Ordering::SeqCst);
    // Monitoring goes on past it.
    let went_on = wait_until(Duration::from_secs(20), || {
        calls.load(Ordering::SeqCst) > at_pause + 20
    });
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    let tail = seen[seen.len().saturating_sub(10)..].join("\n");
    assert!(paused, "{tail}");
    assert!(went_on, "{tail}");
    assert!(
        seen.iter()
            .any(|l| l.contains("monitoring goes on, history resumes when a write works again")),
        "{tail}"
    );
}

/// The console of its own (no service): its requests go to the hub in its process, which
/// answers from the store off the engine's threads, as the service does for an attached
/// console: a page, an incident's frames, a frame's JPEG, and the "while you were away"
/// summary (none on a first visit; the span since this user's consoles were last seen when
/// that was over 10 minutes ago).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_with_its_own_engine_reads_history_and_the_away_summary_through_its_hub() {
    use gemmaedge_tui::engine::EngineOptions;
    use gemmaedge_tui::history::query::{Filter, Item};
    use gemmaedge_tui::service::attach::{open, EngineLink};
    use gemmaedge_tui::service::protocol::{ClientMsg, ServerMsg};

    async fn answer(
        link: &mut EngineLink,
        what: &str,
        f: impl Fn(&ServerMsg) -> bool,
    ) -> ServerMsg {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let batch = tokio::time::timeout_at(deadline, link.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what}"))
                .expect("the hub is running");
            if let Some(m) = batch.into_iter().find(|m| f(m)) {
                return m;
            }
        }
    }

    let (student, teacher, _calls) = servers(3);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let config = gemmaedge_tui::config::Config::load_file(&cfg).unwrap();
    let mut link = open(
        &config,
        &d.path().join("no-service.sock"),
        true,
        "console",
        EngineOptions::default(),
    )
    .await
    .unwrap();
    assert!(link.attached().is_none(), "its own engine");
    // First visit: no summary; the arrival is recorded.
    link.send(ClientMsg::Away);
    let m = answer(&mut link, "away", |m| matches!(m, ServerMsg::Away { .. })).await;
    assert!(matches!(m, ServerMsg::Away { summary: None }), "{m:?}");
    // An incident with its frames in the store.
    let store = d.path().join("logs/history.db");
    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&store)
            .and_then(|c| c.query_row(sql, [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let began = Instant::now();
    while count("SELECT count(*) FROM frames WHERE incident_id = 1 AND frame_path IS NOT NULL") == 0
    {
        assert!(
            began.elapsed() < Duration::from_secs(30),
            "no incident frame in the store"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A page of incidents.
    link.send(ClientMsg::History {
        filter: Filter {
            incidents_only: true,
            ..Filter::default()
        },
        after: None,
        limit: 10,
    });
    let ServerMsg::History { result } = answer(&mut link, "a page", |m| {
        matches!(m, ServerMsg::History { .. })
    })
    .await
    else {
        unreachable!()
    };
    let page = result.unwrap();
    assert!(
        matches!(&page.items[..], [Item::Incident(i)] if i.id == 1 && i.title == "Pan smoking on the stove"),
        "{page:?}"
    );
    // Its frames, and a frame's JPEG.
    link.send(ClientMsg::HistoryDetail { incident: 1 });
    let ServerMsg::HistoryDetail { result } = answer(&mut link, "the detail", |m| {
        matches!(m, ServerMsg::HistoryDetail { .. })
    })
    .await
    else {
        unreachable!()
    };
    let detail = result.unwrap();
    assert_eq!(detail.incident.id, 1);
    let with_frame = detail
        .frames
        .iter()
        .find(|f| f.frame_path.is_some())
        .expect("a saved frame");
    assert!(with_frame.answer.as_deref().unwrap_or("").contains("Smoke"));
    link.send(ClientMsg::HistoryFrame { id: with_frame.id });
    let ServerMsg::HistoryFrame { id, result } = answer(&mut link, "the frame", |m| {
        matches!(m, ServerMsg::HistoryFrame { .. })
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(id, with_frame.id);
    assert_eq!(&result.unwrap()[..2], &[0xff, 0xd8], "a JPEG");
    // Back after an hour away: the summary of that hour names the incident.
    let uid = unsafe { libc::getuid() };
    let c = rusqlite::Connection::open(&store).unwrap();
    c.busy_timeout(Duration::from_secs(5)).unwrap();
    c.execute(
        "UPDATE meta SET value = ?1 WHERE key = ?2",
        [
            (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
            format!("console_left:{uid}"),
        ],
    )
    .unwrap();
    drop(c);
    link.send(ClientMsg::Away);
    let ServerMsg::Away { summary } =
        answer(&mut link, "away", |m| matches!(m, ServerMsg::Away { .. })).await
    else {
        unreachable!()
    };
    let s = summary.expect("a summary after an hour away");
    assert_eq!(s.incidents.len(), 1);
    assert_eq!(s.incidents[0].title, "Pan smoking on the stove");
    assert!(
        s.escalations
            .iter()
            .any(|(t, n)| t.starts_with("safety") && *n > 0),
        "{s:?}"
    );
    // `here` answers, and moves the clock: arriving again now is no summary.
    link.send(ClientMsg::Here);
    answer(&mut link, "here", |m| matches!(m, ServerMsg::Here)).await;
    link.send(ClientMsg::Away);
    let m = answer(&mut link, "away", |m| matches!(m, ServerMsg::Away { .. })).await;
    assert!(matches!(m, ServerMsg::Away { summary: None }), "{m:?}");
    link.close().await;
}
