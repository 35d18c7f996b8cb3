//! The monitor's watches: the strip along the log's bottom border (each watch, its state
//! in the theme's colour, since when, who decided) and the teacher pane's lines that set
//! the teacher's answer beside the student's. Pure drawing helpers.

use crate::roles::verdict::Verdict;
use crate::tui::theme::Theme;
use crate::tui::widgets::{clean, truncate_width, SHORT_MAX};
use crate::watch::{parse_watch_answers, Decider, WatchState, WatchStatus};
use chrono::Local;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// How a state looks: its word and its style (a `yes` of an urgent watch is an alarm).
fn state_look(t: &Theme, w: &WatchStatus) -> (&'static str, Style) {
    match w.state {
        WatchState::Yes if w.level >= 2 => ("YES", t.alarm()),
        WatchState::Yes => ("YES", t.warn().patch(t.bold())),
        WatchState::No => ("no", t.ok()),
        WatchState::Unknown => ("?", t.dim()),
    }
}

/// The strip: ` watches: garage_door YES 14:02 teacher · stove_on no 13:40 student `.
pub fn strip(t: &Theme, watches: &[WatchStatus], width: usize) -> Line<'static> {
    let mut spans = vec![Span::styled(" watches: ", t.dim())];
    for (i, w) in watches.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", t.dim()));
        }
        let (word, style) = state_look(t, w);
        spans.push(Span::raw(format!("{} ", clean(&w.id, SHORT_MAX))));
        spans.push(Span::styled(word, style));
        if let Some(since) = w.since {
            let by = match w.by {
                Some(Decider::Teacher) => " teacher",
                Some(Decider::Student) => " student",
                None => "",
            };
            spans.push(Span::styled(
                format!(" {}{by}", since.with_timezone(&Local).format("%H:%M")),
                t.dim(),
            ));
        }
    }
    spans.push(Span::raw(" "));
    // Cut to the width, span by span.
    let mut used = 0;
    let mut out = Vec::new();
    for s in spans {
        let w = crate::tui::widgets::width_of(&s.content);
        if used + w > width {
            let room = width.saturating_sub(used);
            if room > 0 {
                out.push(Span::styled(truncate_width(&s.content, room), s.style));
            }
            break;
        }
        used += w;
        out.push(s);
    }
    Line::from(out)
}

/// Draw the strip over the bottom border of `area` (the log pane) when there are watches.
pub fn draw_strip(f: &mut Frame, t: &Theme, watches: &[WatchStatus], area: Rect) {
    if watches.is_empty() || area.height < 3 || area.width < 4 {
        return;
    }
    let row = Rect {
        x: area.x + 1,
        y: area.bottom() - 1,
        width: area.width - 2,
        height: 1,
    };
    f.render_widget(Paragraph::new(strip(t, watches, row.width as usize)), row);
}

/// The log line's marks for the watch states a frame changed: ` garage_door→YES` (the
/// teacher's decision marked `T`).
pub fn log_marks(t: &Theme, changes: &[crate::watch::WatchChange]) -> Vec<Span<'static>> {
    changes
        .iter()
        .map(|c| {
            let (word, style) = match c.to {
                WatchState::Yes => ("YES", t.warn().patch(t.bold())),
                WatchState::No => ("no", t.ok()),
                WatchState::Unknown => ("?", t.dim()),
            };
            let by = if c.by == Decider::Teacher { " T" } else { "" };
            Span::styled(
                format!(" {}\u{2192}{word}{by}", clean(&c.id, SHORT_MAX)),
                style,
            )
        })
        .collect()
}

/// The teacher pane's watch lines: per watch the teacher answered, its answer beside the
/// student's (from the answer's WATCH lines), a disagreement marked.
pub fn teacher_lines(t: &Theme, v: &Verdict, answer: &str) -> Vec<Line<'static>> {
    if v.watches.is_empty() {
        return Vec::new();
    }
    let ids: Vec<&str> = v.watches.keys().map(String::as_str).collect();
    let student = parse_watch_answers(answer, &ids);
    let mut spans = vec![Span::styled("watches: ", t.bold())];
    for (i, ((id, teacher), s)) in v.watches.iter().zip(student).enumerate() {
        if i > 0 {
            spans.push(Span::raw("; "));
        }
        let teacher = if *teacher { "yes" } else { "no" };
        let differs = s.as_bool().is_some_and(|b| b != (teacher == "yes"));
        spans.push(Span::raw(format!("{} teacher ", clean(id, SHORT_MAX))));
        spans.push(Span::styled(
            teacher,
            if differs { t.fail() } else { t.ok() },
        ));
        spans.push(Span::styled(format!(" · student {}", s.as_str()), t.dim()));
    }
    vec![Line::from(spans)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::Notify;

    fn w(id: &str, state: WatchState, by: Option<Decider>) -> WatchStatus {
        WatchStatus {
            id: id.into(),
            question: "Is it?".into(),
            state,
            since: by.map(|_| chrono::Utc::now()),
            by,
            notify: Notify::OnYes,
            level: 2,
            debounce: 2,
        }
    }

    fn text(l: &Line) -> String {
        l.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn the_strip_shows_each_state_who_decided_and_fits() {
        let t = Theme::default();
        let ws = [
            w("garage_door", WatchState::Yes, Some(Decider::Teacher)),
            w("stove_on", WatchState::Unknown, None),
        ];
        let l = strip(&t, &ws, 200);
        let s = text(&l);
        assert!(s.contains("garage_door YES "), "{s}");
        assert!(s.contains(" teacher · stove_on ?"), "{s}");
        // The urgent yes has the theme's alarm style.
        let yes = l.spans.iter().find(|s| s.content == "YES").unwrap();
        assert_eq!(yes.style, t.alarm());
        for width in [0, 5, 20, 33] {
            let s = text(&strip(&t, &ws, width));
            assert!(crate::tui::widgets::width_of(&s) <= width, "{width}: {s:?}");
        }
    }

    #[test]
    fn the_monitor_draws_the_strip_on_the_logs_bottom_border() {
        use crate::tui::render_tests::{render, rows, sample};
        let mut a = sample();
        let plain = rows(&render(&a, 80, 24));
        a.handle_event(crate::event::Event::Watches(crate::event::WatchesEvent {
            watches: vec![w("garage_door", WatchState::No, Some(Decider::Student))],
            changes: Vec::new(),
            removed: Vec::new(),
        }));
        for (wd, h) in [(80u16, 24u16), (160, 48)] {
            let r = rows(&render(&a, wd, h));
            let last = &r[h as usize - 1];
            assert!(
                last.contains("└ watches: garage_door no "),
                "{wd}x{h}: {last}"
            );
            assert!(last.ends_with('┘'), "{last}");
        }
        // Nothing else moved.
        let with = rows(&render(&a, 80, 24));
        assert_eq!(with[..23], plain[..23]);
        // A change marks the log line of the frame that made it.
        let seq = a.monitor.entries.back().unwrap().seq;
        a.handle_event(crate::event::Event::Watches(crate::event::WatchesEvent {
            watches: vec![w("garage_door", WatchState::Yes, Some(Decider::Teacher))],
            changes: vec![crate::watch::WatchChange {
                id: "garage_door".into(),
                from: WatchState::No,
                to: WatchState::Yes,
                by: Decider::Teacher,
                seq,
            }],
            removed: Vec::new(),
        }));
        let t = rows(&render(&a, 160, 48)).join("\n");
        // On the frame's own log line (its time, then its number), not elsewhere.
        let marked: Vec<&str> = t
            .lines()
            .filter(|l| l.contains("garage_door\u{2192}YES T"))
            .collect();
        assert_eq!(marked.len(), 1, "{t}");
        assert!(marked[0].contains(&format!(" #{seq} ")), "{}", marked[0]);
    }

    #[test]
    fn the_teacher_pane_sets_the_answers_side_by_side() {
        let t = Theme::default();
        let v = Verdict {
            watches: [
                ("garage_door".to_string(), false),
                ("stove_on".to_string(), true),
            ]
            .into_iter()
            .collect(),
            ..Verdict::default()
        };
        let lines = teacher_lines(
            &t,
            &v,
            "A garage.\nWATCH garage_door: yes\nWATCH stove_on: yes",
        );
        let s = text(&lines[0]);
        assert_eq!(
            s,
            "watches: garage_door teacher no · student yes; stove_on teacher yes · student yes"
        );
        let no = lines[0].spans.iter().find(|s| s.content == "no").unwrap();
        assert_eq!(no.style, t.fail(), "a disagreement is marked");
        assert!(teacher_lines(&t, &Verdict::default(), "x").is_empty());
    }
}
