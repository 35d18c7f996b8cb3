//! Attaching to a running service over its socket: the hello exchange, then the
//! service's messages in and requests out, each on a task of its own.

use super::lines::{read_line, Line};
use super::protocol::{
    client_hello, decode_server, encode_client, ClientMsg, ServerMsg, ServiceInfo, MAX_SERVER_LINE,
    PROTOCOL_VERSION,
};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// How long the service has to answer the hello.
const HELLO_WAIT: Duration = Duration::from_secs(5);
/// Messages read ahead of the console.
const READ_AHEAD: usize = 4096;

/// Why attaching did not work.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// Nobody listens there (no file, or a stale one): run the engine here instead.
    #[error("no service on {0}")]
    NoService(PathBuf),
    /// The service answered with an error (protocol mismatch, refused peer …).
    #[error("the service on {path} refused this console: {message}")]
    Refused { path: PathBuf, message: String },
    #[error("cannot attach to {path}: {why}")]
    Broken { path: PathBuf, why: String },
    /// The kernel refused to open the socket (not in the service's group).
    #[error("cannot reach the service's socket {path}: {why}")]
    Denied { path: PathBuf, why: String },
    /// The socket or the one listening on it is not to be trusted: nothing was sent.
    #[error("not attaching to {path}: {why}; remove it, or set [service] socket to a path in a directory only you (or root) can write")]
    Untrusted { path: PathBuf, why: String },
}

/// Check the socket's directory and the listener's credentials before saying anything to
/// it (a fake service would otherwise get the console's keys and show a spoofed log).
fn check_trust(path: &Path, stream: &UnixStream, group: Option<u32>) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let me = super::socket::my_uid();
    let d = std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let f = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    let peer = stream
        .peer_cred()
        .map_err(|e| format!("cannot read the service's credentials: {e}"))?;
    super::socket::trust_service(
        &super::socket::Seen {
            dir_owner: d.uid(),
            dir_mode: d.mode(),
            dir_gid: d.gid(),
            sock_owner: f.uid(),
            sock_gid: f.gid(),
            peer_uid: peer.uid(),
        },
        me,
        group,
    )?;
    if d.uid() == me || d.uid() == 0 {
        super::socket::check_parents(dir, me).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// An attached console's end of the socket.
pub struct Remote {
    pub info: ServiceInfo,
    pub path: PathBuf,
    rx: mpsc::Receiver<ServerMsg>,
    tx: mpsc::UnboundedSender<ClientMsg>,
}

impl Remote {
    /// The next message; `None` when the service has gone.
    pub async fn recv(&mut self) -> Option<ServerMsg> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<ServerMsg> {
        self.rx.try_recv().ok()
    }

    /// False when the connection is gone.
    pub fn send(&self, msg: ClientMsg) -> bool {
        self.tx.send(msg).is_ok()
    }
}

/// Connect, check who listens, and say hello. `NoService` when nothing listens on
/// `path`; `Untrusted` when the directory or the listener is not ours (nor root's, nor,
/// with `group` (`[service] group`), the group's).
pub async fn attach(path: &Path, client: &str, group: Option<&str>) -> Result<Remote, AttachError> {
    let broken = |why: String| AttachError::Broken {
        path: path.into(),
        why,
    };
    let stream = match UnixStream::connect(path).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(AttachError::NoService(path.into()))
        }
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            return Err(AttachError::Denied {
                path: path.into(),
                why: crate::files::access::denied_message(path, None),
            })
        }
        Err(e) => return Err(broken(e.to_string())),
    };
    let gid = group.and_then(|g| super::socket::group_id(g).ok());
    if let Err(why) = check_trust(path, &stream, gid) {
        return Err(AttachError::Untrusted {
            path: path.into(),
            why,
        });
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    // A refusal (too many connections) may close the socket before the hello is
    // written: the reason is still there to read, so a failed write is not the end.
    let wrote = write
        .write_all(encode_client(&client_hello(client)).as_bytes())
        .await;
    let first = tokio::time::timeout(HELLO_WAIT, read_line(&mut reader, MAX_SERVER_LINE))
        .await
        .map_err(|_| broken("no answer to the hello within 5 s".into()))?
        .map_err(|e| broken(e.to_string()))?;
    let info = match first {
        Line::Text(line) => match decode_server(&line) {
            Ok(ServerMsg::Hello(info)) if info.protocol == PROTOCOL_VERSION => info,
            Ok(ServerMsg::Hello(info)) => {
                return Err(AttachError::Refused {
                    path: path.into(),
                    message: format!(
                        "protocol mismatch: the service (gemmaedge-tui {}, pid {}) speaks version {}, this console speaks {PROTOCOL_VERSION}; run the same gemmaedge-tui build for `serve` and the console",
                        info.version, info.pid, info.protocol
                    ),
                })
            }
            Ok(ServerMsg::Error(message)) => {
                return Err(AttachError::Refused {
                    path: path.into(),
                    message: crate::reading::sanitize::strip_controls(&message),
                })
            }
            Ok(_) => return Err(broken("the service did not say hello".into())),
            Err(e) => return Err(broken(e.to_string())),
        },
        Line::Eof => {
            let why = match wrote {
                Err(e) => e.to_string(),
                Ok(()) => "the service closed the connection".into(),
            };
            return Err(broken(why));
        }
        other => return Err(broken(format!("unreadable answer: {other:?}"))),
    };
    let (in_tx, rx) = mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        while let Ok(Line::Text(line)) = read_line(&mut reader, MAX_SERVER_LINE).await {
            match decode_server(&line) {
                Ok(m) => {
                    if in_tx.send(m).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = in_tx
                        .send(ServerMsg::Error(format!("unreadable message: {e}")))
                        .await;
                    break;
                }
            }
        }
    });
    let (tx, mut out_rx) = mpsc::unbounded_channel::<ClientMsg>();
    tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if write.write_all(encode_client(&m).as_bytes()).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    Ok(Remote {
        info,
        path: path.into(),
        rx,
        tx,
    })
}
