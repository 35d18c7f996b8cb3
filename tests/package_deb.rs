//! The Debian package on this machine, as root (CI): built by `scripts/package-deb`,
//! checked by lintian, installed with dpkg; the service started the way its unit starts
//! it (no systemd in CI: the unit's User, WorkingDirectory, RuntimeDirectory, UMask and
//! ExecStart, read from the installed unit, with `setpriv`); a console in a pty as a
//! member of group `gemmaedge` attached and showing frames; a user outside the group
//! refused with the fix; an upgrade keeping a changed skill, its history and the logs;
//! `dpkg -r` keeping the data, `dpkg -P` leaving nothing behind.
//!
//! To keep CI short this packages the binary the test build already made
//! (`CARGO_BIN_EXE_gemmaedge-tui`, a debug build, stripped by the script) through
//! `scripts/package-deb --binary`; outside CI the same script does the release build.
//!
//! Not root: prints SKIPPED and passes, unless `GEMMAEDGE_PACKAGE=required` (`.ci/run`
//! sets it), then it fails. It never touches a gemmaedge-tui that was installed before
//! it, and cleans up (package, users, directories) even when it fails.

mod support;

use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::Session;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::ollama_server::{OllamaTestServer, Reply};
use support::{STUDENT, TEACHER};

const BIN: &str = env!("CARGO_BIN_EXE_gemmaedge-tui");
const PKG: &str = "gemmaedge-tui";
const MEMBER: &str = "gemtest-member";
const OUTSIDER: &str = "gemtest-outsider";
const UNIT: &str = "/lib/systemd/system/gemmaedge.service";
const CONF: &str = "/etc/gemmaedge/config.toml";
const STATE: &str = "/var/lib/gemmaedge";
const SOCKET: &str = "/run/gemmaedge/gemmaedge.sock";
const WAIT: Duration = Duration::from_secs(60);
const SKILL_MARK: &str = "Changed on this Pi: count the mugs on the desk.";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run and require success; the output on failure.
fn run(cmd: &mut Command) -> Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed: {}", text(&o));
    o
}

fn sh(script: &str) -> Output {
    run(Command::new("sh").arg("-c").arg(script))
}

fn quiet(script: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn installed() -> bool {
    quiet(&format!(
        "dpkg-query -W -f='${{Status}}' {PKG} | grep -q 'install ok installed'"
    ))
}

fn dpkg_known() -> bool {
    quiet(&format!("dpkg-query -W {PKG}"))
}

/// Removes what the test made, whatever happened: the processes it started, the package
/// (purged), the test users, and any leftover directory or account.
struct Cleanup {
    children: Vec<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "dpkg -P {PKG}; \
                 userdel {MEMBER}; userdel {OUTSIDER}; userdel gemmaedge; groupdel gemmaedge; \
                 rm -rf /run/gemmaedge {STATE} /etc/gemmaedge /tmp/gemtest-outsider.toml"
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Build the package of the test build's binary with this version.
fn package(out: &Path, version: &str) -> PathBuf {
    let o = run(Command::new(repo().join("scripts/package-deb"))
        .arg("--binary")
        .arg(BIN)
        .arg("--out")
        .arg(out)
        .arg("--version")
        .arg(version)
        // gzip -1, not xz: the same contents, built in a fifth of the time.
        .arg("--fast"));
    PathBuf::from(String::from_utf8_lossy(&o.stdout).trim())
}

/// The unit's `Key=value` lines.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
        .trim()
        .to_string()
}

/// Start `serve` as the unit does: RuntimeDirectory made as systemd makes it, then
/// ExecStart as User with its groups, in WorkingDirectory, under UMask.
fn start_service() -> Child {
    let unit = std::fs::read_to_string(UNIT).unwrap();
    let user = unit_value(&unit, "User");
    let group = unit_value(&unit, "Group");
    let runtime = format!("/run/{}", unit_value(&unit, "RuntimeDirectory"));
    let mode = unit_value(&unit, "RuntimeDirectoryMode");
    sh(&format!(
        "rm -rf {runtime} && install -d -o {user} -g {group} -m {mode} {runtime}"
    ));
    let exec = unit_value(&unit, "ExecStart");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask {}; exec setpriv --reuid={user} --regid={group} --init-groups --inh-caps=-all -- {exec}",
            unit_value(&unit, "UMask")
        ))
        .current_dir(unit_value(&unit, "WorkingDirectory"))
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let began = Instant::now();
    while std::os::unix::net::UnixStream::connect(SOCKET).is_err() {
        assert!(began.elapsed() < WAIT, "serve never listened on {SOCKET}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop_service(child: &mut Child) {
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "serve exits 0 on SIGTERM");
}

/// A command as `user` with the groups /etc/group gives it, like a fresh login.
fn as_user(user: &str, args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .arg("--init-groups")
        .arg("--")
        .arg("/usr/bin/gemmaedge-tui")
        .args(args)
        .current_dir("/")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/nonexistent")
        .env("TERM", "xterm-256color")
        .env("GEMMAEDGE_HALFBLOCKS", "1");
    c
}

fn meta(path: &str) -> std::fs::Metadata {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn id_of(what: &str, name: &str) -> u32 {
    let o = sh(&format!("id -{what} {name}"));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// What the console wrote, read without blocking.
struct Screen {
    session: OsSession,
    out: Vec<u8>,
    eof: bool,
}

impl Screen {
    fn drain(&mut self) {
        let mut buf = [0u8; 8192];
        while !self.eof {
            match self.session.try_read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }

    fn contains(&self, needle: &str) -> bool {
        let n = needle.as_bytes();
        self.out.windows(n.len()).any(|w| w == n)
    }

    fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.drain();
            if done(self) {
                return;
            }
            let from = self.out.len().saturating_sub(3000);
            assert!(
                Instant::now() < deadline && !self.eof,
                "timed out waiting for {what}; tail:\n{}",
                String::from_utf8_lossy(&self.out[from..]).escape_debug()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn the_package_installs_serves_the_group_upgrades_and_purges() {
    let required = std::env::var("GEMMAEDGE_PACKAGE").as_deref() == Ok("required");
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            !required,
            "GEMMAEDGE_PACKAGE=required but not root: the package test installs a package"
        );
        eprintln!("SKIPPED: the package test needs root (dpkg -i, system users)");
        return;
    }
    for tool in ["dpkg-deb", "lintian", "setpriv", "adduser"] {
        if !quiet(&format!("command -v {tool}")) {
            assert!(!required, "{tool} is missing: run scripts/setup --tests");
            eprintln!("SKIPPED: {tool} is missing (scripts/setup --tests installs it)");
            return;
        }
    }
    if dpkg_known() || quiet("getent passwd gemmaedge") {
        assert!(
            !required,
            "{PKG} (or a user gemmaedge) is already on this machine; the test would replace it"
        );
        eprintln!("SKIPPED: {PKG} or a user gemmaedge is already here; not touching it");
        return;
    }
    let mut cleanup = Cleanup {
        children: Vec::new(),
    };
    // Leftovers of an earlier run that died before its cleanup.
    let _ = quiet(&format!("userdel {MEMBER}; userdel {OUTSIDER}"));

    // --- build and lint --------------------------------------------------------------
    let out = tempfile::tempdir().unwrap();
    let deb = package(out.path(), "0.1.0");
    let lint = Command::new("lintian").arg(&deb).output().unwrap();
    let report = String::from_utf8_lossy(&lint.stdout).to_string();
    assert!(
        !report.lines().any(|l| l.starts_with("E:")),
        "lintian errors:\n{report}{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    // --- install ---------------------------------------------------------------------
    run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(installed());
    let bin = meta("/usr/bin/gemmaedge-tui");
    assert_eq!((bin.mode() & 0o7777, bin.uid()), (0o755, 0));
    let gid = id_of("g", "gemmaedge");
    let uid = id_of("u", "gemmaedge");
    assert!(uid < 1000, "a system user (uid {uid})");
    let passwd = String::from_utf8_lossy(&sh("getent passwd gemmaedge").stdout).to_string();
    assert!(
        passwd.contains(":/var/lib/gemmaedge:/usr/sbin/nologin"),
        "{passwd}"
    );
    let groups = String::from_utf8_lossy(&sh("id -nG gemmaedge").stdout).to_string();
    assert!(groups.split_whitespace().any(|g| g == "video"), "{groups}");
    // The config: a conffile, readable by root and the group only (it may hold secrets),
    // with the service's paths.
    let conffiles =
        String::from_utf8_lossy(&sh(&format!("dpkg-query -W -f='${{Conffiles}}' {PKG}")).stdout)
            .to_string();
    assert!(conffiles.contains(CONF), "{conffiles}");
    let conf = meta(CONF);
    assert_eq!(
        (conf.mode() & 0o7777, conf.uid(), conf.gid()),
        (0o640, 0, gid)
    );
    let conf_text = std::fs::read_to_string(CONF).unwrap();
    for want in [
        "skills = \"/var/lib/gemmaedge/skills\"",
        "socket = \"/run/gemmaedge/gemmaedge.sock\"",
        "group = \"gemmaedge\"",
    ] {
        assert!(conf_text.contains(want), "{want} in {CONF}");
    }
    // State: the service's, the group may read it; defaults copied from /usr/share.
    for dir in [
        STATE,
        "/var/lib/gemmaedge/skills",
        "/var/lib/gemmaedge/eval",
        "/var/lib/gemmaedge/logs",
    ] {
        let m = meta(dir);
        assert_eq!(
            (m.mode() & 0o7777, m.uid(), m.gid()),
            (0o750, uid, gid),
            "{dir}"
        );
    }
    let skill = "/var/lib/gemmaedge/skills/skill.txt";
    assert_eq!(meta(skill).uid(), uid);
    assert_eq!(
        std::fs::read(skill).unwrap(),
        std::fs::read("/usr/share/gemmaedge/skills/skill.txt").unwrap()
    );
    assert!(Path::new("/var/lib/gemmaedge/eval/cases.toml").is_file());
    // Enabled (the symlink systemd would follow at boot).
    assert!(
        Path::new("/etc/systemd/system/multi-user.target.wants/gemmaedge.service").exists(),
        "the unit is enabled"
    );
    if quiet("command -v systemd-analyze") {
        let o = Command::new("systemd-analyze")
            .arg("verify")
            .arg(UNIT)
            .output()
            .unwrap();
        assert!(o.status.success(), "systemd-analyze verify: {}", text(&o));
    } else {
        eprintln!("systemd-analyze not here: the unit is not verified");
    }

    // --- the service, as its unit runs it --------------------------------------------
    let student = OllamaTestServer::start_in_thread(&[STUDENT]);
    student.set_handler(|_| Reply::text("A zebra poster on a wall.\nCONFIDENCE: 0.9"));
    let teacher = OllamaTestServer::start_in_thread(&[TEACHER]);
    teacher.set_handler(|_| {
        Reply::text(
            serde_json::json!({"agrees": true, "safety_relevant": false,
                "summary": "A poster.", "missed": [], "wrong": []})
            .to_string(),
        )
    });
    // The owner points the config at the models (a conffile edit an upgrade must keep).
    let edited = conf_text
        .replacen(
            "host = \"http://127.0.0.1:11434\"",
            &format!("host = \"{}\"", student.url()),
            1,
        )
        .replacen(
            "host = \"http://mac-mini.local:11434\"",
            &format!("host = \"{}\"", teacher.url()),
            1,
        )
        .replacen("fps = 1.0 ", "fps = 4.0 ", 1);
    assert_ne!(edited, conf_text);
    std::fs::write(CONF, &edited).unwrap();
    let service = start_service();
    cleanup.children.push(service);
    let sock = std::fs::symlink_metadata(SOCKET).unwrap();
    assert_eq!(
        (sock.mode() & 0o777, sock.uid(), sock.gid()),
        (0o660, uid, gid)
    );
    let run_dir = meta("/run/gemmaedge");
    assert_eq!((run_dir.mode() & 0o7777, run_dir.gid()), (0o750, gid));

    // --- a member attaches with a plain `gemmaedge-tui` ------------------------------
    run(Command::new("useradd").args(["-M", "-s", "/bin/sh", MEMBER]));
    run(Command::new("useradd").args(["-M", "-s", "/bin/sh", OUTSIDER]));
    // The README's way into the group.
    run(Command::new("adduser").args(["--quiet", MEMBER, "gemmaedge"]));
    let serve_pid = cleanup.children[0].id();
    let check = as_user(MEMBER, &["check"]).output().unwrap();
    let check_out = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(
        check_out.contains("parsed (/etc/gemmaedge/config.toml)"),
        "{}",
        text(&check)
    );
    assert!(
        check_out.contains(&format!("serve pid {serve_pid}")) && check_out.contains(SOCKET),
        "{}",
        text(&check)
    );
    let mut session = Session::spawn(as_user(MEMBER, &[])).expect("a console in a pty");
    session.get_process_mut().set_window_size(160, 40).unwrap();
    let mut screen = Screen {
        session,
        out: Vec::new(),
        eof: false,
    };
    screen.until("the attached status", |s| {
        s.contains(&format!("attached · serve pid {serve_pid}"))
    });
    // Frames: the frame pane's numbered title and the student's answer to one.
    screen.until("a frame and its answer", |s| {
        s.contains(" #") && s.contains("zebra poster")
    });
    screen.session.write_all(b"q").unwrap();
    screen.session.flush().unwrap();
    screen.until("the console to exit", |s| s.eof);
    let status = screen.session.get_process().wait().unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");

    // --- a user outside the group is refused, with the fix ---------------------------
    let o = as_user(OUTSIDER, &["check"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        err.contains(CONF)
            && err.contains(&format!("you ({OUTSIDER}, uid"))
            && err.contains("are not in group gemmaedge")
            && err.contains(&format!("sudo adduser {OUTSIDER} gemmaedge")),
        "{err}"
    );
    // With a config it may read, the socket itself refuses it.
    sh(&format!(
        "cp {CONF} /tmp/gemtest-outsider.toml && chmod 0644 /tmp/gemtest-outsider.toml"
    ));
    let o = as_user(
        OUTSIDER,
        &["--config", "/tmp/gemtest-outsider.toml", "check"],
    )
    .output()
    .unwrap();
    let out_text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        out_text.contains(&format!("cannot reach the service's socket {SOCKET}"))
            && out_text.contains("are not in group gemmaedge")
            && out_text.contains(&format!("sudo adduser {OUTSIDER} gemmaedge")),
        "{}",
        text(&o)
    );
    assert_ne!(o.status.code(), Some(0));

    // --- upgrade: a changed skill, its history, the logs and the config stay ----------
    std::fs::write(skill, format!("{SKILL_MARK}\n")).unwrap();
    let history = "/var/lib/gemmaedge/skills/history";
    sh(&format!(
        "install -d -o gemmaedge -g gemmaedge -m 0750 {history} && \
         echo 'an older skill' > {history}/20260101T000000Z-0.500.txt && chown gemmaedge: {history}/*"
    ));
    let logs_before: Vec<String> = std::fs::read_dir("/var/lib/gemmaedge/logs")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".jsonl"))
        .collect();
    assert!(!logs_before.is_empty(), "the service wrote its session log");
    let deb2 = package(out.path(), "0.1.0+upgrade1");
    run(Command::new("dpkg").arg("-i").arg(&deb2));
    assert!(sh(&format!("dpkg-query -W -f='${{Version}}' {PKG}"))
        .stdout
        .starts_with(b"0.1.0+upgrade1"));
    assert_eq!(
        std::fs::read_to_string(skill).unwrap(),
        format!("{SKILL_MARK}\n")
    );
    assert!(Path::new(&format!("{history}/20260101T000000Z-0.500.txt")).is_file());
    for log in &logs_before {
        assert!(
            Path::new(&format!("/var/lib/gemmaedge/logs/{log}")).is_file(),
            "{log}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(CONF).unwrap(),
        edited,
        "the edited conffile stays"
    );
    assert_eq!(meta(CONF).mode() & 0o7777, 0o640);
    // The restart an upgrade does (systemd's job; here by hand): the new binary serves
    // with the changed skill.
    let mut old = cleanup.children.remove(0);
    stop_service(&mut old);
    let chats = student.chat_count();
    cleanup.children.push(start_service());
    let deadline = Instant::now() + WAIT;
    loop {
        let skilled = student.chat_requests().iter().skip(chats).any(|r| {
            r.first_content("system")
                .is_some_and(|s| s.contains(SKILL_MARK))
        });
        if skilled {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restarted service never used the changed skill"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut svc = cleanup.children.remove(0);
    stop_service(&mut svc);

    // --- remove keeps the data, purge leaves nothing ---------------------------------
    run(Command::new("dpkg").arg("-r").arg(PKG));
    assert!(!Path::new("/usr/bin/gemmaedge-tui").exists());
    assert!(!Path::new(UNIT).exists());
    assert_eq!(
        std::fs::read_to_string(skill).unwrap(),
        format!("{SKILL_MARK}\n")
    );
    assert!(Path::new(CONF).is_file(), "remove keeps the config");
    assert!(quiet("getent passwd gemmaedge"), "remove keeps the user");
    run(Command::new("dpkg").arg("-P").arg(PKG));
    assert!(!dpkg_known(), "dpkg forgot the package");
    for gone in [
        "/etc/gemmaedge",
        STATE,
        "/run/gemmaedge",
        "/usr/share/gemmaedge",
        "/usr/share/doc/gemmaedge-tui",
        "/etc/systemd/system/multi-user.target.wants/gemmaedge.service",
        "/etc/systemd/system/gemmaedge.service",
        "/var/lib/systemd/deb-systemd-helper-enabled/gemmaedge.service.dsh-also",
        "/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/gemmaedge.service",
        "/var/lib/systemd/deb-systemd-helper-masked/gemmaedge.service",
    ] {
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} is left after purge"
        );
    }
    assert!(!quiet("getent passwd gemmaedge"), "purge removes the user");
    assert!(!quiet("getent group gemmaedge"), "purge removes the group");
    drop(cleanup);
}
