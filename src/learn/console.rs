//! A case from the console's `a` editor: what the user confirmed about a frame, turned
//! into a learned case and appended with the frame the model saw. Whoever runs the
//! engine does the writing (the service, or the console's own engine), so an attached
//! console cannot make it write outside `paths.eval`.

use crate::config::Config;
use crate::frame::PreparedFrame;
use crate::learn::{self, LearnedCase};
use chrono::{DateTime, Local, Utc};
use std::sync::Arc;

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
) -> (String, bool) {
    let eval = &config.paths.eval;
    let learned = eval.join(learn::LEARNED_FILE);
    let Some(frame) = frame else {
        return (
            format!("#{} is no longer in the log: not added", edit.seq),
            true,
        );
    };
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
        let (msg, warn) = save(&config, &edit(), Some(frame.clone()));
        assert!(!warn, "{msg}");
        assert!(msg.contains("added case learned-"), "{msg}");
        let toml = std::fs::read_to_string(config.paths.eval.join(learn::LEARNED_FILE)).unwrap();
        assert!(toml.contains("kettle") && toml.contains("frame #7"));
        let (msg, warn) = save(&config, &edit(), Some(frame));
        assert!(warn && msg.contains("already"), "{msg}");
        let (msg, warn) = save(&config, &edit(), None);
        assert!(warn && msg.contains("no longer in the log"), "{msg}");
    }
}
