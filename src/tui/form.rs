//! Editing a form of text lines (the `a` editor, the `w` popup's watch form): which line
//! has the focus, where the cursor is, typing and deleting. Pure.

use crate::tui::keys::KeyAction;

/// The form's focus and cursor (in chars) over its `fields`.
pub struct Cursor<'a> {
    pub fields: &'a mut [String],
    pub focus: &'a mut usize,
    pub cursor: &'a mut usize,
}

impl Cursor<'_> {
    fn len(&self) -> usize {
        self.fields[*self.focus].chars().count()
    }

    fn byte_at(&self, i: usize) -> usize {
        let f = &self.fields[*self.focus];
        f.char_indices().nth(i).map_or(f.len(), |(b, _)| b)
    }

    /// Focus line `i` (wrapping), the cursor at its end.
    pub fn focus_on(&mut self, i: usize) {
        *self.focus = i % self.fields.len();
        *self.cursor = self.len();
    }

    /// Apply an editing key (`typed`: the character of a `Type`); a line stops growing at
    /// `max_chars`. False when `action` is not an editing key.
    pub fn edit(&mut self, action: KeyAction, typed: Option<char>, max_chars: usize) -> bool {
        match action {
            KeyAction::NextField => self.focus_on(*self.focus + 1),
            KeyAction::PrevField => self.focus_on(*self.focus + self.fields.len() - 1),
            KeyAction::Left => *self.cursor = self.cursor.saturating_sub(1),
            KeyAction::Right => *self.cursor = (*self.cursor + 1).min(self.len()),
            KeyAction::Home => *self.cursor = 0,
            KeyAction::End => *self.cursor = self.len(),
            KeyAction::Backspace => {
                if *self.cursor > 0 {
                    let at = self.byte_at(*self.cursor - 1);
                    self.fields[*self.focus].remove(at);
                    *self.cursor -= 1;
                }
            }
            KeyAction::Delete => {
                if *self.cursor < self.len() {
                    let at = self.byte_at(*self.cursor);
                    self.fields[*self.focus].remove(at);
                }
            }
            KeyAction::Type => {
                if let Some(c) = typed {
                    if self.len() < max_chars {
                        let at = self.byte_at(*self.cursor);
                        self.fields[*self.focus].insert(at, c);
                        *self.cursor += 1;
                    }
                }
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_moving_and_deleting_keep_the_cursor_on_char_boundaries() {
        let mut fields = vec!["ab".to_string(), "ü".to_string()];
        let (mut focus, mut cursor) = (0, 2);
        let mut c = Cursor {
            fields: &mut fields,
            focus: &mut focus,
            cursor: &mut cursor,
        };
        assert!(c.edit(KeyAction::Left, None, 10));
        assert!(c.edit(KeyAction::Type, Some('é'), 10));
        assert!(c.edit(KeyAction::NextField, None, 10));
        assert!(c.edit(KeyAction::Backspace, None, 10));
        assert!(c.edit(KeyAction::Type, Some('x'), 1));
        assert!(
            c.edit(KeyAction::Type, Some('y'), 1),
            "an edit key, though full"
        );
        assert!(c.edit(KeyAction::PrevField, None, 10));
        assert!(c.edit(KeyAction::Home, None, 10));
        assert!(c.edit(KeyAction::Delete, None, 10));
        assert!(!c.edit(KeyAction::Submit, None, 10));
        assert_eq!(fields, ["éb", "x"]);
        assert_eq!((focus, cursor), (0, 0));
    }
}
