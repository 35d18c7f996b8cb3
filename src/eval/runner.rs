//! Running the student on eval cases: one chat call per case, scored.

use super::cases::{Case, CaseInput, EvalSet, Split};
use super::score::{score_answer, weighted_mean, CaseScore};
use crate::config::{EvalConfig, FrameConfig};
use crate::frame::{prep, PreparedFrame, RawImage};
use crate::model::{ChatRequest, ModelClient, Sampling};
use crate::roles::output_contract::Placement;
use crate::roles::student;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;

/// One case's result for one skill.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CaseResult {
    pub case_id: String,
    pub split: Split,
    pub weight: f64,
    pub answer: String,
    pub score: CaseScore,
    /// The call failed; the case scores 0.
    pub error: Option<String>,
}

impl CaseResult {
    pub fn total(&self) -> f64 {
        if self.error.is_some() {
            0.0
        } else {
            self.score.total
        }
    }
}

/// How many answers ended with a readable confidence line (the eval's `format_ok`), out of
/// the answers there were (failed calls are not answers and are left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct FormatShare {
    pub ok: usize,
    pub of: usize,
}

impl FormatShare {
    pub fn of_results<'a>(results: impl IntoIterator<Item = &'a CaseResult>) -> Self {
        let mut s = FormatShare::default();
        for r in results.into_iter().filter(|r| r.error.is_none()) {
            s.of += 1;
            s.ok += usize::from(r.score.format_ok);
        }
        s
    }

    /// Fewer than half the answers had the line.
    pub fn mostly_failed(&self) -> bool {
        self.of > 0 && self.ok * 2 < self.of
    }

    /// `12/25`, or `—` with no answers.
    pub fn short(&self) -> String {
        if self.of == 0 {
            "—".into()
        } else {
            format!("{}/{}", self.ok, self.of)
        }
    }

    /// What a person must hear when most answers have no confidence line: the live policy
    /// escalates every answer without one. None when most have it.
    pub fn warning(&self) -> Option<String> {
        if !self.mostly_failed() {
            return None;
        }
        let consequence = if self.ok == 0 {
            "every live frame would escalate".to_string()
        } else {
            format!(
                "{} of every {} live frames would escalate for the missing line",
                self.of - self.ok,
                self.of
            )
        };
        Some(format!(
            "{} of {} answers ended with a confidence line: {consequence}",
            self.ok, self.of
        ))
    }
}

/// Images of the eval set, prepared once per run (as a frame would be).
#[derive(Default, Clone)]
pub struct PreparedImages(HashMap<String, Arc<PreparedFrame>>);

impl PreparedImages {
    /// Prepare every image case; an image that cannot be prepared is an error naming it.
    pub fn prepare(set: &EvalSet, cfg: &FrameConfig) -> Result<Self, String> {
        let mut m = HashMap::new();
        for c in &set.cases {
            if let CaseInput::Image(path) = &c.input {
                let bytes = crate::files::bounded_read::read_regular(
                    path,
                    crate::files::bounded_read::MAX_IMAGE_FILE_BYTES,
                )
                .map_err(|e| format!("case {:?}: cannot read {}: {e}", c.id, path.display()))?;
                let p = prep::prepare(&RawImage::Encoded(bytes.into()), cfg)
                    .map_err(|e| format!("case {:?}: {}: {e}", c.id, path.display()))?;
                m.insert(c.id.clone(), Arc::new(p));
            }
        }
        Ok(PreparedImages(m))
    }
}

/// The request the student gets for a case under a skill (instructions + output contract,
/// placed where the live requests place it).
pub fn case_request(skill: &str, case: &Case, images: &PreparedImages) -> ChatRequest {
    case_request_placed(
        skill,
        case,
        images,
        crate::roles::output_contract::PLACEMENT,
    )
}

/// [`case_request`] with the contract placed as `placement` says (measuring placements).
pub fn case_request_placed(
    skill: &str,
    case: &Case,
    images: &PreparedImages,
    placement: Placement,
) -> ChatRequest {
    let (user, imgs) = match &case.input {
        CaseInput::Text(scene) => (
            case.prompt
                .as_deref()
                .map(|p| format!("The camera frame is described in words instead of an image:\n\"{scene}\"\n\n{p}"))
                .unwrap_or_else(|| student::text_scene_prompt(scene)),
            vec![],
        ),
        CaseInput::Image(_) => (
            case.prompt
                .clone()
                .unwrap_or_else(|| student::TASK_PROMPT.to_string()),
            images
                .0
                .get(&case.id)
                .map(|p| vec![p.base64.clone()])
                .unwrap_or_default(),
        ),
    };
    let (system, user) = crate::roles::output_contract::place(skill, &user, placement);
    let system = crate::roles::output_contract::with_watches(&system, &case.watches);
    ChatRequest {
        system: Some(system),
        user,
        images: imgs,
        format: None,
        stream: true,
        sampling: Sampling::default(),
    }
}

/// Sampling for scoring calls: fixed temperature and seed, so two runs of the same skill
/// give the same answers and scores (`[eval]` in config).
pub fn scoring(cfg: &EvalConfig) -> Sampling {
    Sampling {
        temperature: Some(cfg.temperature),
        seed: Some(cfg.seed),
        max_tokens: None,
    }
}

/// Run one case and score it.
pub async fn run_case(
    client: &ModelClient,
    skill: &str,
    case: &Case,
    images: &PreparedImages,
    safety_terms: &[String],
    sampling: Sampling,
) -> CaseResult {
    let req = case_request(skill, case, images);
    run_request(client, req, case, safety_terms, sampling).await
}

/// Run one case's request (built by [`case_request_placed`]) and score the answer.
pub async fn run_request(
    client: &ModelClient,
    mut req: ChatRequest,
    case: &Case,
    safety_terms: &[String],
    sampling: Sampling,
) -> CaseResult {
    req.sampling = sampling;
    let result = client.chat(&req, &mut |_| {}).await;
    match result {
        Ok(reply) => CaseResult {
            case_id: case.id.clone(),
            split: case.split,
            weight: case.weight,
            score: score_answer(&reply.content, &case.expectation, safety_terms),
            answer: reply.content,
            error: None,
        },
        Err(e) => CaseResult {
            case_id: case.id.clone(),
            split: case.split,
            weight: case.weight,
            answer: String::new(),
            score: score_answer("", &case.expectation, safety_terms),
            error: Some(e.to_string()),
        },
    }
}

/// Weighted mean score of the results in one split (None when the split is empty).
pub fn split_score(results: &[&CaseResult], split: Split) -> Option<f64> {
    let items: Vec<(f64, f64)> = results
        .iter()
        .filter(|r| r.split == split)
        .map(|r| (r.total(), r.weight))
        .collect();
    (!items.is_empty()).then(|| weighted_mean(&items))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Expectation;

    fn result(answer: &str, error: Option<&str>) -> CaseResult {
        CaseResult {
            case_id: "c".into(),
            split: Split::Train,
            weight: 1.0,
            answer: answer.into(),
            score: super::super::score::score_answer(answer, &Expectation::default(), &[]),
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn format_share_counts_answers_with_the_line_and_leaves_failed_calls_out() {
        let rs = vec![
            result("A room.\nCONFIDENCE: 0.7", None),
            result("A room.", None),
            result("A room, no line either.", None),
            result("", Some("timed out")),
        ];
        let s = FormatShare::of_results(&rs);
        assert_eq!(s, FormatShare { ok: 1, of: 3 });
        assert_eq!(s.short(), "1/3");
        assert!(s.mostly_failed());
        assert_eq!(
            s.warning().as_deref(),
            Some("1 of 3 answers ended with a confidence line: 2 of every 3 live frames would escalate for the missing line")
        );
    }

    #[test]
    fn the_warning_says_every_frame_when_none_has_the_line_and_nothing_when_most_do() {
        let none = FormatShare { ok: 0, of: 25 };
        assert_eq!(
            none.warning().as_deref(),
            Some("0 of 25 answers ended with a confidence line: every live frame would escalate")
        );
        assert_eq!(FormatShare { ok: 13, of: 25 }.warning(), None);
        assert_eq!(
            FormatShare { ok: 2, of: 4 }.warning(),
            None,
            "half is not most"
        );
        assert_eq!(
            FormatShare::default().warning(),
            None,
            "no answers, nothing to say"
        );
        assert_eq!(FormatShare::default().short(), "—");
    }
}
