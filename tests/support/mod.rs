//! Shared helpers for integration tests. Each test binary compiles this module on its own,
//! so helpers unused by one binary must not warn.
#![allow(dead_code)]

pub mod mosquitto;
pub mod ollama_server;
pub mod openai_server;
pub mod real_server;
pub mod serve;

use gemmaedge_tui::config::{Config, SourceKind};
use std::path::{Path, PathBuf};

/// Student and teacher models of the engine tests against the Ollama test server.
pub const STUDENT: &str = "gemma4:e2b";
pub const TEACHER: &str = "gemma4:26b";

/// The shipped sample photos.
pub fn photos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/images")
}

/// Engine config against test servers at `student` and `teacher` (URLs) running [`STUDENT`]
/// and [`TEACHER`], requests timing out after `timeout_secs`: the folder source on
/// [`photos`] at 50 fps, every frame to the student (no change gate, no audits), logs,
/// skills and eval under `dir`.
pub fn engine_config(dir: &Path, student: &str, teacher: &str, timeout_secs: u64) -> Config {
    let mut c = Config::default();
    c.student.host = student.to_string();
    c.student.model = STUDENT.into();
    c.student.timeout_secs = timeout_secs;
    c.teacher.host = teacher.to_string();
    c.teacher.model = TEACHER.into();
    c.teacher.timeout_secs = timeout_secs;
    c.source.kind = SourceKind::Folder;
    c.source.path = photos().to_string_lossy().into_owned();
    c.source.fps = 50.0;
    // The change gate has its own test; here every frame goes to the student.
    c.source.min_change = 0.0;
    c.policy.audit_every = 0;
    c.paths.logs = dir.join("logs");
    c.paths.skills = dir.join("skills");
    c.paths.eval = dir.join("eval");
    c
}

/// Every line of the session logs under `dir/logs`, oldest session first (their names
/// sort by start time).
pub fn session_log(dir: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("logs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for p in files {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            out.push(serde_json::from_str(line).expect("every log line is JSON"));
        }
    }
    out
}

pub fn of_type<'a>(log: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    log.iter().filter(|v| v["type"] == t).collect()
}

/// The config file the stand-in tests run the binary with, as text: both roles on the test
/// servers at `student` and `teacher` ([`STUDENT`], [`TEACHER`], 5 s timeouts), the folder
/// `source` at 20 fps (`min_change = 0.0` when `every_frame`: no change gate), no audits,
/// skills and logs under `dir`, the eval set at `eval`; `extra` at the end.
pub fn stand_in_config(
    dir: &Path,
    student: &str,
    teacher: &str,
    source: &Path,
    eval: &Path,
    every_frame: bool,
    extra: &str,
) -> String {
    format!(
        r#"[student]
host = "{student}"
model = "{STUDENT}"
timeout_secs = 5
[teacher]
host = "{teacher}"
model = "{TEACHER}"
timeout_secs = 5
[source]
kind = "folder"
path = "{source}"
fps = 20.0
{gate}[policy]
audit_every = 0
[paths]
skills = "{skills}"
eval = "{eval}"
logs = "{logs}"
{extra}
"#,
        gate = if every_frame {
            "min_change = 0.0\n"
        } else {
            ""
        },
        source = source.display(),
        skills = dir.join("skills").display(),
        eval = eval.display(),
        logs = dir.join("logs").display(),
    )
}
