//! `skills/watches.toml`: the watches as the console last saved them (the same
//! `[[watch]]` entries as `config.toml`), written atomically and re-read when it changes,
//! like the skill. While the file does not exist the config's `[[watch]]` apply.

use super::spec::{validate_watches, WatchSpec};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The file's name under `paths.skills`.
pub const FILE_NAME: &str = "watches.toml";

/// Where the watches file is for a skills folder.
pub fn watches_path(skills_dir: &Path) -> PathBuf {
    skills_dir.join(FILE_NAME)
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchFile {
    #[serde(default)]
    watch: Vec<WatchSpec>,
}

/// The text a list of watches is saved as.
pub fn to_toml(watches: &[WatchSpec]) -> String {
    let body = toml::to_string(&WatchFile {
        watch: watches.to_vec(),
    })
    .unwrap_or_default();
    format!(
        "# The watches: yes/no questions the student answers on every frame.\n\
         # Written by the console's watches popup (w); while this file exists it replaces\n\
         # the [[watch]] entries of config.toml.\n\n{body}"
    )
}

/// Read and check watches from TOML text (`path` names them in messages).
pub fn parse(text: &str, path: &Path) -> Result<Vec<WatchSpec>, String> {
    let file: WatchFile = toml::from_str(text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| {
            crate::config::toml_diag::line_col(text, s.start)
        });
        let msg = crate::config::toml_diag::improve_message(
            e.message().trim(),
            text,
            e.span().map_or(0, |s| s.start),
        );
        format!("{}:{line}:{col}: {msg}", path.display())
    })?;
    let problems = validate_watches("watch", &file.watch);
    if problems.is_empty() {
        Ok(file.watch)
    } else {
        Err(format!("{}: {}", path.display(), problems.join("; ")))
    }
}

/// The watches in `path`: None when it does not exist.
pub fn load(path: &Path) -> Result<Option<Vec<WatchSpec>>, String> {
    match crate::files::bounded_read::read_regular_string(
        path,
        crate::files::bounded_read::MAX_SKILL_FILE_BYTES,
    ) {
        Ok(text) => parse(&text, path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Check and save `watches` to `path` atomically (a crash leaves the old file whole). A
/// list that does not pass the checks is refused with the reasons.
pub fn save(path: &Path, watches: &[WatchSpec]) -> Result<(), String> {
    let problems = validate_watches("watch", watches);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    crate::files::atomic::write_atomic(path, to_toml(watches).as_bytes())
        .map_err(|e| format!("cannot save {}: {e}", path.display()))
}

/// The current watches: the file's when it exists, else the config's; re-read when the
/// file's modification time or size changes.
#[derive(Debug)]
pub struct WatchSource {
    path: PathBuf,
    config: Vec<WatchSpec>,
    stamp: Option<(SystemTime, u64)>,
    current: Vec<WatchSpec>,
}

/// What `WatchSource::poll` found.
#[derive(Debug, PartialEq)]
pub enum Poll {
    Same,
    /// The list changed (the file was written, or removed).
    Changed,
    /// The file changed but cannot be used; the list stays as it was.
    Refused(String),
}

impl WatchSource {
    /// Starts with the file's watches, else the config's; a bad file is said (the second
    /// value) and the config's apply.
    pub fn open(path: &Path, config: &[WatchSpec]) -> (Self, Option<String>) {
        let mut s = WatchSource {
            path: path.to_path_buf(),
            config: config.to_vec(),
            stamp: None,
            current: config.to_vec(),
        };
        let problem = match s.poll() {
            Poll::Refused(why) => Some(why),
            _ => None,
        };
        (s, problem)
    }

    fn file_stamp(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    /// Look at the file again (cheap when it did not change).
    pub fn poll(&mut self) -> Poll {
        let stamp = self.file_stamp();
        if stamp == self.stamp {
            return Poll::Same;
        }
        self.stamp = stamp;
        let next = match load(&self.path) {
            Ok(Some(w)) => w,
            Ok(None) => self.config.clone(),
            Err(why) => return Poll::Refused(why),
        };
        if next == self.current {
            return Poll::Same;
        }
        self.current = next;
        Poll::Changed
    }

    /// Read the file again whatever its stamp says (after saving it: a coarse clock can
    /// give the new file the old one's time and size).
    pub fn reread(&mut self) -> Poll {
        self.stamp = None;
        self.poll()
    }

    pub fn current(&self) -> &[WatchSpec] {
        &self.current
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_watches_read_back_and_replace_the_configs() {
        let d = tempfile::tempdir().unwrap();
        let path = watches_path(d.path());
        let config = vec![WatchSpec::new("garage_door", "Is the garage door open?")];
        let (mut src, problem) = WatchSource::open(&path, &config);
        assert!(problem.is_none());
        assert_eq!(src.current(), &config[..]);
        let mut stove = WatchSpec::new("stove_on", "Is the stove on with nobody in the room?");
        stove.level = 2;
        stove.notify = crate::watch::Notify::OnChange;
        save(&path, &[stove.clone()]).unwrap();
        assert_eq!(src.poll(), Poll::Changed);
        assert_eq!(src.current(), &[stove.clone()][..]);
        assert_eq!(load(&path).unwrap(), Some(vec![stove]));
        // Removed: the config's apply again.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(src.poll(), Poll::Changed);
        assert_eq!(src.current(), &config[..]);
    }

    #[test]
    fn a_bad_file_is_refused_with_its_place_and_the_list_stays() {
        let d = tempfile::tempdir().unwrap();
        let path = watches_path(d.path());
        let config = vec![WatchSpec::new("garage_door", "Is the garage door open?")];
        let (mut src, _) = WatchSource::open(&path, &config);
        std::fs::write(
            &path,
            "[[watch]]\nid = \"Garage Door\"\nquestion = \"Open?\"\n",
        )
        .unwrap();
        let Poll::Refused(why) = src.poll() else {
            panic!("refused expected")
        };
        assert!(
            why.contains("watch[1] (id \"Garage Door\"): id must be a slug"),
            "{why}"
        );
        assert_eq!(src.current(), &config[..]);
        std::fs::write(&path, "[[watch]]\nid = \"a\"\nquestoin = \"Open?\"\n").unwrap();
        let Poll::Refused(why) = src.poll() else {
            panic!("refused expected")
        };
        assert!(why.contains(":3:1: unknown key"), "{why}");
        // Refused saves leave the file alone.
        let before = std::fs::read(&path).unwrap();
        let err = save(&path, &[WatchSpec::new("a", "")]).unwrap_err();
        assert!(err.contains("question must not be empty"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
