//! `gemmaedge-tui eval [--skill FILE] [--json]`: score a skill on the eval set.

use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::eval::cases::{load_eval_set, Split};
use crate::eval::runner::{run_case, scoring, split_score, CaseResult, PreparedImages};
use crate::event::Role;
use crate::model::ModelClient;
use crate::sanitize::{escape_controls, escape_line};
use crate::skill::SkillStore;
use std::io::Write;
use std::path::Path;

/// Run the eval set with the student; print a per-case table (or JSON) and totals.
pub async fn run(
    config: &Config,
    skill_file: Option<&Path>,
    json: bool,
) -> color_eyre::Result<i32> {
    let eval = match load_eval_set(&config.paths.eval) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gemmaedge-tui eval: {}", escape_controls(&e.to_string()));
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let skill = match skill_file {
        Some(p) => match crate::bounded_read::read_regular_string(
            p,
            crate::bounded_read::MAX_SKILL_FILE_BYTES,
        ) {
            Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
            Ok(_) => {
                eprintln!(
                    "gemmaedge-tui eval: skill file {} is empty",
                    escape_line(&p.display().to_string())
                );
                return Ok(EXIT_BAD_INPUT);
            }
            Err(e) => {
                eprintln!(
                    "gemmaedge-tui eval: cannot read skill file {}: {e}",
                    escape_line(&p.display().to_string())
                );
                return Ok(EXIT_BAD_INPUT);
            }
        },
        None => SkillStore::open(&config.skill_path())
            .current()
            .0
            .to_string(),
    };
    let client = ModelClient::new(&config.student, Role::Student)?;
    if let Err(e) = client.list_models().await {
        eprintln!(
            "gemmaedge-tui eval: student offline: {e} — {}",
            e.hint(Role::Student, client.model())
        );
        return Ok(1);
    }
    let images = match PreparedImages::prepare(&eval, &config.frame) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("gemmaedge-tui eval: {}", escape_controls(&e));
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let mut results: Vec<CaseResult> = Vec::new();
    let total = eval.cases.len();
    for (i, case) in eval.cases.iter().enumerate() {
        if !json {
            // The id comes from a file: escaped, so it cannot move the cursor or retitle.
            let id = escape_line(&case.id);
            eprint!("\r  case {}/{total}: {:<30}", i + 1, id);
        }
        results.push(
            run_case(
                &client,
                &skill,
                case,
                &images,
                &config.policy.safety_keywords,
                scoring(&config.eval),
            )
            .await,
        );
    }
    if !json {
        eprint!("\r{}\r", " ".repeat(50));
    }
    let refs: Vec<&CaseResult> = results.iter().collect();
    let train = split_score(&refs, Split::Train);
    let holdout = split_score(&refs, Split::Holdout);
    let mut out = std::io::stdout().lock();
    if json {
        // One row of an upskill run report (label, prompt, train, holdout, interval,
        // cases), with the run's facts beside it: the two share one schema.
        let row = crate::upskill::pipeline::RowSummary {
            label: "skill".into(),
            prompt: skill.to_string(),
            train,
            holdout,
            interval: None,
            results,
        };
        let mut v = serde_json::to_value(&row)?;
        v["student"] = serde_json::json!(client.model());
        v["eval_hash"] = serde_json::json!(eval.hash);
        v["scoring"] = serde_json::to_value(&config.eval)?;
        v["contract"] = serde_json::json!(crate::output_contract::OUTPUT_CONTRACT);
        // Answers are model text: C1 and invisible characters escaped, like the session log.
        writeln!(
            out,
            "{}",
            crate::sanitize::escape_json_invisibles(serde_json::to_string_pretty(&v)?)
        )?;
    } else {
        write!(out, "{}", render_results(&results))?;
        writeln!(
            out,
            "\ntrain {}  holdout {}  ({} cases, student {})",
            fmt_score(train),
            fmt_score(holdout),
            total,
            client.model()
        )?;
    }
    Ok(0)
}

pub fn fmt_score(s: Option<f64>) -> String {
    s.map_or_else(|| "—".to_string(), |v| format!("{v:.3}"))
}

/// The per-case table.
pub fn render_results(results: &[CaseResult]) -> String {
    let rows: Vec<Vec<String>> = results
        .iter()
        .map(|r| {
            vec![
                r.case_id.clone(),
                match r.split {
                    Split::Train => "train".into(),
                    Split::Holdout => "holdout".into(),
                },
                format!("{:.2}", r.total()),
                format!("{:.0}%", r.score.expect_share * 100.0),
                if r.score.missed.is_empty() {
                    "-".into()
                } else {
                    r.score.missed.join(",")
                },
                if r.score.forbidden.is_empty() {
                    "-".into()
                } else {
                    r.score.forbidden.join(",")
                },
                if r.score.safety_ok { "ok" } else { "WRONG" }.into(),
                if !r.score.format_ok {
                    "NO CONF"
                } else if r.score.overconfident() {
                    // Wrong, but stated a high confidence: the calibration penalty applied.
                    "OVERCONF"
                } else {
                    "ok"
                }
                .into(),
                r.error
                    .clone()
                    .map(|e| format!("ERROR: {e}"))
                    .unwrap_or_else(|| r.answer.lines().next().unwrap_or("").to_string()),
            ]
        })
        .collect();
    table::render(
        &[
            "case",
            "split",
            "score",
            "expect",
            "missed",
            "forbidden",
            "safety",
            "format",
            "answer",
        ],
        &rows,
        48,
    )
}
