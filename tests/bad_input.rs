//! Security and bad input (issue 19): crafted session logs, hostile model text, device
//! files and FIFOs as input, escapes in local files, a hostile server. Each test names the
//! point of the issue it covers and fails without its fix.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const STUDENT: &str = support::STUDENT;
const TEACHER: &str = support::TEACHER;

fn photos() -> PathBuf {
    support::photos()
}

/// A config for the real binary: folder source `source`, eval dir `eval`, logs and skills
/// under `dir`, plus `extra` TOML.
fn write_config(
    dir: &Path,
    student: &str,
    teacher: &str,
    source: &Path,
    eval: &Path,
    extra: &str,
) -> PathBuf {
    let p = dir.join("config.toml");
    let text = support::stand_in_config(dir, student, teacher, source, eval, true, extra);
    std::fs::write(&p, text).unwrap();
    p
}

/// Run to the end, but kill it (and fail) when it takes longer than `limit`.
fn run_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// At most `bytes` of address space for the child: without the fix, reading /dev/zero
/// would otherwise eat the test machine's memory instead of failing the test.
fn limit_memory(cmd: &mut Command, bytes: u64) -> &mut Command {
    use std::os::unix::process::CommandExt;
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        p.display()
    );
}

/// Bytes a terminal would obey: ESC, BEL, CSI/OSC in 8 bits, and the other C1 controls.
fn has_raw_controls(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    text.chars().any(|c| {
        (c.is_control() && c != '\n' && c != '\t' && c != '\r')
            || ('\u{80}'..='\u{9f}').contains(&c)
    })
}

fn sigterm(child: &Child) {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
}

/// Wait for the child to exit within `limit` after a SIGTERM; its exit status.
fn exits_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let began = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            panic!("did not exit within {limit:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------
// 1. learn --from LOG
// ------------------------------------------------------------------------------------------

fn log_lines(session: &str, seq: u64, frame: &str) -> Vec<String> {
    vec![
        serde_json::json!({"type": "student_answer", "session": session, "seq": seq,
            "answer": "A blurry thing.", "confidence": 0.3, "skill": "skill.txt", "reasons": []})
        .to_string(),
        serde_json::json!({"type": "escalated", "session": session, "seq": seq,
            "frame_path": frame, "reasons": [], "queue_len": 1})
        .to_string(),
        serde_json::json!({"type": "teacher_verdict", "session": session, "seq": seq,
            "verdict": {"agrees": false, "safety_relevant": false, "summary": "A cat on a sofa.",
                        "missed": ["cat"], "wrong": ["blurry thing"]}})
        .to_string(),
    ]
}

#[test]
fn point1_learn_refuses_a_crafted_log_and_writes_only_into_images_learned() {
    let d = tempfile::tempdir().unwrap();
    let work = d.path().join("work");
    let eval = work.join("eval");
    let logs = work.join("logs");
    let frames = logs.join("frames");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"hand\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n",
    )
    .unwrap();
    let secret = d.path().join("secret.txt");
    std::fs::write(&secret, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let good = frames.join("20261128-093012-000005.jpg");
    image::RgbImage::new(16, 16).save(&good).unwrap();
    let link = frames.join("20261128-093012-000004.jpg");
    std::os::unix::fs::symlink(&secret, &link).unwrap();
    let text_frame = frames.join("20261128-093012-000007.jpg");
    std::fs::write(&text_frame, "not a jpeg").unwrap();

    let s = "20261128-093012";
    let mut lines = Vec::new();
    // The review's exploit: a session that climbs out, a frame that is any readable file.
    lines.extend(log_lines("a/../../../x", 1, secret.to_str().unwrap()));
    lines.extend(log_lines(s, 2, "/etc/passwd"));
    lines.extend(log_lines(s, 3, secret.to_str().unwrap()));
    lines.extend(log_lines(s, 4, link.to_str().unwrap()));
    lines.extend(log_lines(s, 5, good.to_str().unwrap()));
    lines.extend(log_lines(
        "20261128-\u{1b}]0;pwned\u{7}",
        6,
        good.to_str().unwrap(),
    ));
    lines.extend(log_lines(s, 7, text_frame.to_str().unwrap()));
    let log = logs.join("session-20261128.jsonl");
    std::fs::write(&log, lines.join("\n") + "\n").unwrap();

    // (The config's logs dir is `work/logs`, where the log and its frames are.)
    let cfg = write_config(
        &work,
        "http://127.0.0.1:9",
        "http://127.0.0.1:9",
        &photos(),
        &eval,
        "",
    );
    let out = run_within(
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["learn", "--from"])
            .arg(&log),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One frame was added, so the run succeeded (issue 23: non-zero only when nothing could
    // be added); the refusals are counted on stdout and each is named on stderr.
    assert_eq!(
        out.status.code(),
        Some(0),
        "added one, refused six\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("added 1 case(s)"), "{stdout}\n{stderr}");
    assert!(stdout.contains("6 refused"), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("refused").count(),
        7,
        "six frames and the total: {stderr}"
    );
    assert!(
        stderr.contains("session id") && stderr.contains("YYYYMMDD-HHMMSS"),
        "{stderr}"
    );
    assert!(
        stderr.contains("/etc/passwd is not in the logs' frames directory"),
        "{stderr}"
    );
    assert!(stderr.contains("is not a JPEG"), "{stderr}");
    assert!(
        !has_raw_controls(&out.stderr) && !has_raw_controls(&out.stdout),
        "{stderr:?}"
    );

    // Nothing written outside eval/images/learned, nothing but the good frame inside.
    assert!(!work.join("x-000001.jpg").exists());
    assert!(!d.path().join("x-000001.jpg").exists());
    let learned_dir = eval.join("images/learned");
    let written: Vec<String> = std::fs::read_dir(&learned_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        written,
        vec!["learned-20261128-093012-000005.jpg".to_string()]
    );
    assert_eq!(
        std::fs::read(learned_dir.join(&written[0])).unwrap(),
        std::fs::read(&good).unwrap()
    );
    // The eval set still loads (the learned case included) and `check` is not blocked.
    let set = gemmaedge_tui::eval::cases::load_eval_set(&eval).unwrap();
    assert_eq!(set.cases.len(), 2);
}

// ------------------------------------------------------------------------------------------
// 2, 3. Notifications
// ------------------------------------------------------------------------------------------

mod notify {
    use super::support;
    use gemmaedge_tui::engine::{self, EngineOptions};
    use gemmaedge_tui::event::{Command, Event};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use support::ollama_server::{OllamaTestServer, Reply};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    /// A local HTTP receiver: every POST body goes to the channel; the first `fail_first`
    /// requests are answered 500, the rest 200.
    async fn receiver(
        fail_first: u64,
    ) -> (String, mpsc::UnboundedReceiver<(u16, serde_json::Value)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        let (tx, rx) = mpsc::unbounded_channel();
        let n = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (tx, n) = (tx.clone(), n.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let got = sock.read(&mut chunk).await.unwrap_or(0);
                        if got == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..got]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(i) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let len: usize = text[..i]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() < i + 4 + len {
                            continue;
                        }
                        let body = serde_json::from_slice(&buf[i + 4..i + 4 + len]).unwrap();
                        let status = if n.fetch_add(1, Ordering::SeqCst) < fail_first {
                            500
                        } else {
                            200
                        };
                        let _ = tx.send((status, body));
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(head.as_bytes()).await;
                        return;
                    }
                });
            }
        });
        (url, rx)
    }

    async fn servers(summary: &'static str) -> (OllamaTestServer, OllamaTestServer) {
        let student = OllamaTestServer::start(&[support::STUDENT]).await;
        let teacher = OllamaTestServer::start(&[support::TEACHER]).await;
        student.set_handler(|_| Reply::text("Smoke near the stove.\nCONFIDENCE: 0.9"));
        // The first verdict carries `summary`; the ones after it are ordinary.
        let n = Arc::new(AtomicU64::new(0));
        teacher.set_handler(move |_| {
            let s = if n.fetch_add(1, Ordering::SeqCst) == 0 {
                summary
            } else {
                "Smoke rises from a pan."
            };
            Reply::text(
                serde_json::json!({"agrees": false, "safety_relevant": true, "summary": s,
                    "missed": ["pan"], "wrong": []})
                .to_string(),
            )
        });
        (student, teacher)
    }

    #[tokio::test]
    async fn point2_a_nul_in_the_verdict_does_not_silence_the_alerts() {
        let (student, teacher) = servers("Smoke\u{0}").await;
        let dir = tempfile::tempdir().unwrap();
        let mut c = support::engine_config(dir.path(), &student.url(), &teacher.url(), 5);
        c.source.fps = 20.0;
        c.notify.min_interval_secs = 3600;
        let out = dir.path().join("alerts.txt");
        c.notify.command = format!(
            "printf '%s|%s\\n' \"$GEMMAEDGE_SEQ\" \"$GEMMAEDGE_SUMMARY\" >> {}",
            out.display()
        );
        let mut h = engine::start(c, EngineOptions::default()).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut notified = Vec::new();
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
            match ev {
                Event::Notified { seq, .. } => {
                    notified.push(seq);
                    break;
                }
                Event::Warning { message } if message.contains("notification") => {
                    panic!("the alert failed: {message}")
                }
                _ => {}
            }
        }
        h.commands.send(Command::Shutdown).unwrap();
        let _ = h.task.await;
        assert_eq!(notified.len(), 1, "one alert went out");
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            text,
            format!("{}|Smoke\n", notified[0]),
            "the NUL is gone, the rest is kept"
        );
    }

    #[tokio::test]
    async fn point2_a_failed_send_does_not_take_the_rate_limit_slot() {
        let (student, teacher) = servers("Smoke rises from a pan.").await;
        // The webhook is down for the first request only.
        let (url, mut posts) = receiver(1).await;
        let dir = tempfile::tempdir().unwrap();
        let mut c = support::engine_config(dir.path(), &student.url(), &teacher.url(), 5);
        c.source.fps = 20.0;
        c.notify.webhook = url;
        c.notify.min_interval_secs = 3600;
        let mut h = engine::start(c, EngineOptions::default()).unwrap();
        let (first, _) = tokio::time::timeout(Duration::from_secs(10), posts.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, 500);
        // Within the interval, another confirmed frame (or the retry) still reaches someone.
        let (second, body) = tokio::time::timeout(Duration::from_secs(10), posts.recv())
            .await
            .expect("a second alert after the failed one")
            .unwrap();
        assert_eq!(second, 200);
        assert_eq!(body["summary"], "Smoke rises from a pan.");
        // Then the interval holds: nothing more.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            posts.try_recv().is_err(),
            "rate-limited after the one that worked"
        );
        let mut notified = 0;
        while let Ok(ev) = h.events.try_recv() {
            if matches!(ev, Event::Notified { .. }) {
                notified += 1;
            }
        }
        assert_eq!(notified, 1);
        h.commands.send(Command::Shutdown).unwrap();
        let _ = h.task.await;
    }

    #[tokio::test]
    async fn point3_notify_values_are_one_line_of_printable_text() {
        let hostile = "Smoke\u{1b}]52;c;cm0gLXJmIH4=\u{7} rises\n\nfrom a pan\u{9b}2J \u{202e}* $(id) `id`\r\n";
        let (student, teacher) = servers(hostile).await;
        let (url, mut posts) = receiver(0).await;
        let dir = tempfile::tempdir().unwrap();
        let mut c = support::engine_config(dir.path(), &student.url(), &teacher.url(), 5);
        c.notify.webhook = url;
        c.notify.min_interval_secs = 3600;
        let out = dir.path().join("env.txt");
        c.notify.command = format!(
            "printf '%s' \"$GEMMAEDGE_SUMMARY\" > {0}.summary; printf '%s' \"$GEMMAEDGE_JSON\" > {0}.json",
            out.display()
        );
        let mut h = engine::start(c, EngineOptions::default()).unwrap();
        let (_, body) = tokio::time::timeout(Duration::from_secs(10), posts.recv())
            .await
            .unwrap()
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, h.events.recv()).await {
            if matches!(ev, Event::Notified { .. }) {
                break;
            }
        }
        h.commands.send(Command::Shutdown).unwrap();
        let _ = h.task.await;
        let want = "Smoke rises from a pan * $(id) `id`";
        assert_eq!(body["summary"], want);
        let summary = std::fs::read_to_string(format!("{}.summary", out.display())).unwrap();
        assert_eq!(summary, want);
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{}.json", out.display())).unwrap(),
        )
        .unwrap();
        assert_eq!(json["summary"], want);
    }
}

// ------------------------------------------------------------------------------------------
// 4. Device files and FIFOs
// ------------------------------------------------------------------------------------------

#[test]
fn point4_dev_zero_as_source_skill_or_eval_skill_is_refused_at_once() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &photos(),
        &photos().join(".."),
        "",
    );
    // --source /dev/zero
    const GIB: u64 = 1024 * 1024 * 1024;
    let out = run_within(
        limit_memory(
            Command::new(BIN)
                .args([
                    "--headless",
                    "--max-frames",
                    "1",
                    "--source",
                    "/dev/zero",
                    "--config",
                ])
                .arg(&cfg),
            2 * GIB,
        ),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("character device"),
        "{err}"
    );
    // eval --skill /dev/zero
    let out = run_within(
        limit_memory(
            Command::new(BIN)
                .arg("--config")
                .arg(&cfg)
                .args(["eval", "--skill", "/dev/zero"]),
            2 * GIB,
        ),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot read skill file /dev/zero") && err.contains("character device"),
        "{err}"
    );
    // skills/skill.txt -> /dev/zero: the built-in skill is used, memory stays put.
    std::fs::create_dir_all(d.path().join("skills")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", d.path().join("skills/skill.txt")).unwrap();
    let out = run_within(
        limit_memory(
            Command::new(BIN)
                .args(["--headless", "--max-frames", "2", "--config"])
                .arg(&cfg),
            2 * GIB,
        ),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("skill built-in"), "{text}");
    assert!(text.contains("stopped after 2 answers"), "{text}");
}

#[test]
fn point4_a_fifo_in_the_folder_is_skipped_and_sigterm_still_ends_the_run() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    student.set_handler(|_| Reply::text("A cup of coffee. No safety concerns.\nCONFIDENCE: 0.9"));
    let d = tempfile::tempdir().unwrap();
    let folder = d.path().join("frames");
    std::fs::create_dir_all(&folder).unwrap();
    mkfifo(&folder.join("0-first.jpg"));
    std::fs::copy(photos().join("coffee.png"), folder.join("1-coffee.png")).unwrap();
    mkfifo(&folder.join("2-middle.jpg"));
    std::fs::copy(photos().join("rocket.jpg"), folder.join("3-rocket.jpg")).unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &folder,
        &photos().join(".."),
        "",
    );

    // `check` does not hang on it.
    let out = run_within(
        Command::new(BIN).arg("--config").arg(&cfg).arg("check"),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("folder "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.starts_with("ok") && row.contains("first: 1-coffee.png"),
        "{text}"
    );

    // Headless: both real images are taken, the FIFOs reported, SIGTERM ends it promptly.
    let mut child = Command::new(BIN)
        .args(["--headless", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Lines on a thread: a run stuck on the FIFO prints nothing more.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (mut coffee, mut rocket, mut fifo_warned) = (false, false, false);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while !(coffee && rocket && fifo_warned) {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        coffee |= line.contains(" frame 1-coffee.png");
        rocket |= line.contains(" frame 3-rocket.jpg");
        fifo_warned |= line.contains("2-middle.jpg") && line.contains("FIFO");
        seen.push(line);
    }
    if !(coffee && rocket && fifo_warned) {
        let _ = child.kill();
        panic!("frames or the FIFO warning missing: {seen:#?}");
    }
    sigterm(&child);
    let status = exits_within(&mut child, Duration::from_secs(3));
    assert_eq!(status.code(), Some(0));
}

// ------------------------------------------------------------------------------------------
// 5, 6. Escapes and invisible characters
// ------------------------------------------------------------------------------------------

#[test]
fn point5_escapes_in_eval_ids_config_keys_and_log_skill_names_never_reach_the_terminal() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student.set_handler(|_| Reply::text("A dog. No safety concerns.\nCONFIDENCE: 0.8"));
    let d = tempfile::tempdir().unwrap();
    let eval = d.path().join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    // A case id with a title-setting OSC and a screen clear: `eval` prints it as progress.
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"dog\\u001b]0;pwned\\u0007\\u001b[2J\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n",
    )
    .unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        "http://127.0.0.1:9",
        &photos(),
        &eval,
        "",
    );
    let out = run_within(
        Command::new(BIN).arg("--config").arg(&cfg).arg("eval"),
        Duration::from_secs(20),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !has_raw_controls(&out.stderr),
        "progress line: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!has_raw_controls(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dog\\x1b]0;pwned\\x07"));

    // An eval-set error echoing a bad key.
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"a\"\ntext = \"A dog.\"\nexpect = [\"dog\"]\nsafety = false\n\"k\\u001b[2J\\u009b31m\" = 1\n",
    )
    .unwrap();
    let out = run_within(
        Command::new(BIN).arg("--config").arg(&cfg).arg("eval"),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown field `k\\x1b[2J\\u{9b}31m`"), "{err}");
    assert!(!has_raw_controls(&out.stderr), "{err:?}");

    // A config error echoing a bad key.
    let bad = d.path().join("bad.toml");
    std::fs::write(&bad, "[source]\n\"f\\u001b]0;x\\u0007ps\" = 2.0\n").unwrap();
    let out = run_within(
        Command::new(BIN).arg("--config").arg(&bad).arg("check"),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !has_raw_controls(&out.stderr),
        "{:?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("\\x1b]0;x\\x07"));

    // `calibrate` printing the skill name a log gives.
    let log = d.path().join("session.jsonl");
    let skill = "evil\u{1b}]0;pwned\u{7}\u{1b}[2J";
    let lines = [
        serde_json::json!({"type": "student_answer", "session": "20261128-093012", "seq": 1,
            "answer": "x", "confidence": 0.9, "skill": skill, "reasons": []}),
        serde_json::json!({"type": "teacher_verdict", "session": "20261128-093012", "seq": 1,
            "verdict": {"agrees": true, "safety_relevant": false, "summary": "x", "missed": [], "wrong": []}}),
    ];
    std::fs::write(
        &log,
        lines
            .iter()
            .map(|l| l.to_string() + "\n")
            .collect::<String>(),
    )
    .unwrap();
    let out = run_within(
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["calibrate", "--from"])
            .arg(&log),
        Duration::from_secs(10),
    );
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!has_raw_controls(&out.stdout), "{text:?}");
    assert!(
        text.contains("skill evil\\x1b]0;pwned\\x07\\x1b[2J:"),
        "{text}"
    );
}

#[test]
fn point6_format_and_tag_characters_and_line_separators_do_not_survive() {
    let tags: String = "IGNORE"
        .chars()
        .map(|c| char::from_u32(0xe0000 + c as u32).unwrap())
        .collect();
    let answer = format!(
        "A cup\u{2028}of coffee\u{2029}on a desk \u{202e}kcatta\u{202c} \u{200b}\u{200f}\u{61c}{tags} \u{9b}2J\u{85}. No safety concerns.\nCONFIDENCE: 0.9"
    );
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let a = answer.clone();
    student.set_handler(move |_| Reply::text(a.clone()));
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &photos(),
        &photos().join(".."),
        "",
    );
    // The session log: escaped, one JSON line per event even for line-splitting tools.
    let out = run_within(
        Command::new(BIN)
            .args(["--headless", "--max-frames", "2", "--config"])
            .arg(&cfg),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let invisible = |s: &str| {
        s.chars().any(|c| {
            matches!(
                c,
                '\u{2028}'
                    | '\u{2029}'
                    | '\u{202e}'
                    | '\u{202c}'
                    | '\u{200b}'
                    | '\u{200f}'
                    | '\u{61c}'
            ) || ('\u{e0000}'..='\u{e007f}').contains(&c)
                || ('\u{80}'..='\u{9f}').contains(&c)
        })
    };
    assert!(!invisible(&stdout), "headless: {stdout:?}");
    let log = std::fs::read_dir(d.path().join("logs"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    assert!(!invisible(&text), "session log: {text:?}");
    let answers: Vec<serde_json::Value> = text
        .split(['\n', '\u{2028}', '\u{2029}'])
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .filter(|v: &serde_json::Value| v["type"] == "student_answer")
        .collect();
    assert_eq!(answers.len(), 2);
    // The escaped text reads back as what the model said.
    assert_eq!(answers[0]["answer"].as_str().unwrap(), answer);

    // `eval --json`: no raw C1 or invisible characters either.
    let out = run_within(
        Command::new(BIN)
            .arg("--config")
            .arg(&cfg)
            .args(["eval", "--json"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!invisible(&json), "eval --json: {json:?}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["cases"][0]["answer"].as_str().unwrap(), answer);
}

// ------------------------------------------------------------------------------------------
// 8. Decode limits
// ------------------------------------------------------------------------------------------

/// A PNG with only a header (IHDR of an 8-bit RGB `w x h` image, empty IDAT, IEND).
fn png_header(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for b in bytes {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = w.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[]);
    chunk(b"IEND", &[]);
    out
}

#[test]
fn point8_a_13000_square_png_is_refused_by_pixel_count_per_file() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let d = tempfile::tempdir().unwrap();
    let folder = d.path().join("frames");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("0-bomb.png"), png_header(13_000, 13_000)).unwrap();
    std::fs::copy(photos().join("coffee.png"), folder.join("1-coffee.png")).unwrap();
    let cfg = write_config(
        d.path(),
        &student.url(),
        &teacher.url(),
        &folder,
        &photos().join(".."),
        "",
    );
    // As the one source file: refused with its size and the limit.
    let out = run_within(
        Command::new(BIN)
            .args(["--headless", "--max-frames", "1", "--source"])
            .arg(folder.join("0-bomb.png"))
            .arg("--config")
            .arg(&cfg),
        Duration::from_secs(10),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        err.contains("0-bomb.png") && err.contains("13000x13000 is 169.0 MP, the limit is 25 MP"),
        "{err}"
    );
    // In a folder: that file is reported and skipped, the next one is used.
    let out = run_within(
        Command::new(BIN)
            .args(["--headless", "--max-frames", "1", "--config"])
            .arg(&cfg),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("skipping") && text.contains("0-bomb.png: image too large: 13000x13000"),
        "{text}"
    );
    assert!(text.contains(" frame 1-coffee.png"), "{text}");
}

// ------------------------------------------------------------------------------------------
// 9. A huge /api/tags
// ------------------------------------------------------------------------------------------

#[test]
fn point9_a_huge_model_list_is_an_error_not_a_memory_hog() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // 64 MB of valid JSON: a model list padded with spaces.
    let pad = 64 * 1024 * 1024;
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf);
                let body_head = br#"{"models":[{"name":"gemma4:e2b"}]"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body_head.len() + pad + 1
                );
                let _ = sock.write_all(head.as_bytes());
                let _ = sock.write_all(body_head);
                let spaces = vec![b' '; 1024 * 1024];
                for _ in 0..pad / spaces.len() {
                    if sock.write_all(&spaces).is_err() {
                        return;
                    }
                }
                let _ = sock.write_all(b"}");
            });
        }
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        &url,
        "http://127.0.0.1:9",
        &photos(),
        &photos().join(".."),
        "",
    );
    let out = run_within(
        Command::new(BIN).arg("--config").arg(&cfg).arg("check"),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text
        .lines()
        .find(|l| l.contains("student gemma4:e2b"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.starts_with("FAIL") && row.contains("/api/tags reply larger than 4 MiB"),
        "{text}"
    );
}

// ------------------------------------------------------------------------------------------
// 10. A skill pinning its confidence
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn point10_a_candidate_pinning_confidence_099_does_not_win() {
    use gemmaedge_tui::config::Config;
    use gemmaedge_tui::eval::cases::load_eval_set;
    use gemmaedge_tui::event::Role;
    use gemmaedge_tui::model::ModelClient;
    use gemmaedge_tui::upskill::pipeline::{self, UpskillContext};
    use std::sync::Arc;
    use tokio::sync::{mpsc, watch};

    const CASES: &str = r#"
[[case]]
id = "lighter"
text = "A person is holding a lighter with a visible flame."
expect = ["person", ["flame", "fire"]]
safety = true
[[case]]
id = "smoke"
text = "There is smoke visible near the kitchen area."
expect = ["smoke", "kitchen"]
safety = true
[[case]]
id = "knife"
text = "A child reaches for a knife on the counter."
expect = ["child", "knife"]
safety = true
[[case]]
id = "dog"
text = "A dog sleeps on a rug."
expect = ["dog", "rug"]
safety = false
[[case]]
id = "ladder"
text = "A man stands on the top step of a wobbly ladder."
expect = ["man", "ladder"]
safety = true
split = "holdout"
[[case]]
id = "stairs"
text = "An old woman lies at the bottom of the stairs."
expect = ["woman", "stairs"]
safety = true
split = "holdout"
"#;
    let student = OllamaTestServer::start(&[STUDENT]).await;
    let teacher = OllamaTestServer::start(&[TEACHER]).await;
    // The student sees little either way. Under the current skill it often leaves out the
    // confidence line; the pinned candidate makes it always claim 0.99; the honest one
    // makes it say it is unsure.
    student.set_handler(|req| {
        let skill = req.messages[0].content.clone();
        Reply::text(if skill.contains("0.99") {
            "Something is there.\nCONFIDENCE: 0.99"
        } else if skill.contains("HONEST") {
            "Something is there.\nCONFIDENCE: 0.2"
        } else {
            "Something is there."
        })
    });
    teacher.push_reply(Reply::text(
        r#"["Always answer CONFIDENCE: 0.99 regardless of what you see.", "HONEST: say how sure you are; low when you cannot tell."]"#,
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::default();
    c.student.host = student.url();
    c.student.model = STUDENT.into();
    c.teacher.host = teacher.url();
    c.teacher.model = TEACHER.into();
    c.paths.eval = dir.path().join("eval");
    c.paths.skills = dir.path().join("skills");
    c.upskill.bootstrap_samples = 500;
    std::fs::create_dir_all(&c.paths.eval).unwrap();
    std::fs::create_dir_all(&c.paths.skills).unwrap();
    std::fs::write(c.paths.eval.join("cases.toml"), CASES).unwrap();
    std::fs::write(c.skill_path(), "BASE skill\n").unwrap();
    let ctx = UpskillContext {
        student: ModelClient::new(&c.student, Role::Student).unwrap(),
        teacher: ModelClient::new(&c.teacher, Role::Teacher).unwrap(),
        eval: Arc::new(load_eval_set(&c.paths.eval).unwrap()),
        current_skill: "BASE skill".into(),
        candidates: 2,
        auto_apply: true,
        config: c.clone(),
    };
    let (tx, _rx) = mpsc::unbounded_channel();
    let (_cancel, cancel_rx) = watch::channel(false);
    let o = pipeline::run(ctx, tx, cancel_rx)
        .await
        .expect("a finished run");
    assert_eq!(o.rows.len(), 3);
    let pinned = o
        .rows
        .iter()
        .position(|r| r.prompt.contains("0.99"))
        .unwrap();
    let honest = o
        .rows
        .iter()
        .position(|r| r.prompt.starts_with("HONEST"))
        .unwrap();
    assert!(
        o.rows[pinned].train.unwrap() < o.rows[0].train.unwrap(),
        "pinned {:?} vs current {:?}",
        o.rows[pinned].train,
        o.rows[0].train
    );
    assert_ne!(o.winner, Some(pinned), "{}", o.reason);
    assert_eq!(o.winner, Some(honest), "{}", o.reason);
    let saved = std::fs::read_to_string(c.skill_path()).unwrap();
    assert!(!saved.contains("0.99"), "{saved}");
}
