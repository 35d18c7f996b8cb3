//! The watches popup's state and keys (pure). The list shows each watch and its state;
//! `n` adds one, Enter edits the selected one, `d` removes it. A form has five lines (id,
//! question, notify, level, debounce); Enter checks the whole list as the config does and
//! either refuses with the reason or sends it to the engine, which saves it atomically to
//! `skills/watches.toml` (the service's engine when attached).

use crate::event::Command;
use crate::tui::action::Action;
use crate::tui::keys::{self, Context, KeyAction};
use crate::watch::spec::{slugify, MAX_QUESTION_CHARS};
use crate::watch::{validate_watches, Notify, WatchSpec, WatchStatus};
use crossterm::event::{KeyCode, KeyEvent};

pub const FORM_FIELDS: [&str; 5] = ["id", "question", "notify", "level", "debounce"];

/// A watch being added or edited.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchForm {
    /// The list index being edited; None for a new watch.
    pub editing: Option<usize>,
    pub fields: [String; 5],
    pub focus: usize,
    /// Cursor in the focused line, in characters.
    pub cursor: usize,
}

/// The open popup.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchesPopup {
    /// The watches as they will be saved.
    pub list: Vec<WatchSpec>,
    /// Their states, as the engine last said.
    pub states: Vec<WatchStatus>,
    pub selected: usize,
    pub form: Option<WatchForm>,
    /// Why the last change was refused.
    pub error: Option<String>,
}

impl WatchForm {
    pub fn of(editing: Option<usize>, w: &WatchSpec) -> Self {
        let fields = [
            w.id.clone(),
            w.question.clone(),
            w.notify.as_str().to_string(),
            w.level.to_string(),
            w.debounce.to_string(),
        ];
        let focus = if editing.is_some() { 1 } else { 0 };
        WatchForm {
            editing,
            cursor: fields[focus].chars().count(),
            fields,
            focus,
        }
    }

    /// The focus and cursor over the fields, to edit them.
    fn cursor(&mut self) -> crate::tui::form::Cursor<'_> {
        crate::tui::form::Cursor {
            fields: &mut self.fields,
            focus: &mut self.focus,
            cursor: &mut self.cursor,
        }
    }

    /// The watch as typed, or why it is not one.
    pub fn watch(&self) -> Result<WatchSpec, String> {
        let f = |i: usize| crate::reading::sanitize::strip_controls(self.fields[i].trim());
        let mut id = f(0);
        if id.is_empty() {
            id = slugify(&f(1));
        }
        let notify = Notify::ALL
            .into_iter()
            .find(|n| n.as_str() == f(2).to_ascii_lowercase())
            .ok_or_else(|| format!("notify must be on_yes, on_change or never, got {:?}", f(2)))?;
        let level = f(3)
            .parse::<u8>()
            .map_err(|_| format!("level must be 1 or 2, got {:?}", f(3)))?;
        let debounce = f(4)
            .parse::<u32>()
            .map_err(|_| format!("debounce must be a number of frames, got {:?}", f(4)))?;
        Ok(WatchSpec {
            id,
            question: f(1),
            notify,
            level,
            debounce,
        })
    }
}

impl WatchesPopup {
    pub fn open(states: &[WatchStatus]) -> Self {
        WatchesPopup {
            list: states.iter().map(WatchStatus::spec).collect(),
            states: states.to_vec(),
            selected: 0,
            form: None,
            error: None,
        }
    }

    /// The engine said how the watches stand: states always, the list unless a form is
    /// open (what is being typed stays).
    pub fn update(&mut self, states: &[WatchStatus]) {
        self.states = states.to_vec();
        if self.form.is_none() {
            self.list = states.iter().map(WatchStatus::spec).collect();
            self.selected = self.selected.min(self.list.len().saturating_sub(1));
        }
    }

    /// `list` checked as the config is checked: sent to the engine, or refused with why.
    fn commit(&mut self, list: Vec<WatchSpec>) -> Vec<Action> {
        let problems = validate_watches("watch", &list);
        if let Some(first) = problems.first() {
            self.error = Some(first.clone());
            return vec![Action::Redraw];
        }
        self.list = list.clone();
        self.form = None;
        self.error = None;
        self.selected = self.selected.min(self.list.len().saturating_sub(1));
        vec![Action::Engine(Command::SetWatches(list)), Action::Redraw]
    }

    /// A key in the popup. `None` = closed; otherwise the actions to take.
    pub fn handle_key(&mut self, key: KeyEvent) -> Option<Vec<Action>> {
        if self.form.is_some() {
            return Some(self.form_key(key));
        }
        let Some(action) = keys::lookup(&[Context::WatchesList], &key) else {
            return Some(Vec::new());
        };
        match action {
            KeyAction::Cancel => return None,
            KeyAction::Up => self.selected = self.selected.saturating_sub(1),
            KeyAction::Down => {
                self.selected = (self.selected + 1).min(self.list.len().saturating_sub(1))
            }
            KeyAction::New => {
                let mut w = WatchSpec::new("", "");
                w.question = String::new();
                self.form = Some(WatchForm::of(None, &w));
                self.error = None;
            }
            KeyAction::Edit => {
                if let Some(w) = self.list.get(self.selected) {
                    self.form = Some(WatchForm::of(Some(self.selected), w));
                    self.error = None;
                }
            }
            KeyAction::Remove => {
                if self.selected < self.list.len() {
                    let mut list = self.list.clone();
                    list.remove(self.selected);
                    return Some(self.commit(list));
                }
            }
            _ => return Some(Vec::new()),
        }
        Some(vec![Action::Redraw])
    }

    fn form_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let Some(action) = keys::lookup(&[Context::WatchesForm], &key) else {
            return Vec::new();
        };
        let Some(form) = self.form.as_mut() else {
            return Vec::new();
        };
        match action {
            KeyAction::Cancel => {
                self.form = None;
                self.error = None;
            }
            KeyAction::Submit => {
                let watch = match form.watch() {
                    Ok(w) => w,
                    Err(e) => {
                        self.error = Some(e);
                        return vec![Action::Redraw];
                    }
                };
                let mut list = self.list.clone();
                match form.editing {
                    Some(i) if i < list.len() => list[i] = watch,
                    _ => {
                        list.push(watch);
                        self.selected = list.len() - 1;
                    }
                }
                return self.commit(list);
            }
            edit => {
                let typed = match key.code {
                    KeyCode::Char(c) => Some(c),
                    _ => None,
                };
                // A little over the limit, so the refusal can say it is too long.
                if !form.cursor().edit(edit, typed, MAX_QUESTION_CHARS + 20) {
                    return Vec::new();
                }
            }
        }
        vec![Action::Redraw]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn typed(p: &mut WatchesPopup, s: &str) {
        for c in s.chars() {
            p.handle_key(k(KeyCode::Char(c)));
        }
    }

    fn sent(acts: &[Action]) -> Option<Vec<WatchSpec>> {
        acts.iter().find_map(|a| match a {
            Action::Engine(Command::SetWatches(l)) => Some(l.clone()),
            _ => None,
        })
    }

    #[test]
    fn add_edit_and_remove_send_the_whole_list() {
        let mut p = WatchesPopup::open(&[]);
        p.handle_key(k(KeyCode::Char('n')));
        // An empty id is made from the question.
        p.handle_key(k(KeyCode::Tab));
        typed(&mut p, "Is the garage door open?");
        let acts = p.handle_key(k(KeyCode::Enter)).unwrap();
        let list = sent(&acts).expect("sent");
        assert_eq!(list[0].id, "is_the_garage_door_open");
        assert_eq!(list[0].question, "Is the garage door open?");
        assert_eq!((list[0].level, list[0].debounce), (1, 2));
        assert!(p.form.is_none());
        // Edit: the form opens on the question; change the level to 2.
        p.handle_key(k(KeyCode::Enter));
        for _ in 0..2 {
            p.handle_key(k(KeyCode::Tab));
        }
        p.handle_key(k(KeyCode::Backspace));
        typed(&mut p, "2");
        let list = sent(&p.handle_key(k(KeyCode::Enter)).unwrap()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].level, 2);
        // Remove.
        let list = sent(&p.handle_key(k(KeyCode::Char('d'))).unwrap()).unwrap();
        assert!(list.is_empty());
        // Esc closes.
        assert!(p.handle_key(k(KeyCode::Esc)).is_none());
    }

    #[test]
    fn a_bad_watch_is_refused_in_the_popup_with_the_reason() {
        let door = WatchSpec::new("garage_door", "Is the garage door open?");
        let states = crate::watch::WatchBoard::new(&[door]).statuses();
        let mut p = WatchesPopup::open(&states);
        // A duplicate id.
        p.handle_key(k(KeyCode::Char('n')));
        typed(&mut p, "garage_door");
        p.handle_key(k(KeyCode::Tab));
        typed(&mut p, "Is it open?");
        let acts = p.handle_key(k(KeyCode::Enter)).unwrap();
        assert!(sent(&acts).is_none());
        let e = p.error.clone().unwrap();
        assert!(e.contains("duplicate id \"garage_door\""), "{e}");
        assert!(p.form.is_some(), "the form stays to be fixed");
        // A notify that is not one.
        p.form.as_mut().unwrap().fields[0] = "garage_light".into();
        p.form.as_mut().unwrap().fields[2] = "always".into();
        p.handle_key(k(KeyCode::Enter));
        assert!(p
            .error
            .clone()
            .unwrap()
            .contains("on_yes, on_change or never"));
        // A question too long.
        p.form.as_mut().unwrap().fields[2] = "never".into();
        p.form.as_mut().unwrap().fields[1] = "x".repeat(210);
        p.handle_key(k(KeyCode::Enter));
        assert!(
            p.error.clone().unwrap().contains("at most 200"),
            "{:?}",
            p.error
        );
        // Esc leaves the form, not the popup.
        p.handle_key(k(KeyCode::Esc));
        assert!(p.form.is_none());
        assert_eq!(p.list.len(), 1);
    }
}
