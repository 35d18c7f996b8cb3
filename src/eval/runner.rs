//! Running the student on eval cases: one chat call per case, scored.

use super::cases::{Case, CaseInput, EvalSet, Split};
use super::score::{score_answer, weighted_mean, CaseScore};
use crate::config::{EvalConfig, FrameConfig};
use crate::frame::{prep, PreparedFrame, RawImage};
use crate::model::{ChatRequest, ModelClient, Sampling};
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

/// The request the student gets for a case under a skill (instructions + output contract).
pub fn case_request(skill: &str, case: &Case, images: &PreparedImages) -> ChatRequest {
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
    ChatRequest {
        system: Some(crate::roles::output_contract::compose(skill)),
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
    let mut req = case_request(skill, case, images);
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
