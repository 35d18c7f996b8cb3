//! The sections besides the model hosts: source, frame, policy, paths, upskill, console,
//! privacy, device, notify and eval, each with its defaults.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Force the camera's capture size, `"1280x720"`; empty: the smallest mode whose
    /// longer side is at least `frame.max_side` (see `frame::camera_mode`).
    pub camera_mode: String,
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
            camera_mode: String::new(),
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
    /// After the student has been unreachable this long, the teacher watches alone.
    pub student_down_secs: u64,
    /// While the teacher watches alone, one frame to it per this many seconds; 0 = off.
    pub fallback_every_secs: u64,
    /// A safety keyword complete in the student's stream sends the frame to the teacher at
    /// once (reason `safety keyword (early)`), before the answer ends; false = only the
    /// finished answer escalates.
    pub early_escalation: bool,
    /// Forced escalations (`e`, the socket's and MQTT's `escalate`) allowed per minute;
    /// more are refused and counted. 0 = none at all.
    pub forced_per_minute: u32,
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
            student_down_secs: 30,
            fallback_every_secs: 20,
            early_escalation: true,
            forced_per_minute: 10,
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
    /// While monitoring runs, how many eval/upskill student calls may go between two live
    /// frames (live frames go first otherwise). 1: a frame waits for at most the one
    /// call in flight, so frames are answered at least every 2 × the call time.
    pub calls_between_frames: usize,
}

impl Default for UpskillConfig {
    fn default() -> Self {
        UpskillConfig {
            candidates: 4,
            concurrency: 1,
            min_improvement: 0.02,
            max_prompt_chars: 2000,
            bootstrap_samples: 1000,
            calls_between_frames: 1,
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
    /// What is normal here, in the owner's words ("A workshop. A cat lives here."): goes
    /// into the teacher's review prompt quoted as context, never as instructions.
    pub context: String,
}

impl Default for DeviceConfig {
    fn default() -> Self {
        DeviceConfig {
            name: hostname(),
            context: String::new(),
        }
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
    /// Which incident changes notify: any of "open", "raise", "close".
    pub on: Vec<String>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: String::new(),
            command: String::new(),
            min_interval_secs: 300,
            on: vec!["open".into(), "raise".into(), "close".into()],
        }
    }
}

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

/// `[service]` in config.toml.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// The control socket (default: `$XDG_RUNTIME_DIR/gemmaedge.sock`, else
    /// `/tmp/gemmaedge-<uid>/gemmaedge.sock`).
    pub socket: Option<PathBuf>,
    /// A group whose members may attach too (default: only this user).
    pub group: Option<String>,
    /// Messages queued per attached console before it counts as fallen behind and gets
    /// a fresh snapshot instead (16–65536).
    pub client_queue: usize,
    /// Connections at once (attached consoles and those still saying hello); more are
    /// refused with a reason, so a flood cannot run the service out of file descriptors.
    pub max_clients: usize,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            socket: None,
            group: None,
            client_queue: 2048,
            max_clients: 32,
        }
    }
}
