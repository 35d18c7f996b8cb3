//! `gemmaedge-tui serve`: the hub on a Unix socket, until SIGTERM or SIGINT.
//!
//! Each connection: the peer's credentials are checked, a `hello` with our protocol
//! version is required first, then the snapshot and the live messages go out while its
//! lines come in. A malformed, oversized or unknown line gets an `error` and the
//! connection is closed; the service runs on. SIGHUP does not stop the service.
//!
//! Load: at most `[service] max_clients` connections at once (more get a refusal line
//! and are closed), a connection that has not said hello within 5 s is closed, and an
//! accept that fails (out of file descriptors) backs off and is logged once per interval
//! with a count. The service exits non-zero when the engine stops by itself (the frame
//! source ended, the engine failed), so `Restart=on-failure` restarts it.

use super::hub::{Hub, Link};
use super::lines::{read_line, Line};
use super::protocol::{
    decode_client, encode_server, version_mismatch, ClientMsg, ServerMsg, MAX_CLIENT_LINE,
    PROTOCOL_VERSION,
};
use super::socket::{self, peer_allowed, peer_groups, SocketError};
use crate::config::Config;
use crate::engine::EngineOptions;
use color_eyre::eyre::WrapErr;
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// How long a console has to say hello.
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// At most one line per this long about failed accepts or refused connections.
const SAY_EVERY: Duration = Duration::from_secs(10);

/// Counts something that can happen thousands of times a second and says it at most once
/// per [`SAY_EVERY`]: the first time at once, then with the count since.
#[derive(Debug, Default)]
pub struct Throttled {
    since_said: u64,
    said_at: Option<std::time::Instant>,
    pub total: u64,
}

impl Throttled {
    /// Count one; `Some(n)` when it is time to say it (n: how many since the last time).
    pub fn hit(&mut self, now: std::time::Instant) -> Option<u64> {
        self.total += 1;
        self.since_said += 1;
        if self
            .said_at
            .is_some_and(|t| now.duration_since(t) < SAY_EVERY)
        {
            return None;
        }
        self.said_at = Some(now);
        Some(std::mem::take(&mut self.since_said))
    }
}

/// The wait after `failures` accepts failed in a row: 10 ms doubling to 1 s.
pub fn accept_backoff(failures: u32) -> Duration {
    Duration::from_millis(10u64.saturating_mul(1 << failures.min(8).saturating_sub(1)))
        .min(Duration::from_secs(1))
}

/// Run the service; the exit code.
pub async fn serve(
    config: Config,
    socket_flag: Option<&Path>,
    options: EngineOptions,
) -> color_eyre::Result<i32> {
    let (path, note) = socket::socket_path_why(socket_flag, &config.service);
    if let Some(note) = note {
        eprintln!("gemmaedge-tui serve: {note}");
    }
    let group = match &config.service.group {
        Some(g) => Some(socket::group_id(g)?),
        None => None,
    };
    let listener = match socket::bind(&path, group) {
        Ok(l) => l,
        Err(e @ SocketError::Live { .. }) => {
            eprintln!("gemmaedge-tui serve: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e).wrap_err("cannot open the control socket"),
    };
    let mut sigterm = signal(SignalKind::terminate()).wrap_err("cannot watch SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).wrap_err("cannot watch SIGINT")?;
    // Registered so that a hangup (the SSH session that started it ending) is ignored.
    let mut sighup = signal(SignalKind::hangup()).wrap_err("cannot watch SIGHUP")?;

    let (hub, task) = match Hub::start(config.clone(), options) {
        Ok(h) => h,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            eprintln!("gemmaedge-tui serve: {e}");
            return Ok(1);
        }
    };
    eprintln!(
        "gemmaedge-tui serve: pid {} listening on {} (device {})",
        std::process::id(),
        path.display(),
        config.device.name
    );
    let me = socket::my_uid();
    let mut task = task;
    // The consoles' writers, so the last messages (`stopped`) go out before we exit.
    let writers: Writers = Default::default();
    let max_clients = config.service.max_clients;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(max_clients));
    let mut accept_failed = Throttled::default();
    let mut failures_in_row = 0u32;
    let mut over_cap = Throttled::default();
    let mut requested = true;
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    failures_in_row = 0;
                    match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            tokio::spawn(connection(stream, hub.clone(), me, group, writers.clone(), slot));
                        }
                        Err(_) => {
                            if let Some(n) = over_cap.hit(std::time::Instant::now()) {
                                eprintln!("gemmaedge-tui serve: refused {n} connection(s): {max_clients} already open ([service] max_clients; {} refused in all)", over_cap.total);
                            }
                            // Said without waiting (one short line into an empty socket
                            // buffer), then closed: no task, no descriptor held.
                            refuse_now(stream, format!("refused: {max_clients} connections are open already ([service] max_clients); try again later"));
                        }
                    }
                }
                Err(e) => {
                    // Out of file descriptors (or another passing failure): wait a little
                    // before the next accept instead of spinning, and say it once in a while.
                    failures_in_row += 1;
                    if let Some(n) = accept_failed.hit(std::time::Instant::now()) {
                        eprintln!("gemmaedge-tui serve: accept failed {n} time(s) since the last report ({} in all): {e}; backing off (raise LimitNOFILE or lower [service] max_clients)", accept_failed.total);
                    }
                    tokio::time::sleep(accept_backoff(failures_in_row)).await;
                }
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => eprintln!("gemmaedge-tui serve: SIGHUP ignored (stop with SIGTERM)"),
            _ = &mut task => {
                // The engine stopped by itself: --max-frames reached, or a failure.
                requested = false;
                break;
            }
        }
    }
    hub.shutdown().await;
    let pending: Vec<_> = std::mem::take(&mut *writers.lock().expect("writers lock"));
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        for w in pending {
            let _ = w.await;
        }
    })
    .await;
    remove_socket(&path);
    let st = hub.stats();
    eprintln!(
        "gemmaedge-tui serve: stopped (messages sent {}, resyncs {})",
        st.sent.load(std::sync::atomic::Ordering::Relaxed),
        st.resyncs.load(std::sync::atomic::Ordering::Relaxed)
    );
    if requested {
        return Ok(0);
    }
    match hub.stop_failure() {
        Some(None) => Ok(0),
        Some(Some(why)) => {
            eprintln!("gemmaedge-tui serve: the engine stopped by itself: {why}; exit status 1 (systemd's Restart=on-failure restarts it)");
            Ok(1)
        }
        None => {
            eprintln!(
                "gemmaedge-tui serve: the engine ended without saying stopped; exit status 1"
            );
            Ok(1)
        }
    }
}

fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
}

/// Write one message; false when the peer is gone.
async fn write(w: &mut (impl AsyncWriteExt + Unpin), msg: &ServerMsg) -> bool {
    w.write_all(encode_server(msg).as_bytes()).await.is_ok()
}

/// Say why and close.
async fn refuse(stream: &mut UnixStream, message: String) {
    let _ = write(stream, &ServerMsg::Error(message)).await;
    let _ = stream.shutdown().await;
}

/// Say why and close, without waiting: what does not fit the socket buffer is not said.
fn refuse_now(stream: UnixStream, message: String) {
    let _ = stream.try_write(encode_server(&ServerMsg::Error(message)).as_bytes());
    // Read what the peer sent already, so the close does not reset the connection
    // before it reads the reason.
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match stream.try_read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// The writer tasks of the connections.
type Writers = std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

async fn connection(
    mut stream: UnixStream,
    hub: Hub,
    me: u32,
    group: Option<u32>,
    writers: Writers,
    // Held for as long as the connection lives (`[service] max_clients`).
    _slot: tokio::sync::OwnedSemaphorePermit,
) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => return refuse(&mut stream, format!("cannot read peer credentials: {e}")).await,
    };
    let groups = peer_groups(cred.pid(), cred.gid());
    if let Err(why) = peer_allowed(cred.uid(), &groups, me, group) {
        eprintln!("gemmaedge-tui serve: refused a console: {why}");
        return refuse(&mut stream, format!("refused: {why}")).await;
    }
    let (read, mut write_half) = stream.into_split();
    let mut reader = BufReader::new(read);
    let name = match tokio::time::timeout(HELLO_WAIT, read_line(&mut reader, MAX_CLIENT_LINE)).await
    {
        Ok(Ok(Line::Text(line))) => match decode_client(&line) {
            Ok(ClientMsg::Hello { protocol, client }) if protocol == PROTOCOL_VERSION => client,
            Ok(ClientMsg::Hello { protocol, .. }) => {
                let _ = write(
                    &mut write_half,
                    &ServerMsg::Error(version_mismatch(protocol)),
                )
                .await;
                return;
            }
            Ok(_) => {
                let _ = write(
                    &mut write_half,
                    &ServerMsg::Error("say hello first (protocol version)".into()),
                )
                .await;
                return;
            }
            Err(e) => {
                let _ = write(&mut write_half, &ServerMsg::Error(e.to_string())).await;
                return;
            }
        },
        Ok(Ok(other)) => {
            let _ = write(&mut write_half, &ServerMsg::Error(line_error(&other))).await;
            return;
        }
        Ok(Err(_)) => return,
        Err(_) => {
            let _ = write(
                &mut write_half,
                &ServerMsg::Error("no hello within 5 s".into()),
            )
            .await;
            return;
        }
    };
    if !write(&mut write_half, &ServerMsg::Hello(hub.info().clone())).await {
        return;
    }
    let link = hub.connect_as(&name, cred.uid());
    let requester = link.requester();
    let (err_tx, err_rx) = mpsc::channel::<String>(1);
    let writer = tokio::spawn(pump_out(link, write_half, err_rx));
    {
        let mut w = writers.lock().expect("writers lock");
        w.retain(|h| !h.is_finished());
        w.push(writer);
    }
    // Lines in, until the peer goes or sends something we refuse.
    loop {
        let refused = match read_line(&mut reader, MAX_CLIENT_LINE).await {
            Ok(Line::Text(line)) if line.trim().is_empty() => continue,
            Ok(Line::Text(line)) => match decode_client(&line) {
                Ok(ClientMsg::Hello { .. }) => "already attached: one hello per connection".into(),
                Ok(msg) => {
                    if requester.send(msg) {
                        continue;
                    }
                    break;
                }
                Err(e) => e.to_string(),
            },
            Ok(Line::Eof) | Err(_) => break,
            Ok(other) => line_error(&other),
        };
        let _ = err_tx.send(refused).await;
        break;
    }
    // The writer ends by itself: with the error said, or once the reader has ended.
    drop(err_tx);
}

/// Messages out: the hub's, and at most one error after which the connection closes.
async fn pump_out(
    mut link: Link,
    mut w: tokio::net::unix::OwnedWriteHalf,
    mut errors: mpsc::Receiver<String>,
) {
    loop {
        tokio::select! {
            batch = link.recv() => match batch {
                Some(batch) => {
                    for m in &batch {
                        if !write(&mut w, m).await {
                            return;
                        }
                    }
                }
                None => break,
            },
            e = errors.recv() => {
                // An error to say; or none: the reader ended, the peer has gone.
                if let Some(message) = e {
                    let _ = write(&mut w, &ServerMsg::Error(message)).await;
                }
                break;
            }
        }
    }
    let _ = w.shutdown().await;
}

fn line_error(l: &Line) -> String {
    match l {
        Line::TooLong(n) => format!("line too long ({n} bytes, at most {MAX_CLIENT_LINE})"),
        Line::NotText => "the line is not UTF-8".into(),
        _ => "unexpected end of input".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_failures_is_one_line_per_interval_with_the_count() {
        let t0 = std::time::Instant::now();
        let mut t = Throttled::default();
        assert_eq!(t.hit(t0), Some(1), "the first is said at once");
        for i in 0..100_000 {
            assert_eq!(t.hit(t0 + Duration::from_micros(i)), None);
        }
        assert_eq!(t.hit(t0 + SAY_EVERY), Some(100_001));
        assert_eq!(t.total, 100_002);
    }

    #[test]
    fn accepts_back_off_to_a_second() {
        assert_eq!(accept_backoff(1), Duration::from_millis(10));
        assert_eq!(accept_backoff(2), Duration::from_millis(20));
        assert_eq!(accept_backoff(30), Duration::from_secs(1));
    }
}
