//! The engine's watches: the list (the config's `[[watch]]`, or `skills/watches.toml` once
//! the console wrote it; re-read like the skill), their states, and the events they give.
//! The rules are `crate::watch`'s; this file only holds them and says what changed.

use crate::config::Config;
use crate::event::{Event, WatchesEvent};
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use crate::watch::file::{Poll, WatchSource};
use crate::watch::state::TeacherOutcome;
use crate::watch::{parse_watch_answers, WatchBoard, WatchChange, WatchSpec};
use chrono::Utc;

pub(super) struct EngineWatches {
    source: WatchSource,
    board: WatchBoard,
}

impl EngineWatches {
    /// The watches at start, and what is wrong with a watches file that cannot be used.
    pub(super) fn open(config: &Config) -> (Self, Option<String>) {
        let (source, problem) = WatchSource::open(&config.watches_path(), &config.watch);
        let board = WatchBoard::new(source.current());
        (EngineWatches { source, board }, problem)
    }

    pub(super) fn specs(&self) -> Vec<WatchSpec> {
        self.board.specs()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.board.is_empty()
    }

    /// Every watch as it stands, with what just changed.
    pub(super) fn event(&self, changes: Vec<WatchChange>, removed: Vec<String>) -> Event {
        Event::Watches(WatchesEvent {
            watches: self.board.statuses(),
            changes,
            removed,
        })
    }

    /// Look at the watches file again: the new list, or why it cannot be used.
    pub(super) fn refresh(&mut self) -> Option<Event> {
        let polled = self.source.poll();
        self.on_poll(polled)
    }

    fn on_poll(&mut self, polled: Poll) -> Option<Event> {
        match polled {
            Poll::Same => None,
            Poll::Changed => {
                let removed = self.board.set_specs(self.source.current());
                Some(self.event(Vec::new(), removed))
            }
            Poll::Refused(why) => Some(Event::Warning {
                message: format!("watches not changed: {why}"),
            }),
        }
    }

    /// A face's new list: checked, saved atomically to `skills/watches.toml`, then used.
    pub(super) fn set(&mut self, specs: &[WatchSpec]) -> Vec<Event> {
        match crate::watch::file::save(self.source.path(), specs) {
            Ok(()) => {
                let polled = self.source.reread();
                self.on_poll(polled).into_iter().collect()
            }
            Err(why) => vec![Event::Warning {
                message: format!("watches not saved: {why}"),
            }],
        }
    }

    /// The student's answer to frame `seq`: the escalation reasons its watch lines give,
    /// and the event when a state changed.
    pub(super) fn on_student(&mut self, seq: u64, answer: &str) -> (Vec<Reason>, Option<Event>) {
        if self.board.is_empty() {
            return (Vec::new(), None);
        }
        let answers = parse_watch_answers(answer, &self.board.ids());
        let (steps, changes) = self.board.on_student(seq, Utc::now(), &answers);
        let event = (!changes.is_empty()).then(|| self.event(changes, Vec::new()));
        (crate::policy::watch_reasons(&steps), event)
    }

    /// The teacher's verdict on frame `seq`: what it decided, and the event when it
    /// changed or confirmed a state.
    pub(super) fn on_teacher(&mut self, seq: u64, v: &Verdict) -> (TeacherOutcome, Option<Event>) {
        if self.board.is_empty() || v.watches.is_empty() {
            return (TeacherOutcome::default(), None);
        }
        let before = self.board.statuses();
        let out = self.board.on_teacher(seq, Utc::now(), &v.watches);
        let event =
            (self.board.statuses() != before).then(|| self.event(out.changes.clone(), Vec::new()));
        (out, event)
    }

    pub(super) fn spec(&self, id: &str) -> Option<WatchSpec> {
        self.board.spec(id).cloned()
    }
}
