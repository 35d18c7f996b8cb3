//! The Event/Command boundary: what the engine tells its faces and what faces ask of it (at the root because the engine, every face and the recorders all read it).
//!
//! Every event but `StudentToken` is also one line of the session log (JSON, tagged by
//! `type`). Image bytes ride along in memory for the console but are never serialized.

use crate::frame::PreparedFrame;
use crate::policy::Reason;
use crate::roles::verdict::Verdict;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// Which model server an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Student,
    Teacher,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Student => "student",
            Role::Teacher => "teacher",
        })
    }
}

/// How a model server is doing, as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// Not contacted yet.
    Unknown,
    Ok {
        latency_ms: u64,
    },
    /// Answers, but slower than expected.
    Slow {
        latency_ms: u64,
    },
    /// Cannot be used: the reason and a hint how to fix it.
    Offline {
        reason: String,
        hint: String,
    },
}

/// Whether a model is in the server's memory (Ollama `/api/ps`, and the calls we make).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModelLoad {
    /// Not asked yet (and never known on OpenAI-compatible hosts).
    #[default]
    Unknown,
    /// The server has not loaded it: the next call waits for a load.
    NotLoaded,
    /// A load is under way (a warm-up, or a call that found it unloaded).
    Loading,
    Loaded,
}

impl ModelLoad {
    /// The words the status bar and `check` use (empty for `Unknown`).
    pub fn label(self) -> &'static str {
        match self {
            ModelLoad::Unknown => "",
            ModelLoad::NotLoaded => "not loaded",
            ModelLoad::Loading => "loading…",
            ModelLoad::Loaded => "loaded",
        }
    }
}

/// Why the engine sent a warm-up (a load request) to a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum WarmReason {
    /// Monitoring started.
    Start,
    /// `keep_alive` would run out before the next call.
    KeepAlive,
    /// The server no longer has it (evicted, restarted, expired).
    Dropped,
    /// A safety keyword appeared in the student's streamed answer to this frame.
    Keyword { seq: u64, keyword: String },
}

/// What every face says while the teacher watches alone (status bar, headless, `check`,
/// MQTT state).
pub fn teacher_alone_label(every_secs: u64) -> String {
    format!("teacher watches alone, 1 frame / {every_secs} s (student down)")
}

/// Engine → face.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The engine started (first line of a session).
    Started {
        at: DateTime<Utc>,
        student: String,
        teacher: String,
        source: String,
        skill: String,
    },
    /// The engine took this frame (the newest captured) and shows it, whether the student
    /// is then asked about it or not (`FrameUnanswered` says why not). `superseded` counts
    /// the frames captured since the previous taken frame that nobody looked at.
    FrameTaken {
        seq: u64,
        captured_at: DateTime<Utc>,
        label: String,
        width: u32,
        height: u32,
        jpeg_bytes: usize,
        superseded: u64,
        /// The frame's perceptual hash (dHash, 16 hex digits): near-duplicates share most bits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        dhash: Option<String>,
        #[serde(skip)]
        image: Option<Arc<PreparedFrame>>,
    },
    /// The student was free, but the newest frame looks like the last answered one
    /// (perceptual hash): it was not sent.
    FrameUnchanged {
        seq: u64,
        superseded: u64,
        /// Share of hash bits that differ (below `source.min_change`).
        change: f64,
        /// Frames skipped as unchanged since the start.
        unchanged_total: u64,
    },
    /// A piece of the student's answer as it streams in (not logged).
    StudentToken {
        seq: u64,
        text: String,
    },
    /// The student's complete answer and what the policy made of it.
    StudentAnswer {
        seq: u64,
        at: DateTime<Utc>,
        answer: String,
        /// What the student says (its CONFIDENCE line).
        confidence: Option<f32>,
        /// What its token probabilities say, when the server sends them.
        #[serde(default)]
        measured_confidence: Option<f32>,
        latency_ms: u64,
        reasons: Vec<Reason>,
        skill: String,
    },
    /// The student will not be started: its model cannot do the job (e.g. it takes no
    /// images). Headless exits non-zero; the console shows the reason and the fix.
    StudentRefused {
        reason: String,
        hint: String,
    },
    /// The frame was taken and shown, but the student was not asked about it, and why
    /// (`student offline`, `student loading`, …).
    FrameUnanswered {
        seq: u64,
        why: String,
    },
    /// The student is down and the teacher watches alone (`on`), one frame every
    /// `every_secs`; or it stopped (the student answers again, or the teacher is down too).
    TeacherAlone {
        on: bool,
        every_secs: u64,
    },
    /// The student could not answer this frame.
    StudentFailed {
        seq: u64,
        error: String,
    },
    /// The frame was queued for the teacher.
    Escalated {
        seq: u64,
        reasons: Vec<Reason>,
        queue_len: usize,
        frame_path: Option<PathBuf>,
    },
    /// The teacher queue was full; this (lowest-priority, oldest) entry was dropped.
    TeacherDropped {
        seq: u64,
        reasons: Vec<Reason>,
    },
    /// A forced escalation of frame `seq` was refused (merged into one already made for
    /// it, or over `policy.forced_per_minute`); said at most once a second. `refused`:
    /// how many since the start.
    EscalationRefused {
        seq: u64,
        why: String,
        refused: u64,
    },
    /// The teacher started reviewing this frame.
    TeacherStarted {
        seq: u64,
        queue_len: usize,
    },
    TeacherVerdict {
        seq: u64,
        verdict: Verdict,
        latency_ms: u64,
    },
    TeacherFailed {
        seq: u64,
        error: String,
    },
    /// An incident was reported to someone (webhook / command): `change` says which
    /// (`open`, `raise`, `close`).
    Notified {
        seq: u64,
        via: Vec<String>,
        /// Alerts held back by the rate limit since the previous one.
        suppressed: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<String>,
    },
    /// An incident opened, grew, rose in level, closed or was acknowledged.
    Incident(IncidentEvent),
    /// The watches as they stand: at start, when the list changed (`removed`: ids gone),
    /// and when a state changed or was confirmed (`changes`).
    Watches(WatchesEvent),
    Health {
        role: Role,
        health: Health,
    },
    /// A model's load state changed (Ollama hosts only). `took_ms`: how long the load that
    /// just finished took, when the engine saw it begin.
    ModelLoad {
        role: Role,
        state: ModelLoad,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        took_ms: Option<u64>,
    },
    /// The engine asked the server to load this model (an empty chat), and why.
    WarmUp {
        role: Role,
        reason: WarmReason,
    },
    /// Capture paused or resumed.
    Paused {
        paused: bool,
    },
    /// The skill file changed and the next frame uses it.
    SkillLoaded {
        name: String,
        chars: usize,
    },
    Warning {
        message: String,
    },
    /// The engine has stopped; nothing follows.
    Stopped {
        frames_answered: u64,
        /// Why the engine stopped by itself when nobody asked it to (the frame source
        /// ended): a service exits non-zero on it. None: a requested stop, or
        /// `--max-frames` reached.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failure: Option<String>,
    },
}

impl Event {
    /// Tokens are too many and too small to log.
    pub fn is_logged(&self) -> bool {
        !matches!(self, Event::StudentToken { .. })
    }
}

/// What changed about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    /// A confirmed frame with no incident open: a new one.
    Open,
    /// A confirmed frame within `gap_secs` of the open one, same level.
    Join,
    /// A confirmed frame that rose the incident's level.
    Raise,
    /// `gap_secs` passed after its last confirmed frame.
    Close,
    /// Someone acknowledged it (it stays in history, marked).
    Ack,
}

impl IncidentChange {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentChange::Open => "open",
            IncidentChange::Join => "join",
            IncidentChange::Raise => "raise",
            IncidentChange::Close => "close",
            IncidentChange::Ack => "ack",
        }
    }
}

/// An incident as it stands after `change` (the `incident` event and log line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub change: IncidentChange,
    pub id: u64,
    /// The frame that caused the change (none for a close or an acknowledgement).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// 1 worth a look, 2 urgent: the highest of its frames.
    pub level: u8,
    /// The newest title among its most urgent frames.
    pub title: String,
    pub opened_at: DateTime<Utc>,
    pub last_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Confirmed frames so far.
    pub frames: u64,
    /// The frame its title comes from (its key frame, the last kept by retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acked_by: Option<String>,
}

/// Every watch and what just changed (the `watches` event and log line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchesEvent {
    pub watches: Vec<crate::watch::WatchStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::watch::WatchChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// Face → engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Escalate the current frame (the one the student is answering, else the last taken,
    /// answered or not).
    ForceEscalate,
    /// Pause or resume capture (the `p` key).
    SetPaused(bool),
    /// Say this as a `Warning` (logged, and shown by every face): for parts beside the
    /// engine, such as the MQTT bridge.
    Warn(String),
    /// Acknowledge an open incident (`None`: every open one), saying who did (`console`,
    /// `mqtt`, a user name).
    Ack { incident: Option<u64>, by: String },
    /// Replace the watches (the console's popup): checked, saved atomically to
    /// `skills/watches.toml`, used from the next frame. A refused list is a `Warning`.
    SetWatches(Vec<crate::watch::WatchSpec>),
    /// Stop, flush the log, and send `Stopped`.
    Shutdown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_events_as_log_lines() {
        let ev = Event::ModelLoad {
            role: Role::Teacher,
            state: ModelLoad::NotLoaded,
            took_ms: None,
        };
        let line = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            line,
            r#"{"type":"model_load","role":"teacher","state":"not_loaded"}"#
        );
        // `took_ms` may be absent.
        let back: Event = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, Event::ModelLoad { took_ms: None, .. }));
        let ev = Event::WarmUp {
            role: Role::Teacher,
            reason: WarmReason::Keyword {
                seq: 4,
                keyword: "fire".into(),
            },
        };
        let line = serde_json::to_string(&ev).unwrap();
        assert_eq!(
            line,
            r#"{"type":"warm_up","role":"teacher","reason":{"why":"keyword","seq":4,"keyword":"fire"}}"#
        );
        assert!(serde_json::from_str::<Event>(&line).is_ok());
    }
}
