//! Two student models on the same eval set with the same skill, pure: each one's totals,
//! the paired bootstrap interval of the difference (B − A, case by case; the statistics
//! upskill decides with: 90%, `upskill.bootstrap_samples`, a fixed seed) and the verdict.

use super::bootstrap::{improvement_interval, Interval};
use super::cases::Split;
use super::runner::{split_score, CaseResult};
use serde::Serialize;

/// The seed upskill's intervals use, so a comparison can be taken again.
pub const SEED: u64 = 0x5EED;
/// The interval's level.
pub const LEVEL: f64 = 0.90;

/// `eval --compare A B`'s result.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub a_train: Option<f64>,
    pub b_train: Option<f64>,
    pub a_holdout: Option<f64>,
    pub b_holdout: Option<f64>,
    /// B − A over every case both answered for (train and holdout), weighted.
    pub interval: Interval,
    pub cases: usize,
    /// One line: which is better, or that the interval includes no difference.
    pub verdict: String,
}

/// Compare `a` and `b`, results in the same case order (each case's id must match).
pub fn compare(
    a_name: &str,
    a: &[CaseResult],
    b_name: &str,
    b: &[CaseResult],
    samples: usize,
) -> Comparison {
    let (mut x, mut y, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for (ra, rb) in a.iter().zip(b) {
        if ra.case_id != rb.case_id {
            continue;
        }
        x.push(ra.total());
        y.push(rb.total());
        w.push(ra.weight);
    }
    let interval = improvement_interval(&x, &y, &w, samples, LEVEL, SEED);
    let ra: Vec<&CaseResult> = a.iter().collect();
    let rb: Vec<&CaseResult> = b.iter().collect();
    let range = format!(
        "90% interval of {b_name} − {a_name}: [{:+.3}, {:+.3}], mean {:+.3}",
        interval.lo, interval.hi, interval.mean
    );
    let verdict = if interval.lo > 0.0 {
        format!("{b_name} is better: {range}, above zero")
    } else if interval.hi < 0.0 {
        format!("{a_name} is better: {range}, below zero")
    } else {
        format!("no clear difference: {range} includes zero")
    };
    Comparison {
        a: a_name.to_string(),
        b: b_name.to_string(),
        a_train: split_score(&ra, Split::Train),
        b_train: split_score(&rb, Split::Train),
        a_holdout: split_score(&ra, Split::Holdout),
        b_holdout: split_score(&rb, Split::Holdout),
        interval,
        cases: x.len(),
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::score::CaseScore;

    fn res(id: usize, total: f64) -> CaseResult {
        CaseResult {
            case_id: format!("c{id}"),
            split: if id % 4 == 0 {
                Split::Holdout
            } else {
                Split::Train
            },
            weight: 1.0,
            answer: String::new(),
            score: CaseScore {
                expect_share: total,
                missed: vec![],
                forbidden: vec![],
                flagged_safety: false,
                safety_ok: true,
                format_ok: true,
                calibration_penalty: 0.0,
                total,
                watches: vec![],
            },
            error: None,
        }
    }

    #[test]
    fn a_clearly_better_model_excludes_zero_and_equal_ones_include_it() {
        let a: Vec<_> = (0..20)
            .map(|i| res(i, 0.4 + (i % 3) as f64 * 0.05))
            .collect();
        let b: Vec<_> = (0..20)
            .map(|i| res(i, 0.8 + (i % 2) as f64 * 0.05))
            .collect();
        let c = compare("base", &a, "tuned", &b, 1000);
        assert!(c.interval.lo > 0.0, "{c:?}");
        assert!(c.verdict.starts_with("tuned is better"), "{}", c.verdict);
        let back = compare("tuned", &b, "base", &a, 1000);
        assert!(
            back.verdict.starts_with("tuned is better"),
            "{}",
            back.verdict
        );
        // Equal on average, different case by case: zero is inside.
        let d: Vec<_> = (0..20)
            .map(|i| res(i, if i % 2 == 0 { 0.7 } else { 0.5 }))
            .collect();
        let e: Vec<_> = (0..20)
            .map(|i| res(i, if i % 2 == 0 { 0.5 } else { 0.7 }))
            .collect();
        let c = compare("a", &d, "b", &e, 1000);
        assert!(c.interval.lo < 0.0 && c.interval.hi > 0.0, "{c:?}");
        assert!(
            c.verdict.starts_with("no clear difference"),
            "{}",
            c.verdict
        );
        assert_eq!(c.cases, 20);
        assert!(c.a_holdout.is_some() && c.a_train.is_some());
    }
}
