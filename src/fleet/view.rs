//! Drawing the fleet console: the device table (alerts first) or one device's live log.

use super::state::{Fleet, View};
use chrono::{DateTime, Local, Utc};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
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
    f.render_widget(
        Paragraph::new(format!(
            "fleet · {} · {} devices, {online} online, {alerting} with alerts",
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
            let last = d.last_answer.as_ref().map_or(String::new(), |(t, c)| {
                format!(
                    "{} {t}",
                    c.map_or("—   ".to_string(), |c| format!("{c:.2}"))
                )
            });
            let alerts = if d.open_alerts > 0 {
                format!("{} ALERT", d.open_alerts)
            } else {
                "0".into()
            };
            let mut style = Style::default();
            if d.open_alerts > 0 {
                style = style.fg(Color::Red).add_modifier(Modifier::BOLD);
            } else if d.online != Some(true) {
                style = style.fg(Color::DarkGray);
            }
            if i == selected {
                style = style.add_modifier(Modifier::REVERSED);
            }
            Row::new(vec![
                Cell::from(d.label.clone()),
                Cell::from(status),
                Cell::from(d.health()),
                Cell::from(d.answers_per_minute(now).to_string()),
                Cell::from(alerts),
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
        "agree",
        "last answer",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let t = Table::new(
        rows,
        [
            Constraint::Length(16),
            Constraint::Length(8),
            Constraint::Length(30),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(10),
            Constraint::Min(10),
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
    let height = area.height.saturating_sub(2) as usize;
    let skip = d.log.len().saturating_sub(height);
    let lines: Vec<Line> = d
        .log
        .iter()
        .skip(skip)
        .map(|l| {
            let at = l.at.with_timezone(&Local).format("%H:%M:%S").to_string();
            let style = if l.alert {
                Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::default()
            };
            Line::from(vec![
                Span::raw(format!("{at} ")),
                Span::styled(l.text.clone(), style),
            ])
        })
        .collect();
    let status = match d.online {
        Some(true) => "online",
        Some(false) => "offline",
        None => "?",
    };
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" {} · {status} · live log ", d.label)),
        ),
        area,
    );
}
