//! The upskill run: score the current skill, ask the teacher for candidates, score each
//! on train then holdout, decide, and (when asked to) save the winner atomically.
//! Progress is reported as events so the console fills its matrix live and the CLI
//! draws a progress bar; cancelling stops further student calls at once.

use super::candidates::{rejection, rejection_among};
use super::decision::{decide, Decision, RowScore};
use super::extract::extract_prompts;
use super::meta_prompt::{candidates_request_watching, failures_brief};
pub use super::report::RowSummary;
use super::report::{Rejected, RunReport, TeacherReply};
use crate::config::Config;
use crate::eval::bootstrap::{improvement_interval, Interval};
use crate::eval::cases::{EvalSet, Split};
use crate::eval::runner::{
    run_case, scoring, split_score, CaseResult, FormatShare, PreparedImages,
};
use crate::model::ModelClient;
use crate::roles::skill::{save_skill, SkillMeta};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, watch, Semaphore};

/// What the pipeline reports as it goes (also the service's wire shape for a run).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "data", rename_all = "snake_case")]
pub enum UpskillEvent {
    /// Case ids in column order (train first, then holdout).
    Started {
        cases: Vec<(String, Split)>,
        total_calls: usize,
    },
    Phase(String),
    /// A row exists: row 0 is the current skill, the rest the teacher's candidates.
    Row {
        row: usize,
        label: String,
        prompt: String,
    },
    /// Candidates the teacher wrote that were dropped, and why.
    Dropped(Vec<(String, String)>),
    /// Something a person must know before the scores: most answers of the current skill
    /// have no confidence line (every such live frame escalates), …
    Warning(String),
    CaseScored {
        row: usize,
        column: usize,
        result: CaseResult,
        done_calls: usize,
        total_calls: usize,
    },
    RowDone {
        row: usize,
        score: RowScore,
    },
    Finished(UpskillOutcome),
    Failed(String),
    Cancelled,
    /// The run report was written here (after `Finished`, `Failed` or `Cancelled`).
    Report(PathBuf),
    /// The report could not be written.
    ReportFailed(String),
    /// A finished run's row was saved as the skill (its history copy), or why not.
    Applied {
        row: usize,
        result: Result<String, String>,
    },
}

/// The result of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpskillOutcome {
    pub rows: Vec<RowSummary>,
    /// Row that would replace the skill (when the decision is to apply).
    pub winner: Option<usize>,
    pub reason: String,
    /// Where the applied skill's history copy went, when it was saved.
    pub applied: Option<PathBuf>,
    pub eval_hash: String,
}

/// Everything a run needs.
#[derive(Clone)]
pub struct UpskillContext {
    pub config: Config,
    pub student: ModelClient,
    pub teacher: ModelClient,
    pub eval: Arc<EvalSet>,
    pub current_skill: String,
    pub candidates: usize,
    /// Save the winner when the decision says so (the console); the CLI asks first.
    pub auto_apply: bool,
}

impl UpskillContext {
    /// The context from the config: clients for both hosts and the current skill.
    pub fn from_config(
        config: &Config,
        eval: Arc<EvalSet>,
        candidates: usize,
        auto_apply: bool,
    ) -> Result<Self, crate::model::ModelError> {
        use crate::event::Role;
        Ok(UpskillContext {
            student: ModelClient::new(&config.student, Role::Student)?,
            teacher: ModelClient::new(&config.teacher, Role::Teacher)?,
            eval,
            current_skill: crate::roles::skill::SkillStore::open(&config.skill_path())
                .current()
                .0
                .to_string(),
            candidates,
            auto_apply,
            config: config.clone(),
        })
    }
}

#[derive(Debug)]
struct Cancelled;

/// Run upskill. Events go to `tx`; set `cancel` to true to stop.
pub async fn run(
    ctx: UpskillContext,
    tx: mpsc::UnboundedSender<UpskillEvent>,
    cancel: watch::Receiver<bool>,
) -> Option<UpskillOutcome> {
    let mut report = RunReport::new(
        ctx.student.model(),
        ctx.teacher.model(),
        &ctx.eval.hash,
        &ctx.config.eval,
        ctx.candidates.max(1),
    );
    let result = run_inner(&ctx, &tx, cancel, &mut report).await;
    report.finished_at = Some(chrono::Utc::now());
    let outcome = match result {
        Ok(outcome) => {
            report.status = "finished".into();
            report.winner = outcome.winner;
            report.decision = Some(outcome.reason.clone());
            report.applied = outcome.applied.clone();
            let _ = tx.send(UpskillEvent::Finished(outcome.clone()));
            Some(outcome)
        }
        Err(Ok(Cancelled)) => {
            report.status = "cancelled".into();
            let _ = tx.send(UpskillEvent::Cancelled);
            None
        }
        Err(Err(message)) => {
            report.status = "failed".into();
            report.error = Some(message.clone());
            let _ = tx.send(UpskillEvent::Failed(message));
            None
        }
    };
    let _ = tx.send(match report.write(&ctx.config.paths.logs) {
        Ok(path) => UpskillEvent::Report(path),
        Err(e) => UpskillEvent::ReportFailed(format!(
            "could not write the run report under {}: {e}",
            ctx.config.paths.logs.display()
        )),
    });
    outcome
}

type Stop = Result<Cancelled, String>;

/// Columns: train cases first, then holdout, each in file order.
fn column_order(eval: &EvalSet) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..eval.cases.len()).collect();
    idx.sort_by_key(|&i| (eval.cases[i].split == Split::Holdout, i));
    idx
}

async fn run_inner(
    ctx: &UpskillContext,
    tx: &mpsc::UnboundedSender<UpskillEvent>,
    mut cancel: watch::Receiver<bool>,
    report: &mut RunReport,
) -> Result<UpskillOutcome, Stop> {
    let eval = ctx.eval.clone();
    let columns = column_order(&eval);
    let n_candidates = ctx.candidates.max(1);
    let total_calls = columns.len() * (1 + n_candidates);
    let _ = tx.send(UpskillEvent::Started {
        cases: columns
            .iter()
            .map(|&i| (eval.cases[i].id.clone(), eval.cases[i].split))
            .collect(),
        total_calls,
    });
    let images = Arc::new(
        PreparedImages::prepare(&eval, &ctx.config.frame)
            .map_err(|e| Err(format!("eval set: {e}")))?,
    );
    let mut done_calls = 0usize;
    let mut rows: Vec<RowSummary> = Vec::new();

    // 1. The baseline.
    let _ = tx.send(UpskillEvent::Phase("scoring the current skill".into()));
    let _ = tx.send(UpskillEvent::Row {
        row: 0,
        label: "current skill".into(),
        prompt: ctx.current_skill.clone(),
    });
    let base_results = score_row(
        ctx,
        &images,
        &columns,
        0,
        &ctx.current_skill,
        tx,
        &mut cancel,
        &mut done_calls,
        total_calls,
    )
    .await?;
    let base = summarize("current skill", &ctx.current_skill, base_results, None);
    report.rows.push(base.clone());
    let _ = tx.send(UpskillEvent::RowDone {
        row: 0,
        score: row_score(&base),
    });
    // Said before any candidate is scored: the scores alone would hide it.
    if let Some(w) = base.format.warning() {
        report.warnings.push(w.clone());
        let _ = tx.send(UpskillEvent::Warning(w));
    }

    // 2. Candidates from the teacher, aimed at the baseline's train failures (those that
    //    matter most to the live policy first).
    let _ = tx.send(UpskillEvent::Phase(format!(
        "asking the teacher ({}) for {n_candidates} candidate skills",
        ctx.teacher.model()
    )));
    let train: Vec<_> = columns
        .iter()
        .zip(&base.results)
        .filter(|(&i, _)| eval.cases[i].split == Split::Train)
        .map(|(&i, r)| (&eval.cases[i], r))
        .collect();
    let failures = failures_brief(&train);
    let prompts = ask_for_candidates(
        ctx,
        n_candidates,
        base.train.unwrap_or(0.0),
        &failures,
        tx,
        &mut cancel,
        report,
    )
    .await?;
    let total_calls = columns.len() * (1 + prompts.len());
    rows.push(base);
    for (k, p) in prompts.iter().enumerate() {
        let _ = tx.send(UpskillEvent::Row {
            row: k + 1,
            label: format!("candidate {}", k + 1),
            prompt: p.clone(),
        });
    }

    // 3. Score each candidate.
    for (k, p) in prompts.iter().enumerate() {
        let row = k + 1;
        let _ = tx.send(UpskillEvent::Phase(format!(
            "scoring candidate {row} of {}",
            prompts.len()
        )));
        let results = score_row(
            ctx,
            &images,
            &columns,
            row,
            p,
            tx,
            &mut cancel,
            &mut done_calls,
            total_calls,
        )
        .await?;
        let interval = Some(train_interval(&rows[0].results, &results, &ctx.config));
        let summary = summarize(&format!("candidate {row}"), p, results, interval);
        report.rows.push(summary.clone());
        let _ = tx.send(UpskillEvent::RowDone {
            row,
            score: row_score(&summary),
        });
        rows.push(summary);
    }

    // 4. Decide, and save when asked to.
    let scores: Vec<RowScore> = rows.iter().map(row_score).collect();
    let decision = decide(&scores, ctx.config.upskill.min_improvement);
    let (winner, reason) = match &decision {
        Decision::Apply { row, reason } => (Some(*row), reason.clone()),
        Decision::Keep { reason, .. } => (None, reason.clone()),
    };
    let mut outcome = UpskillOutcome {
        rows,
        winner,
        reason,
        applied: None,
        eval_hash: eval.hash.clone(),
    };
    if ctx.auto_apply {
        if let Some(w) = winner {
            let path = apply(ctx, &outcome, w, "upskill winner")
                .map_err(|e| Err(format!("could not save the winning skill: {e}")))?;
            outcome.applied = Some(path);
        }
    }
    Ok(outcome)
}

/// The teacher's candidates: asked for `n`, each extracted one checked (an instruction,
/// not the current skill nor a piece of it, not a copy of an earlier candidate), and asked
/// once more for the missing ones when it wrote fewer, told which were rejected and why.
/// Every reply and every rejection goes into the report.
async fn ask_for_candidates(
    ctx: &UpskillContext,
    n: usize,
    baseline_train: f64,
    failures: &str,
    tx: &mpsc::UnboundedSender<UpskillEvent>,
    cancel: &mut watch::Receiver<bool>,
    report: &mut RunReport,
) -> Result<Vec<String>, Stop> {
    let max_chars = ctx.config.upskill.max_prompt_chars;
    let mut kept: Vec<String> = Vec::new();
    let mut last_problem = String::new();
    let mut rejected: Vec<(String, String)> = Vec::new();
    for attempt in 0..2 {
        let missing = n - kept.len();
        if attempt > 0 {
            let _ = tx.send(UpskillEvent::Phase(format!(
                "the teacher wrote {} of {n} candidates; asking once more for the missing {missing}",
                kept.len()
            )));
        }
        let req = candidates_request_watching(
            missing,
            &ctx.current_skill,
            baseline_train,
            failures,
            &rejected,
            max_chars,
            ctx.eval.cases.first().map_or(&[][..], |c| &c.watches[..]),
        );
        let mut ignore_tokens = |_: &str| {};
        let reply = tokio::select! {
            r = ctx.teacher.chat(&req, &mut ignore_tokens) => r,
            _ = cancel.wait_for(|c| *c) => return Err(Ok(Cancelled)),
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                report.teacher_replies.push(TeacherReply {
                    asked: missing,
                    reply: None,
                    error: Some(e.to_string()),
                });
                if kept.is_empty() {
                    return Err(Err(format!("teacher: {e}")));
                }
                break;
            }
        };
        report.teacher_replies.push(TeacherReply {
            asked: missing,
            reply: Some(reply.content.clone()),
            error: None,
        });
        let mut dropped: Vec<(String, String)> = Vec::new();
        match extract_prompts(&reply.content, max_chars) {
            Err(why) => last_problem = why,
            Ok(extracted) => {
                dropped.extend(extracted.dropped);
                for p in extracted.prompts {
                    let why =
                        rejection(&p, &ctx.current_skill).or_else(|| rejection_among(&p, &kept));
                    match why {
                        Some(why) => dropped.push((p, why)),
                        None if kept.len() < n => kept.push(p),
                        None => dropped.push((p, "more than asked for".into())),
                    }
                }
            }
        }
        if !dropped.is_empty() {
            report
                .rejected
                .extend(dropped.iter().map(|(p, why)| Rejected {
                    prompt: p.clone(),
                    reason: why.clone(),
                }));
            last_problem = format!(
                "{} rejected ({})",
                dropped.len(),
                dropped
                    .iter()
                    .map(|(_, w)| w.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            rejected.extend(dropped.iter().filter(|(p, _)| !p.is_empty()).cloned());
            let _ = tx.send(UpskillEvent::Dropped(dropped));
        }
        if kept.len() >= n {
            break;
        }
    }
    report.kept = kept.clone();
    if kept.is_empty() {
        return Err(Err(format!("no usable candidates: {last_problem}")));
    }
    if kept.len() < n {
        let _ = tx.send(UpskillEvent::Phase(format!(
            "the teacher wrote {} of {n} candidates; scoring those",
            kept.len()
        )));
    }
    Ok(kept)
}

/// Save row `row` of a finished run as the skill (history copy + sidecar, atomic).
pub fn apply(
    ctx: &UpskillContext,
    outcome: &UpskillOutcome,
    row: usize,
    note: &str,
) -> std::io::Result<PathBuf> {
    let r = outcome.rows.get(row).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no such candidate")
    })?;
    let meta = SkillMeta {
        train_score: r.train,
        holdout_score: r.holdout,
        eval_hash: outcome.eval_hash.clone(),
        student_model: ctx.student.model().to_string(),
        teacher_model: ctx.teacher.model().to_string(),
        saved_at: chrono::Utc::now(),
        note: note.to_string(),
        scoring: Some(ctx.config.eval.clone()),
        contract: crate::roles::output_contract::OUTPUT_CONTRACT.to_string(),
    };
    save_skill(&ctx.config.paths.skills, &r.prompt, &meta)
}

fn row_score(r: &RowSummary) -> RowScore {
    RowScore {
        train: r.train,
        holdout: r.holdout,
        interval: r.interval,
        format: r.format,
        watches: r.watches.clone(),
    }
}

fn summarize(
    label: &str,
    prompt: &str,
    results: Vec<CaseResult>,
    interval: Option<Interval>,
) -> RowSummary {
    let refs: Vec<&CaseResult> = results.iter().collect();
    RowSummary {
        label: label.to_string(),
        prompt: prompt.to_string(),
        train: split_score(&refs, Split::Train),
        holdout: split_score(&refs, Split::Holdout),
        interval,
        format: FormatShare::of_results(&results),
        watches: crate::eval::score::watch_accuracy(results.iter().map(|r| &r.score)),
        results,
    }
}

fn train_interval(base: &[CaseResult], cand: &[CaseResult], cfg: &Config) -> Interval {
    let (mut b, mut c, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for (x, y) in base.iter().zip(cand) {
        if x.split == Split::Train {
            b.push(x.total());
            c.push(y.total());
            w.push(x.weight);
        }
    }
    improvement_interval(&b, &c, &w, cfg.upskill.bootstrap_samples, 0.90, 0x5EED)
}

/// Score one prompt on every case (in column order), `concurrency` calls at a time.
#[allow(clippy::too_many_arguments)]
async fn score_row(
    ctx: &UpskillContext,
    images: &Arc<PreparedImages>,
    columns: &[usize],
    row: usize,
    prompt: &str,
    tx: &mpsc::UnboundedSender<UpskillEvent>,
    cancel: &mut watch::Receiver<bool>,
    done_calls: &mut usize,
    total_calls: usize,
) -> Result<Vec<CaseResult>, Stop> {
    let sem = Arc::new(Semaphore::new(ctx.config.upskill.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let safety: Arc<Vec<String>> = Arc::new(ctx.config.policy.safety_keywords.clone());
    let prompt: Arc<str> = Arc::from(prompt);
    let mut results: Vec<Option<CaseResult>> = vec![None; columns.len()];
    let mut record = |col: usize, r: CaseResult, results: &mut Vec<Option<CaseResult>>| {
        *done_calls += 1;
        let _ = tx.send(UpskillEvent::CaseScored {
            row,
            column: col,
            result: r.clone(),
            done_calls: *done_calls,
            total_calls,
        });
        results[col] = Some(r);
    };
    for (col, &ci) in columns.iter().enumerate() {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.map_err(|_| Err("internal: semaphore closed".to_string()))?,
            _ = cancel.wait_for(|c| *c) => { set.abort_all(); return Err(Ok(Cancelled)); }
        };
        let case = ctx.eval.cases[ci].clone();
        let client = ctx.student.clone();
        let images = images.clone();
        let safety = safety.clone();
        let prompt = prompt.clone();
        let sampling = scoring(&ctx.config.eval);
        set.spawn(async move {
            let r = run_case(&client, &prompt, &case, &images, &safety, sampling).await;
            drop(permit);
            (col, r)
        });
        // Report whatever finished meanwhile, so the matrix fills in live.
        while let Some(done) = set.try_join_next() {
            let (col, r) = done.map_err(|e| Err(format!("internal: scoring task failed: {e}")))?;
            record(col, r, &mut results);
        }
    }
    loop {
        let next = tokio::select! {
            n = set.join_next() => n,
            _ = cancel.wait_for(|c| *c) => { set.abort_all(); return Err(Ok(Cancelled)); }
        };
        let Some(done) = next else { break };
        let (col, r) = done.map_err(|e| Err(format!("internal: scoring task failed: {e}")))?;
        record(col, r, &mut results);
    }
    Ok(results.into_iter().flatten().collect())
}
