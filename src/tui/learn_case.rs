//! The case the `a` editor produces (`LearnEdit`) and the eval case it becomes: shared by
//! the editor, `Action` and the run loop that appends it.

use crate::learn::{self, LearnedCase};
use chrono::{DateTime, Local, Utc};

/// What the user confirmed, ready to become a case.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnEdit {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub expect: Vec<String>,
    pub forbid: Vec<String>,
    pub safety: bool,
}

/// `learned-<YYYYmmdd-HHMMSS>-<seq>` from the frame's capture time (local clock).
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
        image: format!("images/learned/{id}.jpg"),
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
