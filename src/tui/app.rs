//! The console's state machine: engine events and keys in, `Action`s out. No terminal here,
//! so every behaviour can be tested without one.

use crate::config::Config;
use crate::event::{Command, Event, Health, ModelLoad, Role};
use crate::frame::PreparedFrame;
use crate::policy::Reason;
use crate::verdict::Verdict;
use chrono::{DateTime, Utc};
use crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::calibration_view::CalibrationData;
use super::layout;
use super::learn_edit::{LearnEdit, LearnEditor};
use super::upskill::UpskillState;

/// Longest answer kept per entry (characters); a runaway stream is cut here.
pub const MAX_ANSWER_CHARS: usize = 16_000;
/// Student latencies kept for the median.
pub const LATENCY_WINDOW: usize = 50;
/// How long a warning or notice stays in the status bar.
pub const NOTICE_FOR: Duration = Duration::from_secs(5);

/// What the run loop must do after a key, mouse event or engine event.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Quit,
    Engine(Command),
    /// Start an upskill run (`u`, or `r` on the upskill screen); the app already shows it.
    OpenUpskill,
    /// Esc during a run: stop it (in-flight work stops promptly).
    CancelUpskill,
    /// Save this row of the finished run as the skill (confirmed with `y`).
    ApplyUpskill(usize),
    /// Read the newest upskill run report and show its summary (`o` on the upskill screen).
    OpenUpskillReport,
    /// Load the calibration store and show its report (`c`).
    OpenCalibration,
    /// Append the edited case to `eval/learned.toml` (`a`, then Enter).
    SaveLearned(LearnEdit),
    /// Save this entry's frame and answer under `logs/saved/`.
    SaveEntry(u64),
    Redraw,
}

/// Which screen is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Monitor,
    Upskill,
    Calibration,
}

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
    pub skill: Option<String>,
    pub teacher: TeacherState,
    /// The JPEG exactly as the model saw it.
    pub frame: Option<Arc<PreparedFrame>>,
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
            skill: None,
            teacher: TeacherState::None,
            frame: None,
        }
    }

    /// The student is still working on this frame.
    pub fn in_flight(&self) -> bool {
        !self.answered && self.failed.is_none()
    }

    pub fn verdict(&self) -> Option<&Verdict> {
        match &self.teacher {
            TeacherState::Verdict(v, _) => Some(v),
            _ => None,
        }
    }
}

/// Colours on or off (`NO_COLOR`). Bold and reverse are kept either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set and non-empty.
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Theme { color: !no_color }
    }
}

/// A message in the status bar for a few seconds.
#[derive(Debug, Clone)]
pub struct Notice {
    pub text: String,
    pub warning: bool,
    pub at: Instant,
}

/// Everything the console shows.
#[derive(Debug)]
pub struct App {
    pub screen: Screen,
    pub theme: Theme,
    pub history: usize,
    pub threshold: f32,
    /// Oldest first; seqs strictly increase.
    pub entries: VecDeque<Entry>,
    /// Highlighted entry in the log; None = follow the newest (live).
    pub cursor: Option<u64>,
    /// Top entry of the log window while not live.
    pub top: Option<u64>,
    /// Entry shown in the frame and teacher panes; None = live.
    pub selected: Option<u64>,
    pub help: bool,
    pub paused: bool,
    pub student_health: Health,
    pub teacher_health: Health,
    /// Whether each model is loaded (Ollama hosts; `Unknown` shows nothing).
    pub student_load: ModelLoad,
    pub teacher_load: ModelLoad,
    pub student_name: String,
    pub teacher_name: String,
    student_host: String,
    teacher_host: String,
    pub source: String,
    pub skill: String,
    /// The upskill screen (`u`).
    pub upskill: UpskillState,
    /// The learn editor (`a`), while open.
    pub learn: Option<LearnEditor>,
    /// The calibration view's data (`c`), loaded when it opens.
    pub calibration: Option<CalibrationData>,
    pub latencies: VecDeque<u64>,
    pub teacher_latency: Option<u64>,
    pub frames_seen: u64,
    /// Frames the change gate kept from the student (unchanged scene).
    pub unchanged: u64,
    pub superseded: u64,
    pub answers: u64,
    pub escalations: u64,
    /// Escalations over the last 5 minutes (the status bar's rate).
    pub recent: crate::escalation_rate::EscalationRate,
    /// Warn (`!` in the status bar) above this recent share; 0 = never.
    pub storm_share: f64,
    pub disagreements: u64,
    pub teacher_queue: usize,
    pub reviewing: Option<u64>,
    pub notice: Option<Notice>,
    pub spinner: usize,
    pub stopped: bool,
    /// Terminal size, for paging and mouse hits.
    pub size: (u16, u16),
}

/// `http://host:port/x` → `host`.
pub fn short_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let host = if hostport.starts_with('[') {
        hostport
            .split_once(']')
            .map_or(hostport, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    host.to_string()
}

impl App {
    pub fn new(config: &Config) -> Self {
        let student_host = short_host(&config.student.host);
        let teacher_host = short_host(&config.teacher.host);
        App {
            screen: Screen::Monitor,
            theme: Theme::from_env(),
            history: config.console.history.max(1),
            threshold: config.policy.confidence_threshold,
            entries: VecDeque::new(),
            cursor: None,
            top: None,
            selected: None,
            help: false,
            paused: false,
            student_health: Health::Unknown,
            teacher_health: Health::Unknown,
            student_load: ModelLoad::Unknown,
            teacher_load: ModelLoad::Unknown,
            student_name: format!("{}@{student_host}", config.student.model),
            teacher_name: format!("{}@{teacher_host}", config.teacher.model),
            student_host,
            teacher_host,
            source: String::new(),
            skill: config
                .skill_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            upskill: UpskillState::new(config.skill_path()),
            learn: None,
            calibration: None,
            latencies: VecDeque::new(),
            teacher_latency: None,
            frames_seen: 0,
            unchanged: 0,
            superseded: 0,
            answers: 0,
            escalations: 0,
            recent: Default::default(),
            storm_share: config.policy.storm_share,
            disagreements: 0,
            teacher_queue: 0,
            reviewing: None,
            notice: None,
            spinner: 0,
            stopped: false,
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

    pub fn last_latency(&self) -> Option<u64> {
        self.latencies.back().copied()
    }

    pub fn median_latency(&self) -> Option<u64> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = self.latencies.iter().copied().collect();
        v.sort_unstable();
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        })
    }

    /// Escalated / answered, 0..1 (None before the first answer).
    pub fn escalation_rate(&self) -> Option<f64> {
        (self.answers > 0).then(|| self.escalations as f64 / self.answers as f64)
    }

    /// The status bar's rate: over the last 5 minutes once there are enough answers
    /// there, else since the start; and whether it passes `policy.storm_share`.
    pub fn status_escalation(&self, now: Instant) -> Option<(f64, bool)> {
        let share = self.recent.share(now).or_else(|| self.escalation_rate())?;
        let storm =
            self.storm_share > 0.0 && self.recent.share(now).is_some_and(|s| s > self.storm_share);
        Some((share, storm))
    }

    pub fn health(&self, role: Role) -> &Health {
        match role {
            Role::Student => &self.student_health,
            Role::Teacher => &self.teacher_health,
        }
    }

    /// Something is moving: the spinner needs ticks.
    pub fn busy(&self) -> bool {
        !self.stopped && (self.reviewing.is_some() || self.newest().is_some_and(|e| e.in_flight()))
    }

    /// The notice to show now, if any.
    pub fn active_notice(&self, now: Instant) -> Option<&Notice> {
        self.notice
            .as_ref()
            .filter(|n| now.duration_since(n.at) < NOTICE_FOR)
    }

    /// The run loop must keep ticking: a spinner turns, a notice must expire, or the
    /// upskill clock runs.
    pub fn needs_tick(&self) -> bool {
        self.busy() || self.upskill.running() || self.active_notice(Instant::now()).is_some()
    }

    pub fn spinner_char(&self) -> char {
        const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        FRAMES[self.spinner % FRAMES.len()]
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

    pub fn set_size(&mut self, width: u16, height: u16) {
        self.size = (width, height);
    }

    /// Show a message in the status bar for a few seconds.
    pub fn notify(&mut self, text: impl Into<String>, warning: bool) {
        self.notice = Some(Notice {
            text: text.into(),
            warning,
            at: Instant::now(),
        });
    }

    /// Advance the spinner and expire the notice; true when the screen changed.
    pub fn tick(&mut self) -> bool {
        let mut changed = false;
        if self.busy() || self.upskill.running() {
            self.spinner = self.spinner.wrapping_add(1);
            changed = true;
        }
        if self
            .notice
            .as_ref()
            .is_some_and(|n| n.at.elapsed() >= NOTICE_FOR)
        {
            self.notice = None;
            changed = true;
        }
        changed
    }

    /// The entry for `seq`: found, or created when it is newer than every entry.
    fn entry_for(&mut self, seq: u64) -> Option<&mut Entry> {
        if let Some(i) = self.index_of(seq) {
            return self.entries.get_mut(i);
        }
        if self.entries.back().is_none_or(|e| e.seq < seq) {
            self.push(Entry::new(seq));
            return self.entries.back_mut();
        }
        None
    }

    fn existing(&mut self, seq: u64) -> Option<&mut Entry> {
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

    pub fn handle_event(&mut self, event: Event) {
        match event {
            Event::Started {
                student,
                teacher,
                source,
                skill,
                ..
            } => {
                self.student_name = with_host(student, &self.student_host);
                self.teacher_name = with_host(teacher, &self.teacher_host);
                self.source = source;
                self.skill = skill;
            }
            Event::FrameUnchanged {
                unchanged_total, ..
            } => self.unchanged = unchanged_total,
            Event::FrameTaken {
                seq,
                captured_at,
                label,
                width,
                height,
                jpeg_bytes,
                superseded,
                image,
            } => {
                self.frames_seen += 1;
                self.superseded += superseded;
                if let Some(e) = self.entry_for(seq) {
                    e.captured_at = captured_at;
                    e.label = label;
                    e.width = width;
                    e.height = height;
                    e.jpeg_bytes = jpeg_bytes;
                    if image.is_some() {
                        e.frame = image;
                    }
                }
            }
            Event::StudentToken { seq, text } => {
                if let Some(e) = self.entry_for(seq) {
                    if !e.answered {
                        let room = MAX_ANSWER_CHARS.saturating_sub(e.answer.chars().count());
                        e.answer.extend(text.chars().take(room));
                    }
                }
            }
            Event::StudentAnswer {
                seq,
                answer,
                confidence,
                measured_confidence,
                latency_ms,
                reasons,
                skill,
                ..
            } => {
                self.answers += 1;
                self.recent.record(Instant::now(), &reasons);
                self.latencies.push_back(latency_ms);
                while self.latencies.len() > LATENCY_WINDOW {
                    self.latencies.pop_front();
                }
                if let Some(e) = self.entry_for(seq) {
                    e.answer = answer.chars().take(MAX_ANSWER_CHARS).collect();
                    e.answered = true;
                    e.confidence = confidence;
                    e.measured = measured_confidence;
                    e.latency_ms = Some(latency_ms);
                    e.reasons = reasons;
                    e.skill = Some(skill);
                }
            }
            Event::StudentFailed { seq, error } => {
                if let Some(e) = self.entry_for(seq) {
                    e.failed = Some(error);
                }
            }
            Event::StudentRefused { reason, hint } => {
                // The status line shows the student's health (offline with this reason);
                // the notice says that monitoring did not start.
                self.notify(
                    format!(
                        "student not started: {}",
                        crate::ollama::error::with_hint(&reason, &hint)
                    ),
                    true,
                );
            }
            Event::Escalated {
                seq,
                reasons,
                queue_len,
                ..
            } => {
                self.escalations += 1;
                self.teacher_queue = queue_len;
                if let Some(e) = self.existing(seq) {
                    if !reasons.is_empty() {
                        e.reasons = reasons;
                    }
                    e.teacher = TeacherState::Queued {
                        pos: queue_len.max(1),
                    };
                }
            }
            Event::TeacherDropped { seq, .. } => {
                if let Some(e) = self.existing(seq) {
                    e.teacher = TeacherState::Dropped;
                }
            }
            Event::TeacherStarted { seq, queue_len } => {
                self.teacher_queue = queue_len;
                self.reviewing = Some(seq);
                for e in self.entries.iter_mut() {
                    if let TeacherState::Queued { pos } = &mut e.teacher {
                        *pos = pos.saturating_sub(1).max(1);
                    }
                }
                if let Some(e) = self.existing(seq) {
                    e.teacher = TeacherState::Reviewing;
                }
            }
            Event::TeacherVerdict {
                seq,
                verdict,
                latency_ms,
            } => {
                if self.reviewing == Some(seq) {
                    self.reviewing = None;
                }
                self.teacher_latency = Some(latency_ms);
                if verdict.agrees == Some(false) {
                    self.disagreements += 1;
                }
                if let Some(e) = self.existing(seq) {
                    e.teacher = TeacherState::Verdict(verdict, latency_ms);
                }
            }
            Event::TeacherFailed { seq, error } => {
                if self.reviewing == Some(seq) {
                    self.reviewing = None;
                }
                if let Some(e) = self.existing(seq) {
                    e.teacher = TeacherState::Failed(error);
                }
            }
            Event::Health { role, health } => match role {
                Role::Student => self.student_health = health,
                Role::Teacher => self.teacher_health = health,
            },
            Event::ModelLoad { role, state, .. } => match role {
                Role::Student => self.student_load = state,
                Role::Teacher => self.teacher_load = state,
            },
            Event::WarmUp { .. } => {}
            Event::Paused { paused } => self.paused = paused,
            Event::SkillLoaded { name, chars } => {
                self.notify(format!("skill loaded: {name} ({chars} chars)"), false);
                self.skill = name;
            }
            Event::Warning { message } => self.notify(message, true),
            Event::Notified { seq, via, .. } => self.notify(
                format!("#{seq}: safety alert sent via {}", via.join(" and ")),
                false,
            ),
            Event::Stopped { .. } => {
                self.stopped = true;
                self.reviewing = None;
            }
        }
    }

    /// Take a pipeline event for the upskill screen.
    pub fn handle_upskill_event(
        &mut self,
        ev: crate::upskill::pipeline::UpskillEvent,
    ) -> Vec<Action> {
        self.upskill.handle_event(ev, Instant::now())
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

    fn open_learn(&mut self) -> Vec<Action> {
        let opened = self.entry_to_learn().and_then(|e| {
            let v = e.verdict().cloned().unwrap_or_default();
            LearnEditor::open(e.seq, e.captured_at, &v)
                .ok_or_else(|| format!("#{}: the verdict is not a structured one", e.seq))
        });
        match opened {
            Ok(ed) => {
                self.help = false;
                self.learn = Some(ed);
            }
            Err(why) => self.notify(why, true),
        }
        vec![Action::Redraw]
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
            return vec![Action::Quit];
        }
        if let Some(ed) = self.learn.as_mut() {
            return match ed.handle_key(key) {
                Some(acts) => {
                    if acts.iter().any(|a| matches!(a, Action::SaveLearned(_))) {
                        self.learn = None;
                    }
                    acts
                }
                None => {
                    self.learn = None;
                    vec![Action::Redraw]
                }
            };
        }
        if ctrl {
            return Vec::new();
        }
        if self.help && matches!(key.code, KeyCode::Esc | KeyCode::Char('?')) {
            self.help = false;
            return vec![Action::Redraw];
        }
        match self.screen {
            Screen::Monitor => {}
            Screen::Upskill => {
                return match key.code {
                    KeyCode::Char('q') if self.upskill.confirm.is_none() => vec![Action::Quit],
                    KeyCode::Char('?') if self.upskill.confirm.is_none() => {
                        self.help = true;
                        vec![Action::Redraw]
                    }
                    _ => match self.upskill.handle_key(key) {
                        Some(acts) => acts,
                        None => {
                            self.screen = Screen::Monitor;
                            vec![Action::Redraw]
                        }
                    },
                };
            }
            Screen::Calibration => {
                return match key.code {
                    KeyCode::Char('q') => vec![Action::Quit],
                    KeyCode::Char('?') => {
                        self.help = true;
                        vec![Action::Redraw]
                    }
                    KeyCode::Esc | KeyCode::Char('c') => {
                        self.screen = Screen::Monitor;
                        vec![Action::Redraw]
                    }
                    KeyCode::Char('r') => vec![Action::OpenCalibration, Action::Redraw],
                    _ => Vec::new(),
                };
            }
        }
        match key.code {
            KeyCode::Char('q') => return vec![Action::Quit],
            KeyCode::Char('a') => return self.open_learn(),
            KeyCode::Char('c') => {
                self.help = false;
                self.screen = Screen::Calibration;
                return vec![Action::OpenCalibration, Action::Redraw];
            }
            KeyCode::Char('e') => return vec![Action::Engine(Command::ForceEscalate)],
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                return vec![
                    Action::Engine(Command::SetPaused(self.paused)),
                    Action::Redraw,
                ];
            }
            KeyCode::Char('u') => {
                self.help = false;
                self.screen = Screen::Upskill;
                if self.upskill.running() {
                    return vec![Action::Redraw];
                }
                return vec![Action::OpenUpskill, Action::Redraw];
            }
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Char('s') => {
                return match self.entry_to_save() {
                    Some(e) => vec![Action::SaveEntry(e.seq)],
                    None => {
                        self.notify("nothing to save yet: select an entry (Enter) first", true);
                        vec![Action::Redraw]
                    }
                };
            }
            KeyCode::Esc => self.go_live(),
            KeyCode::Enter => {
                if let Some(i) = self.cursor_index() {
                    self.selected = Some(self.entries[i].seq);
                }
            }
            KeyCode::Up => self.move_cursor(-1),
            KeyCode::Down => self.move_cursor(1),
            KeyCode::PageUp => self.move_cursor(-(self.page() as isize)),
            KeyCode::PageDown => self.move_cursor(self.page() as isize),
            KeyCode::Home => {
                if let Some(first) = self.entries.front() {
                    self.cursor = Some(first.seq);
                    self.top = Some(first.seq);
                }
            }
            KeyCode::End => {
                self.cursor = None;
                self.top = None;
            }
            _ => return Vec::new(),
        }
        vec![Action::Redraw]
    }

    pub fn handle_mouse(&mut self, mouse: MouseEvent) -> Vec<Action> {
        match mouse.kind {
            MouseEventKind::ScrollUp => self.move_cursor(-1),
            MouseEventKind::ScrollDown => self.move_cursor(1),
            MouseEventKind::Down(MouseButton::Left) => {
                if self.help {
                    self.help = false;
                    return vec![Action::Redraw];
                }
                let Some(p) = layout::panes(Rect::new(0, 0, self.size.0, self.size.1)) else {
                    return Vec::new();
                };
                let inner = p.log_inner();
                let (x, y) = (mouse.column, mouse.row);
                if self.screen != Screen::Monitor
                    || x < inner.x
                    || x >= inner.right()
                    || y < inner.y
                    || y >= inner.bottom()
                {
                    return Vec::new();
                }
                let range = self.visible_range(inner.height as usize);
                let i = range.start + (y - inner.y) as usize;
                if i >= range.end {
                    return Vec::new();
                }
                let seq = self.entries[i].seq;
                self.top = Some(self.entries[range.start].seq);
                self.cursor = Some(seq);
                self.selected = Some(seq);
            }
            _ => return Vec::new(),
        }
        vec![Action::Redraw]
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

/// `Started` may name the model alone; add the configured host then.
fn with_host(name: String, host: &str) -> String {
    if name.contains('@') || host.is_empty() {
        name
    } else {
        format!("{name}@{host}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crossterm::event::KeyEventState;

    pub fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    pub fn app() -> App {
        let mut a = App::new(&Config::default());
        a.theme = Theme { color: true };
        a.set_size(80, 24);
        a
    }

    pub fn frame(seq: u64) -> Event {
        Event::FrameTaken {
            seq,
            captured_at: Utc::now(),
            label: format!("img{seq}.jpg"),
            width: 768,
            height: 432,
            jpeg_bytes: 41 * 1024,
            superseded: 0,
            image: None,
        }
    }

    pub fn answer(seq: u64, text: &str, confidence: Option<f32>, reasons: Vec<Reason>) -> Event {
        Event::StudentAnswer {
            seq,
            at: Utc::now(),
            answer: text.into(),
            confidence,
            measured_confidence: None,
            latency_ms: 1200,
            reasons,
            skill: "skill.txt".into(),
        }
    }

    fn filled(n: u64) -> App {
        let mut a = app();
        for s in 1..=n {
            a.handle_event(frame(s));
            a.handle_event(answer(s, &format!("answer {s}"), Some(0.9), vec![]));
        }
        a
    }

    #[test]
    fn tokens_stream_into_newest_then_answer_replaces_them() {
        let mut a = app();
        a.handle_event(frame(1));
        a.handle_event(answer(1, "first", Some(0.9), vec![]));
        a.handle_event(frame(2));
        assert!(a.busy());
        for t in ["A ", "cat ", "sits"] {
            a.handle_event(Event::StudentToken {
                seq: 2,
                text: t.into(),
            });
        }
        assert_eq!(a.entries[1].answer, "A cat sits");
        assert_eq!(a.entries[0].answer, "first");
        assert!(!a.entries[1].answered);
        a.handle_event(answer(2, "A cat sits on a mat.", Some(0.7), vec![]));
        assert_eq!(a.entries[1].answer, "A cat sits on a mat.");
        assert!(a.entries[1].answered);
        assert_eq!(a.entries[1].confidence, Some(0.7));
        assert!(!a.busy());
        // A late token after the answer does not corrupt it.
        a.handle_event(Event::StudentToken {
            seq: 2,
            text: "junk".into(),
        });
        assert_eq!(a.entries[1].answer, "A cat sits on a mat.");
    }

    #[test]
    fn runaway_stream_is_bounded() {
        let mut a = app();
        a.handle_event(frame(1));
        let chunk = "x".repeat(1000);
        for _ in 0..40 {
            a.handle_event(Event::StudentToken {
                seq: 1,
                text: chunk.clone(),
            });
        }
        assert_eq!(a.entries[0].answer.chars().count(), MAX_ANSWER_CHARS);
    }

    #[test]
    fn history_bound_holds_at_cap() {
        let mut cfg = Config::default();
        cfg.console.history = 10;
        let mut a = App::new(&cfg);
        for s in 1..=25 {
            a.handle_event(frame(s));
        }
        assert_eq!(a.entries.len(), 10);
        assert_eq!(a.entries.front().unwrap().seq, 16);
        assert_eq!(a.entries.back().unwrap().seq, 25);
        assert_eq!(a.frames_seen, 25);
        // Events for evicted entries are ignored, not resurrected.
        a.handle_event(answer(3, "old", Some(0.9), vec![]));
        assert_eq!(a.entries.len(), 10);
        assert!(a.entry(3).is_none());
    }

    #[test]
    fn stats_latency_median_and_escalation_rate() {
        let mut a = app();
        for (s, ms) in [(1, 1000), (2, 3000), (3, 1400), (4, 1200)] {
            a.handle_event(frame(s));
            a.handle_event(Event::StudentAnswer {
                seq: s,
                at: Utc::now(),
                answer: "x".into(),
                confidence: Some(0.9),
                measured_confidence: None,
                latency_ms: ms,
                reasons: vec![],
                skill: "s".into(),
            });
        }
        a.handle_event(Event::Escalated {
            seq: 2,
            reasons: vec![Reason::NoConfidence],
            queue_len: 1,
            frame_path: None,
        });
        assert_eq!(a.last_latency(), Some(1200));
        assert_eq!(a.median_latency(), Some(1300));
        assert_eq!(a.escalation_rate(), Some(0.25));
        for s in 5..=100 {
            a.handle_event(answer(s, "x", None, vec![]));
        }
        assert_eq!(a.latencies.len(), LATENCY_WINDOW);
    }

    #[test]
    fn selection_and_scroll_keys() {
        let mut a = filled(30);
        let rows = a.log_rows();
        assert!(rows > 3 && rows < 30, "rows {rows}");
        assert_eq!(a.cursor_index(), Some(29));
        assert_eq!(a.visible_range(rows), 30 - rows..30);
        a.handle_key(key(KeyCode::Up));
        assert_eq!(a.cursor, Some(29));
        a.handle_key(key(KeyCode::Up));
        assert_eq!(a.cursor, Some(28));
        // Still in view: the window did not move.
        assert_eq!(a.visible_range(rows), 30 - rows..30);
        a.handle_key(key(KeyCode::PageUp));
        assert_eq!(a.cursor, Some(28 - (rows as u64 - 1)));
        let r = a.visible_range(rows);
        assert!(r.contains(&a.cursor_index().unwrap()));
        a.handle_key(key(KeyCode::Home));
        assert_eq!(a.cursor, Some(1));
        assert_eq!(a.visible_range(rows), 0..rows);
        a.handle_key(key(KeyCode::Up));
        assert_eq!(a.cursor, Some(1), "stops at the oldest");
        a.handle_key(key(KeyCode::Down));
        a.handle_key(key(KeyCode::Down));
        assert_eq!(a.cursor, Some(3));
        // New entries do not move a scrolled-back view.
        a.handle_event(frame(31));
        assert_eq!(a.visible_range(rows), 0..rows);
        // Enter pins the highlighted entry for the frame and teacher panes.
        assert_eq!(a.frame_entry().map(|e| e.seq), Some(31));
        a.handle_key(key(KeyCode::Enter));
        assert_eq!(a.selected, Some(3));
        assert_eq!(a.teacher_entry().map(|e| e.seq), Some(3));
        a.handle_key(key(KeyCode::End));
        assert_eq!(a.cursor, None);
        assert_eq!(a.visible_range(rows).end, 31);
        a.handle_key(key(KeyCode::PageDown));
        assert_eq!(a.cursor, Some(31), "page down stops at newest");
    }

    #[test]
    fn esc_goes_back_to_live_or_closes_help_first() {
        let mut a = filled(5);
        a.handle_key(key(KeyCode::Up));
        a.handle_key(key(KeyCode::Up));
        a.handle_key(key(KeyCode::Enter));
        assert_eq!(a.selected, Some(3));
        a.handle_key(key(KeyCode::Char('?')));
        assert!(a.help);
        a.handle_key(key(KeyCode::Esc));
        assert!(!a.help);
        assert_eq!(a.selected, Some(3), "first Esc only closes help");
        a.handle_key(key(KeyCode::Esc));
        assert_eq!((a.selected, a.cursor, a.top), (None, None, None));
    }

    #[test]
    fn tick_turns_the_spinner_only_while_busy() {
        let mut a = app();
        assert!(!a.tick());
        assert_eq!(a.spinner, 0);
        a.handle_event(frame(1));
        assert!(a.tick());
        assert_eq!(a.spinner, 1);
        a.handle_event(Event::Stopped { frames_answered: 0 });
        assert!(!a.busy());
        assert!(!a.tick());
    }

    #[test]
    fn help_toggles() {
        let mut a = app();
        a.handle_key(key(KeyCode::Char('?')));
        assert!(a.help);
        a.handle_key(key(KeyCode::Char('?')));
        assert!(!a.help);
    }

    #[test]
    fn command_keys() {
        let mut a = app();
        assert_eq!(
            a.handle_key(key(KeyCode::Char('e'))),
            vec![Action::Engine(Command::ForceEscalate)]
        );
        assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
        assert_eq!(
            a.handle_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            vec![Action::Quit]
        );
        // `c` opens the calibration view; Esc goes back.
        assert!(a
            .handle_key(key(KeyCode::Char('c')))
            .contains(&Action::OpenCalibration));
        assert_eq!(a.screen, Screen::Calibration);
        assert!(a
            .handle_key(key(KeyCode::Char('r')))
            .contains(&Action::OpenCalibration));
        a.handle_key(key(KeyCode::Esc));
        assert_eq!(a.screen, Screen::Monitor);
        // Plain letters without a meaning do nothing; keys work with help open.
        assert!(a.handle_key(key(KeyCode::Char('z'))).is_empty());
        a.handle_key(key(KeyCode::Char('?')));
        assert!(a
            .handle_key(key(KeyCode::Char('p')))
            .contains(&Action::Engine(Command::SetPaused(true))));
        assert!(a.paused);
        assert!(a
            .handle_key(key(KeyCode::Char('p')))
            .contains(&Action::Engine(Command::SetPaused(false))));
        let acts = a.handle_key(key(KeyCode::Char('u')));
        assert!(acts.contains(&Action::OpenUpskill));
        assert_eq!(a.screen, Screen::Upskill);
        assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
        a.handle_key(key(KeyCode::Esc));
        assert_eq!(a.screen, Screen::Monitor);
        // Key releases are ignored.
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        release.state = KeyEventState::NONE;
        assert!(a.handle_key(release).is_empty());
    }

    #[test]
    fn teacher_states_attach_to_the_right_entry() {
        let mut a = filled(4);
        a.handle_event(Event::Escalated {
            seq: 2,
            reasons: vec![Reason::Forced],
            queue_len: 1,
            frame_path: None,
        });
        a.handle_event(Event::Escalated {
            seq: 3,
            reasons: vec![Reason::NoConfidence],
            queue_len: 2,
            frame_path: None,
        });
        a.handle_event(Event::Escalated {
            seq: 4,
            reasons: vec![Reason::Audit],
            queue_len: 3,
            frame_path: None,
        });
        assert_eq!(a.entry(3).unwrap().teacher, TeacherState::Queued { pos: 2 });
        assert_eq!(a.entry(2).unwrap().reasons, vec![Reason::Forced]);
        a.handle_event(Event::TeacherDropped {
            seq: 4,
            reasons: vec![Reason::Audit],
        });
        a.handle_event(Event::TeacherStarted {
            seq: 2,
            queue_len: 1,
        });
        assert_eq!(a.entry(2).unwrap().teacher, TeacherState::Reviewing);
        assert_eq!(a.entry(3).unwrap().teacher, TeacherState::Queued { pos: 1 });
        assert_eq!(a.entry(4).unwrap().teacher, TeacherState::Dropped);
        assert!(a.busy());
        let v = Verdict {
            agrees: Some(false),
            summary: "it is a dog".into(),
            ..Verdict::default()
        };
        a.handle_event(Event::TeacherVerdict {
            seq: 2,
            verdict: v.clone(),
            latency_ms: 8100,
        });
        assert_eq!(a.entry(2).unwrap().teacher, TeacherState::Verdict(v, 8100));
        assert_eq!(a.entry(1).unwrap().teacher, TeacherState::None);
        assert_eq!(a.disagreements, 1);
        assert!(!a.busy());
        a.handle_event(Event::TeacherStarted {
            seq: 3,
            queue_len: 0,
        });
        a.handle_event(Event::TeacherFailed {
            seq: 3,
            error: "connection refused".into(),
        });
        assert_eq!(
            a.entry(3).unwrap().teacher,
            TeacherState::Failed("connection refused".into())
        );
        assert_eq!(a.teacher_queue, 0);
        // Live teacher pane: the newest entry the teacher touched.
        assert_eq!(a.teacher_entry().map(|e| e.seq), Some(4));
        // `s` saves the newest reviewed entry when nothing is selected.
        assert_eq!(
            a.handle_key(key(KeyCode::Char('s'))),
            vec![Action::SaveEntry(2)]
        );
    }

    #[test]
    fn learn_key_opens_the_editor_on_a_reviewed_entry() {
        let mut a = filled(3);
        // Nothing reviewed: a warning, no editor.
        a.handle_key(key(KeyCode::Char('a')));
        assert!(a.learn.is_none());
        assert!(a
            .active_notice(Instant::now())
            .is_some_and(|n| n.warning && n.text.starts_with("nothing to learn from")));
        // Entry 2 reviewed and has its frame.
        a.entries[1].frame = Some(crate::tui::images::tests::test_frame(8, 8));
        a.handle_event(Event::TeacherVerdict {
            seq: 2,
            verdict: crate::tui::learn_edit::tests::verdict(),
            latency_ms: 5,
        });
        assert_eq!(a.entry_to_learn().map(|e| e.seq), Ok(2));
        // A selected entry without a verdict is refused, by number.
        a.selected = Some(3);
        assert!(a
            .entry_to_learn()
            .unwrap_err()
            .starts_with("#3 cannot become a case"));
        a.selected = None;
        a.handle_key(key(KeyCode::Char('a')));
        let ed = a.learn.as_ref().expect("editor open");
        assert_eq!(ed.seq, 2);
        // Keys go to the editor: `q` is typed, not quit.
        assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Redraw]);
        assert!(a.learn.as_ref().unwrap().fields[0].ends_with('q'));
        a.handle_key(key(KeyCode::Esc));
        assert!(a.learn.is_none());
        assert_eq!(a.selected, None);
    }

    #[test]
    fn save_with_nothing_reviewed_warns() {
        let mut a = filled(2);
        assert_eq!(a.handle_key(key(KeyCode::Char('s'))), vec![Action::Redraw]);
        assert!(a.active_notice(Instant::now()).is_some_and(|n| n.warning));
    }

    #[test]
    fn student_failure_and_health_and_started() {
        let mut a = app();
        a.handle_event(Event::Started {
            at: Utc::now(),
            student: "gemma4:e2b".into(),
            teacher: "gemma4:26b@mac".into(),
            source: "camera 0".into(),
            skill: "skill.txt".into(),
        });
        assert_eq!(a.student_name, "gemma4:e2b@127.0.0.1");
        assert_eq!(a.teacher_name, "gemma4:26b@mac");
        a.handle_event(frame(1));
        a.handle_event(Event::StudentFailed {
            seq: 1,
            error: "timeout".into(),
        });
        assert_eq!(a.entries[0].failed.as_deref(), Some("timeout"));
        assert!(!a.busy());
        a.handle_event(Event::Health {
            role: Role::Teacher,
            health: Health::Offline {
                reason: "connection refused".into(),
                hint: "start ollama".into(),
            },
        });
        assert!(matches!(a.health(Role::Teacher), Health::Offline { .. }));
        a.handle_event(Event::Warning {
            message: "camera lost".into(),
        });
        assert_eq!(a.active_notice(Instant::now()).unwrap().text, "camera lost");
        assert!(a.needs_tick());
        assert!(a
            .active_notice(Instant::now() + NOTICE_FOR + Duration::from_millis(1))
            .is_none());
    }

    #[test]
    fn mouse_click_selects_and_wheel_moves() {
        let mut a = filled(5);
        let inner = layout::panes(Rect::new(0, 0, 80, 24)).unwrap().log_inner();
        // 5 entries in a taller log: entry #2 is on the second row.
        a.handle_mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: inner.x + 3,
            row: inner.y + 1,
            modifiers: KeyModifiers::NONE,
        });
        assert_eq!(a.selected, Some(2));
        a.handle_mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        });
        assert_eq!(a.cursor, Some(3));
        // A click below the last entry selects nothing new.
        a.handle_mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column: inner.x + 3,
            row: inner.y + 7,
            modifiers: KeyModifiers::NONE,
        });
        assert_eq!(a.selected, Some(2));
    }

    #[test]
    fn short_host_forms() {
        assert_eq!(short_host("http://127.0.0.1:11434"), "127.0.0.1");
        assert_eq!(short_host("https://mac-mini.local"), "mac-mini.local");
        assert_eq!(short_host("http://[::1]:11434/x"), "::1");
    }
}
