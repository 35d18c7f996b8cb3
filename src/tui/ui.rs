//! Drawing: a pure function of the app state (plus the thumbnail's encoder state).
//! Every piece of model or engine text goes through `sanitize::for_screen` and is bounded
//! to its pane.

use super::app::{App, Entry, Screen, TeacherState, Theme};
use super::images::ImageState;
use super::layout::{self, MIN_HEIGHT, MIN_WIDTH};
use crate::event::{Health, ModelLoad};
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
        Reason::LowConfidence { .. } | Reason::NoConfidence | Reason::Cut { .. } => {
            theme.fg(Color::Yellow)
        }
        Reason::EchoesPrompt { .. } => theme.fg(Color::Yellow),
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
        Screen::Upskill | Screen::Calibration => {
            let body = Rect {
                y: p.status.bottom(),
                height: area.height.saturating_sub(p.status.height),
                ..area
            };
            if app.screen == Screen::Upskill {
                super::upskill_view::draw(f, app, body);
            } else {
                super::calibration_view::draw(f, app, body);
            }
        }
    }
    if app.learn.is_some() {
        super::learn_view::draw(f, app, area);
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

/// A model's load state after its health (nothing when unknown: OpenAI-compatible hosts
/// do not say).
fn load_spans(app: &App, load: ModelLoad) -> Vec<Span<'static>> {
    let t = &app.theme;
    let style = match load {
        ModelLoad::Unknown => return Vec::new(),
        ModelLoad::Loaded => t.dim(),
        ModelLoad::Loading => t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ModelLoad::NotLoaded => t.fg(Color::Yellow),
    };
    vec![Span::raw(" "), Span::styled(load.label(), style)]
}

/// The status bar as one line (clipped to the width by ratatui).
pub fn status_line(app: &App) -> Line<'static> {
    let t = &app.theme;
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let sep = || Span::styled(" | ", t.dim());
    let mut spans = Vec::new();
    if app.stopped {
        spans.push(Span::styled(
            "ENGINE STOPPED",
            t.fg(Color::Red)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ));
        spans.push(sep());
    }
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
    spans.extend(load_spans(app, app.student_load));
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
    spans.extend(load_spans(app, app.teacher_load));
    spans.push(sep());
    let (rate, storm) = app
        .status_escalation(std::time::Instant::now())
        .map_or(("—".to_string(), false), |(r, storm)| {
            (format!("{:.0}%", r * 100.0), storm)
        });
    spans.push(Span::raw(format!("frames {} esc {rate}", app.frames_seen)));
    if storm {
        // An escalation storm: the warning says why; here it stays visible.
        spans.push(Span::styled(" storm!", app.theme.fg(Color::Red)));
    }
    if app.unchanged > 0 {
        spans.push(Span::raw(format!(" unchanged {}", app.unchanged)));
    }
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
    let mut inner = layout::inner(area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    // An offline student is the first thing a new user meets: say what to do, in the
    // pane, not only in the (often cut) status bar.
    if let crate::event::Health::Offline { reason, hint } = &app.student_health {
        let text = format!(
            "student offline: {}",
            clean(
                &crate::ollama::error::with_hint(reason, hint),
                SHORT_MAX * 2
            )
        );
        let rows = if inner.height >= 6 { 2 } else { 1 };
        let banner = Rect {
            y: inner.bottom() - rows,
            height: rows,
            ..inner
        };
        f.render_widget(
            Paragraph::new(text)
                .style(app.theme.fg(Color::Yellow).add_modifier(Modifier::BOLD))
                .wrap(Wrap { trim: true }),
            banner,
        );
        inner.height -= rows;
        if inner.height == 0 {
            return;
        }
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
        if !hint.is_empty() && crate::ollama::error::with_hint(reason, hint) != *reason {
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
            if app.teacher_load == ModelLoad::Loading {
                // A cold start is not a slow answer: say which it is.
                format!(
                    "{} reviewing… (the teacher model is loading)",
                    app.spinner_char()
                )
            } else {
                format!("{} reviewing…", app.spinner_char())
            },
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
                None if v.truncated => vec![Span::styled(
                    "PARTIAL",
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                )],
                None => vec![Span::styled(
                    "verdict not readable",
                    t.fg(Color::Yellow).add_modifier(Modifier::BOLD),
                )],
            };
            if v.truncated {
                head.push(Span::styled(
                    "  (cut at the token cap)",
                    t.fg(Color::Yellow),
                ));
            }
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
    let mut conf = e.confidence.map_or("—".to_string(), |c| format!("{c:.2}"));
    if let Some(m) = e.measured {
        conf.push_str(&format!(", measured {m:.2}"));
    }
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

/// Every key, for the help overlay.
pub const HELP: &[(&str, &str)] = &[
    ("e", "escalate the current frame to the teacher"),
    ("a", "learn: make the reviewed entry an eval case"),
    ("u", "upskill: improve the skill with the teacher"),
    ("c", "calibration: how far to trust confidence"),
    ("p", "pause / resume capture"),
    ("s", "save the entry: frame + answer + verdict"),
    ("q  Ctrl-C", "quit"),
    ("↑ ↓", "move in the log (mouse wheel too)"),
    ("PgUp PgDn", "move a page"),
    ("Home End", "oldest / newest (End follows live)"),
    ("Enter", "show the highlighted entry (or click it)"),
    ("Esc", "back to live · close help"),
    ("?", "this help"),
    ("upskill ↑ ↓", "select a row · ← → scroll the cases"),
    ("upskill Enter", "apply the selected row (asks y/n)"),
    ("upskill r", "run again"),
    ("upskill o", "the newest run report (any key closes it)"),
    ("upskill Esc", "cancel the run · back when stopped"),
    ("calib. r Esc", "reload · back"),
];

fn draw_help(f: &mut Frame, app: &App, area: Rect) {
    let w = 60.min(area.width.saturating_sub(2));
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
                Span::styled(format!("{k:>13}  "), key_style),
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Event, Role};
    use crate::tui::app::tests::{answer, app, frame, key};
    use crate::tui::images::tests::test_frame;
    use crate::verdict::Verdict;
    use crossterm::event::KeyCode;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;
    use ratatui::Terminal;
    use ratatui_image::picker::Picker;

    pub(crate) fn render(app: &App, w: u16, h: u16) -> Buffer {
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        let mut images = ImageState::inline(Picker::halfblocks());
        term.draw(|f| draw(f, app, &mut images)).unwrap();
        term.backend().buffer().clone()
    }

    pub(crate) fn rows(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect()
    }

    pub(crate) fn text(buf: &Buffer) -> String {
        rows(buf).join("\n")
    }

    /// Position of the first cell where `needle` starts.
    pub(crate) fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
        for (y, row) in rows(buf).iter().enumerate() {
            // Cells hold one symbol each; map byte offset back to column.
            if let Some(off) = row.find(needle) {
                let col = row[..off].chars().count();
                return Some((col as u16, y as u16));
            }
        }
        None
    }

    pub(crate) fn sample() -> App {
        let mut a = app();
        a.handle_event(Event::Started {
            at: chrono::Utc::now(),
            student: "gemma4:e2b".into(),
            teacher: "gemma4:26b".into(),
            source: "camera 0".into(),
            skill: "skill.txt".into(),
        });
        a.handle_event(Event::Health {
            role: Role::Student,
            health: Health::Ok { latency_ms: 900 },
        });
        a.handle_event(Event::Health {
            role: Role::Teacher,
            health: Health::Offline {
                reason: "connection refused".into(),
                hint: "is ollama running on the teacher?".into(),
            },
        });
        a.handle_event(frame(1));
        a.handle_event(answer(
            1,
            "A cat on a sofa.\nCONFIDENCE: 0.82",
            Some(0.82),
            vec![],
        ));
        a.handle_event(frame(2));
        a.handle_event(answer(
            2,
            "A blurry clock.",
            Some(0.42),
            vec![Reason::LowConfidence {
                confidence: 0.42,
                threshold: 0.55,
            }],
        ));
        a.handle_event(frame(3));
        a.handle_event(answer(
            3,
            "Smoke near the stove.",
            None,
            vec![
                Reason::NoConfidence,
                Reason::Safety {
                    keyword: "smoke".into(),
                },
            ],
        ));
        a.handle_event(Event::Escalated {
            seq: 3,
            reasons: vec![
                Reason::NoConfidence,
                Reason::Safety {
                    keyword: "smoke".into(),
                },
            ],
            queue_len: 2,
            frame_path: None,
        });
        a.handle_event(frame(4));
        a.handle_event(answer(4, "A hallway.", Some(0.7), vec![]));
        a
    }

    #[test]
    fn log_shows_confidence_badges_and_dash() {
        let a = sample();
        let buf = render(&a, 80, 24);
        let t = text(&buf);
        assert!(t.contains("#1 0.82 A cat on a sofa."), "{t}");
        assert!(t.contains("#2 0.42 A blurry clock. [LOW]"), "{t}");
        assert!(
            t.contains("#3 —    Smoke near the stove. [NOCONF] [SAFETY:smoke] ⧗2"),
            "{t}"
        );
        assert!(t.contains("#4 0.70 A hallway."), "{t}");
        // Colours: red below the threshold, yellow below 0.8, green above.
        let (x, y) = find(&buf, "0.42").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(&buf, "0.70").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
        let (x, y) = find(&buf, "0.82").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Green);
        let (x, y) = find(&buf, "[SAFETY:smoke]").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        let (x, y) = find(&buf, "[LOW]").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
    }

    #[test]
    fn an_escalation_storm_shows_in_the_status_bar() {
        let mut a = sample();
        for seq in 10..22 {
            a.handle_event(Event::StudentAnswer {
                seq,
                at: chrono::Utc::now(),
                answer: "A blurry shape.".into(),
                confidence: None,
                measured_confidence: None,
                latency_ms: 900,
                reasons: vec![Reason::NoConfidence],
                skill: "skill.txt".into(),
            });
        }
        let buf = render(&a, 300, 40);
        let status = &rows(&buf)[0];
        // 14 of the 16 answers (the sample's 4 and these 12) escalated.
        assert!(status.contains("esc 88% storm!"), "{status}");
        let (x, y) = find(&buf, "storm!").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
    }

    #[test]
    fn status_bar_content() {
        let mut a = sample();
        a.handle_event(Event::StudentAnswer {
            seq: 4,
            at: chrono::Utc::now(),
            answer: "A hallway.".into(),
            confidence: Some(0.7),
            measured_confidence: None,
            latency_ms: 1200,
            reasons: vec![],
            skill: "skill.txt".into(),
        });
        let buf = render(&a, 300, 40);
        let status = &rows(&buf)[0];
        assert!(
            status.contains(
                "student gemma4:e2b@127.0.0.1 ok 1.2s (med 1.2s) | teacher gemma4:26b@mac-mini.local offline: connection refused | frames 4 esc 20% | queue 2 | skill skill.txt | ? help"
            ),
            "{status}"
        );
        // At 80 columns it is cut, and nothing spills into the next row.
        let buf = render(&a, 80, 24);
        let r = rows(&buf);
        assert!(
            r[0].starts_with("student gemma4:e2b@127.0.0.1 ok 1.2s"),
            "{}",
            r[0]
        );
        assert!(r[1].starts_with('┌'), "{}", r[1]);
    }

    #[test]
    fn status_bar_shows_model_load_state() {
        let mut a = sample();
        a.student_health = Health::Ok { latency_ms: 1200 };
        a.teacher_health = Health::Ok { latency_ms: 2000 };
        let status = |a: &App| rows(&render(a, 300, 40))[0].clone();
        assert!(
            !status(&a).contains("loaded") && !status(&a).contains("loading"),
            "unknown (OpenAI-compatible hosts): nothing shown: {}",
            status(&a)
        );
        a.handle_event(Event::ModelLoad {
            role: crate::event::Role::Student,
            state: ModelLoad::Loaded,
            took_ms: Some(900),
        });
        a.handle_event(Event::ModelLoad {
            role: crate::event::Role::Teacher,
            state: ModelLoad::Loading,
            took_ms: None,
        });
        let s = status(&a);
        assert!(
            s.contains("student gemma4:e2b@127.0.0.1 ok 1.2s (med 1.2s) loaded |"),
            "{s}"
        );
        assert!(
            s.contains("teacher gemma4:26b@mac-mini.local ok 2.0s loading… |"),
            "{s}"
        );
        let buf = render(&a, 300, 40);
        let (x, y) = find(&buf, "loading…").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Yellow);
        // A review during the load says so.
        a.handle_event(Event::TeacherStarted {
            seq: 3,
            queue_len: 0,
        });
        let t = text(&render(&a, 160, 48));
        assert!(
            t.contains("reviewing… (the teacher model is loading)"),
            "{t}"
        );
        a.handle_event(Event::ModelLoad {
            role: crate::event::Role::Teacher,
            state: ModelLoad::NotLoaded,
            took_ms: None,
        });
        assert!(
            status(&a).contains("ok 2.0s not loaded |"),
            "{}",
            status(&a)
        );
    }

    #[test]
    fn an_offline_student_says_what_to_do_in_the_log_pane() {
        let mut a = sample();
        a.handle_event(Event::Health {
            role: crate::event::Role::Student,
            health: crate::event::Health::Offline {
                reason: "connection refused (http://127.0.0.1:11434)".into(),
                hint: "start it: `ollama serve`, then `ollama pull gemma4:e2b`".into(),
            },
        });
        for (w, h) in [(80, 24), (160, 48)] {
            let t = text(&render(&a, w, h));
            assert!(t.contains("student offline: connection refused"), "{t}");
            assert!(t.contains("ollama serve"), "{t}");
        }
    }

    #[test]
    fn paused_and_warning_show_in_status() {
        let mut a = sample();
        a.handle_event(Event::Paused { paused: true });
        a.handle_event(Event::Warning {
            message: "camera \x1b[31mlost".into(),
        });
        let buf = render(&a, 160, 48);
        let status = &rows(&buf)[0];
        assert!(status.starts_with("PAUSED | ⚠ camera"), "{status}");
        assert!(status.contains("lost"), "{status}");
    }

    #[test]
    fn teacher_pane_states() {
        let mut a = sample();
        let t = text(&render(&a, 80, 24));
        assert!(t.contains("waiting for teacher (queued #2)"), "{t}");
        assert!(t.contains("teacher offline: connection refused"), "{t}");
        a.handle_event(Event::TeacherStarted {
            seq: 3,
            queue_len: 0,
        });
        assert!(text(&render(&a, 80, 24)).contains("reviewing…"));
        a.handle_event(Event::TeacherVerdict {
            seq: 3,
            verdict: Verdict {
                truncated: false,
                agrees: Some(false),
                safety_relevant: Some(true),
                summary: "Steam from a kettle, not smoke.".into(),
                missed: vec!["a kettle".into()],
                wrong: vec!["smoke".into()],
                raw: None,
            },
            latency_ms: 8100,
        });
        a.teacher_health = Health::Ok { latency_ms: 8100 };
        let buf = render(&a, 160, 48);
        let t = text(&buf);
        assert!(t.contains("DISAGREES  SAFETY RELEVANT  8.1s"), "{t}");
        assert!(t.contains("Steam from a kettle, not smoke."), "{t}");
        assert!(t.contains("missed: a kettle"), "{t}");
        assert!(t.contains("wrong: smoke"), "{t}");
        assert!(
            t.contains("why: no confidence reported, safety keyword: smoke"),
            "{t}"
        );
        let (x, y) = find(&buf, "DISAGREES").unwrap();
        assert_eq!(buf[(x, y)].fg, Color::Red);
        // An unreadable verdict shows the raw reply.
        a.handle_event(Event::TeacherVerdict {
            seq: 3,
            verdict: Verdict {
                raw: Some("I think it is fine".into()),
                ..Verdict::default()
            },
            latency_ms: 100,
        });
        let t = text(&render(&a, 80, 24));
        assert!(t.contains("verdict not readable"), "{t}");
        assert!(t.contains("I think it is fine"), "{t}");
        a.handle_event(Event::TeacherFailed {
            seq: 3,
            error: "HTTP 500".into(),
        });
        let t = text(&render(&a, 80, 24));
        assert!(
            t.contains("teacher failed:") && t.contains("HTTP 500"),
            "{t}"
        );
        a.handle_event(Event::TeacherDropped {
            seq: 3,
            reasons: vec![],
        });
        assert!(text(&render(&a, 80, 24)).contains("dropped: the teacher queue was full"));
    }

    #[test]
    fn selecting_an_entry_shows_it() {
        let mut a = sample();
        for _ in 0..4 {
            a.handle_key(key(KeyCode::Up));
        }
        a.handle_key(key(KeyCode::Enter));
        assert_eq!(a.selected, Some(1));
        let buf = render(&a, 80, 24);
        let t = text(&buf);
        assert!(t.contains("teacher · #1"), "{t}");
        assert!(t.contains("not sent to the teacher"), "{t}");
        assert!(t.contains("student (0.82):"), "{t}");
        assert!(t.contains("▶"), "{t}");
        let (x, y) = find(&buf, "#1 0.82").unwrap();
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
        assert!(t.contains("log · #1 · End/Esc: live"), "{t}");
    }

    #[test]
    fn frame_pane_shows_thumbnail_and_size() {
        let mut a = app();
        a.handle_event(Event::FrameTaken {
            seq: 9,
            captured_at: chrono::Utc::now(),
            label: "kitchen.jpg".into(),
            width: 768,
            height: 432,
            jpeg_bytes: 1,
            superseded: 0,
            image: Some(test_frame(768, 432)),
        });
        for (w, h) in [(80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let t = text(&buf);
            assert!(t.contains("768×432 px, "), "{t}");
            assert!(t.contains("KB"), "{t}");
            assert!(t.contains("#9 · live · kitchen.jpg"), "{t}");
            let p = layout::panes(buf.area).unwrap();
            let inner = layout::inner(p.frame);
            let blocks = (inner.top()..inner.bottom())
                .flat_map(|y| (inner.left()..inner.right()).map(move |x| (x, y)))
                .filter(|&(x, y)| matches!(buf[(x, y)].symbol(), "▀" | "▄"))
                .count();
            assert!(blocks > 20, "{w}x{h}: {blocks} halfblocks\n{t}");
        }
    }

    #[test]
    fn help_overlay_lists_keys() {
        let mut a = sample();
        a.handle_key(key(KeyCode::Char('?')));
        let t = text(&render(&a, 80, 24));
        for (k, d) in HELP {
            assert!(t.contains(k), "{k} missing\n{t}");
            assert!(t.contains(d), "{d} missing\n{t}");
        }
        // Fits at the minimum size too.
        let t = text(&render(&a, 60, 16));
        assert!(t.contains("quit"), "{t}");
    }

    #[test]
    fn small_terminal_notice() {
        let a = sample();
        let buf = render(&a, 59, 20);
        assert!(rows(&buf)[0].starts_with("terminal too small (59x20): need at least 60x16"));
        let buf = render(&a, 100, 15);
        assert!(rows(&buf)[0].starts_with("terminal too small (100x15)"));
        assert_eq!(rows(&render(&a, 1, 1))[0], "t");
    }

    #[test]
    fn terminal_escapes_in_model_text_never_reach_the_buffer() {
        let mut a = sample();
        let evil = "owned \x1b]0;pwned\x07 \x1b[2J\x1b[31mred\u{9b}1m";
        a.handle_event(frame(5));
        a.handle_event(Event::StudentToken {
            seq: 5,
            text: evil.into(),
        });
        let t = text(&render(&a, 80, 24));
        assert!(!t.contains('\x1b') && !t.contains('\x07') && !t.contains('\u{9b}'));
        a.handle_event(answer(5, evil, Some(0.9), vec![]));
        a.handle_event(Event::Escalated {
            seq: 5,
            reasons: vec![Reason::Forced],
            queue_len: 1,
            frame_path: None,
        });
        a.handle_event(Event::TeacherVerdict {
            seq: 5,
            verdict: Verdict {
                agrees: Some(true),
                summary: evil.into(),
                missed: vec![evil.into()],
                wrong: vec![evil.into()],
                raw: Some(evil.into()),
                ..Verdict::default()
            },
            latency_ms: 1,
        });
        a.handle_event(Event::Warning {
            message: evil.into(),
        });
        for (w, h) in [(80, 24), (160, 48)] {
            let t = text(&render(&a, w, h));
            assert!(t.contains("owned"), "{t}");
            for bad in ['\x1b', '\x07', '\u{9b}'] {
                assert!(!t.contains(bad), "{bad:?} at {w}x{h}:\n{t}");
            }
        }
    }

    #[test]
    fn long_answers_stay_inside_their_panes() {
        let mut a = sample();
        let long = format!("{} {}", "word ".repeat(3000), "X".repeat(5000));
        a.handle_event(frame(5));
        a.handle_event(answer(
            5,
            &long,
            Some(0.9),
            vec![Reason::Safety {
                keyword: "fire".into(),
            }],
        ));
        a.handle_event(Event::Escalated {
            seq: 5,
            reasons: vec![Reason::Forced],
            queue_len: 1,
            frame_path: None,
        });
        a.handle_event(Event::TeacherVerdict {
            seq: 5,
            verdict: Verdict {
                agrees: Some(true),
                summary: long.clone(),
                ..Verdict::default()
            },
            latency_ms: 1,
        });
        for (w, h) in [(60, 16), (80, 24), (160, 48)] {
            let buf = render(&a, w, h);
            let p = layout::panes(buf.area).unwrap();
            // Every pane's border is intact: no text ran over it.
            for r in [p.frame, p.log, p.teacher] {
                for y in r.top() + 1..r.bottom() - 1 {
                    assert_eq!(buf[(r.left(), y)].symbol(), "│", "{w}x{h} {r:?} y={y}");
                    assert_eq!(buf[(r.right() - 1, y)].symbol(), "│", "{w}x{h} {r:?} y={y}");
                }
                for x in r.left() + 1..r.right() - 1 {
                    let s = buf[(x, r.bottom() - 1)].symbol();
                    assert_eq!(s, "─", "{w}x{h} {r:?} x={x}");
                }
            }
            // The badge survives the cut.
            let t = text(&buf);
            assert!(t.contains("… [FORCED] ✓"), "{w}x{h}\n{t}");
        }
    }

    #[test]
    fn no_color_keeps_reverse_and_drops_colours() {
        let mut a = sample();
        a.theme = Theme { color: false };
        a.handle_key(key(KeyCode::Up));
        let buf = render(&a, 80, 24);
        for c in buf.content() {
            assert_eq!(c.fg, Color::Reset, "{c:?}");
            assert_eq!(c.bg, Color::Reset, "{c:?}");
        }
        let (x, y) = find(&buf, "#3 —").unwrap();
        assert!(buf[(x, y)].modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn never_panics_at_any_size() {
        let mut a = sample();
        a.handle_event(Event::FrameTaken {
            seq: 6,
            captured_at: chrono::Utc::now(),
            label: "x".repeat(500),
            width: 64,
            height: 36,
            jpeg_bytes: 5000,
            superseded: 0,
            image: Some(test_frame(64, 36)),
        });
        a.handle_event(Event::StudentToken {
            seq: 6,
            text: "streaming".into(),
        });
        let sizes = [
            1u16, 2, 3, 10, 15, 16, 17, 23, 24, 59, 60, 61, 79, 80, 119, 120, 121, 200, 300,
        ];
        for &w in &sizes {
            for &h in &[1u16, 2, 5, 15, 16, 17, 24, 48, 100] {
                for help in [false, true] {
                    a.help = help;
                    a.set_size(w, h);
                    a.handle_key(key(KeyCode::PageUp));
                    render(&a, w, h);
                    a.handle_key(key(KeyCode::End));
                    render(&a, w, h);
                }
            }
        }
    }
}
