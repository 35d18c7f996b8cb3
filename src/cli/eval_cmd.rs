//! `gemmaedge-tui eval [--skill FILE] [--json]`: score a skill on the eval set.

use super::table;
use super::EXIT_BAD_INPUT;
use crate::config::Config;
use crate::eval::cases::Split;
use crate::eval::runner::CaseResult;
use crate::eval::skill_score::{row_json, score_skill};
use crate::event::Role;
use crate::model::ModelClient;
use crate::reading::sanitize::{escape_controls, escape_line};
use crate::roles::skill::SkillStore;
use crate::service::attach::attach_if_running;
use crate::service::protocol::{ClientMsg, ServerMsg};
use crate::upskill::report::RowSummary;
use std::io::Write;
use std::path::Path;

/// Run the eval set with the student; print a per-case table (or JSON) and totals.
/// When a service runs, it scores through it (its scheduler puts live frames first);
/// otherwise here, straight to the student.
pub async fn run(
    config: &Config,
    skill_file: Option<&Path>,
    json: bool,
    socket: &Path,
) -> color_eyre::Result<i32> {
    let eval = match crate::eval::cases::load_for(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("gemmaedge-tui eval: {}", escape_controls(&e.to_string()));
            return Ok(EXIT_BAD_INPUT);
        }
    };
    let skill = match skill_file {
        Some(p) => match crate::files::bounded_read::read_regular_string(
            p,
            crate::files::bounded_read::MAX_SKILL_FILE_BYTES,
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
    let (row, student) = match attach_if_running(socket, "eval", config.service.group.as_deref())
        .await
    {
        Ok(Some(remote)) => {
            if !json {
                eprintln!(
                    "eval: through the service on {} (live frames go first)",
                    escape_line(&socket.display().to_string())
                );
            }
            match through_service(remote, skill).await {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("gemmaedge-tui eval: {}", escape_controls(&e));
                    return Ok(1);
                }
            }
        }
        Err(e) => {
            // A service runs but will not take us: running here too would compete with it.
            eprintln!("gemmaedge-tui eval: {}", escape_controls(&e.to_string()));
            return Ok(1);
        }
        Ok(None) => {
            let client = ModelClient::new(&config.student, Role::Student)?;
            if let Err(e) = client.list_models().await {
                eprintln!(
                    "gemmaedge-tui eval: student offline: {e} — {}",
                    e.hint(Role::Student, client.model())
                );
                return Ok(1);
            }
            if !json {
                eprintln!(
                    "eval: no service running; calling the student directly (a monitor using it elsewhere slows this down)"
                );
            }
            let total = eval.cases.len();
            let progress = |i: usize, _: usize, id: &str| {
                if !json {
                    // The id comes from a file: escaped, so it cannot move the cursor.
                    eprint!("\r  case {}/{total}: {:<30}", i + 1, escape_line(id));
                }
            };
            let row = match score_skill(config, &eval, &skill, &client, progress).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("gemmaedge-tui eval: {}", escape_controls(&e));
                    return Ok(EXIT_BAD_INPUT);
                }
            };
            if !json {
                eprint!("\r{}\r", " ".repeat(50));
            }
            (
                row_json(&row, client.model(), &eval, config),
                client.model().to_string(),
            )
        }
    };
    let mut out = std::io::stdout().lock();
    if json {
        // Answers are model text: C1 and invisible characters escaped, like the session log.
        writeln!(
            out,
            "{}",
            crate::reading::sanitize::escape_json_invisibles(serde_json::to_string_pretty(&row)?)
        )?;
    } else {
        let summary: RowSummary = serde_json::from_value(row)?;
        write!(out, "{}", render_results(&summary.results))?;
        writeln!(
            out,
            "\ntrain {}  holdout {}  confidence line {}  ({} cases, student {})",
            fmt_score(summary.train),
            fmt_score(summary.holdout),
            summary.format.short(),
            summary.results.len(),
            escape_line(&student)
        )?;
        for (id, a) in &summary.watches {
            writeln!(
                out,
                "watch {}: {}/{} answered right ({:.0}%)",
                escape_line(id),
                a.right,
                a.of,
                a.share() * 100.0
            )?;
        }
        if let Some(w) = summary.format.warning() {
            writeln!(out, "warning: {w}")?;
        }
    }
    Ok(0)
}

/// Ask the service to score `skill`; its `eval --json` body and its student's name.
async fn through_service(
    mut remote: crate::service::client::Remote,
    skill: String,
) -> Result<(serde_json::Value, String), String> {
    if !remote.send(ClientMsg::Eval { skill: Some(skill) }) {
        return Err("the service closed the connection".into());
    }
    while let Some(m) = remote.recv().await {
        match m {
            ServerMsg::EvalDone { result } => {
                let v = result?;
                let student = v["student"].as_str().unwrap_or("?").to_string();
                return Ok((v, student));
            }
            ServerMsg::Error(e) => return Err(format!("the service refused: {e}")),
            _ => {}
        }
    }
    Err("the service closed the connection before the result".into())
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
