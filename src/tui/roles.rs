//! What the console knows about each model (student, teacher): name, host, health, load
//! state and latencies, one `RoleView` per role.

use crate::event::{Health, ModelLoad};
use std::collections::VecDeque;

/// Latencies kept for the median.
pub const LATENCY_WINDOW: usize = 50;

/// One model as the status bar and the panes show it.
#[derive(Debug, Clone)]
pub struct RoleView {
    /// `model@host`.
    pub name: String,
    /// The configured host, short (`http://host:port` → `host`).
    pub host: String,
    pub health: Health,
    /// Whether the model is loaded (Ollama hosts; `Unknown` shows nothing).
    pub load: ModelLoad,
    /// The last answers' latencies (ms), oldest first.
    pub latencies: VecDeque<u64>,
}

impl RoleView {
    pub fn new(model: &str, host_url: &str) -> Self {
        let host = short_host(host_url);
        RoleView {
            name: format!("{model}@{host}"),
            host,
            health: Health::Unknown,
            load: ModelLoad::Unknown,
            latencies: VecDeque::new(),
        }
    }

    /// `Started` may name the model alone; add the configured host then.
    pub fn set_name(&mut self, name: String) {
        self.name = if name.contains('@') || self.host.is_empty() {
            name
        } else {
            format!("{name}@{}", self.host)
        };
    }

    pub fn record_latency(&mut self, ms: u64) {
        self.latencies.push_back(ms);
        while self.latencies.len() > LATENCY_WINDOW {
            self.latencies.pop_front();
        }
    }

    pub fn last_latency(&self) -> Option<u64> {
        self.latencies.back().copied()
    }

    pub fn median_latency(&self) -> Option<u64> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = self.latencies.iter().copied().collect();
        v.sort_unstable();
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        })
    }
}

/// `http://host:port/x` → `host`.
pub fn short_host(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    let host = if hostport.starts_with('[') {
        hostport
            .split_once(']')
            .map_or(hostport, |(h, _)| h)
            .trim_start_matches('[')
    } else {
        hostport.rsplit_once(':').map_or(hostport, |(h, _)| h)
    };
    host.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_host_forms() {
        assert_eq!(short_host("http://127.0.0.1:11434"), "127.0.0.1");
        assert_eq!(short_host("https://mac-mini.local"), "mac-mini.local");
        assert_eq!(short_host("http://[::1]:11434/x"), "::1");
    }

    #[test]
    fn names_get_the_host_and_latencies_a_window() {
        let mut r = RoleView::new("gemma4:e2b", "http://127.0.0.1:11434");
        assert_eq!(r.name, "gemma4:e2b@127.0.0.1");
        r.set_name("gemma4:26b@mac".into());
        assert_eq!(r.name, "gemma4:26b@mac");
        r.set_name("other".into());
        assert_eq!(r.name, "other@127.0.0.1");
        for ms in 0..100 {
            r.record_latency(ms);
        }
        assert_eq!(r.latencies.len(), LATENCY_WINDOW);
        assert_eq!(r.last_latency(), Some(99));
    }
}
