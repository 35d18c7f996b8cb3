//! Drawing the monitor: the frame pane (thumbnail, size, source), the log, and the
//! teacher pane. Every piece of model or engine text goes through `clean` and is bounded
//! to its pane.

use super::state::{Entry, Monitor, TeacherState};
use crate::event::{Health, ModelLoad};
use crate::policy::Reason;
use crate::tui::images::ImageState;
use crate::tui::layout::{self, Panes};
use crate::tui::roles::RoleView;
use crate::tui::theme::Theme;
use crate::tui::widgets::{block, clean, first_line, secs, truncate_width, SHORT_MAX, TEXT_MAX};
use chrono::Local;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

/// What the monitor shows besides its own state.
pub struct Ctx<'a> {
    pub theme: &'a Theme,
    /// The spinner's character now.
    pub spinner: char,
    pub student: &'a RoleView,
    pub teacher: &'a RoleView,
    pub paused: bool,
    /// The help overlay covers the panes (graphics protocols would draw above it).
    pub help: bool,
    /// The frame source's name (`camera 0`, a folder).
    pub source: &'a str,
    /// The watches as they stand (the strip under the log).
    pub watches: &'a [crate::watch::WatchStatus],
}

/// The three panes.
pub fn draw(f: &mut Frame, m: &Monitor, cx: &Ctx, images: &mut ImageState, p: &Panes) {
    draw_frame(f, m, cx, images, p.frame);
    draw_log(f, m, cx, p.log);
    super::watches::draw_strip(f, cx.theme, cx.watches, p.log);
    draw_teacher(f, m, cx, p.teacher);
}

fn confidence_style(m: &Monitor, cx: &Ctx, c: f32) -> Style {
    cx.theme.level(c as f64, m.threshold as f64, 0.8)
}

fn badge_style(theme: &Theme, r: &Reason) -> Style {
    match r {
        Reason::Safety { .. } | Reason::SafetyEarly { .. } => theme.safety(),
        Reason::LowConfidence { .. } | Reason::NoConfidence | Reason::Cut { .. } => theme.warn(),
        Reason::EchoesPrompt { .. } => theme.warn(),
        Reason::Forced => theme.manual(),
        Reason::Audit | Reason::StudentDown => theme.accent(),
        Reason::Watch { .. } | Reason::WatchUnsure { .. } => theme.manual(),
    }
}

fn draw_frame(f: &mut Frame, m: &Monitor, cx: &Ctx, images: &mut ImageState, area: Rect) {
    let entry = m.frame_entry();
    let mode = if m.selected.is_some() {
        "selected"
    } else {
        "live"
    };
    // The source last: a narrow pane cuts it first.
    let source = if cx.source.is_empty() {
        String::new()
    } else {
        format!("· {} ", clean(cx.source, SHORT_MAX))
    };
    let title = truncate_width(
        &match entry {
            Some(e) => format!(
                " #{} · {mode} · {} {source}",
                e.seq,
                clean(&e.label, SHORT_MAX)
            ),
            None => format!(" frame {source}"),
        },
        area.width.saturating_sub(2) as usize,
    );
    f.render_widget(block(title), area);
    let inner = layout::inner(area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let t = cx.theme;
    let Some(e) = entry else {
        let msg = if cx.paused {
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
    let frame = if cx.help { None } else { e.frame.as_ref() };
    let drawn = images.render(frame, img_area, f.buffer_mut());
    if !drawn {
        let msg = if e.frame.is_none() {
            "(no image)".to_string()
        } else if let Some(err) = images.error() {
            clean(err, SHORT_MAX)
        } else if cx.help {
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
pub fn log_line(m: &Monitor, cx: &Ctx, e: &Entry, width: usize) -> Line<'static> {
    let t = cx.theme;
    let marker = if m.selected == Some(e.seq) {
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
        head.push(Span::styled("fail ", t.fail().patch(t.bold())));
        text = first_line(err);
        text_style = t.fail();
    } else if let Some(why) = &e.unanswered {
        head.push(Span::styled("—    ", t.dim()));
        text = format!("not answered: {}", first_line(why));
        text_style = t.warn();
    } else if e.in_flight() {
        head.push(Span::raw(format!("{}    ", cx.spinner)));
        let s = first_line(&e.answer);
        text = if s.is_empty() { "…".into() } else { s };
        text_style = t.dim();
    } else {
        match e.confidence {
            Some(c) => head.push(Span::styled(format!("{c:.2} "), confidence_style(m, cx, c))),
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
        TeacherState::Reviewing => Some((format!(" {}", cx.spinner), t.accent())),
        TeacherState::Verdict(v, _) => Some(match v.agrees {
            Some(true) => (" ✓".into(), t.ok()),
            Some(false) => (" ✗".into(), t.fail().patch(t.bold())),
            None => (" ?".into(), t.warn()),
        }),
        TeacherState::Failed(_) => Some((" ⚠".into(), t.fail())),
        TeacherState::Dropped => Some((" ⤫".into(), t.dim())),
    };
    if let Some((s, st)) = mark {
        tail.push(Span::styled(s, st));
    }
    tail.extend(super::watches::log_marks(t, &e.watch_changes));
    let head_w: usize = head.iter().map(Span::width).sum();
    let tail_w: usize = tail.iter().map(Span::width).sum();
    let room = width.saturating_sub(head_w + tail_w);
    let mut spans = head;
    spans.push(Span::styled(truncate_width(&text, room), text_style));
    spans.extend(tail);
    Line::from(spans)
}

fn draw_log(f: &mut Frame, m: &Monitor, cx: &Ctx, area: Rect) {
    let title = match m.cursor {
        None => format!(" log · live · {} ", m.entries.len()),
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
    if let Health::Offline { reason, hint } = &cx.student.health {
        let text = format!(
            "student offline: {}",
            clean(&crate::model::error::with_hint(reason, hint), SHORT_MAX * 2)
        );
        let rows = if inner.height >= 6 { 2 } else { 1 };
        let banner = Rect {
            y: inner.bottom() - rows,
            height: rows,
            ..inner
        };
        f.render_widget(
            Paragraph::new(text)
                .style(cx.theme.warn().patch(cx.theme.bold()))
                .wrap(Wrap { trim: true }),
            banner,
        );
        inner.height -= rows;
        if inner.height == 0 {
            return;
        }
    }
    if m.entries.is_empty() {
        f.render_widget(
            Paragraph::new("no answers yet").style(cx.theme.dim()),
            inner,
        );
        return;
    }
    let range = m.visible_range(inner.height as usize);
    let cursor = if m.cursor.is_some() {
        m.cursor_index()
    } else {
        None
    };
    for (row, i) in range.enumerate() {
        let e = &m.entries[i];
        let mut line = log_line(m, cx, e, inner.width as usize);
        if cursor == Some(i) {
            line = line.patch_style(cx.theme.selected());
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
pub fn teacher_text(m: &Monitor, cx: &Ctx) -> Text<'static> {
    let t = cx.theme;
    let bold = t.bold();
    let mut lines: Vec<Line<'static>> = Vec::new();
    let push_text = |lines: &mut Vec<Line<'static>>, s: &str, style: Style| {
        for l in clean(s, TEXT_MAX).lines() {
            lines.push(Line::styled(l.to_string(), style));
        }
    };
    if let Health::Offline { reason, hint } = &cx.teacher.health {
        lines.push(Line::styled(
            format!("teacher offline: {}", clean(reason, SHORT_MAX)),
            t.fail(),
        ));
        if !hint.is_empty() && crate::model::error::with_hint(reason, hint) != *reason {
            push_text(&mut lines, hint, t.dim());
        }
    }
    let Some(e) = m.teacher_entry() else {
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
            if cx.teacher.load == ModelLoad::Loading {
                // A cold start is not a slow answer: say which it is.
                format!("{} reviewing… (the teacher model is loading)", cx.spinner)
            } else {
                format!("{} reviewing…", cx.spinner)
            },
            t.accent(),
        )),
        TeacherState::Failed(err) => {
            lines.push(Line::styled("teacher failed:", t.fail().patch(t.bold())));
            push_text(&mut lines, err, t.fail());
        }
        TeacherState::Dropped => lines.push(Line::styled(
            "dropped: the teacher queue was full",
            t.warn(),
        )),
        TeacherState::Verdict(v, ms) => {
            let mut head = match v.agrees {
                Some(true) => vec![Span::styled("AGREES", t.ok().patch(t.bold()))],
                Some(false) => vec![Span::styled("DISAGREES", t.fail().patch(t.bold()))],
                None if v.truncated => vec![Span::styled("PARTIAL", t.warn().patch(t.bold()))],
                None => vec![Span::styled(
                    "verdict not readable",
                    t.warn().patch(t.bold()),
                )],
            };
            if v.truncated {
                head.push(Span::styled("  (cut at the token cap)", t.warn()));
            }
            if crate::record::notify::is_alert(v) {
                head.push(Span::raw("  "));
                head.push(Span::styled("SAFETY RELEVANT", t.alarm()));
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
            lines.extend(super::watches::teacher_lines(t, v, &e.answer));
            if let Some(raw) = &v.raw {
                lines.push(Line::styled("raw reply:", bold));
                push_text(&mut lines, raw, Style::default());
            }
        }
    }
    if let Some((kw, needed)) = e.early() {
        // The verdict may come before the answer is complete: say what it was asked about.
        let kw = clean(kw, SHORT_MAX);
        let (said, style) = match (e.in_flight(), needed) {
            (true, _) => (
                format!("EARLY review ({kw}): sent mid-answer, the student is still answering"),
                t.safety(),
            ),
            (false, Some(false)) => (
                format!(
                    "EARLY review ({kw}) of the answer's beginning; the full answer would not \
                     have escalated"
                ),
                t.warn(),
            ),
            (false, _) => (
                format!("EARLY review ({kw}): the verdict is about the answer's beginning"),
                t.safety(),
            ),
        };
        lines.push(Line::styled(said, style));
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
            t.fail(),
        ));
    } else if let Some(why) = &e.unanswered {
        lines.push(Line::styled(
            format!("not answered: {}", clean(why, SHORT_MAX)),
            t.warn(),
        ));
    } else if !e.answer.is_empty() {
        lines.push(Line::styled(format!("student ({conf}):"), bold));
        push_text(&mut lines, &e.answer, Style::default());
    }
    Text::from(lines)
}

fn draw_teacher(f: &mut Frame, m: &Monitor, cx: &Ctx, area: Rect) {
    let title = match m.teacher_entry() {
        Some(e) => format!(" teacher · #{} ", e.seq),
        None => " teacher ".into(),
    };
    let title = truncate_width(&title, area.width.saturating_sub(2) as usize);
    f.render_widget(
        Paragraph::new(teacher_text(m, cx))
            .block(block(title))
            .wrap(Wrap { trim: false }),
        area,
    );
}

#[cfg(test)]
mod tests {
    use crate::event::Event;
    use crate::tui::app::tests::app;
    use crate::tui::render_tests::{render, rows, sample, text};

    #[test]
    fn source_and_skipped_frames_show() {
        let mut a = sample();
        // The source's name closes the frame pane's title (cut first when narrow).
        let t = text(&render(&a, 160, 48));
        assert!(t.contains("#4 · live · img4.jpg · camera 0"), "{t}");
        assert!(
            !rows(&render(&a, 300, 40))[0].contains("skipped"),
            "nothing skipped: nothing shown"
        );
        a.handle_event(Event::FrameTaken {
            dhash: None,
            seq: 5,
            captured_at: chrono::Utc::now(),
            label: "img5.jpg".into(),
            width: 768,
            height: 432,
            jpeg_bytes: 1000,
            superseded: 3,
            image: None,
        });
        a.handle_event(Event::FrameTaken {
            dhash: None,
            seq: 6,
            captured_at: chrono::Utc::now(),
            label: "img6.jpg".into(),
            width: 768,
            height: 432,
            jpeg_bytes: 1000,
            superseded: 2,
            image: None,
        });
        assert_eq!(a.superseded, 5);
        let status = rows(&render(&a, 300, 40))[0].clone();
        assert!(
            status.contains("frames 6 esc 25% skipped 5 | queue"),
            "{status}"
        );
        // Before the first frame the pane still names the source.
        let mut b = app();
        b.handle_event(Event::Started {
            at: chrono::Utc::now(),
            student: "gemma4:e2b".into(),
            teacher: "gemma4:26b".into(),
            source: "folder eval/images".into(),
            skill: "skill.txt".into(),
        });
        let t = text(&render(&b, 160, 48));
        assert!(t.contains("┌ frame · folder eval/images ─"), "{t}");
    }
}
