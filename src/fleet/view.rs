//! Drawing the fleet console: the device table (alerts first) or one device's live log.
//! Colours come from the console's one palette (`tui/theme.rs`), so `NO_COLOR` holds.

use super::state::{Fleet, View};
use chrono::{DateTime, Local, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;

/// Draw the whole screen for `now`.
pub fn draw(f: &mut Frame, fleet: &Fleet, now: DateTime<Utc>) {
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let online = fleet
        .devices
        .values()
        .filter(|d| d.online == Some(true))
        .count();
    let alerting = fleet.devices.values().filter(|d| d.open_alerts > 0).count();
    let hidden = fleet.hidden_label().map_or(String::new(), |n| {
        format!(
            " · {n} hidden (more than {} devices; alerts always shown)",
            super::state::MAX_DEVICES
        )
    });
    f.render_widget(
        Paragraph::new(format!(
            "fleet · {} · {} devices, {online} online, {alerting} with alerts{hidden}",
            fleet.broker,
            fleet.devices.len()
        )),
        top,
    );
    let help = match &fleet.view {
        View::Table => "↑↓ select · Enter live log · e escalate · a acknowledge alerts · q quit",
        View::Log(_) => "Esc back · e escalate · q quit",
    };
    let bottom_text = match &fleet.notice {
        Some(n) => format!("{n} · {help}"),
        None => help.to_string(),
    };
    f.render_widget(
        Paragraph::new(bottom_text).style(Style::default().add_modifier(Modifier::DIM)),
        bottom,
    );
    match &fleet.view {
        View::Table => table(f, fleet, body, now),
        View::Log(d) => log(f, fleet, d, body),
    }
}

/// The device's watches as its state says them: `garage_door YES, stove_on no` (ids
/// cleaned: another device's state is untrusted text), "" without any.
fn watches_text(d: &super::state::Device) -> String {
    let Some(s) = &d.state else {
        return String::new();
    };
    s.watches
        .iter()
        .take(crate::watch::MAX_WATCHES)
        .map(|w| {
            let state = match w.state {
                crate::watch::WatchState::Yes => "YES",
                crate::watch::WatchState::No => "no",
                crate::watch::WatchState::Unknown => "?",
            };
            format!(
                "{} {state}",
                crate::reading::sanitize::for_screen(&w.id, 32)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(f: &mut Frame, fleet: &Fleet, area: Rect, now: DateTime<Utc>) {
    let order = fleet.order();
    let selected = fleet.selected.min(order.len().saturating_sub(1));
    let rows: Vec<Row> = order
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let d = &fleet.devices[*key];
            let status = match d.online {
                Some(true) => "online",
                Some(false) => "offline",
                None => "?",
            };
            let agree = d.agreement().map_or("—".to_string(), |(a, n)| {
                format!("{:.0}% ({n})", a * 100.0)
            });
            let mut last = d.last_answer.as_ref().map_or(String::new(), |(t, c)| {
                format!(
                    "{} {t}",
                    c.map_or("—   ".to_string(), |c| format!("{c:.2}"))
                )
            });
            // The device's watches first: what its owner asked to see at a glance.
            let watches = watches_text(d);
            if !watches.is_empty() {
                last = format!("[{watches}] {last}");
            }
            let incidents = d.incidents.cell();
            let alerts = if d.open_alerts > 0 {
                format!("{} ALERT", d.open_alerts)
            } else {
                "0".into()
            };
            let theme = &fleet.theme;
            let mut style = if d.open_alerts > 0 || d.incidents.highest_level >= 2 {
                theme.safety()
            } else if d.incidents.count > 0 {
                theme.warn()
            } else if d.online != Some(true) {
                theme.dim()
            } else {
                Style::default()
            };
            if i == selected {
                style = style.patch(theme.selected());
            }
            Row::new(vec![
                Cell::from(d.label.clone()),
                Cell::from(status),
                Cell::from(d.health()),
                Cell::from(d.answers_per_minute(now).to_string()),
                Cell::from(alerts),
                Cell::from(incidents),
                Cell::from(agree),
                Cell::from(last),
            ])
            .style(style)
        })
        .collect();
    let header = Row::new(vec![
        "device",
        "status",
        "health",
        "ans/min",
        "alerts",
        "incidents",
        "agree",
        "last answer",
    ])
    .style(fleet.theme.bold());
    // Fixed columns, then the last answer takes all the width that is left.
    let t = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(7),
            Constraint::Length(6),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
    )
    .header(header)
    .block(Block::default().borders(Borders::ALL).title(" devices "));
    f.render_widget(t, area);
    if order.is_empty() {
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        f.render_widget(
            Paragraph::new(format!(
                "no device has reported under {}/… yet",
                crate::reading::sanitize::for_screen(&fleet.prefix, 60)
            )),
            inner,
        );
    }
}

fn log(f: &mut Frame, fleet: &Fleet, key: &str, area: Rect) {
    let Some(d) = fleet.devices.get(key) else {
        f.render_widget(
            Paragraph::new("this device has gone from the broker")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    // The open incidents first (they stand until closed), then the newest log lines.
    let mut lines: Vec<Line> = d
        .incidents
        .lines()
        .into_iter()
        .map(|l| Line::styled(l, fleet.theme.safety()))
        .collect();
    let height = (area.height.saturating_sub(2) as usize).saturating_sub(lines.len());
    let skip = d.log.len().saturating_sub(height);
    lines.extend(d.log.iter().skip(skip).map(|l| {
        let at = l.at.with_timezone(&Local).format("%H:%M:%S").to_string();
        let style = if l.alert {
            fleet.theme.safety()
        } else {
            Style::default()
        };
        Line::from(vec![
            Span::raw(format!("{at} ")),
            Span::styled(l.text.clone(), style),
        ])
    }));
    let status = match d.online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "?",
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(format!(
            " {} · {status} · {} · live log ",
            d.label,
            d.health_detail()
        ))),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::theme::Theme;
    use ratatui::backend::TestBackend;
    use ratatui::style::Color;
    use ratatui::Terminal;

    fn fleet(theme: Theme) -> (Fleet, DateTime<Utc>) {
        let now = "2026-12-02T06:00:00Z".parse().unwrap();
        let mut f = Fleet::new("g");
        f.theme = theme;
        f.broker = "mqtt://broker.lan:1883 connected".into();
        let mut st = crate::mqtt::payload::DeviceState::new("pi");
        st.student.health = crate::event::Health::Ok { latency_ms: 800 };
        st.student.load = crate::event::ModelLoad::Loaded;
        st.teacher.health = crate::event::Health::Slow { latency_ms: 9100 };
        st.counters.agreements = 3;
        st.counters.disagreements = 1;
        let state = serde_json::to_vec(&st).unwrap();
        for d in ["pi-kitchen", "pi-garage", "pi-attic"] {
            f.apply(&format!("g/{d}/available"), b"online", now);
            f.apply(&format!("g/{d}/state"), &state, now);
        }
        f.apply("g/pi-attic/available", b"offline", now);
        f.apply(
            "g/pi-kitchen/events",
            br#"{"type":"student_answer","seq":12,"answer":"Smoke rises from a pan on the stove; a person stands beside it holding a towel near the flame.\nSafety: smoke over the stove.\nCONFIDENCE: 0.90","confidence":0.9}"#,
            now,
        );
        f.apply(
            "g/pi-kitchen/alert",
            br#"{"seq":12,"summary":"A pan is smoking."}"#,
            now,
        );
        f.apply(
            "g/pi-kitchen/incident",
            br#"{"highest_level":2,"open":[{"id":4,"level":2,"title":"Pan smoking on the stove","opened_at":"2026-12-02T05:58:00Z","last_at":"2026-12-02T05:59:00Z","frames":3,"acknowledged":false,"acked_by":null}]}"#,
            now,
        );
        f.apply(
            "g/pi-garage/events",
            br#"{"type":"student_answer","seq":7,"answer":"An empty garage.\nNo safety concerns.\nCONFIDENCE: 0.91","confidence":0.91}"#,
            now,
        );
        (f, now)
    }

    fn render(f: &Fleet, now: DateTime<Utc>, w: u16, h: u16) -> ratatui::buffer::Buffer {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|fr| draw(fr, f, now)).unwrap();
        t.backend().buffer().clone()
    }

    fn text(b: &ratatui::buffer::Buffer) -> String {
        let w = b.area.width as usize;
        b.content
            .chunks(w)
            .map(|r| {
                r.iter()
                    .map(|c| c.symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn table_at_80_and_130_columns() {
        let (f, now) = fleet(Theme { color: true });
        for w in [80u16, 130] {
            let s = text(&render(&f, now, w, 9));
            // Compact health, the answer without the contract's lines, nothing cut but
            // the last column.
            assert!(s.contains("S✓ T~"), "{s}");
            assert!(s.contains("▲2 ×1!"), "the open incident: {s}");
            assert!(!s.contains("CONFIDENCE"), "{s}");
            assert!(!s.contains("No safety concerns"), "{s}");
            insta::assert_snapshot!(format!("fleet_table_{w}x9"), s);
        }
        // At 130 the last answer gets the room that is left: more of it shows.
        let wide = text(&render(&f, now, 130, 9));
        assert!(
            wide.contains("0.90 Smoke rises from a pan on the stove; a person stands"),
            "{wide}"
        );
    }

    #[test]
    fn live_log_header_has_the_health_in_words() {
        let (mut f, now) = fleet(Theme { color: true });
        f.key(super::super::state::Key::Enter);
        let s = text(&render(&f, now, 130, 6));
        assert!(
            s.contains("pi-kitchen · online · S ok 0.8s loaded · T slow 9.1s · live log"),
            "{s}"
        );
        // Its open incident stands above the log.
        assert!(
            s.lines()
                .nth(2)
                .unwrap()
                .contains("▲2 incident #4 Pan smoking on the stove · 3 frames"),
            "{s}"
        );
        assert!(s.contains("not acknowledged"), "{s}");
    }

    #[test]
    fn no_color_means_no_colour_anywhere() {
        let colours = |b: &ratatui::buffer::Buffer| {
            b.content
                .iter()
                .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
                .count()
        };
        let (f, now) = fleet(Theme { color: true });
        assert!(
            colours(&render(&f, now, 100, 9)) > 0,
            "the alert row is coloured"
        );
        let (mut f, now) = fleet(Theme { color: false });
        let b = render(&f, now, 100, 9);
        assert_eq!(colours(&b), 0);
        // The alert still stands out: bold (and the selected row reversed).
        let s = text(&b);
        let row = s.lines().position(|l| l.contains("pi-kitchen")).unwrap() as u16;
        assert!(b[(2, row)].modifier.contains(Modifier::BOLD));
        insta::assert_snapshot!("fleet_table_no_color_100x9", s);
        f.key(super::super::state::Key::Enter);
        assert_eq!(colours(&render(&f, now, 100, 9)), 0, "the live log too");
    }
}
