//! `config.toml`: every key, its default, and validation with errors a user can act on.
//!
//! Lookup order when no `--config` is given: `./config.toml`, then
//! `$XDG_CONFIG_HOME/gemmaedge/config.toml` (or `~/.config/...`), then built-in defaults.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything the program reads from `config.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub student: HostConfig,
    pub teacher: HostConfig,
    pub source: SourceConfig,
    pub frame: FrameConfig,
    pub policy: PolicyConfig,
    pub paths: PathsConfig,
    pub upskill: UpskillConfig,
    pub console: ConsoleConfig,
    pub privacy: PrivacyConfig,
    pub device: DeviceConfig,
    pub notify: NotifyConfig,
    pub eval: EvalConfig,
    #[serde(default)]
    pub mqtt: crate::mqtt::MqttConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            student: HostConfig::student_default(),
            teacher: HostConfig::teacher_default(),
            source: SourceConfig::default(),
            frame: FrameConfig::default(),
            policy: PolicyConfig::default(),
            paths: PathsConfig::default(),
            upskill: UpskillConfig::default(),
            console: ConsoleConfig::default(),
            privacy: PrivacyConfig::default(),
            device: DeviceConfig::default(),
            notify: NotifyConfig::default(),
            eval: EvalConfig::default(),
            mqtt: crate::mqtt::MqttConfig::default(),
        }
    }
}

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
    fn student_default() -> Self {
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
    fn teacher_default() -> Self {
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Camera,
    Folder,
    File,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    pub kind: SourceKind,
    pub camera_index: u32,
    /// Folder of images, or one image file.
    pub path: String,
    /// Frames offered per second; the student takes the newest when it is free.
    pub fps: f64,
    /// When the camera cannot be opened at start, fall back to this folder of sample
    /// photos (empty: no fallback, keep retrying the camera).
    pub fallback_path: String,
    /// Share of the 64 perceptual-hash bits that must differ from the last answered
    /// frame for a new frame to go to the student (0 = send every frame).
    pub min_change: f64,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::Camera,
            camera_index: 0,
            path: String::new(),
            fps: 1.0,
            fallback_path: "eval/images".into(),
            min_change: 0.05,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FrameConfig {
    /// Longest side of the JPEG sent to a model.
    pub max_side: u32,
    pub jpeg_quality: u8,
}

impl Default for FrameConfig {
    fn default() -> Self {
        FrameConfig {
            max_side: 768,
            jpeg_quality: 80,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    pub confidence_threshold: f32,
    /// Audit one in N frames that nothing else escalated; 0 = off.
    pub audit_every: u32,
    pub safety_keywords: Vec<String>,
    /// Most frames waiting for the teacher; when full the lowest-priority oldest is dropped.
    pub teacher_queue: usize,
    /// Which confidence the policy uses: what the student says, what its token
    /// probabilities measure, or the lower of the two.
    pub confidence: ConfidenceMode,
    /// Warn when more than this share of the answers in the last 5 minutes escalate
    /// (an escalation storm floods the teacher queue); 0 = never warn.
    pub storm_share: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ConfidenceMode {
    Stated,
    Measured,
    Min,
}

pub const DEFAULT_SAFETY_KEYWORDS: &[&str] = &[
    "smoke",
    "fire",
    "flame",
    "hazard",
    "danger",
    "injury",
    "fallen",
    "weapon",
    "blood",
    "emergency",
    "suspicious",
    "unusual",
];

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            confidence_threshold: 0.55,
            audit_every: 10,
            safety_keywords: DEFAULT_SAFETY_KEYWORDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            teacher_queue: 8,
            confidence: ConfidenceMode::Stated,
            storm_share: 0.5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    pub skills: PathBuf,
    pub eval: PathBuf,
    pub logs: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        PathsConfig {
            skills: "skills".into(),
            eval: "eval".into(),
            logs: "logs".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UpskillConfig {
    /// How many candidate prompts the teacher writes.
    pub candidates: usize,
    /// Student calls at a time while scoring (a Pi runs one inference at a time).
    pub concurrency: usize,
    /// A candidate must beat the baseline by this much (train score, 0..1) to replace the skill.
    pub min_improvement: f64,
    /// Candidate prompts longer than this are dropped.
    pub max_prompt_chars: usize,
    /// Bootstrap resamples for the improvement interval.
    pub bootstrap_samples: usize,
}

impl Default for UpskillConfig {
    fn default() -> Self {
        UpskillConfig {
            candidates: 4,
            concurrency: 1,
            min_improvement: 0.02,
            max_prompt_chars: 2000,
            bootstrap_samples: 1000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Student log entries kept in memory.
    pub history: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig { history: 1000 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// Save escalated frames under `logs/frames/`.
    pub save_frames: bool,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        PrivacyConfig { save_frames: true }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DeviceConfig {
    /// This device's name in the log and in teacher verdicts (default: the hostname).
    pub name: String,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig { name: hostname() }
    }
}

/// The machine's hostname, or `edge` when it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "edge".into())
}

/// Tell someone when the teacher confirms a safety-relevant frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// JSON POST to this URL ("" = off).
    pub webhook: String,
    /// Run this through `sh -c` with GEMMAEDGE_* variables set ("" = off).
    pub command: String,
    /// At most one notification per this many seconds; the rest are counted.
    pub min_interval_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: String::new(),
            command: String::new(),
            min_interval_secs: 300,
        }
    }
}

/// A config that cannot be used. Displayed as one or more lines a user can act on.
/// How eval and upskill score a skill: sampling fixed so two runs give the same scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Student temperature while scoring (0 = greedy, reproducible).
    pub temperature: f32,
    /// Sampling seed sent with every scoring call.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            temperature: 0.0,
            seed: 42,
        }
    }
}

#[derive(Debug)]
pub enum ConfigError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// TOML syntax error, or a value of the wrong type, or an unknown key.
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A value of the right type but outside what is allowed.
    Invalid {
        path: PathBuf,
        problems: Vec<String>,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, error } => {
                write!(f, "cannot read config {}: {error}", path.display())
            }
            ConfigError::Parse {
                path,
                line,
                column,
                message,
            } => write!(
                f,
                "config error in {} at line {line}, column {column}: {message}",
                path.display()
            ),
            ConfigError::Invalid { path, problems } => {
                write!(f, "config error in {}:", path.display())?;
                for p in problems {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

/// Where the config came from, for the status line and `check`.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigOrigin {
    File(PathBuf),
    BuiltIn,
}

impl fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigOrigin::File(p) => write!(f, "{}", p.display()),
            ConfigOrigin::BuiltIn => write!(f, "built-in defaults"),
        }
    }
}

impl Config {
    /// Load the config: an explicit path must exist; otherwise the lookup order applies.
    pub fn load(explicit: Option<&Path>) -> Result<(Config, ConfigOrigin), ConfigError> {
        if let Some(p) = explicit {
            return Ok((Self::load_file(p)?, ConfigOrigin::File(p.to_path_buf())));
        }
        for candidate in default_locations() {
            if candidate.is_file() {
                return Ok((Self::load_file(&candidate)?, ConfigOrigin::File(candidate)));
            }
        }
        let mut cfg = Config::default();
        cfg.apply_env();
        Ok((cfg, ConfigOrigin::BuiltIn))
    }

    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let text = crate::bounded_read::read_regular_string(
            path,
            crate::bounded_read::MAX_CONFIG_FILE_BYTES,
        )
        .map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse_str(&text, path)
    }

    /// Parse and validate TOML text; `path` is only used in messages.
    pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let host_in_file = student_host_given(text);
        let mut cfg: Config = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        if !host_in_file {
            cfg.apply_env();
        }
        cfg.validate().map_err(|problems| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        })?;
        Ok(cfg)
    }

    /// `OLLAMA_HOST`, when set, overrides the student's default host.
    fn apply_env(&mut self) {
        if let Ok(h) = std::env::var("OLLAMA_HOST") {
            let h = h.trim();
            if !h.is_empty() {
                self.student.host = normalize_ollama_host(h);
            }
        }
    }

    /// Every problem at once, each naming the key, the value and what is allowed.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut p = Vec::new();
        for (name, h) in [("student", &self.student), ("teacher", &self.teacher)] {
            if !(h.host.starts_with("http://") || h.host.starts_with("https://")) {
                p.push(format!(
                    "{name}.host must start with http:// or https://, got {:?}",
                    h.host
                ));
            }
            if h.model.trim().is_empty() {
                p.push(format!("{name}.model must not be empty"));
            }
            if h.timeout_secs == 0 || h.timeout_secs > 3600 {
                p.push(format!(
                    "{name}.timeout_secs must be between 1 and 3600, got {}",
                    h.timeout_secs
                ));
            }
            if let Some(t) = h.temperature {
                if !(0.0..=2.0).contains(&t) {
                    p.push(format!(
                        "{name}.temperature must be between 0.0 and 2.0, got {t}"
                    ));
                }
            }
            if h.max_tokens > 32_768 {
                p.push(format!(
                    "{name}.max_tokens must be between 0 (no cap) and 32768, got {}",
                    h.max_tokens
                ));
            } else if (1..32).contains(&h.max_tokens) {
                p.push(format!(
                    "{name}.max_tokens must be 0 (no cap) or at least 32 (an answer needs room), got {}",
                    h.max_tokens
                ));
            }
            if let Err(why) = h.keep_alive.span() {
                p.push(format!(
                    "{name}.keep_alive must be a duration like \"30m\", \"24h\", \"90s\", a number of \
                     seconds (-1 = keep loaded, 0 = unload after each call) or \"\" (the server's \
                     default): {why}"
                ));
            }
            if h.max_retries > 10 {
                p.push(format!(
                    "{name}.max_retries must be between 0 and 10, got {}",
                    h.max_retries
                ));
            }
        }
        if !(self.source.fps > 0.0 && self.source.fps <= 120.0) {
            p.push(format!(
                "source.fps must be above 0 and at most 120, got {}",
                self.source.fps
            ));
        }
        if matches!(self.source.kind, SourceKind::Folder | SourceKind::File)
            && self.source.path.trim().is_empty()
        {
            p.push(format!(
                "source.path must name {} when source.kind = \"{}\"",
                if self.source.kind == SourceKind::Folder {
                    "a folder of images"
                } else {
                    "an image file"
                },
                if self.source.kind == SourceKind::Folder {
                    "folder"
                } else {
                    "file"
                }
            ));
        }
        if !(0.0..=1.0).contains(&self.source.min_change) {
            p.push(format!(
                "source.min_change must be between 0.0 and 1.0, got {}",
                self.source.min_change
            ));
        }
        let webhook = &self.notify.webhook;
        if !webhook.is_empty()
            && !webhook.starts_with("http://")
            && !webhook.starts_with("https://")
        {
            p.push(format!(
                "notify.webhook must start with http:// or https://, got {:?}",
                self.notify.webhook
            ));
        }
        if self.device.name.trim().is_empty() {
            p.push("device.name must not be empty".into());
        }
        if !(32..=4096).contains(&self.frame.max_side) {
            p.push(format!(
                "frame.max_side must be between 32 and 4096, got {}",
                self.frame.max_side
            ));
        }
        if !(1..=100).contains(&self.frame.jpeg_quality) {
            p.push(format!(
                "frame.jpeg_quality must be between 1 and 100, got {}",
                self.frame.jpeg_quality
            ));
        }
        let t = self.policy.confidence_threshold;
        if !(0.0..=1.0).contains(&t) {
            p.push(format!(
                "policy.confidence_threshold must be between 0.0 and 1.0, got {t}"
            ));
        }
        if self
            .policy
            .safety_keywords
            .iter()
            .any(|k| k.trim().is_empty())
        {
            p.push("policy.safety_keywords must not contain an empty word".into());
        }
        if !(0.0..=1.0).contains(&self.policy.storm_share) {
            p.push(format!(
                "policy.storm_share must be between 0.0 (off) and 1.0, got {}",
                self.policy.storm_share
            ));
        }
        if self.policy.teacher_queue == 0 || self.policy.teacher_queue > 1000 {
            p.push(format!(
                "policy.teacher_queue must be between 1 and 1000, got {}",
                self.policy.teacher_queue
            ));
        }
        if self.upskill.candidates == 0 || self.upskill.candidates > 32 {
            p.push(format!(
                "upskill.candidates must be between 1 and 32, got {}",
                self.upskill.candidates
            ));
        }
        if self.upskill.concurrency == 0 || self.upskill.concurrency > 64 {
            p.push(format!(
                "upskill.concurrency must be between 1 and 64, got {}",
                self.upskill.concurrency
            ));
        }
        if !(0.0..=1.0).contains(&self.upskill.min_improvement) {
            p.push(format!(
                "upskill.min_improvement must be between 0.0 and 1.0, got {}",
                self.upskill.min_improvement
            ));
        }
        if self.upskill.max_prompt_chars < 20 {
            p.push(format!(
                "upskill.max_prompt_chars must be at least 20, got {}",
                self.upskill.max_prompt_chars
            ));
        }
        if !(10..=100_000).contains(&self.upskill.bootstrap_samples) {
            p.push(format!(
                "upskill.bootstrap_samples must be between 10 and 100000, got {}",
                self.upskill.bootstrap_samples
            ));
        }
        if !(0.0..=2.0).contains(&self.eval.temperature) {
            p.push(format!(
                "eval.temperature must be between 0.0 and 2.0, got {}",
                self.eval.temperature
            ));
        }
        if !(10..=100_000).contains(&self.console.history) {
            p.push(format!(
                "console.history must be between 10 and 100000, got {}",
                self.console.history
            ));
        }
        p.extend(crate::mqtt::config::validate(&self.mqtt, &self.device.name));
        if p.is_empty() {
            Ok(())
        } else {
            Err(p)
        }
    }

    /// The skill file the student uses.
    pub fn skill_path(&self) -> PathBuf {
        self.paths.skills.join("skill.txt")
    }
}

fn default_locations() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("config.toml")];
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(x).join("gemmaedge/config.toml"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|s| !s.is_empty()) {
        v.push(PathBuf::from(home).join(".config/gemmaedge/config.toml"));
    }
    v
}

/// `OLLAMA_HOST` may be `0.0.0.0`, `host:port` or a full URL; make it a URL.
/// Like Ollama's own client: without a scheme the port defaults to 11434; with one,
/// the scheme's default port applies.
pub fn normalize_ollama_host(h: &str) -> String {
    let url = if h.starts_with("http://") || h.starts_with("https://") {
        h.to_string()
    } else {
        let (hp, path) = h.split_once('/').map_or((h, ""), |(a, b)| (a, b));
        let has_port = hp
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let hp = if has_port {
            hp.to_string()
        } else {
            format!("{hp}:11434")
        };
        if path.is_empty() {
            format!("http://{hp}")
        } else {
            format!("http://{hp}/{path}")
        }
    };
    // 0.0.0.0 is where a server listens, not where a client connects.
    url.replace("://0.0.0.0", "://127.0.0.1")
        .trim_end_matches('/')
        .to_string()
}

/// True when the TOML text sets `[student] host` itself (then OLLAMA_HOST does not override it).
fn student_host_given(text: &str) -> bool {
    let Ok(v) = text.parse::<toml::Table>() else {
        return false;
    };
    v.get("student")
        .and_then(|s| s.as_table())
        .is_some_and(|t| t.contains_key("host"))
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
    let raw = e.message().trim().to_string();
    let section = e
        .span()
        .map(|s| section_at(text, s.start))
        .unwrap_or_default();
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        message: improve_message(&raw, &section),
    }
}

/// The `[table]` header in force at `offset`, for naming keys as `table.key`.
fn section_at(text: &str, offset: usize) -> String {
    let mut section = String::new();
    let mut pos = 0;
    for l in text.split_inclusive('\n') {
        if pos > offset {
            break;
        }
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[[") {
            if let Some(end) = t.find(']') {
                section = t[1..end].trim().to_string();
            }
        }
        pos += l.len();
    }
    section
}

/// Turn serde's `unknown field `x`, expected one of `a`, `b`` into a suggestion.
fn improve_message(raw: &str, section: &str) -> String {
    if let Some(rest) = raw.strip_prefix("unknown field `") {
        if let Some((name, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            let key = if section.is_empty() {
                name.to_string()
            } else {
                format!("{section}.{name}")
            };
            // Nearest by edit distance (a swap of two letters counts as one edit).
            let best = expected
                .iter()
                .map(|c| (strsim::damerau_levenshtein(name, c), *c))
                .min_by_key(|x| x.0);
            let allowed = (name.chars().count() / 3).max(1);
            return match best {
                Some((dist, c)) if dist <= allowed => {
                    format!("unknown key `{key}`; did you mean `{c}`?")
                }
                _ if !expected.is_empty() => format!(
                    "unknown key `{key}`; valid keys here: {}",
                    expected.join(", ")
                ),
                _ => format!("unknown key `{key}`"),
            };
        }
    }
    if let Some(rest) = raw.strip_prefix("unknown variant `") {
        if let Some((name, tail)) = rest.split_once('`') {
            let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
            return format!(
                "`{name}` is not allowed here; use one of: {}",
                expected
                    .iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    raw.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, ConfigError> {
        Config::parse_str(t, Path::new("config.toml"))
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("[student]\nhost = \"http://127.0.0.1:11434\"\n").unwrap();
        assert_eq!(c.teacher.model, "gemma4:26b");
        assert_eq!(c.policy.confidence_threshold, 0.55);
        assert_eq!(c.frame.max_side, 768);
    }

    #[test]
    fn shipped_config_parses_and_matches_defaults_for_policy() {
        let text = include_str!("../config.toml");
        let c = parse(text).expect("shipped config.toml must parse");
        assert_eq!(c.policy, PolicyConfig::default());
        let d = Config::default();
        for (shipped, default) in [(&c.student, &d.student), (&c.teacher, &d.teacher)] {
            assert_eq!(shipped.keep_alive, default.keep_alive);
            assert_eq!(shipped.warm_up, default.warm_up);
        }
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let e = parse("[policy]\nconfidence_threshold = = 0.5\n").unwrap_err();
        match e {
            ConfigError::Parse { line, column, .. } => {
                assert_eq!(line, 2);
                assert!(column > 1);
            }
            other => panic!("expected parse error, got {other}"),
        }
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        let e = parse("[policy]\nconfidence_threshold = 1.5\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "config error in config.toml:\n  - policy.confidence_threshold must be between 0.0 and 1.0, got 1.5"
        );
    }

    #[test]
    fn unknown_key_suggests_nearest() {
        let e = parse("[policy]\nconfidence_treshold = 0.5\n").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("unknown key `policy.confidence_treshold`"),
            "{s}"
        );
        assert!(s.contains("did you mean `confidence_threshold`"), "{s}");
        assert!(s.contains("line 2"), "{s}");
    }

    #[test]
    fn unknown_source_kind_lists_allowed() {
        let e = parse("[source]\nkind = \"webcam\"\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("\"camera\""), "{s}");
        assert!(s.contains("\"folder\""), "{s}");
    }

    #[test]
    fn folder_without_path_is_invalid() {
        let e = parse("[source]\nkind = \"folder\"\n").unwrap_err();
        assert!(e.to_string().contains("source.path"));
    }

    #[test]
    fn keep_alive_forms_read_like_ollama() {
        let ka = |t: &str| {
            parse(&format!("[teacher]\nkeep_alive = {t}\n")).map(|c| {
                (
                    c.teacher.keep_alive.span().unwrap(),
                    c.teacher.keep_alive.wire(),
                )
            })
        };
        let mins = |m: u64| KeepAliveSpan::For(Duration::from_secs(m * 60));
        assert_eq!(
            ka("\"30m\"").unwrap(),
            (mins(30), Some(serde_json::json!("30m")))
        );
        assert_eq!(ka("\"1h30m\"").unwrap().0, mins(90));
        assert_eq!(
            ka("\"2.5s\"").unwrap().0,
            KeepAliveSpan::For(Duration::from_millis(2500))
        );
        assert_eq!(ka("\"0\"").unwrap().0, KeepAliveSpan::For(Duration::ZERO));
        assert_eq!(ka("\"-1m\"").unwrap().0, KeepAliveSpan::Forever);
        assert_eq!(
            ka("-1").unwrap(),
            (KeepAliveSpan::Forever, Some(serde_json::json!(-1)))
        );
        assert_eq!(ka("300").unwrap(), (mins(5), Some(serde_json::json!(300))));
        assert_eq!(
            ka("1.5").unwrap(),
            (
                KeepAliveSpan::For(Duration::from_millis(1500)),
                Some(serde_json::json!(1.5))
            )
        );
        assert_eq!(ka("\"\"").unwrap(), (KeepAliveSpan::ServerDefault, None));
        // Go's ParseDuration wants a unit: Ollama would answer every call with a 400.
        for bad in [
            "\"5\"",
            "\"5 min\"",
            "\"forever\"",
            "\"1d\"",
            "\"-\"",
            "\"1e3s\"",
        ] {
            let e = ka(bad).unwrap_err().to_string();
            assert!(
                e.contains("teacher.keep_alive must be a duration"),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            Config::default().teacher.keep_alive.span().unwrap(),
            mins(30)
        );
    }

    #[test]
    fn ollama_host_forms() {
        assert_eq!(normalize_ollama_host("0.0.0.0"), "http://127.0.0.1:11434");
        assert_eq!(
            normalize_ollama_host("10.0.0.2:8080"),
            "http://10.0.0.2:8080"
        );
        assert_eq!(
            normalize_ollama_host("https://ollama.example/"),
            "https://ollama.example"
        );
        assert_eq!(
            normalize_ollama_host("http://127.0.0.1:11434"),
            "http://127.0.0.1:11434"
        );
    }
}
