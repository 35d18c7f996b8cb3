//! Telling someone: when the teacher confirms a safety-relevant frame (never on the
//! student's word alone), POST a JSON alert to a webhook and/or run a command, at most
//! once per `min_interval_secs` (alerts in between are counted and reported with the next).

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
}

/// The rate limit, separate from I/O so it can be tested alone.
#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(interval: Duration) -> Self {
        RateLimit {
            interval,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(suppressed since the last one)` when an alert may go out at `now`.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.interval => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
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

    /// Send one alert by every configured way; returns what went out, or the errors.
    pub async fn send(&self, alert: &Alert) -> Result<Vec<&'static str>, String> {
        let mut sent = Vec::new();
        let mut errors = Vec::new();
        if !self.config.webhook.trim().is_empty() {
            match self
                .http
                .post(&self.config.webhook)
                .json(alert)
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => sent.push("webhook"),
                Ok(r) => errors.push(format!("webhook answered HTTP {}", r.status().as_u16())),
                Err(e) => errors.push(format!("webhook: {e}")),
            }
        }
        if !self.config.command.trim().is_empty() {
            match self.run_command(alert).await {
                Ok(()) => sent.push("command"),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(sent)
        } else {
            Err(errors.join("; "))
        }
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
        assert_eq!(r.allow(t0 + Duration::from_secs(10)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(20)), None);
        assert_eq!(r.allow(t0 + Duration::from_secs(61)), Some(2));
        assert_eq!(r.allow(t0 + Duration::from_secs(62)), None);
    }

    #[test]
    fn nothing_configured_means_no_notifier() {
        assert!(Notifier::new(&NotifyConfig::default()).is_none());
    }
}
