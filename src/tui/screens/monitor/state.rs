//! The monitor screen's state: the log of entries (one per frame the student took), the
//! cursor, the pinned entry, and the monitor's own keys and mouse. No terminal here.

use crate::frame::PreparedFrame;
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use crate::tui::keys::KeyAction;
use crate::tui::layout;
use chrono::{DateTime, Utc};
use crossterm::event::{MouseButton, MouseEvent, MouseEventKind};
use ratatui::layout::Rect;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;

/// Longest answer kept per entry (characters); a runaway stream is cut here.
pub const MAX_ANSWER_CHARS: usize = 16_000;

/// Where an entry stands with the teacher.
#[derive(Debug, Clone, PartialEq)]
pub enum TeacherState {
    /// Not escalated.
    None,
    /// Waiting in the teacher queue at about this position (1 = next).
    Queued {
        pos: usize,
    },
    Reviewing,
    /// The verdict and how long the teacher took (ms).
    Verdict(Verdict, u64),
    Failed(String),
    /// Pushed out of a full queue.
    Dropped,
}

/// One frame the student took, and everything learned about it since.
#[derive(Debug, Clone)]
pub struct Entry {
    pub seq: u64,
    pub captured_at: DateTime<Utc>,
    pub label: String,
    pub width: u32,
    pub height: u32,
    pub jpeg_bytes: usize,
    /// The answer so far (tokens) or the final answer. Untrusted model text.
    pub answer: String,
    /// True once `StudentAnswer` replaced the streamed tokens.
    pub answered: bool,
    pub confidence: Option<f32>,
    /// From the student's token probabilities, when the server sends them.
    pub measured: Option<f32>,
    pub latency_ms: Option<u64>,
    pub reasons: Vec<Reason>,
    /// The student could not answer: why.
    pub failed: Option<String>,
    /// The student was not asked (offline, loading…): why. The frame is shown all the same.
    pub unanswered: Option<String>,
    pub skill: Option<String>,
    pub teacher: TeacherState,
    /// The JPEG exactly as the model saw it.
    pub frame: Option<Arc<PreparedFrame>>,
    /// Watch states this frame changed (the student's flip, or the teacher's decision).
    pub watch_changes: Vec<crate::watch::WatchChange>,
}

impl Entry {
    fn new(seq: u64) -> Self {
        Entry {
            seq,
            captured_at: Utc::now(),
            label: String::new(),
            width: 0,
            height: 0,
            jpeg_bytes: 0,
            answer: String::new(),
            answered: false,
            confidence: None,
            measured: None,
            latency_ms: None,
            reasons: Vec::new(),
            failed: None,
            unanswered: None,
            skill: None,
            teacher: TeacherState::None,
            frame: None,
            watch_changes: Vec::new(),
        }
    }

    /// The student is still working on this frame.
    pub fn in_flight(&self) -> bool {
        !self.answered && self.failed.is_none() && self.unanswered.is_none()
    }

    /// Escalated early (a safety keyword mid-answer): its keyword, and once the answer
    /// is complete whether the full answer would have escalated too.
    pub fn early(&self) -> Option<(&str, Option<bool>)> {
        self.reasons.iter().find_map(|r| match r {
            Reason::SafetyEarly { keyword, needed } => Some((keyword.as_str(), *needed)),
            _ => None,
        })
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.teacher {
            TeacherState::Verdict(v, _) => Some(v),
            _ => None,
        }
    }
}

/// The log and where the user is in it.
#[derive(Debug)]
pub struct Monitor {
    /// Most entries kept.
    pub history: usize,
    /// The policy's confidence threshold (red below it).
    pub threshold: f32,
    /// Oldest first; seqs strictly increase.
    pub entries: VecDeque<Entry>,
    /// Highlighted entry in the log; None = follow the newest (live).
    pub cursor: Option<u64>,
    /// Top entry of the log window while not live.
    pub top: Option<u64>,
    /// Entry shown in the frame and teacher panes; None = live.
    pub selected: Option<u64>,
    /// Terminal size, for paging and mouse hits.
    pub size: (u16, u16),
}

impl Monitor {
    pub fn new(history: usize, threshold: f32) -> Self {
        Monitor {
            history: history.max(1),
            threshold,
            entries: VecDeque::new(),
            cursor: None,
            top: None,
            selected: None,
            size: (80, 24),
        }
    }

    // ---- queries -------------------------------------------------------------------

    pub fn index_of(&self, seq: u64) -> Option<usize> {
        self.entries.binary_search_by_key(&seq, |e| e.seq).ok()
    }

    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        self.index_of(seq).map(|i| &self.entries[i])
    }

    pub fn newest(&self) -> Option<&Entry> {
        self.entries.back()
    }

    /// The entry the frame pane shows: the selected one, else the newest with a frame
    /// (else the newest).
    pub fn frame_entry(&self) -> Option<&Entry> {
        match self.selected.and_then(|s| self.entry(s)) {
            Some(e) => Some(e),
            None => self
                .entries
                .iter()
                .rev()
                .find(|e| e.frame.is_some())
                .or_else(|| self.entries.back()),
        }
    }

    /// The entry the teacher pane shows: the selected one, else the newest the teacher saw.
    pub fn teacher_entry(&self) -> Option<&Entry> {
        match self.selected.and_then(|s| self.entry(s)) {
            Some(e) => Some(e),
            None => self
                .entries
                .iter()
                .rev()
                .find(|e| e.teacher != TeacherState::None),
        }
    }

    /// What `s` saves: the selected entry, else the newest reviewed one.
    pub fn entry_to_save(&self) -> Option<&Entry> {
        match self.selected.and_then(|s| self.entry(s)) {
            Some(e) => Some(e),
            None => self.entries.iter().rev().find(|e| e.verdict().is_some()),
        }
    }

    /// The entry `a` learns from: the selected one, else the newest with a structured
    /// verdict and a frame.
    pub fn entry_to_learn(&self) -> Result<&Entry, String> {
        let usable =
            |e: &Entry| e.frame.is_some() && e.verdict().is_some_and(|v| v.agrees.is_some());
        match self.selected.and_then(|s| self.entry(s)) {
            Some(e) if usable(e) => Ok(e),
            Some(e) => Err(format!(
                "#{} cannot become a case: it needs a readable teacher verdict and its frame",
                e.seq
            )),
            None => self
                .entries
                .iter()
                .rev()
                .find(|e| usable(e))
                .ok_or_else(|| "nothing to learn from yet: no frame with a teacher verdict".into()),
        }
    }

    /// Rows of entries the log pane shows at the current size.
    pub fn log_rows(&self) -> usize {
        layout::panes(Rect::new(0, 0, self.size.0, self.size.1))
            .map_or(1, |p| p.log_inner().height.max(1) as usize)
    }

    /// Index range of entries visible in a log of `rows` rows, keeping the cursor in view.
    pub fn visible_range(&self, rows: usize) -> Range<usize> {
        let len = self.entries.len();
        let rows = rows.max(1);
        let bottom_start = len.saturating_sub(rows);
        let mut start = match self.top {
            None => bottom_start,
            Some(top) => self
                .entries
                .partition_point(|e| e.seq < top)
                .min(bottom_start),
        };
        if let Some(c) = self.cursor_index() {
            if c < start {
                start = c;
            } else if c >= start + rows {
                start = c + 1 - rows;
            }
        }
        start..(start + rows).min(len)
    }

    /// Index of the highlighted entry (the newest when live).
    pub fn cursor_index(&self) -> Option<usize> {
        match self.cursor {
            Some(seq) => self
                .index_of(seq)
                .or_else(|| (!self.entries.is_empty()).then_some(0)),
            None => self.entries.len().checked_sub(1),
        }
    }

    // ---- updates -------------------------------------------------------------------

    /// The entry for `seq`: found, or created when it is newer than every entry.
    pub fn entry_for(&mut self, seq: u64) -> Option<&mut Entry> {
        if let Some(i) = self.index_of(seq) {
            return self.entries.get_mut(i);
        }
        if self.entries.back().is_none_or(|e| e.seq < seq) {
            self.push(Entry::new(seq));
            return self.entries.back_mut();
        }
        None
    }

    /// The entry for `seq` if it is still in the log.
    pub fn existing(&mut self, seq: u64) -> Option<&mut Entry> {
        self.index_of(seq).and_then(|i| self.entries.get_mut(i))
    }

    fn push(&mut self, entry: Entry) {
        self.entries.push_back(entry);
        while self.entries.len() > self.history {
            if let Some(old) = self.entries.pop_front() {
                if self.selected == Some(old.seq) {
                    self.selected = None;
                }
            }
        }
    }

    /// A streamed piece of the answer (ignored once the answer is in).
    pub fn add_token(&mut self, seq: u64, text: &str) {
        if let Some(e) = self.entry_for(seq) {
            if !e.answered {
                let room = MAX_ANSWER_CHARS.saturating_sub(e.answer.chars().count());
                e.answer.extend(text.chars().take(room));
            }
        }
    }

    /// Every queued entry moves up one place (the teacher took the next).
    pub fn queue_advanced(&mut self) {
        for e in self.entries.iter_mut() {
            if let TeacherState::Queued { pos } = &mut e.teacher {
                *pos = pos.saturating_sub(1).max(1);
            }
        }
    }

    /// Carry out a monitor key that only moves in the log; false when `action` is not one.
    pub fn navigate(&mut self, action: KeyAction) -> bool {
        match action {
            KeyAction::Back => self.go_live(),
            KeyAction::Pin => {
                if let Some(i) = self.cursor_index() {
                    self.selected = Some(self.entries[i].seq);
                }
            }
            KeyAction::Up => self.move_cursor(-1),
            KeyAction::Down => self.move_cursor(1),
            KeyAction::PageUp => self.move_cursor(-(self.page() as isize)),
            KeyAction::PageDown => self.move_cursor(self.page() as isize),
            KeyAction::Home => {
                if let Some(first) = self.entries.front() {
                    self.cursor = Some(first.seq);
                    self.top = Some(first.seq);
                }
            }
            KeyAction::End => {
                self.cursor = None;
                self.top = None;
            }
            _ => return false,
        }
        true
    }

    /// The wheel moves, a click in the log selects; true when something changed.
    pub fn handle_mouse(&mut self, mouse: MouseEvent) -> bool {
        match mouse.kind {
            MouseEventKind::ScrollUp => self.move_cursor(-1),
            MouseEventKind::ScrollDown => self.move_cursor(1),
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(p) = layout::panes(Rect::new(0, 0, self.size.0, self.size.1)) else {
                    return false;
                };
                let inner = p.log_inner();
                let (x, y) = (mouse.column, mouse.row);
                if x < inner.x || x >= inner.right() || y < inner.y || y >= inner.bottom() {
                    return false;
                }
                let range = self.visible_range(inner.height as usize);
                let i = range.start + (y - inner.y) as usize;
                if i >= range.end {
                    return false;
                }
                let seq = self.entries[i].seq;
                self.top = Some(self.entries[range.start].seq);
                self.cursor = Some(seq);
                self.selected = Some(seq);
            }
            _ => return false,
        }
        true
    }

    /// Back to live: follow the newest, nothing pinned.
    pub fn go_live(&mut self) {
        self.cursor = None;
        self.top = None;
        self.selected = None;
    }

    fn page(&self) -> usize {
        self.log_rows().saturating_sub(1).max(1)
    }

    fn move_cursor(&mut self, delta: isize) {
        let Some(cur) = self.cursor_index() else {
            return;
        };
        let last = self.entries.len() - 1;
        let next = cur.saturating_add_signed(delta).min(last);
        self.cursor = Some(self.entries[next].seq);
        let range = self.visible_range(self.log_rows());
        self.top = self.entries.get(range.start).map(|e| e.seq);
    }
}
