//! The calibration view (`c`): how far the student's confidence can be trusted, from the
//! teacher verdicts the engine records in `logs/calibration.json`.

use crate::policy::calibration::{report, CalibrationStore, Report, Sample};
use crate::tui::action::Action;
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, truncate_width};
use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Bar, BarChart, BarGroup, Block, Paragraph, Wrap};
use ratatui::Frame;
use std::path::Path;

/// A trigger with at least this many escalations and none confirmed is a candidate to drop.
pub const DROP_AFTER: u64 = 5;

/// What the view shows: whose samples, and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct CalibrationData {
    /// `skill skill.txt`, or `all skills` when merged.
    pub scope: String,
    pub report: Report,
    pub threshold: f32,
}

/// The report for `skill` when the store has samples for it, else every skill merged.
pub fn from_store(store: &CalibrationStore, skill: &str, threshold: f32) -> CalibrationData {
    // Early reviews the full answers would not have made, over every skill (the cost
    // of `policy.early_escalation`).
    let mut early_unneeded = std::collections::BTreeMap::new();
    for s in store.skills.values() {
        for (kw, n) in &s.early_unneeded {
            *early_unneeded.entry(kw.clone()).or_insert(0) += n;
        }
    }
    let (scope, samples, answered): (String, Vec<Sample>, u64) =
        match store.skills.get(skill).filter(|s| !s.samples.is_empty()) {
            Some(s) => (format!("skill {skill}"), s.samples.clone(), s.answered),
            None => (
                "all skills".into(),
                store
                    .skills
                    .values()
                    .flat_map(|s| s.samples.iter().cloned())
                    .collect(),
                store.skills.values().map(|s| s.answered).sum(),
            ),
        };
    CalibrationData {
        scope,
        report: Report {
            early_unneeded,
            ..report(&samples, Some(answered), threshold)
        },
        threshold,
    }
}

/// Load the store (missing or unreadable = empty) and compute the report.
pub fn load(logs: &Path, skill: &str, threshold: f32) -> CalibrationData {
    from_store(&CalibrationStore::load(logs), skill, threshold)
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// The lines under the chart: totals, audits, the suggested threshold.
pub fn summary_lines(d: &CalibrationData, theme: &Theme) -> Vec<Line<'static>> {
    let r = &d.report;
    let bold = theme.bold();
    let mut first = format!(
        "reviewed {} · ECE {} · escalated {}",
        r.samples,
        r.ece.map_or("—".into(), |e| format!("{e:.3}")),
        r.escalation_rate
            .map_or("—".into(), |e| format!("{:.1}%", e * 100.0)),
    );
    match r.audit_agreement {
        Some((a, n)) => first.push_str(&format!(
            " · audits agreed {a}/{n} ({})",
            pct(a as f64 / n as f64)
        )),
        None => first.push_str(" · audits: none yet"),
    }
    let mut lines = vec![Line::styled(first, bold)];
    match r.suggested_threshold {
        Some((t, load)) => lines.push(Line::styled(
            format!(
                "suggested threshold {t:.2} (now {:.2}): same disagreements caught, {} escalated",
                d.threshold,
                pct(load)
            ),
            theme.accent(),
        )),
        None => lines.push(Line::styled(
            "suggested threshold: — (no reviewed answer reported a confidence)",
            theme.dim(),
        )),
    }
    lines
}

/// The per-trigger table as lines (header first).
pub fn trigger_lines(d: &CalibrationData, theme: &Theme, width: usize) -> Vec<Line<'static>> {
    let bold = theme.bold();
    let mut lines = vec![Line::styled(
        truncate_width(
            &format!(
                "{:<20} {:>11} {:>9} {:>9}",
                "trigger", "escalations", "confirmed", "precision"
            ),
            width,
        ),
        bold,
    )];
    for t in &d.report.triggers {
        let drop = t.escalations >= DROP_AFTER && t.confirmed == 0;
        let row = format!(
            "{:<20} {:>11} {:>9} {:>9}{}",
            truncate_width(&clean(&t.trigger, 60), 20),
            t.escalations,
            t.confirmed,
            t.precision().map_or("—".into(), pct),
            if drop { "  candidate to drop" } else { "" }
        );
        let style = if drop { theme.warn() } else { Style::default() };
        lines.push(Line::styled(truncate_width(&row, width), style));
    }
    if d.report.triggers.is_empty() {
        lines.push(Line::styled(
            "(no escalation triggers recorded)",
            theme.dim(),
        ));
    }
    if !d.report.early_unneeded.is_empty() {
        let counts = d
            .report
            .early_unneeded
            .iter()
            .map(|(kw, n)| format!("{} {n}", clean(kw, 40)))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(Line::styled(
            truncate_width(
                &format!("early reviews the full answer would not have made: {counts}"),
                width,
            ),
            theme.warn(),
        ));
    }
    lines
}

fn bar_label(i: usize, count: u64, width: u16) -> String {
    let lo = i as f32 / 10.0;
    if width >= 12 {
        format!("{lo:.1}-{:.1} n={count}", lo + 0.1)
    } else if width >= 8 {
        format!("{lo:.1} n={count}")
    } else {
        format!(".{i} n{count}")
    }
}

/// A key on the view: the actions to take, or None = back to the monitor.
pub fn handle_key(key: &KeyEvent) -> Option<Vec<Action>> {
    match keys::lookup(&[Context::Calibration], key) {
        Some(KeyAction::Back) => None,
        Some(KeyAction::Reload) => Some(vec![Action::OpenCalibration, Action::Redraw]),
        _ => Some(Vec::new()),
    }
}

/// The view in `area`; `data` is None while it loads.
pub fn draw(f: &mut Frame, data: Option<&CalibrationData>, t: &Theme, area: Rect) {
    let scope = data.map_or("…".to_string(), |d| clean(&d.scope, 200));
    let title = truncate_width(
        &format!(" calibration · {scope} · r reload · Esc back "),
        area.width.saturating_sub(2) as usize,
    );
    let pane = block(title);
    let inner = pane.inner(area);
    f.render_widget(pane, area);
    if inner.width == 0 || inner.height == 0 {
        return;
    }
    let Some(d) = data else {
        f.render_widget(Paragraph::new("loading…").style(t.dim()), inner);
        return;
    };
    if d.report.samples == 0 {
        f.render_widget(
            Paragraph::new(vec![
                Line::styled("no teacher verdicts yet", t.bold()),
                Line::styled(
                    "every teacher verdict labels a student answer; they collect in logs/calibration.json as frames are escalated (e escalates the current one)",
                    t.dim(),
                ),
            ])
            .wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let triggers = trigger_lines(d, t, inner.width as usize);
    let trig_h = (triggers.len() as u16).min(inner.height / 3).max(2);
    let [chart_area, summary_area, trig_area] = Layout::vertical([
        Constraint::Min(5),
        Constraint::Length(if inner.width >= 100 { 2 } else { 3 }),
        Constraint::Length(trig_h),
    ])
    .areas(inner);

    let bar_width = ((chart_area.width + 1) / 10).saturating_sub(1).clamp(3, 14);
    let bars: Vec<Bar> = d
        .report
        .bins
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let agree = b.agreement();
            // At least 1 so a 0% bin still shows its value.
            let value = agree.map_or(0, |a| ((a * 100.0).round() as u64).max(1));
            let style = agree.map_or(t.fail(), |a| t.level(a, 0.5, 0.8));
            Bar::default()
                .value(value)
                .text_value(agree.map_or("—".into(), pct))
                .label(Line::from(bar_label(i, b.count, bar_width)))
                .style(style)
        })
        .collect();
    let chart_block = Block::default().title(truncate_width(
        "teacher agrees, % per confidence bin (0.0-0.1 … 0.9-1.0; n = answers)",
        chart_area.width as usize,
    ));
    f.render_widget(
        BarChart::default()
            .block(chart_block)
            .data(BarGroup::default().bars(&bars))
            .bar_width(bar_width)
            .bar_gap(1)
            .max(100)
            .value_style(t.bar_value()),
        chart_area,
    );
    f.render_widget(
        Paragraph::new(summary_lines(d, t)).wrap(Wrap { trim: true }),
        summary_area,
    );
    f.render_widget(Paragraph::new(triggers), trig_area);
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::policy::Reason;

    fn s(c: f32, agrees: bool, reasons: Vec<Reason>) -> Sample {
        Sample {
            measured: None,
            confidence: Some(c),
            agrees,
            safety_relevant: false,
            reasons,
        }
    }

    /// A hand-made store: skill.txt with 12 verdicts, old.txt with 2.
    pub fn store() -> CalibrationStore {
        let mut st = CalibrationStore::default();
        let low = Reason::LowConfidence {
            confidence: 0.3,
            threshold: 0.55,
        };
        let smoke = Reason::Safety {
            keyword: "smoke".into(),
        };
        for c in [0.2, 0.3, 0.35] {
            st.add("skill.txt", s(c, false, vec![low.clone()]));
        }
        st.add("skill.txt", s(0.45, true, vec![low.clone()]));
        for _ in 0..5 {
            st.add("skill.txt", s(0.9, true, vec![smoke.clone()]));
        }
        st.add("skill.txt", s(0.85, true, vec![Reason::Audit]));
        st.add("skill.txt", s(0.95, false, vec![Reason::Audit]));
        st.add("skill.txt", s(0.65, true, vec![Reason::Forced]));
        for _ in 0..100 {
            st.count_answer("skill.txt");
        }
        st.add("old.txt", s(0.5, true, vec![Reason::Audit]));
        st.add("old.txt", s(0.5, true, vec![Reason::Audit]));
        st
    }

    #[test]
    fn picks_the_skill_or_merges_all() {
        let st = store();
        let d = from_store(&st, "skill.txt", 0.55);
        assert_eq!(d.scope, "skill skill.txt");
        assert_eq!(d.report.samples, 12);
        assert_eq!(d.report.escalation_rate, Some(0.12));
        let d = from_store(&st, "built-in", 0.55);
        assert_eq!(d.scope, "all skills");
        assert_eq!(d.report.samples, 14);
        // Missing file: empty, not an error.
        let dir = tempfile::tempdir().unwrap();
        let d = load(dir.path(), "skill.txt", 0.55);
        assert_eq!(d.report.samples, 0);
        // The engine's file is read.
        st.save(dir.path()).unwrap();
        assert_eq!(load(dir.path(), "skill.txt", 0.55).report.samples, 12);
    }

    #[test]
    fn never_confirmed_trigger_is_a_candidate_to_drop() {
        let d = from_store(&store(), "skill.txt", 0.55);
        let lines: Vec<String> = trigger_lines(&d, &Theme { color: true }, 200)
            .iter()
            .map(|l| l.to_string())
            .collect();
        let smoke = lines
            .iter()
            .find(|l| l.starts_with("safety:smoke"))
            .unwrap();
        assert!(smoke.contains("candidate to drop"), "{smoke}");
        let low = lines
            .iter()
            .find(|l| l.starts_with("low confidence"))
            .unwrap();
        assert!(!low.contains("drop"), "{low}");
        assert!(low.contains("75%"), "{low}");
    }
}

#[cfg(test)]
mod render_tests {
    use super::tests::store;
    use super::*;
    use crate::tui::action::Screen;
    use crate::tui::render_tests::{find, render, sample, text};
    use ratatui::style::Color;

    #[test]
    fn report_at_80x24_and_160x48() {
        let mut a = sample();
        a.screen = Screen::Calibration;
        a.calibration = Some(from_store(&store(), "skill.txt", 0.55));
        for (w, h) in [(80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let t = text(&buf);
            assert!(t.contains("calibration · skill skill.txt"), "{t}");
            assert!(t.contains("teacher agrees, % per confidence bin"), "{t}");
            assert!(t.contains("100%"), "{w}x{h}\n{t}");
            assert!(t.contains("reviewed 12 · ECE "), "{t}");
            assert!(t.contains("escalated 12.0%"), "{t}");
            assert!(t.contains("audits agreed 1/2 (50%)"), "{t}");
            assert!(t.contains("0%"), "{t}");
            assert!(
                t.contains("suggested threshold 0.36 (now 0.55)"),
                "{w}x{h}\n{t}"
            );
            assert!(t.contains("trigger"), "{t}");
            assert!(t.contains("candidate to drop"), "{w}x{h}\n{t}");
            // Bin 0.9 holds 5 agreeing + 1 disagreeing answer.
            assert!(t.contains("n=6") || t.contains("n6"), "{w}x{h}\n{t}");
            let (x, y) = find(&buf, "candidate to drop").unwrap();
            assert_eq!(buf[(x, y)].fg, Color::Yellow);
        }
    }

    #[test]
    fn empty_store_says_so() {
        let mut a = sample();
        a.screen = Screen::Calibration;
        a.calibration = Some(from_store(&CalibrationStore::default(), "skill.txt", 0.55));
        for (w, h) in [(80, 24), (160, 48), (60, 16)] {
            let t = text(&render(&a, w, h));
            assert!(t.contains("no teacher verdicts yet"), "{t}");
            assert!(t.contains("calibration · all skills"), "{t}");
        }
    }
}
