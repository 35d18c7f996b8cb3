//! The "while you were away" summary a console opens with when this user's consoles were
//! gone more than 10 minutes: incidents by level with their titles, escalations by
//! trigger, disagreements, time each model was offline, skill changes. `h` opens the
//! history at that span; `Esc` closes it.

use crate::history::query::AwaySummary;
use crate::tui::keys::{self, Context, KeyAction};
use crate::tui::screens::history::view::{duration, one_line};
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, first_line, truncate_width};
use chrono::{DateTime, FixedOffset, Utc};
use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};
use ratatui::Frame;

/// Incident titles listed at most (the rest are counted).
const MAX_TITLES: usize = 8;

/// What a key on the summary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwayKey {
    /// Open the history at the span.
    History,
    Close,
    /// Not the summary's key: it stays.
    Other,
}

pub fn key(key: &KeyEvent) -> AwayKey {
    match keys::lookup(&[Context::Away], key) {
        Some(KeyAction::OpenHistory) => AwayKey::History,
        Some(KeyAction::Back) => AwayKey::Close,
        _ => AwayKey::Other,
    }
}

/// The summary's lines (each cut to `width`).
pub fn lines(
    s: &AwaySummary,
    theme: &Theme,
    offset: &FixedOffset,
    width: usize,
) -> Vec<Line<'static>> {
    let when = |t: DateTime<Utc>| {
        t.with_timezone(offset)
            .format("%a %-d %b %H:%M")
            .to_string()
    };
    let cut = |t: String| truncate_width(&t, width);
    let mut out = vec![Line::styled(
        cut(format!(
            "{} → {} ({})",
            when(s.from),
            when(s.until),
            duration((s.until - s.from).num_seconds())
        )),
        theme.dim(),
    )];
    out.push(Line::default());
    if s.incidents.is_empty() {
        out.push(Line::styled("no incidents", theme.ok()));
    } else {
        let mut by_level = [0usize; 3];
        for i in &s.incidents {
            by_level[(i.level as usize).min(2)] += 1;
        }
        out.push(Line::from(vec![
            Span::styled(format!("{} incidents", s.incidents.len()), theme.bold()),
            Span::raw(format!(
                ": {} urgent (level 2), {} worth a look (level 1)",
                by_level[2], by_level[1]
            )),
        ]));
        for i in s.incidents.iter().take(MAX_TITLES) {
            let style = if i.level >= 2 {
                theme.safety()
            } else {
                theme.warn()
            };
            out.push(Line::from(vec![
                Span::styled(format!("  ▲{} ", i.level), style),
                Span::raw(cut(format!(
                    "{} #{} {}{}",
                    i.opened_at.with_timezone(offset).format("%H:%M"),
                    i.id,
                    one_line(&i.title, 60),
                    if i.acked_at.is_some() || i.acked_by.is_some() {
                        " (acked)"
                    } else {
                        ""
                    }
                ))),
            ]));
        }
        if s.incidents.len() > MAX_TITLES {
            out.push(Line::styled(
                format!("  … and {} more", s.incidents.len() - MAX_TITLES),
                theme.dim(),
            ));
        }
    }
    let esc: u64 = s.escalations.iter().map(|(_, n)| n).sum();
    out.push(Line::raw(cut(format!(
        "{} answers · {esc} escalations{}",
        s.answers,
        if s.escalations.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                s.escalations
                    .iter()
                    .map(|(t, n)| format!("{} {n}", one_line(t, 20)))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ))));
    out.push(Line::styled(
        format!("teacher disagreed {} times", s.disagreements),
        if s.disagreements > 0 {
            theme.warn()
        } else {
            theme.dim()
        },
    ));
    if s.offline_secs.iter().all(|(_, secs)| *secs <= 0) {
        out.push(Line::styled("both models stayed online", theme.ok()));
    } else {
        for (role, secs) in s.offline_secs.iter().filter(|(_, s)| *s > 0) {
            out.push(Line::styled(
                cut(format!(
                    "{} offline {}",
                    one_line(role, 20),
                    duration(*secs)
                )),
                theme.fail(),
            ));
        }
    }
    if s.skill_changes.is_empty() {
        out.push(Line::styled("skill unchanged", theme.dim()));
    } else {
        for n in s.skill_changes.iter().take(4) {
            out.push(Line::raw(cut(format!(
                "skill {}: {}",
                n.at.with_timezone(offset).format("%H:%M"),
                first_line(&n.text)
            ))));
        }
    }
    out
}

/// The popup, centered over `area`.
pub fn draw(f: &mut Frame, s: &AwaySummary, theme: &Theme, offset: &FixedOffset, area: Rect) {
    let w = 76.min(area.width.saturating_sub(2));
    let mut body = lines(s, theme, offset, w.saturating_sub(2) as usize);
    body.push(Line::default());
    body.push(Line::styled(
        "h history of this span · Esc close",
        theme.accent(),
    ));
    let h = (body.len() as u16 + 2).min(area.height.saturating_sub(2));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height.saturating_sub(h)) / 2,
        width: w,
        height: h,
    };
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(body).block(block(" while you were away ".into())),
        r,
    );
}
