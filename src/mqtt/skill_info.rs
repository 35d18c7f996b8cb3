//! Which skill version is in use: the `skills/history/` entry whose text is the current
//! skill (with the scores its sidecar recorded), else a hash of the text.

use super::payload::SkillInfo;
use std::path::Path;

/// Most history entries compared (newest first).
const MAX_HISTORY: usize = 200;

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn read(p: &Path) -> Option<String> {
    crate::files::bounded_read::read_regular_string(
        p,
        crate::files::bounded_read::MAX_SKILL_FILE_BYTES,
    )
    .ok()
}

/// The skill `name` (as the engine calls it) read from `skills_dir`.
pub fn skill_info(skills_dir: &Path, name: &str) -> SkillInfo {
    let mut info = SkillInfo {
        name: name.to_string(),
        ..Default::default()
    };
    let Some(text) = read(&skills_dir.join("skill.txt")) else {
        info.version = "built-in".into();
        return info;
    };
    let text = text.trim();
    info.version = format!("text-{:08x}", fnv(text) as u32);
    let Ok(dir) = std::fs::read_dir(skills_dir.join("history")) else {
        return info;
    };
    let mut entries: Vec<_> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    entries.sort();
    for p in entries.iter().rev().take(MAX_HISTORY) {
        // History files are the trimmed text plus a newline: compare sizes before reading.
        let len = std::fs::metadata(p).map_or(0, |m| m.len());
        if len.abs_diff(text.len() as u64) > 2 {
            continue;
        }
        if read(p).is_some_and(|t| t.trim() == text) {
            if let Some(stem) = p.file_stem() {
                info.version = stem.to_string_lossy().into_owned();
            }
            if let Some(meta) = read(&p.with_extension("json"))
                .and_then(|j| serde_json::from_str::<crate::roles::skill::SkillMeta>(&j).ok())
            {
                info.train_score = meta.train_score;
                info.holdout_score = meta.holdout_score;
            }
            break;
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_from_history_else_hash() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(skill_info(d.path(), "built-in").version, "built-in");
        std::fs::write(d.path().join("skill.txt"), "Look.\n").unwrap();
        assert!(skill_info(d.path(), "skill.txt")
            .version
            .starts_with("text-"));
        let meta = crate::roles::skill::SkillMeta {
            train_score: Some(0.8),
            holdout_score: Some(0.7),
            eval_hash: String::new(),
            student_model: String::new(),
            teacher_model: String::new(),
            saved_at: chrono::Utc::now(),
            note: String::new(),
            scoring: None,
            contract: String::new(),
        };
        crate::roles::skill::save_skill(d.path(), "Look.", &meta).unwrap();
        let i = skill_info(d.path(), "skill.txt");
        assert!(i.version.ends_with("-0.800"), "{}", i.version);
        assert_eq!(i.train_score, Some(0.8));
    }
}
