//! The `[student]` and `[teacher]` sections: one model server each (`HostConfig`), its API
//! kind, token caps and `keep_alive` (read like Ollama reads it).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One model server: the student on this device or the teacher on the LAN.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Base URL of the Ollama server, e.g. `http://127.0.0.1:11434`.
    pub host: String,
    pub model: String,
    /// Whole-call limit, connect to last byte.
    pub timeout_secs: u64,
    /// Gemma 4 "thinks" by default on Ollama; thinking costs seconds per frame on a Pi.
    pub think: bool,
    /// Sampling temperature; unset leaves the model's default.
    pub temperature: Option<f32>,
    /// Sent as `Authorization: Bearer …` (for a reverse proxy). Never logged or shown.
    pub api_key: Option<String>,
    /// Extra HTTP headers for every request to this host. Values are never logged or shown.
    pub headers: BTreeMap<String, String>,
    /// Retries after a 500/503 (teacher only; a student frame is skipped instead).
    pub max_retries: u32,
    /// Which API the host speaks: Ollama's, or the OpenAI-compatible one (vLLM,
    /// llama.cpp's server, LM Studio).
    pub kind: HostKind,
    /// Ask for token log-probabilities (Ollama 0.12.11+), to measure a confidence the
    /// model cannot fake. Servers without logprobs just leave it out.
    pub logprobs: bool,
    /// Most teacher calls per minute from this device (0 = no limit); many Pis can
    /// share one teacher.
    pub max_per_minute: u32,
    /// Most tokens in one answer (`num_predict` / `max_tokens`); 0 = no cap. A small model
    /// that loops would otherwise run until its context is full.
    pub max_tokens: u32,
    /// The model reads text only: frames are not sent, a note stands in for the image.
    /// For trying the pipeline with a text model; its answers cannot describe the frame.
    pub text_only: bool,
    /// How long Ollama keeps the model loaded after a call ends (sent with every call):
    /// a duration ("30m", "24h"), a number of seconds, negative = keep loaded, 0 = unload
    /// after each call, "" = not sent (the server's `OLLAMA_KEEP_ALIVE`, 5m by default).
    /// OpenAI-compatible hosts ignore it.
    pub keep_alive: KeepAlive,
    /// Load the model when monitoring starts and keep it loaded while it runs: reloaded
    /// before `keep_alive` runs out, after the server dropped it, and (teacher) as soon as
    /// a safety keyword appears in the student's streamed answer. Ollama hosts only.
    pub warm_up: bool,
}

/// `keep_alive` as written in the config: Ollama's duration string or a number of seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeepAlive {
    Seconds(f64),
    Text(String),
}

/// What a `keep_alive` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveSpan {
    /// Not sent: the server decides (`OLLAMA_KEEP_ALIVE`, 5 minutes unless set).
    ServerDefault,
    /// Negative: Ollama never unloads the model for idleness.
    Forever,
    /// Unloaded this long after the last call ends (zero: right after each call).
    For(Duration),
}

/// The default `keep_alive` of both roles (see `config.toml` for the trade-off).
pub const DEFAULT_KEEP_ALIVE: &str = "30m";

impl Default for KeepAlive {
    fn default() -> Self {
        KeepAlive::Text(DEFAULT_KEEP_ALIVE.into())
    }
}

impl KeepAlive {
    /// Read it like Ollama does (Go's `time.ParseDuration` for strings, seconds for
    /// numbers); Err says what is wrong.
    pub fn span(&self) -> Result<KeepAliveSpan, String> {
        match self {
            KeepAlive::Text(t) if t.trim().is_empty() => Ok(KeepAliveSpan::ServerDefault),
            KeepAlive::Text(t) => match parse_go_duration(t.trim())? {
                (true, _) => Ok(KeepAliveSpan::Forever),
                (false, d) => Ok(KeepAliveSpan::For(d)),
            },
            KeepAlive::Seconds(s) if !s.is_finite() => Err(format!("{s} is not a number")),
            KeepAlive::Seconds(s) if *s < 0.0 => Ok(KeepAliveSpan::Forever),
            KeepAlive::Seconds(s) if *s > 1e9 => Err(format!("{s} seconds is too long")),
            KeepAlive::Seconds(s) => Ok(KeepAliveSpan::For(Duration::from_secs_f64(*s))),
        }
    }

    /// The JSON value sent as `keep_alive` (None: not sent). Strings go as written, so the
    /// server reads exactly what the config says.
    pub fn wire(&self) -> Option<serde_json::Value> {
        match self {
            KeepAlive::Text(t) if t.trim().is_empty() => None,
            KeepAlive::Text(t) => Some(serde_json::Value::String(t.trim().to_string())),
            KeepAlive::Seconds(s) if s.fract() == 0.0 && s.abs() < 1e15 => {
                Some(serde_json::json!(*s as i64))
            }
            KeepAlive::Seconds(s) => Some(serde_json::json!(s)),
        }
    }
}

impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepAlive::Text(t) if t.trim().is_empty() => f.write_str("server default"),
            KeepAlive::Text(t) => f.write_str(t.trim()),
            KeepAlive::Seconds(s) => write!(f, "{s} s"),
        }
    }
}

/// Go's `time.ParseDuration`: an optional sign, then one or more decimal numbers each with
/// a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`), e.g. `"1h30m"`, `"2.5s"`; `"0"` alone
/// needs no unit. Returns (negative, magnitude).
fn parse_go_duration(s: &str) -> Result<(bool, Duration), String> {
    let bad =
        || format!("{s:?} is not a duration (use a number with a unit: \"30m\", \"24h\", \"90s\")");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok((false, Duration::ZERO));
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * secs;
    }
    // Go's Duration is an int64 of nanoseconds: about 292 years.
    if total > 9.2e9 {
        return Err(format!("{s:?} is longer than Ollama accepts"));
    }
    Ok((neg && total > 0.0, Duration::from_secs_f64(total)))
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HostKind {
    Ollama,
    Openai,
}

impl HostConfig {
    pub(super) fn student_default() -> Self {
        HostConfig {
            host: "http://127.0.0.1:11434".into(),
            model: "gemma4:e2b".into(),
            timeout_secs: 60,
            think: false,
            temperature: None,
            api_key: None,
            headers: BTreeMap::new(),
            max_retries: 0,
            kind: HostKind::Ollama,
            logprobs: true,
            max_per_minute: 0,
            max_tokens: DEFAULT_STUDENT_MAX_TOKENS,
            text_only: false,
            keep_alive: KeepAlive::default(),
            warm_up: true,
        }
    }
    pub(super) fn teacher_default() -> Self {
        HostConfig {
            host: "http://mac-mini.local:11434".into(),
            model: "gemma4:26b".into(),
            timeout_secs: 180,
            think: false,
            temperature: None,
            api_key: None,
            headers: BTreeMap::new(),
            max_retries: 2,
            kind: HostKind::Ollama,
            logprobs: false,
            max_per_minute: 0,
            max_tokens: DEFAULT_TEACHER_MAX_TOKENS,
            text_only: false,
            keep_alive: KeepAlive::default(),
            warm_up: true,
        }
    }
}

/// A student answer needs ~150 tokens (six short sentences and the confidence line).
pub const DEFAULT_STUDENT_MAX_TOKENS: u32 = 300;
/// A verdict needs ~500 tokens at most; upskill candidates (several prompts) more, so the
/// cap leaves room.
pub const DEFAULT_TEACHER_MAX_TOKENS: u32 = 1500;

impl Default for HostConfig {
    fn default() -> Self {
        HostConfig::student_default()
    }
}
