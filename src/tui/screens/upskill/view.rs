//! Drawing the upskill screen: the live score matrix (rows = skills, columns = eval cases),
//! totals and intervals, progress, the selected prompt, and the decision.

use super::state::{Cell, RunStatus, UpskillRow, UpskillState};
use crate::eval::runner::FormatShare;
use crate::tui::popups::confirm;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, truncate_width};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use std::time::{Duration, Instant};

/// Columns before the case cells: marker, label, train, holdout, format share, interval,
/// divider.
const LABEL_W: usize = 10;
const FORMAT_W: usize = 4;
const INTERVAL_W: usize = 19;
const HEAD_W: usize = 2 + LABEL_W + 1 + 5 + 1 + 5 + 1 + FORMAT_W + 1 + INTERVAL_W + 2;
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
    t.level(v, 0.5, 0.8)
}

fn total(v: Option<f64>) -> String {
    v.map_or("    —".into(), |x| format!("{x:>5.2}"))
}

/// The share of answers with a confidence line: ` 96%`, `  0%`, `   —` before any answer.
pub fn format_text(f: &FormatShare) -> String {
    match (f.ok * 100).checked_div(f.of) {
        Some(pct) => format!("{pct:>3}%"),
        None => format!("{:>FORMAT_W$}", "—"),
    }
}

/// Most answers without the line: every such live frame escalates.
fn format_style(t: &Theme, f: &FormatShare) -> Style {
    if f.of == 0 {
        t.dim()
    } else if f.mostly_failed() {
        t.fail().patch(t.bold())
    } else if f.ok < f.of {
        t.warn()
    } else {
        t.ok()
    }
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

fn header_line(st: &UpskillState, t: &Theme, width: usize) -> Line<'static> {
    let range = visible(st, width);
    let head = format!(
        "  {:<LABEL_W$} {:>5} {:>5} {:>FORMAT_W$} {:<INTERVAL_W$} │",
        "skill", "train", "hold", "fmt", "gain (90% interval)"
    );
    let mut spans = vec![Span::styled(head, t.bold())];
    for c in range.clone() {
        spans.push(Span::raw(divider(st, c, range.start)));
        spans.push(Span::styled(format!("{:>4} ", c + 1), t.bold()));
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
        t.ok().patch(t.bold())
    } else {
        Style::default()
    };
    let iv = interval_text(row);
    let iv_style = match row.interval {
        Some(x) if x.lo > 0.0 => t.ok(),
        Some(_) => t.warn(),
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
            row.train.map_or(t.dim(), |v| score_style(t, v)),
        ),
        Span::raw(" "),
        Span::styled(
            total(row.holdout),
            row.holdout.map_or(t.dim(), |v| score_style(t, v)),
        ),
        Span::raw(" "),
        Span::styled(format_text(&row.format), format_style(t, &row.format)),
        Span::raw(" "),
        Span::styled(format!("{iv:<INTERVAL_W$}"), iv_style),
        Span::raw(" │"),
    ];
    for c in range.clone() {
        spans.push(Span::raw(divider(st, c, range.start)));
        let cell = row.cells.get(c).unwrap_or(&Cell::Pending);
        let (text, style) = match cell {
            Cell::Pending => ("·".to_string(), t.dim()),
            Cell::Score(v) | Cell::Overconfident(v) => (format!("{v:.2}"), score_style(t, *v)),
            Cell::Error(_) => ("E".to_string(), t.fail().patch(t.bold())),
        };
        spans.push(Span::styled(format!("{text:>4}"), style));
        // `!`: wrong and sure of it (the calibration penalty was taken off).
        if matches!(cell, Cell::Overconfident(_)) {
            spans.push(Span::styled(OVERCONFIDENT_MARK, t.manual().patch(t.bold())));
        } else {
            spans.push(Span::raw(" "));
        }
    }
    let mut line = Line::from(spans);
    if st.selected == i {
        line = line.patch_style(t.selected());
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
    Line::styled(truncate_width(&s, width), t.dim())
}

fn progress_line(st: &UpskillState, t: &Theme, width: usize, now: Instant) -> Line<'static> {
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
        // At the pace so far, which includes the live frames that go first.
        tail.push_str(&format!(" · ~{} left (shared)", clock(left)));
    }
    Line::from(vec![
        Span::styled("█".repeat(filled), t.accent()),
        Span::styled("░".repeat(bar_w - filled), t.dim()),
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

/// The screen in `area`, its clocks read at `now`; `spinner` turns while a run goes.
pub fn draw(f: &mut Frame, st: &UpskillState, t: &Theme, spinner: char, area: Rect, now: Instant) {
    let title = format!(" upskill · {} ", status_title(st));
    let pane = block(truncate_width(
        &title,
        area.width.saturating_sub(2) as usize,
    ));
    let inner = pane.inner(area);
    f.render_widget(pane, area);
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
    for w in &st.warnings {
        extra.push(Line::styled(
            format!("warning: {}", clean(w, 300)),
            t.warn().patch(t.bold()),
        ));
    }
    if let Some(d) = &decision {
        let style = match st.status {
            RunStatus::Finished
                if st.winner().is_some() || matches!(st.applied, Some((_, Ok(_)))) =>
            {
                t.ok().patch(t.bold())
            }
            RunStatus::Finished | RunStatus::Cancelled => t.warn(),
            _ => t.fail().patch(t.bold()),
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
            t.dim(),
        ));
    }
    if let (Some(v), false) = (&st.finetune, st.running()) {
        extra.push(Line::styled(
            format!("fine-tune: {} (finetune status)", clean(v, 300)),
            t.dim(),
        ));
    }
    if let Some(row) = st.confirm {
        let label = st
            .rows
            .get(row)
            .map_or("?".into(), |r| short_label(&r.label));
        extra.push(confirm::line(
            t,
            &format!(
                "apply {label} as the skill (saves {})",
                st.skill_path.display()
            ),
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
    // The last runs, with skill and student model switches, while no run is going.
    let mut runs: Vec<Line<'static>> = Vec::new();
    if !st.past_runs.is_empty() && !st.running() {
        runs.push(Line::styled("past runs (newest last):", t.dim()));
        for run in &st.past_runs {
            runs.push(Line::styled(format!("  {}", clean(run, 200)), t.dim()));
        }
    }
    let prompt_h = if side.is_some() { 0 } else { 3 };
    let [phase_a, prog_a, matrix_a, extra_a, runs_a, prompt_a, keys_a] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Length(matrix_h),
        Constraint::Length(extra_h),
        Constraint::Length(runs.len() as u16),
        Constraint::Min(prompt_h),
        Constraint::Length(1),
    ])
    .areas(main);
    if !runs.is_empty() {
        f.render_widget(Paragraph::new(runs), runs_a);
    }

    let spin = if st.running() {
        format!("{spinner} ")
    } else {
        String::new()
    };
    let mut phase = vec![
        Span::raw(spin),
        Span::styled("phase: ", t.bold()),
        Span::raw(truncate_width(&clean(&st.phase, 300), w.saturating_sub(9))),
    ];
    if st.running() {
        // Monitoring does not stop for the run: say so, with the newest live answer.
        let live = match &st.live.newest {
            Some((seq, why)) => format!(
                "  · monitoring on: {} live answers, newest #{seq}: {why}",
                st.live.answers
            ),
            None => "  · monitoring on".to_string(),
        };
        let used: usize = phase.iter().map(|s| s.width()).sum();
        phase.push(Span::styled(
            truncate_width(&clean(&live, 300), w.saturating_sub(used)),
            t.dim(),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(phase)), phase_a);
    f.render_widget(Paragraph::new(progress_line(st, t, w, now)), prog_a);

    if st.rows.is_empty() {
        let msg = match &st.status {
            RunStatus::Refused(_) | RunStatus::Failed(_) => String::new(),
            _ => "waiting for the first scores…".into(),
        };
        f.render_widget(Paragraph::new(msg).style(t.dim()), matrix_a);
    } else {
        let mut lines = vec![header_line(st, t, w)];
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
        Paragraph::new(truncate_width(keys_hint(st), w)).style(t.dim()),
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
                clean(
                    &crate::roles::output_contract::display(&r.prompt),
                    PROMPT_MAX,
                )
            },
        ),
        (None, None) => (" prompt ".into(), String::new()),
    };
    let divider = crate::roles::output_contract::DIVIDER;
    let mut past_divider = false;
    let lines: Vec<Line> = body
        .lines()
        .map(|l| {
            past_divider |= l == divider;
            if past_divider {
                Line::styled(l.to_string(), t.dim())
            } else {
                Line::raw(l.to_string())
            }
        })
        .collect();
    let body = if lines.is_empty() {
        Paragraph::new("(no prompt yet)").style(t.dim())
    } else {
        Paragraph::new(lines)
    };
    f.render_widget(
        body.wrap(Wrap { trim: false }).block(block(truncate_width(
            &title,
            area.width.saturating_sub(2) as usize,
        ))),
        area,
    );
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
