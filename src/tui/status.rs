//! The status bar: both models (name, health, latency, load state), the engine's state,
//! the notice, frame counts, the escalation rate, the queue and the skill.

use crate::event::{Health, ModelLoad};
use crate::tui::app::App;
use crate::tui::widgets::{clean, first_line, secs, SHORT_MAX};
use ratatui::text::{Line, Span};
use std::time::Instant;

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
            Span::styled("ok", t.ok()),
            Span::raw(format!(" {}", lat(*latency_ms))),
        ],
        Health::Slow { latency_ms } => vec![
            Span::styled("slow", t.warn()),
            Span::raw(format!(" {}", lat(*latency_ms))),
        ],
        Health::Offline { reason, .. } => vec![Span::styled(
            format!("offline: {}", first_line(&clean(reason, SHORT_MAX))),
            t.fail(),
        )],
    }
}

/// A model's load state after its health (nothing when unknown: OpenAI-compatible hosts
/// do not say; nothing while the server is offline: a model we cannot reach has no load
/// state to show).
fn load_spans(app: &App, health: &Health, load: ModelLoad) -> Vec<Span<'static>> {
    let t = &app.theme;
    if matches!(health, Health::Offline { .. }) {
        return Vec::new();
    }
    let style = match load {
        ModelLoad::Unknown => return Vec::new(),
        ModelLoad::Loaded => t.dim(),
        ModelLoad::Loading => t.warn().patch(t.bold()),
        ModelLoad::NotLoaded => t.warn(),
    };
    vec![Span::raw(" "), Span::styled(load.label(), style)]
}

/// The status bar as one line (clipped to the width by ratatui).
pub fn status_line(app: &App, now: Instant) -> Line<'static> {
    let t = &app.theme;
    let bold = t.bold();
    let sep = || Span::styled(" | ", t.dim());
    let mut spans = Vec::new();
    if app.stopped {
        spans.push(Span::styled("ENGINE STOPPED", t.alarm()));
        spans.push(sep());
    }
    if app.paused {
        spans.push(Span::styled("PAUSED", t.banner()));
        spans.push(sep());
    }
    if let Some(info) = &app.attached {
        spans.push(Span::styled(
            attached_label(info, chrono::Utc::now()),
            t.accent(),
        ));
        spans.push(sep());
    }
    if app.upskill.running() {
        // Monitoring goes on; the upskill screen has the details.
        spans.push(Span::styled(
            format!(
                "upskill {}/{}",
                app.upskill.done_calls, app.upskill.total_calls
            ),
            t.warn(),
        ));
        spans.push(sep());
    }
    if let Some(n) = app.active_notice(now) {
        let style = if n.warning {
            t.warn().patch(t.bold())
        } else {
            t.accent()
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
    let (student, teacher) = (&app.student, &app.teacher);
    spans.push(Span::raw(format!("{} ", clean(&student.name, SHORT_MAX))));
    spans.extend(health_spans(
        app,
        &student.health,
        student.last_latency(),
        student.median_latency(),
    ));
    spans.extend(load_spans(app, &student.health, student.load));
    spans.push(sep());
    spans.push(Span::styled("teacher ", bold));
    spans.push(Span::raw(format!("{} ", clean(&teacher.name, SHORT_MAX))));
    spans.extend(health_spans(
        app,
        &teacher.health,
        teacher.last_latency(),
        None,
    ));
    spans.extend(load_spans(app, &teacher.health, teacher.load));
    if let Some(every) = app.teacher_alone {
        spans.push(sep());
        spans.push(Span::styled(
            crate::event::teacher_alone_label(every),
            t.warn().patch(bold),
        ));
    }
    spans.push(sep());
    let (rate, storm) = app
        .status_escalation(now)
        .map_or(("—".to_string(), false), |(r, storm)| {
            (format!("{:.0}%", r * 100.0), storm)
        });
    spans.push(Span::raw(format!("frames {} esc {rate}", app.frames_seen)));
    if storm {
        // An escalation storm: the warning says why; here it stays visible.
        spans.push(Span::styled(" storm!", t.fail()));
    }
    if app.unchanged > 0 {
        spans.push(Span::raw(format!(" unchanged {}", app.unchanged)));
    }
    // Frames captured while the student was busy that nobody looked at.
    if app.superseded > 0 {
        spans.push(Span::raw(format!(" skipped {}", app.superseded)));
    }
    spans.push(sep());
    spans.push(Span::raw(format!("queue {}", app.teacher_queue)));
    spans.push(sep());
    spans.push(Span::raw(format!("skill {}", clean(&app.skill, SHORT_MAX))));
    spans.push(sep());
    if let Some((label, connected)) = &app.broker {
        let style = if *connected { t.dim() } else { t.warn() };
        spans.push(Span::styled(clean(label, SHORT_MAX), style));
        spans.push(sep());
    }
    spans.push(Span::styled("? help", bold));
    Line::from(spans)
}

/// `attached · serve pid N · up 3h`: whom this console watches through.
pub fn attached_label(
    info: &crate::service::protocol::ServiceInfo,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    format!("attached · {}", info.label(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attached_label_says_pid_and_uptime() {
        let now = chrono::Utc::now();
        let info = crate::service::protocol::ServiceInfo {
            protocol: 1,
            pid: 4242,
            started_at: now - chrono::Duration::hours(3) - chrono::Duration::minutes(5),
            device: "pi".into(),
            version: "0".into(),
            capabilities: vec![],
        };
        assert_eq!(
            attached_label(&info, now),
            "attached · serve pid 4242 · up 3h"
        );
    }
}
