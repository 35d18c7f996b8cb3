//! `gemmaedge-tui learn --from LOG [--only-disagreements]` and
//! `gemmaedge-tui calibrate --from LOG`: the learning loop from a session log.

use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::learn::{learn_from_log, read_log};
use crate::policy::calibration::{report, Report, Sample};
use crate::reading::sanitize::{escape_controls, escape_line};
use std::path::Path;

/// Exit 0 when it added cases (or there was nothing new to add), saying how many reviewed
/// frames it skipped or refused and why; 2 only when none could be added because every
/// one was skipped or refused, or the log could not be read.
pub fn learn(config: &Config, log: &Path, only_disagreements: bool) -> i32 {
    match learn_from_log(
        log,
        &config.paths.eval,
        &config.paths.logs,
        only_disagreements,
    ) {
        Ok(learned) => {
            for why in &learned.refused {
                eprintln!("gemmaedge-tui learn: refused {why}");
            }
            let target = escape_line(
                &config
                    .paths
                    .eval
                    .join(crate::learn::LEARNED_FILE)
                    .display()
                    .to_string(),
            );
            println!("{}", learned_line(&learned, &target));
            if !learned.refused.is_empty() {
                eprintln!(
                    "gemmaedge-tui learn: {} reviewed frame(s) refused: a log names only its own \
                     session (YYYYMMDD-HHMMSS) and JPEGs under the logs' frames/ directory",
                    learned.refused.len()
                );
            }
            learn_exit(&learned)
        }
        Err(e) => {
            eprintln!("gemmaedge-tui learn: {}", escape_controls(&e.to_string()));
            EXIT_BAD_INPUT
        }
    }
}

/// `added 2 case(s) to eval/learned.toml (1 reviewed frame(s) skipped: …; 1 refused)`.
pub fn learned_line(l: &crate::learn::Learned, target: &str) -> String {
    let mut notes = Vec::new();
    if l.skipped > 0 {
        notes.push(format!(
            "{} reviewed frame(s) skipped: no saved frame or no structured verdict",
            l.skipped
        ));
    }
    if !l.refused.is_empty() {
        notes.push(format!("{} refused (why on stderr)", l.refused.len()));
    }
    let mut line = format!("added {} case(s) to {target}", l.added);
    if !notes.is_empty() {
        line.push_str(&format!(" ({})", notes.join("; ")));
    }
    if l.added == 0 && learn_exit(l) != 0 {
        line.push_str(": nothing could be added");
    }
    line
}

/// 2 when frames were there to learn from but none could be added; 0 otherwise.
pub fn learn_exit(l: &crate::learn::Learned) -> i32 {
    if l.added == 0 && (l.skipped > 0 || !l.refused.is_empty()) {
        EXIT_BAD_INPUT
    } else {
        0
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
        let mut rep = report(
            &samples,
            answered.get(skill).copied(),
            config.policy.confidence_threshold,
        );
        rep.early_unneeded = summary
            .early_unneeded
            .get(skill)
            .cloned()
            .unwrap_or_default();
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
    if !r.early_unneeded.is_empty() {
        out.push_str(&format!(
            "early reviews the full answer would not have made (extra teacher calls): {}\n",
            r.early_unneeded
                .iter()
                .map(|(kw, n)| format!("{n} {}", escape_line(kw)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learn::Learned;

    #[test]
    fn some_added_is_success_whatever_was_skipped_or_refused() {
        let l = Learned {
            added: 2,
            skipped: 1,
            refused: vec!["frame #3: not a JPEG".into()],
        };
        assert_eq!(learn_exit(&l), 0);
        assert_eq!(
            learned_line(&l, "eval/learned.toml"),
            "added 2 case(s) to eval/learned.toml (1 reviewed frame(s) skipped: no saved frame \
             or no structured verdict; 1 refused (why on stderr))"
        );
    }

    #[test]
    fn nothing_added_is_an_error_only_when_something_was_there_to_add() {
        let skipped = Learned {
            added: 0,
            skipped: 2,
            refused: vec![],
        };
        assert_eq!(learn_exit(&skipped), EXIT_BAD_INPUT);
        assert!(learned_line(&skipped, "x").ends_with(": nothing could be added"));
        let refused = Learned {
            added: 0,
            skipped: 0,
            refused: vec!["frame #1: session id".into()],
        };
        assert_eq!(learn_exit(&refused), EXIT_BAD_INPUT);
        // Every reviewed frame already learned (or none reviewed): nothing new, no error.
        let none = Learned::default();
        assert_eq!(learn_exit(&none), 0);
        assert_eq!(learned_line(&none, "x"), "added 0 case(s) to x");
    }
}

#[cfg(test)]
mod early_tests {
    #[test]
    fn calibrate_prints_the_early_reviews_per_keyword() {
        let mut rep = crate::policy::calibration::report(&[], Some(5), 0.55);
        assert!(!super::render(&rep, 0.55).contains("early reviews"));
        rep.early_unneeded = [("smoke".to_string(), 2), ("fire".to_string(), 1)].into();
        let text = super::render(&rep, 0.55);
        assert!(
            text.contains(
                "early reviews the full answer would not have made (extra teacher calls): \
                 1 fire, 2 smoke"
            ),
            "{text}"
        );
    }
}
