//! The app's side of the history screen and the "while you were away" summary: opening
//! the screen (at a span), and which keys reach them.

use crate::tui::action::{Action, Screen};
use crate::tui::app::App;
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::popups::away::{self, AwayKey};
use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

impl App {
    /// Show the history screen (at a span: the away summary's) and ask for its list.
    pub fn open_history(&mut self, span: Option<(DateTime<Utc>, DateTime<Utc>)>) -> Vec<Action> {
        self.help = false;
        self.screen = Screen::History;
        let mut acts = self.history.open(span);
        acts.push(Action::Redraw);
        acts
    }

    /// The away summary takes the key first while shown: `h` opens the history at its
    /// span, Esc closes it, any other key closes it and does what it does (None).
    pub(super) fn away_key(&mut self, key: &KeyEvent) -> Option<Vec<Action>> {
        let summary = self.away.as_ref()?;
        let span = (summary.from, summary.until);
        self.away = None;
        match away::key(key) {
            AwayKey::History => Some(self.open_history(Some(span))),
            AwayKey::Close => Some(vec![Action::Redraw]),
            AwayKey::Other => None,
        }
    }

    /// The history screen's keys: typing a search takes every key; otherwise `q` and `?`
    /// work here too.
    pub(super) fn history_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if self.history.typing.is_none() {
            match keys::lookup(&[Context::All], &key) {
                Some(KeyAction::Quit) => return vec![Action::Quit],
                Some(KeyAction::Help) => {
                    self.help = true;
                    return vec![Action::Redraw];
                }
                _ => {}
            }
        }
        match self.history.handle_key(&key) {
            Some(acts) => acts,
            None => {
                self.screen = Screen::Monitor;
                vec![Action::Redraw]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::history::query::AwaySummary;
    use crate::service::protocol::ServerMsg;
    use crate::tui::action::{Action, Screen};
    use crate::tui::app::tests::{app, key};
    use crate::tui::screens::history::state::tests::t;
    use crossterm::event::KeyCode;

    fn summary() -> Option<Box<AwaySummary>> {
        Some(Box::new(AwaySummary {
            from: t("2026-12-05T01:00:00Z"),
            until: t("2026-12-05T07:00:00Z"),
            ..AwaySummary::default()
        }))
    }

    #[test]
    fn the_away_summary_opens_the_history_at_its_span() {
        let mut a = app();
        // No summary (away too briefly): nothing opens.
        a.handle_message(ServerMsg::Away { summary: None });
        assert!(a.away.is_none());
        a.handle_message(ServerMsg::Away { summary: summary() });
        assert!(a.away.is_some());
        let acts = a.handle_key(key(KeyCode::Char('h')));
        assert_eq!(a.screen, Screen::History);
        assert!(a.away.is_none());
        let Some(Action::HistoryQuery { filter, .. }) = acts.first() else {
            panic!("{acts:?}")
        };
        assert_eq!(filter.since, Some(t("2026-12-05T01:00:00Z")));
        assert_eq!(filter.until, Some(t("2026-12-05T07:00:00Z")));
        // Esc closes it; another key closes it and does its own thing.
        a.screen = Screen::Monitor;
        a.handle_message(ServerMsg::Away { summary: summary() });
        a.handle_key(key(KeyCode::Esc));
        assert!(a.away.is_none() && a.screen == Screen::Monitor);
        a.handle_message(ServerMsg::Away { summary: summary() });
        a.handle_key(key(KeyCode::Char('?')));
        assert!(a.away.is_none() && a.help);
    }

    #[test]
    fn h_opens_the_history_and_q_typed_in_a_search_is_text() {
        let mut a = app();
        let acts = a.handle_key(key(KeyCode::Char('h')));
        assert_eq!(a.screen, Screen::History);
        assert!(matches!(acts[0], Action::HistoryQuery { .. }));
        a.handle_key(key(KeyCode::Char('/')));
        assert!(!a
            .handle_key(key(KeyCode::Char('q')))
            .contains(&Action::Quit));
        assert_eq!(a.history.typing.as_deref(), Some("q"));
        a.handle_key(key(KeyCode::Esc));
        assert_eq!(a.handle_key(key(KeyCode::Char('q'))), vec![Action::Quit]);
        a.handle_key(key(KeyCode::Char('h')));
        assert_eq!(a.screen, Screen::Monitor, "h goes back");
    }
}
