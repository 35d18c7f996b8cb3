//! Event fan-out of `gemmaedge-tui serve`: the CPU and memory of the service with 0, 1
//! and 8 attached consoles.
//!
//! ```text
//! cargo bench --bench service_fanout [-- --secs 20 --fps 30 --student-ms 1000 --clients 0,1,8]
//! ```
//!
//! The real binary serves a folder of photos at `fps` to a student (the Ollama test
//! server, `tests/support/ollama_server.rs`) that streams each answer over `student-ms`.
//! Each console is a state-machine client in this process: it attaches over the socket,
//! decodes every line and feeds the console's `App` (no terminal). For each client count
//! the service's CPU time (utime + stime from /proc) over `secs` and its resident memory
//! are printed, with the difference per client against no client.

#[path = "../tests/support/ollama_server.rs"]
mod ollama_server;

use gemmaedge_tui::config::Config;
use gemmaedge_tui::service::client::attach;
use gemmaedge_tui::tui::App;
use ollama_server::{OllamaTestServer, Reply};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STUDENT: &str = "gemma4:e2b";
const TEACHER: &str = "gemma4:26b";

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

fn photos() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("eval/images")
}

/// (cpu seconds, rss bytes) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    (ticks as f64 / hz, rss_kb * 1024)
}

fn main() {
    let secs: u64 = arg("--secs", "20").parse().unwrap();
    let fps: f64 = arg("--fps", "30").parse().unwrap();
    let student_ms: u64 = arg("--student-ms", "1000").parse().unwrap();
    let counts: Vec<usize> = arg("--clients", "0,1,8")
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();

    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    let answer = "A kitchen counter with a kettle, two cups and a person reading a newspaper by the window.\nCONFIDENCE: 0.9";
    let per_token = Duration::from_millis(student_ms) / (answer.len() as u32 / 4).max(1);
    student.set_handler(move |_| {
        Reply::text(answer)
            .token_chars(4)
            .delay_per_token(per_token)
    });
    teacher.set_handler(|_| {
        Reply::text(r#"{"agrees": true, "safety_relevant": false, "summary": "ok", "missed": [], "wrong": []}"#)
    });

    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.student.host = student.url();
    config.student.model = STUDENT.into();
    config.teacher.host = teacher.url();
    config.teacher.model = TEACHER.into();
    config.source.kind = gemmaedge_tui::config::SourceKind::Folder;
    config.source.path = photos().to_string_lossy().into_owned();
    config.source.fps = fps;
    config.source.min_change = 0.0;
    config.policy.audit_every = 0;
    config.paths.logs = dir.path().join("logs");
    config.paths.skills = dir.path().join("skills");
    config.paths.eval = dir.path().join("eval");
    let cfg_path = dir.path().join("config.toml");
    let text = format!(
        "[student]\nhost = \"{}\"\nmodel = \"{STUDENT}\"\n[teacher]\nhost = \"{}\"\nmodel = \"{TEACHER}\"\n\
         [source]\nkind = \"folder\"\npath = \"{}\"\nfps = {fps}\nmin_change = 0.0\n[policy]\naudit_every = 0\n\
         [paths]\nlogs = \"{}\"\nskills = \"{}\"\neval = \"{}\"\n",
        student.url(),
        teacher.url(),
        config.source.path,
        config.paths.logs.display(),
        config.paths.skills.display(),
        config.paths.eval.display(),
    );
    std::fs::write(&cfg_path, text).unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let socket = run.join("g.sock");

    let mut service = Command::new(env!("CARGO_BIN_EXE_gemmaedge-tui"))
        .arg("serve")
        .arg("--config")
        .arg(&cfg_path)
        .arg("--socket")
        .arg(&socket)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = service.id();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "service fan-out: {fps} fps, student {student_ms} ms (streamed), {secs} s per point, pid {pid}"
    );
    println!("clients | service CPU % | CPU % per client | RSS MiB | RSS KiB per client | msgs/s per client");
    let mut base: Option<(f64, u64)> = None;
    for &n in &counts {
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..n {
            let socket = socket.clone();
            let config = config.clone();
            let received = received.clone();
            let stop = stop.clone();
            tasks.push(rt.spawn(async move {
                let mut remote = attach(&socket, "bench", None).await.expect("attach");
                let mut app = App::new(&config);
                while !stop.load(Ordering::Relaxed) {
                    match tokio::time::timeout(Duration::from_millis(200), remote.recv()).await {
                        Ok(Some(m)) => {
                            received.fetch_add(1, Ordering::Relaxed);
                            app.handle_message(m);
                        }
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            }));
        }
        // Settle (snapshots sent), then measure.
        std::thread::sleep(Duration::from_secs(3));
        let (cpu0, _) = usage(pid);
        let r0 = received.load(Ordering::Relaxed);
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs(secs));
        let (cpu1, rss) = usage(pid);
        let wall = t0.elapsed().as_secs_f64();
        let r1 = received.load(Ordering::Relaxed);
        let cpu = (cpu1 - cpu0) / wall * 100.0;
        let (per_cpu, per_rss) = match (base, n) {
            (Some((bc, br)), n) if n > 0 => (
                format!("{:.2}", (cpu - bc) / n as f64),
                format!("{:.0}", (rss as f64 - br as f64) / n as f64 / 1024.0),
            ),
            _ => ("—".into(), "—".into()),
        };
        let per_msgs = if n > 0 {
            format!("{:.1}", (r1 - r0) as f64 / wall / n as f64)
        } else {
            "—".into()
        };
        println!(
            "{n:>7} | {cpu:>13.2} | {per_cpu:>16} | {:>7.1} | {per_rss:>18} | {per_msgs:>17}",
            rss as f64 / 1024.0 / 1024.0
        );
        if n == 0 {
            base = Some((cpu, rss));
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = rt.block_on(t);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
    let _ = service.wait();
}
