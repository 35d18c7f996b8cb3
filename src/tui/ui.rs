//! Drawing: a pure function of the app state (plus the thumbnail's encoder state).
//! Every piece of model or engine text goes through `sanitize::for_screen` and is bounded
//! to its pane.

use super::app::{App, Entry, Screen, TeacherState, Theme};
use super::images::ImageState;
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use crate::event::Health;
use crate::policy::Reason;
use crate::sanitize;
use chrono::Local;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;
use std::time::Instant;

/// Most characters of one model text kept for the screen (the pane cuts further).
const TEXT_MAX: usize = 4000;
/// Most characters of a short engine string (names, errors) kept for the screen.
const SHORT_MAX: usize = 300;

/// Untrusted text made safe for the terminal.
pub fn clean(s: &str, max_chars: usize) -> String {
    sanitize::for_screen(s, max_chars)
}

/// First non-empty line of cleaned text.
fn first_line(s: &str) -> String {
    let c = clean(s, TEXT_MAX);
    c.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_string()
}

fn width_of(s: &str) -> usize {
    Span::raw(s).width()
}

/// Cut to at most `max` display columns, ending in `…` when cut.
pub fn truncate_width(s: &str, max: usize) -> String {
    if width_of(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0;
    let mut tmp = [0u8; 4];
    for ch in s.chars() {
        let cw = width_of(ch.encode_utf8(&mut tmp));
        if w + cw > max - 1 {
            break;
        }
        out.push(ch);
        w += cw;
    }
    out.push('…');
    out
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
}

fn confidence_style(app: &App, c: f32) -> Style {
    let color = if c < app.threshold {
        Color::Red
    } else if c < 0.8 {
        Color::Yellow
    } else {
        Color::Green
    };
    app.theme.fg(color)
}

fn badge_style(theme: &Theme, r: &Reason) -> Style {
    match r {
        Reason::Safety { .. } => theme.fg(Color::Red).add_modifier(Modifier::BOLD),
        Reason::LowConfidence { .. } | Reason::NoConfidence => theme.fg(Color::Yellow),
        Reason::Forced => theme.fg(Color::Magenta),
        Reason::Audit => theme.fg(Color::Cyan),
    }
}

fn secs(ms: u64) -> String {
    format!("{:.1}s", ms as f64 / 1000.0)
}

pub fn draw(f: &mut Frame, app: &App, images: &mut ImageState) {
    let area = f.area();
    let Some(p) = layout::panes(area) else {
        let msg = format!(
            "terminal too small ({}x{}): need at least {MIN_WIDTH}x{MIN_HEIGHT}",
            area.width, area.height
        );
        f.render_widget(Paragraph::new(msg), area);
        return;
    };
    draw_status(f, app, p.status);
    match app.screen {
        Screen::Monitor => {
            draw_frame(f, app, images, p.frame);
            draw_log(f, app, p.log);
            draw_teacher(f, app, p.teacher);
        }
        Screen::Upskill => {
            let body = Rect {
                y: p.status.bottom(),
                height: area.height.saturating_sub(p.status.height),
                ..area
            };
            draw_upskill(f, app, body);
        }
    }
    if app.help {
        draw_help(f, app, area);
    }
}

fn health_spans(
    app: &App,
    health: &Health,
    last: Option<u64>,
    median: Option<u64>,
) -> Vec<Span<'static>> {
    let t = &app.theme;
    let lat = |fallback: u64| {
        let mut s = secs(last.unwrap_or(fallback));
        if let Some(m) = median {
            s.push_str(&format!(" (med {})", secs(m)));
        }
        s
    };
    match health {
        Health::Unknown => vec![Span::styled("…", t.dim())],
        Health::Ok { latency_ms } => vec![
            Span::styled("ok", t.fg(Color::Green)),
            Span::raw(format!(" {}", lat(*latency_ms))),
        ],
        Health::Slow { latency_ms } => vec![
            Span::styled("slow", t.fg(Color::Yellow)),
            Span::raw(format!(" {}", lat(*latency_ms))),
        ],
        Health::Offline { reason, .. } => vec![Span::styled(
            format!("offline: {}", first_line(&clean(reason, SHORT_MAX))),
            t.fg(Color::Red),
        )],
    }
}

/// The status bar as one line (clipped to the width by ratatui).
pub fn status_line(app: &App) -> Line<'static> {
    let t = &app.theme;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let sep = || Span::styled(" | ", t.dim());
    let mut spans = Vec::new();
    if app.paused {
        spans.push(Span::styled(
            "PAUSED",
            t.fg(Color::Yellow)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        spans.push(sep());
    }
    if let Some(n) = app.active_notice(Instant::now()) {
        let style = if n.warning {
            t.fg(Color::Yellow).add_modifier(Modifier::BOLD)
        } else {
            t.fg(Color::Cyan)
        };
        let mark = if n.warning { "⚠ " } else { "" };
        spans.push(Span::styled(
            format!("{mark}{}", first_line(&clean(&n.text, SHORT_MAX))),
            style,
        ));
        spans.push(sep());
    }
    if app.busy() {
        spans.push(Span::raw(format!("{} ", app.spinner_char())));
    }
    spans.push(Span::styled("student ", bold));
    spans.push(Span::raw(format!(
        "{} ",
        clean(&app.student_name, SHORT_MAX)
    )));
    spans.extend(health_spans(
        app,
        &app.student_health,
        app.last_latency(),
        app.median_latency(),
    ));
    spans.push(sep());
    spans.push(Span::styled("teacher ", bold));
    spans.push(Span::raw(format!(
        "{} ",
        clean(&app.teacher_name, SHORT_MAX)
    )));
    spans.extend(health_spans(
        app,
        &app.teacher_health,
        app.teacher_latency,
        None,
    ));
    spans.push(sep());
    let rate = app
        .escalation_rate()
        .map_or("—".to_string(), |r| format!("{:.0}%", r * 100.0));
    spans.push(Span::raw(format!("frames {} esc {rate}", app.frames_seen)));
    spans.push(sep());
    spans.push(Span::raw(format!("queue {}", app.teacher_queue)));
    spans.push(sep());
    spans.push(Span::raw(format!("skill {}", clean(&app.skill, SHORT_MAX))));
    spans.push(sep());
    spans.push(Span::styled("? help", bold));
    Line::from(spans)
}

fn draw_status(f: &mut Frame, app: &App, area: Rect) {
    f.render_widget(Paragraph::new(status_line(app)), area);
}

fn block(title: String) -> Block<'static> {
    Block::default().borders(Borders::ALL).title(title)
}

fn draw_frame(f: &mut Frame, app: &App, images: &mut ImageState, area: Rect) {
    let entry = app.frame_entry();
    let mode = if app.selected.is_some() {
        "selected"
    } else {
        "live"
    };
    let title = match entry {
        Some(e) => truncate_width(
            &format!(" #{} · {mode} · {} ", e.seq, clean(&e.label, SHORT_MAX)),
            area.width.saturating_sub(2) as usize,
        ),
        None => " frame ".into(),
    };
    f.render_widget(block(title), area);
    let inner = layout::inner(area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let t = &app.theme;
    let Some(e) = entry else {
        let msg = if app.paused {
            "capture paused (p resumes)"
        } else {
            "waiting for the first frame…"
        };
        f.render_widget(
            Paragraph::new(msg).style(t.dim()).wrap(Wrap { trim: true }),
            inner,
        );
        images.render(None, inner, f.buffer_mut());
        return;
    };
    let caption_area = Rect {
        y: inner.bottom() - 1,
        height: 1,
        ..inner
    };
    let img_area = Rect {
        height: inner.height - 1,
        ..inner
    };
    let (w, h, bytes) = match &e.frame {
        Some(fr) => (fr.width, fr.height, fr.jpeg.len()),
        None => (e.width, e.height, e.jpeg_bytes),
    };
    let kb = (bytes as f64 / 1024.0).round() as u64;
    let caption = format!("{w}×{h} px, {kb} KB");
    f.render_widget(
        Paragraph::new(truncate_width(&caption, inner.width as usize))
            .alignment(Alignment::Center)
            .style(t.dim()),
        caption_area,
    );
    if img_area.height == 0 {
        return;
    }
    // Graphics protocols draw above text: keep the thumbnail off while help covers it.
    let frame = if app.help { None } else { e.frame.as_ref() };
    let drawn = images.render(frame, img_area, f.buffer_mut());
    if !drawn {
        let msg = if e.frame.is_none() {
            "(no image)".to_string()
        } else if let Some(err) = images.error() {
            clean(err, SHORT_MAX)
        } else if app.help {
            String::new()
        } else {
            "decoding…".to_string()
        };
        f.render_widget(
            Paragraph::new(msg)
                .style(t.dim())
                .alignment(Alignment::Center)
                .wrap(Wrap { trim: true }),
            img_area,
        );
    }
}

/// Spans for one log line, fitted to `width` columns: badges stay visible, the answer is cut.
pub fn log_line(app: &App, e: &Entry, width: usize) -> Line<'static> {
    let t = &app.theme;
    let marker = if app.selected == Some(e.seq) {
        "▶"
    } else {
        " "
    };
    let time = e.captured_at.with_timezone(&Local).format("%H:%M:%S");
    let mut head = vec![
        Span::raw(marker),
        Span::styled(format!("{time} "), t.dim()),
        Span::raw(format!("#{} ", e.seq)),
    ];
    let text;
    let mut text_style = Style::default();
    if let Some(err) = &e.failed {
        head.push(Span::styled(
            "fail ",
            t.fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
        text = first_line(err);
        text_style = t.fg(Color::Red);
    } else if e.in_flight() {
        head.push(Span::raw(format!("{}    ", app.spinner_char())));
        let s = first_line(&e.answer);
        text = if s.is_empty() { "…".into() } else { s };
        text_style = t.dim();
    } else {
        match e.confidence {
            Some(c) => head.push(Span::styled(format!("{c:.2} "), confidence_style(app, c))),
            None => head.push(Span::styled("—    ", t.dim())),
        }
        text = first_line(&e.answer);
    }
    let mut tail: Vec<Span<'static>> = e
        .reasons
        .iter()
        .map(|r| Span::styled(format!(" [{}]", clean(&r.badge(), 60)), badge_style(t, r)))
        .collect();
    let mark = match &e.teacher {
        TeacherState::None => None,
        TeacherState::Queued { pos } => Some((format!(" ⧗{pos}"), t.dim())),
        TeacherState::Reviewing => Some((format!(" {}", app.spinner_char()), t.fg(Color::Cyan))),
        TeacherState::Verdict(v, _) => Some(match v.agrees {
            Some(true) => (" ✓".into(), t.fg(Color::Green)),
            Some(false) => (" ✗".into(), t.fg(Color::Red).add_modifier(Modifier::BOLD)),
            None => (" ?".into(), t.fg(Color::Yellow)),
        }),
        TeacherState::Failed(_) => Some((" ⚠".into(), t.fg(Color::Red))),
        TeacherState::Dropped => Some((" ⤫".into(), t.dim())),
    };
    if let Some((s, st)) = mark {
        tail.push(Span::styled(s, st));
    }
    let head_w: usize = head.iter().map(Span::width).sum();
    let tail_w: usize = tail.iter().map(Span::width).sum();
    let room = width.saturating_sub(head_w + tail_w);
    let mut spans = head;
    spans.push(Span::styled(truncate_width(&text, room), text_style));
    spans.extend(tail);
    Line::from(spans)
}

fn draw_log(f: &mut Frame, app: &App, area: Rect) {
    let title = match app.cursor {
        None => format!(" log · live · {} ", app.entries.len()),
        Some(seq) => format!(" log · #{seq} · End/Esc: live "),
    };
    let title = truncate_width(&title, area.width.saturating_sub(2) as usize);
    f.render_widget(block(title), area);
    let inner = layout::inner(area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    if app.entries.is_empty() {
        f.render_widget(
            Paragraph::new("no answers yet").style(app.theme.dim()),
            inner,
        );
        return;
    }
    let range = app.visible_range(inner.height as usize);
    let cursor = if app.cursor.is_some() {
        app.cursor_index()
    } else {
        None
    };
    for (row, i) in range.enumerate() {
        let e = &app.entries[i];
        let mut line = log_line(app, e, inner.width as usize);
        if cursor == Some(i) {
            line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
        }
        let r = Rect {
            y: inner.y + row as u16,
            height: 1,
            ..inner
        };
        f.render_widget(Paragraph::new(line), r);
    }
}

/// The teacher pane's text for the entry it shows.
pub fn teacher_text(app: &App) -> Text<'static> {
    let t = &app.theme;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut lines: Vec<Line<'static>> = Vec::new();
    let push_text = |lines: &mut Vec<Line<'static>>, s: &str, style: Style| {
        for l in clean(s, TEXT_MAX).lines() {
            lines.push(Line::styled(l.to_string(), style));
        }
    };
    if let Health::Offline { reason, hint } = &app.teacher_health {
        lines.push(Line::styled(
            format!("teacher offline: {}", clean(reason, SHORT_MAX)),
            t.fg(Color::Red),
        ));
        if !hint.is_empty() {
            push_text(&mut lines, hint, t.dim());
        }
    }
    let Some(e) = app.teacher_entry() else {
        lines.push(Line::styled(
            "nothing sent to the teacher yet (e escalates the current frame)",
            t.dim(),
        ));
        return Text::from(lines);
    };
    match &e.teacher {
        TeacherState::None => lines.push(Line::styled("not sent to the teacher", t.dim())),
        TeacherState::Queued { pos } => {
            lines.push(Line::raw(format!("waiting for teacher (queued #{pos})")))
        }
        TeacherState::Reviewing => lines.push(Line::styled(
            format!("{} reviewing…", app.spinner_char()),
            t.fg(Color::Cyan),
        )),
        TeacherState::Failed(err) => {
            lines.push(Line::styled(
                "teacher failed:",
                t.fg(Color::Red).add_modifier(Modifier::BOLD),
            ));
            push_text(&mut lines, err, t.fg(Color::Red));
        }
        TeacherState::Dropped => lines.push(Line::styled(
            "dropped: the teacher queue was full",
            t.fg(Color::Yellow),
        )),
        TeacherState::Verdict(v, ms) => {
            let mut head = match v.agrees {
                Some(true) => vec![Span::styled(
                    "AGREES",
                    t.fg(Color::Green).add_modifier(Modifier::BOLD),
                )],
                Some(false) => vec![Span::styled(
                    "DISAGREES",
                    t.fg(Color::Red).add_modifier(Modifier::BOLD),
                )],
                None => vec![Span::styled(
                    "verdict not readable",
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                )],
            };
            if v.safety_relevant == Some(true) {
                head.push(Span::raw("  "));
                head.push(Span::styled(
                    "SAFETY RELEVANT",
                    t.fg(Color::Red)
                        .add_modifier(Modifier::BOLD | Modifier::REVERSED),
                ));
            }
            head.push(Span::styled(format!("  {}", secs(*ms)), t.dim()));
            lines.push(Line::from(head));
            if !v.summary.trim().is_empty() {
                push_text(&mut lines, &v.summary, Style::default());
            }
            if !v.missed.is_empty() {
                let items: Vec<String> = v.missed.iter().map(|m| clean(m, SHORT_MAX)).collect();
                lines.push(Line::from(vec![
                    Span::styled("missed: ", bold),
                    Span::raw(items.join("; ")),
                ]));
            }
            if !v.wrong.is_empty() {
                let items: Vec<String> = v.wrong.iter().map(|m| clean(m, SHORT_MAX)).collect();
                lines.push(Line::from(vec![
                    Span::styled("wrong: ", bold),
                    Span::raw(items.join("; ")),
                ]));
            }
            if let Some(raw) = &v.raw {
                lines.push(Line::styled("raw reply:", bold));
                push_text(&mut lines, raw, Style::default());
            }
        }
    }
    if !e.reasons.is_empty() {
        let rs: Vec<String> = e
            .reasons
            .iter()
            .map(|r| clean(&r.to_string(), SHORT_MAX))
            .collect();
        lines.push(Line::styled(format!("why: {}", rs.join(", ")), t.dim()));
    }
    let conf = e.confidence.map_or("—".to_string(), |c| format!("{c:.2}"));
    if let Some(err) = &e.failed {
        lines.push(Line::styled(
            format!("student failed: {}", clean(err, SHORT_MAX)),
            t.fg(Color::Red),
        ));
    } else if !e.answer.is_empty() {
        lines.push(Line::styled(format!("student ({conf}):"), bold));
        push_text(&mut lines, &e.answer, Style::default());
    }
    Text::from(lines)
}

fn draw_teacher(f: &mut Frame, app: &App, area: Rect) {
    let title = match app.teacher_entry() {
        Some(e) => format!(" teacher · #{} ", e.seq),
        None => " teacher ".into(),
    };
    let title = truncate_width(&title, area.width.saturating_sub(2) as usize);
    f.render_widget(
        Paragraph::new(teacher_text(app))
            .block(block(title))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_upskill(f: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(
                "current skill: ",
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(clean(&app.skill, SHORT_MAX)),
        ]),
        Line::raw(""),
    ];
    match &app.skill_text {
        Some(s) => {
            for l in clean(s, TEXT_MAX).lines() {
                lines.push(Line::raw(l.to_string()));
            }
        }
        None => lines.push(Line::styled("(skill text not loaded)", t.dim())),
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Upskill runs are not available in the console yet. Press Esc to go back.",
        t.fg(Color::Yellow),
    ));
    f.render_widget(
        Paragraph::new(lines)
            .block(block(" upskill ".into()))
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// Every key, for the help overlay.
pub const HELP: &[(&str, &str)] = &[
    ("e", "escalate the current frame to the teacher"),
    ("u", "upskill: improve the skill with the teacher"),
    ("p", "pause / resume capture"),
    ("↑ ↓", "move in the log (mouse wheel too)"),
    ("PgUp PgDn", "move a page"),
    ("Home End", "oldest / newest (End follows live)"),
    ("Enter", "show the highlighted entry (or click it)"),
    ("Esc", "back to live · close help"),
    ("s", "save the entry: frame + answer + verdict"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
];

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let w = 56.min(area.width.saturating_sub(2));
    let h = (HELP.len() as u16 + 2).min(area.height.saturating_sub(2));
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let key_style = app.theme.fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:>10}  "), key_style),
                Span::raw(*d),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(block(" keys · Esc closes ".into())),
        r,
    );
}
