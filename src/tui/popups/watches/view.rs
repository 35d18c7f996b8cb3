//! Drawing the `w` popup: the watches with their states, or the form for one watch.

use super::state::{WatchForm, WatchesPopup, FORM_FIELDS};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, form_line, truncate_width};
use crate::watch::WatchState;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// One form line; the focused one shows its cursor and scrolls to keep it in view.
fn field_line(form: &WatchForm, i: usize, t: &Theme, width: usize) -> Line<'static> {
    let name = format!("{:>8}: ", FORM_FIELDS[i]);
    form_line(
        name,
        &form.fields[i],
        form.focus == i,
        form.cursor,
        t,
        width,
    )
}

fn list_lines(p: &WatchesPopup, t: &Theme, w: usize) -> Vec<Line<'static>> {
    if p.list.is_empty() {
        return vec![Line::styled(
            "no watches yet: n adds one (\"Is the garage door open?\")",
            t.dim(),
        )];
    }
    p.list
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let state = p
                .states
                .iter()
                .find(|s| s.id == spec.id)
                .map_or(WatchState::Unknown, |s| s.state);
            let (word, style) = match state {
                WatchState::Yes => ("YES", t.warn().patch(t.bold())),
                WatchState::No => ("no ", t.ok()),
                WatchState::Unknown => ("?  ", t.dim()),
            };
            let head = format!(
                "{} {:<16} ",
                if i == p.selected { "›" } else { " " },
                clean(&spec.id, 32)
            );
            let tail = format!(
                " {} · {} · level {} · debounce {}",
                clean(&spec.question, 300),
                spec.notify.as_str(),
                spec.level,
                spec.debounce
            );
            let room = w.saturating_sub(head.chars().count() + 4);
            let line = Line::from(vec![
                Span::raw(head),
                Span::styled(word, style),
                Span::raw(truncate_width(&tail, room)),
            ]);
            if i == p.selected {
                line.style(t.selected())
            } else {
                line
            }
        })
        .collect()
}

/// The popup, centered over `area`.
pub fn draw(f: &mut Frame, p: &WatchesPopup, t: &Theme, area: Rect) {
    let w = 90.min(area.width.saturating_sub(2));
    let h = 14.min(area.height.saturating_sub(2));
    if w < 20 || h < 5 {
        return;
    }
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let inner_w = w.saturating_sub(2) as usize;
    let (title, mut lines, hint) = match &p.form {
        Some(form) => (
            if form.editing.is_some() {
                " edit watch "
            } else {
                " new watch "
            },
            (0..FORM_FIELDS.len())
                .map(|i| field_line(form, i, t, inner_w))
                .chain([Line::styled(
                    truncate_width(
                        "notify: on_yes, on_change or never · level 1 or 2 · debounce: frames in a row",
                        inner_w,
                    ),
                    t.dim(),
                )])
                .collect::<Vec<_>>(),
            "Tab/↑↓ line · Enter checks and saves · Esc back",
        ),
        None => (
            " watches ",
            list_lines(p, t, inner_w),
            "↑↓ select · n add · Enter edit · d remove · Esc close",
        ),
    };
    let room = (h as usize).saturating_sub(2 + 3);
    if lines.len() > room {
        // Keep the selected row in view.
        let skip = (p.selected + 1)
            .saturating_sub(room)
            .min(lines.len() - room);
        lines = lines.split_off(skip);
        lines.truncate(room);
    }
    lines.push(Line::raw(""));
    match &p.error {
        Some(e) => lines.push(Line::styled(
            truncate_width(&format!("⚠ {}", clean(e, 400)), inner_w),
            t.warn().patch(t.bold()),
        )),
        None => lines.push(Line::styled(
            truncate_width(
                "saved to skills/watches.toml; used from the next frame",
                inner_w,
            ),
            t.dim(),
        )),
    }
    lines.push(Line::styled(truncate_width(hint, inner_w), t.dim()));
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block(title.into())), r);
}

#[cfg(test)]
mod tests {
    use crate::tui::popups::watches::WatchesPopup;
    use crate::tui::render_tests::{render, sample, text};
    use crate::watch::{WatchBoard, WatchSpec};

    #[test]
    fn the_popup_lists_the_watches_and_its_form_at_80x24() {
        let mut a = sample();
        let mut board = WatchBoard::new(&[
            WatchSpec::new("garage_door", "Is the garage door open?"),
            WatchSpec::new(
                "stove_on",
                "Is the stove on \u{1b}[31mwith nobody in the room?",
            ),
        ]);
        board.on_student(1, chrono::Utc::now(), &[crate::watch::WatchAnswer::Yes; 2]);
        board.on_student(2, chrono::Utc::now(), &[crate::watch::WatchAnswer::Yes; 2]);
        a.watches_popup = Some(WatchesPopup::open(&board.statuses()));
        let t = text(&render(&a, 80, 24));
        assert!(
            t.contains("garage_door      YES Is the garage door open?"),
            "{t}"
        );
        assert!(t.contains("stove_on"), "{t}");
        assert!(!t.contains('\u{1b}'));
        assert!(t.contains("n add · Enter edit · d remove"), "{t}");
        a.watches_popup.as_mut().unwrap().form =
            Some(super::WatchForm::of(None, &WatchSpec::new("", "")));
        a.watches_popup.as_mut().unwrap().error =
            Some("watch[3] (id \"x\"): question must not be empty".into());
        let t = text(&render(&a, 80, 24));
        assert!(t.contains(" new watch "), "{t}");
        assert!(t.contains("question:"), "{t}");
        assert!(t.contains("⚠ watch[3]"), "{t}");
        render(&a, 60, 16);
    }
}
