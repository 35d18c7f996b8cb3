//! The history screen's state and keys: the list (a page at a time, newest first), its
//! filters and search, and an opened item (an incident's frames to step through). Pure:
//! queries go out as `Action`s and their answers come back through `page`, `detail` and
//! `frame`, so nothing here waits and every key is testable without a store.

use crate::event::{Command, IncidentChange, IncidentEvent};
use crate::frame::PreparedFrame;
use crate::history::paged::{Detail, Page};
use crate::history::query::{Cursor, Filter, FrameRow, Item};
use crate::tui::action::Action;
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::widgets::{clean, SHORT_MAX};
use chrono::{DateTime, FixedOffset, Utc};
use crossterm::event::{KeyCode, KeyEvent};
use std::sync::Arc;

/// Items asked per page.
pub const PAGE: usize = 100;
/// Older items are asked for when the selection comes this close to the end of the list.
const LOAD_AHEAD: usize = 10;
/// Longest search text.
pub const MAX_SEARCH: usize = 100;
/// Frames kept decoded-ready for stepping back and forth.
const IMAGE_CACHE: usize = 8;

/// The triggers `t` cycles through (reason kinds, as the store names them).
pub const TRIGGERS: &[&str] = &[
    "safety",
    "safety_early",
    "low_confidence",
    "no_confidence",
    "audit",
    "forced",
    "echoes_prompt",
    "cut",
    "student_down",
];

/// An opened item: an incident with its frames, or one frame.
#[derive(Debug, Clone, Default)]
pub struct ItemView {
    pub incident: Option<IncidentEvent>,
    pub frames: Vec<FrameRow>,
    /// Frames of the incident beyond those sent.
    pub more: u64,
    /// The frame shown (index into `frames`).
    pub at: usize,
    /// The incident's frames are being fetched.
    pub loading: bool,
    pub error: Option<String>,
    /// Frames fetched so far (by row id): the image, or why there is none.
    pub images: Vec<(i64, Result<Arc<PreparedFrame>, String>)>,
    /// A frame being fetched (one at a time).
    pub image_loading: Option<i64>,
}

impl ItemView {
    pub fn current(&self) -> Option<&FrameRow> {
        self.frames.get(self.at)
    }

    /// The current frame's image, or why there is none; None while unknown.
    pub fn image(&self) -> Option<&Result<Arc<PreparedFrame>, String>> {
        let f = self.current()?;
        self.images
            .iter()
            .find(|(id, _)| *id == f.id)
            .map(|(_, r)| r)
    }

    /// Ask for the current frame's image when it has one, none is out and it is not here.
    fn want_image(&mut self) -> Vec<Action> {
        let Some(f) = self.current() else {
            return Vec::new();
        };
        if f.frame_path.is_none() || self.image_loading.is_some() || self.image().is_some() {
            return Vec::new();
        }
        let id = f.id;
        self.image_loading = Some(id);
        vec![Action::HistoryFrame(id)]
    }
}

/// The history screen.
#[derive(Debug, Clone)]
pub struct HistoryScreen {
    pub filter: Filter,
    pub items: Vec<Item>,
    /// Where the next (older) page starts; None: the list is complete.
    pub next: Option<Cursor>,
    /// A query is out (one at a time).
    pub loading: bool,
    /// The filter changed while a query was out: its answer is dropped, the query asked again.
    stale: bool,
    /// The query out continues the list (rather than starting it again).
    appending: bool,
    pub error: Option<String>,
    pub selected: usize,
    /// The search being typed (`/`), while it is.
    pub typing: Option<String>,
    pub item: Option<ItemView>,
    /// Times and days show at this offset (the local one; UTC in tests).
    pub offset: FixedOffset,
    /// The list's rows on screen, for PgUp/PgDn (set from the terminal size).
    pub page_rows: usize,
}

impl Default for HistoryScreen {
    fn default() -> Self {
        HistoryScreen {
            filter: Self::base_filter(),
            items: Vec::new(),
            next: None,
            loading: false,
            stale: false,
            appending: false,
            error: None,
            selected: 0,
            typing: None,
            item: None,
            offset: *chrono::Local::now().offset(),
            page_rows: 10,
        }
    }
}

impl HistoryScreen {
    /// What the screen lists unless told otherwise: incidents and notable entries.
    fn base_filter() -> Filter {
        Filter {
            notable_only: true,
            ..Filter::default()
        }
    }

    /// Open the screen: the list from the newest (a span, e.g. "while you were away",
    /// limits it).
    pub fn open(&mut self, span: Option<(DateTime<Utc>, DateTime<Utc>)>) -> Vec<Action> {
        self.item = None;
        self.typing = None;
        if let Some((from, until)) = span {
            self.filter = Self::base_filter();
            self.filter.since = Some(from);
            self.filter.until = Some(until);
        }
        self.query(false)
    }

    /// Ask for the list from the start (`append` false) or its next page.
    fn query(&mut self, append: bool) -> Vec<Action> {
        if self.loading {
            // Only a new start needs asking again; more of a list is asked when it is due.
            self.stale |= !append;
            return Vec::new();
        }
        if append && self.next.is_none() {
            return Vec::new();
        }
        self.loading = true;
        self.appending = append;
        vec![Action::HistoryQuery {
            filter: self.filter.clone(),
            after: if append { self.next } else { None },
            limit: PAGE,
        }]
    }

    /// A page came back.
    pub fn page(&mut self, result: Result<Page, String>) -> Vec<Action> {
        self.loading = false;
        if std::mem::take(&mut self.stale) {
            return self.query(false);
        }
        match result {
            Ok(p) => {
                self.error = None;
                if self.appending {
                    self.items.extend(p.items);
                } else {
                    self.items = p.items;
                    self.selected = 0;
                }
                self.next = p.next;
            }
            Err(e) => self.error = Some(clean(&e, SHORT_MAX)),
        }
        Vec::new()
    }

    /// An incident's detail came back.
    pub fn detail(&mut self, result: Result<Detail, String>) -> Vec<Action> {
        let Some(v) = self.item.as_mut() else {
            return Vec::new();
        };
        v.loading = false;
        match result {
            Ok(d) => {
                v.error = None;
                v.at = d
                    .incident
                    .key_seq
                    .and_then(|k| d.frames.iter().position(|f| f.seq == k))
                    .unwrap_or(0);
                v.incident = Some(d.incident);
                v.frames = d.frames;
                v.more = d.more;
                v.want_image()
            }
            Err(e) => {
                v.error = Some(clean(&e, SHORT_MAX));
                Vec::new()
            }
        }
    }

    /// A frame's image came back.
    pub fn frame(&mut self, id: i64, result: Result<Arc<[u8]>, String>) -> Vec<Action> {
        let Some(v) = self.item.as_mut() else {
            return Vec::new();
        };
        if v.image_loading == Some(id) {
            v.image_loading = None;
        }
        let image = result.and_then(|jpeg| {
            let h = crate::frame::turbo::read_header(&jpeg)
                .map_err(|e| format!("not a readable JPEG: {e}"))?;
            Ok(Arc::new(PreparedFrame {
                width: h.width,
                height: h.height,
                jpeg,
                base64: "".into(),
            }))
        });
        v.images.retain(|(i, _)| *i != id);
        v.images.push((id, image.map_err(|e| clean(&e, SHORT_MAX))));
        if v.images.len() > IMAGE_CACHE {
            let _ = v.images.remove(0);
        }
        v.want_image()
    }

    /// An incident changed (acknowledged, rose, closed): the list and the open item follow.
    pub fn incident_changed(&mut self, i: &IncidentEvent) {
        let apply = |mine: &mut IncidentEvent| {
            if mine.id != i.id {
                return;
            }
            match i.change {
                IncidentChange::Ack => {
                    mine.acked_at = i.acked_at.or(Some(Utc::now()));
                    mine.acked_by = i.acked_by.clone();
                }
                _ => {
                    mine.level = i.level;
                    mine.title = i.title.clone();
                    mine.frames = i.frames;
                    mine.last_at = i.last_at;
                    mine.closed_at = i.closed_at;
                }
            }
        };
        for it in &mut self.items {
            if let Item::Incident(mine) = it {
                apply(mine);
            }
        }
        if let Some(mine) = self.item.as_mut().and_then(|v| v.incident.as_mut()) {
            apply(mine);
        }
    }

    pub fn selected_item(&self) -> Option<&Item> {
        self.items.get(self.selected)
    }

    /// The contexts whose keys work now, most specific first.
    pub fn context(&self) -> Context {
        if self.typing.is_some() {
            Context::Search
        } else if self.item.is_some() {
            Context::HistoryItem
        } else {
            Context::History
        }
    }

    /// A key. None: leave the screen (back to the monitor).
    pub fn handle_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        if self.typing.is_some() {
            return Some(self.search_key(key));
        }
        if self.item.is_some() {
            return Some(self.item_key(key));
        }
        let action = keys::lookup(&[Context::History], key)?;
        let redraw = |mut v: Vec<Action>| {
            v.push(Action::Redraw);
            Some(v)
        };
        match action {
            KeyAction::Back => None,
            KeyAction::Up => redraw(self.move_to(self.selected.saturating_sub(1))),
            KeyAction::Down => redraw(self.move_to(self.selected + 1)),
            KeyAction::PageUp => {
                redraw(self.move_to(self.selected.saturating_sub(self.page_rows.max(1))))
            }
            KeyAction::PageDown => redraw(self.move_to(self.selected + self.page_rows.max(1))),
            KeyAction::Home => redraw(self.move_to(0)),
            KeyAction::End => redraw(self.move_to(usize::MAX)),
            KeyAction::Open => redraw(self.open_selected()),
            KeyAction::Search => {
                self.typing = Some(self.filter.text.clone().unwrap_or_default());
                redraw(Vec::new())
            }
            KeyAction::ToggleIncidents => {
                self.filter.incidents_only = !self.filter.incidents_only;
                redraw(self.query(false))
            }
            KeyAction::CycleTrigger => {
                self.filter.trigger = next_trigger(self.filter.trigger.as_deref());
                redraw(self.query(false))
            }
            KeyAction::ToggleDisagreed => {
                self.filter.disagreed = !self.filter.disagreed;
                redraw(self.query(false))
            }
            KeyAction::CycleLevel => {
                self.filter.min_level = match self.filter.min_level {
                    None => Some(1),
                    Some(1) => Some(2),
                    _ => None,
                };
                redraw(self.query(false))
            }
            KeyAction::ClearFilters => {
                self.filter = Self::base_filter();
                redraw(self.query(false))
            }
            KeyAction::Reload => redraw(self.query(false)),
            KeyAction::Acknowledge => {
                let incident = match self.selected_item() {
                    Some(Item::Incident(i)) => Some(i.id),
                    Some(Item::Frame(f)) => f.incident_id,
                    _ => None,
                };
                match incident {
                    Some(id) => Some(vec![ack(id)]),
                    None => Some(vec![Action::Notice(
                        "select an incident (or one of its frames) to acknowledge".into(),
                    )]),
                }
            }
            _ => Some(Vec::new()),
        }
    }

    /// Select `i` (clamped); when that comes near the end of the list, ask for more.
    fn move_to(&mut self, i: usize) -> Vec<Action> {
        self.selected = i.min(self.items.len().saturating_sub(1));
        if self.selected + LOAD_AHEAD >= self.items.len() {
            self.query(true)
        } else {
            Vec::new()
        }
    }

    fn open_selected(&mut self) -> Vec<Action> {
        match self.selected_item() {
            Some(Item::Incident(i)) => {
                let id = i.id;
                self.item = Some(ItemView {
                    incident: Some(i.clone()),
                    loading: true,
                    ..ItemView::default()
                });
                vec![Action::HistoryDetail(id)]
            }
            Some(Item::Frame(f)) => {
                let mut v = ItemView {
                    frames: vec![(**f).clone()],
                    ..ItemView::default()
                };
                let acts = v.want_image();
                self.item = Some(v);
                acts
            }
            // Notes and offline spans are whole on their line.
            _ => Vec::new(),
        }
    }

    fn item_key(&mut self, key: &KeyEvent) -> Vec<Action> {
        let Some(v) = self.item.as_mut() else {
            return Vec::new();
        };
        match keys::lookup(&[Context::HistoryItem], key) {
            Some(KeyAction::Back) => {
                self.item = None;
                vec![Action::Redraw]
            }
            Some(KeyAction::Left) if v.at > 0 => {
                v.at -= 1;
                let mut a = v.want_image();
                a.push(Action::Redraw);
                a
            }
            Some(KeyAction::Right) if v.at + 1 < v.frames.len() => {
                v.at += 1;
                let mut a = v.want_image();
                a.push(Action::Redraw);
                a
            }
            Some(KeyAction::Acknowledge) => {
                let id = v
                    .incident
                    .as_ref()
                    .map(|i| i.id)
                    .or_else(|| v.current().and_then(|f| f.incident_id));
                match id {
                    Some(id) => vec![ack(id)],
                    None => vec![Action::Notice(
                        "this entry is not part of an incident".into(),
                    )],
                }
            }
            _ => Vec::new(),
        }
    }

    fn search_key(&mut self, key: &KeyEvent) -> Vec<Action> {
        let Some(text) = self.typing.as_mut() else {
            return Vec::new();
        };
        match keys::lookup(&[Context::Search], key) {
            Some(KeyAction::Type) => {
                if let KeyCode::Char(c) = key.code {
                    if text.chars().count() < MAX_SEARCH {
                        text.push(c);
                    }
                }
                vec![Action::Redraw]
            }
            Some(KeyAction::Backspace) => {
                text.pop();
                vec![Action::Redraw]
            }
            Some(KeyAction::Submit) => {
                let t = text.trim().to_string();
                self.typing = None;
                self.filter.text = (!t.is_empty()).then_some(t);
                let mut a = self.query(false);
                a.push(Action::Redraw);
                a
            }
            Some(KeyAction::Cancel) => {
                self.typing = None;
                vec![Action::Redraw]
            }
            _ => Vec::new(),
        }
    }

    /// What the filters are, in words (the screen's title); empty when none is set.
    pub fn filter_label(&self) -> String {
        let f = &self.filter;
        let mut parts = Vec::new();
        if f.incidents_only {
            parts.push("incidents only".to_string());
        }
        if let Some(t) = &f.trigger {
            parts.push(format!("trigger {t}"));
        }
        if f.disagreed {
            parts.push("teacher disagreed".into());
        }
        if let Some(l) = f.min_level {
            parts.push(format!("level ≥ {l}"));
        }
        if let Some(t) = &f.text {
            parts.push(format!("\"{}\"", clean(t, MAX_SEARCH)));
        }
        if let (Some(a), Some(b)) = (f.since, f.until) {
            let at = |t: DateTime<Utc>| t.with_timezone(&self.offset).format("%a %H:%M");
            parts.push(format!("{} – {}", at(a), at(b)));
        }
        parts.join(" · ")
    }
}

fn ack(id: u64) -> Action {
    Action::Engine(Command::Ack {
        incident: Some(id),
        by: "console".into(),
    })
}

/// The trigger after `t` in [`TRIGGERS`], then none.
pub fn next_trigger(t: Option<&str>) -> Option<String> {
    match t {
        None => Some(TRIGGERS[0].to_string()),
        Some(t) => TRIGGERS
            .iter()
            .position(|x| *x == t)
            .and_then(|i| TRIGGERS.get(i + 1))
            .map(|s| s.to_string()),
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
pub(crate) mod tests;
