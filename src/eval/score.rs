//! Scoring one answer against one case. Pure; every part is reported, not just the total.
//! PLACEHOLDER body: replaced by the full implementation.

use super::Expectation;
use serde::{Deserialize, Serialize};

/// How one answer did on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseScore {
    /// Share of `expect` groups mentioned, 0..1 (1.0 when the case expects nothing).
    pub expect_share: f64,
    /// The groups not mentioned (first synonym of each).
    pub missed: Vec<String>,
    /// `forbid` words the answer mentioned (affirmed, not negated).
    pub forbidden: Vec<String>,
    /// Did the answer flag safety-relevant activity?
    pub flagged_safety: bool,
    /// Does that match the case's `safety`?
    pub safety_ok: bool,
    /// Was there a parseable CONFIDENCE line?
    pub format_ok: bool,
    /// Combined, 0..1.
    pub total: f64,
}

pub fn score_answer(answer: &str, exp: &Expectation, safety_terms: &[String]) -> CaseScore {
    let _ = (answer, exp, safety_terms);
    CaseScore {
        expect_share: 0.0,
        missed: vec![],
        forbidden: vec![],
        flagged_safety: false,
        safety_ok: false,
        format_ok: false,
        total: 0.0,
    }
}

/// Weighted mean of `(score, weight)` pairs; 0 when the weights sum to 0.
pub fn weighted_mean(items: &[(f64, f64)]) -> f64 {
    let w: f64 = items.iter().map(|x| x.1).sum();
    if w <= 0.0 {
        return 0.0;
    }
    items.iter().map(|x| x.0 * x.1).sum::<f64>() / w
}
