//! `gemmaedge-tui learn --from LOG [--only-disagreements]` and
//! `gemmaedge-tui calibrate --from LOG`: the learning loop from a session log.

use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::learn::{learn_from_log, read_log};
use crate::policy::calibration::{report, Report, Sample};
use crate::reading::sanitize::{escape_controls, escape_line};
use std::path::Path;

pub fn learn(config: &Config, log: &Path, only_disagreements: bool) -> i32 {
    match learn_from_log(
        log,
        &config.paths.eval,
        &config.paths.logs,
        only_disagreements,
    ) {
        Ok(crate::learn::Learned {
            added,
            skipped,
            refused,
        }) => {
            for why in &refused {
                eprintln!("gemmaedge-tui learn: refused {why}");
            }
            println!(
                "added {added} case(s) to {}{}",
                escape_line(
                    &config
                        .paths
                        .eval
                        .join(crate::learn::LEARNED_FILE)
                        .display()
                        .to_string()
                ),
                if skipped > 0 {
                    format!(" ({skipped} reviewed frame(s) skipped: no saved frame or no structured verdict)")
                } else {
                    String::new()
                }
            );
            if refused.is_empty() {
                0
            } else {
                eprintln!(
                    "gemmaedge-tui learn: {} reviewed frame(s) refused: a log names only its own \
                     session (YYYYMMDD-HHMMSS) and JPEGs under the logs' frames/ directory",
                    refused.len()
                );
                EXIT_BAD_INPUT
            }
        }
        Err(e) => {
            eprintln!("gemmaedge-tui learn: {}", escape_controls(&e.to_string()));
            EXIT_BAD_INPUT
        }
    }
}

pub fn calibrate(config: &Config, log: &Path) -> i32 {
    let summary = match read_log(log) {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "gemmaedge-tui calibrate: {}",
                escape_controls(&e.to_string())
            );
            return EXIT_BAD_INPUT;
        }
    };
    let (reviewed, answered) = (&summary.reviewed, &summary.answered);
    if summary.dropped_frames > 0 {
        println!(
            "dropped from the full teacher queue: {} frame(s), by trigger: {}",
            summary.dropped_frames,
            summary
                .dropped
                .iter()
                .map(|(t, n)| format!("{n} {}", escape_line(t)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut skills: Vec<&String> = answered.keys().collect();
    skills.dedup();
    if reviewed.is_empty() {
        println!(
            "no teacher verdicts in {}: nothing to calibrate yet",
            escape_line(&log.display().to_string())
        );
        return 0;
    }
    for skill in skills {
        let samples: Vec<Sample> = reviewed
            .iter()
            .filter(|r| &r.skill == skill)
            .filter_map(|r| {
                Some(Sample {
                    confidence: r.confidence,
                    measured: r.measured,
                    agrees: r.verdict.agrees?,
                    safety_relevant: r.verdict.safety_relevant.unwrap_or(false),
                    reasons: r.reasons.clone(),
                })
            })
            .collect();
        let rep = report(
            &samples,
            answered.get(skill).copied(),
            config.policy.confidence_threshold,
        );
        // The skill name comes from the log: escaped, so it cannot drive the terminal.
        println!("skill {}:", escape_line(skill));
        print!("{}", render(&rep, config.policy.confidence_threshold));
        println!();
    }
    0
}

/// The calibration report as text (shared by `calibrate` and the console's view).
pub fn render(r: &Report, threshold: f32) -> String {
    let rows: Vec<Vec<String>> = r
        .bins
        .iter()
        .map(|b| {
            vec![
                format!("{:.1}-{:.1}", b.lo, b.hi),
                b.count.to_string(),
                b.agreement()
                    .map_or("—".into(), |a| format!("{:.0}%", a * 100.0)),
                b.agreement()
                    .map_or(String::new(), |a| "#".repeat((a * 20.0).round() as usize)),
            ]
        })
        .collect();
    let mut out = table::render(&["confidence", "n", "teacher agrees", ""], &rows, 24);
    out.push_str(&format!(
        "reviewed {}  ECE {}  escalation rate {}\n",
        r.samples,
        r.ece.map_or("—".into(), |e| format!("{e:.3}")),
        r.escalation_rate
            .map_or("—".into(), |e| format!("{:.1}%", e * 100.0)),
    ));
    if let Some(m) = r.ece_measured {
        out.push_str(&format!(
            "ECE of the measured confidence (token probabilities) {m:.3}: {} predicts teacher agreement better\n",
            if r.ece.is_some_and(|s| s <= m) { "the stated one" } else { "the measured one" }
        ));
    }
    if let Some((a, n)) = r.audit_agreement {
        out.push_str(&format!(
            "audits (unbiased sample): teacher agreed {a} of {n} ({:.0}%)\n",
            a as f64 / n as f64 * 100.0
        ));
    }
    if let Some((t, load)) = r.suggested_threshold {
        out.push_str(&format!(
            "threshold {t:.2} would catch the same disagreements as {threshold:.2} while escalating {:.0}% of reviewed answers\n",
            load * 100.0
        ));
    }
    let trig: Vec<Vec<String>> = r
        .triggers
        .iter()
        .map(|t| {
            vec![
                t.trigger.clone(),
                t.escalations.to_string(),
                t.confirmed.to_string(),
                t.precision()
                    .map_or("—".into(), |p| format!("{:.0}%", p * 100.0)),
                if t.escalations >= 5 && t.confirmed == 0 {
                    "never confirmed: candidate to drop".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    out.push_str(&table::render(
        &["trigger", "escalations", "confirmed", "precision", ""],
        &trig,
        40,
    ));
    out
}
