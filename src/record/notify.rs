//! Telling someone: when the teacher confirms a safety-relevant frame (never on the
//! student's word alone), POST a JSON alert to a webhook and/or run a command, at most
//! once per `min_interval_secs` (alerts in between are counted and reported with the next).
//!
//! Only a send that worked uses up the interval: a failed one frees the slot again (the
//! next confirmed frame goes out) and is retried. What goes out is model text made safe
//! first ([`Alert::cleaned`]): one line of printable text per field, so a NUL cannot make
//! the command fail to start and escapes or newlines never reach a shell or a terminal.

use crate::config::NotifyConfig;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What an alert says.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    pub device: String,
    pub seq: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub summary: String,
    pub missed: Vec<String>,
    pub wrong: Vec<String>,
    pub reasons: Vec<String>,
    pub frame_path: Option<PathBuf>,
    /// Alerts held back by the rate limit since the previous one.
    pub suppressed: u64,
    /// The incident this alert is about (alerts go per incident: open, raise, close).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentAlert>,
}

/// An alert's incident: which change it reports and how the incident stands.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentAlert {
    pub id: u64,
    /// `open`, `raise` or `close`.
    pub change: String,
    /// 1 worth a look, 2 urgent.
    pub level: u8,
    pub title: String,
    pub frames: u64,
    /// From its first confirmed frame to its close (or its last frame while open).
    pub duration_secs: i64,
}

/// Longest text of one alert field (a summary, a missed or wrong item).
pub const MAX_FIELD_CHARS: usize = 500;

/// Model text as one line of printable text: escape sequences and control characters
/// (NUL included) and invisible format characters removed, line breaks and tabs made
/// spaces, runs of spaces collapsed, at most [`MAX_FIELD_CHARS`] characters.
pub fn one_line(s: &str) -> String {
    let stripped = crate::reading::sanitize::strip_controls(s);
    let joined = stripped.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::reading::sanitize::bound(&joined, MAX_FIELD_CHARS)
}

impl Alert {
    /// Every text field through [`one_line`] (the frame path too: it is shown and passed on).
    pub fn cleaned(&self) -> Alert {
        Alert {
            device: one_line(&self.device),
            summary: one_line(&self.summary),
            missed: self.missed.iter().map(|s| one_line(s)).collect(),
            wrong: self.wrong.iter().map(|s| one_line(s)).collect(),
            reasons: self.reasons.iter().map(|s| one_line(s)).collect(),
            frame_path: self
                .frame_path
                .as_ref()
                .map(|p| PathBuf::from(one_line(&p.display().to_string()))),
            incident: self.incident.as_ref().map(|i| IncidentAlert {
                title: one_line(&i.title),
                ..i.clone()
            }),
            ..self.clone()
        }
    }
}

/// The alert rule: the *teacher* confirmed the frame is safety-relevant (never the
/// student's word alone). The engine's notifier and the MQTT bridge both apply it.
pub fn is_alert(verdict: &crate::roles::verdict::Verdict) -> bool {
    verdict.safety_relevant == Some(true)
}

/// The rate limit, separate from I/O so it can be tested alone.
///
/// [`allow`](Self::allow) reserves the slot; only [`sent`](Self::sent) uses up the
/// interval. [`failed`](Self::failed) frees it again, so a send that failed (a webhook
/// down, a command that exited non-zero) does not silence the alerts after it.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    /// When the last alert went out.
    last: Option<Instant>,
    /// An alert is being sent: the others wait (counted) until it worked or failed.
    in_flight: bool,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            in_flight: false,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last one)` when an alert may go out at `now`; the slot is
    /// then reserved until [`sent`](Self::sent) or [`failed`](Self::failed).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        let too_soon = self
            .last
            .is_some_and(|t| now.duration_since(t) < self.interval);
        if self.in_flight || too_soon {
            self.suppressed += 1;
            return None;
        }
        self.in_flight = true;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// The reserved alert went out at `now`: the interval starts.
    pub fn sent(&mut self, now: Instant) {
        self.in_flight = false;
        self.last = Some(now);
    }

    /// The reserved alert failed: the slot is free again, and the `held` alerts it was
    /// reporting are given back to be reported by the next one.
    pub fn failed(&mut self, held: u64) {
        self.in_flight = false;
        self.suppressed += held;
    }
}

/// One way an alert goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    Webhook,
    Command,
}

impl Way {
    pub fn name(self) -> &'static str {
        match self {
            Way::Webhook => "webhook",
            Way::Command => "command",
        }
    }
}

/// Sends alerts where the config says.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotifyConfig,
    http: reqwest::Client,
}

impl Notifier {
    /// None when neither a webhook nor a command is configured.
    pub fn new(config: &NotifyConfig) -> Option<Self> {
        if config.webhook.trim().is_empty() && config.command.trim().is_empty() {
            return None;
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .ok()?;
        Some(Notifier {
            config: config.clone(),
            http,
        })
    }

    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.config.min_interval_secs)
    }

    /// The ways the config names.
    pub fn ways(&self) -> Vec<Way> {
        let mut w = Vec::new();
        if !self.config.webhook.trim().is_empty() {
            w.push(Way::Webhook);
        }
        if !self.config.command.trim().is_empty() {
            w.push(Way::Command);
        }
        w
    }

    /// Send one alert by every configured way; returns what went out, or the errors.
    /// The alert is [`cleaned`](Alert::cleaned) first.
    pub async fn send(&self, alert: &Alert) -> Result<Vec<&'static str>, String> {
        let (sent, failed) = self.send_by(alert, &self.ways()).await;
        if failed.is_empty() {
            Ok(sent.iter().map(|w| w.name()).collect())
        } else {
            Err(failed
                .into_iter()
                .map(|f| f.1)
                .collect::<Vec<_>>()
                .join("; "))
        }
    }

    /// Send one alert by `ways` (so a retry repeats only what failed): the ways that
    /// worked, and those that failed with why. The alert is [`cleaned`](Alert::cleaned)
    /// first.
    pub async fn send_by(&self, alert: &Alert, ways: &[Way]) -> (Vec<Way>, Vec<(Way, String)>) {
        let alert = &alert.cleaned();
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for &way in ways {
            let result = match way {
                Way::Webhook => {
                    match self
                        .http
                        .post(&self.config.webhook)
                        .json(alert)
                        .send()
                        .await
                    {
                        Ok(r) if r.status().is_success() => Ok(()),
                        Ok(r) => Err(format!("webhook answered HTTP {}", r.status().as_u16())),
                        Err(e) => Err(format!("webhook: {e}")),
                    }
                }
                Way::Command => self.run_command(alert).await,
            };
            match result {
                Ok(()) => sent.push(way),
                Err(e) => failed.push((way, e)),
            }
        }
        (sent, failed)
    }

    async fn run_command(&self, alert: &Alert) -> Result<(), String> {
        let json = serde_json::to_string(alert).map_err(|e| e.to_string())?;
        let mut cmd = tokio::process::Command::new("sh");
        cmd.arg("-c")
            .arg(&self.config.command)
            .env("GEMMAEDGE_DEVICE", &alert.device)
            .env("GEMMAEDGE_SEQ", alert.seq.to_string())
            .env("GEMMAEDGE_SUMMARY", &alert.summary)
            .env(
                "GEMMAEDGE_FRAME",
                alert
                    .frame_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            )
            .env("GEMMAEDGE_JSON", json)
            .env(
                "GEMMAEDGE_INCIDENT",
                alert
                    .incident
                    .as_ref()
                    .map_or(String::new(), |i| i.id.to_string()),
            )
            .env(
                "GEMMAEDGE_CHANGE",
                alert.incident.as_ref().map_or("", |i| i.change.as_str()),
            )
            .env(
                "GEMMAEDGE_LEVEL",
                alert
                    .incident
                    .as_ref()
                    .map_or(String::new(), |i| i.level.to_string()),
            )
            .env(
                "GEMMAEDGE_TITLE",
                alert.incident.as_ref().map_or("", |i| i.title.as_str()),
            )
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = cmd.spawn().map_err(|e| format!("notify command: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await {
            Ok(Ok(out)) if out.status.success() => Ok(()),
            Ok(Ok(out)) => Err(format!("notify command exited with {}", out.status)),
            Ok(Err(e)) => Err(format!("notify command: {e}")),
            Err(_) => Err("notify command took longer than 30 s".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_counts_what_it_holds_back() {
        let mut r = RateLimit::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(r.allow(t0), Some(0));
        r.sent(t0);
        assert_eq!(r.allow(t0 + Duration::from_secs(10)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(20)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(61)), Some(2));
        r.sent(t0 + Duration::from_secs(61));
        assert_eq!(r.allow(t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn a_failed_send_frees_the_slot_and_gives_back_its_count() {
        let mut r = RateLimit::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(r.allow(t0), Some(0));
        r.sent(t0);
        assert_eq!(r.allow(t0 + Duration::from_secs(30)), None);
        // The next one goes out after the interval, carrying the one held back...
        assert_eq!(r.allow(t0 + Duration::from_secs(61)), Some(1));
        // ...meanwhile another waits for it...
        assert_eq!(r.allow(t0 + Duration::from_secs(62)), None);
        // ...and it fails: the slot is free at once, and nothing is forgotten.
        r.failed(1);
        assert_eq!(r.allow(t0 + Duration::from_secs(63)), Some(2));
        r.sent(t0 + Duration::from_secs(63));
        assert_eq!(r.allow(t0 + Duration::from_secs(64)), None);
    }

    #[test]
    fn alert_fields_become_one_printable_line() {
        let a = Alert {
            incident: None,
            device: "pi\u{0}".into(),
            seq: 1,
            at: chrono::Utc::now(),
            summary: "Smoke\u{0} \x1b]52;c;cm0gLXJmIH4=\x07rises\n\nfrom a \u{9b}2Jpan\u{202e}. *"
                .into(),
            missed: vec!["fire\r\n\x1b[2J".into()],
            wrong: vec!["x".repeat(MAX_FIELD_CHARS + 10)],
            reasons: vec!["safety keyword: smoke".into()],
            frame_path: None,
            suppressed: 0,
        }
        .cleaned();
        assert_eq!(a.device, "pi");
        assert_eq!(a.summary, "Smoke rises from a pan. *");
        assert_eq!(a.missed, vec!["fire".to_string()]);
        assert!(a.wrong[0].starts_with(&"x".repeat(MAX_FIELD_CHARS)));
        assert!(a.wrong[0].ends_with("[cut 10 chars]"));
    }

    #[test]
    fn nothing_configured_means_no_notifier() {
        assert!(Notifier::new(&NotifyConfig::default()).is_none());
    }
}
