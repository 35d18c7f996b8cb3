//! Drawing the `a` editor: a small box over the monitor with three editable lines.

use super::state::{LearnEditor, FIELDS};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, form_line, truncate_width};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// One field line; the focused one shows its cursor and scrolls to keep it in view.
fn field_line(ed: &LearnEditor, i: usize, t: &Theme, width: usize) -> Line<'static> {
    let name = format!("{:>6}: ", FIELDS[i]);
    form_line(name, &ed.fields[i], ed.focus == i, ed.cursor, t, width)
}

/// The editor box, centered over `area`.
pub fn draw(f: &mut Frame, ed: &LearnEditor, t: &Theme, area: Rect) {
    let w = 76.min(area.width.saturating_sub(2));
    let h = 10.min(area.height.saturating_sub(2));
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
    let mut lines = vec![Line::from(vec![
        Span::styled("teacher: ", t.bold()),
        Span::styled(
            truncate_width(
                &clean(&ed.summary, 500).replace('\n', " "),
                inner_w.saturating_sub(9),
            ),
            t.dim(),
        ),
    ])];
    lines.push(Line::raw(""));
    for i in 0..FIELDS.len() {
        lines.push(field_line(ed, i, t, inner_w));
    }
    lines.push(Line::raw(""));
    match &ed.error {
        Some(e) => lines.push(Line::styled(
            truncate_width(&format!("⚠ {e}"), inner_w),
            t.warn().patch(t.bold()),
        )),
        None => lines.push(Line::styled(
            truncate_width("words separated by commas · safety: yes or no", inner_w),
            t.dim(),
        )),
    }
    lines.push(Line::styled(
        truncate_width(
            "Tab/↑↓ field · ←→ Home End · Enter saves · Esc cancels",
            inner_w,
        ),
        t.dim(),
    ));
    let title = truncate_width(&format!(" new eval case from #{} ", ed.seq), inner_w);
    f.render_widget(Clear, r);
    f.render_widget(Paragraph::new(lines).block(block(title)), r);
}

#[cfg(test)]
mod tests {
    use crate::tui::popups::learn_editor::state::tests::editor;
    use crate::tui::render_tests::{find, render, sample, text};
    use ratatui::style::Modifier;

    #[test]
    fn editor_box_at_80x24_and_160x48() {
        let mut a = sample();
        a.learn = Some(editor());
        for (w, h) in [(80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let t = text(&buf);
            assert!(t.contains("new eval case from #7"), "{t}");
            assert!(
                t.contains("teacher: Steam rises from a kettle on the stove."),
                "{t}"
            );
            assert!(t.contains("expect: kettle, steam, rises, stove"), "{t}");
            assert!(t.contains("forbid: smoke"), "{t}");
            assert!(t.contains("safety: yes"), "{t}");
            assert!(t.contains("Enter saves · Esc cancels"), "{t}");
            // The cursor sits after the expect text.
            let (x, y) = find(&buf, "expect: kettle, steam, rises, stove").unwrap();
            let cx = x + "expect: kettle, steam, rises, stove".chars().count() as u16;
            assert!(buf[(cx, y)].modifier.contains(Modifier::REVERSED));
        }
        let mut ed = editor();
        ed.error = Some("safety must be yes or no".into());
        ed.fields[0] = "x".repeat(300);
        a.learn = Some(ed);
        let t = text(&render(&a, 80, 24));
        assert!(t.contains("⚠ safety must be yes or no"), "{t}");
        assert!(t.contains("expect: xxxx"), "{t}");
        // Tiny terminals: no panic.
        render(&a, 60, 16);
    }
}
