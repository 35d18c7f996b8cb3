//! A case from the console's `a` editor: what the user confirmed about a frame, turned
//! into a learned case and appended with the frame the model saw. Whoever runs the
//! engine does the writing (the service, or the console's own engine), so an attached
//! console cannot make it write outside `paths.eval`.

use crate::config::Config;
use crate::frame::PreparedFrame;
use crate::learn::{self, LearnedCase};
use crate::policy::per_minute::PerMinute;
use chrono::{DateTime, Local, Utc};
use std::sync::Arc;
use std::time::Instant;

/// Most `expect` (and `forbid`) entries in one case.
pub const MAX_ITEMS: usize = 20;
/// Longest entry, in characters (a word or a short phrase).
pub const MAX_ITEM_CHARS: usize = 200;
/// Cases saved per minute, from every console together.
pub const MAX_PER_MINUTE: usize = 20;
/// `eval/learned.toml` is not grown past this (eval and upskill read it whole).
pub const MAX_LEARNED_BYTES: u64 = 1024 * 1024;

/// A case's fields made safe to store: control and invisible format characters removed
/// (nothing is escaped, so nothing grows), blanks trimmed, empty entries dropped; an
/// entry or a list over its cap is refused with the reason.
pub fn clean_edit(edit: &LearnEdit) -> Result<LearnEdit, String> {
    let clean = |name: &str, items: &[String]| -> Result<Vec<String>, String> {
        if items.len() > MAX_ITEMS {
            return Err(format!(
                "{name} has {} entries, at most {MAX_ITEMS}",
                items.len()
            ));
        }
        let mut out = Vec::new();
        for it in items {
            let kept: String = crate::reading::sanitize::strip_controls(it)
                .chars()
                .filter(|c| !c.is_control() && !crate::reading::sanitize::is_invisible_format(*c))
                .collect();
            let kept = kept.split_whitespace().collect::<Vec<_>>().join(" ");
            let n = kept.chars().count();
            if n > MAX_ITEM_CHARS {
                return Err(format!(
                    "an entry of {name} has {n} characters, at most {MAX_ITEM_CHARS}"
                ));
            }
            if !kept.is_empty() {
                out.push(kept);
            }
        }
        Ok(out)
    };
    Ok(LearnEdit {
        expect: clean("expect", &edit.expect)?,
        forbid: clean("forbid", &edit.forbid)?,
        ..edit.clone()
    })
}

/// Cases saved in the last minute (pure, given the time): at most [`MAX_PER_MINUTE`].
#[derive(Debug)]
pub struct SaveLimit(PerMinute);

impl Default for SaveLimit {
    fn default() -> Self {
        SaveLimit(PerMinute::new(MAX_PER_MINUTE))
    }
}

impl SaveLimit {
    /// May one more be saved now? Counts it when yes.
    pub fn admit(&mut self, now: Instant) -> bool {
        self.0.admit(now)
    }
}

/// What the user confirmed, ready to become a case.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnEdit {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub expect: Vec<String>,
    pub forbid: Vec<String>,
    pub safety: bool,
}

/// `learned-YYYYmmdd-HHMMSS-<seq>`, from the frame's capture time (local).
pub fn case_id(edit: &LearnEdit) -> String {
    format!(
        "learned-{}-{}",
        edit.captured_at
            .with_timezone(&Local)
            .format("%Y%m%d-%H%M%S"),
        edit.seq
    )
}

/// The case to append: id, image path, split from how many learned cases exist already.
pub fn learned_case(
    edit: &LearnEdit,
    existing: usize,
    student_model: &str,
    teacher_model: &str,
) -> LearnedCase {
    let id = case_id(edit);
    LearnedCase {
        image: format!("{}/{id}.jpg", learn::LEARNED_IMAGES),
        expect: edit.expect.clone(),
        forbid: edit.forbid.clone(),
        safety: edit.safety,
        split: learn::split_for(existing),
        source: format!(
            "console, frame #{}, student {student_model}, teacher {teacher_model}",
            edit.seq
        ),
        id,
    }
}

/// Append the case with its frame; the message for the status bar and whether it is a
/// warning.
pub fn save(
    config: &Config,
    edit: &LearnEdit,
    frame: Option<Arc<PreparedFrame>>,
    limit: &mut SaveLimit,
) -> (String, bool) {
    let eval = &config.paths.eval;
    let learned = eval.join(learn::LEARNED_FILE);
    let edit = match clean_edit(edit) {
        Ok(e) => e,
        Err(why) => return (format!("case not added: {why}"), true),
    };
    let edit = &edit;
    let Some(frame) = frame else {
        return (
            format!("#{} is no longer in the log: not added", edit.seq),
            true,
        );
    };
    let size = std::fs::metadata(&learned).map(|m| m.len()).unwrap_or(0);
    if size >= MAX_LEARNED_BYTES {
        return (
            format!(
                "case not added: {} is {} KB already (at most {} KB): review it and move or delete cases",
                learned.display(),
                size / 1024,
                MAX_LEARNED_BYTES / 1024
            ),
            true,
        );
    }
    if !limit.admit(Instant::now()) {
        return (
            format!("case not added: at most {MAX_PER_MINUTE} cases a minute; try again shortly"),
            true,
        );
    }
    let (_, count) = learn::existing(eval);
    let case = learned_case(edit, count, &config.student.model, &config.teacher.model);
    // The frame the model saw, handed over as bytes (no temp file in a shared /tmp).
    match learn::append_cases(eval, &[(case.clone(), frame.jpeg.clone())]) {
        Ok(0) => (
            format!("case {} is already in {}", case.id, learned.display()),
            true,
        ),
        Ok(_) => (
            format!("added case {} to {}", case.id, learned.display()),
            false,
        ),
        Err(e) => (
            format!("cannot add the case to {}: {e}", learned.display()),
            true,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> LearnEdit {
        LearnEdit {
            seq: 7,
            captured_at: Utc::now(),
            expect: vec!["kettle".into()],
            forbid: vec!["smoke".into()],
            safety: false,
        }
    }

    #[test]
    fn saves_once_with_the_frame_and_refuses_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.paths.eval = dir.path().join("eval");
        std::fs::create_dir_all(&config.paths.eval).unwrap();
        let frame = Arc::new(PreparedFrame {
            width: 1,
            height: 1,
            jpeg: vec![0xff, 0xd8, 0xff, 0xe0, 0, 0].into(),
            base64: "".into(),
        });
        let (msg, warn) = save(
            &config,
            &edit(),
            Some(frame.clone()),
            &mut SaveLimit::default(),
        );
        assert!(!warn, "{msg}");
        assert!(msg.contains("added case learned-"), "{msg}");
        let toml = std::fs::read_to_string(config.paths.eval.join(learn::LEARNED_FILE)).unwrap();
        assert!(toml.contains("kettle") && toml.contains("frame #7"));
        let (msg, warn) = save(&config, &edit(), Some(frame), &mut SaveLimit::default());
        assert!(warn && msg.contains("already"), "{msg}");
        let (msg, warn) = save(&config, &edit(), None, &mut SaveLimit::default());
        assert!(warn && msg.contains("no longer in the log"), "{msg}");
    }

    #[test]
    fn fields_are_cleaned_compactly_and_capped() {
        let mut e = edit();
        e.expect = vec![
            "ket\u{7f}tle\u{200b}".into(),
            "  a\u{1b}[31m  red\tmug ".into(),
            "\u{7f}\u{7f}".into(),
        ];
        let c = clean_edit(&e).unwrap();
        assert_eq!(c.expect, vec!["kettle", "a red mug"]);
        e.expect = vec!["\u{7f}".repeat(60_000)];
        assert!(
            clean_edit(&e).unwrap().expect.is_empty(),
            "all junk: nothing kept"
        );
        e.expect = vec!["w".repeat(MAX_ITEM_CHARS + 1)];
        assert!(clean_edit(&e).unwrap_err().contains("at most 200"));
        e.expect = vec!["w".into(); MAX_ITEMS + 1];
        assert!(clean_edit(&e).unwrap_err().contains("at most 20"));
    }

    #[test]
    fn at_most_so_many_a_minute() {
        use std::time::Duration;
        let t0 = Instant::now();
        let mut l = SaveLimit::default();
        for _ in 0..MAX_PER_MINUTE {
            assert!(l.admit(t0));
        }
        assert!(!l.admit(t0 + Duration::from_secs(59)));
        assert!(l.admit(t0 + Duration::from_secs(60)));
    }
}
