//! The run report: every upskill run (CLI or console) leaves `logs/upskill-<time>.json`
//! behind, whatever its end, so a user can read afterwards what the teacher wrote, which
//! candidates were kept or rejected and why, each case's answer and score per skill, the
//! intervals and the decision. Its rows have the shape of `eval --json` (label, prompt,
//! train, holdout, interval, cases).

use crate::config::EvalConfig;
use crate::eval::bootstrap::Interval;
use crate::eval::runner::{CaseResult, FormatShare};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One skill scored on the eval set: a row of an upskill run (and of its report), and
/// the body of `eval --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RowSummary {
    pub label: String,
    /// The skill's instructions (the output contract is appended to them when scored).
    pub prompt: String,
    pub train: Option<f64>,
    pub holdout: Option<f64>,
    pub interval: Option<Interval>,
    /// How many answers ended with a readable confidence line, of the answers there were.
    #[serde(default)]
    pub format: FormatShare,
    /// Each watch's accuracy over the cases that name it (beside the description score).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub watches: std::collections::BTreeMap<String, crate::eval::score::WatchAccuracy>,
    /// Serialized as `cases`: the shape `eval --json` has too.
    #[serde(rename = "cases")]
    pub results: Vec<CaseResult>,
}

/// One call to the teacher for candidates: how many it was asked for and what it said.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TeacherReply {
    pub asked: usize,
    /// The reply as received (already capped by the client).
    pub reply: Option<String>,
    pub error: Option<String>,
}

/// A candidate that was not scored, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Rejected {
    pub prompt: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running`, `finished`, `failed` or `cancelled`.
    pub status: String,
    pub student: String,
    pub teacher: String,
    pub eval_hash: String,
    pub scoring: EvalConfig,
    /// The fixed end of every prompt scored (appended to each row's instructions).
    pub contract: String,
    pub candidates_asked: usize,
    pub teacher_replies: Vec<TeacherReply>,
    pub kept: Vec<String>,
    pub rejected: Vec<Rejected>,
    /// What a person must know about the run before its scores (most answers of the
    /// current skill without a confidence line, …).
    pub warnings: Vec<String>,
    pub rows: Vec<RowSummary>,
    pub winner: Option<usize>,
    pub decision: Option<String>,
    pub error: Option<String>,
    pub applied: Option<PathBuf>,
}

impl RunReport {
    pub fn new(
        student: &str,
        teacher: &str,
        eval_hash: &str,
        scoring: &EvalConfig,
        asked: usize,
    ) -> Self {
        RunReport {
            started_at: Utc::now(),
            finished_at: None,
            status: "running".into(),
            student: student.into(),
            teacher: teacher.into(),
            eval_hash: eval_hash.into(),
            scoring: scoring.clone(),
            contract: crate::roles::output_contract::OUTPUT_CONTRACT.into(),
            candidates_asked: asked,
            teacher_replies: Vec::new(),
            kept: Vec::new(),
            rejected: Vec::new(),
            warnings: Vec::new(),
            rows: Vec::new(),
            winner: None,
            decision: None,
            error: None,
            applied: None,
        }
    }

    /// Where this run's report goes under `logs`.
    pub fn path(&self, logs: &Path) -> PathBuf {
        logs.join(format!(
            "upskill-{}.json",
            self.started_at.format("%Y%m%d-%H%M%S%.3f")
        ))
    }

    /// Write it (atomically: a reader never sees half a report).
    pub fn write(&self, logs: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(logs)?;
        let path = self.path(logs);
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::files::atomic::write_atomic(&path, &json)?;
        Ok(path)
    }
}

/// The newest `upskill-*.json` under `logs`.
pub fn latest(logs: &Path) -> Option<PathBuf> {
    all(logs).pop()
}

/// Every `upskill-*.json` under `logs`, oldest first (their names sort by time).
pub fn all(logs: &Path) -> Vec<PathBuf> {
    let Ok(dir) = std::fs::read_dir(logs) else {
        return Vec::new();
    };
    let mut reports: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("upskill-") && n.ends_with(".json"))
        })
        .collect();
    reports.sort();
    reports
}

/// A few lines for a person: the decision, the candidates kept and rejected with their
/// reasons, and the teacher's replies (bounded, cleaned).
pub fn summary_text(report: &serde_json::Value) -> String {
    let s =
        |v: &serde_json::Value| crate::reading::sanitize::for_screen(v.as_str().unwrap_or(""), 400);
    let mut out = format!(
        "{} · {}\n",
        s(&report["status"]),
        s(&report["decision"]).if_empty(&s(&report["error"]))
    );
    for w in report["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: {}\n", s(w)));
    }
    let kept = report["kept"].as_array().map_or(0, Vec::len);
    let asked = report["candidates_asked"].as_u64().unwrap_or(0);
    out.push_str(&format!("kept {kept} of {asked} candidates asked for\n"));
    for r in report["rejected"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "rejected ({}): {}\n",
            s(&r["reason"]),
            s(&r["prompt"])
        ));
    }
    for (i, t) in report["teacher_replies"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        out.push_str(&format!(
            "teacher reply {} (asked for {}): {}\n",
            i + 1,
            t["asked"],
            if t["reply"].is_null() {
                s(&t["error"])
            } else {
                s(&t["reply"])
            }
        ));
    }
    out
}

trait IfEmpty {
    fn if_empty(self, other: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, other: &str) -> String {
        if self.is_empty() {
            other.to_string()
        } else {
            self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_report_is_found_and_summarized() {
        let d = tempfile::tempdir().unwrap();
        let mut r = RunReport::new("s", "t", "abc", &EvalConfig::default(), 2);
        r.teacher_replies.push(TeacherReply {
            asked: 2,
            reply: Some("{\"prompts\": [\"A person stands.\"]}".into()),
            error: None,
        });
        r.rejected.push(Rejected {
            prompt: "A person stands.".into(),
            reason: "not an instruction".into(),
        });
        r.status = "failed".into();
        r.error = Some("no usable candidates".into());
        r.warnings
            .push("0 of 25 answers ended with a confidence line".into());
        let p = r.write(d.path()).unwrap();
        assert_eq!(latest(d.path()), Some(p.clone()));
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let text = summary_text(&v);
        assert!(
            text.starts_with("failed · no usable candidates\n"),
            "{text}"
        );
        assert!(text.contains("kept 0 of 2"), "{text}");
        assert!(
            text.contains("\nwarning: 0 of 25 answers ended with a confidence line\n"),
            "{text}"
        );
        assert!(text.contains("rejected (not an instruction): A person stands."));
        assert!(text.contains("teacher reply 1 (asked for 2): {\"prompts\""));
        assert_eq!(v["scoring"]["seed"], 42);
        assert!(v["contract"].as_str().unwrap().contains("CONFIDENCE"));
    }
}
