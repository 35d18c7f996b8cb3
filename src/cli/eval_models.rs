//! `eval --student-model NAME` and `eval --compare A B`: other student models (a fine-tuned
//! one served by Ollama under a new name) on the same eval set with the current skill,
//! called on the student's host directly (not through a service: its student is its own).

use super::eval_cmd::{fmt_score, render_results};
use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::eval::cases::{load_for, EvalSet, Split};
use crate::eval::compare::compare;
use crate::eval::skill_score::{row_json, score_skill};
use crate::event::Role;
use crate::model::ModelClient;
use crate::reading::sanitize::{escape_controls, escape_json_invisibles, escape_line};
use crate::roles::skill::SkillStore;
use crate::upskill::report::RowSummary;
use std::io::Write;

/// A model name as given on the command line: one printable word.
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 200
        || name.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "model name {} is not one: give it as Ollama lists it, e.g. gemma4:e2b",
            escape_line(name)
        ));
    }
    Ok(())
}

/// Score `model` with the current skill; None after saying why (offline, not served).
async fn score(
    config: &Config,
    eval: &EvalSet,
    skill: &str,
    model: &str,
    quiet: bool,
) -> Result<RowSummary, (i32, String)> {
    let mut host = config.student.clone();
    host.model = model.to_string();
    let client = ModelClient::new(&host, Role::Student).map_err(|e| (1, e.to_string()))?;
    match client.list_models().await {
        Err(e) => {
            return Err((
                1,
                format!(
                    "student offline: {e} — {}",
                    e.hint(Role::Student, client.model())
                ),
            ))
        }
        Ok(models)
            if !models
                .iter()
                .any(|m| m == model || m == &format!("{model}:latest")) =>
        {
            return Err((
                1,
                format!(
                    "{} does not serve {}: create it first (ollama create {} -f Modelfile) or \
                     pull it; it serves {}",
                    host.host,
                    escape_line(model),
                    escape_line(model),
                    escape_line(&models.join(", "))
                ),
            ))
        }
        Ok(_) => {}
    }
    let total = eval.cases.len();
    let progress = |i: usize, _: usize, id: &str| {
        if !quiet {
            eprint!(
                "\r  {}: case {}/{total}: {:<30}",
                escape_line(model),
                i + 1,
                escape_line(id)
            );
        }
    };
    let row = score_skill(config, eval, skill, &client, progress)
        .await
        .map_err(|e| (EXIT_BAD_INPUT, e))?;
    if !quiet {
        eprint!("\r{}\r", " ".repeat(60));
    }
    Ok(row)
}

/// `eval --student-model NAME` (`models` = [NAME]) or `eval --compare A B` (two).
pub async fn run(config: &Config, models: &[String], json: bool) -> color_eyre::Result<i32> {
    for m in models {
        if let Err(e) = check_name(m) {
            eprintln!("gemmaedge-tui eval: {e}");
            return Ok(EXIT_BAD_INPUT);
        }
    }
    let eval = match load_for(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gemmaedge-tui eval: {}", escape_controls(&e.to_string()));
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let skill = SkillStore::open(&config.skill_path())
        .current()
        .0
        .to_string();
    let mut rows = Vec::new();
    for m in models {
        match score(config, &eval, &skill, m, json).await {
            Ok(r) => rows.push(r),
            Err((code, e)) => {
                eprintln!("gemmaedge-tui eval: {}", escape_controls(&e));
                return Ok(code);
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if let [a, b] = rows.as_slice() {
        let c = compare(
            &models[0],
            &a.results,
            &models[1],
            &b.results,
            config.upskill.bootstrap_samples,
        );
        if json {
            let v = serde_json::json!({
                "comparison": c,
                "a": row_json(a, &models[0], &eval, config),
                "b": row_json(b, &models[1], &eval, config),
            });
            writeln!(
                out,
                "{}",
                escape_json_invisibles(serde_json::to_string_pretty(&v)?)
            )?;
        } else {
            let lines: Vec<Vec<String>> = a
                .results
                .iter()
                .zip(&b.results)
                .map(|(x, y)| {
                    vec![
                        x.case_id.clone(),
                        match x.split {
                            Split::Train => "train".into(),
                            Split::Holdout => "holdout".into(),
                        },
                        format!("{:.2}", x.total()),
                        format!("{:.2}", y.total()),
                        format!("{:+.2}", y.total() - x.total()),
                    ]
                })
                .collect();
            let (ha, hb) = (escape_line(&models[0]), escape_line(&models[1]));
            write!(
                out,
                "{}",
                table::render(&["case", "split", &ha, &hb, "diff"], &lines, 48)
            )?;
            writeln!(
                out,
                "\ntrain    {} {}  {} {}\nholdout  {} {}  {} {}\n{}",
                ha,
                fmt_score(c.a_train),
                hb,
                fmt_score(c.b_train),
                ha,
                fmt_score(c.a_holdout),
                hb,
                fmt_score(c.b_holdout),
                escape_line(&c.verdict)
            )?;
        }
    } else if let Some(r) = rows.first() {
        if json {
            let v = row_json(r, &models[0], &eval, config);
            writeln!(
                out,
                "{}",
                escape_json_invisibles(serde_json::to_string_pretty(&v)?)
            )?;
        } else {
            write!(out, "{}", render_results(&r.results))?;
            writeln!(
                out,
                "\ntrain {}  holdout {}  confidence line {}  ({} cases, student {})",
                fmt_score(r.train),
                fmt_score(r.holdout),
                r.format.short(),
                r.results.len(),
                escape_line(&models[0])
            )?;
        }
    }
    Ok(0)
}
