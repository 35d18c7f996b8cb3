//! `gemmaedge-tui upskill` from a shell: a terminal gets the redrawn progress bar, a pipe
//! or a file one plain line per phase (no `\r` drawn into a log), and the run report's
//! path is printed either way.

mod support;

use expectrl::session::OsSession;
use expectrl::Session;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Servers: a student that answers every case the same, a teacher with one candidate.
fn servers() -> (OllamaTestServer, OllamaTestServer) {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student.set_handler(|_| Reply::text("A person and a desk.\nCONFIDENCE: 0.8"));
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    teacher.set_handler(|_| Reply::text(r#"{"prompts": ["Describe every person and object."]}"#));
    (student, teacher)
}

fn write_config(dir: &Path, student: &str, teacher: &str) -> PathBuf {
    let skills = dir.join("skills");
    std::fs::create_dir_all(&skills).unwrap();
    std::fs::copy(repo().join("skills/skill.txt"), skills.join("skill.txt")).unwrap();
    let p = dir.join("config.toml");
    std::fs::write(
        &p,
        format!(
            "[student]\nhost = \"{student}\"\nmodel = \"{STUDENT}\"\ntimeout_secs = 10\n\
             [teacher]\nhost = \"{teacher}\"\nmodel = \"{TEACHER}\"\ntimeout_secs = 10\n\
             [upskill]\ncandidates = 1\nbootstrap_samples = 100\n\
             [paths]\nskills = \"{}\"\neval = \"{}\"\nlogs = \"{}\"\n",
            skills.display(),
            repo().join("eval").display(),
            dir.join("logs").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn to_a_pipe_upskill_writes_one_plain_line_per_phase() {
    let (s, t) = servers();
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &s.url(), &t.url());
    let out = Command::new(BIN)
        .args(["upskill", "--yes", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    assert!(
        !stderr.contains('\r'),
        "no bar redrawn into a pipe: {stderr:?}"
    );
    assert!(
        stderr.contains("upskill: scoring the current skill"),
        "{stderr}"
    );
    assert!(
        stderr.contains("upskill: scoring candidate 1 of 1"),
        "{stderr}"
    );
    assert!(stderr.contains("upskill: row 1 scored: train"), "{stderr}");
    let report = stderr
        .lines()
        .find_map(|l| l.strip_prefix("upskill: run report "))
        .unwrap_or_else(|| panic!("the report path: {stderr}"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(v["status"], "finished");
    assert!(!stdout.contains("+-"), "signed once: {stdout}");
}

#[test]
fn on_a_terminal_upskill_draws_its_progress_bar() {
    let (s, t) = servers();
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &s.url(), &t.url());
    let mut cmd = Command::new(BIN);
    cmd.args(["upskill", "--yes", "--config"]).arg(&cfg);
    let mut session: OsSession = Session::spawn(cmd).expect("spawn in a pty");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match session.try_read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break, // EIO: the child closed its side
        }
        assert!(Instant::now() < deadline, "upskill ended in time");
    }
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("\r["),
        "the bar is redrawn in place: {text:?}"
    );
    assert!(
        text.contains("] 50/50"),
        "the bar reaches the end: {text:?}"
    );
    assert!(text.contains("upskill: run report "), "{text:?}");
}

/// A student that never writes the confidence line: `upskill` says so before scoring any
/// candidate, and the result table, `eval` and `eval --json` show the share per row.
#[test]
fn a_student_without_the_confidence_line_is_warned_about_and_shown_per_row() {
    let (s, t) = servers();
    s.set_handler(|_| Reply::text("A person and a desk. No safety concerns."));
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), &s.url(), &t.url());
    let out = Command::new(BIN)
        .args(["upskill", "--yes", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{stdout}");
    let warning = "upskill: warning: 0 of 25 answers ended with a confidence line: every live frame would escalate";
    let at = stderr
        .find(warning)
        .unwrap_or_else(|| panic!("the warning: {stderr}"));
    let scoring = stderr.find("upskill: scoring candidate 1").unwrap();
    assert!(at < scoring, "said before scoring candidates: {stderr}");
    assert!(
        stderr.contains("upskill: row 0 scored: train 0.")
            && stderr.contains("confidence line 0/25"),
        "{stderr}"
    );
    // The result table has the column, and the warning is repeated with the result.
    let header = stdout.lines().find(|l| l.contains("holdout")).unwrap();
    assert!(header.contains("conf line"), "{stdout}");
    let current = stdout
        .lines()
        .find(|l| l.contains("current skill"))
        .unwrap();
    assert!(current.contains("0/25"), "{stdout}");
    assert!(
        stdout.contains("warning: the current skill: 0 of 25 answers ended with a confidence line"),
        "{stdout}"
    );
    // The run report keeps it.
    let report = stderr
        .lines()
        .find_map(|l| l.strip_prefix("upskill: run report "))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    assert_eq!(
        v["warnings"][0],
        warning.strip_prefix("upskill: warning: ").unwrap()
    );
    assert_eq!(
        v["rows"][0]["format"],
        serde_json::json!({"ok": 0, "of": 25})
    );

    // eval: the totals line says the share, and warns.
    let out = Command::new(BIN)
        .args(["eval", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("confidence line 0/25"), "{stdout}");
    assert!(
        stdout.contains("warning: 0 of 25 answers ended with a confidence line: every live frame would escalate"),
        "{stdout}"
    );
    // eval --json: the share as numbers.
    let out = Command::new(BIN)
        .args(["eval", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], serde_json::json!({"ok": 0, "of": 25}));
    // With the line, the share is whole and nothing is said.
    s.set_handler(|_| Reply::text("A person and a desk.\nCONFIDENCE: 0.8"));
    let out = Command::new(BIN)
        .args(["eval", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("confidence line 25/25"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
}
