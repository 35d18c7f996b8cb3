//! The control socket on disk: where it lives, who may connect, and a stale file from a
//! crashed service versus a live one.
//!
//! The socket is owner-only (0600) in a directory only the owner can write, unless
//! `[service] group` names a group (then 0660 and the group's members may connect). A
//! peer is checked by its credentials (SO_PEERCRED), not by the file mode alone.

use crate::config::ServiceConfig;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the socket cannot be set up or used.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another gemmaedge-tui serve is running on {path}{pid}: stop it first (systemctl stop gemmaedge, or kill it), or give this one another --socket")]
    Live { path: PathBuf, pid: String },
    #[error("{path} exists and is not a socket: remove it or choose another [service] socket")]
    NotASocket { path: PathBuf },
    #[error("{dir} is writable by other users ({mode:o}): anyone could replace the socket; use a directory only you can write (chmod go-w), or another [service] socket")]
    UnsafeDir { dir: PathBuf, mode: u32 },
    #[error("{dir} belongs to uid {owner}, not to you (uid {me}): another user made it; use another [service] socket")]
    ForeignDir { dir: PathBuf, owner: u32, me: u32 },
    #[error("group {0:?} (in [service] group) does not exist on this machine")]
    NoSuchGroup(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SocketError + 'a {
    move |source| SocketError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// This process's user id.
pub fn my_uid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

/// The socket path: `--socket`, else `[service] socket`, else `$XDG_RUNTIME_DIR`, else a
/// per-user directory under `/tmp`.
pub fn socket_path(flag: Option<&Path>, cfg: &ServiceConfig) -> PathBuf {
    if let Some(p) = flag.or(cfg.socket.as_deref()) {
        return p.to_path_buf();
    }
    default_path(
        std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        my_uid(),
    )
}

/// The default for a given `$XDG_RUNTIME_DIR` and uid (pure).
pub fn default_path(runtime_dir: Option<PathBuf>, uid: u32) -> PathBuf {
    match runtime_dir.filter(|d| d.is_absolute()) {
        Some(d) => d.join("gemmaedge.sock"),
        None => PathBuf::from(format!("/tmp/gemmaedge-{uid}/gemmaedge.sock")),
    }
}

/// A group's id by name (`/etc/group`).
pub fn group_id(name: &str) -> Result<u32, SocketError> {
    let text = std::fs::read_to_string("/etc/group")
        .map_err(io_err("cannot read", Path::new("/etc/group")))?;
    parse_group(&text, name).ok_or_else(|| SocketError::NoSuchGroup(name.into()))
}

/// The gid of `name` in `/etc/group`-formatted text (pure).
pub fn parse_group(text: &str, name: &str) -> Option<u32> {
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split(':');
            let n = parts.next()?;
            let _pw = parts.next()?;
            let gid = parts.next()?.parse().ok()?;
            Some((n, gid))
        })
        .find(|(n, _)| *n == name)
        .map(|(_, g)| g)
}

/// The directory the socket goes in: made 0700 when missing; refused when another user
/// owns it or others (or, without a group, the group) may write to it.
pub fn prepare_dir(dir: &Path, group: Option<u32>) -> Result<(), SocketError> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).map_err(io_err("cannot create", dir))?;
        let mode = if group.is_some() { 0o750 } else { 0o700 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(io_err("cannot set the mode of", dir))?;
        if let Some(gid) = group {
            chown_group(dir, gid)?;
        }
    }
    let meta = std::fs::metadata(dir).map_err(io_err("cannot read", dir))?;
    check_dir(dir, meta.uid(), meta.mode(), my_uid(), group.is_some())
}

/// The rule for the socket's directory (pure): owned by us or root, not writable by
/// others; group-writable only when a group was asked for. A sticky world-writable dir
/// (like /tmp itself) is refused too: another user could have made the name first.
pub fn check_dir(
    dir: &Path,
    owner: u32,
    mode: u32,
    me: u32,
    group_allowed: bool,
) -> Result<(), SocketError> {
    if owner != me && owner != 0 {
        return Err(SocketError::ForeignDir {
            dir: dir.into(),
            owner,
            me,
        });
    }
    let forbidden = if group_allowed { 0o002 } else { 0o022 };
    if mode & forbidden != 0 {
        return Err(SocketError::UnsafeDir {
            dir: dir.into(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

fn chown_group(path: &Path, gid: u32) -> Result<(), SocketError> {
    std::os::unix::fs::chown(path, None, Some(gid)).map_err(io_err("cannot give the group", path))
}

/// Bind the socket: a live service on it is an error, a stale file is replaced.
pub fn bind(path: &Path, group: Option<u32>) -> Result<tokio::net::UnixListener, SocketError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        prepare_dir(dir, group)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(SocketError::NotASocket { path: path.into() });
            }
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(s) => {
                    let pid = peer_pid(&s)
                        .map(|p| format!(" (pid {p})"))
                        .unwrap_or_default();
                    return Err(SocketError::Live {
                        path: path.into(),
                        pid,
                    });
                }
                // Nobody listens: a crashed service left it behind.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(io_err("cannot remove the stale", path))?;
                }
                Err(e) => return Err(io_err("cannot probe", path)(e)),
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot read", path)(e)),
    }
    // Create it owner-only from the start (no window with a wider mode).
    // SAFETY: umask only changes this process's file-creation mask; restored below.
    let old = unsafe { libc::umask(0o177) };
    let bound = tokio::net::UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound.map_err(io_err("cannot listen on", path))?;
    if let Some(gid) = group {
        chown_group(path, gid)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(io_err("cannot set the mode of", path))?;
    }
    Ok(listener)
}

fn peer_pid(s: &std::os::unix::net::UnixStream) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: a valid fd and a buffer of the size we pass.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut cred as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    (rc == 0 && cred.pid > 0).then_some(cred.pid)
}

/// Who may attach (pure): the same user always; with a group, its members (by the
/// peer's primary group or one of its supplementary groups).
pub fn peer_allowed(
    peer_uid: u32,
    peer_groups: &[u32],
    me: u32,
    group: Option<u32>,
) -> Result<(), String> {
    if peer_uid == me {
        return Ok(());
    }
    if let Some(g) = group {
        if peer_groups.contains(&g) {
            return Ok(());
        }
        return Err(format!(
            "uid {peer_uid} is not this service's user (uid {me}) and not in its group (gid {g})"
        ));
    }
    Err(format!(
        "uid {peer_uid} is not this service's user (uid {me}); set [service] group to let a group attach"
    ))
}

/// A peer's groups: its primary gid and the `Groups:` line of `/proc/PID/status`.
pub fn peer_groups(pid: Option<i32>, gid: u32) -> Vec<u32> {
    let mut groups = vec![gid];
    if let Some(pid) = pid {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            groups.extend(parse_status_groups(&status));
        }
    }
    groups
}

/// The supplementary groups in a `/proc/PID/status` text (pure).
pub fn parse_status_groups(status: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_path_prefers_the_runtime_dir() {
        assert_eq!(
            default_path(Some("/run/user/1000".into()), 1000),
            PathBuf::from("/run/user/1000/gemmaedge.sock")
        );
        assert_eq!(
            default_path(None, 1000),
            PathBuf::from("/tmp/gemmaedge-1000/gemmaedge.sock")
        );
        // A relative XDG_RUNTIME_DIR is ignored (the spec says so).
        assert_eq!(
            default_path(Some("run".into()), 7),
            PathBuf::from("/tmp/gemmaedge-7/gemmaedge.sock")
        );
        let cfg = ServiceConfig {
            socket: Some("/srv/g.sock".into()),
            ..ServiceConfig::default()
        };
        assert_eq!(socket_path(None, &cfg), PathBuf::from("/srv/g.sock"));
        assert_eq!(
            socket_path(Some(Path::new("/x.sock")), &cfg),
            PathBuf::from("/x.sock")
        );
    }

    #[test]
    fn the_directory_rule() {
        let d = Path::new("/d");
        assert!(check_dir(d, 1000, 0o40700, 1000, false).is_ok());
        assert!(check_dir(d, 0, 0o40755, 1000, false).is_ok());
        assert!(matches!(
            check_dir(d, 1001, 0o40700, 1000, false),
            Err(SocketError::ForeignDir { .. })
        ));
        assert!(matches!(
            check_dir(d, 1000, 0o40770, 1000, false),
            Err(SocketError::UnsafeDir { .. })
        ));
        assert!(check_dir(d, 1000, 0o40770, 1000, true).is_ok());
        // /tmp itself (sticky, world-writable) is not a place for the socket.
        assert!(matches!(
            check_dir(d, 0, 0o41777, 1000, true),
            Err(SocketError::UnsafeDir { .. })
        ));
    }

    #[test]
    fn who_may_attach() {
        assert!(peer_allowed(1000, &[1000], 1000, None).is_ok());
        let e = peer_allowed(1001, &[1001, 50], 1000, None).unwrap_err();
        assert!(e.contains("uid 1001") && e.contains("[service] group"));
        assert!(peer_allowed(1001, &[1001, 50], 1000, Some(50)).is_ok());
        assert!(peer_allowed(1001, &[1001], 1000, Some(50)).is_err());
    }

    #[test]
    fn groups_are_parsed() {
        let etc = "root:x:0:\nvideo:x:44:pi\nbroken\ngemma:x:1005:a,b\n";
        assert_eq!(parse_group(etc, "gemma"), Some(1005));
        assert_eq!(parse_group(etc, "video"), Some(44));
        assert_eq!(parse_group(etc, "nope"), None);
        let status = "Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGroups:\t4 24 27 1000 \n";
        assert_eq!(parse_status_groups(status), vec![4, 24, 27, 1000]);
        assert!(parse_status_groups("Name: x\n").is_empty());
    }

    #[tokio::test]
    async fn stale_is_replaced_and_live_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("s.sock");
        // A socket file nobody listens on (a crashed service).
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = bind(&path, None).expect("stale socket replaced");
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let err = bind(&path, None).unwrap_err();
        assert!(matches!(err, SocketError::Live { .. }), "{err}");
        assert!(err.to_string().contains("pid "), "{err}");
        drop(live);
        // Not a socket at all: never removed.
        let file = dir.path().join("f");
        std::fs::write(&file, "keep").unwrap();
        assert!(matches!(
            bind(&file, None),
            Err(SocketError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    }

    #[test]
    fn a_missing_directory_is_made_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("run/g");
        prepare_dir(&sub, None).unwrap();
        assert_eq!(std::fs::metadata(&sub).unwrap().mode() & 0o777, 0o700);
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            prepare_dir(&sub, None),
            Err(SocketError::UnsafeDir { .. })
        ));
    }
}
