//! The real `serve` binary for integration tests: a config against the Ollama test
//! servers, a service process (killed on drop), and a raw NDJSON client.
#![allow(dead_code)]

use super::ollama_server::{OllamaTestServer, Reply};
use super::{STUDENT, TEACHER};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn write_config(dir: &Path, student: &str, teacher: &str, extra: &str) -> PathBuf {
    let p = dir.join("config.toml");
    let eval = dir.join("eval");
    std::fs::create_dir_all(&eval).unwrap();
    std::fs::write(
        eval.join("cases.toml"),
        "[[case]]\nid = \"mug\"\ntext = \"A coffee mug on a desk.\"\nexpect = [\"mug\"]\nsafety = false\n\n\
         [[case]]\nid = \"fire\"\ntext = \"Flames rise from a pan.\"\nexpect = [\"fire\"]\nsafety = true\nsplit = \"holdout\"\n",
    )
    .unwrap();
    let text = super::stand_in_config(
        dir,
        student,
        teacher,
        &repo().join("eval/images"),
        &eval,
        true,
        &format!("[device]\nname = \"testpi\"\n{extra}"),
    );
    std::fs::create_dir_all(dir.join("skills")).unwrap();
    std::fs::write(dir.join("skills/skill.txt"), "Describe the scene.").unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

/// A service process; killed on drop.
pub struct Service {
    pub child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
    pub stderr: Option<std::process::ChildStderr>,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Service {
    pub fn start(student: &OllamaTestServer, teacher: &OllamaTestServer, extra: &str) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let socket = run.join("g.sock");
        Self::start_at(dir, socket, student, teacher, extra)
    }

    pub fn start_at(
        dir: tempfile::TempDir,
        socket: PathBuf,
        student: &OllamaTestServer,
        teacher: &OllamaTestServer,
        extra: &str,
    ) -> Service {
        Self::start_limited(dir, socket, student, teacher, extra, None)
    }

    /// As [`Service::start_at`], with at most `nofile` file descriptors (`ulimit -n`).
    pub fn start_limited(
        dir: tempfile::TempDir,
        socket: PathBuf,
        student: &OllamaTestServer,
        teacher: &OllamaTestServer,
        extra: &str,
        nofile: Option<u32>,
    ) -> Service {
        let cfg = write_config(dir.path(), &student.url(), &teacher.url(), extra);
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .arg("serve")
            .arg("--config")
            .arg(&cfg)
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let began = Instant::now();
        while UnixStream::connect(&socket).is_err() {
            if let Some(s) = child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
                panic!("serve exited {s}: {err}");
            }
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "serve never listened"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let stderr = child.stderr.take();
        Service {
            child,
            socket,
            dir,
            stderr,
        }
    }

    pub fn log_lines(&self) -> Vec<Value> {
        let logs = self.dir.path().join("logs");
        let Ok(rd) = std::fs::read_dir(&logs) else {
            return vec![];
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().ends_with(".jsonl") {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                out.extend(text.lines().filter_map(|l| serde_json::from_str(l).ok()));
            }
        }
        out
    }

    pub fn answers_in_log(&self) -> usize {
        self.log_lines()
            .iter()
            .filter(|v| v["type"] == "student_answer")
            .count()
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let began = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            assert!(began.elapsed() < limit, "no exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A raw console: lines out, lines in.
pub struct Client {
    pub w: UnixStream,
    pub r: BufReader<UnixStream>,
}

impl Client {
    pub fn connect(path: &Path) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    pub fn send(&mut self, v: &Value) {
        self.send_raw(&format!("{v}\n"));
    }

    pub fn send_raw(&mut self, s: &str) {
        let _ = self.w.write_all(s.as_bytes());
    }

    /// The next message; None at the end of the connection.
    pub fn next(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.r.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("a JSON line")),
        }
    }

    /// Hello in, hello back.
    pub fn attach(path: &Path) -> (Client, Value) {
        let mut c = Client::connect(path);
        c.send(&json!({"type": "hello", "protocol": 1, "client": "test"}));
        let hello = c.next().expect("hello");
        assert_eq!(hello["type"], "hello", "{hello}");
        (c, hello)
    }

    /// Read the snapshot; its messages (between begin and end) and the end.
    pub fn snapshot(&mut self) -> (Vec<Value>, Value) {
        let begin = self.next().unwrap();
        assert_eq!(begin["type"], "snapshot_begin", "{begin}");
        let mut msgs = Vec::new();
        loop {
            let m = self.next().expect("snapshot continues");
            if m["type"] == "snapshot_end" {
                return (msgs, m);
            }
            msgs.push(m);
        }
    }

    /// Read until a message matches (or panic after `limit`).
    pub fn until(&mut self, limit: Duration, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        let began = Instant::now();
        while began.elapsed() < limit {
            match self.next() {
                Some(m) if f(&m) => return m,
                Some(_) => {}
                None => panic!("connection ended before {what}"),
            }
        }
        panic!("no {what} within {limit:?}");
    }
}

pub fn event_type(m: &Value) -> &str {
    if m["type"] == "event" {
        m["event"]["type"].as_str().unwrap_or("")
    } else {
        ""
    }
}

/// A calm student (a mug, confident, 30 ms) and a teacher that agrees: the service's
/// ordinary traffic.
pub fn servers() -> (OllamaTestServer, OllamaTestServer) {
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    student.set_handler(|_| {
        Reply::delayed(
            Duration::from_millis(30),
            Reply::text("A coffee mug on a desk. No safety concerns.\nCONFIDENCE: 0.9"),
        )
    });
    teacher.set_handler(|_| {
        Reply::json(&json!({
            "agrees": true, "safety_relevant": false,
            "summary": "A mug on a desk.", "missed": [], "wrong": []
        }))
    });
    (student, teacher)
}

/// The binary in headless mode with `cfg` (and `extra` arguments), its output piped.
pub fn headless(cfg: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["--headless", "--config"])
        .arg(cfg)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM, then everything it printed (stdout, then stderr).
pub fn stop(child: Child) -> String {
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    output(child)
}

/// Headless with `cfg` and `extra` to its end: its exit code and everything it printed.
pub fn headless_to_end(cfg: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = headless(cfg, extra).wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// Everything it printed (stdout, then stderr) once it ended.
pub fn output(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Poll `f` every 100 ms until it holds (true) or `limit` passes (false).
pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The lines of a file (none when it does not exist yet).
pub fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
