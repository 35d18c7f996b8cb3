//! Fleet bench (not criterion): 50 simulated devices (each a real `mqtt::Bridge`, one
//! answer a second, an alert every few seconds somewhere) publish to one real Mosquitto,
//! and one fleet console (the real run loop, drawing through the crossterm backend into
//! /dev/null) follows them. Prints the broker-to-screen latency (from the `ts` the device
//! put on the message to the end of the redraw that shows it), and the console's CPU and
//! memory.
//!
//! ```text
//! cargo bench --bench fleet -- [SECONDS] [DEVICES]     # default 30 s, 50 devices
//! ```
//!
//! The devices run in a child process (this executable with `devices PORT N`), so the
//! CPU and memory measured are the console's alone. Lines starting with `RESULT ` are for
//! scripts.

#[path = "../tests/support/mosquitto.rs"]
mod mosquitto;

use chrono::Utc;
use gemmaedge_tui::event::Event;
use gemmaedge_tui::fleet::{self, Fleet, Key};
use gemmaedge_tui::roles::verdict::Verdict;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::time::{Duration, Instant};

fn args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

fn config(port: u16, name: &str, user: &str) -> gemmaedge_tui::config::Config {
    let mut c = gemmaedge_tui::config::Config::default();
    c.device.name = name.into();
    c.mqtt.url = format!("mqtt://127.0.0.1:{port}");
    c.mqtt.username = user.into();
    c.mqtt.password = "pw".into();
    c.notify.min_interval_secs = 0;
    c.paths.skills = std::env::temp_dir().join("fleet-bench-skills");
    c
}

/// The child: N devices, each answering once a second; one alert every 5 s somewhere.
async fn devices(port: u16, n: usize) {
    let mut bridges = Vec::new();
    for i in 0..n {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        std::mem::forget(_rx);
        let b = gemmaedge_tui::mqtt::Bridge::start(&config(port, &format!("dev{i:02}"), "dev"), tx)
            .unwrap();
        bridges.push(b);
    }
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / n.max(1) as u64));
    loop {
        tick.tick().await;
        seq += 1;
        let i = (seq as usize) % n;
        let b = &bridges[i];
        b.send(&Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: format!("Frame {seq}: a person at a desk, a mug, a lamp."),
            confidence: Some(0.8),
            measured_confidence: None,
            latency_ms: 900,
            reasons: vec![],
            skill: "built-in".into(),
        });
        if seq % (5 * n as u64) == 0 {
            b.send(&Event::TeacherVerdict {
                seq,
                verdict: Verdict {
                    agrees: Some(true),
                    safety_relevant: Some(true),
                    summary: "Smoke from a pan.".into(),
                    ..Default::default()
                },
                latency_ms: 1,
            });
            b.send(&Event::Incident(gemmaedge_tui::event::IncidentEvent {
                change: gemmaedge_tui::event::IncidentChange::Open,
                id: seq,
                seq: Some(seq),
                level: 1,
                title: "Smoke from a pan".into(),
                opened_at: Utc::now(),
                last_at: Utc::now(),
                closed_at: None,
                frames: 1,
                key_seq: Some(seq),
                acked_at: None,
                acked_by: None,
            }));
        }
    }
}

fn rusage_cpu() -> Duration {
    let mut r: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a zeroed rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut r) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

fn status_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn pct(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if a.first().map(String::as_str) == Some("devices") {
        let port = a[1].parse().unwrap();
        let n = a[2].parse().unwrap();
        rt.block_on(devices(port, n));
        return;
    }
    let secs: u64 = a.first().and_then(|s| s.parse().ok()).unwrap_or(30);
    let n: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(50);
    let broker = mosquitto::Broker::start(
        &[("dev", "pw"), ("fleet", "pw")],
        "user dev\ntopic readwrite #\nuser fleet\ntopic readwrite #\n",
    );
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["devices", &broker.port.to_string(), &n.to_string()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = rt.block_on(async {
        let (client, mut incoming) =
            fleet::connect(&config(broker.port, "fleet", "fleet")).unwrap();
        let devnull = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let backend = ratatui::backend::CrosstermBackend::new(devnull);
        let mut t = Terminal::with_options(
            backend,
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 160, 60)),
            },
        )
        .unwrap();
        let mut f = Fleet::new("gemmaedge");
        f.record_marks = true;
        let (key_tx, mut key_rx) = tokio::sync::mpsc::unbounded_channel::<Key>();
        let mut keys = futures_util::stream::poll_fn(move |cx| key_rx.poll_recv(cx));
        let warmup = Duration::from_secs(5);
        let started = Instant::now();
        let mut lat = Vec::new();
        let mut draws = 0u64;
        let mut window: Option<(Instant, Duration)> = None;
        let mut devices_seen = 0;
        let stopper = tokio::spawn(async move {
            tokio::time::sleep(warmup + Duration::from_secs(secs)).await;
            drop(key_tx);
        });
        fleet::run_loop(&mut t, &mut f, &client, &mut incoming, &mut keys, |f| {
            let now = Utc::now();
            let marks = std::mem::take(&mut f.marks);
            if started.elapsed() < warmup {
                return;
            }
            if window.is_none() {
                window = Some((Instant::now(), rusage_cpu()));
            }
            draws += 1;
            devices_seen = f.devices.len();
            for m in marks {
                lat.push((now - m).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            }
        })
        .await
        .unwrap();
        stopper.abort();
        let (t0, c0) = window.expect("measured");
        let wall = t0.elapsed();
        let cpu = rusage_cpu() - c0;
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (lat, draws, wall, cpu, devices_seen)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (lat, draws, wall, cpu, seen) = out;
    println!(
        "fleet bench: {n} devices ({seen} on screen), {:.0} s measured, {} messages timed, {draws} redraws",
        wall.as_secs_f64(),
        lat.len()
    );
    println!(
        "broker-to-screen latency ms: p50 {:.1}  p95 {:.1}  p99 {:.1}  max {:.1}",
        pct(&lat, 0.5),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN)
    );
    let cpu_pct = cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
    println!(
        "console CPU {cpu_pct:.1}% of a core; RSS {} KB (peak {} KB)",
        status_kb("VmRSS:"),
        status_kb("VmHWM:")
    );
    println!("RESULT latency_p50_ms {:.1}", pct(&lat, 0.5));
    println!("RESULT latency_p95_ms {:.1}", pct(&lat, 0.95));
    println!("RESULT cpu_pct {cpu_pct:.1}");
    println!("RESULT rss_kb {}", status_kb("VmRSS:"));
}
