//! The `a` editor: turn a reviewed frame into an eval case. Three lines (expect, forbid,
//! safety) pre-filled from the teacher's verdict, edited with a small line editor. Pure.

use crate::learn;
use crate::learn::console::LearnEdit;
use crate::roles::verdict::Verdict;
use crate::tui::action::Action;
use crate::tui::keys::{self, Context, KeyAction};
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent};

pub const FIELDS: [&str; 3] = ["expect", "forbid", "safety"];
/// Longest field accepted (characters).
const FIELD_MAX: usize = 400;

/// The open editor.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnEditor {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    /// The teacher's summary, shown for reference (untrusted text).
    pub summary: String,
    pub fields: [String; 3],
    /// Focused field.
    pub focus: usize,
    /// Cursor in the focused field, in characters.
    pub cursor: usize,
    /// Why the last Enter did not save.
    pub error: Option<String>,
}

/// `a, b , ,c` → `["a", "b", "c"]` (controls stripped).
pub fn parse_list(s: &str) -> Vec<String> {
    crate::reading::sanitize::strip_controls(s)
        .split(',')
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

pub fn parse_yes_no(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" => Some(true),
        "no" | "n" | "false" | "0" => Some(false),
        _ => None,
    }
}

impl LearnEditor {
    /// Pre-filled from a structured verdict; None when the verdict is not one.
    pub fn open(seq: u64, captured_at: DateTime<Utc>, v: &Verdict) -> Option<Self> {
        v.agrees?;
        let expect = learn::expect_words(v);
        let forbid = learn::forbid_words(v, &expect);
        let safety = v.safety_relevant.unwrap_or(false);
        let fields = [
            expect.join(", "),
            forbid.join(", "),
            if safety { "yes" } else { "no" }.to_string(),
        ];
        let cursor = fields[0].chars().count();
        Some(LearnEditor {
            seq,
            captured_at,
            summary: v.summary.clone(),
            fields,
            focus: 0,
            cursor,
            error: None,
        })
    }

    /// The focus and cursor over the fields, to edit them.
    fn cursor(&mut self) -> crate::tui::form::Cursor<'_> {
        crate::tui::form::Cursor {
            fields: &mut self.fields,
            focus: &mut self.focus,
            cursor: &mut self.cursor,
        }
    }

    /// The edit as typed, or why it cannot be saved.
    pub fn result(&self) -> Result<LearnEdit, String> {
        let expect = parse_list(&self.fields[0]);
        if expect.is_empty() {
            return Err("expect needs at least one word".into());
        }
        let safety =
            parse_yes_no(&self.fields[2]).ok_or_else(|| "safety must be yes or no".to_string())?;
        Ok(LearnEdit {
            seq: self.seq,
            captured_at: self.captured_at,
            expect,
            forbid: parse_list(&self.fields[1]),
            safety,
        })
    }

    /// A key in the editor. `None` = closed (Esc); otherwise the actions to take.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        let Some(action) = keys::lookup(&[Context::LearnEditor], &key) else {
            return Some(Vec::new());
        };
        match action {
            KeyAction::Cancel => return None,
            KeyAction::Submit => match self.result() {
                Ok(edit) => return Some(vec![Action::SaveLearned(edit), Action::Redraw]),
                Err(e) => self.error = Some(e),
            },
            edit => {
                let typed = match key.code {
                    KeyCode::Char(c) => Some(c),
                    _ => None,
                };
                if !self.cursor().edit(edit, typed, FIELD_MAX) {
                    return Some(Vec::new());
                }
            }
        }
        Some(vec![Action::Redraw])
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::cases::Split;
    use crate::learn::console::{case_id, learned_case};
    use crossterm::event::KeyModifiers;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    pub fn verdict() -> Verdict {
        Verdict {
            level: None,
            title: String::new(),
            watches: Default::default(),
            truncated: false,
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "Steam rises from a kettle on the stove.".into(),
            missed: vec!["a kettle".into()],
            wrong: vec!["smoke".into()],
            raw: None,
        }
    }

    pub fn editor() -> LearnEditor {
        LearnEditor::open(7, Utc::now(), &verdict()).unwrap()
    }

    fn typ(e: &mut LearnEditor, s: &str) {
        for c in s.chars() {
            e.handle_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn prefilled_from_the_verdict() {
        let e = editor();
        assert_eq!(e.fields[0], "kettle, steam, rises, stove");
        assert_eq!(e.fields[1], "smoke");
        assert_eq!(e.fields[2], "yes");
        assert_eq!((e.focus, e.cursor), (0, e.fields[0].chars().count()));
        // An unreadable verdict cannot be learned from.
        let raw = Verdict {
            raw: Some("hm".into()),
            ..Verdict::default()
        };
        assert!(LearnEditor::open(1, Utc::now(), &raw).is_none());
    }

    #[test]
    fn line_editing_across_fields() {
        let mut e = editor();
        typ(&mut e, ", pot");
        assert_eq!(e.fields[0], "kettle, steam, rises, stove, pot");
        for _ in 0..3 {
            e.handle_key(key(KeyCode::Left));
        }
        e.handle_key(key(KeyCode::Backspace));
        e.handle_key(key(KeyCode::Backspace));
        assert_eq!(e.fields[0], "kettle, steam, rises, stovepot");
        typ(&mut e, "é ");
        assert_eq!(e.fields[0], "kettle, steam, rises, stoveé pot");
        e.handle_key(key(KeyCode::Home));
        e.handle_key(key(KeyCode::Delete));
        assert!(e.fields[0].starts_with("ettle"));
        // Tab to forbid, type; Up back to expect; BackTab wraps to safety.
        e.handle_key(key(KeyCode::Tab));
        assert_eq!(e.focus, 1);
        typ(&mut e, ", fire");
        assert_eq!(e.fields[1], "smoke, fire");
        e.handle_key(key(KeyCode::Down));
        assert_eq!(e.focus, 2);
        for _ in 0..5 {
            e.handle_key(key(KeyCode::Backspace));
        }
        assert_eq!(e.fields[2], "");
        e.handle_key(key(KeyCode::Right));
        typ(&mut e, "no");
        e.handle_key(key(KeyCode::Tab));
        assert_eq!(e.focus, 0, "wraps");
        e.handle_key(key(KeyCode::BackTab));
        assert_eq!(e.focus, 2);

        let acts = e.handle_key(key(KeyCode::Enter)).unwrap();
        let Action::SaveLearned(edit) = &acts[0] else {
            panic!("{acts:?}")
        };
        assert_eq!(edit.seq, 7);
        assert_eq!(edit.expect, vec!["ettle", "steam", "rises", "stoveé pot"]);
        assert_eq!(edit.forbid, vec!["smoke", "fire"]);
        assert!(!edit.safety);
        assert_eq!(e.handle_key(key(KeyCode::Esc)), None);
    }

    #[test]
    fn bad_input_is_not_saved() {
        let mut e = editor();
        e.fields[2] = "maybe".into();
        assert_eq!(
            e.handle_key(key(KeyCode::Enter)),
            Some(vec![Action::Redraw])
        );
        assert_eq!(e.error.as_deref(), Some("safety must be yes or no"));
        e.fields[2] = "no".into();
        e.fields[0] = " , ,".into();
        e.handle_key(key(KeyCode::Enter));
        assert_eq!(e.error.as_deref(), Some("expect needs at least one word"));
    }

    #[test]
    fn the_resulting_case() {
        let mut e = editor();
        e.fields[0] = "kettle, st\x07eam".into();
        let edit = e.result().unwrap();
        let c = learned_case(&edit, 3, "gemma4:e2b", "gemma4:26b");
        let id = case_id(&edit);
        assert!(id.starts_with("learned-") && id.ends_with("-7"), "{id}");
        assert_eq!(id.len(), "learned-20250101-120000-7".len());
        assert_eq!(c.id, id);
        assert_eq!(c.image, format!("images/learned/{id}.jpg"));
        assert_eq!(c.expect, vec!["kettle", "steam"]);
        assert_eq!(c.forbid, vec!["smoke"]);
        assert!(c.safety);
        assert_eq!(c.split, Split::Holdout, "the 4th learned case");
        assert_eq!(learned_case(&edit, 0, "s", "t").split, Split::Train);
        assert_eq!(
            c.source,
            "console, frame #7, student gemma4:e2b, teacher gemma4:26b"
        );
    }
}
