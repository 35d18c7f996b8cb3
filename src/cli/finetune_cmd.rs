//! `gemmaedge-tui finetune status [--json]` and `finetune export DIR …`: a thin face over
//! `crate::finetune`.

use crate::config::Config;
use crate::finetune::gather::{self, GatherError};
use crate::finetune::readiness::Readiness;
use std::io::Write;

/// The readiness as lines for a person: the verdict, its reasons, the runs and the weeks.
pub fn status_text(r: &Readiness) -> String {
    let mut s = format!("{}\n", r.verdict);
    for why in &r.reasons {
        s.push_str(&format!("  - {why}\n"));
    }
    if !r.runs.is_empty() {
        s.push_str("upskill runs (newest last):\n");
        for line in crate::finetune::readiness::run_lines(&r.runs, 10) {
            s.push_str(&format!("  {line}\n"));
        }
    }
    if !r.weeks.is_empty() {
        s.push_str("teacher corrections by week:\n");
        for w in r.weeks.iter().rev().take(8).rev() {
            s.push_str(&format!(
                "  {}  {:>3}% of {}\n",
                w.week,
                (w.corrected as f64 * 100.0 / w.verdicts.max(1) as f64).round(),
                w.verdicts
            ));
        }
    }
    s
}

/// `finetune status`: prints and returns the exit code (0, or 1 without a store).
pub fn status(config: &Config, json: bool) -> i32 {
    let r = match gather::readiness(config) {
        Ok(r) => r,
        Err(e @ GatherError::NoStore(_)) => {
            eprintln!("gemmaedge-tui finetune: {e}");
            return 1;
        }
        Err(e) => {
            eprintln!(
                "gemmaedge-tui finetune: {}",
                crate::reading::sanitize::escape_line(&e.to_string())
            );
            return 1;
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(
            out,
            "{}",
            crate::reading::sanitize::escape_json_invisibles(
                serde_json::to_string(&r).unwrap_or_default()
            )
        )
    } else {
        write!(out, "{}", status_text(&r))
    };
    0
}

/// The `check` row's detail: the verdict in one line, or why there is none.
pub fn check_detail(config: &Config) -> String {
    match gather::readiness(config) {
        Ok(r) => r.verdict,
        Err(GatherError::NoStore(_)) => "no history yet: nothing labelled to judge".into(),
        Err(e) => e.to_string(),
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Hf,
    Sharegpt,
}

/// `--only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Corrected,
    Safety,
    All,
}

/// What `finetune export` was asked for.
#[derive(Debug, Clone)]
pub struct ExportArgs {
    pub dir: std::path::PathBuf,
    pub since: Option<String>,
    pub format: Format,
    pub only: Only,
    pub holdout: f64,
    pub force: bool,
}

/// `finetune export`: writes the set, prints what it did, returns the exit code (0; 1 for
/// nothing to export or a write that failed; 2 for bad input).
pub fn export(config: &Config, args: &ExportArgs) -> i32 {
    use crate::finetune::example::Only as O;
    use crate::finetune::export::{self as ex, ExportError};
    let since = match args
        .since
        .as_deref()
        .map(|s| super::history_cmd::parse_when(s, chrono::Utc::now()))
        .transpose()
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gemmaedge-tui finetune export: --since: {e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let opts = ex::ExportOptions {
        dir: args.dir.clone(),
        since,
        format: match args.format {
            Format::Hf => ex::Format::Hf,
            Format::Sharegpt => ex::Format::Sharegpt,
        },
        only: match args.only {
            Only::Corrected => O::Corrected,
            Only::Safety => O::Safety,
            Only::All => O::All,
        },
        holdout: args.holdout,
        force: args.force,
    };
    let say = |e: &ExportError| {
        eprintln!(
            "gemmaedge-tui finetune export: {}",
            crate::reading::sanitize::escape_line(&e.to_string())
        )
    };
    match ex::export(config, &opts) {
        Ok(s) => {
            println!(
                "wrote {} examples ({} train, {} test) to {}; left out {} near-duplicates and \
                 {} frames missing on disk; {} eval images kept in test only",
                s.train + s.test,
                s.train,
                s.test,
                crate::reading::sanitize::escape_line(&args.dir.display().to_string()),
                s.duplicates,
                s.missing,
                s.eval_images
            );
            0
        }
        Err(e @ ExportError::BadInput(_)) => {
            say(&e);
            super::EXIT_BAD_INPUT
        }
        Err(e) => {
            say(&e);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finetune::readiness::{assess, RunGain};

    #[test]
    fn the_status_lists_runs_with_model_switches_and_weeks() {
        let run = |day: u32, student: &str, gain: f64| RunGain {
            finished_at: format!("2026-12-{day:02}T10:00:00Z").parse().unwrap(),
            student: student.into(),
            gain: Some(gain),
            skill_switched: false,
        };
        let runs = [
            run(1, "gemma4:e2b", 0.05),
            run(2, "gemma4:e2b", 0.01),
            run(3, "gemma-edge-ft", 0.0),
        ];
        let r = assess(&[], &runs, &Default::default(), 0.02);
        let t = status_text(&r);
        assert!(
            t.starts_with("not yet: 0 distinct labelled frames (want ≥ 100)\n"),
            "{t}"
        );
        assert!(t.contains("  - no teacher verdicts yet\n"), "{t}");
        assert!(
            t.contains(
                "2026-12-03 10:00  +0.000  skill kept      gemma-edge-ft  (student switched from gemma4:e2b)"
            ),
            "{t}"
        );
        assert!(!t.contains("teacher corrections by week"), "{t}");
    }
}
