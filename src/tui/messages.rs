//! The console's side of the engine link: a service message (from the service this
//! console is attached to, or from the hub of its own engine) becomes a state change.
//! Pure, like `App::handle_event`.

use crate::service::protocol::{Counters, ServerMsg};
use crate::tui::action::Action;
use crate::tui::app::App;
use crate::tui::screens::monitor::Monitor;

impl App {
    /// Take one message of the engine link.
    pub fn handle_message(&mut self, msg: ServerMsg) -> Vec<Action> {
        match msg {
            ServerMsg::Hello(_) | ServerMsg::EvalDone { .. } | ServerMsg::Here => {}
            ServerMsg::History { result } => {
                let mut acts = self.history.page(result);
                acts.push(Action::Redraw);
                return acts;
            }
            ServerMsg::HistoryDetail { result } => {
                let mut acts = self.history.detail(result);
                acts.push(Action::Redraw);
                return acts;
            }
            ServerMsg::HistoryFrame { id, result } => {
                let mut acts = self.history.frame(id, result);
                acts.push(Action::Redraw);
                return acts;
            }
            ServerMsg::Away { summary } => {
                if summary.is_some() {
                    self.away = summary;
                }
            }
            ServerMsg::SnapshotBegin { resync } => {
                self.forget_session();
                if resync {
                    self.notify("this console fell behind: caught up from the engine", true);
                }
            }
            ServerMsg::SnapshotEnd { counters } => self.set_counters(counters),
            ServerMsg::Event(ev) => self.handle_event(ev),
            ServerMsg::Upskill(ev) => return self.handle_upskill_event(ev),
            ServerMsg::UpskillRefused(why) => self
                .upskill
                .refuse(crate::reading::sanitize::strip_controls(&why)),
            ServerMsg::Notice { text, warning } => {
                self.notify(crate::reading::sanitize::strip_controls(&text), warning)
            }
            ServerMsg::Broker { label, connected } => {
                self.broker = Some((crate::reading::sanitize::strip_controls(&label), connected))
            }
            ServerMsg::Error(m) => self.notify(
                format!("engine: {}", crate::reading::sanitize::strip_controls(&m)),
                true,
            ),
        }
        vec![Action::Redraw]
    }

    /// Before a snapshot: what the snapshot will say again is forgotten (the view, the
    /// screen and the terminal size stay).
    fn forget_session(&mut self) {
        let size = self.monitor.size;
        self.monitor = Monitor::new(self.monitor.history, self.monitor.threshold);
        self.monitor.size = size;
        self.set_counters(Counters::default());
        self.teacher_queue = 0;
        self.reviewing = None;
        self.recent = Default::default();
        self.stopped = false;
        if !self.upskill.running() {
            let finetune = self.upskill.finetune.take();
            let past_runs = std::mem::take(&mut self.upskill.past_runs);
            self.upskill = crate::tui::screens::upskill::UpskillState::new(std::mem::take(
                &mut self.upskill.skill_path,
            ));
            self.upskill.finetune = finetune;
            self.upskill.past_runs = past_runs;
        }
    }

    fn set_counters(&mut self, c: Counters) {
        self.frames_seen = c.frames_seen;
        self.superseded = c.superseded;
        self.unchanged = c.unchanged;
        self.answers = c.answers;
        self.escalations = c.escalations;
        self.disagreements = c.disagreements;
    }
}

#[cfg(test)]
mod tests {
    use crate::service::protocol::{Counters, ServerMsg};
    use crate::service::recorder::Recorder;
    use crate::tui::app::tests::{answer, app, frame};

    #[test]
    fn a_snapshot_rebuilds_what_a_console_attached_all_along_shows() {
        // One console sees every event …
        let mut all_along = app();
        let mut rec = Recorder::new(1000);
        for seq in 1..=4 {
            for ev in [frame(seq), answer(seq, "A mug.", Some(0.9), vec![])] {
                rec.record(&ev);
                all_along.handle_event(ev);
            }
        }
        // … another attaches now and gets the snapshot.
        let mut late = app();
        late.handle_event(frame(99)); // something stale from before
        for m in rec.snapshot(false) {
            late.handle_message(m);
        }
        let seqs =
            |a: &crate::tui::App| a.monitor.entries.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(&late), seqs(&all_along));
        assert_eq!(late.answers, all_along.answers);
        assert_eq!(late.frames_seen, all_along.frames_seen);
        assert_eq!(
            late.monitor.entry(4).unwrap().answer,
            all_along.monitor.entry(4).unwrap().answer
        );
    }

    #[test]
    fn a_resync_says_so_and_replaces_the_log() {
        let mut a = app();
        a.handle_event(frame(1));
        a.handle_message(ServerMsg::SnapshotBegin { resync: true });
        assert!(a.monitor.entries.is_empty());
        assert!(a.notice.as_ref().unwrap().text.contains("fell behind"));
        a.handle_message(ServerMsg::SnapshotEnd {
            counters: Counters {
                answers: 7,
                ..Default::default()
            },
        });
        assert_eq!(a.answers, 7);
        a.handle_message(ServerMsg::Error("\u{1b}[2Jbad".into()));
        assert!(!a.notice.as_ref().unwrap().text.contains('\u{1b}'));
    }
}
