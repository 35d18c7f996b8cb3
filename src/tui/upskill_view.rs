//! Drawing the upskill screen: the live score matrix (rows = skills, columns = eval cases),
//! totals and intervals, progress, the selected prompt, and the decision.

use super::app::{App, Theme};
use super::ui::{clean, truncate_width};
use super::upskill::{Cell, RunStatus, UpskillRow, UpskillState};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;
use std::time::{Duration, Instant};

/// Columns before the case cells: marker, label, train, holdout, interval, divider.
const LABEL_W: usize = 10;
const INTERVAL_W: usize = 19;
const HEAD_W: usize = 2 + LABEL_W + 1 + 5 + 1 + 5 + 1 + INTERVAL_W + 2;
/// One case cell: `0.85` and a space.
const CELL_W: usize = 5;
/// From this width on, the prompt sits beside the matrix.
const SIDE_PANE_FROM: u16 = 120;
/// Most characters of a prompt shown.
const PROMPT_MAX: usize = 8000;
/// After a cell: the answer failed the case while stating a high confidence.
const OVERCONFIDENT_MARK: &str = "!";

/// Cases of a row where the answer failed while stating a high confidence.
pub fn overconfident_cases(row: &UpskillRow) -> usize {
    row.cells
        .iter()
        .filter(|c| matches!(c, Cell::Overconfident(_)))
        .count()
}

fn fg(t: &Theme, c: Color) -> Style {
    if t.color {
        Style::default().fg(c)
    } else {
        Style::default()
    }
}

fn dim(t: &Theme) -> Style {
    fg(t, Color::DarkGray)
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// `1:05`, `12:00`.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

/// `current skill` → `current`, `candidate 3` → `cand 3`.
fn short_label(label: &str) -> String {
    if let Some(n) = label.strip_prefix("candidate ") {
        format!("cand {n}")
    } else if label == "current skill" {
        "current".into()
    } else {
        clean(label, 40)
    }
}

fn score_style(t: &Theme, v: f64) -> Style {
    fg(
        t,
        if v >= 0.8 {
            Color::Green
        } else if v >= 0.5 {
            Color::Yellow
        } else {
            Color::Red
        },
    )
}

fn total(v: Option<f64>) -> String {
    v.map_or("    —".into(), |x| format!("{x:>5.2}"))
}

/// `+0.12 [+0.03,+0.20]`.
pub fn interval_text(row: &UpskillRow) -> String {
    row.interval.map_or(String::new(), |iv| {
        format!("{:+.2} [{:+.2},{:+.2}]", iv.mean, iv.lo, iv.hi)
    })
}

/// How many case columns fit in `width` after the row head.
pub fn cells_that_fit(width: usize) -> usize {
    width.saturating_sub(HEAD_W + 2) / CELL_W
}

/// The visible case columns: `offset..end`, keeping as many as fit.
fn visible(st: &UpskillState, width: usize) -> std::ops::Range<usize> {
    let n = st.columns.len();
    let fit = cells_that_fit(width).max(1);
    let start = st.col_offset.min(n.saturating_sub(fit));
    start..(start + fit).min(n)
}

fn divider(st: &UpskillState, col: usize, start: usize) -> &'static str {
    if col == st.first_holdout() && col > start {
        "│"
    } else {
        ""
    }
}

fn header_line(st: &UpskillState, width: usize) -> Line<'static> {
    let range = visible(st, width);
    let head = format!(
        "  {:<LABEL_W$} {:>5} {:>5} {:<INTERVAL_W$} │",
        "skill", "train", "hold", "gain (90% interval)"
    );
    let mut spans = vec![Span::styled(head, bold())];
    for c in range.clone() {
        spans.push(Span::raw(divider(st, c, range.start)));
        spans.push(Span::styled(format!("{:>4} ", c + 1), bold()));
    }
    Line::from(spans)
}

fn row_line(st: &UpskillState, i: usize, t: &Theme, width: usize) -> Line<'static> {
    let row = &st.rows[i];
    let range = visible(st, width);
    let winner = st.winner() == Some(i);
    let mark = if st.selected == i { "▶ " } else { "  " };
    let mut label = short_label(&row.label);
    if winner {
        label.push_str(" ★");
    }
    let label_style = if winner {
        fg(t, Color::Green).add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    let iv = interval_text(row);
    let iv_style = match row.interval {
        Some(x) if x.lo > 0.0 => fg(t, Color::Green),
        Some(_) => fg(t, Color::Yellow),
        None => Style::default(),
    };
    let mut spans = vec![
        Span::raw(mark),
        Span::styled(
            format!("{:<LABEL_W$}", truncate_width(&label, LABEL_W)),
            label_style,
        ),
        Span::raw(" "),
        Span::styled(
            total(row.train),
            row.train.map_or(dim(t), |v| score_style(t, v)),
        ),
        Span::raw(" "),
        Span::styled(
            total(row.holdout),
            row.holdout.map_or(dim(t), |v| score_style(t, v)),
        ),
        Span::raw(" "),
        Span::styled(format!("{iv:<INTERVAL_W$}"), iv_style),
        Span::raw(" │"),
    ];
    for c in range.clone() {
        spans.push(Span::raw(divider(st, c, range.start)));
        let cell = row.cells.get(c).unwrap_or(&Cell::Pending);
        let (text, style) = match cell {
            Cell::Pending => ("·".to_string(), dim(t)),
            Cell::Score(v) | Cell::Overconfident(v) => (format!("{v:.2}"), score_style(t, *v)),
            Cell::Error(_) => (
                "E".to_string(),
                fg(t, Color::Red).add_modifier(Modifier::BOLD),
            ),
        };
        spans.push(Span::styled(format!("{text:>4}"), style));
        // `!`: wrong and sure of it (the calibration penalty was taken off).
        if matches!(cell, Cell::Overconfident(_)) {
            spans.push(Span::styled(
                OVERCONFIDENT_MARK,
                fg(t, Color::Magenta).add_modifier(Modifier::BOLD),
            ));
        } else {
            spans.push(Span::raw(" "));
        }
    }
    let mut line = Line::from(spans);
    if st.selected == i {
        line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
    }
    line
}

/// `cases 1-6 of 25 (←/→) · 1 lighter-flame · 2 coffee-cup …`.
fn legend_line(st: &UpskillState, t: &Theme, width: usize) -> Line<'static> {
    let range = visible(st, width);
    let n = st.columns.len();
    let (train, _) = (st.first_holdout(), ());
    let mut s = format!(
        "cases {}-{} of {n}{} · train 1-{train}{} ·",
        range.start + 1,
        range.end,
        if range.len() < n { " (←/→)" } else { "" },
        if train < n {
            format!(", holdout {}-{n}", train + 1)
        } else {
            String::new()
        }
    );
    if st.rows.iter().any(|r| overconfident_cases(r) > 0) {
        s.push_str(&format!(
            " {OVERCONFIDENT_MARK} wrong but stated confidence > {:.1} (score lowered) ·",
            crate::eval::score::CONFIDENT_ABOVE
        ));
    }
    for c in range {
        s.push_str(&format!(" {} {}", c + 1, clean(&st.columns[c].0, 60)));
    }
    Line::styled(truncate_width(&s, width), dim(t))
}

fn progress_line(st: &UpskillState, app: &App, width: usize, now: Instant) -> Line<'static> {
    let t = &app.theme;
    let bar_w = (width / 4).clamp(10, 30);
    let filled = (st.done_calls * bar_w)
        .checked_div(st.total_calls)
        .map_or(0, |f| f.min(bar_w));
    let mut tail = format!(
        " {}/{} calls · {} elapsed",
        st.done_calls,
        st.total_calls,
        clock(st.elapsed(now))
    );
    if let Some(left) = st.estimate_left(now) {
        tail.push_str(&format!(" · ~{} left", clock(left)));
    }
    Line::from(vec![
        Span::styled("█".repeat(filled), fg(t, Color::Cyan)),
        Span::styled("░".repeat(bar_w - filled), dim(t)),
        Span::raw(tail),
    ])
}

fn status_title(st: &UpskillState) -> &'static str {
    match st.status {
        RunStatus::Idle => "starting",
        RunStatus::Running => "running",
        RunStatus::Cancelling => "cancelling",
        RunStatus::Finished => "finished",
        RunStatus::Cancelled => "cancelled",
        RunStatus::Failed(_) => "failed",
        RunStatus::Refused(_) => "not started",
    }
}

fn keys_hint(st: &UpskillState) -> &'static str {
    if st.confirm.is_some() {
        "y apply · n cancel"
    } else if st.running() {
        "↑↓ row · ←→ cases · Esc cancel the run · q quit"
    } else {
        "↑↓ row · ←→ cases · Enter apply row · r run again · o last report · Esc back · q quit"
    }
}

pub fn draw(f: &mut Frame, app: &App, area: Rect) {
    draw_at(f, app, area, Instant::now());
}

pub fn draw_at(f: &mut Frame, app: &App, area: Rect, now: Instant) {
    let st = &app.upskill;
    let t = &app.theme;
    let title = format!(" upskill · {} ", status_title(st));
    let block = Block::default().borders(Borders::ALL).title(truncate_width(
        &title,
        area.width.saturating_sub(2) as usize,
    ));
    let inner = block.inner(area);
    f.render_widget(block, area);
    if inner.width < 4 || inner.height < 4 {
        return;
    }
    let (main, side) = if area.width >= SIDE_PANE_FROM {
        let side_w = (inner.width * 2 / 5).clamp(30, 70);
        let [m, s] =
            Layout::horizontal([Constraint::Min(0), Constraint::Length(side_w)]).areas(inner);
        (m, Some(s))
    } else {
        (inner, None)
    };
    let w = main.width as usize;
    let matrix_h = if st.rows.is_empty() {
        1
    } else {
        st.rows.len() as u16 + 2
    };
    let decision = st.decision_text();
    let mut extra: Vec<Line<'static>> = Vec::new();
    if let Some(d) = &decision {
        let style = match st.status {
            RunStatus::Finished
                if st.winner().is_some() || matches!(st.applied, Some((_, Ok(_)))) =>
            {
                fg(t, Color::Green).add_modifier(Modifier::BOLD)
            }
            RunStatus::Finished | RunStatus::Cancelled => fg(t, Color::Yellow),
            _ => fg(t, Color::Red).add_modifier(Modifier::BOLD),
        };
        extra.push(Line::styled(clean(d, 2000), style));
    }
    if !st.dropped.is_empty() {
        let why: Vec<String> = st.dropped.iter().map(|(_, w)| clean(w, 80)).collect();
        extra.push(Line::styled(
            format!(
                "dropped {} candidate(s): {}",
                st.dropped.len(),
                why.join("; ")
            ),
            dim(t),
        ));
    }
    if let Some(row) = st.confirm {
        let label = st
            .rows
            .get(row)
            .map_or("?".into(), |r| short_label(&r.label));
        extra.push(Line::styled(
            format!(
                "apply {label} as the skill (saves {})? y/n",
                st.skill_path.display()
            ),
            fg(t, Color::Yellow).add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
    }
    let extra_h = if extra.is_empty() {
        0
    } else {
        // Wrapped height, bounded so the matrix keeps its room.
        let need: usize = extra
            .iter()
            .map(|l| l.width().div_ceil(w.max(1)).max(1))
            .sum();
        need.min(4) as u16
    };
    let prompt_h = if side.is_some() { 0 } else { 3 };
    let [phase_a, prog_a, matrix_a, extra_a, prompt_a, keys_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(matrix_h),
        Constraint::Length(extra_h),
        Constraint::Min(prompt_h),
        Constraint::Length(1),
    ])
    .areas(main);

    let spin = if st.running() {
        format!("{} ", app.spinner_char())
    } else {
        String::new()
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw(spin),
            Span::styled("phase: ", bold()),
            Span::raw(truncate_width(&clean(&st.phase, 300), w.saturating_sub(9))),
        ])),
        phase_a,
    );
    f.render_widget(Paragraph::new(progress_line(st, app, w, now)), prog_a);

    if st.rows.is_empty() {
        let msg = match &st.status {
            RunStatus::Refused(_) | RunStatus::Failed(_) => String::new(),
            _ => "waiting for the first scores…".into(),
        };
        f.render_widget(Paragraph::new(msg).style(dim(t)), matrix_a);
    } else {
        let mut lines = vec![header_line(st, w)];
        for i in 0..st.rows.len() {
            lines.push(row_line(st, i, t, w));
        }
        lines.push(legend_line(st, t, w));
        f.render_widget(Paragraph::new(lines), matrix_a);
    }
    if extra_h > 0 {
        f.render_widget(Paragraph::new(extra).wrap(Wrap { trim: true }), extra_a);
    }
    let prompt_area = side.unwrap_or(prompt_a);
    draw_prompt(f, st, t, prompt_area);
    f.render_widget(
        Paragraph::new(truncate_width(keys_hint(st), w)).style(dim(t)),
        keys_a,
    );
}

fn draw_prompt(f: &mut Frame, st: &UpskillState, t: &Theme, area: Rect) {
    if area.height < 2 || area.width < 4 {
        return;
    }
    let (title, body) = match (&st.report_text, st.rows.get(st.selected)) {
        (Some(text), _) => (
            " last run report (any key closes) ".to_string(),
            clean(text, PROMPT_MAX),
        ),
        (None, Some(r)) => (
            match overconfident_cases(r) {
                0 => format!(" prompt · {} ", short_label(&r.label)),
                n => format!(
                    " prompt · {} · overconfident on {n} case{} ",
                    short_label(&r.label),
                    if n == 1 { "" } else { "s" }
                ),
            },
            // The instructions, then the fixed output contract every row is scored with.
            if r.prompt.is_empty() {
                String::new()
            } else {
                clean(&crate::output_contract::display(&r.prompt), PROMPT_MAX)
            },
        ),
        (None, None) => (" prompt ".into(), String::new()),
    };
    let divider = crate::output_contract::DIVIDER;
    let mut past_divider = false;
    let lines: Vec<Line> = body
        .lines()
        .map(|l| {
            past_divider |= l == divider;
            if past_divider {
                Line::styled(l.to_string(), dim(t))
            } else {
                Line::raw(l.to_string())
            }
        })
        .collect();
    let body = if lines.is_empty() {
        Paragraph::new("(no prompt yet)").style(dim(t))
    } else {
        Paragraph::new(lines)
    };
    f.render_widget(
        body.wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(truncate_width(
                &title,
                area.width.saturating_sub(2) as usize,
            ))),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::cases::Split;
    use crate::tui::app::tests::key;
    use crate::tui::app::Screen;
    use crate::tui::ui::tests::{find, render, rows, sample, text};
    use crate::tui::upskill::tests::{finished, mid_run};
    use crossterm::event::KeyCode;

    fn on_screen(st: UpskillState) -> App {
        let mut a = sample();
        a.screen = Screen::Upskill;
        a.upskill = st;
        a
    }

    #[test]
    fn overconfident_cases_are_marked_and_counted() {
        use crate::tui::upskill::tests::result;
        use crate::upskill::pipeline::UpskillEvent;
        let mut st = mid_run();
        // Candidate 2 fails case 2 while saying it is sure.
        let mut r = result("coffee-cup", Split::Train, 0.0, None);
        r.score.safety_ok = false;
        r.score.calibration_penalty = 0.29;
        st.handle_event(
            UpskillEvent::CaseScored {
                row: 2,
                column: 1,
                result: r,
                done_calls: 12,
                total_calls: 25,
            },
            Instant::now(),
        );
        st.selected = 2;
        let a = on_screen(st);
        for (w, h) in [(80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let t = text(&buf);
            assert!(
                t.contains(
                    "▶ cand 2         —     —                     │0.40 0.00!   · │   ·    ·"
                ),
                "{w}x{h}\n{t}"
            );
            let (x, y) = find(&buf, "0.00!").unwrap();
            assert_eq!(buf[(x + 4, y)].fg, Color::Magenta);
            assert!(
                t.contains("! wrong but stated confidence > 0.5"),
                "{w}x{h}\n{t}"
            );
            assert!(
                t.contains("prompt · cand 2 · overconfident on 1 case"),
                "{w}x{h}\n{t}"
            );
        }
    }

    #[test]
    fn mid_run_matrix_at_80x24_and_160x48() {
        let a = on_screen(mid_run());
        for (w, h) in [(80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let t = text(&buf);
            assert!(t.contains("upskill · running"), "{t}");
            assert!(t.contains("phase: scoring candidate 2 of 2"), "{t}");
            assert!(t.contains("11/15 calls · 0:00 elapsed"), "{t}");
            assert!(
                t.contains("skill      train  hold gain (90% interval) │   1    2    3 │   4    5"),
                "{w}x{h}\n{t}"
            );
            assert!(
                t.contains(
                    "▶ current     0.58  0.63                     │0.50 0.25 1.00 │0.50 0.75"
                ),
                "{w}x{h}\n{t}"
            );
            assert!(
                t.contains(
                    "  cand 1      0.70  0.90 +0.12 [+0.03,+0.20] │0.90 0.90    E │0.90 0.90"
                ),
                "{w}x{h}\n{t}"
            );
            assert!(
                t.contains(
                    "  cand 2         —     —                     │0.40    ·    · │   ·    ·"
                ),
                "{w}x{h}\n{t}"
            );
            assert!(
                t.contains(
                    "cases 1-5 of 5 · train 1-3, holdout 4-5 · 1 lighter-flame 2 coffee-cup"
                ),
                "{w}x{h}\n{t}"
            );
            assert!(t.contains("prompt · current"), "{t}");
            assert!(t.contains("Describe the scene."), "{t}");
            assert!(t.contains("Esc cancel the run"), "{t}");
            let (x, y) = find(&buf, "0.25").unwrap();
            assert_eq!(buf[(x, y)].fg, Color::Red);
            let (x, y) = find(&buf, "1.00").unwrap();
            assert_eq!(buf[(x, y)].fg, Color::Green);
            let (x, y) = find(&buf, "   E").unwrap();
            assert_eq!(buf[(x + 3, y)].fg, Color::Red);
            let (x, y) = find(&buf, "▶ current").unwrap();
            assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
            // The frame stays whole: right border on every body row.
            for y in 2..h - 1 {
                assert_eq!(buf[(w - 1, y)].symbol(), "│", "{w}x{h} y={y}\n{t}");
            }
        }
        // Wide: the prompt pane sits beside the matrix.
        let buf = render(&a, 160, 48);
        let (px, py) = find(&buf, "prompt · current").unwrap();
        let (mx, my) = find(&buf, "▶ current").unwrap();
        assert!(
            px > mx + 60 && py < my,
            "prompt at {px},{py}; matrix at {mx},{my}"
        );
        // Narrow: below it.
        let buf = render(&a, 80, 24);
        let (_, py) = find(&buf, "prompt · current").unwrap();
        let (_, my) = find(&buf, "▶ current").unwrap();
        assert!(py > my);
    }

    #[test]
    fn finished_run_shows_the_decision_and_winner() {
        let mut a = on_screen(finished());
        for (w, h) in [(80, 24), (160, 48)] {
            let t = text(&render(&a, w, h));
            assert!(t.contains("upskill · finished"), "{t}");
            assert!(t.contains("▶ cand 1 ★"), "{t}");
            assert!(
                t.contains("applied candidate 1: saved skills/skill.txt; used from the next"),
                "{w}x{h}\n{t}"
            );
            assert!(t.contains("prompt · cand 1"), "{t}");
            assert!(t.contains("Candidate prompt 1: name every object"), "{t}");
            assert!(t.contains("Enter apply row"), "{t}");
        }
        a.handle_key(key(KeyCode::Down));
        a.handle_key(key(KeyCode::Enter));
        let t = text(&render(&a, 80, 24));
        assert!(
            t.contains("apply cand 2 as the skill (saves skills/skill.txt)? y/n"),
            "{t}"
        );
        assert!(t.contains("y apply · n cancel"), "{t}");
    }

    #[test]
    fn many_cases_scroll_and_refusal_shows() {
        let mut st = mid_run();
        st.columns = (0..25)
            .map(|i| {
                (
                    format!("case-{i}"),
                    if i < 18 { Split::Train } else { Split::Holdout },
                )
            })
            .collect();
        let a = on_screen(st.clone());
        let t = text(&render(&a, 80, 24));
        assert!(t.contains("cases 1-6 of 25 (←/→)"), "{t}");
        let t = text(&render(&a, 160, 48));
        assert!(t.contains("cases 1-"), "{t}");
        st.col_offset = 20;
        let t = text(&render(&on_screen(st.clone()), 80, 24));
        assert!(t.contains("cases 20-25 of 25"), "{t}");
        assert!(t.contains("  20   21   22   23   24   25"), "{t}");
        let mut st = UpskillState::new("skills/skill.txt".into());
        st.refuse("the skills dir /ro is not writable (Permission denied)");
        let t = text(&render(&on_screen(st), 80, 24));
        assert!(t.contains("upskill · not started"), "{t}");
        assert!(
            t.contains("not started: the skills dir /ro is not writable"),
            "{t}"
        );
        // Every size keeps the first row readable and nothing panics.
        for (w, h) in [(60, 16), (61, 17), (100, 30), (300, 100)] {
            let r = rows(&render(&a, w, h));
            assert!(r.len() == h as usize);
        }
    }

    #[test]
    fn prompt_text_is_sanitized() {
        let mut st = mid_run();
        st.rows[0].prompt = "Be brief.\x1b]0;pwned\x07 \x1b[2J\u{9b}1m".into();
        let t = text(&render(&on_screen(st), 80, 24));
        assert!(t.contains("Be brief."), "{t}");
        for bad in ['\x1b', '\x07', '\u{9b}'] {
            assert!(!t.contains(bad));
        }
    }
}
