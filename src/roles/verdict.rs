//! The teacher's verdict on a student answer: asked for as JSON (Ollama's `format`
//! schema), parsed tolerantly, and kept as raw text when the model ignores the schema.
//! Its `level` (0 nothing, 1 worth a look, 2 urgent) and `title` feed incidents.

use serde::{Deserialize, Serialize};

/// The most a verdict's title may hold (characters).
pub const MAX_TITLE: usize = 60;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Verdict {
    /// None when the teacher's reply could not be read as a verdict.
    pub agrees: Option<bool>,
    pub safety_relevant: Option<bool>,
    pub summary: String,
    pub missed: Vec<String>,
    pub wrong: Vec<String>,
    /// The reply as text, when it was not the JSON asked for.
    pub raw: Option<String>,
    /// The reply was cut (token cap) before its JSON closed: the fields here are what
    /// was complete. A cut verdict never counts as an agreement (`agrees` is then only
    /// ever `Some(false)` or `None`).
    #[serde(default)]
    pub truncated: bool,
    /// What the teacher said needs attention: 0 nothing, 1 worth a look, 2 urgent (fire, a
    /// fall, an injury, a weapon, an intruder). None when it did not say (older teachers,
    /// older logs): [`level`] then derives it from `safety_relevant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u8>,
    /// A headline of at most `MAX_TITLE` characters ("" when not given).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    /// The teacher's answer to each watch it was asked (`{"garage_door": true}`); it
    /// decides a watch's state where it differs from the student's.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watches: std::collections::BTreeMap<String, bool>,
}

/// The level a verdict counts for (incidents, alerts): what the teacher said, at least 1
/// when it called the frame safety-relevant; 0 for an unreadable reply; at most 1 for a
/// cut one (what it would have said next is unknown, so it never makes anything urgent).
pub fn level(v: &Verdict) -> u8 {
    if v.raw.is_some() {
        return 0;
    }
    let safety = u8::from(v.safety_relevant == Some(true));
    let said = v.level.unwrap_or(safety).min(2).max(safety);
    if v.truncated {
        said.min(1)
    } else {
        said
    }
}

/// The title a verdict counts for: its own, else the start of its summary, else its level
/// in words.
pub fn title(v: &Verdict) -> String {
    let t = if v.title.trim().is_empty() {
        v.summary.trim()
    } else {
        v.title.trim()
    };
    let t: String = crate::reading::sanitize::strip_controls(t)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if t.is_empty() {
        // Neither a title nor a summary: an incident still needs words in a list.
        return match level(v) {
            0 => String::new(),
            1 => "Worth a look (the teacher gave no title)".into(),
            _ => "Urgent (the teacher gave no title)".into(),
        };
    }
    if t.chars().count() <= MAX_TITLE {
        t
    } else {
        let mut s: String = t.chars().take(MAX_TITLE - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(safety: Option<bool>, level: Option<u8>) -> Verdict {
        Verdict {
            agrees: Some(false),
            safety_relevant: safety,
            summary: "Smoke rises from a pan on the stove.".into(),
            level,
            ..Verdict::default()
        }
    }

    #[test]
    fn level_from_the_teacher_or_from_safety_relevant() {
        assert_eq!(level(&v(Some(true), Some(2))), 2);
        assert_eq!(level(&v(Some(false), Some(1))), 1);
        // Older verdicts: no level, safety-relevant means worth a look.
        assert_eq!(level(&v(Some(true), None)), 1);
        assert_eq!(level(&v(Some(false), None)), 0);
        assert_eq!(level(&v(None, None)), 0);
        // A contradiction (level 0 but safety-relevant) errs on the side of a look.
        assert_eq!(level(&v(Some(true), Some(0))), 1);
        // Out of range is clamped.
        assert_eq!(level(&v(Some(true), Some(9))), 2);
    }

    #[test]
    fn a_cut_or_unreadable_verdict_never_raises_a_level() {
        let mut cut = v(Some(true), Some(2));
        cut.truncated = true;
        assert_eq!(level(&cut), 1, "a cut verdict is never urgent");
        let raw = Verdict {
            raw: Some("FIRE FIRE level 2".into()),
            level: Some(2),
            safety_relevant: Some(true),
            ..Verdict::default()
        };
        assert_eq!(level(&raw), 0);
    }

    #[test]
    fn title_is_bounded_one_line_and_falls_back_to_the_summary() {
        let mut x = v(Some(true), Some(2));
        assert_eq!(title(&x), "Smoke rises from a pan on the stove.");
        x.title = "Pan\nsmoking \u{1b}[31mon stove".into();
        assert_eq!(title(&x), "Pan smoking on stove");
        x.title = "x".repeat(200);
        assert_eq!(title(&x).chars().count(), MAX_TITLE);
        x.title = " \n".into();
        x.summary = "\u{1b}[0m".into();
        assert_eq!(title(&x), "Urgent (the teacher gave no title)");
        x.level = Some(1);
        assert_eq!(title(&x), "Worth a look (the teacher gave no title)");
        x.safety_relevant = Some(false);
        x.level = Some(0);
        assert_eq!(title(&x), "");
        // Old verdict lines (no level, no title) read back.
        let old = r#"{"agrees":true,"safety_relevant":false,"summary":"ok","missed":[],"wrong":[],"raw":null}"#;
        let back: Verdict = serde_json::from_str(old).unwrap();
        assert_eq!(back.level, None);
        assert_eq!(back.title, "");
    }
}
