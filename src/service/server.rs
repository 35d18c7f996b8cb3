//! `gemmaedge-tui serve`: the hub on a Unix socket, until SIGTERM or SIGINT.
//!
//! Each connection: the peer's credentials are checked, a `hello` with our protocol
//! version is required first, then the snapshot and the live messages go out while its
//! lines come in. A malformed, oversized or unknown line gets an `error` and the
//! connection is closed; the service runs on. SIGHUP does not stop the service.

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

/// Run the service; the exit code.
pub async fn serve(
    config: Config,
    socket_flag: Option<&Path>,
    options: EngineOptions,
) -> color_eyre::Result<i32> {
    let path = socket::socket_path(socket_flag, &config.service);
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
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, hub.clone(), me, group, writers.clone()));
                }
                Err(e) => eprintln!("gemmaedge-tui serve: accept failed: {e}"),
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => eprintln!("gemmaedge-tui serve: SIGHUP ignored (stop with SIGTERM)"),
            _ = &mut task => {
                // The engine stopped by itself (e.g. --max-frames).
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
    Ok(0)
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

/// The writer tasks of the connections.
type Writers = std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>;

async fn connection(
    mut stream: UnixStream,
    hub: Hub,
    me: u32,
    group: Option<u32>,
    writers: Writers,
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
    let link = hub.connect(&name);
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
