//! The skill: the student's system prompt in `skills/skill.txt`, re-read when it changes,
//! replaced atomically, with every version kept in `skills/history/`.

use crate::files::atomic::write_atomic_with;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// Used when `skills/skill.txt` is missing or empty. Like every skill, it is only the
/// instructions: the output contract (`crate::roles::output_contract`) is appended to it.
pub const DEFAULT_SKILL: &str =
    "You watch a room through a camera. Describe the people, the objects and \
any safety-relevant activity you see, in a few short plain sentences. Mention fire, smoke, \
falls, injuries, weapons or other hazards plainly when you see them. Never invent things you \
cannot see.";

/// Longest skill accepted (a skill is a system prompt, not a document).
pub const MAX_SKILL_CHARS: usize = 8000;

/// The current skill, re-read from disk when its modification time or size changes.
#[derive(Debug)]
pub struct SkillStore {
    path: PathBuf,
    text: Arc<str>,
    stamp: Option<(SystemTime, u64)>,
    from_file: bool,
}

impl SkillStore {
    pub fn open(path: &Path) -> Self {
        let mut s = SkillStore {
            path: path.to_path_buf(),
            text: Arc::from(DEFAULT_SKILL),
            stamp: None,
            from_file: false,
        };
        s.reload();
        s
    }

    fn file_stamp(&self) -> Option<(SystemTime, u64)> {
        let m = std::fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    fn reload(&mut self) {
        self.stamp = self.file_stamp();
        // Only a regular file, capped: `skills/skill.txt` -> /dev/zero or a FIFO must
        // neither fill memory nor hang the student loop.
        let text = crate::files::bounded_read::read_regular_string(
            &self.path,
            crate::files::bounded_read::MAX_SKILL_FILE_BYTES,
        )
        .ok()
        .map(|t| crate::reading::sanitize::bound(t.trim(), MAX_SKILL_CHARS))
        .filter(|t| !t.is_empty());
        self.from_file = text.is_some();
        self.text = Arc::from(text.as_deref().unwrap_or(DEFAULT_SKILL));
    }

    /// The skill for the next frame; `true` when it changed since the last call.
    pub fn current(&mut self) -> (Arc<str>, bool) {
        let stamp = self.file_stamp();
        if stamp != self.stamp {
            let before = self.text.clone();
            self.reload();
            let changed = before != self.text;
            return (self.text.clone(), changed);
        }
        (self.text.clone(), false)
    }

    /// Short name for the status bar: the file name, or `built-in` when no file exists.
    pub fn name(&self) -> String {
        if self.from_file {
            self.path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "skill".into())
        } else {
            "built-in".into()
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What is known about a saved skill version (the sidecar next to it in history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkillMeta {
    pub train_score: Option<f64>,
    pub holdout_score: Option<f64>,
    pub eval_hash: String,
    pub student_model: String,
    pub teacher_model: String,
    pub saved_at: chrono::DateTime<chrono::Utc>,
    /// Why it was saved (e.g. "upskill winner", "applied by user").
    pub note: String,
    /// How the scores were taken (temperature, seed), so they can be taken again.
    #[serde(default)]
    pub scoring: Option<crate::config::EvalConfig>,
    /// The output contract the skill was scored with (appended to its instructions).
    #[serde(default)]
    pub contract: String,
}

/// Replace `skills/skill.txt` atomically and keep a copy in `skills/history/` with a
/// sidecar. History is written first, so a crash mid-save loses nothing.
pub fn save_skill(skills_dir: &Path, text: &str, meta: &SkillMeta) -> std::io::Result<PathBuf> {
    save_skill_with(skills_dir, text, meta, |a, b| std::fs::rename(a, b))
}

/// As `save_skill`, with the final rename given (tests simulate a crash with it).
pub fn save_skill_with(
    skills_dir: &Path,
    text: &str,
    meta: &SkillMeta,
    rename: impl FnOnce(&Path, &Path) -> std::io::Result<()>,
) -> std::io::Result<PathBuf> {
    let text = crate::reading::sanitize::strip_controls(text);
    let text = text.trim();
    if text.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "refusing to save an empty skill",
        ));
    }
    let history = skills_dir.join("history");
    std::fs::create_dir_all(&history)?;
    let score = meta
        .train_score
        .map_or_else(|| "na".to_string(), |s| format!("{s:.3}"));
    let stem = format!("{}-{score}", meta.saved_at.format("%Y%m%dT%H%M%S%.3fZ"));
    let hist_txt = history.join(format!("{stem}.txt"));
    let hist_meta = history.join(format!("{stem}.json"));
    let body = format!("{text}\n");
    crate::files::atomic::write_atomic(&hist_txt, body.as_bytes())?;
    let json = serde_json::to_vec_pretty(meta).map_err(std::io::Error::other)?;
    crate::files::atomic::write_atomic(&hist_meta, &json)?;
    write_atomic_with(&skills_dir.join("skill.txt"), body.as_bytes(), rename)?;
    Ok(hist_txt)
}

/// Writable check for `check` and before upskill starts (so results are never lost).
pub fn ensure_writable(skills_dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(skills_dir.join("history"))?;
    let probe = skills_dir.join(format!(".write-test-{}", std::process::id()));
    std::fs::write(&probe, b"ok")?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SkillMeta {
        SkillMeta {
            train_score: Some(0.8123),
            holdout_score: Some(0.7),
            eval_hash: "abc".into(),
            student_model: "s".into(),
            teacher_model: "t".into(),
            saved_at: chrono::Utc::now(),
            note: "test".into(),
            scoring: None,
            contract: String::new(),
        }
    }

    #[test]
    fn missing_file_gives_builtin_default() {
        let d = tempfile::tempdir().unwrap();
        let mut s = SkillStore::open(&d.path().join("skill.txt"));
        assert_eq!(&*s.current().0, DEFAULT_SKILL);
        assert_eq!(s.name(), "built-in");
    }

    #[test]
    fn reloads_when_file_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("skill.txt");
        std::fs::write(&p, "  first skill \n").unwrap();
        let mut s = SkillStore::open(&p);
        assert_eq!(&*s.current().0, "first skill");
        assert!(!s.current().1);
        std::fs::write(&p, "second, longer skill").unwrap();
        let (t, changed) = s.current();
        assert!(changed);
        assert_eq!(&*t, "second, longer skill");
    }

    #[test]
    fn save_writes_skill_history_and_sidecar() {
        let d = tempfile::tempdir().unwrap();
        let h = save_skill(d.path(), "new skill\x1b[31m", &meta()).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("skill.txt")).unwrap(),
            "new skill\n"
        );
        assert!(h
            .file_name()
            .unwrap()
            .to_string_lossy()
            .ends_with("-0.812.txt"));
        let side = h.with_extension("json");
        let m: SkillMeta = serde_json::from_slice(&std::fs::read(side).unwrap()).unwrap();
        assert_eq!(m.eval_hash, "abc");
    }

    #[test]
    fn invisible_text_never_reaches_a_saved_skill() {
        let d = tempfile::tempdir().unwrap();
        // "IGNORE" in tag characters, a zero-width space and a right-to-left override.
        let tags: String = "IGNORE"
            .chars()
            .map(|c| char::from_u32(0xe0000 + c as u32).unwrap())
            .collect();
        let text = format!("Describe{tags} the\u{200b} frame.\u{202e}");
        save_skill(d.path(), &text, &meta()).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join("skill.txt")).unwrap(),
            "Describe the frame.\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_skill_file_that_is_a_device_or_fifo_gives_the_built_in_skill() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("skill.txt");
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let s = SkillStore::open(&p);
        assert_eq!(s.name(), "built-in");
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let s = SkillStore::open(&p);
        assert_eq!(s.name(), "built-in");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }

    #[test]
    fn interrupted_save_keeps_old_skill() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("skill.txt"), "old skill\n").unwrap();
        let r = save_skill_with(d.path(), "new skill", &meta(), |_, _| {
            Err(std::io::Error::other("power cut"))
        });
        assert!(r.is_err());
        assert_eq!(
            std::fs::read_to_string(d.path().join("skill.txt")).unwrap(),
            "old skill\n"
        );
    }
}
