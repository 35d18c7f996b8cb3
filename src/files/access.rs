//! Why this user may not open a file or socket, and what to do about it. The packaged
//! service's socket is 0660 in a 0750 directory and its config 0640, all of group
//! `gemmaedge`: a user outside the group gets "permission denied" from the kernel, and
//! this turns that into "you are not in group gemmaedge: sudo adduser …".

use std::ffi::CStr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// A group as `/etc/group` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Every group in `/etc/group`-formatted text (pure).
pub fn parse_groups(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|l| {
            let mut p = l.split(':');
            let name = p.next()?.to_string();
            let _pw = p.next()?;
            let gid = p.next()?.trim().parse().ok()?;
            let members = p
                .next()
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect();
            Some(GroupEntry { name, gid, members })
        })
        .collect()
}

/// The message for a socket this user may not open (pure): `user` and `uid` are this
/// process's, `my_gids` its groups (primary and supplementary), `group` the one whose
/// members may attach, when known.
pub fn explain_denied(user: &str, uid: u32, my_gids: &[u32], group: Option<&GroupEntry>) -> String {
    let Some(g) = group else {
        return format!(
            "permission denied: you ({user}, uid {uid}) may not open it; only the service's user and the members of its [service] group may attach"
        );
    };
    let name = &g.name;
    if my_gids.contains(&g.gid) {
        return format!(
            "permission denied although you ({user}) are in group {name}: the socket should be mode 0660 and its directory 0750, both of group {name}; restart the service (sudo systemctl restart gemmaedge)"
        );
    }
    if g.members.iter().any(|m| m == user) {
        return format!(
            "permission denied: you ({user}) were added to group {name}, but this login does not have it yet: log out and back in (or run `newgrp {name}`)"
        );
    }
    format!(
        "permission denied: you ({user}, uid {uid}) are not in group {name}, whose members may attach: sudo adduser {user} {name}, then log out and back in"
    )
}

/// [`explain_denied`] for this process and `path`: the group is `configured_group` when
/// given, else the group of `path` itself, else of its directory (which can be looked
/// at even when it may not be entered).
pub fn denied_message(path: &Path, configured_group: Option<&str>) -> String {
    let groups = std::fs::read_to_string("/etc/group")
        .map(|t| parse_groups(&t))
        .unwrap_or_default();
    let group = match configured_group {
        Some(name) => groups.iter().find(|g| g.name == name),
        None => std::fs::metadata(path)
            .or_else(|_| std::fs::metadata(path.parent().unwrap_or(Path::new("/"))))
            .ok()
            .map(|m| m.gid())
            .and_then(|gid| groups.iter().find(|g| g.gid == gid && gid != 0)),
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    explain_denied(&user_name(uid), uid, &my_groups(), group)
}

/// This process's groups: the primary one and the supplementary ones.
pub fn my_groups() -> Vec<u32> {
    // SAFETY: getgid has no preconditions.
    let mut v = vec![unsafe { libc::getgid() }];
    // SAFETY: a first call with size 0 only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n > 0 {
        let mut buf = vec![0 as libc::gid_t; n as usize];
        // SAFETY: the buffer holds n entries.
        let got = unsafe { libc::getgroups(n, buf.as_mut_ptr()) };
        if got > 0 {
            buf.truncate(got as usize);
            v.extend(buf);
        }
    }
    v
}

/// The login name of `uid` (its number when the system does not know it).
pub fn user_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: all-zero is a valid passwd record to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: valid pointers to a record, a buffer of the length given, and the result.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc == 0 && !out.is_null() && !pw.pw_name.is_null() {
        // SAFETY: getpwuid_r filled pw_name with a NUL-terminated string inside buf.
        let name = unsafe { CStr::from_ptr(pw.pw_name) };
        return name.to_string_lossy().into_owned();
    }
    uid.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gemmaedge(members: &[&str]) -> GroupEntry {
        GroupEntry {
            name: "gemmaedge".into(),
            gid: 998,
            members: members.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn etc_group_is_parsed() {
        let g =
            parse_groups("root:x:0:\nvideo:x:44:pi,gemmaedge\nbroken\ngemmaedge:x:998: pi , ops\n");
        assert_eq!(g.len(), 3);
        assert_eq!(g[1].members, ["pi", "gemmaedge"]);
        assert_eq!(
            g[2],
            GroupEntry {
                name: "gemmaedge".into(),
                gid: 998,
                members: vec!["pi".into(), "ops".into()]
            }
        );
        assert!(g[0].members.is_empty());
    }

    #[test]
    fn the_message_says_what_to_do() {
        let m = explain_denied("bob", 1002, &[1002], Some(&gemmaedge(&["pi"])));
        assert!(
            m.contains("you (bob, uid 1002) are not in group gemmaedge"),
            "{m}"
        );
        assert!(m.contains("sudo adduser bob gemmaedge"), "{m}");
        // Added, but this login predates it.
        let m = explain_denied("bob", 1002, &[1002], Some(&gemmaedge(&["pi", "bob"])));
        assert!(
            m.contains("log out and back in") && m.contains("newgrp gemmaedge"),
            "{m}"
        );
        assert!(!m.contains("adduser"), "{m}");
        // In the group and still refused: the modes are wrong.
        let m = explain_denied("pi", 1000, &[1000, 998], Some(&gemmaedge(&["pi"])));
        assert!(m.contains("0660") && m.contains("restart"), "{m}");
        // No group known.
        let m = explain_denied("bob", 1002, &[1002], None);
        assert!(
            m.contains("uid 1002") && m.contains("[service] group"),
            "{m}"
        );
    }

    #[test]
    fn this_process_has_a_name_and_its_groups() {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        assert!(my_groups().contains(&gid));
        if uid == 0 {
            assert_eq!(user_name(0), "root");
        }
        assert_eq!(user_name(4_000_000_000), "4000000000");
    }
}
