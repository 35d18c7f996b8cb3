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
/// per-user directory in `$TMPDIR` (`/tmp`) — unless another user made that one first (or
/// made it writable to others): then `$HOME/.cache/gemmaedge/`.
pub fn socket_path(flag: Option<&Path>, cfg: &ServiceConfig) -> PathBuf {
    socket_path_why(flag, cfg).0
}

/// [`socket_path`], and why the `/tmp` fallback was passed over when it was.
pub fn socket_path_why(flag: Option<&Path>, cfg: &ServiceConfig) -> (PathBuf, Option<String>) {
    if let Some(p) = flag.or(cfg.socket.as_deref()) {
        return (p.to_path_buf(), None);
    }
    if let Some(p) = runtime_path(std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from)) {
        return (p, None);
    }
    let uid = my_uid();
    let tmp = tmp_dir_for(&std::env::temp_dir(), uid);
    match safe_existing_dir(&tmp, uid) {
        Ok(()) => (tmp.join(SOCKET_NAME), None),
        Err(why) => match std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|h| h.is_absolute())
        {
            Some(home) => {
                let alt = home.join(".cache/gemmaedge").join(SOCKET_NAME);
                let note = format!(
                    "not using {}: {why}; the socket is {}",
                    tmp.display(),
                    alt.display()
                );
                (alt, Some(note))
            }
            None => (tmp.join(SOCKET_NAME), None),
        },
    }
}

const SOCKET_NAME: &str = "gemmaedge.sock";

/// `$XDG_RUNTIME_DIR/gemmaedge.sock` when it is set and absolute (pure).
pub fn runtime_path(runtime_dir: Option<PathBuf>) -> Option<PathBuf> {
    runtime_dir
        .filter(|d| d.is_absolute())
        .map(|d| d.join(SOCKET_NAME))
}

/// The per-user fallback directory in `tmp` (pure).
pub fn tmp_dir_for(tmp: &Path, uid: u32) -> PathBuf {
    tmp.join(format!("gemmaedge-{uid}"))
}

/// The default for a given `$XDG_RUNTIME_DIR` and uid, with `/tmp` (pure).
pub fn default_path(runtime_dir: Option<PathBuf>, uid: u32) -> PathBuf {
    runtime_path(runtime_dir)
        .unwrap_or_else(|| tmp_dir_for(Path::new("/tmp"), uid).join(SOCKET_NAME))
}

/// Whether `dir` may hold our socket: absent (we will make it 0700), or a directory owned
/// by us (or root) that others cannot write, under parents checked the same way up to a
/// sticky or root-owned one. The reason when not.
pub fn safe_existing_dir(dir: &Path, me: u32) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot read it: {e}")),
        Ok(m) if !m.is_dir() => Err("it is not a directory".into()),
        Ok(m) => {
            check_dir(dir, m.uid(), m.mode(), me, false).map_err(|e| e.to_string())?;
            check_parents(dir, me).map_err(|e| e.to_string())
        }
    }
}

/// The parents of `dir`, up to the first sticky or root-owned one: owned by us (or root)
/// and not writable by others, so nobody else can swap the directory for theirs.
pub fn check_parents(dir: &Path, me: u32) -> Result<(), SocketError> {
    let mut p = dir.parent();
    while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
        let meta = match std::fs::metadata(d) {
            Ok(m) => m,
            // Not made yet (it will be, by us): its parent decides.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                p = d.parent();
                continue;
            }
            Err(e) => return Err(io_err("cannot read", d)(e)),
        };
        if parent_rule(d, meta.uid(), meta.mode(), me)? {
            return Ok(());
        }
        p = d.parent();
    }
    Ok(())
}

/// One parent (pure): `Ok(true)` ends the walk (sticky, or root-owned and not writable by
/// others), `Ok(false)` goes on (ours, not writable by others), else why not.
pub fn parent_rule(d: &Path, owner: u32, mode: u32, me: u32) -> Result<bool, SocketError> {
    if mode & 0o1000 != 0 {
        return Ok(true);
    }
    if mode & 0o002 != 0 {
        return Err(SocketError::UnsafeDir {
            dir: d.into(),
            mode: mode & 0o7777,
        });
    }
    if owner == 0 {
        return Ok(true);
    }
    if owner != me {
        return Err(SocketError::ForeignDir {
            dir: d.into(),
            owner,
            me,
        });
    }
    if mode & 0o020 != 0 {
        return Err(SocketError::UnsafeDir {
            dir: d.into(),
            mode: mode & 0o7777,
        });
    }
    Ok(false)
}

/// What a console checks before it trusts the service on `path` (pure): the socket's
/// directory (`dir_owner`, `dir_mode`, `dir_gid`) and the listening peer (`peer_uid`,
/// from SO_PEERCRED) with the socket file's owner and group. Ours or root's always; another
/// user's only when `[service] group` names the group the directory and socket belong to.
pub struct Seen {
    pub dir_owner: u32,
    pub dir_mode: u32,
    pub dir_gid: u32,
    pub sock_owner: u32,
    pub sock_gid: u32,
    pub peer_uid: u32,
}

pub fn trust_service(seen: &Seen, me: u32, group: Option<u32>) -> Result<(), String> {
    let grouped = |gid: u32| group.is_some_and(|g| g == gid);
    if seen.dir_mode & 0o002 != 0 {
        return Err(format!(
            "its directory is writable by every user (mode {:o}): anyone could have put a socket there",
            seen.dir_mode & 0o7777
        ));
    }
    if seen.dir_owner != me && seen.dir_owner != 0 && !grouped(seen.dir_gid) {
        return Err(format!(
            "its directory belongs to uid {}, not to you (uid {me}) or root{}",
            seen.dir_owner,
            if group.is_some() {
                ", and not to [service] group"
            } else {
                ""
            }
        ));
    }
    if seen.peer_uid == me || seen.peer_uid == 0 {
        return Ok(());
    }
    if grouped(seen.sock_gid) && seen.sock_owner == seen.peer_uid && seen.dir_owner == seen.peer_uid
    {
        return Ok(());
    }
    Err(format!(
        "the service there runs as uid {}, not as you (uid {me}) or root{}: another user may have planted it",
        seen.peer_uid,
        if group.is_some() {
            " (nor as the owner of a socket of [service] group)"
        } else {
            "; set [service] group if a service of another user should be attached to"
        }
    ))
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
/// owns it or others (or, without a group, the group) may write to it, or when one of its
/// parents could be swapped by another user.
pub fn prepare_dir(dir: &Path, group: Option<u32>) -> Result<(), SocketError> {
    check_parents(dir, my_uid())?;
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
    fn parents_up_to_a_sticky_or_root_owned_one() {
        let d = Path::new("/d");
        assert!(
            parent_rule(d, 0, 0o41777, 1000).unwrap(),
            "/tmp: sticky ends it"
        );
        assert!(parent_rule(d, 0, 0o40755, 1000).unwrap(), "root's ends it");
        assert!(!parent_rule(d, 1000, 0o40755, 1000).unwrap(), "ours: go on");
        assert!(
            parent_rule(d, 1001, 0o40755, 1000).is_err(),
            "another user's"
        );
        assert!(parent_rule(d, 0, 0o40777, 1000).is_err(), "writable by all");
        assert!(
            parent_rule(d, 1000, 0o40775, 1000).is_err(),
            "group-writable"
        );
    }

    #[test]
    fn a_planted_tmp_dir_is_passed_over() {
        let tmp = tempfile::tempdir().unwrap();
        let mine = tmp_dir_for(tmp.path(), my_uid());
        assert!(safe_existing_dir(&mine, my_uid()).is_ok(), "absent: fine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = safe_existing_dir(&mine, my_uid()).unwrap_err();
        assert!(why.contains("writable by other users"), "{why}");
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(safe_existing_dir(&mine, my_uid()).is_ok());
        // Owned by someone else (as another user, our directory is theirs; root's
        // directories are trusted by everyone, so this needs a non-root run).
        if my_uid() != 0 {
            let why = safe_existing_dir(&mine, my_uid() + 1).unwrap_err();
            assert!(why.contains("belongs to uid"), "{why}");
        }
    }

    #[test]
    fn what_a_console_trusts() {
        let seen = |dir_owner, dir_mode, peer_uid| Seen {
            dir_owner,
            dir_mode,
            dir_gid: 50,
            sock_owner: peer_uid,
            sock_gid: 50,
            peer_uid,
        };
        assert!(trust_service(&seen(1000, 0o40700, 1000), 1000, None).is_ok());
        assert!(
            trust_service(&seen(0, 0o40755, 0), 1000, None).is_ok(),
            "root's"
        );
        // A service of another user in a directory of theirs: the planted one.
        let e = trust_service(&seen(65534, 0o40700, 65534), 0, None).unwrap_err();
        assert!(e.contains("uid 65534"), "{e}");
        // The same with the group configured: the service user's, in the group.
        assert!(trust_service(&seen(1001, 0o40750, 1001), 1000, Some(50)).is_ok());
        assert!(trust_service(&seen(1001, 0o40750, 1001), 1000, Some(51)).is_err());
        // In a directory everyone may write: never.
        let e = trust_service(&seen(0, 0o41777, 1000), 1000, None).unwrap_err();
        assert!(e.contains("writable by every user"), "{e}");
        // Our directory, another user's listener.
        assert!(trust_service(&seen(1000, 0o40700, 1001), 1000, None).is_err());
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
