//! The real-model tier's server: llama.cpp's own HTTP server (PyPI `xllamacpp`, started by
//! `tests/real_model/serve.py`), installed by `scripts/setup --tests` under
//! `target/real-model/`. Without it a test says SKIPPED loudly and passes; with
//! `GEMMAEDGE_REAL_MODEL=required` (set by `.ci/run`) a missing tier fails it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What `scripts/real-model-setup` installed: the venv's python, SmolLM2's GGUF and
/// `serve.py`.
pub struct Tier {
    pub python: PathBuf,
    pub smollm2: PathBuf,
    pub serve: PathBuf,
}

/// The tiny random-weight Gemma 3 vision model made by `tests/real_model/tiny_gemma3/make.py`
/// and committed beside it: (language model, projector).
pub fn tiny_gemma3() -> (PathBuf, PathBuf) {
    let dir = repo().join("tests/real_model/tiny_gemma3");
    (dir.join("model.gguf"), dir.join("mmproj.gguf"))
}

/// Image tokens the tiny Gemma 3 projector makes of any image (16 x 16 patches, as the
/// real Gemma 3's 256), and the two marker tokens around them (`<start_of_image>`,
/// `<end_of_image>`).
pub const GEMMA3_IMAGE_TOKENS: u64 = 256;
pub const GEMMA3_IMAGE_MARKERS: u64 = 2;

fn required() -> bool {
    std::env::var("GEMMAEDGE_REAL_MODEL").is_ok_and(|v| v == "required")
}

/// The installed tier, or None (after saying SKIPPED) when it is not installed.
pub fn tier() -> Option<Tier> {
    let path = std::env::var_os("GEMMAEDGE_REAL_MODEL_ENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/real-model/env"));
    let found = std::fs::read_to_string(path).ok().and_then(|text| {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(PathBuf::from)
        };
        let t = Tier {
            python: get("PYTHON")?,
            smollm2: get("MODEL")?,
            serve: get("SERVER")?,
        };
        (t.python.exists() && t.smollm2.exists() && t.serve.exists()).then_some(t)
    });
    if found.is_none() {
        assert!(
            !required(),
            "GEMMAEDGE_REAL_MODEL=required but the real-model tier is not installed: run scripts/setup --tests"
        );
        eprintln!(
            "\n*** SKIPPED: the real-model tier is not installed (no target/real-model/env). \
             Run scripts/setup --tests to install llama.cpp's server and its models. ***\n"
        );
    }
    found
}

/// One real-model test at a time in a test binary: hold the guard for the whole test.
/// Two tests at once meant two llama.cpp servers computing on one 2-core machine, and
/// ggml's threads wait for each other at every operation: in CI a 48-token answer of the
/// 135M model took 65 s instead of about 1 s and three tests ran past their limits.
pub fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    // A test that failed while holding it must not fail every test after it.
    ONE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running server. It ends when dropped, or when this process ends (`serve.py` serves
/// until its stdin closes).
pub struct RealServer {
    pub url: String,
    child: Child,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `model` (with `mmproj`, the model takes images) under the name `alias` with
/// `parallel` slots and a context of 8192 tokens shared by them, computing on `threads`
/// threads. One thread is what the tests use: ggml's threads wait for each other at every
/// operation, and on a busy 2-core machine (a build, other tests) two of them made an image
/// take 4 s instead of 0.13 s.
pub fn start(
    tier: &Tier,
    model: &Path,
    mmproj: Option<&Path>,
    alias: &str,
    parallel: u32,
    threads: u32,
) -> RealServer {
    let mut cmd = Command::new(&tier.python);
    cmd.arg(&tier.serve).arg(model);
    if let Some(p) = mmproj {
        cmd.arg("--mmproj").arg(p);
    }
    let mut child = cmd
        .args(["--alias", alias, "--ctx", "8192", "--parallel"])
        .arg(parallel.to_string())
        .arg("--threads")
        .arg(threads.to_string())
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
    RealServer { url, child }
}

/// Run the binary with a time limit; (exit code, stdout, stderr).
pub fn run(args: &[&str], config: &Path, limit: Duration) -> (Option<i32>, String, String) {
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

/// A config with both roles on the server at `url` serving `model` (`kind = "openai"`):
/// the shipped skill copied under `dir`, the sample photos at `fps`, the shipped eval set,
/// no saved frames; `student_extra` and `teacher_extra` go into their tables, `extra` at the
/// end.
pub fn write_config(
    dir: &Path,
    url: &str,
    model: &str,
    fps: f64,
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
model = "{model}"
kind = "openai"
timeout_secs = 120
{student_extra}
[teacher]
host = "{url}"
model = "{model}"
kind = "openai"
timeout_secs = 120
{teacher_extra}
[source]
kind = "folder"
path = "{photos}"
fps = {fps:?}
min_change = 0.0
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
