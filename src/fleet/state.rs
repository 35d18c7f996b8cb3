//! The fleet console's state: one entry per device heard on the broker, fed by
//! `<prefix>/<device>/available|state|events|alert` messages, and the keys that move it.
//! Every string from the broker is cleaned for the screen here, before it is kept.

use crate::mqtt::payload::DeviceState;
use crate::mqtt::topics::parse_fleet_topic;
use crate::reading::sanitize::for_screen;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// Devices kept (a broker with more is not a fleet this console can show). A device with
/// an alert is never refused for it: it takes the place of one without an alert, or,
/// when every device kept has one, goes beyond the cap (up to twice it).
pub const MAX_DEVICES: usize = 1000;
/// Names of hidden devices remembered to count them (beyond: counted as "at least").
const HIDDEN_TRACKED: usize = 10_000;
/// Live log lines kept per device.
pub const LOG_LINES: usize = 500;
/// Messages bigger than this are ignored (events and states are a few KB).
pub const MAX_PAYLOAD: usize = 1 << 20;
/// Longest text kept from one field.
const MAX_TEXT: usize = 300;

/// One line of a device's live log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub text: String,
    pub alert: bool,
}

/// What is known about one device.
#[derive(Debug, Clone, Default)]
pub struct Device {
    /// As shown (cleaned); the map key is the topic level itself.
    pub label: String,
    pub online: Option<bool>,
    pub state: Option<DeviceState>,
    /// Arrival times of the answers of the last minute.
    answers: VecDeque<DateTime<Utc>>,
    /// (text, confidence) of the newest answer.
    pub last_answer: Option<(String, Option<f32>)>,
    pub open_alerts: u32,
    pub last_alert: Option<String>,
    /// Its open incidents (the retained `incident` topic).
    pub incidents: super::incidents::DeviceIncidents,
    /// Verdicts seen on `events` (used while no state has arrived).
    seen_agree: u64,
    seen_verdicts: u64,
    pub log: VecDeque<LogLine>,
}

impl Device {
    /// Answers in the 60 s before `now`.
    pub fn answers_per_minute(&self, now: DateTime<Utc>) -> usize {
        self.answers
            .iter()
            .filter(|t| now.signed_duration_since(**t).num_seconds() < 60)
            .count()
    }

    /// Teacher agreement (share, verdicts), from the device's totals when known.
    pub fn agreement(&self) -> Option<(f64, u64)> {
        let (agree, n) = match &self.state {
            Some(s) if s.counters.agreements + s.counters.disagreements > 0 => (
                s.counters.agreements,
                s.counters.agreements + s.counters.disagreements,
            ),
            _ => (self.seen_agree, self.seen_verdicts),
        };
        (n > 0).then(|| (agree as f64 / n as f64, n))
    }

    /// Model health in a column's width: `S✓ T✓` (✓ ok, ~ slow, ✗ offline, ? not known
    /// yet), `—` before the first state.
    pub fn health(&self) -> String {
        let Some(s) = &self.state else {
            return "—".into();
        };
        let mark = |m: &crate::mqtt::payload::ModelState| match &m.health {
            crate::event::Health::Unknown => '?',
            crate::event::Health::Ok { .. } => '✓',
            crate::event::Health::Slow { .. } => '~',
            crate::event::Health::Offline { .. } => '✗',
        };
        format!("S{} T{}", mark(&s.student), mark(&s.teacher))
    }

    /// Model health in words, for the live log's header: `S ok 0.8s loaded · T slow 9.1s`.
    pub fn health_detail(&self) -> String {
        let Some(s) = &self.state else {
            return "—".into();
        };
        let one = |m: &crate::mqtt::payload::ModelState| {
            let h = match &m.health {
                crate::event::Health::Unknown => "?".to_string(),
                crate::event::Health::Ok { latency_ms } => {
                    format!("ok {:.1}s", *latency_ms as f64 / 1000.0)
                }
                crate::event::Health::Slow { latency_ms } => {
                    format!("slow {:.1}s", *latency_ms as f64 / 1000.0)
                }
                crate::event::Health::Offline { .. } => "offline".to_string(),
            };
            match m.load.label() {
                "" => h,
                l => format!("{h} {l}"),
            }
        };
        for_screen(
            &format!("S {} · T {}", one(&s.student), one(&s.teacher)),
            60,
        )
    }

    fn log(&mut self, at: DateTime<Utc>, text: String, alert: bool) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogLine { at, text, alert });
    }
}

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Table,
    /// The live log of this device (its topic level).
    Log(String),
}

/// A key, as the fleet console understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Up,
    Down,
    Enter,
    Esc,
    Char(char),
    CtrlC,
}

/// What a key asks the run loop to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Publish `cmd/escalate` to this device (topic level).
    Escalate(String),
}

/// The whole fleet.
#[derive(Debug, Default)]
pub struct Fleet {
    pub prefix: String,
    pub devices: BTreeMap<String, Device>,
    /// Index into [`Fleet::order`].
    pub selected: usize,
    pub view: View,
    /// The broker connection, as the status line shows it.
    pub broker: String,
    /// A one-line message (command sent, broker trouble).
    pub notice: Option<String>,
    /// Devices heard but not kept (the cap); at most [`HIDDEN_TRACKED`] names.
    pub hidden: std::collections::BTreeSet<String>,
    /// The console's palette (`NO_COLOR`).
    pub theme: crate::tui::theme::Theme,
    /// Record the `ts` of each event for latency measurement (the bench).
    pub record_marks: bool,
    pub marks: Vec<DateTime<Utc>>,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .map(one_line)
        .unwrap_or_default()
}

fn one_line(s: &str) -> String {
    let clean = for_screen(s, MAX_TEXT * 2);
    for_screen(
        &clean.split_whitespace().collect::<Vec<_>>().join(" "),
        MAX_TEXT,
    )
}

impl Fleet {
    pub fn new(prefix: &str) -> Self {
        Fleet {
            prefix: prefix.to_string(),
            theme: crate::tui::theme::Theme::from_env(),
            ..Default::default()
        }
    }

    /// Take one broker message; true when something shown changed.
    pub fn apply(&mut self, topic: &str, payload: &[u8], now: DateTime<Utc>) -> bool {
        if payload.len() > MAX_PAYLOAD {
            return false;
        }
        let Some(t) = parse_fleet_topic(&self.prefix, topic) else {
            return false;
        };
        let name = t.device.to_string();
        // A cleared retained `available` (empty payload): the device is gone for good.
        if t.kind == "available" && payload.is_empty() {
            return self.devices.remove(&name).is_some();
        }
        if !self.devices.contains_key(&name) {
            if self.devices.len() >= MAX_DEVICES && !self.make_room(t.kind == "alert") {
                if self.hidden.len() < HIDDEN_TRACKED && !self.hidden.contains(&name) {
                    self.hidden.insert(name);
                    return true;
                }
                return false;
            }
            self.hidden.remove(&name);
            self.devices.insert(
                name.clone(),
                Device {
                    label: for_screen(&name, 40),
                    ..Default::default()
                },
            );
        }
        let record = self.record_marks;
        let d = self.devices.get_mut(&name).expect("inserted above");
        match t.kind {
            "available" => {
                d.online = Some(payload == b"online");
                true
            }
            "incident" => match super::incidents::parse(payload) {
                Some(i) => {
                    d.incidents = i;
                    true
                }
                None => false,
            },
            "state" => match serde_json::from_slice::<DeviceState>(payload) {
                Ok(s) => {
                    d.state = Some(s);
                    true
                }
                Err(_) => false,
            },
            "events" | "alert" => {
                let Ok(v) = serde_json::from_slice::<Value>(payload) else {
                    return false;
                };
                if record {
                    if let Some(ts) = v
                        .get("ts")
                        .and_then(Value::as_str)
                        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                    {
                        self.marks.push(ts);
                    }
                }
                if t.kind == "alert" {
                    d.open_alerts += 1;
                    let summary = text(&v, "summary");
                    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
                    d.log(now, format!("#{seq} SAFETY ALERT: {summary}"), true);
                    d.last_alert = Some(summary);
                    return true;
                }
                apply_event(d, &v, now)
            }
            _ => false,
        }
    }

    /// The cap is reached and a new device speaks: room for it only when it brings an
    /// alert. Then a device without open alerts goes (an offline one first, else the last
    /// in screen order), counted as hidden; when all have alerts, the cap stretches.
    fn make_room(&mut self, alert: bool) -> bool {
        if !alert {
            return false;
        }
        let victim = self
            .devices
            .iter()
            .filter(|(_, d)| d.open_alerts == 0)
            .min_by_key(|(_, d)| d.online == Some(true))
            .map(|(k, _)| k.clone());
        match victim {
            Some(v) => {
                self.devices.remove(&v);
                if self.hidden.len() < HIDDEN_TRACKED {
                    self.hidden.insert(v);
                }
                true
            }
            None => self.devices.len() < 2 * MAX_DEVICES,
        }
    }

    /// How many devices are not shown, as the top line says it (`12`, `10000+`).
    pub fn hidden_label(&self) -> Option<String> {
        match self.hidden.len() {
            0 => None,
            n if n >= HIDDEN_TRACKED => Some(format!("{n}+")),
            n => Some(n.to_string()),
        }
    }

    /// Device keys in screen order: the most urgent open incident first, then open alerts
    /// (most first), then online, then name.
    pub fn order(&self) -> Vec<&str> {
        let mut v: Vec<(&String, &Device)> = self.devices.iter().collect();
        v.sort_by(|a, b| {
            b.1.incidents
                .highest_level
                .cmp(&a.1.incidents.highest_level)
                .then(b.1.open_alerts.cmp(&a.1.open_alerts))
                .then((b.1.online == Some(true)).cmp(&(a.1.online == Some(true))))
                .then(a.0.cmp(b.0))
        });
        v.into_iter().map(|(k, _)| k.as_str()).collect()
    }

    /// The selected device's key.
    pub fn selected_device(&self) -> Option<String> {
        let order = self.order();
        order
            .get(self.selected.min(order.len().saturating_sub(1)))
            .map(|s| s.to_string())
    }

    pub fn key(&mut self, k: Key) -> Action {
        let n = self.devices.len();
        match (&self.view, k) {
            (_, Key::CtrlC) | (_, Key::Char('q')) => Action::Quit,
            (View::Table, Key::Up) | (View::Table, Key::Char('k')) => {
                self.selected = self.selected.min(n.saturating_sub(1)).saturating_sub(1);
                Action::None
            }
            (View::Table, Key::Down) | (View::Table, Key::Char('j')) => {
                self.selected = (self.selected + 1).min(n.saturating_sub(1));
                Action::None
            }
            (View::Table, Key::Enter) => {
                if let Some(d) = self.selected_device() {
                    self.view = View::Log(d);
                }
                Action::None
            }
            (View::Table, Key::Char('e')) => self.escalate(self.selected_device()),
            (View::Log(d), Key::Char('e')) => {
                let d = d.clone();
                self.escalate(Some(d))
            }
            (View::Table, Key::Char('a')) => {
                if let Some(d) = self.selected_device() {
                    if let Some(dev) = self.devices.get_mut(&d) {
                        dev.open_alerts = 0;
                    }
                }
                Action::None
            }
            (View::Log(_), Key::Esc) => {
                self.view = View::Table;
                Action::None
            }
            _ => Action::None,
        }
    }

    fn escalate(&mut self, d: Option<String>) -> Action {
        match d {
            Some(d) => {
                self.notice = Some(format!("escalation asked of {}", for_screen(&d, 40)));
                Action::Escalate(d)
            }
            None => Action::None,
        }
    }
}

/// A line of `<prefix>/D/events` (a session log line).
fn apply_event(d: &mut Device, v: &Value, now: DateTime<Utc>) -> bool {
    let seq = v.get("seq").and_then(Value::as_u64).unwrap_or(0);
    match v.get("type").and_then(Value::as_str) {
        Some("student_answer") => {
            // Confidence has its own column: not the contract's lines again.
            let raw = v.get("answer").and_then(Value::as_str).unwrap_or_default();
            let answer = one_line(&crate::roles::output_contract::without_contract_lines(raw));
            let conf = v
                .get("confidence")
                .and_then(Value::as_f64)
                .map(|c| c as f32);
            d.answers.push_back(now);
            while d
                .answers
                .front()
                .is_some_and(|t| now.signed_duration_since(*t).num_seconds() >= 60)
            {
                d.answers.pop_front();
            }
            let c = conf.map_or("—   ".to_string(), |c| format!("{c:.2}"));
            d.log(now, format!("#{seq} {c} {answer}"), false);
            d.last_answer = Some((answer, conf));
            true
        }
        Some("escalated") => {
            let reasons: Vec<String> = v
                .get("reasons")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get("kind").and_then(Value::as_str))
                        .map(one_line)
                        .collect()
                })
                .unwrap_or_default();
            d.log(
                now,
                format!("#{seq} escalated: {}", reasons.join(", ")),
                false,
            );
            true
        }
        Some("teacher_verdict") => {
            let verdict = v.get("verdict").cloned().unwrap_or(Value::Null);
            let agrees = verdict.get("agrees").and_then(Value::as_bool);
            // The alert rule, said once (`record::notify::is_alert`).
            let safety = serde_json::from_value::<crate::roles::verdict::Verdict>(verdict.clone())
                .is_ok_and(|v| crate::record::notify::is_alert(&v));
            if let Some(a) = agrees {
                d.seen_verdicts += 1;
                d.seen_agree += u64::from(a);
            }
            let word = match agrees {
                Some(true) => "AGREES",
                Some(false) => "DISAGREES",
                None => "UNSURE",
            };
            d.log(
                now,
                format!(
                    "#{seq} teacher {word}{}: {}",
                    if safety { " [SAFETY]" } else { "" },
                    text(&verdict, "summary")
                ),
                false,
            );
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, seq: u64, extra: &str) -> Vec<u8> {
        format!(r#"{{"type":"{kind}","seq":{seq}{extra}}}"#).into_bytes()
    }

    #[test]
    fn devices_appear_sort_with_alerts_first_and_vanish() {
        let now = Utc::now();
        let mut f = Fleet::new("ge");
        assert!(f.apply("ge/a/available", b"online", now));
        assert!(f.apply("ge/b/available", b"online", now));
        assert!(f.apply("ge/c/available", b"offline", now));
        assert_eq!(f.order(), ["a", "b", "c"]);
        f.apply("ge/c/alert", br#"{"seq":4,"summary":"Fire."}"#, now);
        assert_eq!(f.order(), ["c", "a", "b"]);
        assert_eq!(f.devices["c"].open_alerts, 1);
        assert!(f.apply("ge/b/available", b"", now));
        assert_eq!(f.order(), ["c", "a"]);
        // Acknowledge: `a` on the selected (first) row.
        assert_eq!(f.key(Key::Char('a')), Action::None);
        assert_eq!(f.devices["c"].open_alerts, 0);
        assert!(!f.apply("other/x/available", b"online", now));
        assert!(!f.apply("ge/x/cmd/escalate", b"PRESS", now));
    }

    #[test]
    fn answers_per_minute_agreement_and_log() {
        let t0 = Utc::now();
        let mut f = Fleet::new("ge");
        for i in 0..3 {
            let at = t0 + chrono::Duration::seconds(i * 30);
            f.apply(
                "ge/pi/events",
                &ev(
                    "student_answer",
                    i as u64,
                    r#","answer":"A cat\u001b[31m.","confidence":0.8"#,
                ),
                at,
            );
        }
        let d = &f.devices["pi"];
        assert_eq!(d.answers_per_minute(t0 + chrono::Duration::seconds(60)), 2);
        assert_eq!(d.last_answer.as_ref().unwrap().0, "A cat.");
        assert!(d.log.iter().all(|l| !l.text.contains('\u{1b}')));
        f.apply(
            "ge/pi/events",
            &ev(
                "teacher_verdict",
                2,
                r#","verdict":{"agrees":false,"summary":"A dog."}"#,
            ),
            t0,
        );
        assert_eq!(f.devices["pi"].agreement(), Some((0.0, 1)));
        assert!(f.devices["pi"]
            .log
            .back()
            .unwrap()
            .text
            .contains("DISAGREES: A dog."));
    }

    #[test]
    fn keys_open_the_log_and_escalate() {
        let now = Utc::now();
        let mut f = Fleet::new("ge");
        f.apply("ge/a/available", b"online", now);
        f.apply("ge/b/available", b"online", now);
        f.key(Key::Down);
        assert_eq!(f.key(Key::Char('e')), Action::Escalate("b".into()));
        f.key(Key::Enter);
        assert_eq!(f.view, View::Log("b".into()));
        assert_eq!(f.key(Key::Char('e')), Action::Escalate("b".into()));
        f.key(Key::Esc);
        assert_eq!(f.view, View::Table);
        assert_eq!(f.key(Key::Char('q')), Action::Quit);
    }

    #[test]
    fn at_the_cap_a_device_with_an_alert_is_never_dropped_and_the_hidden_are_counted() {
        let now = Utc::now();
        let mut f = Fleet::new("g");
        for i in 0..MAX_DEVICES {
            f.apply(&format!("g/fake{i:04}/available"), b"online", now);
        }
        f.apply("g/fake0007/available", b"offline", now);
        assert_eq!(f.devices.len(), MAX_DEVICES);
        // One more without an alert: not kept, but counted.
        f.apply("g/late/available", b"online", now);
        f.apply("g/late/state", b"{}", now);
        assert!(!f.devices.contains_key("late"));
        assert_eq!(f.hidden_label().as_deref(), Some("1"));
        // A new device's alert: it is kept, an offline device without alerts makes room.
        f.apply(
            "g/attic/alert",
            br#"{"seq":3,"summary":"Smoke in the attic"}"#,
            now,
        );
        assert_eq!(f.devices["attic"].open_alerts, 1);
        assert_eq!(f.order()[0], "attic", "alerts first");
        assert!(!f.devices.contains_key("fake0007"));
        assert_eq!(f.devices.len(), MAX_DEVICES);
        assert_eq!(f.hidden_label().as_deref(), Some("2"));
        // When every device kept has an alert, the cap stretches for one more.
        for d in f.devices.values_mut() {
            d.open_alerts = 1;
        }
        f.apply("g/cellar/alert", br#"{"seq":1,"summary":"Water"}"#, now);
        assert_eq!(f.devices.len(), MAX_DEVICES + 1);
    }

    fn state_json(teacher: crate::event::Health) -> Vec<u8> {
        let mut s = crate::mqtt::payload::DeviceState::new("pi");
        s.student.health = crate::event::Health::Ok { latency_ms: 800 };
        s.student.load = crate::event::ModelLoad::Loaded;
        s.teacher.health = teacher;
        s.counters.agreements = 3;
        s.counters.disagreements = 1;
        serde_json::to_vec(&s).unwrap()
    }

    #[test]
    fn health_is_compact_and_the_answer_has_no_contract_lines() {
        let now = Utc::now();
        let mut f = Fleet::new("g");
        let state = state_json(crate::event::Health::Offline {
            reason: "refused".into(),
            hint: "start it".into(),
        });
        f.apply("g/pi/state", &state, now);
        f.apply(
            "g/pi/events",
            br#"{"type":"student_answer","seq":1,"answer":"Smoke over the pan.\nSafety: smoke.\nCONFIDENCE: 0.90","confidence":0.9}"#,
            now,
        );
        let d = &f.devices["pi"];
        assert_eq!(d.health(), "S✓ T✗");
        assert!(
            d.health_detail().starts_with("S ok 0.8s"),
            "{}",
            d.health_detail()
        );
        assert_eq!(
            d.last_answer.as_ref().unwrap().0,
            "Smoke over the pan. Safety: smoke."
        );
    }
}
