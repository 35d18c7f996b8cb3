//! The console's state: engine events, upskill events, keys and mouse in, `Action`s out.
//! It owns the screens and popups and routes to them; no terminal here, so every behaviour
//! can be tested without one.

use crate::config::Config;
use crate::event::{Health, Role};
use crate::history::query::AwaySummary;
use crate::tui::action::{Action, Screen};
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::popups::help;
use crate::tui::popups::learn_editor::LearnEditor;
use crate::tui::roles::RoleView;
use crate::tui::screens::calibration::{self, CalibrationData};
use crate::tui::screens::history::HistoryScreen;
use crate::tui::screens::monitor::view::Ctx;
use crate::tui::screens::monitor::Monitor;
use crate::tui::screens::upskill::UpskillState;
use crate::tui::theme::Theme;
use crate::tui::widgets;
use crossterm::event::{
    KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use std::time::{Duration, Instant};

pub use crate::tui::roles::{short_host, LATENCY_WINDOW};

/// How long a warning or notice stays in the status bar.
pub const NOTICE_FOR: Duration = Duration::from_secs(5);

/// Finished upskill runs listed on the upskill screen.
const PAST_RUNS: usize = 5;

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
    /// The monitor screen: the log and where the user is in it.
    pub monitor: Monitor,
    pub student: RoleView,
    pub teacher: RoleView,
    /// The help overlay is open.
    pub help: bool,
    pub paused: bool,
    /// The frame source's name (from `Started`).
    pub source: String,
    pub skill: String,
    /// The upskill screen (`u`).
    pub upskill: UpskillState,
    /// The learn editor (`a`), while open.
    pub learn: Option<LearnEditor>,
    /// The watches popup (`w`), while open.
    pub watches_popup: Option<crate::tui::popups::watches::WatchesPopup>,
    /// The calibration view's data (`c`), loaded when it opens.
    pub calibration: Option<CalibrationData>,
    /// The history screen (`h`).
    pub history: HistoryScreen,
    /// The "while you were away" summary, while shown.
    pub away: Option<Box<AwaySummary>>,
    pub frames_seen: u64,
    /// Frames the change gate kept from the student (unchanged scene).
    pub unchanged: u64,
    /// Frames captured while the student was busy that nobody looked at.
    pub superseded: u64,
    pub answers: u64,
    pub escalations: u64,
    /// Escalations over the last 5 minutes (the status bar's rate).
    pub recent: crate::policy::escalation_rate::EscalationRate,
    /// Warn (`!` in the status bar) above this recent share; 0 = never.
    pub storm_share: f64,
    pub disagreements: u64,
    pub teacher_queue: usize,
    /// The student is down and the teacher watches alone, one frame per this many seconds.
    pub teacher_alone: Option<u64>,
    pub reviewing: Option<u64>,
    pub notice: Option<Notice>,
    pub spinner: usize,
    pub stopped: bool,
    /// The service this console is attached to; None: the engine runs in this process.
    pub attached: Option<crate::service::protocol::ServiceInfo>,
    /// The MQTT broker's state (`[mqtt]` on): its label and whether it is connected.
    pub broker: Option<(String, bool)>,
    /// The watches as the engine last said (the monitor's strip).
    pub watches: Vec<crate::watch::WatchStatus>,
}

impl App {
    pub fn new(config: &Config) -> Self {
        App {
            screen: Screen::Monitor,
            theme: Theme::from_env(),
            monitor: Monitor::new(config.console.history, config.policy.confidence_threshold),
            student: RoleView::new(&config.student.model, &config.student.host),
            teacher: RoleView::new(&config.teacher.model, &config.teacher.host),
            help: false,
            paused: false,
            source: String::new(),
            skill: config
                .skill_path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            upskill: {
                // Read once at start; `finetune status` has the details.
                let readiness = crate::finetune::gather::readiness(config).ok();
                UpskillState {
                    past_runs: readiness.as_ref().map_or_else(Vec::new, |r| {
                        crate::finetune::readiness::run_lines(&r.runs, PAST_RUNS)
                    }),
                    finetune: readiness.map(|r| r.verdict),
                    ..UpskillState::new(config.skill_path())
                }
            },
            learn: None,
            watches_popup: None,
            calibration: None,
            history: HistoryScreen::default(),
            away: None,
            frames_seen: 0,
            unchanged: 0,
            superseded: 0,
            answers: 0,
            escalations: 0,
            recent: Default::default(),
            storm_share: config.policy.storm_share,
            disagreements: 0,
            teacher_queue: 0,
            teacher_alone: None,
            reviewing: None,
            notice: None,
            spinner: 0,
            stopped: false,
            attached: None,
            broker: None,
            watches: Vec::new(),
        }
    }

    // ---- queries -------------------------------------------------------------------

    /// One model's view.
    pub fn role(&self, role: Role) -> &RoleView {
        match role {
            Role::Student => &self.student,
            Role::Teacher => &self.teacher,
        }
    }

    fn role_mut(&mut self, role: Role) -> &mut RoleView {
        match role {
            Role::Student => &mut self.student,
            Role::Teacher => &mut self.teacher,
        }
    }

    pub fn health(&self, role: Role) -> &Health {
        &self.role(role).health
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

    /// Something is moving: the spinner needs ticks.
    pub fn busy(&self) -> bool {
        !self.stopped
            && (self.reviewing.is_some() || self.monitor.newest().is_some_and(|e| e.in_flight()))
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
        widgets::spinner_char(self.spinner)
    }

    /// What the monitor's drawing needs from the rest of the app.
    pub fn monitor_ctx(&self) -> Ctx<'_> {
        Ctx {
            theme: &self.theme,
            spinner: self.spinner_char(),
            student: &self.student,
            teacher: &self.teacher,
            paused: self.paused,
            help: self.help,
            source: &self.source,
            watches: &self.watches,
        }
    }

    // ---- updates -------------------------------------------------------------------

    pub fn set_size(&mut self, width: u16, height: u16) {
        self.monitor.size = (width, height);
        // The status bar, the borders and the hint line are not the list's.
        self.history.page_rows = (height as usize).saturating_sub(5).max(1);
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

    /// Take a pipeline event for the upskill screen. Pure, like `handle_event`.
    pub fn handle_upskill_event(
        &mut self,
        ev: crate::upskill::pipeline::UpskillEvent,
    ) -> Vec<Action> {
        self.upskill.handle_event(ev, Instant::now())
    }

    fn open_learn(&mut self) -> Vec<Action> {
        let opened = self.monitor.entry_to_learn().and_then(|e| {
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

    /// A key: the open popup takes it first, then the screen; each looks it up in the key
    /// table (`keys::KEYS`).
    pub fn handle_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        // Ctrl-C quits from anywhere, the editor included.
        if ctrl && keys::lookup(&[Context::All], &key) == Some(KeyAction::Quit) {
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
        if let Some(p) = self.watches_popup.as_mut() {
            return match p.handle_key(key) {
                Some(acts) => acts,
                None => {
                    self.watches_popup = None;
                    vec![Action::Redraw]
                }
            };
        }
        if ctrl {
            return Vec::new();
        }
        if let Some(acts) = self.away_key(&key) {
            return acts;
        }
        if self.help && help::closes(&key) {
            self.help = false;
            return vec![Action::Redraw];
        }
        match self.screen {
            Screen::Monitor => self.monitor_key(key),
            Screen::History => self.history_key(key),
            Screen::Upskill => {
                if self.upskill.confirm.is_none() {
                    match keys::lookup(&[Context::All], &key) {
                        Some(KeyAction::Quit) => return vec![Action::Quit],
                        Some(KeyAction::Help) => {
                            self.help = true;
                            return vec![Action::Redraw];
                        }
                        _ => {}
                    }
                }
                match self.upskill.handle_key(key) {
                    Some(acts) => acts,
                    None => {
                        self.screen = Screen::Monitor;
                        vec![Action::Redraw]
                    }
                }
            }
            Screen::Calibration => {
                match keys::lookup(&[Context::All], &key) {
                    Some(KeyAction::Quit) => return vec![Action::Quit],
                    Some(KeyAction::Help) => {
                        self.help = true;
                        return vec![Action::Redraw];
                    }
                    _ => {}
                }
                match calibration::handle_key(&key) {
                    Some(acts) => acts,
                    None => {
                        self.screen = Screen::Monitor;
                        vec![Action::Redraw]
                    }
                }
            }
        }
    }

    /// The monitor's keys: those that leave it or reach the engine here, moving in the
    /// log in `Monitor::navigate`.
    fn monitor_key(&mut self, key: KeyEvent) -> Vec<Action> {
        let Some(action) = keys::lookup(&[Context::Monitor, Context::All], &key) else {
            return Vec::new();
        };
        match action {
            KeyAction::Quit => vec![Action::Quit],
            KeyAction::Learn => self.open_learn(),
            KeyAction::OpenWatches => {
                self.watches_popup = Some(crate::tui::popups::watches::WatchesPopup::open(
                    &self.watches,
                ));
                vec![Action::Redraw]
            }
            KeyAction::OpenCalibration => {
                self.help = false;
                self.screen = Screen::Calibration;
                vec![Action::OpenCalibration, Action::Redraw]
            }
            KeyAction::OpenHistory => self.open_history(None),
            KeyAction::Escalate => vec![Action::Engine(crate::event::Command::ForceEscalate)],
            KeyAction::Acknowledge => vec![Action::Engine(crate::event::Command::Ack {
                incident: None,
                by: "console".into(),
            })],
            KeyAction::Pause => {
                self.paused = !self.paused;
                vec![
                    Action::Engine(crate::event::Command::SetPaused(self.paused)),
                    Action::Redraw,
                ]
            }
            KeyAction::OpenUpskill => {
                self.help = false;
                self.screen = Screen::Upskill;
                if self.upskill.running() {
                    vec![Action::Redraw]
                } else {
                    vec![Action::OpenUpskill, Action::Redraw]
                }
            }
            KeyAction::Help => {
                self.help = !self.help;
                vec![Action::Redraw]
            }
            KeyAction::Save => match self.monitor.entry_to_save() {
                Some(e) => vec![Action::SaveEntry(e.seq)],
                None => {
                    self.notify("nothing to save yet: select an entry (Enter) first", true);
                    vec![Action::Redraw]
                }
            },
            other => {
                if self.monitor.navigate(other) {
                    vec![Action::Redraw]
                } else {
                    Vec::new()
                }
            }
        }
    }

    pub fn handle_mouse(&mut self, mouse: MouseEvent) -> Vec<Action> {
        if let MouseEventKind::Down(MouseButton::Left) = mouse.kind {
            if self.help {
                self.help = false;
                return vec![Action::Redraw];
            }
            if self.screen != Screen::Monitor {
                return Vec::new();
            }
        }
        if self.monitor.handle_mouse(mouse) {
            vec![Action::Redraw]
        } else {
            Vec::new()
        }
    }
}

#[path = "app_events.rs"]
mod app_events;
#[path = "app_history.rs"]
mod app_history;

#[cfg(test)]
#[path = "app_tests.rs"]
pub(crate) mod tests;
