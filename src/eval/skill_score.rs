//! Scoring one skill on the whole eval set: what `eval` prints and what the service
//! answers to an `eval` request (`eval --json`'s shape: one upskill report row with the
//! run's facts beside it).

use super::cases::{EvalSet, Split};
use super::runner::{
    case_request_placed, run_request, scoring, split_score, CaseResult, FormatShare, PreparedImages,
};
use crate::config::Config;
use crate::model::ModelClient;
use crate::roles::output_contract::{Placement, PLACEMENT};
use crate::upskill::report::RowSummary;

/// Score `skill` on every case with `client`; `progress(done, total, case id)` before each.
pub async fn score_skill(
    config: &Config,
    eval: &EvalSet,
    skill: &str,
    client: &ModelClient,
    progress: impl FnMut(usize, usize, &str),
) -> Result<RowSummary, String> {
    score_skill_placed(config, eval, skill, client, PLACEMENT, progress).await
}

/// [`score_skill`] with the output contract placed as `placement` says: how the placements
/// were measured against each other (`tests/real_model.rs`).
pub async fn score_skill_placed(
    config: &Config,
    eval: &EvalSet,
    skill: &str,
    client: &ModelClient,
    placement: Placement,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<RowSummary, String> {
    let images = PreparedImages::prepare(eval, &config.frame)?;
    let mut results: Vec<CaseResult> = Vec::new();
    let total = eval.cases.len();
    for (i, case) in eval.cases.iter().enumerate() {
        progress(i, total, &case.id);
        results.push(
            run_request(
                client,
                case_request_placed(skill, case, &images, placement),
                case,
                &config.policy.safety_keywords,
                scoring(&config.eval),
            )
            .await,
        );
    }
    let refs: Vec<&CaseResult> = results.iter().collect();
    Ok(RowSummary {
        label: "skill".into(),
        prompt: skill.to_string(),
        train: split_score(&refs, Split::Train),
        holdout: split_score(&refs, Split::Holdout),
        interval: None,
        format: FormatShare::of_results(&results),
        watches: crate::eval::score::watch_accuracy(results.iter().map(|r| &r.score)),
        results,
    })
}

/// `eval --json`: the row, with the student, the eval set's hash, the scoring settings
/// and the output contract beside it.
pub fn row_json(
    row: &RowSummary,
    student: &str,
    eval: &EvalSet,
    config: &Config,
) -> serde_json::Value {
    let mut v = serde_json::to_value(row).expect("rows serialize");
    v["student"] = serde_json::json!(student);
    v["eval_hash"] = serde_json::json!(eval.hash);
    v["scoring"] = serde_json::to_value(&config.eval).expect("config serializes");
    v["contract"] = serde_json::json!(crate::roles::output_contract::OUTPUT_CONTRACT);
    v
}

/// What the service does for an `eval` request: load the set, score the current skill
/// (or `skill`) with `client` (the service's student, behind its scheduler).
pub async fn score_to_json(
    config: &Config,
    skill: Option<String>,
    client: &ModelClient,
) -> Result<serde_json::Value, String> {
    let eval = super::cases::load_for(config).map_err(|e| e.to_string())?;
    let skill = match skill {
        Some(s) if !s.trim().is_empty() => s.trim().to_string(),
        Some(_) => return Err("the skill text is empty".into()),
        None => crate::roles::skill::SkillStore::open(&config.skill_path())
            .current()
            .0
            .to_string(),
    };
    let row = score_skill(config, &eval, &skill, client, |_, _, _| {}).await?;
    Ok(row_json(&row, client.model(), &eval, config))
}
