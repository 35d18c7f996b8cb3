//! The real binary: config errors, `check`, `eval`, headless mode and signals.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn write_config(dir: &Path, student: &str, teacher: &str, extra: &str) -> PathBuf {
    let p = dir.join("config.toml");
    let text = support::stand_in_config(
        dir,
        student,
        teacher,
        &repo().join("eval/images"),
        &repo().join("eval"),
        false,
        extra,
    );
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_config_value_exits_2_naming_key_value_and_range() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    std::fs::write(&p, "[policy]\nconfidence_threshold = 1.5\n").unwrap();
    let out = Command::new(BIN)
        .args(["--headless", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("policy.confidence_threshold must be between 0.0 and 1.0, got 1.5"),
        "{err}"
    );
}

#[test]
fn toml_syntax_error_names_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    std::fs::write(&p, "[student]\nmodel = \"x\"\nhost = \n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&p)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml at line 3, column"), "{err}");
}

#[test]
fn unknown_key_suggests_the_nearest_name() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("config.toml");
    std::fs::write(&p, "[source]\nfsp = 2.0\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&p)
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown key `source.fsp`; did you mean `fps`?"),
        "{err}"
    );
}

#[test]
fn check_reports_ok_rows_and_fails_for_an_offline_teacher() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), "http://127.0.0.1:9", "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let line = |what: &str| {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what} row in {text}"))
            .to_string()
    };
    assert!(line("student gemma4:e2b").starts_with("ok"), "{text}");
    assert!(
        line("student gemma4:e2b").contains("Ollama 0.12.11"),
        "{text}"
    );
    let teacher = line("teacher gemma4:26b");
    assert!(teacher.starts_with("FAIL"), "{text}");
    assert!(teacher.contains("connection refused"), "{teacher}");
    assert!(teacher.contains("OLLAMA_HOST=0.0.0.0"), "{teacher}");
    assert!(line("eval set").starts_with("ok"), "{text}");
    assert!(line("skills dir").starts_with("ok"), "{text}");
    assert!(line("folder").starts_with("ok"), "{text}");
    // No history store yet: said, and none made.
    assert!(line("no store yet").starts_with("ok"), "{text}");
    assert!(!d.path().join("logs/history.db").exists());
    // Garbage at the store's path: the history row fails with the fix.
    std::fs::create_dir_all(d.path().join("logs")).unwrap();
    std::fs::write(d.path().join("logs/history.db"), "not a database").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let history = text
        .lines()
        .find(|l| l.contains("move the file aside"))
        .unwrap_or_else(|| panic!("no failed history row in {text}"));
    assert!(history.starts_with("FAIL"), "{history}");
}

#[test]
fn check_says_whether_each_model_is_loaded() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    // The teacher has been loaded (with the production client's load request); the
    // student has not.
    let mut host = gemmaedge_tui::config::Config::default().teacher;
    host.host = teacher.url();
    host.model = TEACHER.into();
    let client =
        gemmaedge_tui::model::ModelClient::new(&host, gemmaedge_tui::event::Role::Teacher).unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(client.load())
        .unwrap();
    assert_eq!(teacher.loaded_models(), vec![TEACHER.to_string()]);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("check")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |what: &str| {
        text.lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no {what} row in {text}"))
            .to_string()
    };
    let s = line("student model memory");
    assert!(s.starts_with("warn"), "{text}");
    assert!(
        s.contains("gemma4:e2b not loaded: the next call waits for a load (keep_alive 30m"),
        "{s}"
    );
    let t = line("teacher model memory");
    assert!(t.starts_with("ok"), "{text}");
    assert!(
        t.contains("gemma4:26b loaded (keep_alive 30m; monitoring loads it at start"),
        "{t}"
    );
    assert!(student.load_requests().is_empty(), "check loads nothing");
}

#[test]
fn eval_prints_a_table_and_totals() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student
        .set_handler(|_| Reply::text("A person with a cup. No safety concerns.\nCONFIDENCE: 0.8"));
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), "http://127.0.0.1:9", "");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["eval", "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert!(cases.len() >= 16);
    assert!(v["train"].as_f64().is_some() && v["holdout"].as_f64().is_some());
    assert_eq!(student.chat_requests().len(), cases.len());
}

#[test]
fn headless_prints_events_and_exits_cleanly_on_sigterm() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    student.set_handler(|_| {
        Reply::Delayed(
            Duration::from_millis(100),
            Box::new(Reply::text(
                "A cup of coffee. No safety concerns.\nCONFIDENCE: 0.9",
            )),
        )
    });
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    let mut child = Command::new(BIN)
        .arg("--headless")
        .arg("--config")
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains(" student 0.90 ");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("started: student gemma4:e2b")),
        "{seen:#?}"
    );
    assert!(seen.iter().any(|l| l.contains(" frame ")), "{seen:#?}");
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let began = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "exit within 2 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        rest.iter().any(|l| l.contains("stopped after")),
        "{rest:#?}"
    );
    // The log was flushed: its last line is the stop.
    let log = std::fs::read_dir(d.path().join("logs"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .unwrap()
        .path();
    let text = std::fs::read_to_string(log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "stopped");
}

#[test]
fn headless_max_frames_stops_after_that_many_answers() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &student.url(), &teacher.url(), "");
    // --max-frames counts frames taken; with the change gate off none of them is skipped as
    // unchanged, so each one taken is one answer (a loaded machine must not change that).
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("fps = 20.0", "fps = 20.0\nmin_change = 0.0"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["--headless", "--max-frames", "3", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let answers = text
        .lines()
        .filter(|l| l.contains(" student 0.90 "))
        .count();
    assert_eq!(answers, 3, "{text}");
    assert!(text.contains("stopped after 3 answers"), "{text}");
}

#[test]
fn a_malformed_eval_file_is_a_clear_error_and_nothing_runs() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let d = tempfile::tempdir().unwrap();
    let eval = d.path().join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"a\"\ntext = \"x\"\nexpect = [\"cat\"]\nsafety = false\n\n[[case]]\nid = \"b\"\nexpect = [\"dog\"]\nsafety = true\n",
    )
    .unwrap();
    let cfg = d.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[student]\nhost = \"{}\"\n[paths]\neval = \"{}\"\nskills = \"{}\"\n",
            student.url(),
            eval.display(),
            d.path().join("skills").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("eval")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cases.toml"), "{err}");
    assert!(err.contains("\"b\""), "names the case: {err}");
    assert!(
        student.chat_requests().is_empty(),
        "nothing runs on a half-read set"
    );
}

#[test]
fn upskill_refuses_to_start_when_the_skills_dir_is_not_writable() {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let d = tempfile::tempdir().unwrap();
    let blocker = d.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let cfg = d.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[student]\nhost = \"{}\"\n[teacher]\nhost = \"{}\"\n[paths]\neval = \"{}\"\nskills = \"{}\"\n",
            student.url(),
            teacher.url(),
            repo().join("eval").display(),
            blocker.join("skills").display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .args(["upskill", "--yes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not writable") && err.contains("not starting"),
        "{err}"
    );
    assert!(student.chat_requests().is_empty() && teacher.chat_requests().is_empty());
}
