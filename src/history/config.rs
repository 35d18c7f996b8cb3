//! `[history]` and `[incidents]` in config.toml: where the store lives, how much it keeps,
//! and how confirmed frames group into incidents.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[history]`: the SQLite store of everything the engine saw and decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// The store's file; empty = `history.db` in `[paths] logs`.
    pub path: PathBuf,
    /// Rows and frames older than this many days are removed (1–3650).
    pub keep_days: u32,
    /// The store, the frames and the session logs together stay under this many MB (16–1048576).
    pub max_mb: u64,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            path: PathBuf::new(),
            keep_days: 30,
            max_mb: 2048,
        }
    }
}

impl HistoryConfig {
    /// The store's path: `path`, else `<logs>/history.db`.
    pub fn resolved(&self, logs: &Path) -> PathBuf {
        if self.path.as_os_str().is_empty() {
            logs.join("history.db")
        } else {
            self.path.clone()
        }
    }
}

/// `[incidents]`: confirmed frames within `gap_secs` of each other are one incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IncidentsConfig {
    /// A confirmed frame within this many seconds of an open incident's last one joins it;
    /// the incident closes this long after its last confirmed frame (5–86400).
    pub gap_secs: u64,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        IncidentsConfig { gap_secs: 120 }
    }
}

/// Problems with these sections, for `Config::validate`.
pub fn validate(h: &HistoryConfig, i: &IncidentsConfig) -> Vec<String> {
    let mut p = Vec::new();
    if !(1..=3650).contains(&h.keep_days) {
        p.push(format!(
            "history.keep_days = {} is out of range: use 1 to 3650 days",
            h.keep_days
        ));
    }
    if !(16..=1_048_576).contains(&h.max_mb) {
        p.push(format!(
            "history.max_mb = {} is out of range: use 16 to 1048576 (MB)",
            h.max_mb
        ));
    }
    if !(5..=86_400).contains(&i.gap_secs) {
        p.push(format!(
            "incidents.gap_secs = {} is out of range: use 5 to 86400 seconds",
            i.gap_secs
        ));
    }
    p
}
