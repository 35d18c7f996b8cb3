//! Drawing the whole console: a pure function of the app state (plus the thumbnail's
//! encoder state). The status bar, then the screen, then any popup; a notice instead when
//! the terminal is too small.

use super::app::App;
use super::images::ImageState;
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use super::popups::{away, help, learn_editor};
use super::screens::{calibration, history, monitor, upskill};
use super::status::status_line;
use crate::tui::action::Screen;
use ratatui::layout::Rect;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::time::Instant;

pub fn draw(f: &mut Frame, app: &App, images: &mut ImageState) {
    draw_at(f, app, images, Instant::now());
}

/// `draw` with its clocks (notices, rates, the upskill timer) read at `now`.
pub fn draw_at(f: &mut Frame, app: &App, images: &mut ImageState, now: Instant) {
    let area = f.area();
    let Some(p) = layout::panes(area) else {
        let msg = format!(
            "terminal too small ({}x{}): need at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg), area);
        return;
    };
    f.render_widget(Paragraph::new(status_line(app, now)), p.status);
    let body = Rect {
        y: p.status.bottom(),
        height: area.height.saturating_sub(p.status.height),
        ..area
    };
    match app.screen {
        Screen::Monitor => monitor::view::draw(f, &app.monitor, &app.monitor_ctx(), images, &p),
        Screen::Upskill => {
            upskill::view::draw(f, &app.upskill, &app.theme, app.spinner_char(), body, now)
        }
        Screen::Calibration => calibration::draw(f, app.calibration.as_ref(), &app.theme, body),
        Screen::History => history::view::draw(f, &app.history, &app.theme, images, body),
    }
    if let Some(s) = &app.away {
        away::draw(f, s, &app.theme, &app.history.offset, area);
    }
    if let Some(ed) = &app.learn {
        learn_editor::view::draw(f, ed, &app.theme, area);
    }
    if let Some(p) = &app.watches_popup {
        crate::tui::popups::watches::view::draw(f, p, &app.theme, area);
    }
    if app.help {
        let screen = match app.screen {
            Screen::Monitor => crate::tui::keys::Context::Monitor,
            Screen::Upskill => crate::tui::keys::Context::Upskill,
            Screen::Calibration => crate::tui::keys::Context::Calibration,
            Screen::History => app.history.context(),
        };
        help::draw(f, &app.theme, area, screen);
    }
}
