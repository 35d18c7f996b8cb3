//! Where each pane goes for a terminal size. Pure geometry, shared by drawing and by
//! mouse hit-testing in the app.

use ratatui::layout::{Constraint, Layout, Rect};

/// Below this the console shows a one-line notice instead of panes.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
/// From this width on, the frame and teacher panes form a left column.
pub const WIDE: u16 = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Panes {
    pub status: Rect,
    pub frame: Rect,
    pub log: Rect,
    pub teacher: Rect,
}

impl Panes {
    /// The log's rows, inside its border.
    pub fn log_inner(&self) -> Rect {
        inner(self.log)
    }
}

/// The area inside a one-cell border.
pub fn inner(r: Rect) -> Rect {
    Rect {
        x: r.x.saturating_add(1),
        y: r.y.saturating_add(1),
        width: r.width.saturating_sub(2),
        height: r.height.saturating_sub(2),
    }
}

/// The panes for `area`, or None when it is smaller than `MIN_WIDTH`×`MIN_HEIGHT`.
pub fn panes(area: Rect) -> Option<Panes> {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        return None;
    }
    let [status, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    if area.width >= WIDE {
        let left_w = (area.width * 2 / 5).clamp(40, 80);
        let [left, log] =
            Layout::horizontal([Constraint::Length(left_w), Constraint::Min(0)]).areas(body);
        let [frame, teacher] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Min(0)]).areas(left);
        Some(Panes {
            status,
            frame,
            log,
            teacher,
        })
    } else {
        let top_h = (body.height * 2 / 5).clamp(8, 14);
        let [top, log] =
            Layout::vertical([Constraint::Length(top_h), Constraint::Min(0)]).areas(body);
        let frame_w = (area.width * 3 / 8).clamp(24, 40);
        let [frame, teacher] =
            Layout::horizontal([Constraint::Length(frame_w), Constraint::Min(0)]).areas(top);
        Some(Panes {
            status,
            frame,
            log,
            teacher,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_small_is_none() {
        assert!(panes(Rect::new(0, 0, 59, 40)).is_none());
        assert!(panes(Rect::new(0, 0, 200, 15)).is_none());
        assert!(panes(Rect::new(0, 0, 60, 16)).is_some());
    }

    #[test]
    fn panes_fit_and_do_not_overlap() {
        for (w, h) in [
            (60, 16),
            (80, 24),
            (119, 30),
            (120, 30),
            (160, 48),
            (300, 100),
        ] {
            let a = Rect::new(0, 0, w, h);
            let p = panes(a).unwrap();
            let all = [p.status, p.frame, p.log, p.teacher];
            for (i, r) in all.iter().enumerate() {
                assert!(a.contains(r.as_position()) && r.right() <= w && r.bottom() <= h);
                assert!(
                    r.height >= 1 && r.width >= 1,
                    "{w}x{h} pane {i} empty: {r:?}"
                );
                for s in &all[i + 1..] {
                    assert!(!r.intersects(*s), "{w}x{h}: {r:?} overlaps {s:?}");
                }
            }
            assert!(p.log_inner().height >= 3, "{w}x{h}");
        }
    }

    #[test]
    fn wide_puts_frame_left() {
        let p = panes(Rect::new(0, 0, 160, 48)).unwrap();
        assert_eq!(p.frame.x, 0);
        assert!(p.log.x >= p.frame.right());
        assert_eq!(p.log.height, 47);
        let p = panes(Rect::new(0, 0, 80, 24)).unwrap();
        assert!(p.log.y >= p.frame.bottom(), "stacked at 80 columns");
    }
}
