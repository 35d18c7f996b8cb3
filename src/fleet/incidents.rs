//! Each device's open incidents, from its retained `<prefix>/D/incident` (`highest_level`
//! and `open`: id, level, title, opened_at, frames, acknowledged, acked_by), cleaned and
//! bounded for the screen when they arrive.

use crate::reading::sanitize::for_screen;
use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Open incidents kept per device (the count says how many there are).
pub const KEPT: usize = 20;

/// One open incident of a device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OpenIncident {
    pub id: u64,
    pub level: u8,
    /// Cleaned, one line, at most 60 characters.
    pub title: String,
    pub opened_at: Option<DateTime<Utc>>,
    pub frames: u64,
    pub acknowledged: bool,
    pub acked_by: Option<String>,
}

/// What a device's `incident` topic says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceIncidents {
    pub highest_level: u8,
    /// Most urgent first, then newest.
    pub open: Vec<OpenIncident>,
    /// Open incidents in the message (may be more than kept).
    pub count: usize,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    highest_level: u8,
    #[serde(default)]
    open: Vec<WireIncident>,
}

#[derive(Deserialize)]
struct WireIncident {
    #[serde(default)]
    id: u64,
    #[serde(default)]
    level: u8,
    #[serde(default)]
    title: String,
    #[serde(default)]
    opened_at: Option<DateTime<Utc>>,
    #[serde(default)]
    frames: u64,
    #[serde(default)]
    acknowledged: bool,
    #[serde(default)]
    acked_by: Option<String>,
}

fn one_line(s: &str, max: usize) -> String {
    for_screen(s, max * 2)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

/// Read a retained `incident` payload; None when it is not one. An empty payload (the
/// retained message cleared) is no open incident.
pub fn parse(payload: &[u8]) -> Option<DeviceIncidents> {
    if payload.is_empty() {
        return Some(DeviceIncidents::default());
    }
    let w: Wire = serde_json::from_slice(payload).ok()?;
    let count = w.open.len();
    let mut open: Vec<OpenIncident> = w
        .open
        .into_iter()
        .map(|i| OpenIncident {
            id: i.id,
            level: i.level.min(2),
            title: one_line(&i.title, 60),
            opened_at: i.opened_at,
            frames: i.frames,
            acknowledged: i.acknowledged,
            acked_by: i.acked_by.map(|b| one_line(&b, 40)),
        })
        .collect();
    open.sort_by(|a, b| b.level.cmp(&a.level).then(b.id.cmp(&a.id)));
    open.truncate(KEPT);
    let highest = open.iter().map(|i| i.level).max().unwrap_or(0);
    Some(DeviceIncidents {
        highest_level: w.highest_level.min(2).max(highest),
        open,
        count,
    })
}

impl DeviceIncidents {
    /// Not yet acknowledged.
    pub fn unacknowledged(&self) -> usize {
        self.open.iter().filter(|i| !i.acknowledged).count()
    }

    /// The table's cell: `—`, or `▲2 ×3` (highest level, how many) with `!` while any is
    /// not acknowledged.
    pub fn cell(&self) -> String {
        if self.count == 0 {
            return "—".into();
        }
        format!(
            "▲{} ×{}{}",
            self.highest_level,
            self.count,
            if self.unacknowledged() > 0 { "!" } else { "" }
        )
    }

    /// One line per open incident, for the device's live log.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .open
            .iter()
            .map(|i| {
                format!(
                    "▲{} incident #{} {} · {} frames{} · {}",
                    i.level,
                    i.id,
                    i.title,
                    i.frames,
                    i.opened_at
                        .map(|t| format!(
                            " · since {}",
                            t.with_timezone(&chrono::Local).format("%H:%M")
                        ))
                        .unwrap_or_default(),
                    match (&i.acked_by, i.acknowledged) {
                        (Some(by), _) => format!("acknowledged by {by}"),
                        (None, true) => "acknowledged".into(),
                        (None, false) => "not acknowledged".into(),
                    }
                )
            })
            .collect();
        if self.count > self.open.len() {
            out.push(format!("… and {} more open", self.count - self.open.len()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retained_payload_is_read_cleaned_and_bounded() {
        // What the device publishes (mqtt/incidents.rs) reads back.
        let mut m = crate::mqtt::incidents::Incidents::new(&[]);
        let t0 = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let mut tr = crate::history::incident::Tracker::new(120, 1, Vec::new());
        let v = crate::roles::verdict::Verdict {
            agrees: Some(true),
            safety_relevant: Some(true),
            level: Some(2),
            title: "Pan \u{1b}[2Jsmoking\non the stove".into(),
            ..Default::default()
        };
        for e in tr.on_verdict(3, t0, &v) {
            m.apply(&e);
        }
        let d = parse(m.payload().as_bytes()).unwrap();
        assert_eq!(d.highest_level, 2);
        assert_eq!(d.count, 1);
        assert_eq!(d.open[0].id, 1);
        assert!(!d.open[0].title.contains('\u{1b}') && !d.open[0].title.contains('\n'));
        assert_eq!(d.cell(), "▲2 ×1!");
        assert!(d.lines()[0].contains("not acknowledged"), "{:?}", d.lines());
        // Many: kept bounded, most urgent first, counted.
        let many: Vec<_> = (0..50)
            .map(|i| serde_json::json!({"id": i, "level": if i == 7 { 2 } else { 1 }, "title": "x".repeat(500), "acknowledged": true}))
            .collect();
        let d = parse(
            serde_json::json!({"highest_level": 2, "open": many})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((d.open.len(), d.count), (KEPT, 50));
        assert_eq!(d.open[0].id, 7);
        assert!(d.open[0].title.chars().count() <= 60);
        assert_eq!(d.cell(), "▲2 ×50");
        assert!(d.lines().last().unwrap().contains("30 more"));
        // None open; a cleared retained message; not an incident payload.
        assert_eq!(
            parse(br#"{"highest_level":0,"open":[]}"#).unwrap().cell(),
            "—"
        );
        assert_eq!(parse(b"").unwrap(), DeviceIncidents::default());
        assert!(parse(b"not json").is_none());
    }
}
