//! Calibration: how far to trust the student's confidence. Every teacher verdict labels
//! a student answer (agrees = correct). Pure computations here; `CalibrationStore` keeps
//! the samples per skill in `logs/calibration.json` so they survive restarts.

use crate::policy::Reason;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One reviewed answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub confidence: Option<f32>,
    /// The confidence measured from token probabilities, when the server sent them.
    #[serde(default)]
    pub measured: Option<f32>,
    pub agrees: bool,
    pub safety_relevant: bool,
    pub reasons: Vec<Reason>,
}

/// A reliability bin [lo, hi).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Bin {
    pub lo: f32,
    pub hi: f32,
    pub count: u64,
    pub agree: u64,
    /// Sum of confidences in the bin (for the mean).
    pub conf_sum: f64,
}

impl Bin {
    pub fn agreement(&self) -> Option<f64> {
        (self.count > 0).then(|| self.agree as f64 / self.count as f64)
    }
    pub fn mean_confidence(&self) -> Option<f64> {
        (self.count > 0).then(|| self.conf_sum / self.count as f64)
    }
}

/// How often a trigger's escalations were needed (teacher disagreed or flagged safety).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerStat {
    pub trigger: String,
    pub escalations: u64,
    pub confirmed: u64,
}

impl TriggerStat {
    pub fn precision(&self) -> Option<f64> {
        (self.escalations > 0).then(|| self.confirmed as f64 / self.escalations as f64)
    }
}

/// Everything the calibration view and `calibrate` show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub samples: u64,
    pub bins: Vec<Bin>,
    /// Expected calibration error over samples with a stated confidence.
    pub ece: Option<f64>,
    /// The same for the measured confidence: lower predicts teacher agreement better.
    pub ece_measured: Option<f64>,
    /// Escalated / answered, when the answered count is known.
    pub escalation_rate: Option<f64>,
    /// Agreement on audits only: the one unbiased sample (not selected by the answer).
    pub audit_agreement: Option<(u64, u64)>,
    /// Lowest threshold that still catches the disagreements the current one catches,
    /// and the share of reviewed answers it would escalate.
    pub suggested_threshold: Option<(f32, f64)>,
    pub triggers: Vec<TriggerStat>,
    /// Early escalations (`policy.early_escalation`) the full answer would not have made,
    /// per keyword: the teacher calls early review cost. Filled by the caller (the store or
    /// the session log knows them, the samples do not).
    #[serde(default)]
    pub early_unneeded: BTreeMap<String, u64>,
}

/// Ten bins 0-0.1 … 0.9-1.0 (1.0 falls in the last).
pub fn bins(samples: &[Sample]) -> Vec<Bin> {
    let mut b: Vec<Bin> = (0..10)
        .map(|i| Bin {
            lo: i as f32 / 10.0,
            hi: (i + 1) as f32 / 10.0,
            ..Bin::default()
        })
        .collect();
    for s in samples {
        if let Some(c) = s.confidence.filter(|c| c.is_finite()) {
            let i = ((c.clamp(0.0, 1.0) * 10.0) as usize).min(9);
            b[i].count += 1;
            b[i].conf_sum += c as f64;
            if s.agrees {
                b[i].agree += 1;
            }
        }
    }
    b
}

/// ECE = Σ (n_bin / n) · |mean confidence − agreement rate|.
pub fn ece(bins: &[Bin]) -> Option<f64> {
    let n: u64 = bins.iter().map(|b| b.count).sum();
    if n == 0 {
        return None;
    }
    Some(
        bins.iter()
            .filter(|b| b.count > 0)
            .map(|b| {
                let gap = (b.mean_confidence().unwrap_or(0.0) - b.agreement().unwrap_or(0.0)).abs();
                b.count as f64 / n as f64 * gap
            })
            .sum(),
    )
}

/// The lowest threshold catching at least as many disagreements (confidence below it) as
/// `current` does; returns it and the share of samples it would escalate.
pub fn suggest_threshold(samples: &[Sample], current: f32) -> Option<(f32, f64)> {
    let with_conf: Vec<&Sample> = samples.iter().filter(|s| s.confidence.is_some()).collect();
    if with_conf.is_empty() {
        return None;
    }
    let mut disagree: Vec<f32> = with_conf
        .iter()
        .filter(|s| !s.agrees)
        .filter_map(|s| s.confidence)
        .collect();
    disagree.sort_by(|a, b| a.total_cmp(b));
    let caught = disagree.iter().filter(|c| **c < current).count();
    let t = if caught == 0 {
        0.0
    } else {
        // Just above the caught-th lowest disagreement confidence.
        (disagree[caught - 1] + 0.01).min(current)
    };
    let load = with_conf
        .iter()
        .filter(|s| s.confidence.is_some_and(|c| c < t))
        .count() as f64
        / with_conf.len() as f64;
    Some(((t * 100.0).round() / 100.0, load))
}

/// A trigger's name for grouping: `low confidence`, `safety:smoke`, `audit` ….
pub fn trigger_name(r: &Reason) -> String {
    match r {
        Reason::Forced => "forced".into(),
        Reason::LowConfidence { .. } => "low confidence".into(),
        Reason::NoConfidence => "no confidence".into(),
        Reason::Safety { keyword } => format!("safety:{keyword}"),
        Reason::SafetyEarly { keyword, .. } => format!("safety (early):{keyword}"),
        Reason::Audit => "audit".into(),
        Reason::EchoesPrompt { .. } => "echoes the prompt".into(),
        Reason::Cut { .. } => "cut at the token cap".into(),
        Reason::StudentDown => "student down".into(),
        Reason::Watch { id, to } => format!("watch:{id} → {to}"),
        Reason::WatchUnsure { id } => format!("watch:{id} unsure"),
    }
}

pub fn trigger_precision(samples: &[Sample]) -> Vec<TriggerStat> {
    let mut m: BTreeMap<String, TriggerStat> = BTreeMap::new();
    for s in samples {
        for r in &s.reasons {
            let name = trigger_name(r);
            let e = m.entry(name.clone()).or_insert(TriggerStat {
                trigger: name,
                escalations: 0,
                confirmed: 0,
            });
            e.escalations += 1;
            if !s.agrees || s.safety_relevant {
                e.confirmed += 1;
            }
        }
    }
    m.into_values().collect()
}

pub fn report(samples: &[Sample], answered: Option<u64>, threshold: f32) -> Report {
    let b = bins(samples);
    let audits: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.reasons.contains(&Reason::Audit))
        .collect();
    let as_measured: Vec<Sample> = samples
        .iter()
        .map(|s| Sample {
            confidence: s.measured,
            ..s.clone()
        })
        .collect();
    Report {
        samples: samples.len() as u64,
        ece: ece(&b),
        ece_measured: ece(&bins(&as_measured)),
        bins: b,
        escalation_rate: answered
            .filter(|a| *a > 0)
            .map(|a| samples.len() as f64 / a as f64),
        audit_agreement: (!audits.is_empty()).then(|| {
            (
                audits.iter().filter(|s| s.agrees).count() as u64,
                audits.len() as u64,
            )
        }),
        suggested_threshold: suggest_threshold(samples, threshold),
        triggers: trigger_precision(samples),
        early_unneeded: BTreeMap::new(),
    }
}

/// Samples per skill, persisted in `logs/calibration.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CalibrationStore {
    pub skills: BTreeMap<String, SkillSamples>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SkillSamples {
    pub answered: u64,
    pub samples: Vec<Sample>,
    /// Early escalations the full answer would not have made, per keyword.
    #[serde(default)]
    pub early_unneeded: BTreeMap<String, u64>,
}

/// Most samples kept per skill (oldest dropped), so the file stays small.
pub const MAX_SAMPLES: usize = 5000;

impl CalibrationStore {
    pub fn path(logs: &Path) -> PathBuf {
        logs.join("calibration.json")
    }

    /// Load, or start empty when the file is missing or unreadable.
    pub fn load(logs: &Path) -> Self {
        // 5000 samples per skill are well under a megabyte per skill.
        crate::files::bounded_read::read_regular(&Self::path(logs), 256 * 1024 * 1024)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, logs: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::files::atomic::write_atomic(&Self::path(logs), &json)
    }

    pub fn count_answer(&mut self, skill: &str) {
        self.skills.entry(skill.to_string()).or_default().answered += 1;
    }

    /// An early escalation of `keyword` that the full answer would not have made.
    pub fn count_early_unneeded(&mut self, skill: &str, keyword: &str) {
        let e = self.skills.entry(skill.to_string()).or_default();
        *e.early_unneeded.entry(keyword.to_string()).or_default() += 1;
    }

    pub fn add(&mut self, skill: &str, s: Sample) {
        let e = self.skills.entry(skill.to_string()).or_default();
        e.samples.push(s);
        if e.samples.len() > MAX_SAMPLES {
            let extra = e.samples.len() - MAX_SAMPLES;
            e.samples.drain(..extra);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(c: Option<f32>, agrees: bool, reasons: Vec<Reason>) -> Sample {
        Sample {
            confidence: c,
            measured: None,
            agrees,
            safety_relevant: false,
            reasons,
        }
    }

    #[test]
    fn bins_and_ece_match_a_hand_computed_example() {
        // Bin 0.9-1.0: confidences 0.9, 1.0 (mean 0.95), 1 of 2 agree (0.5): gap 0.45.
        // Bin 0.2-0.3: confidence 0.2, agrees: gap 0.8.
        // Bin 0.5-0.6: confidence 0.5, disagrees: gap 0.5.
        let v = vec![
            s(Some(0.9), true, vec![]),
            s(Some(1.0), false, vec![]),
            s(Some(0.2), true, vec![]),
            s(Some(0.5), false, vec![]),
            s(None, false, vec![Reason::NoConfidence]),
        ];
        let b = bins(&v);
        assert_eq!(b[9].count, 2);
        assert_eq!(b[9].agree, 1);
        assert_eq!(b[2].count, 1);
        assert_eq!(b[5].count, 1);
        assert_eq!(b.iter().map(|x| x.count).sum::<u64>(), 4);
        // ECE = 2/4*0.45 + 1/4*0.8 + 1/4*0.5 = 0.225 + 0.2 + 0.125 = 0.55
        assert!((ece(&b).unwrap() - 0.55).abs() < 1e-6);
    }

    #[test]
    fn suggested_threshold_catches_the_same_disagreements_at_lower_load() {
        // Disagreements at 0.2 and 0.3; agreements at 0.4, 0.45, 0.5, 0.9.
        let v = vec![
            s(Some(0.2), false, vec![]),
            s(Some(0.3), false, vec![]),
            s(Some(0.4), true, vec![]),
            s(Some(0.45), true, vec![]),
            s(Some(0.5), true, vec![]),
            s(Some(0.9), true, vec![]),
        ];
        let (t, load) = suggest_threshold(&v, 0.55).unwrap();
        assert!((t - 0.31).abs() < 1e-6, "{t}");
        assert!((load - 2.0 / 6.0).abs() < 1e-9);
    }

    #[test]
    fn trigger_precision_counts_confirmed_escalations() {
        let smoke = Reason::Safety {
            keyword: "smoke".into(),
        };
        let mut flagged = s(Some(0.9), true, vec![smoke.clone()]);
        flagged.safety_relevant = true;
        let v = vec![
            flagged,
            s(Some(0.9), true, vec![smoke]),
            s(Some(0.9), true, vec![Reason::Audit]),
            s(Some(0.9), false, vec![Reason::Audit]),
        ];
        let t = trigger_precision(&v);
        let smoke = t.iter().find(|x| x.trigger == "safety:smoke").unwrap();
        assert_eq!((smoke.escalations, smoke.confirmed), (2, 1));
        let r = report(&v, Some(40), 0.55);
        assert_eq!(r.audit_agreement, Some((1, 2)));
        assert_eq!(r.escalation_rate, Some(0.1));
    }

    #[test]
    fn store_round_trips_and_caps() {
        let d = tempfile::tempdir().unwrap();
        let mut st = CalibrationStore::default();
        for _ in 0..(MAX_SAMPLES + 3) {
            st.add("skill.txt", s(Some(0.5), true, vec![]));
        }
        st.count_answer("skill.txt");
        st.count_early_unneeded("skill.txt", "smoke");
        st.count_early_unneeded("skill.txt", "smoke");
        st.save(d.path()).unwrap();
        let back = CalibrationStore::load(d.path());
        assert_eq!(back.skills["skill.txt"].samples.len(), MAX_SAMPLES);
        assert_eq!(back.skills["skill.txt"].answered, 1);
        assert_eq!(back.skills["skill.txt"].early_unneeded["smoke"], 2);
        // A file from before early escalation reads with none.
        let old: CalibrationStore =
            serde_json::from_str(r#"{"skills":{"s":{"answered":3,"samples":[]}}}"#).unwrap();
        assert!(old.skills["s"].early_unneeded.is_empty());
    }
}
