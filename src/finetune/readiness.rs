//! Readiness, pure: from the teacher-labelled frames and the upskill runs, whether
//! fine-tuning the student is worth it yet, in words with its reasons. "Upskill the prompt
//! first; fine-tune when you have a real dataset and prompting has stopped paying."

use super::config::FinetuneConfig;
use crate::roles::verdict::Verdict;
use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

/// A frame the teacher judged readably: the label it gives the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// The frame's perceptual hash (None: an old row without one; counted as distinct).
    pub dhash: Option<u64>,
    /// The teacher agreed with the student.
    pub agrees: bool,
    /// The teacher called the frame safety-relevant.
    pub safety: bool,
}

/// The label a verdict gives, `(agrees, safety)`; None for a verdict that cannot be a
/// label: unreadable (not the JSON asked for), cut before it closed, or silent on agreement.
pub fn label_of(v: &Verdict) -> Option<(bool, bool)> {
    if v.raw.is_some() || v.truncated {
        return None;
    }
    let agrees = v.agrees?;
    if v.summary.trim().is_empty() {
        return None;
    }
    Some((agrees, v.safety_relevant == Some(true)))
}

/// A dHash as the store keeps it (16 hex digits).
pub fn parse_hash(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim(), 16).ok()
}

/// The indices of `frames` kept after near-duplicate removal, in order: a frame whose hash
/// is within `bits` differing bits of one kept before it is dropped. Frames without a hash
/// are all kept.
///
/// Multi-index hashing: the 64 bits are cut into `bits + 1` pieces; two hashes within
/// `bits` differing bits agree exactly on at least one piece (pigeonhole), so only the kept
/// hashes sharing a piece are compared — near-linear for the small `bits` used, where a
/// plain scan is quadratic (50 000 frames: BENCHMARKS.md, "Fine-tune readiness").
pub fn distinct(hashes: &[Option<u64>], bits: u32) -> Vec<usize> {
    let pieces = (bits.min(63) + 1) as usize;
    let width = 64 / pieces;
    let piece = |h: u64, p: usize| -> u64 {
        let lo = p * width;
        let hi = if p + 1 == pieces { 64 } else { lo + width };
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            (1u64 << (hi - lo)) - 1
        };
        (h >> lo) & mask
    };
    let mut index: Vec<std::collections::HashMap<u64, Vec<u64>>> = vec![Default::default(); pieces];
    let mut kept = Vec::new();
    for (i, h) in hashes.iter().enumerate() {
        let Some(h) = *h else {
            kept.push(i);
            continue;
        };
        let near = (0..pieces).any(|p| {
            index[p]
                .get(&piece(h, p))
                .is_some_and(|v| v.iter().any(|k| (k ^ h).count_ones() <= bits))
        });
        if near {
            continue;
        }
        for (p, map) in index.iter_mut().enumerate() {
            map.entry(piece(h, p)).or_default().push(h);
        }
        kept.push(i);
    }
    kept
}

/// One finished upskill run: when, with which student, and what the best candidate gained
/// on train over the skill of the time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunGain {
    pub finished_at: DateTime<Utc>,
    pub student: String,
    /// None when no candidate was scored (counted as no gain).
    pub gain: Option<f64>,
    /// The run's winner became the skill.
    pub skill_switched: bool,
}

/// The last `n` runs for a person, newest last: when, the gain, whether the skill
/// switched, the student — and where the student model changed from the run before (a
/// fine-tuned model going live shows here beside the skill switches).
pub fn run_lines(runs: &[RunGain], n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let skip = runs.len().saturating_sub(n);
    for (i, run) in runs.iter().enumerate().skip(skip) {
        let before = i.checked_sub(1).map(|j| &runs[j].student);
        let switch = match before {
            Some(b) if !b.is_empty() && *b != run.student => {
                format!("  (student switched from {b})")
            }
            _ => String::new(),
        };
        out.push(format!(
            "{}  {:+.3}  {}  {}{switch}",
            run.finished_at.format("%Y-%m-%d %H:%M"),
            run.gain.unwrap_or(0.0),
            if run.skill_switched {
                "skill switched"
            } else {
                "skill kept    "
            },
            run.student
        ));
    }
    out
}

/// The gain of a run from its report (`logs/upskill-*.json`); None for a run that did not
/// finish (failed, cancelled, still running) or a report that is not one.
pub fn run_gain(report: &serde_json::Value) -> Option<RunGain> {
    if report["status"].as_str() != Some("finished") {
        return None;
    }
    let finished_at = report["finished_at"]
        .as_str()
        .or(report["started_at"].as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let rows = report["rows"].as_array()?;
    let base = rows.first().and_then(|r| r["train"].as_f64());
    let best = rows
        .iter()
        .skip(1)
        .filter_map(|r| r["train"].as_f64())
        .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
    let gain = match (base, best) {
        (Some(b), Some(c)) => Some(c - b),
        _ => None,
    };
    Some(RunGain {
        finished_at,
        student: crate::reading::sanitize::for_screen(
            report["student"].as_str().unwrap_or(""),
            100,
        ),
        gain,
        skill_switched: report["applied"].as_str().is_some_and(|p| !p.is_empty()),
    })
}

/// The teacher's verdicts in one ISO week: how many, how many disagreed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Week {
    /// `2026-W49`.
    pub week: String,
    pub verdicts: u64,
    pub corrected: u64,
}

/// Verdicts and disagreements per ISO week, oldest first.
pub fn weekly(frames: &[Labelled]) -> Vec<Week> {
    let mut m: std::collections::BTreeMap<(i32, u32), (u64, u64)> = Default::default();
    for f in frames {
        let w = f.at.iso_week();
        let e = m.entry((w.year(), w.week())).or_default();
        e.0 += 1;
        e.1 += u64::from(!f.agrees);
    }
    m.into_iter()
        .map(|((y, w), (n, c))| Week {
            week: format!("{y}-W{w:02}"),
            verdicts: n,
            corrected: c,
        })
        .collect()
}

/// What the verdict says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Advice {
    /// Too few labelled frames (or nothing to learn).
    NotYet,
    /// Upskill runs still gain (or too few have run).
    PromptingPays,
    /// A real dataset and a plateau: fine-tune.
    WorthIt,
}

/// Frames per label: `agreed + corrected = total`; `safety` overlaps both.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub total: u64,
    pub distinct: u64,
    pub agreed: u64,
    pub corrected: u64,
    pub safety: u64,
}

/// Everything `finetune status` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    pub advice: Advice,
    /// One line: "worth it: 412 distinct labelled frames, …".
    pub verdict: String,
    /// The facts behind it, one a line.
    pub reasons: Vec<String>,
    /// Labelled frames (total and per label counted over the distinct ones).
    pub frames: Counts,
    /// The finished upskill runs, oldest first.
    pub runs: Vec<RunGain>,
    /// The decision margin the runs are held to (`upskill.min_improvement`).
    pub margin: f64,
    pub weeks: Vec<Week>,
}

/// The verdict from the labelled frames (oldest first), the finished upskill runs (any
/// order) and the thresholds; `margin` is `upskill.min_improvement`.
pub fn assess(
    frames: &[Labelled],
    runs: &[RunGain],
    cfg: &FinetuneConfig,
    margin: f64,
) -> Readiness {
    let hashes: Vec<Option<u64>> = frames.iter().map(|f| f.dhash).collect();
    let kept = distinct(&hashes, cfg.duplicate_bits);
    let mut c = Counts {
        total: frames.len() as u64,
        distinct: kept.len() as u64,
        ..Counts::default()
    };
    for &i in &kept {
        let f = &frames[i];
        if f.agrees {
            c.agreed += 1;
        } else {
            c.corrected += 1;
        }
        c.safety += u64::from(f.safety);
    }
    let mut runs = runs.to_vec();
    runs.sort_by_key(|r| r.finished_at);
    let all_corrected = frames.iter().filter(|f| !f.agrees).count();
    let rate = if frames.is_empty() {
        0.0
    } else {
        all_corrected as f64 / frames.len() as f64
    };
    let pct = (rate * 100.0).round() as u64;
    let gain = |r: &RunGain| r.gain.unwrap_or(0.0);
    let last: Vec<&RunGain> = runs.iter().rev().take(cfg.plateau_runs).collect();
    let plateau = last.len() == cfg.plateau_runs && last.iter().all(|r| gain(r) < margin);
    let mut reasons = vec![format!(
        "{} distinct labelled frames of {} ({} agreed, {} corrected, {} safety; want ≥ {})",
        c.distinct, c.total, c.agreed, c.corrected, c.safety, cfg.min_frames
    )];
    reasons.push(match runs.last() {
        None => "no finished upskill run yet".to_string(),
        Some(r) => format!(
            "{} finished upskill runs; the last gained {:+.3} (margin +{margin:.3}); a plateau \
             is {} runs in a row below the margin",
            runs.len(),
            gain(r),
            cfg.plateau_runs
        ),
    });
    reasons.push(if frames.is_empty() {
        "no teacher verdicts yet".to_string()
    } else {
        format!(
            "the teacher corrects {pct}% of escalations ({all_corrected} of {})",
            frames.len()
        )
    });
    let (advice, verdict) = if c.distinct < cfg.min_frames {
        (
            Advice::NotYet,
            format!(
                "not yet: {} distinct labelled frames (want ≥ {})",
                c.distinct, cfg.min_frames
            ),
        )
    } else if c.corrected == 0 {
        (
            Advice::NotYet,
            format!(
                "not yet: the teacher corrected none of {} distinct labelled frames: there is \
                 nothing for the student to learn",
                c.distinct
            ),
        )
    } else if let Some(r) = runs.last().filter(|r| gain(r) >= margin) {
        (
            Advice::PromptingPays,
            format!("prompting still pays: the last run gained {:+.3}", gain(r)),
        )
    } else if !plateau {
        (
            Advice::PromptingPays,
            format!(
                "prompting may still pay: {} finished upskill run{} (want {} in a row below \
                 +{margin:.3}): run upskill first",
                runs.len(),
                if runs.len() == 1 { "" } else { "s" },
                cfg.plateau_runs
            ),
        )
    } else {
        let worst = last.iter().map(|r| gain(r)).fold(f64::MIN, f64::max);
        (
            Advice::WorthIt,
            format!(
                "worth it: {} distinct labelled frames, the last {} upskill runs gained ≤ \
                 {:.3}, the teacher corrects {pct}% of escalations",
                c.distinct,
                cfg.plateau_runs,
                worst.max(0.0)
            ),
        )
    };
    Readiness {
        advice,
        verdict,
        reasons,
        frames: c,
        runs,
        margin,
        weeks: weekly(frames),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, 12, 0, 0).unwrap()
    }

    /// `n` frames with hashes far apart (distinct), one in `corrected_every` corrected.
    fn frames(n: usize, corrected_every: usize) -> Vec<Labelled> {
        (0..n)
            .map(|i| Labelled {
                id: i as i64,
                at: t(1 + (i % 28) as u32),
                // Spread the bits: consecutive values of a multiplicative hash.
                dhash: Some((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                agrees: i % corrected_every != 0,
                safety: i % 10 == 0,
            })
            .collect()
    }

    fn run(day: u32, gain: f64) -> RunGain {
        RunGain {
            finished_at: t(day),
            student: "gemma4:e2b".into(),
            gain: Some(gain),
            skill_switched: false,
        }
    }

    #[test]
    fn run_lines_mark_skill_and_student_switches_newest_last() {
        let mut runs = vec![run(1, 0.05), run(2, 0.01), run(3, 0.0)];
        runs[1].skill_switched = true;
        runs[2].student = "gemma-edge-ft".into();
        let lines = run_lines(&runs, 2);
        assert_eq!(
            lines,
            [
                "2026-11-02 12:00  +0.010  skill switched  gemma4:e2b",
                "2026-11-03 12:00  +0.000  skill kept      gemma-edge-ft  (student switched from gemma4:e2b)",
            ]
        );
        assert!(run_lines(&[], 5).is_empty());
    }

    #[test]
    fn too_few_distinct_frames_is_not_yet() {
        let r = assess(&frames(37, 3), &[], &FinetuneConfig::default(), 0.02);
        assert_eq!(r.advice, Advice::NotYet);
        assert_eq!(
            r.verdict,
            "not yet: 37 distinct labelled frames (want ≥ 100)"
        );
    }

    #[test]
    fn near_duplicates_do_not_count() {
        // 150 frames, but every frame repeated 3 times with one or two bits flipped.
        let mut f = Vec::new();
        for x in frames(50, 3) {
            for flip in [0u64, 1, 0b11] {
                let mut y = x.clone();
                y.dhash = y.dhash.map(|h| h ^ flip);
                f.push(y);
            }
        }
        let r = assess(&f, &[], &FinetuneConfig::default(), 0.02);
        assert_eq!(r.frames.total, 150);
        assert_eq!(r.frames.distinct, 50);
        assert!(
            r.verdict.starts_with("not yet: 50 distinct"),
            "{}",
            r.verdict
        );
        // With duplicate_bits = 0 only identical hashes merge.
        let cfg = FinetuneConfig {
            duplicate_bits: 0,
            ..FinetuneConfig::default()
        };
        assert_eq!(assess(&f, &[], &cfg, 0.02).frames.distinct, 150);
    }

    #[test]
    fn a_run_that_gained_means_prompting_still_pays() {
        let runs = [run(1, 0.001), run(2, 0.0), run(3, 0.061)];
        let r = assess(&frames(412, 3), &runs, &FinetuneConfig::default(), 0.02);
        assert_eq!(r.advice, Advice::PromptingPays);
        assert_eq!(
            r.verdict,
            "prompting still pays: the last run gained +0.061"
        );
    }

    #[test]
    fn fewer_runs_than_a_plateau_asks_for_upskill_first() {
        let r = assess(
            &frames(412, 3),
            &[run(1, 0.0)],
            &FinetuneConfig::default(),
            0.02,
        );
        assert_eq!(r.advice, Advice::PromptingPays);
        assert!(
            r.verdict.contains("1 finished upskill run "),
            "{}",
            r.verdict
        );
    }

    #[test]
    fn a_plateau_and_a_real_dataset_is_worth_it() {
        // Out of order on purpose: the last three by time are the plateau.
        let runs = [run(5, 0.004), run(1, 0.09), run(3, 0.001), run(4, -0.01)];
        let f = frames(412, 3);
        let r = assess(&f, &runs, &FinetuneConfig::default(), 0.02);
        assert_eq!(r.advice, Advice::WorthIt, "{}", r.verdict);
        let corrected = f.iter().filter(|x| !x.agrees).count();
        let pct = (corrected as f64 / 412.0 * 100.0).round();
        assert_eq!(
            r.verdict,
            format!(
                "worth it: 412 distinct labelled frames, the last 3 upskill runs gained ≤ \
                 0.004, the teacher corrects {pct}% of escalations"
            )
        );
        assert_eq!(r.frames.agreed + r.frames.corrected, 412);
        assert_eq!(r.frames.safety, 42);
        assert_eq!(r.runs.first().unwrap().finished_at, t(1), "sorted");
    }

    #[test]
    fn no_corrections_is_nothing_to_learn() {
        let r = assess(
            &frames(200, usize::MAX),
            &[run(1, 0.0), run(2, 0.0), run(3, 0.0)],
            &FinetuneConfig::default(),
            0.02,
        );
        // i % usize::MAX == 0 only for i = 0: one correction. Make it none.
        let mut f = frames(200, usize::MAX);
        f[0].agrees = true;
        let r2 = assess(&f, &[], &FinetuneConfig::default(), 0.02);
        assert_eq!(r.advice, Advice::WorthIt);
        assert_eq!(r2.advice, Advice::NotYet);
        assert!(r2.verdict.contains("nothing for the student to learn"));
    }

    #[test]
    fn the_index_finds_what_a_plain_scan_finds() {
        let plain = |hashes: &[Option<u64>], bits: u32| {
            let mut kept: Vec<u64> = Vec::new();
            let mut out = Vec::new();
            for (i, h) in hashes.iter().enumerate() {
                match h {
                    None => out.push(i),
                    Some(h) if kept.iter().all(|k| (k ^ h).count_ones() > bits) => {
                        kept.push(*h);
                        out.push(i);
                    }
                    Some(_) => {}
                }
            }
            out
        };
        let mut r = crate::eval::bootstrap::SplitMix64::new(7);
        // Clusters: 300 centres, each seen a few times with 0–6 bits flipped, and gaps.
        let centres: Vec<u64> = (0..300).map(|_| r.next_u64()).collect();
        let hashes: Vec<Option<u64>> = (0..3000)
            .map(|i| {
                if i % 97 == 0 {
                    return None;
                }
                let mut h = centres[r.below(centres.len())];
                for _ in 0..r.below(7) {
                    h ^= 1 << r.below(64);
                }
                Some(h)
            })
            .collect();
        for bits in [0, 1, 3, 4, 6, 10, 32] {
            assert_eq!(distinct(&hashes, bits), plain(&hashes, bits), "bits {bits}");
        }
    }

    #[test]
    fn weeks_count_disagreements() {
        let f = vec![
            Labelled {
                id: 1,
                at: t(2),
                dhash: None,
                agrees: false,
                safety: false,
            },
            Labelled {
                id: 2,
                at: t(3),
                dhash: None,
                agrees: true,
                safety: false,
            },
            Labelled {
                id: 3,
                at: t(10),
                dhash: None,
                agrees: false,
                safety: true,
            },
        ];
        let w = weekly(&f);
        assert_eq!(
            w,
            vec![
                Week {
                    week: "2026-W45".into(),
                    verdicts: 2,
                    corrected: 1
                },
                Week {
                    week: "2026-W46".into(),
                    verdicts: 1,
                    corrected: 1
                }
            ]
        );
    }

    #[test]
    fn cut_unreadable_or_silent_verdicts_are_no_label() {
        let ok = Verdict {
            agrees: Some(false),
            safety_relevant: Some(true),
            summary: "Smoke.".into(),
            ..Verdict::default()
        };
        assert_eq!(label_of(&ok), Some((false, true)));
        let mut cut = ok.clone();
        cut.truncated = true;
        assert_eq!(label_of(&cut), None);
        let mut raw = ok.clone();
        raw.raw = Some("smoke".into());
        assert_eq!(label_of(&raw), None);
        let mut silent = ok.clone();
        silent.agrees = None;
        assert_eq!(label_of(&silent), None);
    }

    #[test]
    fn run_gain_reads_finished_reports_only() {
        let rep = serde_json::json!({
            "status": "finished", "started_at": "2026-12-01T10:00:00Z",
            "finished_at": "2026-12-01T10:05:00Z", "student": "gemma4:e2b",
            "rows": [{"train": 0.5}, {"train": 0.52}, {"train": 0.561}, {"train": null}]
        });
        let g = run_gain(&rep).unwrap();
        assert!((g.gain.unwrap() - 0.061).abs() < 1e-9);
        assert_eq!(g.student, "gemma4:e2b");
        let mut failed = rep.clone();
        failed["status"] = "failed".into();
        assert_eq!(run_gain(&failed), None);
        assert_eq!(run_gain(&serde_json::json!([1, 2])), None);
    }
}
