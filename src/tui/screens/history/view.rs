//! Drawing the history screen: the list grouped by day (newest first), or an opened item
//! (its frame as a thumbnail beside the student's answer, the reasons and the verdict,
//! with a strip to step through the incident's frames). Everything from the store is
//! cleaned and cut to its pane: model text never breaks the layout.

use super::state::{HistoryScreen, ItemView};
use crate::event::IncidentEvent;
use crate::history::query::{FrameRow, Item, NoteRow, OfflineRow};
use crate::tui::images::ImageState;
use crate::tui::layout;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, first_line, truncate_width, SHORT_MAX, TEXT_MAX};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// The list's rows: a day's header, or an item (its index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Day(NaiveDate),
    Item(usize),
}

/// The list's rows, a header before each day's first item (days at `offset`).
pub fn rows(items: &[Item], offset: &FixedOffset) -> Vec<Row> {
    let mut out = Vec::with_capacity(items.len() + 8);
    let mut day = None;
    for (i, it) in items.iter().enumerate() {
        let d = it.at().with_timezone(offset).date_naive();
        if day != Some(d) {
            out.push(Row::Day(d));
            day = Some(d);
        }
        out.push(Row::Item(i));
    }
    out
}

/// Untrusted text as one line of at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    clean(s, max)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn clock(t: DateTime<Utc>, offset: &FixedOffset) -> String {
    t.with_timezone(offset).format("%H:%M:%S").to_string()
}

/// `3m`, `2h05m`, `45s`.
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn level_style(theme: &Theme, level: u8) -> Style {
    match level {
        0 => theme.dim(),
        1 => theme.warn(),
        _ => theme.safety(),
    }
}

fn incident_spans(i: &IncidentEvent, theme: &Theme) -> Vec<Span<'static>> {
    let mut v = vec![
        Span::styled(format!("▲{} ", i.level), level_style(theme, i.level)),
        Span::styled(format!("INCIDENT #{} ", i.id), theme.bold()),
        Span::raw(format!("{} ", one_line(&i.title, 60))),
    ];
    let span = (i.closed_at.unwrap_or(i.last_at) - i.opened_at).num_seconds();
    let state = if i.closed_at.is_some() {
        format!("· {} frames · {} ", i.frames, duration(span))
    } else {
        format!("· {} frames · open ", i.frames)
    };
    v.push(Span::styled(state, theme.dim()));
    match &i.acked_by {
        Some(by) => v.push(Span::styled(
            format!("· acked by {}", one_line(by, 40)),
            theme.ok(),
        )),
        None if i.acked_at.is_some() => v.push(Span::styled("· acked", theme.ok())),
        None => v.push(Span::styled("· not acknowledged", theme.warn())),
    }
    v
}

fn frame_spans(f: &FrameRow, theme: &Theme) -> Vec<Span<'static>> {
    let mut v = vec![Span::styled(format!("#{} ", f.seq), theme.dim())];
    v.push(Span::raw(match f.confidence {
        Some(c) => format!("{c:.2} "),
        None => "—    ".into(),
    }));
    for t in &f.triggers {
        let style = if t.starts_with("safety") {
            theme.safety()
        } else if t == "forced" {
            theme.manual()
        } else {
            theme.accent()
        };
        v.push(Span::styled(format!("[{}] ", one_line(t, 20)), style));
    }
    match f.agrees {
        Some(true) => v.push(Span::styled("✓ ", theme.ok())),
        Some(false) => v.push(Span::styled("✗ ", theme.fail())),
        None => {}
    }
    if let Some(l) = f.level.filter(|l| *l > 0) {
        v.push(Span::styled(format!("▲{l} "), level_style(theme, l)));
    }
    if let Some(e) = f.failed.as_deref().or(f.teacher_error.as_deref()) {
        v.push(Span::styled(
            format!("failed: {} ", first_line(e)),
            theme.fail(),
        ));
    }
    let text = f
        .title
        .as_deref()
        .filter(|t| !t.is_empty())
        .or(f.answer.as_deref())
        .map(first_line)
        .unwrap_or_default();
    v.push(Span::raw(text));
    v
}

fn note_spans(n: &NoteRow, theme: &Theme) -> Vec<Span<'static>> {
    vec![
        Span::styled(format!("{}: ", one_line(&n.kind, 20)), theme.accent()),
        Span::raw(first_line(&n.text)),
    ]
}

fn offline_spans(o: &OfflineRow, theme: &Theme) -> Vec<Span<'static>> {
    let how_long = match o.until {
        Some(u) => duration((u - o.from).num_seconds()),
        None => "still".into(),
    };
    vec![
        Span::styled(
            format!("{} offline {how_long}: ", one_line(&o.role, 20)),
            theme.fail(),
        ),
        Span::raw(first_line(&o.reason)),
    ]
}

/// One item as a list line, at most `width` columns.
pub fn item_line(it: &Item, theme: &Theme, offset: &FixedOffset, width: usize) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{} ", clock(it.at(), offset)),
        theme.dim(),
    )];
    spans.extend(match it {
        Item::Incident(i) => incident_spans(i, theme),
        Item::Frame(f) => frame_spans(f, theme),
        Item::Note(n) => note_spans(n, theme),
        Item::Offline(o) => offline_spans(o, theme),
    });
    fit(spans, width)
}

/// Cut spans to `width` columns (the last one ends in `…`).
fn fit(spans: Vec<Span<'static>>, width: usize) -> Line<'static> {
    let mut out = Vec::new();
    let mut used = 0;
    for s in spans {
        let w = s.width();
        if used + w <= width {
            used += w;
            out.push(s);
        } else {
            let rest = width.saturating_sub(used);
            if rest > 0 {
                out.push(Span::styled(truncate_width(&s.content, rest), s.style));
            }
            break;
        }
    }
    Line::from(out)
}

pub fn draw(f: &mut Frame, h: &HistoryScreen, theme: &Theme, images: &mut ImageState, area: Rect) {
    match &h.item {
        Some(v) => draw_item(f, h, v, theme, images, area),
        None => {
            images.render(None, area, f.buffer_mut());
            draw_list(f, h, theme, area)
        }
    }
}

fn draw_list(f: &mut Frame, h: &HistoryScreen, theme: &Theme, area: Rect) {
    let filters = h.filter_label();
    let title = format!(
        " history · {} loaded{}{} ",
        h.items.len(),
        if h.next.is_some() { "+" } else { "" },
        if filters.is_empty() {
            String::new()
        } else {
            format!(" · {filters}")
        }
    );
    f.render_widget(
        block(truncate_width(
            &title,
            area.width.saturating_sub(2) as usize,
        )),
        area,
    );
    let inner = layout::inner(area);
    if inner.height < 2 {
        return;
    }
    let [list, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    let width = list.width as usize;
    let mut lines: Vec<Line> = Vec::new();
    if h.items.is_empty() {
        let msg = if h.loading {
            "loading…".to_string()
        } else if let Some(e) = &h.error {
            e.clone()
        } else if filters.is_empty() {
            "nothing recorded yet: incidents, escalations, disagreements, failures and skill changes show here".into()
        } else {
            "nothing matches these filters (x clears them)".into()
        };
        let style = if h.error.is_some() {
            theme.fail()
        } else {
            theme.dim()
        };
        f.render_widget(
            Paragraph::new(msg).style(style).wrap(Wrap { trim: true }),
            list,
        );
    } else {
        let rows = rows(&h.items, &h.offset);
        let sel_row = rows
            .iter()
            .position(|r| *r == Row::Item(h.selected))
            .unwrap_or(0);
        let height = list.height as usize;
        // Keep the selection in view, with its day's header when it fits.
        let start = (sel_row + 1).saturating_sub(height);
        for r in rows.iter().skip(start).take(height) {
            lines.push(match r {
                Row::Day(d) => Line::styled(
                    truncate_width(&format!("── {} ──", d.format("%a %-d %b %Y")), width),
                    theme.bold(),
                ),
                Row::Item(i) => {
                    let line = item_line(&h.items[*i], theme, &h.offset, width);
                    if *i == h.selected {
                        line.style(theme.selected())
                    } else {
                        line
                    }
                }
            });
        }
        f.render_widget(Paragraph::new(lines), list);
    }
    let foot_text = match &h.typing {
        Some(t) => Line::from(vec![
            Span::styled("search: ", theme.accent()),
            Span::raw(truncate_width(
                &format!("{}▏", one_line(t, 100)),
                width.saturating_sub(8),
            )),
        ]),
        None => {
            let mut s = String::new();
            if h.loading && !h.items.is_empty() {
                s.push_str("loading… · ");
            } else if let (Some(e), false) = (&h.error, h.items.is_empty()) {
                s.push_str(&format!("{e} · "));
            }
            s.push_str("Enter open · / search · i t d l filter · x clear · k ack · Esc back");
            Line::styled(truncate_width(&s, width), theme.dim())
        }
    };
    f.render_widget(Paragraph::new(foot_text), foot);
}

fn draw_item(
    f: &mut Frame,
    h: &HistoryScreen,
    v: &ItemView,
    theme: &Theme,
    images: &mut ImageState,
    area: Rect,
) {
    let title = match (&v.incident, v.current()) {
        (Some(i), _) => format!(
            " incident #{} · level {} · {} ",
            i.id,
            i.level,
            one_line(&i.title, 60)
        ),
        (None, Some(fr)) => format!(" #{} · {} ", fr.seq, clock(fr.at, &h.offset)),
        (None, None) => " history item ".into(),
    };
    let [frame_area, text_area] = if area.width >= layout::WIDE {
        Layout::horizontal([Constraint::Percentage(40), Constraint::Min(0)]).areas(area)
    } else {
        Layout::horizontal([Constraint::Percentage(45), Constraint::Min(0)]).areas(area)
    };
    // The frame: a thumbnail of the current one, its place among the incident's frames.
    let cap = match v.current() {
        Some(fr) => format!(
            " frame {}/{}{} · #{} ",
            v.at + 1,
            v.frames.len(),
            if v.more > 0 { "+" } else { "" },
            fr.seq
        ),
        None => " frame ".into(),
    };
    f.render_widget(
        block(truncate_width(
            &cap,
            frame_area.width.saturating_sub(2) as usize,
        )),
        frame_area,
    );
    let inner = layout::inner(frame_area);
    if inner.height >= 2 && inner.width >= 2 {
        let [img, strip] =
            Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
        let shown = match v.image() {
            Some(Ok(frame)) => images.render(Some(frame), img, f.buffer_mut()),
            _ => {
                images.render(None, img, f.buffer_mut());
                false
            }
        };
        if !shown {
            let msg = if v.loading {
                "loading…".to_string()
            } else {
                match (v.current(), v.image()) {
                    (None, _) => "no frames".into(),
                    (Some(fr), _) if fr.frame_path.is_none() => {
                        "no frame saved (privacy.save_frames, or retention removed it)".into()
                    }
                    (_, Some(Err(e))) => e.clone(),
                    (_, Some(Ok(_))) => images
                        .error()
                        .map(str::to_string)
                        .unwrap_or_else(|| "drawing…".into()),
                    (_, None) => "loading the frame…".into(),
                }
            };
            f.render_widget(
                Paragraph::new(msg)
                    .style(theme.dim())
                    .alignment(Alignment::Center)
                    .wrap(Wrap { trim: true }),
                img,
            );
        }
        f.render_widget(
            Paragraph::new(strip_line(v, theme, strip.width as usize)),
            strip,
        );
    }
    // The text: the incident, then the current frame's answer, reasons and verdict.
    f.render_widget(
        block(truncate_width(
            &title,
            text_area.width.saturating_sub(2) as usize,
        )),
        text_area,
    );
    let inner = layout::inner(text_area);
    let [text, foot] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(inner);
    f.render_widget(
        Paragraph::new(item_text(v, theme, &h.offset)).wrap(Wrap { trim: false }),
        text,
    );
    let hint = if v.incident.is_some() {
        "← → frames · k acknowledge · Esc back"
    } else {
        "Esc back"
    };
    f.render_widget(
        Paragraph::new(Line::styled(
            truncate_width(hint, foot.width as usize),
            theme.dim(),
        )),
        foot,
    );
}

/// `◂ 1 2 [3] 4 ▸`: the frames, the current one marked, kept in view.
fn strip_line(v: &ItemView, theme: &Theme, width: usize) -> Line<'static> {
    let n = v.frames.len();
    if n <= 1 {
        return Line::default();
    }
    let cells: Vec<String> = (0..n)
        .map(|i| {
            if i == v.at {
                format!("[{}]", i + 1)
            } else {
                format!(" {} ", i + 1)
            }
        })
        .collect();
    // Start far enough left that the current one shows.
    let mut start = v.at;
    let mut used = cells[v.at].chars().count() + 4;
    while start > 0 && used + cells[start - 1].chars().count() <= width / 2 {
        start -= 1;
        used += cells[start].chars().count();
    }
    let mut spans = vec![Span::styled(
        if start > 0 { "◂ " } else { "  " },
        theme.dim(),
    )];
    let mut w = 2;
    for (i, c) in cells.iter().enumerate().skip(start) {
        if w + c.chars().count() + 2 > width {
            spans.push(Span::styled(" ▸", theme.dim()));
            break;
        }
        w += c.chars().count();
        let style = if i == v.at {
            theme.selected()
        } else {
            Style::default()
        };
        spans.push(Span::styled(c.clone(), style));
    }
    Line::from(spans)
}

fn label(theme: &Theme, s: &str) -> Span<'static> {
    Span::styled(s.to_string(), theme.bold())
}

/// The opened item's text.
pub fn item_text(v: &ItemView, theme: &Theme, offset: &FixedOffset) -> Text<'static> {
    let mut lines: Vec<Line<'static>> = Vec::new();
    if let Some(i) = &v.incident {
        let when = |t: DateTime<Utc>| t.with_timezone(offset).format("%a %-d %b %H:%M:%S");
        let end = i.closed_at.unwrap_or(i.last_at);
        lines.push(Line::from(vec![
            Span::styled(format!("LEVEL {} ", i.level), level_style(theme, i.level)),
            Span::raw(one_line(&i.title, 60)),
        ]));
        lines.push(Line::styled(
            format!(
                "{} → {} · {} · {} frames",
                when(i.opened_at),
                if i.closed_at.is_some() {
                    when(end).to_string()
                } else {
                    "open".into()
                },
                duration((end - i.opened_at).num_seconds()),
                i.frames
            ),
            theme.dim(),
        ));
        lines.push(match (&i.acked_at, &i.acked_by) {
            (Some(at), by) => Line::styled(
                format!(
                    "acknowledged {}{}",
                    when(*at),
                    by.as_deref()
                        .map(|b| format!(" by {}", one_line(b, 40)))
                        .unwrap_or_default()
                ),
                theme.ok(),
            ),
            (None, Some(by)) => {
                Line::styled(format!("acknowledged by {}", one_line(by, 40)), theme.ok())
            }
            (None, None) => Line::styled("not acknowledged · k acknowledges", theme.warn()),
        });
        if let Some(e) = &v.error {
            lines.push(Line::styled(e.clone(), theme.fail()));
        }
        lines.push(Line::default());
    }
    let Some(fr) = v.current() else {
        if v.loading {
            lines.push(Line::styled("loading its frames…", theme.dim()));
        }
        return Text::from(lines);
    };
    lines.push(Line::from(vec![
        label(theme, &format!("#{} ", fr.seq)),
        Span::styled(
            format!(
                "{} · {} · confidence {}{}",
                fr.at.with_timezone(offset).format("%H:%M:%S"),
                one_line(fr.label.as_deref().unwrap_or("frame"), SHORT_MAX),
                fr.confidence.map_or("—".into(), |c| format!("{c:.2}")),
                fr.measured
                    .map(|m| format!(" (measured {m:.2})"))
                    .unwrap_or_default()
            ),
            theme.dim(),
        ),
    ]));
    lines.push(label(theme, "student: ").into());
    match (&fr.answer, &fr.failed) {
        (_, Some(e)) => lines.push(Line::styled(
            format!("failed: {}", one_line(e, SHORT_MAX)),
            theme.fail(),
        )),
        (Some(a), None) => {
            for l in clean(a, TEXT_MAX).lines() {
                lines.push(Line::raw(l.to_string()));
            }
        }
        (None, None) => lines.push(Line::styled("(no answer)", theme.dim())),
    }
    if let Some(r) = fr.reasons.as_deref().filter(|r| !r.is_empty()) {
        lines.push(Line::from(vec![
            label(theme, "why: "),
            Span::raw(one_line(r, SHORT_MAX * 2)),
        ]));
    }
    match (&fr.verdict, &fr.teacher_error) {
        (_, Some(e)) => lines.push(Line::styled(
            format!("teacher failed: {}", one_line(e, SHORT_MAX)),
            theme.fail(),
        )),
        (Some(vd), None) => {
            let mut head = vec![match vd.agrees {
                Some(true) => Span::styled("AGREES ", theme.ok()),
                Some(false) => Span::styled("DISAGREES ", theme.fail()),
                None => Span::styled("VERDICT ", theme.bold()),
            }];
            if let Some(l) = fr.level {
                head.push(Span::styled(format!("level {l} "), level_style(theme, l)));
            }
            if let Some(t) = fr.title.as_deref().filter(|t| !t.is_empty()) {
                head.push(Span::raw(one_line(t, 60)));
            }
            lines.push(Line::from(vec![label(theme, "teacher: ")]));
            lines.push(Line::from(head));
            for l in clean(&vd.summary, TEXT_MAX).lines() {
                lines.push(Line::raw(l.to_string()));
            }
            for (name, items) in [("missed", &vd.missed), ("wrong", &vd.wrong)] {
                if !items.is_empty() {
                    let list: Vec<String> =
                        items.iter().take(20).map(|s| one_line(s, 100)).collect();
                    lines.push(Line::from(vec![
                        label(theme, &format!("{name}: ")),
                        Span::raw(list.join(", ")),
                    ]));
                }
            }
        }
        (None, None) if fr.escalated => {
            lines.push(Line::styled("teacher: no verdict", theme.dim()))
        }
        (None, None) => {}
    }
    Text::from(lines)
}
